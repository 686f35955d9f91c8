//! Arguments a C caller gets wrong in ways that are not NULL: lengths past any buffer,
//! bytes that are not UTF-8 where HTTP allows them, names that reach another endpoint,
//! sequence numbers past `i64`, and out-parameters on the paths that fail early; and a store
//! broken under a running service.
#![allow(unsafe_code, clippy::unwrap_used)] // calling the C ABI with raw pointers, as C does

use std::ffi::{CStr, c_char};
use std::ptr::{null, null_mut};

use usersync::*;

mod common;
use common::{open, s};

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    let mut len = 0usize;
    usersync_last_error(buf.as_mut_ptr(), buf.len(), &raw mut len);
    // SAFETY: NUL-terminated by `usersync_last_error`.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// `GET /scim/v2/acme/Users` with `headers_len` headers at `headers`, no query, no body.
fn get_users(
    svc: *mut usersync_service,
    headers: *const usersync_header,
    headers_len: usize,
    response: &mut *mut usersync_response,
) -> usersync_result {
    let (get, get_len) = s("GET");
    let (users, users_len) = s("/scim/v2/acme/Users");
    usersync_service_handle(
        svc,
        get,
        get_len,
        users,
        users_len,
        null(),
        0,
        headers,
        headers_len,
        null(),
        0,
        response,
    )
}

/// `(size_t)-1` (SQLite's "up to the NUL") is refused, not read past the buffer.
#[test]
fn lengths_past_any_buffer_are_refused() {
    let opened = open("lengths");
    let svc = opened.service;
    let mut other = null_mut();
    let (path, _) = s("x.db");
    assert_eq!(
        usersync_service_open(path, usize::MAX, null(), 0, &raw mut other),
        usersync_result::InvalidArgument
    );
    assert!(other.is_null());
    assert!(last_error().contains("never -1"), "{}", last_error());
    let header = usersync_header {
        name: path,
        name_len: 1,
        value: path,
        value_len: 1,
    };
    let mut response = null_mut();
    assert_eq!(
        get_users(svc, &raw const header, usize::MAX / 2, &mut response),
        usersync_result::InvalidArgument
    );
}

/// A header that is not UTF-8 (Latin-1 in `User-Agent`, which HTTP allows) is passed over;
/// the request is answered.
#[test]
fn headers_that_are_not_utf8_are_passed_over() {
    let opened = open("latin1");
    let (svc, token) = (opened.service, &opened.token);
    let bearer = format!("Bearer {token}");
    let latin1 = [0xe9_u8];
    let headers = [
        usersync_header {
            name: c"User-Agent".as_ptr(),
            name_len: 10,
            value: latin1.as_ptr().cast(),
            value_len: 1,
        },
        usersync_header {
            name: c"Authorization".as_ptr(),
            name_len: 13,
            value: bearer.as_ptr().cast(),
            value_len: bearer.len(),
        },
    ];
    let mut response = null_mut();
    assert_eq!(
        get_users(svc, headers.as_ptr(), headers.len(), &mut response),
        usersync_result::Ok
    );
    assert_eq!(usersync_response_status(response), 200);
    usersync_response_free(response);
}

/// A store broken under the service answers 500 with a detail that names nothing of the
/// server, and `usersync_response_cause` gives the operator the store's own error.
#[test]
fn a_broken_store_is_a_500_whose_cause_is_for_the_log() {
    let opened = open("broken");
    let bearer = format!("Bearer {}", opened.token);
    let headers = [usersync_header {
        name: c"Authorization".as_ptr(),
        name_len: 13,
        value: bearer.as_ptr().cast(),
        value_len: bearer.len(),
    }];
    rusqlite::Connection::open(opened.db())
        .unwrap()
        .execute_batch("DROP TABLE memberships; DROP TABLE resources;")
        .unwrap();
    let mut response = null_mut();
    assert_eq!(
        get_users(opened.service, headers.as_ptr(), 1, &mut response),
        usersync_result::Ok
    );
    assert_eq!(usersync_response_status(response), 500);
    let (mut body, mut body_len) = (null(), 0);
    usersync_response_body(response, &raw mut body, &raw mut body_len);
    // SAFETY: `body_len` bytes at `body`, alive until the response is freed.
    let body = String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(body, body_len) });
    assert!(!body.contains("no such table"), "{body}");
    let (mut cause, mut cause_len) = (null(), 0);
    assert_eq!(
        usersync_response_cause(response, &raw mut cause, &raw mut cause_len),
        usersync_result::Ok
    );
    // SAFETY: as the body.
    let cause = unsafe { std::slice::from_raw_parts(cause.cast::<u8>(), cause_len) };
    let cause = String::from_utf8_lossy(cause);
    assert!(cause.contains("no such table: resources"), "{cause}");
    usersync_response_free(response);
}

/// A directory name with `/`, `?` or `#` names no directory: it would reach another
/// endpoint (a group read as a user).
#[test]
fn a_directory_name_is_one_path_segment() {
    let opened = open("segments");
    let svc = opened.service;
    let (dir, dir_len) = s("acme/Groups/x?");
    let (id, id_len) = s("x");
    let mut json = null_mut();
    assert_eq!(
        usersync_resource_get(
            svc,
            dir,
            dir_len,
            USERSYNC_KIND_USER,
            id,
            id_len,
            &raw mut json
        ),
        usersync_result::NotFound
    );
    assert!(json.is_null());
}

/// A sequence number past `i64` is past every event: nothing after it, on SQLite too.
#[test]
fn a_sequence_past_i64_is_after_every_event() {
    let opened = open("sequence");
    let svc = opened.service;
    let mut json = null_mut();
    let mut next = 0u64;
    assert_eq!(
        usersync_events_after(svc, u64::MAX, 100, &raw mut json, &raw mut next),
        usersync_result::Ok
    );
    // SAFETY: a NUL-terminated string usersync made.
    let events = unsafe { CStr::from_ptr(json) }.to_str().unwrap().to_owned();
    usersync_string_free(json);
    assert_eq!(events, "[]");
    assert_eq!(next, u64::MAX, "the feed does not move backwards");
}

/// A sync refused before it runs leaves its report NULL: freeing it is always right.
#[test]
fn a_report_not_written_is_null() {
    let opened = open("report");
    let svc = opened.service;
    let (config, config_len) = s("directory = 1");
    let mut report = std::ptr::dangling_mut::<c_char>();
    assert_eq!(
        usersync_sync_run(
            svc,
            config,
            config_len,
            0,
            None,
            null_mut(),
            &raw mut report
        ),
        usersync_result::SyncConfig
    );
    assert!(report.is_null());
    usersync_string_free(report);
}

/// A message cut to the caller's buffer stays UTF-8: cut on a character's start.
#[test]
fn a_cut_error_message_stays_utf8() {
    let opened = open("cut");
    let svc = opened.service;
    let (name, name_len) = s("ééééé");
    let mut n = 0u64;
    let _ = usersync_user_counts(svc, name, name_len, &raw mut n, &raw mut n);
    let mut buf = [0 as c_char; 24];
    let mut len = 0usize;
    usersync_last_error(buf.as_mut_ptr(), buf.len(), &raw mut len);
    assert!(
        len > buf.len(),
        "the message is longer than the buffer: {len}"
    );
    // SAFETY: NUL-terminated by `usersync_last_error`.
    let cut = unsafe { CStr::from_ptr(buf.as_ptr()) };
    assert!(cut.to_str().is_ok(), "{cut:?}");
}
