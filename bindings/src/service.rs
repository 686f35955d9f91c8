//! The service handle (a database opened once, shared by every server thread) and the SCIM
//! endpoint through it: requests in, responses out.

use std::collections::HashMap;
use std::ffi::c_char;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use usersync_core::scim::schema::SchemaRegistry;
use usersync_core::scim::service::{ScimRequest, ScimResponse, Service, ServiceConfig, new_ids};
use usersync_core::store::{Store, system_clock};

use crate::{check_length, fail, guard, out, store_error, text, usersync_result, write};

/// A usersync service over one database: the SCIM endpoint, reads for the platform, the
/// directories, and LDAP syncs.
///
/// Made by `usersync_service_open`, released by `usersync_service_free`. Thread-safe: any
/// number of threads may call functions on one handle at once. It must outlive every call
/// made on it and every `usersync_plan` made from it.
pub struct usersync_service {
    pub(crate) store: Arc<dyn Store>,
    /// The endpoint: requests need a directory's token.
    pub(crate) endpoint: Service,
    /// The platform's own reads, authenticated by the platform itself.
    pub(crate) platform: Service,
    /// The stop flag of each sync running on this handle, by directory
    /// (`usersync_sync_cancel`).
    pub(crate) running: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

/// Opens (or creates) the SQLite database at `db_path` (UTF-8, `db_path_len` bytes), or
/// connects to the PostgreSQL database a `postgres://` URL there names (several platform
/// nodes on one user base), and writes a new service handle to `service_out`.
///
/// `config_json` (may be NULL with length 0) is a JSON object of service settings, each
/// optional: `{"max_results": 1000, "max_payload": 1048576, "require_token": true}`.
/// Unknown keys are refused (`USERSYNC_RESULT_INVALID_ARGUMENT`).
///
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`, `INVALID_JSON`, `INVALID_ARGUMENT`,
/// `STORE_BACKEND` (the file cannot be opened or is not a usersync database, or the
/// PostgreSQL server cannot be reached).
#[unsafe(no_mangle)]
pub extern "C" fn usersync_service_open(
    db_path: *const c_char,
    db_path_len: usize,
    config_json: *const c_char,
    config_json_len: usize,
    service_out: *mut *mut usersync_service,
) -> usersync_result {
    guard(|| {
        out(service_out, "service_out")?;
        let path = text(db_path, db_path_len, "db_path")?;
        if path.is_empty() {
            return Err(fail(usersync_result::InvalidArgument, "`db_path` is empty"));
        }
        let config = service_config(text(config_json, config_json_len, "config_json")?)?;
        let store =
            usersync_core::store::open(path, system_clock()).map_err(|e| store_error(&e))?;
        let endpoint = Service::with(
            store.clone(),
            SchemaRegistry::core(),
            config.clone(),
            new_ids(),
        );
        let platform = Service::with(
            store.clone(),
            SchemaRegistry::core(),
            config.with_require_token(false),
            new_ids(),
        );
        let handle = Box::new(usersync_service {
            store,
            endpoint,
            platform,
            running: Mutex::default(),
        });
        write(service_out, Box::into_raw(handle));
        Ok(())
    })
}

impl std::fmt::Debug for usersync_service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("usersync_service").finish_non_exhaustive()
    }
}

/// The settings of `usersync_service_open`'s `config_json`.
fn service_config(json: &str) -> Result<ServiceConfig, usersync_result> {
    let mut config = ServiceConfig::default();
    if json.trim().is_empty() {
        return Ok(config);
    }
    let value: Value = serde_json::from_str(json)
        .map_err(|e| fail(usersync_result::InvalidJson, format!("`config_json`: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(fail(
            usersync_result::InvalidArgument,
            "`config_json` must be a JSON object",
        ));
    };
    let bad = |key: &str, what: &str| {
        fail(
            usersync_result::InvalidArgument,
            format!("`config_json`: `{key}` must be {what}"),
        )
    };
    let positive = |key: &str, v: &Value| {
        v.as_u64()
            .filter(|n| *n > 0)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| bad(key, "a positive integer"))
    };
    for (key, v) in &fields {
        match key.as_str() {
            "max_results" => config = config.with_max_results(positive(key, v)?),
            "max_payload" => config = config.with_max_payload(positive(key, v)?),
            "require_token" => {
                let b = v.as_bool().ok_or_else(|| bad(key, "true or false"))?;
                config = config.with_require_token(b);
            }
            other => {
                return Err(fail(
                    usersync_result::InvalidArgument,
                    format!(
                        "`config_json`: unknown key `{other}` (max_results, max_payload, require_token)"
                    ),
                ));
            }
        }
    }
    Ok(config)
}

/// Closes the database and frees the handle. NULL does nothing. No call on the handle may be
/// running or made afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_service_free(service: *mut usersync_service) {
    crate::free_box(service);
}

/// The handle behind a pointer argument.
pub(crate) fn service<'a>(
    service: *const usersync_service,
) -> Result<&'a usersync_service, usersync_result> {
    if service.is_null() {
        return Err(fail(usersync_result::NullParameter, "`service` is NULL"));
    }
    // SAFETY: non-NULL, made by `usersync_service_open`, and alive for the call (the
    // caller's promise); the handle is only read through shared references.
    Ok(unsafe { &*service })
}

/// One HTTP header, as pointer and length pairs (UTF-8, no NUL needed).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct usersync_header {
    /// The header name; matched ignoring case.
    pub name: *const c_char,
    /// Its length in bytes.
    pub name_len: usize,
    /// The value.
    pub value: *const c_char,
    /// Its length in bytes.
    pub value_len: usize,
}

/// A SCIM response: status, headers and body. Made by `usersync_service_handle`, released by
/// `usersync_response_free`; what its accessors hand out lives as long as it does. A response
/// may be read from any thread, by one thread at a time.
#[derive(Debug)]
pub struct usersync_response {
    inner: ScimResponse,
}

/// Answers one SCIM request, as the platform's HTTP server received it: `method` (`GET`,
/// `POST`…), `path` (`/scim/v2/<directory>/Users/…`), `query` (the raw query string without
/// `?`, may be empty), `headers` (an array of `headers_len` headers; may be NULL when
/// `headers_len` is 0), and `body` (bytes, may be NULL when `body_len` is 0). The response is
/// written to `response_out`.
///
/// Every answer, errors included (400, 401, 404, 409, 412, 413…), is a response: the result
/// is `USERSYNC_RESULT_OK` whenever a response was made. Only bad arguments (`NULL_PARAMETER`,
/// `INVALID_UTF8` in the method, path or query, `INVALID_ARGUMENT` for a length past any
/// buffer such as `(size_t)-1`) or a bug (`PANIC`) fail the call. A header whose name or
/// value is not UTF-8 (HTTP allows Latin-1 bytes, say in `User-Agent`) is passed over: the
/// headers the service reads are ASCII.
///
/// Thread-safe: call it from every server thread at once on one handle.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn usersync_service_handle(
    service: *const usersync_service,
    method: *const c_char,
    method_len: usize,
    path: *const c_char,
    path_len: usize,
    query: *const c_char,
    query_len: usize,
    headers: *const usersync_header,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
    response_out: *mut *mut usersync_response,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(response_out, "response_out")?;
        let mut request = ScimRequest::new(
            text(method, method_len, "method")?,
            text(path, path_len, "path")?,
        );
        request.query = text(query, query_len, "query")?.to_owned();
        if headers_len > 0 {
            if headers.is_null() {
                return Err(fail(usersync_result::NullParameter, "`headers` is NULL"));
            }
            check_length(headers_len, size_of::<usersync_header>(), "headers")?;
            // SAFETY: non-NULL; the caller promises `headers_len` headers, within a slice's
            // span (checked).
            let headers = unsafe { std::slice::from_raw_parts(headers, headers_len) };
            for h in headers {
                let (name, value) = (
                    text(h.name, h.name_len, "header name"),
                    text(h.value, h.value_len, "header value"),
                );
                match (name, value) {
                    (Ok(name), Ok(value)) => {
                        request.headers.push((name.to_owned(), value.to_owned()))
                    }
                    (Err(usersync_result::InvalidUtf8), _)
                    | (_, Err(usersync_result::InvalidUtf8)) => {}
                    (Err(code), _) | (_, Err(code)) => return Err(code),
                }
            }
        }
        if body_len > 0 {
            if body.is_null() {
                return Err(fail(usersync_result::NullParameter, "`body` is NULL"));
            }
            check_length(body_len, 1, "body")?;
            // SAFETY: non-NULL; the caller promises `body_len` readable bytes, within a
            // slice's span (checked).
            request.body = unsafe { std::slice::from_raw_parts(body, body_len) }.to_vec();
        }
        let response = service.endpoint.handle(&request);
        write(
            response_out,
            Box::into_raw(Box::new(usersync_response { inner: response })),
        );
        Ok(())
    })
}

/// The response behind a pointer argument.
fn response<'a>(response: *const usersync_response) -> Option<&'a usersync_response> {
    // SAFETY: NULL or made by `usersync_service_handle` and not yet freed (the caller's
    // promise).
    unsafe { response.as_ref() }
}

/// The response behind a pointer argument that may not be NULL.
fn given<'a>(response: *const usersync_response) -> Result<&'a usersync_response, usersync_result> {
    self::response(response)
        .ok_or_else(|| fail(usersync_result::NullParameter, "`response` is NULL"))
}

/// The HTTP status of `response`; 0 when `response` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_response_status(response: *const usersync_response) -> u16 {
    self::response(response).map_or(0, |r| r.inner.status)
}

/// The body of `response`: `body_out` points to `body_len_out` bytes (not NUL-terminated;
/// JSON), valid until the response is freed. An empty body (204, 304) is NULL and 0.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_response_body(
    response: *const usersync_response,
    body_out: *mut *const u8,
    body_len_out: *mut usize,
) -> usersync_result {
    guard(|| {
        let r = given(response)?;
        out(body_out, "body_out")?;
        out(body_len_out, "body_len_out")?;
        let body = if r.inner.body.is_empty() {
            std::ptr::null()
        } else {
            r.inner.body.as_ptr()
        };
        write(body_out, body);
        write(body_len_out, r.inner.body.len());
        Ok(())
    })
}

/// How many headers `response` has; 0 when `response` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_response_header_count(response: *const usersync_response) -> usize {
    self::response(response).map_or(0, |r| r.inner.headers.len())
}

/// Header number `index` (from 0) of `response`: its name and value as pointer and length
/// (UTF-8, not NUL-terminated), valid until the response is freed. `INVALID_ARGUMENT` for an
/// index past the last header.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_response_header(
    response: *const usersync_response,
    index: usize,
    name_out: *mut *const c_char,
    name_len_out: *mut usize,
    value_out: *mut *const c_char,
    value_len_out: *mut usize,
) -> usersync_result {
    guard(|| {
        let r = given(response)?;
        out(name_out, "name_out")?;
        out(name_len_out, "name_len_out")?;
        out(value_out, "value_out")?;
        out(value_len_out, "value_len_out")?;
        let (name, value) = r.inner.headers.get(index).ok_or_else(|| {
            fail(
                usersync_result::InvalidArgument,
                format!(
                    "header {index} of {}: there is no such header",
                    r.inner.headers.len()
                ),
            )
        })?;
        write(name_out, name.as_ptr().cast::<c_char>());
        write(name_len_out, name.len());
        write(value_out, value.as_ptr().cast::<c_char>());
        write(value_len_out, value.len());
        Ok(())
    })
}

/// Why the service failed, when `response` is a 500 whose cause is known (a store that
/// cannot be read or written): `cause_out` points to `cause_len_out` bytes (UTF-8, not
/// NUL-terminated), valid until the response is freed; NULL and 0 otherwise. For the
/// operator's log only: the body's detail is what the client may see, since a backend's text
/// may name files or hosts.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_response_cause(
    response: *const usersync_response,
    cause_out: *mut *const c_char,
    cause_len_out: *mut usize,
) -> usersync_result {
    guard(|| {
        let r = given(response)?;
        out(cause_out, "cause_out")?;
        out(cause_len_out, "cause_len_out")?;
        let (cause, len) = r.inner.cause.as_deref().map_or((std::ptr::null(), 0), |c| {
            (c.as_ptr().cast::<c_char>(), c.len())
        });
        write(cause_out, cause);
        write(cause_len_out, len);
        Ok(())
    })
}

/// Frees a response. NULL does nothing.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_response_free(response: *mut usersync_response) {
    crate::free_box(response);
}
