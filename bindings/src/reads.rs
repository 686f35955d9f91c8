//! What the platform reads for itself: users and groups as SCIM JSON, counts, and the change
//! feed. These calls need no token: the platform authenticates its own callers.

use std::ffi::c_char;

use serde_json::Value;
use usersync_core::scim::service::ScimRequest;
use usersync_core::store::{Kind, event_feed};

use crate::service::{service, usersync_service};
use crate::{c_string, fail, guard, out, store_error, text, usersync_result, write};

/// `kind` argument: a user.
pub const USERSYNC_KIND_USER: u32 = 1;
/// `kind` argument: a group.
pub const USERSYNC_KIND_GROUP: u32 = 2;

fn collection(kind: u32) -> Result<&'static str, usersync_result> {
    match kind {
        USERSYNC_KIND_USER => Ok(Kind::User.collection()),
        USERSYNC_KIND_GROUP => Ok(Kind::Group.collection()),
        other => Err(fail(
            usersync_result::InvalidArgument,
            format!("`kind` {other} is neither USERSYNC_KIND_USER (1) nor USERSYNC_KIND_GROUP (2)"),
        )),
    }
}

/// Runs a GET through the platform's service and returns the JSON body of a 200.
fn get_json(service: &usersync_service, request: &ScimRequest) -> Result<String, usersync_result> {
    let response = service.platform.handle(request);
    let body = String::from_utf8_lossy(&response.body).into_owned();
    if response.status == 200 {
        return Ok(body);
    }
    let error: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let detail = error["detail"].as_str().unwrap_or("no detail").to_owned();
    let code = match (response.status, error["scimType"].as_str()) {
        (404, _) => usersync_result::NotFound,
        (400, Some("invalidFilter")) => usersync_result::InvalidFilter,
        (400, _) => usersync_result::InvalidArgument,
        _ => usersync_result::StoreBackend,
    };
    Err(fail(code, detail))
}

/// The user or group `id` of `directory` as SCIM JSON (as a GET of it answers), written to
/// `json_out`; free it with `usersync_string_free`. `kind` is `USERSYNC_KIND_USER` or
/// `USERSYNC_KIND_GROUP`.
///
/// Errors: `NOT_FOUND` (no such directory or resource), `INVALID_ARGUMENT`, and the usual
/// argument checks.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_resource_get(
    service: *const usersync_service,
    directory: *const c_char,
    directory_len: usize,
    kind: u32,
    id: *const c_char,
    id_len: usize,
    json_out: *mut *mut c_char,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(json_out, "json_out")?;
        let directory = directory_name(text(directory, directory_len, "directory")?)?;
        let id = text(id, id_len, "id")?;
        if id.is_empty() || id.contains(['/', '?', '#']) {
            return Err(fail(
                usersync_result::InvalidArgument,
                "`id` must be a resource id",
            ));
        }
        let path = format!("/scim/v2/{directory}/{}/{id}", collection(kind)?);
        let json = get_json(service, &ScimRequest::new("GET", &path))?;
        write(json_out, c_string(json)?);
        Ok(())
    })
}

/// A page of the users or groups of `directory` that match `filter` (a SCIM filter; NULL or
/// empty for all), as a SCIM ListResponse JSON written to `json_out` (free it with
/// `usersync_string_free`). `start_index` counts from 1 (0 is taken as 1); `count` is the
/// page size (0: the service's maximum).
///
/// Errors: `INVALID_FILTER` (with the message naming the position), `NOT_FOUND` (no such
/// directory), `INVALID_ARGUMENT`, and the usual argument checks.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn usersync_resource_list(
    service: *const usersync_service,
    directory: *const c_char,
    directory_len: usize,
    kind: u32,
    filter: *const c_char,
    filter_len: usize,
    start_index: u64,
    count: u64,
    json_out: *mut *mut c_char,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(json_out, "json_out")?;
        let directory = directory_name(text(directory, directory_len, "directory")?)?;
        let filter = text(filter, filter_len, "filter")?;
        let path = format!("/scim/v2/{directory}/{}", collection(kind)?);
        let mut request = ScimRequest::new("GET", &path)
            .with_param("startIndex", &start_index.max(1).to_string());
        if count > 0 {
            request = request.with_param("count", &count.to_string());
        }
        if !filter.is_empty() {
            request = request.with_param("filter", filter);
        }
        let json = get_json(service, &request)?;
        write(json_out, c_string(json)?);
        Ok(())
    })
}

