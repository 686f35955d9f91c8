//! A SCIM 2.0 client for one endpoint (`https://…/scim/v2/<tenant>` and a bearer token): the
//! remote target an on-premises LDAP sync feeds.
//!
//! Every request is retried on what a busy or restarting server answers — 429, 500, 502, 503,
//! 504, a refused or dropped connection, a timeout, an answer cut off on the way — after the
//! server's `Retry-After` when it gives one, else after an exponential backoff with jitter.
//! Anything else is the answer.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::Url;
use reqwest::blocking::Client;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde_json::Value;

const SCIM_JSON: &str = "application/scim+json";
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The schema of a PATCH body.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Answers 500 without `Retry-After` a request gets before the last is its answer.
const RETRIED_500: u32 = 3;

/// How a [`ScimClient`] behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The CA certificates (PEM) of an `https://` endpoint; the system's roots when `None`.
    pub ca_file: Option<PathBuf>,
    /// Seconds to wait for a connection.
    pub connect_timeout: Duration,
    /// Seconds to wait for a whole request.
    pub timeout: Duration,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// The first retry's delay; each further retry doubles it, up to [`Self::max_delay`].
    pub base_delay: Duration,
    /// The longest wait between attempts, a server's `Retry-After` included.
    pub max_delay: Duration,
    /// Requests in flight at once when applying a plan.
    pub concurrency: usize,
    /// Resources per page when reading the endpoint.
    pub page_size: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            concurrency: 8,
            page_size: 500,
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The endpoint URL, the token or the CA file cannot be used.
    #[error("{0}")]
    Config(String),
    /// No answer after every attempt.
    #[error("{method} {url}: no answer after {attempts} attempts: {message}")]
    Transport {
        /// The request's method.
        method: String,
        /// The request's URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        message: String,
    },
    /// The server answered with an error (after retries, when it was a retryable one).
    #[error("{method} {url}: {status}{}: {detail}", scim_type.as_deref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Status {
        /// The request's method.
        method: String,
        /// The request's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The SCIM error's `scimType`, when the body has one.
        scim_type: Option<String>,
        /// The SCIM error's `detail`, or the start of the body.
        detail: String,
    },
    /// The answer is not the SCIM JSON it should be.
    #[error("{url}: {message}")]
    Protocol {
        /// The request's URL.
        url: String,
        /// What is wrong with the answer.
        message: String,
    },
}

impl ClientError {
    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The SCIM `scimType` of an error answer, when it has one.
    pub fn scim_type(&self) -> Option<&str> {
        match self {
            Self::Status { scim_type, .. } => scim_type.as_deref(),
            _ => None,
        }
    }
}

/// A client of one SCIM endpoint. Cheap to share between threads. Its `Debug` output leaves
/// the token out.
pub struct ScimClient {
    http: Client,
    base: Url,
    token: String,
    options: ClientOptions,
    retries: AtomicU64,
}

