//! The identity-provider transcripts of `tests/fixtures/idp/`, replayed against a real
//! `usersync serve` over HTTP, each in a directory of its own.
#![allow(clippy::unwrap_used)] // a failed step should stop the test

mod common;

use std::path::PathBuf;

use common::{Server, http, temp_db, usersync};
use serde_json::Value;
use usersync_testkit::transcripts;

fn replay(server: &Server, name: &str) {
    let db = server_db(server);
    let created: Value = serde_json::from_slice(
        &usersync(&[
            "directory",
            "create",
            name,
            "--json",
            "--db",
            db.to_str().unwrap(),
        ])
        .stdout,
    )
    .unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    transcripts::replay(name, name, &mut |request| {
        let target = if request.query.is_empty() {
            request.path.clone()
        } else {
            format!("{}?{}", request.path, request.query)
        };
        http(
            &server.addr,
            &request.method,
            &target,
            Some(&token),
            request.body.as_ref(),
        )
    });
}

fn server_db(server: &Server) -> PathBuf {
    server.db.clone()
}

#[test]
fn identity_provider_transcripts_replay_against_serve() {
    let db = temp_db("idp");
    let server = Server::start(&db);
    let names = transcripts::names();
    assert!(
        names.len() >= 3,
        "entra, entra-aadoptscim062020 and okta at least"
    );
    for name in names {
        replay(&server, &name);
    }
    assert_eq!(server.stop(), 0);
    std::fs::remove_dir_all(db.parent().unwrap()).unwrap();
}
