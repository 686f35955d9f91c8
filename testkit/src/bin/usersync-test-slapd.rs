//! Starts the test slapd for test suites that are not Rust (the Python module's pytest): prints
//! one JSON line with its URLs, CA and accounts, then keeps it running until its standard
//! input closes, and stops it. The harness stays one piece of code for every surface.

use std::io::Read;

use usersync_testkit::{ADMIN_DN, ADMIN_PASSWORD, BASE, SERVICE_DN, SERVICE_PASSWORD, Slapd};

fn main() {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "external".to_owned());
    let slapd = Slapd::start(&name);
    let info = serde_json::json!({
        "url": slapd.url,
        "ldaps_url": slapd.ldaps_url,
        "ca": slapd.certificates.ca,
        "base": BASE,
        "admin_dn": ADMIN_DN,
        "admin_password": ADMIN_PASSWORD,
        "service_dn": SERVICE_DN,
        "service_password": SERVICE_PASSWORD,
        "pid": slapd.pid(),
    });
    println!("{info}");
    // Runs until the test suite closes our input (or exits, which closes it too).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(slapd);
}
