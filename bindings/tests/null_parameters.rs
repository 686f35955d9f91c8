//! Every pointer of every function, NULL in turn: `USERSYNC_RESULT_NULL_PARAMETER` (or the
//! documented neutral answer), never a crash, and no output written.
#![allow(unsafe_code, clippy::unwrap_used)] // calling the C ABI with raw pointers, as C does

use std::ffi::c_char;
use std::ptr::{null, null_mut};

use usersync::*;

mod common;
use common::s;

const R: usersync_result = usersync_result::NullParameter;

#[test]
fn every_pointer_argument_may_be_null() {
    let opened = common::open("null");
    let svc = opened.service;
    let (acme, acme_len) = s("acme");
    let (scim, scim_len) = s("scim");
    let (get, get_len) = s("GET");
    let (path, path_len) = s("/scim/v2/acme/Users");
    let (filter, filter_len) = s("userName eq \"x\"");
    let mut json: *mut c_char = null_mut();
    let mut n = 0usize;
    let mut u = 0u64;
    let mut i = 0i64;
    let mut out_svc = null_mut::<usersync_service>();
    let mut out_resp = null_mut::<usersync_response>();
    let mut out_plan = null_mut::<usersync_plan>();

    // Strings with a length but no pointer.
    assert_eq!(
        usersync_service_open(null(), 3, null(), 0, &raw mut out_svc),
        R
    );
    assert_eq!(
        usersync_directory_create(svc, null(), 4, scim, scim_len, &raw mut json),
        R
    );
    assert_eq!(
        usersync_directory_create(svc, acme, acme_len, null(), 4, &raw mut json),
        R
    );
    let (options, options_len) = s("{}");
    assert_eq!(
        usersync_directory_create_with(svc, null(), 4, options, options_len, &raw mut json),
        R
    );
    assert_eq!(
        usersync_directory_create_with(svc, acme, acme_len, null(), 2, &raw mut json),
        R
    );
    for nulled in 0..3 {
        let pick = |i: usize, p: *const c_char| if i == nulled { null() } else { p };
        assert_eq!(
            usersync_password_verify(
                svc,
                pick(0, acme),
                acme_len,
                pick(1, acme),
                acme_len,
                pick(2, acme),
                acme_len,
                &raw mut json
            ),
            R
        );
    }
    assert_eq!(
        usersync_resource_get(
            svc,
            null(),
            4,
            USERSYNC_KIND_USER,
            acme,
            acme_len,
            &raw mut json
        ),
        R
    );
    assert_eq!(
        usersync_resource_get(
            svc,
            acme,
            acme_len,
            USERSYNC_KIND_USER,
            null(),
            2,
            &raw mut json
        ),
        R
    );
    assert_eq!(
        usersync_resource_list(
            svc,
            acme,
            acme_len,
            USERSYNC_KIND_USER,
            null(),
            3,
            1,
            1,
            &raw mut json
        ),
        R
    );
    assert_eq!(
        usersync_scim_filter_check(null(), 3, 0, 0, &raw mut json, &raw mut n),
        R
    );
    assert_eq!(
        usersync_ldap_filter_check(null(), 3, &raw mut json, &raw mut n),
        R
    );
    assert_eq!(usersync_sync_plan(svc, null(), 3, 0, &raw mut out_plan), R);
    assert_eq!(usersync_sync_next_run(null(), 3, 0, 0, 0, 0, &raw mut i), R);
    assert_eq!(
        usersync_service_handle(
            svc,
            null(),
            3,
            path,
            path_len,
            null(),
            0,
            null(),
            0,
            null(),
            0,
            &raw mut out_resp
        ),
        R
    );
    assert_eq!(
        usersync_service_handle(
            svc,
            get,
            get_len,
            null(),
            3,
            null(),
            0,
            null(),
            0,
            null(),
            0,
            &raw mut out_resp
        ),
        R
    );
    assert_eq!(
        usersync_service_handle(
            svc,
            get,
            get_len,
            path,
            path_len,
            null(),
            3,
            null(),
            0,
            null(),
            0,
            &raw mut out_resp
        ),
        R
    );
    assert_eq!(
        usersync_service_handle(
            svc,
            get,
            get_len,
            path,
            path_len,
            null(),
            0,
            null(),
            1,
            null(),
            0,
            &raw mut out_resp
        ),
        R
    );
    assert_eq!(
        usersync_service_handle(
            svc,
            get,
            get_len,
            path,
            path_len,
            null(),
            0,
            null(),
            0,
            null(),
            5,
            &raw mut out_resp
        ),
        R
    );
    let header = usersync_header {
        name: null(),
        name_len: 4,
        value: get,
        value_len: get_len,
    };
    assert_eq!(
        usersync_service_handle(
            svc,
            get,
            get_len,
            path,
            path_len,
            null(),
            0,
            &raw const header,
            1,
            null(),
            0,
            &raw mut out_resp
        ),
        R
    );

    // The service handle.
    assert_eq!(
        usersync_directory_create(null(), acme, acme_len, scim, scim_len, &raw mut json),
        R
    );
    assert_eq!(usersync_directory_list(null(), &raw mut json), R);
    assert_eq!(
        usersync_directory_create_with(null(), acme, acme_len, options, options_len, &raw mut json),
        R
    );
    assert_eq!(
        usersync_password_verify(
            null(),
            acme,
            acme_len,
            acme,
            acme_len,
            acme,
            acme_len,
            &raw mut json
        ),
        R
    );
    assert_eq!(
        usersync_directory_token_rotate(null(), acme, acme_len, &raw mut json),
        R
    );
    assert_eq!(
        usersync_directory_token_revoke(null(), acme, acme_len, 1),
        R
    );
    assert_eq!(
        usersync_resource_get(
            null(),
            acme,
            acme_len,
            USERSYNC_KIND_USER,
            acme,
            acme_len,
            &raw mut json
        ),
        R
    );
    assert_eq!(
        usersync_resource_list(
            null(),
            acme,
            acme_len,
            USERSYNC_KIND_USER,
            filter,
            filter_len,
            1,
            1,
            &raw mut json
        ),
        R
    );
    assert_eq!(
        usersync_user_counts(null(), acme, acme_len, &raw mut u, &raw mut u),
        R
    );
    assert_eq!(
        usersync_events_after(null(), 0, 1, &raw mut json, &raw mut u),
        R
    );
    let mut available = false;
    assert_eq!(usersync_events_wait(null(), 0, 0, &raw mut available), R);
    assert_eq!(
        usersync_service_handle(
            null(),
            get,
            get_len,
            path,
            path_len,
            null(),
            0,
            null(),
            0,
            null(),
            0,
            &raw mut out_resp
        ),
        R
    );
    assert_eq!(
        usersync_sync_plan(null(), filter, filter_len, 0, &raw mut out_plan),
        R
    );
    assert_eq!(
        usersync_plan_apply(null(), null_mut(), 0, None, null_mut(), &raw mut json),
        R
    );
    assert_eq!(
        usersync_sync_run(
            null(),
            filter,
            filter_len,
            0,
            None,
            null_mut(),
            &raw mut json
        ),
        R
    );
    assert_eq!(usersync_sync_cancel(null(), acme, acme_len), R);

    // Out-parameters.
    assert_eq!(
        usersync_service_open(acme, acme_len, null(), 0, null_mut()),
        R
    );
    assert_eq!(
        usersync_directory_create(svc, acme, acme_len, scim, scim_len, null_mut()),
        R
    );
    assert_eq!(usersync_directory_list(svc, null_mut()), R);
    assert_eq!(
        usersync_directory_create_with(svc, acme, acme_len, options, options_len, null_mut()),
        R
    );
    assert_eq!(
        usersync_password_verify(
            svc,
            acme,
            acme_len,
            acme,
            acme_len,
            acme,
            acme_len,
            null_mut()
        ),
        R
    );
    assert_eq!(
        usersync_directory_token_rotate(svc, acme, acme_len, null_mut()),
        R
    );
    assert_eq!(
        usersync_resource_get(
            svc,
            acme,
            acme_len,
            USERSYNC_KIND_USER,
            acme,
            acme_len,
            null_mut()
        ),
        R
    );
    assert_eq!(
        usersync_resource_list(
            svc,
            acme,
            acme_len,
            USERSYNC_KIND_USER,
            filter,
            filter_len,
            1,
            1,
            null_mut()
        ),
        R
    );
    assert_eq!(
        usersync_user_counts(svc, acme, acme_len, null_mut(), &raw mut u),
        R
    );
    assert_eq!(
        usersync_user_counts(svc, acme, acme_len, &raw mut u, null_mut()),
        R
    );
    assert_eq!(usersync_events_after(svc, 0, 1, null_mut(), &raw mut u), R);
    assert_eq!(
        usersync_events_after(svc, 0, 1, &raw mut json, null_mut()),
        R
    );
    assert_eq!(usersync_events_wait(svc, 0, 0, null_mut()), R);
    assert_eq!(
        usersync_scim_filter_check(filter, filter_len, 0, 0, null_mut(), &raw mut n),
        R
    );
    assert_eq!(
        usersync_ldap_filter_check(filter, filter_len, null_mut(), &raw mut n),
        R
    );
    assert_eq!(
        usersync_service_handle(
            svc,
            get,
            get_len,
            path,
            path_len,
            null(),
            0,
            null(),
            0,
            null(),
            0,
            null_mut()
        ),
        R
    );
    assert_eq!(
        usersync_sync_plan(svc, filter, filter_len, 0, null_mut()),
        R
    );
    assert_eq!(usersync_plan_json(null(), &raw mut json), R);
    assert_eq!(
        usersync_plan_apply(svc, null_mut(), 0, None, null_mut(), &raw mut json),
        R
    );
    assert_eq!(
        usersync_sync_run(svc, filter, filter_len, 0, None, null_mut(), null_mut()),
        R
    );
    assert_eq!(usersync_sync_cancel(svc, null(), 4), R);
    assert_eq!(
        usersync_sync_next_run(filter, filter_len, 0, 0, 0, 0, null_mut()),
        R
    );
    assert_eq!(usersync_last_error(null_mut(), 0, null_mut()), R);
    assert!(
        json.is_null() && out_svc.is_null() && out_resp.is_null() && out_plan.is_null(),
        "no output is written on failure"
    );

    // A response: its accessors and NULL.
    let mut response = null_mut();
    assert_eq!(
        usersync_service_handle(
            svc,
            get,
            get_len,
            path,
            path_len,
            null(),
            0,
            null(),
            0,
            null(),
            0,
            &raw mut response
        ),
        usersync_result::Ok
    );
    assert_eq!(usersync_response_status(response), 401, "no token");
    let mut body: *const u8 = null();
    let mut text: *const c_char = null();
    assert_eq!(usersync_response_body(response, null_mut(), &raw mut n), R);
    assert_eq!(
        usersync_response_body(response, &raw mut body, null_mut()),
        R
    );
    assert_eq!(usersync_response_cause(response, null_mut(), &raw mut n), R);
    assert_eq!(
        usersync_response_cause(response, &raw mut text, null_mut()),
        R
    );
    assert_eq!(
        usersync_response_cause(null(), &raw mut text, &raw mut n),
        R
    );
    // A 401 has no cause to log.
    assert_eq!(
        usersync_response_cause(response, &raw mut text, &raw mut n),
        usersync_result::Ok
    );
    assert!(text.is_null() && n == 0);
    assert_eq!(
        usersync_response_header(
            null(),
            0,
            &raw mut text,
            &raw mut n,
            &raw mut text,
            &raw mut n
        ),
        R
    );
    assert_eq!(
        usersync_response_header(
            response,
            0,
            null_mut(),
            &raw mut n,
            &raw mut text,
            &raw mut n
        ),
        R
    );
    assert_eq!(
        usersync_response_header(
            response,
            0,
            &raw mut text,
            null_mut(),
            &raw mut text,
            &raw mut n
        ),
        R
    );
    assert_eq!(
        usersync_response_header(
            response,
            0,
            &raw mut text,
            &raw mut n,
            null_mut(),
            &raw mut n
        ),
        R
    );
    assert_eq!(
        usersync_response_header(
            response,
            0,
            &raw mut text,
            &raw mut n,
            &raw mut text,
            null_mut()
        ),
        R
    );
    assert!(body.is_null() && text.is_null());
    assert_eq!(usersync_response_status(null()), 0);
    assert_eq!(usersync_response_header_count(null()), 0);
    usersync_response_free(response);

    // The runs' records.
    assert_eq!(
        usersync_directory_runs(null(), acme, acme_len, 1, &raw mut json),
        R
    );
    assert_eq!(usersync_directory_runs(svc, null(), 4, 1, &raw mut json), R);
    assert_eq!(
        usersync_directory_runs(svc, acme, acme_len, 1, null_mut()),
        R
    );
    assert!(json.is_null());

    // Every `_free` takes NULL.
    usersync_response_free(null_mut());
    usersync_plan_free(null_mut());
    usersync_string_free(null_mut());
    usersync_service_free(null_mut());
}
