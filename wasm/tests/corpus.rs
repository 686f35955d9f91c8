//! The shared fixture corpus through the exported functions, as JavaScript sees them: the
//! same outcomes, messages and positions as the core tests, with positions turned into
//! UTF-16 indices. Runs in Node.js, and in headless Chromium with
//! `WASM_BINDGEN_USE_BROWSER=1` (see wasm/test.sh).
#![cfg(target_arch = "wasm32")]

use serde_json::{Value, json};
use usersync_core::scim::filter::{Compatibility, Filter, ParseOptions};
use usersync_wasm::{
    ScimSchemas, complete_scim_filter, format_ldap_filter, format_scim_filter, parse_scim_filter,
    validate_ldap_filter, validate_scim_filter,
};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

const FILTERS: &str = include_str!("../../tests/fixtures/filters.json");
const LDAP_FILTERS: &str = include_str!("../../tests/fixtures/ldap_filters.json");
const EVALUATION: &str = include_str!("../../tests/fixtures/evaluation.json");

fn corpus(text: &str) -> Value {
    serde_json::from_str(text).expect("the corpus is JSON")
}

/// A JavaScript value as JSON, the way a caller would see its fields.
fn json_of(value: &JsValue) -> Value {
    if value.is_undefined() {
        return Value::Null;
    }
    let text: String = js_sys::JSON::stringify(value)
        .expect("a plain value")
        .into();
    serde_json::from_str(&text).expect("JSON")
}

fn js(value: &Value) -> JsValue {
    js_sys::JSON::parse(&value.to_string()).expect("JSON")
}

fn text(s: &str) -> JsValue {
    JsValue::from_str(s)
}

/// The UTF-16 index of byte `byte` of `s`.
fn utf16(s: &str, byte: u64) -> u64 {
    s[..usize::try_from(byte).expect("small")]
        .encode_utf16()
        .count() as u64
}

/// `json` with every number as a float: JavaScript has one kind of number, so `1.0` comes
/// back from it as `1`.
fn numbers_as_f64(json: Value) -> Value {
    match json {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(items) => items.into_iter().map(numbers_as_f64).collect(),
        Value::Object(members) => members
            .into_iter()
            .map(|(k, v)| (k, numbers_as_f64(v)))
            .collect(),
        other => other,
    }
}

fn options(case: &Value) -> Option<JsValue> {
    (case["strict"] == true).then(|| js(&json!({"strict": true})))
}

/// The properties of a thrown error.
fn thrown(error: &JsValue) -> (String, String, Value) {
    let get = |key: &str| js_sys::Reflect::get(error, &text(key)).expect("a property");
    let name = get("name").as_string().expect("a name");
    let code = get("code").as_string().unwrap_or_default();
    (name, code, json_of(&get("position")))
}

