//! The shared fixture corpus (`tests/fixtures/`) and property tests for the filter and path
//! parsers and the evaluator.

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::Value as Json;

use super::*;
use crate::ErrorKind;
use crate::scim::path::PatchPath;
use crate::scim::schema::{Schema, SchemaRegistry};

fn fixture(name: &str) -> Json {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn options(case: &Json) -> ParseOptions {
    let mut o = ParseOptions::default();
    if case["strict"] == true {
        o.compat = Compatibility::strict();
    }
    o
}

fn compat(case: &Json) -> Compatibility {
    options(case).compat
}

fn str_field<'a>(case: &'a Json, key: &str) -> &'a str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("case without `{key}`: {case}"))
}

/// Checks an expected error against the case's `error.position` and `error.contains`.
fn check_error(
    err: &crate::Error,
    kind: ErrorKind,
    case: &Json,
    input: &str,
) -> Result<(), String> {
    let want_pos = case["error"]["position"].as_u64().unwrap() as usize;
    let want_text = str_field(&case["error"], "contains");
    let mut problems = Vec::new();
    if err.kind() != kind {
        problems.push(format!("kind {:?}, want {kind:?}", err.kind()));
    }
    if err.position() != Some(want_pos) {
        problems.push(format!("position {:?}, want {want_pos}", err.position()));
    }
    if !err.to_string().contains(want_text) {
        problems.push(format!("message lacks {want_text:?}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{input:?}: {} (got: {err})", problems.join("; ")))
    }
}