impl std::fmt::Debug for ScimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimClient")
            .field("base", &self.base.as_str())
            .field("token", &"<secret>")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ScimClient {
    /// A client of `base` (the endpoint, such as `https://host/scim/v2/tenant`) sending
    /// `token` as a bearer token.
    ///
    /// # Errors
    /// [`ClientError::Config`] for a URL that is not `http(s)://`, an empty token, or a CA
    /// file that cannot be read.
    pub fn new(base: &str, token: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let mut base = Url::parse(base.trim_end_matches('/'))
            .map_err(|e| ClientError::Config(format!("the target `{base}` is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::Config(format!(
                "the target `{base}` must be an http:// or https:// URL"
            )));
        }
        base.set_query(None);
        base.set_fragment(None);
        if token.trim().is_empty() {
            return Err(ClientError::Config("the target's token is empty".into()));
        }
        // A system without CA certificates can still reach an http:// target.
        let tls = match crate::tls::client_config(options.ca_file.as_deref()) {
            Ok(tls) => Some(tls),
            Err(_) if base.scheme() == "http" && options.ca_file.is_none() => None,
            Err(e) => return Err(ClientError::Config(e.to_string())),
        };
        let mut http = Client::builder();
        if let Some(tls) = tls {
            http = http.tls_backend_preconfigured(tls);
        }
        let http = http
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .pool_max_idle_per_host(options.concurrency.max(1))
            .user_agent(concat!("usersync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Config(format!("cannot make an HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            token: token.trim().to_owned(),
            options,
            retries: AtomicU64::new(0),
        })
    }

    /// The options it was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Requests retried so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Whether the token and every resource go unencrypted to another host: `http://` to a
    /// host other than this one (worth a warning; a test or a sidecar proxy is fine).
    pub fn in_clear(&self) -> bool {
        let host = self.base.host_str().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        self.base.scheme() == "http" && !loopback
    }

    /// The URL of `path` (`/Users/abc`) with `query` pairs, under the endpoint.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends one request, retrying what is worth retrying, and returns the status and the
    /// JSON body (`null` when empty) of a 2xx answer. A PATCH of removals only whose earlier
    /// attempt may have been applied, answered `400 noTarget` when sent again (what it
    /// removes is gone), was applied: its answer is `204` and `null`.
    ///
    /// # Errors
    /// [`ClientError::Status`] for an error answer, [`ClientError::Transport`] when no
    /// answer came, [`ClientError::Protocol`] for a body that is not JSON.
    pub fn send(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ClientError> {
        self.send_checked(method, url, body, None)
    }

    /// As [`ScimClient::send`], for a request that must not take effect twice (a create):
    /// after a failure that may have come after the server acted (a timeout, a 500, 502 or
    /// 504, a connection lost mid-request, an answer cut off), `done` is asked before
    /// sending it again, and what it finds (the resource made) is the answer. 429, 503 and
    /// refused connections are retried as they are: the server did not act on them.
    ///
    /// # Errors
    /// As [`ScimClient::send`], and what `done` fails with.
    pub fn send_once(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<&Value>,
        done: &dyn Fn() -> Result<Option<Value>, ClientError>,
    ) -> Result<(u16, Value), ClientError> {
        self.send_checked(method, url, body, Some(done))
    }

    fn send_checked(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<&Value>,
        done: Option<&dyn Fn() -> Result<Option<Value>, ClientError>>,
    ) -> Result<(u16, Value), ClientError> {
        let mut attempt = 0;
        let mut server_errors = 0;
        // Whether an earlier attempt may have been applied, its answer lost.
        let mut maybe_applied = false;
        // A PATCH of removals only: refused `noTarget` after it may have been applied, it
        // was (a PATCH is atomic: one that also replaces may have failed whole).
        let removals_only = method == reqwest::Method::PATCH
            && body
                .and_then(|b| b.get("Operations"))
                .and_then(Value::as_array)
                .is_some_and(|ops| {
                    !ops.is_empty()
                        && ops.iter().all(|op| {
                            op.get("op")
                                .and_then(Value::as_str)
                                .is_some_and(|o| o.eq_ignore_ascii_case("remove"))
                        })
                });
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, format!("Bearer {}", self.token))
                .header(ACCEPT, SCIM_JSON);
            if let Some(body) = body {
                request = request
                    .header(CONTENT_TYPE, SCIM_JSON)
                    .body(body.to_string());
            }
            let last = attempt >= self.options.max_attempts;
            let transport = |e: &reqwest::Error| ClientError::Transport {
                method: method.to_string(),
                url: url.to_string(),
                attempts: attempt,
                message: error_chain(e),
            };
            // `unsure`: the server may have acted (a 500 or a gateway's error, or an answer
            // lost on the way), not only refused.
            let (wait, unsure) = match request.send() {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let wait = retry_after(response.headers());
                    // A 500 that stays is often the server's answer to this request (bad
                    // input at some vendors): retried less, unless it asks to be.
                    let retried = match status {
                        429 | 502 | 503 | 504 => true,
                        500 => {
                            server_errors += 1;
                            wait.is_some() || server_errors < RETRIED_500
                        }
                        _ => false,
                    };
                    if !last && retried {
                        (wait, matches!(status, 500 | 502 | 504))
                    } else {
                        match response.text() {
                            Ok(text) => {
                                let answer = self.answer(&method, &url, status, &text);
                                return match answer {
                                    Err(e)
                                        if maybe_applied
                                            && removals_only
                                            && e.status() == Some(400)
                                            && e.scim_type() == Some("noTarget") =>
                                    {
                                        Ok((204, Value::Null))
                                    }
                                    other => other,
                                };
                            }
                            // Cut off after the status line: acted on, its answer lost.
                            Err(_) if !last => (None, true),
                            Err(e) => return Err(transport(&e)),
                        }
                    }
                }
                Err(e) if !last && (e.is_connect() || e.is_timeout() || e.is_request()) => {
                    (None, !e.is_connect())
                }
                Err(e) => return Err(transport(&e)),
            };
            maybe_applied |= unsure;
            self.retries.fetch_add(1, Ordering::Relaxed);
            let delay = wait.unwrap_or_else(|| backoff(&self.options, attempt));
            std::thread::sleep(delay.min(self.options.max_delay));
            if unsure && let Some(done) = done {
                match done() {
                    Ok(Some(made)) => return Ok((201, made)),
                    Ok(None) => {}
                    // Whether it was made cannot be told: sent again, it might be made
                    // twice, so it fails here (the next run finds it, or makes it).
                    Err(e) => {
                        return Err(ClientError::Protocol {
                            url: url.to_string(),
                            message: format!(
                                "the answer to {method} was lost, and whether it took effect cannot be told: {e}"
                            ),
                        });
                    }
                }
            }
        }
    }

    /// The status and JSON body of an answer (`status`, `text`), or its error.
    fn answer(
        &self,
        method: &reqwest::Method,
        url: &Url,
        status: u16,
        text: &str,
    ) -> Result<(u16, Value), ClientError> {
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            match serde_json::from_str(text) {
                Ok(v) => v,
                Err(_) if !(200..300).contains(&status) => Value::String(text.to_owned()),
                Err(e) => {
                    return Err(ClientError::Protocol {
                        url: url.to_string(),
                        message: format!("the answer is not JSON: {e}"),
                    });
                }
            }
        };
        if (200..300).contains(&status) {
            return Ok((status, body));
        }
        let detail = match &body {
            Value::Object(o) => o
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or("no detail")
                .to_owned(),
            Value::String(s) => s.chars().take(200).collect(),
            _ => "no detail".to_owned(),
        };
        Err(ClientError::Status {
            method: method.to_string(),
            url: url.to_string(),
            status,
            scim_type: body
                .get("scimType")
                .and_then(Value::as_str)
                .map(str::to_owned),
            detail,
        })
    }

    /// GET of a JSON resource.
    ///
    /// # Errors
    /// As [`ScimClient::send`].
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ClientError> {
        self.send(reqwest::Method::GET, self.url(path, query), None)
            .map(|(_, body)| body)
    }

    /// Every resource of `path` (`/Users`, `/Groups`), page after page: with cursors
    /// (RFC 9865) when `cursors` is true, else by `startIndex`.
    ///
    /// # Errors
    /// As [`ScimClient::send`], and [`ClientError::Protocol`] for a page that is not a
    /// list response, a page answered twice, or a listing that ends before its
    /// `totalResults`: a target read in part would be planned as if whole.
    pub fn list_all(&self, path: &str, cursors: bool) -> Result<Vec<Value>, ClientError> {
        let count = self.options.page_size.max(1).to_string();
        let mut all = Vec::new();
        let mut cursor = String::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let index = (all.len() + 1).to_string();
            let query: [(&str, &str); 2] = if cursors {
                [("count", &count), ("cursor", &cursor)]
            } else {
                [("count", &count), ("startIndex", &index)]
            };
            let url = self.url(path, &query);
            let page = self.get(path, &query)?;
            if page
                .get("schemas")
                .and_then(Value::as_array)
                .is_none_or(|s| !s.iter().any(|v| v == LIST_RESPONSE))
            {
                return Err(ClientError::Protocol {
                    url: url.to_string(),
                    message: "the answer is not a SCIM list response".into(),
                });
            }
            let resources = match page.get("Resources") {
                Some(Value::Array(r)) => r.clone(),
                None | Some(Value::Null) => Vec::new(),
                Some(_) => {
                    return Err(ClientError::Protocol {
                        url: url.to_string(),
                        message: "`Resources` is not an array".into(),
                    });
                }
            };
            let got = resources.len();
            let protocol = |message: String| ClientError::Protocol {
                url: url.to_string(),
                message,
            };
            // A server that does not page as asked hands the same page again: read on, the
            // listing would never end; stopped there, it would miss what follows.
            let ids: Vec<&str> = resources
                .iter()
                .filter_map(|r| r.get("id").and_then(Value::as_str))
                .collect();
            if !ids.is_empty() && ids.iter().all(|id| seen.contains(*id)) {
                return Err(protocol(format!(
                    "the server answered a page read before (after {} resources): it does not page by {}",
                    all.len(),
                    if cursors { "cursor" } else { "startIndex" }
                )));
            }
            seen.extend(ids.into_iter().map(str::to_owned));
            all.extend(resources);
            let total = page
                .get("totalResults")
                .and_then(Value::as_u64)
                .and_then(|t| usize::try_from(t).ok());
            let last = if cursors {
                match page.get("nextCursor").and_then(Value::as_str) {
                    Some(next) if !next.is_empty() && next == cursor => {
                        return Err(protocol("the server answered the same cursor again".into()));
                    }
                    Some(next) if !next.is_empty() && got > 0 => {
                        cursor = next.to_owned();
                        false
                    }
                    _ => true,
                }
            } else {
                got == 0 || total.is_some_and(|t| all.len() >= t)
            };
            if last {
                if let Some(total) = total.filter(|t| all.len() < *t) {
                    return Err(protocol(format!(
                        "the listing ended after {} of the {total} resources it counted",
                        all.len(),
                    )));
                }
                break;
            }
        }
        Ok(all)
    }
}

