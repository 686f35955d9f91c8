//! An HTTP/1.1 proxy that answers some requests with the errors a busy or failing server
//! gives (429 with `Retry-After`, 503, 500, a lost or cut-off answer), slowly if asked, and
//! forwards the others to a real server: what a client's retries are tested against.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Which requests fail, counting from 1 in the order they arrive, and how answers are
/// changed on the way (a server that pages or lists otherwise than usersync's).
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Every n-th request gets `429 Too Many Requests` with `Retry-After: 1` (0: none).
    pub too_many_every: usize,
    /// Every n-th request (not already a 429) gets `503 Service Unavailable`, no header
    /// (0: none).
    pub unavailable_every: usize,
    /// Every n-th `POST` is forwarded, and its answer replaced by `504 Gateway Timeout`:
    /// a create made whose answer was lost (0: none).
    pub lost_post_answer_every: usize,
    /// Every n-th request (not already refused) gets `500 Internal Server Error` without
    /// being forwarded: a server's passing failure (0: none).
    pub server_error_every: usize,
    /// Every n-th request (not already refused) is forwarded, and its answer cut off half-way
    /// through and the connection closed: acted on, the answer lost on the way (0: none).
    pub cut_answer_every: usize,
    /// How long each request is held before it is answered: a slow server, for a run that
    /// must still be going when a test stops it.
    pub delay: std::time::Duration,
    /// Changes each JSON answer: given the request line (`GET /scim/v2/…/Users?… HTTP/1.1`)
    /// and the body.
    pub rewrite: Option<fn(&str, &mut serde_json::Value)>,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultyProxy {
    /// `host:port` to send requests to.
    pub addr: String,
    requests: Arc<AtomicUsize>,
    faults_given: Arc<AtomicUsize>,
    posts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FaultyProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`).
    ///
    /// # Panics
    /// When no loopback port can be had.
    pub fn start(upstream: &str, faults: Faults) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("its address").to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let faults_given = Arc::new(AtomicUsize::new(0));
        let posts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Counters {
            requests: requests.clone(),
            given: faults_given.clone(),
            posts: posts.clone(),
        };
        let (s, upstream) = (stop.clone(), upstream.to_owned());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (counters, upstream) = (counters.clone(), upstream.clone());
                std::thread::spawn(move || serve(conn, &upstream, faults, &counters));
            }
        });
        Self {
            addr,
            requests,
            faults_given,
            posts,
            stop,
        }
    }

    /// `POST` requests forwarded to the server so far.
    pub fn posts(&self) -> usize {
        self.posts.load(Ordering::SeqCst)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests answered with an error so far.
    pub fn faults(&self) -> usize {
        self.faults_given.load(Ordering::SeqCst)
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

/// What a proxy counts, shared by its connections' threads.
#[derive(Clone)]
struct Counters {
    requests: Arc<AtomicUsize>,
    given: Arc<AtomicUsize>,
    posts: Arc<AtomicUsize>,
}

/// Serves the requests of one connection, one at a time.
fn serve(conn: TcpStream, upstream: &str, faults: Faults, counters: &Counters) {
    let (requests, given) = (&counters.requests, &counters.given);
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    while let Some(request) = read_message(&mut reader) {
        std::thread::sleep(faults.delay);
        let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
        // `is_multiple_of(0)` is false: 0 turns a fault off.
        let fault = if n.is_multiple_of(faults.too_many_every) {
            Some("429 Too Many Requests\r\nRetry-After: 1")
        } else if n.is_multiple_of(faults.unavailable_every) {
            Some("503 Service Unavailable")
        } else if n.is_multiple_of(faults.server_error_every) {
            Some("500 Internal Server Error")
        } else {
            None
        };
        let response = match fault {
            Some(status) => {
                given.fetch_add(1, Ordering::SeqCst);
                let body = format!(
                    r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"{}","detail":"busy"}}"#,
                    &status[..3]
                );
                format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            }
            None => {
                let post = request.starts_with(b"POST ");
                let Some(answer) = forward(upstream, &request) else {
                    return;
                };
                let posted = if post {
                    counters.posts.fetch_add(1, Ordering::SeqCst) + 1
                } else {
                    0
                };
                if post && posted.is_multiple_of(faults.lost_post_answer_every) {
                    given.fetch_add(1, Ordering::SeqCst);
                    b"HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\n\r\n".to_vec()
                } else if n.is_multiple_of(faults.cut_answer_every) {
                    // The head and half the body (half the head when there is no body).
                    given.fetch_add(1, Ordering::SeqCst);
                    let head = answer
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map_or(0, |p| p + 4);
                    let keep = if head < answer.len() {
                        head + (answer.len() - head) / 2
                    } else {
                        answer.len() / 2
                    };
                    let _ = out.write_all(&answer[..keep]);
                    let _ = out.shutdown(Shutdown::Both);
                    return;
                } else {
                    match faults.rewrite {
                        Some(rewrite) => rewritten(&request, answer, rewrite),
                        None => answer,
                    }
                }
            }
        };
        if out.write_all(&response).is_err() {
            return;
        }
    }
    let _ = out.shutdown(Shutdown::Both);
}

/// `response` with its JSON body changed by `rewrite` (others as they are).
fn rewritten(
    request: &[u8],
    response: Vec<u8>,
    rewrite: fn(&str, &mut serde_json::Value),
) -> Vec<u8> {
    let Some(split) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return response;
    };
    let (head, body) = response.split_at(split + 4);
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return response;
    };
    let line = String::from_utf8_lossy(request);
    rewrite(line.lines().next().unwrap_or_default(), &mut json);
    let body = json.to_string();
    let head: String = String::from_utf8_lossy(head)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.to_ascii_lowercase().starts_with("content-length:") {
                format!("Content-Length: {}\r\n", body.len())
            } else {
                format!("{l}\r\n")
            }
        })
        .collect();
    format!("{head}\r\n{body}").into_bytes()
}

/// One request sent upstream on its own connection; the whole answer.
fn forward(upstream: &str, request: &[u8]) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).ok()?;
    up.write_all(request).ok()?;
    read_message(&mut BufReader::new(up))
}

/// One HTTP/1.1 message with a `Content-Length` body (or none), as bytes.
fn read_message(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
        head.extend_from_slice(line.as_bytes());
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    head.extend(body);
    Some(head)
}