#[test]
fn filter_corpus() {
    let corpus = fixture("filters.json");
    let valid = corpus["valid"].as_array().unwrap();
    let invalid = corpus["invalid"].as_array().unwrap();
    assert!(
        valid.len() + invalid.len() >= 200,
        "the corpus keeps at least 200 cases"
    );
    let mut failures = Vec::new();
    for case in valid {
        let input = str_field(case, "filter");
        let canonical = str_field(case, "canonical");
        match Filter::parse_with(input, &options(case)) {
            Err(e) => failures.push(format!("{input:?}: rejected: {e}")),
            Ok(f) => {
                let printed = f.to_string();
                if printed != canonical {
                    failures.push(format!(
                        "{input:?}: printed {printed:?}, want {canonical:?}"
                    ));
                }
                let again = Filter::parse_with(&printed, &options(case)).unwrap();
                if again.clone().without_spans() != f.without_spans() {
                    failures.push(format!("{input:?}: canonical form parses to another tree"));
                }
            }
        }
    }
    for case in invalid {
        let input = str_field(case, "filter");
        match Filter::parse_with(input, &options(case)) {
            Ok(f) => failures.push(format!("{input:?}: accepted as {f}")),
            Err(e) => failures.extend(check_error(&e, ErrorKind::InvalidFilter, case, input).err()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn path_corpus() {
    let corpus = fixture("paths.json");
    let valid = corpus["valid"].as_array().unwrap();
    let invalid = corpus["invalid"].as_array().unwrap();
    assert!(
        valid.len() + invalid.len() >= 50,
        "the corpus keeps at least 50 cases"
    );
    let mut failures = Vec::new();
    for case in valid {
        let input = str_field(case, "path");
        let canonical = str_field(case, "canonical");
        match PatchPath::parse(input) {
            Err(e) => failures.push(format!("{input:?}: rejected: {e}")),
            Ok(p) => {
                if p.to_string() != canonical {
                    failures.push(format!("{input:?}: printed {p}, want {canonical:?}"));
                }
                let again = PatchPath::parse(canonical).unwrap();
                if again.to_string() != canonical
                    || again.filter.map(Filter::without_spans)
                        != p.filter.map(Filter::without_spans)
                {
                    failures.push(format!("{input:?}: canonical form parses to another path"));
                }
            }
        }
    }
    for case in invalid {
        let input = str_field(case, "path");
        match PatchPath::parse(input) {
            Ok(p) => failures.push(format!("{input:?}: accepted as {p}")),
            Err(e) => failures.extend(check_error(&e, ErrorKind::InvalidPath, case, input).err()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The registry and resources of `evaluation.json`.
fn evaluation_world() -> (SchemaRegistry, Json) {
    let corpus = fixture("evaluation.json");
    let mut registry = SchemaRegistry::core();
    for ext in corpus["extensions"].as_array().unwrap() {
        let schema = Schema::from_value(&ext["schema"]).unwrap();
        registry
            .add_extension(str_field(ext, "resourceType"), schema, false)
            .unwrap();
    }
    (registry, corpus)
}

#[test]
fn evaluation_corpus() {
    let (registry, corpus) = evaluation_world();
    let cases = corpus["cases"].as_array().unwrap();
    assert!(cases.len() >= 100, "the corpus keeps at least 100 cases");
    let mut failures = Vec::new();
    for case in cases {
        let input = str_field(case, "filter");
        let rt_name = case["resourceType"].as_str().unwrap_or("User");
        let rt = registry.resource_type(rt_name).unwrap();
        let resources = corpus["resources"][rt_name].as_object().unwrap();
        let filter = match Filter::parse_with(input, &options(case)) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("{input:?}: does not parse: {e}"));
                continue;
            }
        };
        let compiled = filter.compile_with(rt, compat(case));
        if case.get("error").is_some() {
            match compiled {
                Ok(_) => failures.push(format!("{input:?}: compiled, want an error")),
                Err(e) => {
                    failures.extend(check_error(&e, ErrorKind::InvalidFilter, case, input).err())
                }
            }
            continue;
        }
        let compiled = match compiled {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{input:?}: {e}"));
                continue;
            }
        };
        let got: Vec<&str> = resources
            .iter()
            .filter(|(_, r)| compiled.matches(r))
            .map(|(n, _)| n.as_str())
            .collect();
        let mut want: Vec<&str> = case["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        want.sort_unstable();
        if got != want {
            failures.push(format!("{input:?}: matched {got:?}, want {want:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn limits_are_configurable_and_reported() {
    let long = format!("userName eq \"{}\"", "a".repeat(20_000));
    let err = Filter::parse(&long).unwrap_err();
    assert_eq!(err.position(), Some(16 * 1024));
    assert!(
        err.to_string()
            .contains("longer than the limit of 16384 bytes"),
        "{err}"
    );
    let wide = ParseOptions {
        max_length: 1 << 20,
        ..ParseOptions::default()
    };
    assert!(Filter::parse_with(&long, &wide).is_ok());

    let tight = ParseOptions {
        max_depth: 2,
        max_terms: 2,
        ..ParseOptions::default()
    };
    assert!(Filter::parse_with("((a pr))", &tight).is_ok());
    let err = Filter::parse_with("(((a pr)))", &tight).unwrap_err();
    assert_eq!(err.position(), Some(2));
    let err = Filter::parse_with("a pr and b pr and c pr", &tight).unwrap_err();
    assert_eq!(err.position(), Some(18));
    let err = PatchPath::parse_with("emails[((a pr))]", &tight).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidPath);
}

#[test]
fn hostile_nesting_is_an_error_not_a_stack_overflow() {
    for input in [
        "(".repeat(100_000),
        "not (".repeat(50_000),
        "a[".repeat(50_000),
    ] {
        let o = ParseOptions {
            max_length: usize::MAX,
            ..ParseOptions::default()
        };
        assert!(Filter::parse_with(&input, &o).is_err());
    }
}

// ----- property tests -----

fn attr_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("userName".to_owned()),
        Just("emails".to_owned()),
        Just("or".to_owned()),
        Just("and".to_owned()),
        Just("not".to_owned()),
        Just("pr".to_owned()),
        Just("eq".to_owned()),
        Just("true".to_owned()),
        Just("order".to_owned()),
        Just("$ref".to_owned()),
        "[a-zA-Z][a-zA-Z0-9_-]{0,8}",
    ]
}

fn attr_path_text(qualified: bool) -> impl Strategy<Value = String> {
    let urn = prop_oneof![
        Just("urn:ietf:params:scim:schemas:core:2.0:User".to_owned()),
        Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_owned()),
        "urn:[a-z]{1,5}(:[a-z0-9.]{1,5}){0,3}",
    ];
    let urn = if qualified {
        proptest::option::weighted(0.3, urn).boxed()
    } else {
        Just(None).boxed()
    };
    (
        urn,
        attr_name().prop_filter("a bare $ref is a sub-attribute only", |n| n != "$ref"),
        proptest::option::weighted(0.3, attr_name()),
    )
        .prop_map(|(urn, name, sub)| {
            let mut s = urn.map(|u| format!("{u}:")).unwrap_or_default();
            s.push_str(&name);
            if let Some(sub) = sub {
                s.push('.');
                s.push_str(&sub);
            }
            s
        })
}

fn path(text: String) -> AttrPath {
    parser::attr_path(&text, 0).unwrap()
}

fn literal() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(|s| Value::String(s.into())),
        "[ -~]{0,12}".prop_map(|s| Value::String(s.into())),
        any::<i64>().prop_map(Value::Integer),
        any::<f64>()
            .prop_filter_map("finite", Decimal::from_f64)
            .prop_map(Value::Decimal),
        any::<bool>().prop_map(Value::Boolean),
        Just(Value::Null),
    ]
}

fn op() -> impl Strategy<Value = CompareOp> {
    proptest::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ])
}

fn leaf(qualified: bool) -> BoxedStrategy<Filter> {
    prop_oneof![
        3 => (attr_path_text(qualified), op(), literal()).prop_map(|(p, op, value)| {
            Filter::Compare(Comparison { path: path(p), op, value, span: Span::default() })
        }),
        1 => attr_path_text(qualified)
            .prop_map(|p| Filter::Present(Present { path: path(p), span: Span::default() })),
    ]
    .boxed()
}

/// Trees as the parser builds them: n-ary `and`/`or` never directly inside their own kind.
fn logic(inner: BoxedStrategy<Filter>) -> BoxedStrategy<Filter> {
    inner
        .prop_recursive(4, 24, 4, |child| {
            prop_oneof![
                child.clone().prop_map(|f| Filter::Not(Box::new(f))),
                proptest::collection::vec(child.clone(), 2..4).prop_map(|v| flatten(v, true)),
                proptest::collection::vec(child, 2..4).prop_map(|v| flatten(v, false)),
            ]
        })
        .boxed()
}

fn flatten(items: Vec<Filter>, and: bool) -> Filter {
    let mut out = Vec::new();
    for f in items {
        match f {
            Filter::And(v) if and => out.extend(v),
            Filter::Or(v) if !and => out.extend(v),
            other => out.push(other),
        }
    }
    if and {
        Filter::And(out)
    } else {
        Filter::Or(out)
    }
}

fn filter_tree() -> BoxedStrategy<Filter> {
    let value_path = (attr_path_text(true), logic(leaf(false))).prop_filter_map(
        "a value filter names an attribute without sub-attribute",
        |(p, inner)| {
            let p = path(p);
            p.sub_attr().is_none().then(|| {
                Filter::ValuePath(Box::new(ValuePath {
                    path: p,
                    filter: inner,
                    span: Span::default(),
                }))
            })
        },
    );
    logic(prop_oneof![4 => leaf(true), 1 => value_path].boxed())
}

fn filterish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(vec![
            "a", "userName", " ", "eq", "ne", "pr", "and", "or", "not", "(", ")", "[", "]",
            "\"x\"", "\"", "\\", ".", ":", "urn:a:b", "1", "-", "e", "true", "null", "\t", "é",
            "$ref",
        ]),
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn printed_trees_parse_back_to_themselves(tree in filter_tree()) {
        let printed = tree.to_string();
        let parsed = Filter::parse(&printed);
        prop_assert!(parsed.is_ok(), "{printed:?} does not parse: {:?}", parsed.err());
        prop_assert_eq!(parsed.unwrap().without_spans(), tree.without_spans(), "{}", printed);
    }

    #[test]
    fn any_input_parses_or_fails_cleanly(input in any::<String>()) {
        check_round_trip(&input)?;
    }

    #[test]
    fn filter_like_input_parses_or_fails_cleanly(input in filterish()) {
        check_round_trip(&input)?;
        if let Ok(p) = PatchPath::parse(&input) {
            prop_assert_eq!(PatchPath::parse(&p.to_string()).unwrap().to_string(), p.to_string());
        }
    }

    #[test]
    fn compiled_trees_evaluate_without_panicking(tree in filter_tree()) {
        let (registry, corpus) = evaluation_world();
        for rt_name in ["User", "Group"] {
            let rt = registry.resource_type(rt_name).unwrap();
            if let Ok(compiled) = tree.compile(rt) {
                let resources: BTreeMap<String, Json> =
                    serde_json::from_value(corpus["resources"][rt_name].clone()).unwrap();
                for r in resources.values() {
                    let _ = compiled.matches(r);
                }
            }
        }
    }
}

fn check_round_trip(input: &str) -> Result<(), TestCaseError> {
    match Filter::parse(input) {
        Ok(f) => {
            let printed = f.to_string();
            let again = Filter::parse(&printed);
            prop_assert!(again.is_ok(), "{printed:?} (from {input:?}) does not parse");
            let again = again.unwrap();
            prop_assert_eq!(again.to_string(), printed.clone());
            prop_assert_eq!(again.without_spans(), f.without_spans());
        }
        Err(e) => {
            let position = e.position().unwrap();
            prop_assert!(
                position <= input.len(),
                "position {} past the input",
                position
            );
            prop_assert!(!e.to_string().is_empty());
        }
    }
    Ok(())
}