#[wasm_bindgen_test]
fn scim_filter_corpus() {
    let corpus = corpus(FILTERS);
    let mut failures = Vec::new();
    for case in corpus["valid"].as_array().expect("valid cases") {
        let filter = case["filter"].as_str().expect("a filter");
        let answer = json_of(&validate_scim_filter(text(filter), options(case)).expect("answers"));
        if answer != json!({"valid": true, "warnings": []}) {
            failures.push(format!("{filter:?}: {answer}"));
            continue;
        }
        let canonical = format_scim_filter(text(filter), options(case)).expect("formats");
        if canonical != case["canonical"].as_str().expect("canonical") {
            failures.push(format!("{filter:?}: formatted as {canonical:?}"));
        }
        // The tree the bindings built is the core's, positions in UTF-16.
        let tree = json_of(&parse_scim_filter(text(filter), options(case)).expect("parses"));
        let compat = if case["strict"] == true {
            Compatibility::strict()
        } else {
            Compatibility::default()
        };
        let core = Filter::parse_with(filter, &ParseOptions::default().with_compat(compat))
            .expect("parses natively")
            .to_json(&|byte| usize::try_from(utf16(filter, byte as u64)).expect("small"));
        if numbers_as_f64(tree.clone()) != numbers_as_f64(core.clone()) {
            failures.push(format!("{filter:?}: tree {tree}, natively {core}"));
        }
    }
    for case in corpus["invalid"].as_array().expect("invalid cases") {
        let filter = case["filter"].as_str().expect("a filter");
        let answer = json_of(&validate_scim_filter(text(filter), options(case)).expect("answers"));
        let error = &answer["error"];
        let position = utf16(
            filter,
            case["error"]["position"].as_u64().expect("position"),
        );
        let contains = case["error"]["contains"].as_str().expect("contains");
        let ok = answer["valid"] == false
            && error["kind"] == "invalidFilter"
            && error["position"] == position
            && error["message"]
                .as_str()
                .is_some_and(|m| m.contains(contains))
            && !error["message"]
                .as_str()
                .unwrap_or("")
                .contains(" at byte ");
        if !ok {
            failures.push(format!(
                "{filter:?}: {answer}, want position {position} and {contains:?}"
            ));
        }
        // The parse and format functions throw the same error.
        let (name, code, thrown_position) =
            thrown(&parse_scim_filter(text(filter), options(case)).expect_err("throws"));
        if (name.as_str(), code.as_str()) != ("FilterError", "invalidFilter")
            || thrown_position != position
        {
            failures.push(format!(
                "{filter:?}: threw {name} {code} at {thrown_position}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[wasm_bindgen_test]
fn ldap_filter_corpus() {
    let corpus = corpus(LDAP_FILTERS);
    let mut failures = Vec::new();
    for case in corpus["valid"].as_array().expect("valid cases") {
        let filter = case["filter"].as_str().expect("a filter");
        let answer = json_of(&validate_ldap_filter(text(filter)).expect("answers"));
        let canonical = format_ldap_filter(text(filter)).expect("formats");
        if answer["valid"] != true || canonical != case["canonical"].as_str().expect("canonical") {
            failures.push(format!("{filter:?}: {answer}, formatted as {canonical:?}"));
        }
    }
    for case in corpus["invalid"].as_array().expect("invalid cases") {
        let filter = case["filter"].as_str().expect("a filter");
        let answer = json_of(&validate_ldap_filter(text(filter)).expect("answers"));
        let position = utf16(filter, case["position"].as_u64().expect("position"));
        let message = case["message"].as_str().expect("message");
        let error = &answer["error"];
        let ok = answer["valid"] == false
            && error["kind"] == "invalidLdapFilter"
            && error["position"] == position
            && error["message"]
                .as_str()
                .is_some_and(|m| m.contains(message));
        if !ok {
            failures.push(format!(
                "{filter:?}: {answer}, want {position} and {message:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// With a resource type, the schema checks of the evaluation corpus: its binding errors,
/// found against the corpus's own extension schema.
#[wasm_bindgen_test]
fn typed_filters_against_extension_schemas() {
    let corpus = corpus(EVALUATION);
    let mut schemas = ScimSchemas::new();
    for ext in corpus["extensions"].as_array().expect("extensions") {
        schemas
            .add_extension(
                text(ext["resourceType"].as_str().expect("type")),
                js(&ext["schema"]),
                None,
            )
            .expect("a valid schema");
    }
    let mut failures = Vec::new();
    for case in corpus["cases"].as_array().expect("cases") {
        let filter = case["filter"].as_str().expect("a filter");
        let resource_type = case["resourceType"].as_str().unwrap_or("User");
        let mut opts = json!({"resourceType": resource_type});
        if case["strict"] == true {
            opts["strict"] = true.into();
        }
        let answer = json_of(
            &schemas
                .validate_scim_filter(text(filter), Some(js(&opts)))
                .expect("answers"),
        );
        let ok = match case.get("error") {
            None => answer["valid"] == true,
            Some(want) => {
                answer["valid"] == false
                    && answer["error"]["position"]
                        == utf16(filter, want["position"].as_u64().expect("position"))
                    && answer["error"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(want["contains"].as_str().expect("contains")))
            }
        };
        if !ok {
            failures.push(format!("{filter:?} ({resource_type}): {answer}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[wasm_bindgen_test]
fn unknown_attributes_are_warnings_with_utf16_positions() {
    let filter = r#"displayName eq "Zoë 😀" and usrName eq "a""#;
    let answer = json_of(
        &validate_scim_filter(text(filter), Some(js(&json!({"resourceType": "User"}))))
            .expect("answers"),
    );
    assert_eq!(answer["valid"], true);
    let start = filter.find("usrName").expect("present");
    assert_eq!(
        answer["warnings"],
        json!([{
            "message": "`usrName` is not an attribute of User",
            "attribute": "usrName",
            "position": utf16(filter, start as u64),
            "length": 7,
        }])
    );
    // Without a resource type only the syntax is checked.
    let untyped = json_of(&validate_scim_filter(text(filter), None).expect("answers"));
    assert_eq!(untyped, json!({"valid": true, "warnings": []}));
}

#[wasm_bindgen_test]
fn errors_say_what_was_expected() {
    let answer = json_of(&validate_scim_filter(text("userName eq"), None).expect("answers"));
    assert_eq!(
        answer["error"],
        json!({
            "message": "expected a value (a string, number, `true`, `false` or `null`) after `eq`, found the end of the input",
            "kind": "invalidFilter",
            "position": 11,
            "length": 0,
            "expected": ["value"],
        })
    );
    let ldap = json_of(&validate_ldap_filter(text("(&(cn=a)")).expect("answers"));
    assert_eq!(ldap["error"]["expected"], json!([")"]));
    assert_eq!(ldap["error"]["position"], 8);
}

#[wasm_bindgen_test]
fn completions_at_a_utf16_cursor() {
    let filter = r#"displayName eq "😀" and emails[ty"#;
    let cursor = filter.encode_utf16().count();
    let found = json_of(
        &complete_scim_filter(text(filter), (cursor as f64).into(), text("User"), None)
            .expect("answers"),
    );
    assert_eq!(found["from"], cursor - 2);
    assert_eq!(found["to"], cursor);
    assert_eq!(found["items"][0]["text"], "type");
    assert_eq!(found["items"][0]["kind"], "attribute");
    assert_eq!(found["items"][0]["detail"], "string");

    let mut schemas = ScimSchemas::new();
    schemas
        .add_extension(
            text("Group"),
            text(r#"{"id": "urn:example:team", "attributes": [{"name": "costCode"}]}"#),
            Some(false),
        )
        .expect("a valid schema");
    let found = json_of(
        &schemas
            .complete_scim_filter(text("cost"), 4.0.into(), text("Group"), None)
            .expect("answers"),
    );
    assert_eq!(found["items"][0]["text"], "urn:example:team:costCode");
}

#[wasm_bindgen_test]
fn misuse_throws_named_errors_with_codes() {
    let cases = [
        (
            validate_scim_filter(JsValue::from_f64(3.0), None),
            "invalidArgument",
        ),
        (
            validate_scim_filter(text("a pr"), Some(text("User"))),
            "invalidArgument",
        ),
        (
            validate_scim_filter(text("a pr"), Some(js(&json!({"resourceType": "Device"})))),
            "unknownResourceType",
        ),
        (
            validate_scim_filter(text("a pr"), Some(js(&json!({"strict": "yes"})))),
            "invalidArgument",
        ),
        (
            complete_scim_filter(text("a"), 2.0.into(), text("User"), None),
            "invalidArgument",
        ),
        (
            complete_scim_filter(text("a"), 0.5.into(), text("User"), None),
            "invalidArgument",
        ),
        (validate_ldap_filter(JsValue::NULL), "invalidArgument"),
    ];
    for (i, (result, code)) in cases.into_iter().enumerate() {
        let error = result.expect_err("misuse throws");
        assert!(
            error.is_instance_of::<js_sys::Error>(),
            "case {i}: an Error object"
        );
        let (name, got, _) = thrown(&error);
        assert_eq!((i, name.as_str(), got.as_str()), (i, "UsersyncError", code));
    }
    let mut schemas = ScimSchemas::new();
    for (schema, message) in [
        (
            text(r#"{"id": "urn:x"}"#),
            "invalid schema: schema: `attributes` is missing",
        ),
        (text(r#"{"id": "urn:x", "#), "malformed schema JSON: "),
        // Nested ten thousand deep: refused at the second level, never walked.
        (
            text(&format!(
                r#"{{"id": "urn:x:y", "attributes": [{}{}]}}"#,
                r#"{"name": "a", "type": "complex", "subAttributes": ["#.repeat(10_000),
                "]}".repeat(10_000)
            )),
            "invalid schema: attribute `a.a`: a sub-attribute cannot be complex",
        ),
        (
            js(&json!({"id": "urn:x:y", "attributes": [{"name": "a", "multiValued": 1}]})),
            "invalid schema: attribute `a`: `multiValued` must be `true` or `false`",
        ),
        (
            js(
                &json!({"id": "urn:x:y", "attributes": [{"name": "a", "type": "string"}], "extra": 1}),
            ),
            "invalid schema: schema: unknown field `extra`",
        ),
    ] {
        let error = schemas
            .add_extension(text("User"), schema, None)
            .expect_err("an invalid schema");
        let message_of = js_sys::Reflect::get(&error, &text("message")).expect("a message");
        let got = message_of.as_string().expect("text");
        assert_eq!(thrown(&error).1, "invalidSchema", "{got}");
        assert!(got.starts_with(message), "{got}");
    }
    assert_eq!(schemas.resource_types().len(), 2);
}
