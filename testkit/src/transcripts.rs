//! The identity-provider transcripts of `tests/fixtures/idp/`, replayed through any transport:
//! HTTP against `usersync serve`, or the C ABI through a C program. One replayer, so every
//! surface is held to the same steps.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

/// One request of a transcript, ready to send to the directory's endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GET`, `POST`…
    pub method: String,
    /// The full path: `/scim/v2/<directory>/Users/…`.
    pub path: String,
    /// The query string without `?` (unencoded), possibly empty.
    pub query: String,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/idp")
}

/// The names of the transcripts (`entra`, `okta`…).
///
/// # Panics
/// When the fixtures cannot be read.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures/idp")
        .filter_map(|e| {
            let path = e.ok()?.path();
            if path.extension()? != "json" {
                return None;
            }
            Some(path.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

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

/// Replays the transcript `name` against the directory `directory`: `send` makes each
/// request (with the directory's token) and returns the status and the JSON body (`null`
/// when empty).
///
/// # Panics
/// At the first step whose answer differs from the transcript, saying which and how.
pub fn replay(name: &str, directory: &str, send: &mut dyn FnMut(&Request) -> (u16, Value)) {
    let path = fixtures().join(format!("{name}.json"));
    let transcript: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("a transcript"))
            .expect("transcript JSON");
    let extra_query = transcript["query"].as_str().unwrap_or("");
    let mut captured = BTreeMap::new();
    for (i, step) in transcript["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .enumerate()
    {
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
        let request = Request {
            method: req["method"].as_str().expect("method").to_owned(),
            path: format!(
                "/scim/v2/{directory}{}",
                substitute(req["path"].as_str().expect("path"), &captured)
            ),
            query,
            body: req.get("body").map(|b| {
                serde_json::from_str(&substitute(&b.to_string(), &captured)).expect("body JSON")
            }),
        };
        let (status, got) = send(&request);
        let context = format!("{name} step {i} ({note})");
        assert_eq!(
            u64::from(status),
            step["response"]["status"].as_u64().expect("status"),
            "{context}: {got}"
        );
        if let Some(expected) = step["response"].get("body") {
            let expected: Value =
                serde_json::from_str(&substitute(&expected.to_string(), &captured))
                    .expect("expected JSON");
            if let Err(e) = contains(&got, &expected, "") {
                panic!("{context}: {e}\nresponse: {got}");
            }
        }
        for pointer in step["response"]["absent"].as_array().into_iter().flatten() {
            let pointer = pointer.as_str().expect("a JSON pointer");
            assert!(
                got.pointer(pointer).is_none(),
                "{context}: {pointer} must be absent: {got}"
            );
        }
        for (var, pointer) in step["capture"].as_object().into_iter().flatten() {
            let value = got
                .pointer(pointer.as_str().expect("a JSON pointer"))
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{context}: nothing to capture at {pointer}"));
            captured.insert(var.clone(), value.to_owned());
        }
    }
}
