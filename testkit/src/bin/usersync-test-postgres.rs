//! Starts a private PostgreSQL server for test suites that are not Rust (the Python module's
//! pytest): prints one JSON line with the URL of a fresh database, then keeps the server
//! running until its standard input closes, and stops it. Same harness as the Rust tests.

use std::io::Read;

use usersync_testkit::postgres::Postgres;

fn main() {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "external".to_owned());
    let server = Postgres::start(&name);
    let url = server.create_database("usersync");
    println!("{}", serde_json::json!({ "url": url, "pid": server.pid() }));
    // Runs until the test suite closes our input (or exits, which closes it too).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(server);
}
