//! The C ABI's per-request overhead: the same SCIM requests through `usersync_service_handle`
//! (with the response's status and body read and the response freed, as a C server does)
//! and through the Rust `Service::handle`, interleaved in one run on one database, printed
//! as a ratio.
//!
//! ```sh
//! cargo run --release -p usersync-benches --bin usersync-ffi-bench          # 1,000 users
//! ```
#![allow(unsafe_code)] // calling the C ABI as C does

use std::ffi::c_char;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use usersync::{
    usersync_header, usersync_response, usersync_response_body, usersync_response_free,
    usersync_response_status, usersync_result, usersync_service, usersync_service_free,
    usersync_service_handle, usersync_service_open,
};
use usersync_core::scim::service::{ScimRequest, Service, issue_token};
use usersync_core::store::sqlite::SqliteStore;
use usersync_core::store::{DirectoryKind, NewDirectory, Store, system_clock};

fn main() {
    let users: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let dir = std::env::temp_dir().join(format!("usersync-ffi-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("bench.db");

    // The data and a token, through the Rust API.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db, system_clock()).expect("store"));
    let directory = store
        .create_directory(NewDirectory::new("acme", DirectoryKind::Scim))
        .expect("directory");
    let (token, _) = issue_token(&*store, &directory).expect("token");
    let rust = Service::new(store);
    let auth = format!("Bearer {token}");
    let mut ids = Vec::with_capacity(users);
    for i in 0..users {
        let body = format!(
            r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"user{i:06}","externalId":"e{i}","emails":[{{"type":"work","value":"user{i}@example.com"}}]}}"#
        );
        let created = rust.handle(
            &ScimRequest::new("POST", "/scim/v2/acme/Users")
                .with_header("Authorization", &auth)
                .with_body(&body),
        );
        assert_eq!(created.status, 201);
        let v: Value = serde_json::from_slice(&created.body).expect("json");
        ids.push(v["id"].as_str().expect("id").to_owned());
    }

    // The same database through the C ABI.
    let mut c: *mut usersync_service = std::ptr::null_mut();
    let path = db.to_str().expect("utf-8 path");
    let opened = usersync_service_open(
        path.as_ptr().cast::<c_char>(),
        path.len(),
        std::ptr::null(),
        0,
        &raw mut c,
    );
    assert_eq!(opened, usersync_result::Ok);

    let requests: Vec<(String, String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            if i % 2 == 0 {
                (format!("/scim/v2/acme/Users/{id}"), String::new())
            } else {
                (
                    "/scim/v2/acme/Users".to_owned(),
                    format!("filter=userName eq \"user{i:06}\""),
                )
            }
        })
        .collect();

    let via_rust = |path: &str, query: &str| {
        let r = rust.handle(
            &ScimRequest::new("GET", path)
                .with_query(query)
                .with_header("Authorization", &auth),
        );
        assert_eq!(r.status, 200);
        std::hint::black_box(r.body.len());
    };
    let via_c = |path: &str, query: &str| {
        let header = usersync_header {
            name: c"Authorization".as_ptr(),
            name_len: 13,
            value: auth.as_ptr().cast::<c_char>(),
            value_len: auth.len(),
        };
        let mut response: *mut usersync_response = std::ptr::null_mut();
        let result = usersync_service_handle(
            c,
            c"GET".as_ptr(),
            3,
            path.as_ptr().cast::<c_char>(),
            path.len(),
            query.as_ptr().cast::<c_char>(),
            query.len(),
            &raw const header,
            1,
            std::ptr::null(),
            0,
            &raw mut response,
        );
        assert_eq!(result, usersync_result::Ok);
        assert_eq!(usersync_response_status(response), 200);
        let mut body: *const u8 = std::ptr::null();
        let mut len = 0usize;
        assert_eq!(
            usersync_response_body(response, &raw mut body, &raw mut len),
            usersync_result::Ok
        );
        std::hint::black_box(len);
        usersync_response_free(response);
    };

    // Warm both, then interleave rounds so that noise falls on both alike.
    for (path, query) in &requests {
        via_rust(path, query);
        via_c(path, query);
    }
    let mut rust_times = Vec::new();
    let mut c_times = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        for (path, query) in &requests {
            let t = Instant::now();
            via_rust(path, query);
            rust_times.push(t.elapsed());
            let t = Instant::now();
            via_c(path, query);
            c_times.push(t.elapsed());
        }
    }
    rust_times.sort();
    c_times.sort();
    let p = |v: &[Duration], q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    let mean = |v: &[Duration]| v.iter().sum::<Duration>().as_secs_f64() * 1e6 / v.len() as f64;
    println!(
        "{} requests each (GET by id and userName eq, alternating), {users} users\n",
        rust_times.len()
    );
    println!(
        "{:<34}{:>10}{:>10}{:>10}",
        "path", "mean µs", "p50 µs", "p99 µs"
    );
    for (name, v) in [
        ("Rust Service::handle", &rust_times),
        ("C usersync_service_handle", &c_times),
    ] {
        println!(
            "{name:<34}{:>10.2}{:>10.2}{:>10.2}",
            mean(v),
            p(v, 0.5),
            p(v, 0.99)
        );
    }
    println!(
        "\nC ABI overhead: {:+.1}% (mean), {:+.1}% (p50)",
        (mean(&c_times) / mean(&rust_times) - 1.0) * 100.0,
        (p(&c_times, 0.5) / p(&rust_times, 0.5) - 1.0) * 100.0
    );
    usersync_service_free(c);
    let _ = std::fs::remove_dir_all(&dir);
}
