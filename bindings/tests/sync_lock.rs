//! One sync per directory at a time through the C ABI, on a PostgreSQL store that other
//! nodes share: while another process holds the directory's sync lock,
//! `usersync_plan_apply` answers `SYNC_BUSY`, applies nothing and keeps the plan.
#![allow(unsafe_code, clippy::unwrap_used)] // calling the C ABI with raw pointers, as C does

use std::ffi::{CStr, c_char};
use std::ptr::{null, null_mut};

use usersync::*;
use usersync_core::store::system_clock;
use usersync_testkit::{BASE, SERVICE_DN, SERVICE_PASSWORD, Slapd};

fn s(text: &str) -> (*const c_char, usize) {
    (text.as_ptr().cast(), text.len())
}

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    let mut len = 0;
    usersync_last_error(buf.as_mut_ptr(), buf.len(), &raw mut len);
    // SAFETY: always NUL-terminated within `buf`.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn an_apply_waits_for_the_sync_another_node_runs() {
    let pg = usersync_testkit::postgres::Postgres::start("c-lock");
    let url = pg.create_database("lock");
    let slapd = Slapd::start("c-lock");
    slapd.add(&format!(
        "dn: uid=ann,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: ann\ncn: ann\nsn: ann\n"
    ));
    let dir = std::env::temp_dir().join(format!("usersync-c-lock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("password"), SERVICE_PASSWORD).unwrap();
    let config = format!(
        "directory = \"corp\"\n[connection]\nurls = [\"{}\"]\ntls = \"none\"\nbind_dn = \"{SERVICE_DN}\"\n\
         bind_password_file = \"{}\"\n[users]\nbase = \"ou=people,{BASE}\"\n",
        slapd.url,
        dir.join("password").display()
    );

    let mut svc = null_mut();
    let (p, n) = s(&url);
    assert_eq!(
        usersync_service_open(p, n, null(), 0, &raw mut svc),
        usersync_result::Ok,
        "{}",
        last_error()
    );
    let mut plan = null_mut();
    let (c, n) = s(&config);
    assert_eq!(
        usersync_sync_plan(svc, c, n, 0, &raw mut plan),
        usersync_result::Ok,
        "{}",
        last_error()
    );

    // Another node is syncing `corp`.
    let other = usersync_core::store::open(&url, system_clock()).unwrap();
    let held = other.try_lock_sync("corp").unwrap().unwrap();
    let mut report = null_mut();
    assert_eq!(
        usersync_plan_apply(svc, plan, 0, None, null_mut(), &raw mut report),
        usersync_result::SyncBusy
    );
    assert!(report.is_null(), "no run, no report");
    assert!(last_error().contains("another sync of `corp` is running"));
    assert!(
        other.directory("corp").unwrap().is_none(),
        "nothing applied"
    );

    // Once it is done, the same plan applies.
    drop(held);
    assert_eq!(
        usersync_plan_apply(svc, plan, 0, None, null_mut(), &raw mut report),
        usersync_result::Ok,
        "{}",
        last_error()
    );
    usersync_string_free(report);
    let (mut active, mut inactive) = (0, 0);
    let (name, n) = s("corp");
    assert_eq!(
        usersync_user_counts(svc, name, n, &raw mut active, &raw mut inactive),
        usersync_result::Ok
    );
    assert_eq!((active, inactive), (1, 0));
    usersync_plan_free(plan);
    usersync_service_free(svc);
    std::fs::remove_dir_all(&dir).unwrap();
}