/// The active (licensed) and inactive user counts of `directory`.
///
/// Errors: `NOT_FOUND` (no such directory), `STORE_BACKEND`, and the usual argument checks.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_user_counts(
    service: *const usersync_service,
    directory: *const c_char,
    directory_len: usize,
    active_out: *mut u64,
    inactive_out: *mut u64,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(active_out, "active_out")?;
        out(inactive_out, "inactive_out")?;
        let d = crate::directories::find(service, text(directory, directory_len, "directory")?)?;
        let counts = service
            .store
            .user_counts(d.id)
            .map_err(|e| store_error(&e))?;
        write(active_out, counts.active);
        write(inactive_out, counts.inactive);
        Ok(())
    })
}

/// Up to `limit` change-feed events after sequence number `after` (0: from the start), as a
/// JSON array written to `json_out` (free it with `usersync_string_free`):
/// `[{"seq": 7, "directory": "acme", "type": "User", "id": "…", "event": "updated",
/// "version": 3, "time": "2026-11-28T16:42:08Z"}]`, in sequence order. `next_seq_out`
/// receives the sequence to pass next time (the last event's, or `after` when there is
/// none). Events are never skipped: one committed late appears after those before it.
///
/// Errors: `INVALID_ARGUMENT` for a `limit` of 0, `STORE_BACKEND`, and the usual checks.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_events_after(
    service: *const usersync_service,
    after: u64,
    limit: u64,
    json_out: *mut *mut c_char,
    next_seq_out: *mut u64,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(json_out, "json_out")?;
        out(next_seq_out, "next_seq_out")?;
        let limit = usize::try_from(limit)
            .ok()
            .filter(|l| *l > 0)
            .ok_or_else(|| {
                fail(
                    usersync_result::InvalidArgument,
                    "`limit` must be at least 1",
                )
            })?;
        let list =
            event_feed(&*service.store, after, limit.min(10_000)).map_err(|e| store_error(&e))?;
        let next = list.last().and_then(|e| e["seq"].as_u64()).unwrap_or(after);
        let json = c_string(Value::Array(list).to_string())?;
        write(json_out, json);
        write(next_seq_out, next);
        Ok(())
    })
}

/// Waits until the change feed has an event after sequence number `after`, or `timeout_ms`
/// milliseconds pass; `available_out` receives whether it has one. Follow the feed with
/// this and `usersync_events_after` instead of polling: on PostgreSQL the wait ends as the
/// writing transaction commits, on any node (LISTEN/NOTIFY); on SQLite it checks every
/// 50 ms. Blocks the calling thread: call it from a worker thread.
///
/// Errors: `STORE_BACKEND`, and the usual checks.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_events_wait(
    service: *const usersync_service,
    after: u64,
    timeout_ms: u32,
    available_out: *mut bool,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(available_out, "available_out")?;
        let available = service
            .store
            .wait_for_events(
                after,
                std::time::Duration::from_millis(u64::from(timeout_ms)),
            )
            .map_err(|e| store_error(&e))?;
        write(available_out, available);
        Ok(())
    })
}

/// `name` as the one path segment a directory's name is: with `/`, `?` or `#` it would
/// reach another endpoint of the directory (a group read as a user, one user as a list).
fn directory_name(name: &str) -> Result<&str, usersync_result> {
    if name.contains(['/', '?', '#']) {
        return Err(fail(
            usersync_result::NotFound,
            format!("no directory `{name}`"),
        ));
    }
    Ok(name)
}
