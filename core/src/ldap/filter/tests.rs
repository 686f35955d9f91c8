use proptest::prelude::*;
use serde_json::Value;

use super::*;

fn corpus() -> Value {
    serde_json::from_str(include_str!("../../../../tests/fixtures/ldap_filters.json")).unwrap()
}

#[test]
fn the_corpus_parses_to_its_canonical_form() {
    for case in corpus()["valid"].as_array().unwrap() {
        let text = case["filter"].as_str().unwrap();
        let f = LdapFilter::parse(text).unwrap_or_else(|e| panic!("`{text}`: {e}"));
        let printed = f.to_string();
        assert_eq!(printed, case["canonical"].as_str().unwrap(), "`{text}`");
        assert_eq!(
            LdapFilter::parse(&printed).unwrap(),
            f,
            "`{printed}` reparses"
        );
    }
}

#[test]
fn the_corpus_errors_say_where_and_what() {
    for case in corpus()["invalid"].as_array().unwrap() {
        let text = case["filter"].as_str().unwrap();
        let err = LdapFilter::parse(text).expect_err(text);
        assert_eq!(err.kind(), crate::ErrorKind::InvalidLdapFilter);
        let syntax = err.syntax().unwrap();
        assert_eq!(
            syntax.position(),
            case["position"].as_u64().unwrap() as usize,
            "`{text}`: {err}"
        );
        assert!(
            syntax.message().contains(case["message"].as_str().unwrap()),
            "`{text}`: {err}"
        );
        assert!(syntax.span().end <= text.len(), "`{text}`: span inside");
    }
}

#[test]
fn values_keep_their_bytes() {
    let f = LdapFilter::parse(r"(objectGUID=\4a\b2\00\ff)").unwrap();
    let LdapFilter::Compare { value, .. } = &f else {
        panic!("{f:?}")
    };
    assert_eq!(value, &[0x4a, 0xb2, 0x00, 0xff]);
    let f = LdapFilter::parse("(cn=J*n*e)").unwrap();
    assert_eq!(
        f,
        LdapFilter::Substring {
            attribute: "cn".into(),
            initial: Some(b"J".to_vec()),
            any: vec![b"n".to_vec()],
            last: Some(b"e".to_vec()),
        }
    );
    assert_eq!(
        LdapFilter::parse("(&(cn=a)(|(SN=b)(cn=c))(mail=*))")
            .unwrap()
            .attributes(),
        vec!["cn", "SN", "mail"]
    );
}

#[test]
fn limits_refuse_hostile_input() {
    let deep = format!(
        "{}(cn=a){}",
        "(!".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    let err = LdapFilter::parse(&deep).unwrap_err();
    assert!(err.to_string().contains("nest deeper"), "{err}");
    let ok = format!(
        "{}(cn=a){}",
        "(!".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert!(LdapFilter::parse(&ok).is_ok());
    let long = format!("(cn={})", "a".repeat(MAX_LENGTH));
    assert!(LdapFilter::parse(&long).is_err());
}

#[test]
fn escaped_values_are_literal_in_a_filter() {
    for raw in [
        &b"*"[..],
        b"a)(uid=*",
        b"\\",
        b"\x00\xff",
        "Lučić".as_bytes(),
        b" lead",
    ] {
        let text = format!("(cn={})", escape_value(raw));
        let f = LdapFilter::parse(&text).unwrap();
        assert_eq!(
            f,
            LdapFilter::Compare {
                attribute: "cn".into(),
                op: CompareOp::Equal,
                value: raw.to_vec()
            },
            "{text}"
        );
    }
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-zA-Z0-9 ()*\\\\=~<>:;ćž]{0,8}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..6),
    ]
}

fn nonempty_value() -> impl Strategy<Value = Vec<u8>> {
    value().prop_filter("not empty", |v| !v.is_empty())
}

fn attribute() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z][a-zA-Z0-9-]{0,6}",
        "[a-zA-Z][a-zA-Z0-9]{0,4};[a-z0-9-]{1,4}",
        "(0|[1-9][0-9]{0,3})(\\.(0|[1-9][0-9]{0,3})){1,3}",
    ]
}

fn leaf() -> impl Strategy<Value = LdapFilter> {
    let op = prop::sample::select(vec![
        CompareOp::Equal,
        CompareOp::Approx,
        CompareOp::GreaterOrEqual,
        CompareOp::LessOrEqual,
    ]);
    prop_oneof![
        (attribute(), op, value()).prop_map(|(attribute, op, value)| LdapFilter::Compare {
            attribute,
            op,
            value
        }),
        attribute().prop_map(|attribute| LdapFilter::Present { attribute }),
        (
            attribute(),
            prop::option::of(nonempty_value()),
            prop::collection::vec(nonempty_value(), 0..3),
            prop::option::of(nonempty_value())
        )
            .prop_filter("a substring has a part", |(_, i, a, l)| i.is_some()
                || !a.is_empty()
                || l.is_some())
            .prop_map(|(attribute, initial, any, last)| LdapFilter::Substring {
                attribute,
                initial,
                any,
                last
            }),
        (
            prop::option::of(attribute()),
            any::<bool>(),
            prop::option::of(attribute().prop_filter("no dn", |a| {
                !a.contains(';') && !a.eq_ignore_ascii_case("dn")
            })),
            value()
        )
            .prop_filter("needs an attribute or a rule", |(a, _, r, _)| a.is_some()
                || r.is_some())
            .prop_map(|(attribute, dn_attributes, rule, value)| {
                LdapFilter::Extensible {
                    attribute,
                    dn_attributes,
                    rule,
                    value,
                }
            }),
    ]
}

fn filter() -> impl Strategy<Value = LdapFilter> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(LdapFilter::And),
            prop::collection::vec(inner.clone(), 0..4).prop_map(LdapFilter::Or),
            inner.prop_map(|f| LdapFilter::Not(Box::new(f))),
        ]
    })
}

proptest! {
    #[test]
    fn printing_then_parsing_gives_the_same_filter(f in filter()) {
        let text = f.to_string();
        prop_assert_eq!(LdapFilter::parse(&text).unwrap(), f, "{}", text);
    }

    #[test]
    fn any_text_parses_or_fails_cleanly(text in "[()&|!=*~<>:;a-z0-9.\\\\ ]{0,40}") {
        if let Err(e) = LdapFilter::parse(&text) {
            let span = e.syntax().unwrap().span();
            prop_assert!(span.start <= span.end && span.end <= text.len());
            prop_assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
        }
    }
}