/// The delay a `Retry-After` header asks for: seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Exponential backoff with jitter: half the doubled delay, plus up to as much again at
/// random, so that many clients do not retry in step.
fn backoff(options: &ClientOptions, attempt: u32) -> Duration {
    let doubled = options
        .base_delay
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(options.max_delay);
    let half = doubled / 2;
    let random = getrandom::u64().unwrap_or(0) % (u64::try_from(half.as_millis()).unwrap_or(0) + 1);
    half + Duration::from_millis(random)
}

/// An error with its sources, which is where reqwest says what actually went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "7".parse().unwrap_or_else(|_| unreachable!()));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        h.insert(
            RETRY_AFTER,
            later.parse().unwrap_or_else(|_| unreachable!()),
        );
        let d = retry_after(&h).unwrap_or_default();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(
            retry_after(&h),
            Some(Duration::ZERO),
            "a past date means now"
        );
        h.insert(
            RETRY_AFTER,
            "soon".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_doubles_within_bounds() {
        let o = ClientOptions::default();
        for attempt in 1..20 {
            let d = backoff(&o, attempt);
            let doubled = o
                .base_delay
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(o.max_delay);
            assert!(d >= doubled / 2 && d <= doubled, "attempt {attempt}: {d:?}");
        }
    }

    /// A server on a loopback port that answers its connections' requests with `answers`,
    /// one per request in order (each raw, the connection closed after it); the requests
    /// it got, as their first lines.
    fn scripted(answers: Vec<String>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| unreachable!("{e}"));
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let told = seen.clone();
        std::thread::spawn(move || {
            for answer in answers {
                let Ok((conn, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(conn);
                let mut line = String::new();
                let mut length = 0;
                let mut first = None;
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    first.get_or_insert_with(|| line.trim().to_owned());
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                if let Ok(mut seen) = told.lock() {
                    seen.push(first.unwrap_or_default());
                }
                let _ = reader.get_mut().write_all(answer.as_bytes());
            }
        });
        (addr, seen)
    }

    fn quick() -> ClientOptions {
        ClientOptions {
            base_delay: Duration::from_millis(1),
            ..ClientOptions::default()
        }
    }

    /// A PATCH whose answer was cut off, refused as `noTarget` when sent again (what it
    /// removed is gone): it was applied. Without an attempt that may have been applied,
    /// the same answer is an error.
    #[test]
    fn a_patch_sent_again_after_a_lost_answer_takes_no_target_as_done() {
        let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"noTarget"}"#;
        let no_target = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/scim+json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let cut = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"id\":".to_owned();
        let patch = json_patch();
        let (addr, seen) = scripted(vec![
            cut.clone(),
            no_target.clone(),
            no_target.clone(),
            cut,
            no_target,
        ]);
        let client = ScimClient::new(&format!("http://{addr}/scim/v2/acme"), "token", quick())
            .unwrap_or_else(|e| unreachable!("{e}"));
        let url = client.url("/Groups/g", &[]);
        let sent = client.send(reqwest::Method::PATCH, url.clone(), Some(&patch));
        assert_eq!(sent, Ok((204, Value::Null)));
        let refused = client.send(reqwest::Method::PATCH, url.clone(), Some(&patch));
        assert_eq!(
            refused.as_ref().err().and_then(ClientError::scim_type),
            Some("noTarget")
        );
        // A PATCH that also replaces is atomic: refused, none of it may have been applied.
        let mut mixed = patch.clone();
        mixed["Operations"]
            .as_array_mut()
            .unwrap_or_else(|| unreachable!())
            .push(serde_json::json!({"op": "replace", "path": "displayName", "value": "x"}));
        let refused = client.send(reqwest::Method::PATCH, url, Some(&mixed));
        assert_eq!(
            refused.as_ref().err().and_then(ClientError::scim_type),
            Some("noTarget")
        );
        assert_eq!(seen.lock().map(|s| s.len()).unwrap_or_default(), 5);
    }

    /// A 500 is retried, but less than a busy server's answers: it may be the server's
    /// answer to this very request.
    #[test]
    fn a_500_that_stays_is_given_up_sooner() {
        let failed = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\
            Connection: close\r\n\r\n";
        let (addr, seen) = scripted(vec![failed.to_owned(); 6]);
        let client = ScimClient::new(&format!("http://{addr}/scim/v2/acme"), "token", quick())
            .unwrap_or_else(|e| unreachable!("{e}"));
        let got = client.get("/Users/u", &[]);
        assert_eq!(got.as_ref().err().and_then(ClientError::status), Some(500));
        assert_eq!(
            seen.lock().map(|s| s.len()).unwrap_or_default(),
            RETRIED_500 as usize
        );
    }

    fn json_patch() -> Value {
        serde_json::json!({"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "members[value eq \"u\"]"}]})
    }

    #[test]
    fn debug_output_keeps_the_token_secret() {
        let c = ScimClient::new(
            "https://h/scim/v2/acme",
            "s3cret-token",
            ClientOptions::default(),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("<secret>"),
            "{shown}"
        );
    }

    #[test]
    fn endpoint_urls_are_checked_and_joined() {
        let t = |u: &str| ScimClient::new(u, "token", ClientOptions::default());
        assert!(matches!(t("ftp://h/scim"), Err(ClientError::Config(_))));
        assert!(matches!(t("not a url"), Err(ClientError::Config(_))));
        assert!(matches!(
            ScimClient::new("http://h/scim", " ", ClientOptions::default()),
            Err(ClientError::Config(_))
        ));
        let clear = |u: &str| t(u).map(|c| c.in_clear()).unwrap_or_default();
        assert!(clear("http://scim.example.com/scim/v2/acme"));
        assert!(!clear("https://scim.example.com/scim/v2/acme"));
        assert!(!clear("http://127.0.0.1:8080/scim/v2/acme"));
        assert!(!clear("http://[::1]:8080/scim/v2/acme"));
        assert!(!clear("http://localhost/scim/v2/acme"));
        let c = t("https://h:8443/scim/v2/acme/").unwrap_or_else(|e| unreachable!("{e}"));
        let url = c.url("/Users", &[("filter", "userName eq \"a b\"")]);
        assert_eq!(
            url.as_str(),
            "https://h:8443/scim/v2/acme/Users?filter=userName+eq+%22a+b%22"
        );
    }
}
