//! The identity-provider transcripts of `tests/fixtures/idp/`, replayed against a real
//! `usersync serve` over HTTP, each in a directory of its own.
#![allow(clippy::unwrap_used)] // a failed step should stop the test

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{Server, http, temp_db, usersync};
use serde_json::Value;

/// Replaces every `${name}` with its captured value.
fn substitute(text: &str, captured: &BTreeMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (name, value) in captured {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    out
}

/// Whether `actual` has everything `expected` lists: objects as subsets, arrays element by
/// element with the same length, anything else equal.
fn contains(actual: &Value, expected: &Value, at: &str) -> Result<(), String> {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e.iter().try_for_each(|(k, ev)| match a.get(k) {
            Some(av) => contains(av, ev, &format!("{at}/{k}")),
            None => Err(format!("{at}/{k} is missing")),
        }),
        (Value::Array(a), Value::Array(e)) if a.len() == e.len() => a
            .iter()
            .zip(e)
            .enumerate()
            .try_for_each(|(i, (av, ev))| contains(av, ev, &format!("{at}/{i}"))),
        _ if actual == expected => Ok(()),
        _ => Err(format!("{at} is {actual}, expected {expected}")),
    }
}

fn replay(server: &Server, name: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../tests/fixtures/idp/{name}.json"));
    let transcript: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let extra_query = transcript["query"].as_str().unwrap_or("");
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
    let mut captured = BTreeMap::new();
    for (i, step) in transcript["steps"].as_array().unwrap().iter().enumerate() {
        let note = step["note"].as_str().unwrap_or("");
        let req = &step["request"];
        let mut query = substitute(req["query"].as_str().unwrap_or(""), &captured);
        if !extra_query.is_empty() {
            query = if query.is_empty() {
                extra_query.to_owned()
            } else {
                format!("{query}&{extra_query}")
            };
        }
        let mut target = format!(
            "/scim/v2/{name}{}",
            substitute(req["path"].as_str().unwrap(), &captured)
        );
        if !query.is_empty() {
            target = format!("{target}?{query}");
        }
        let body = req.get("body").map(|b| {
            serde_json::from_str::<Value>(&substitute(&b.to_string(), &captured)).unwrap()
        });
        let (status, got) = http(
            &server.addr,
            req["method"].as_str().unwrap(),
            &target,
            Some(&token),
            body.as_ref(),
        );
        let context = format!("{name} step {i} ({note})");
        assert_eq!(
            u64::from(status),
            step["response"]["status"].as_u64().unwrap(),
            "{context}: {got}"
        );
        if let Some(expected) = step["response"].get("body") {
            let expected: Value =
                serde_json::from_str(&substitute(&expected.to_string(), &captured)).unwrap();
            if let Err(e) = contains(&got, &expected, "") {
                panic!("{context}: {e}\nresponse: {got}");
            }
        }
        for pointer in step["response"]["absent"].as_array().into_iter().flatten() {
            assert!(
                got.pointer(pointer.as_str().unwrap()).is_none(),
                "{context}: {pointer} must be absent: {got}"
            );
        }
        for (var, pointer) in step["capture"].as_object().into_iter().flatten() {
            let value = got
                .pointer(pointer.as_str().unwrap())
                .and_then(Value::as_str)
                .unwrap();
            captured.insert(var.clone(), value.to_owned());
        }
    }
}

fn server_db(server: &Server) -> PathBuf {
    server.db.clone()
}

#[test]
fn identity_provider_transcripts_replay_against_serve() {
    let db = temp_db("idp");
    let server = Server::start(&db);
    let names: Vec<String> =
        std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/idp"))
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
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
