//! Completions for a filter being typed: what may come at the cursor. The grammar says which
//! kinds of token (the classes the parser expected where the text before the cursor stops);
//! the schema says which attributes, operators and values suit the attribute at hand. Both
//! come from the engine the server runs, so an editor never offers what the server rejects.
//!
//! ```
//! use usersync_core::scim::filter::{ParseOptions, complete};
//! use usersync_core::scim::schema::SchemaRegistry;
//! let registry = SchemaRegistry::core();
//! let users = registry.resource_type("User").expect("built in");
//! let text = r#"emails[ty"#;
//! let found = complete(text, text.len(), users, &ParseOptions::default());
//! assert_eq!(found.replace, 7..9);
//! assert_eq!(found.items[0].text, "type");
//! ```

use std::ops::Range;

use super::ast::CompareOp;
use super::eval::{Scope, compared, refusal, resolve};
use super::lexer::{is_word_byte, is_word_start};
use super::{Expected, ParseOptions, parser};
use crate::scim::schema::{Attribute, AttributeType, ResourceType, Returned};

/// What a completion is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CompletionKind {
    /// An attribute path or sub-attribute name.
    Attribute,
    /// A comparison operator.
    Operator,
    /// A comparison value.
    Value,
    /// `and`, `or`, `not`, or a bracket.
    Keyword,
}

impl CompletionKind {
    /// The stable name of the kind, as the bindings expose it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Attribute => "attribute",
            Self::Operator => "operator",
            Self::Value => "value",
            Self::Keyword => "keyword",
        }
    }
}

/// One thing that may be written at the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Completion {
    /// The text that replaces [`Completions::replace`].
    pub text: String,
    /// What it is.
    pub kind: CompletionKind,
    /// A short description: an attribute's type, what an operator does.
    pub detail: String,
    /// The attribute's description from its schema, where it has one.
    pub documentation: Option<String>,
}

/// What may be written at a cursor, and which part of the input it replaces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Completions {
    /// The bytes a completion replaces: the word (or string) being typed at the cursor, with
    /// the rest of that word after the cursor; empty at the cursor between words.
    pub replace: Range<usize>,
    /// The candidates, attributes in schema order, filtered by what is typed already
    /// (ignoring case).
    pub items: Vec<Completion>,
}

/// The completions at byte `cursor` of `text`, a SCIM filter over `resource_type`. Nothing
/// is offered where the text before the cursor has an error of its own.
pub fn complete(
    text: &str,
    cursor: usize,
    resource_type: &ResourceType,
    options: &ParseOptions,
) -> Completions {
    let mut cursor = cursor.min(text.len());
    while !text.is_char_boundary(cursor) {
        cursor -= 1;
    }
    let prefix = &text[..cursor];
    let (start, end) = match open_string(prefix) {
        Some(quote) => (quote, cursor),
        None => {
            let start = prefix.len()
                - prefix
                    .bytes()
                    .rev()
                    .take_while(|&b| is_word_byte(b))
                    .count();
            if start < cursor && !is_word_start(prefix.as_bytes()[start]) {
                // A number is being typed: nothing to offer.
                return Completions {
                    replace: cursor..cursor,
                    items: Vec::new(),
                };
            }
            let rest = text[cursor..]
                .bytes()
                .take_while(|&b| is_word_byte(b))
                .count();
            (start, cursor + rest)
        }
    };
    let before = &text[..start];
    let (parsed, context) = parser::filter_in_context(before, options);
    let expected = match parsed {
        Ok(_) => Expected::AND | Expected::OR,
        Err(e) if e.position() == before.len() => e.expected(),
        Err(_) => Expected::NOTHING,
    };
    let span_text = |span: super::Span| &before[span.range()];
    let parent = context
        .value_path
        .and_then(|span| resource_type.resolve(span_text(span)))
        .map(|r| r.sub_attribute.unwrap_or(r.attribute));
    // Inside `attr[…]` names are sub-attributes of `attr`; an unknown `attr` offers none.
    let scope = match (context.value_path, parent) {
        (None, _) => Some(Scope::Resource(resource_type)),
        (Some(_), Some(parent)) => Some(Scope::Complex(parent)),
        (Some(_), None) => None,
    };
    let attribute = context.attribute.and_then(|span| {
        let path = parser::attr_path(span_text(span), 0).ok()?;
        resolve(&path, scope?).map(|(_, a)| a)
    });

    let partial = &text[start..cursor];
    let mut items = Vec::new();
    if expected.contains(Expected::ATTRIBUTE)
        && let Some(scope) = scope
    {
        attributes(scope, partial, &mut items);
    }
    if expected.contains(Expected::SUB_ATTRIBUTE)
        && let Some(parent) = parent
    {
        attributes(Scope::Complex(parent), "", &mut items);
    }
    if expected.contains(Expected::OPERATOR) {
        operators(attribute, &mut items);
    }
    if expected.contains(Expected::OPEN_BRACKET)
        && attribute.is_some_and(|a| a.ty == AttributeType::Complex)
    {
        items.push(keyword("[", "a value filter: one value satisfies it all"));
    }
    if expected.contains(Expected::VALUE) {
        values(attribute, &mut items);
    }
    for (class, text, detail) in [
        (Expected::NOT, "not", "negates a filter in parentheses"),
        (Expected::OPEN_PAREN, "(", "groups filters"),
        (Expected::AND, "and", "both must hold"),
        (Expected::OR, "or", "one must hold"),
        (Expected::CLOSE_PAREN, ")", "ends the group"),
        (Expected::CLOSE_BRACKET, "]", "ends the value filter"),
    ] {
        if expected.contains(class) {
            items.push(keyword(text, detail));
        }
    }
    items.retain(|item| {
        starts_with_ignoring_case(&item.text, partial)
            || (item.kind == CompletionKind::Attribute
                && !partial.is_empty()
                && item
                    .text
                    .rsplit_once(':')
                    .is_some_and(|(_, name)| starts_with_ignoring_case(name, partial)))
    });
    Completions {
        replace: start..end,
        items,
    }
}

/// Where an unterminated string starts in `prefix`, if the cursor is inside one.
fn open_string(prefix: &str) -> Option<usize> {
    let mut open = None;
    let mut escaped = false;
    for (i, b) in prefix.bytes().enumerate() {
        match (open, b) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), b'\\') => escaped = true,
            (Some(_), b'"') => open = None,
            (None, b'"') => open = Some(i),
            _ => {}
        }
    }
    open
}

fn starts_with_ignoring_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// The attributes a name being typed (`partial`) in `scope` may become. `name.` lists the
/// sub-attributes of `name`; extension attributes are offered by their full path.
fn attributes(scope: Scope<'_>, partial: &str, out: &mut Vec<Completion>) {
    let filterable = |a: &&Attribute| a.returned != Returned::Never;
    match scope {
        Scope::Complex(parent) => {
            for sub in parent.sub_attributes.iter().filter(filterable) {
                out.push(attribute_item(sub.name.clone(), sub));
            }
        }
        Scope::Resource(rt) => {
            if let Some((head, _)) = partial.rsplit_once('.') {
                if let Some(r) = rt.resolve(head).filter(|r| r.sub_attribute.is_none()) {
                    for sub in r.attribute.sub_attributes.iter().filter(filterable) {
                        out.push(attribute_item(format!("{head}.{}", sub.name), sub));
                    }
                }
                return;
            }
            let core = rt.common_attributes().iter().chain(&rt.schema.attributes);
            for a in core.filter(filterable) {
                out.push(attribute_item(a.name.clone(), a));
            }
            for ext in &rt.extensions {
                for a in ext.schema.attributes.iter().filter(filterable) {
                    out.push(attribute_item(format!("{}:{}", ext.schema.id, a.name), a));
                }
            }
        }
    }
}

fn attribute_item(text: String, a: &Attribute) -> Completion {
    let mut detail = a.ty.as_str().to_owned();
    if a.multi_valued {
        detail.push_str(", multi-valued");
    }
    Completion {
        text,
        kind: CompletionKind::Attribute,
        detail,
        documentation: a.description.clone(),
    }
}

fn keyword(text: &str, detail: &str) -> Completion {
    Completion {
        text: text.to_owned(),
        kind: CompletionKind::Keyword,
        detail: detail.to_owned(),
        documentation: None,
    }
}

/// The operators the compiler accepts for `attribute` (all of them when it is unknown), and
/// `pr`, which applies to any attribute.
fn operators(attribute: Option<&Attribute>, out: &mut Vec<Completion>) {
    const COMPARISONS: [(CompareOp, &str); 9] = [
        (CompareOp::Eq, "equal"),
        (CompareOp::Ne, "not equal"),
        (CompareOp::Co, "contains"),
        (CompareOp::Sw, "starts with"),
        (CompareOp::Ew, "ends with"),
        (CompareOp::Gt, "greater than"),
        (CompareOp::Ge, "greater than or equal"),
        (CompareOp::Lt, "less than"),
        (CompareOp::Le, "less than or equal"),
    ];
    let operator = |text: &str, detail: &str| Completion {
        text: text.to_owned(),
        kind: CompletionKind::Operator,
        detail: detail.to_owned(),
        documentation: None,
    };
    // `None`: unknown attribute; `Some(None)`: a complex attribute without `value`.
    let compared_type = attribute.map(|a| compared(a).map(|c| c.ty));
    for (op, detail) in COMPARISONS {
        let accepted = match compared_type {
            None => true,
            Some(None) => false,
            Some(Some(ty)) => refusal(op, ty).is_none(),
        };
        if accepted {
            out.push(operator(op.as_str(), detail));
        }
    }
    out.push(operator("pr", "has a value"));
}

/// The values worth offering for `attribute`: booleans, and the schema's canonical values.
fn values(attribute: Option<&Attribute>, out: &mut Vec<Completion>) {
    let Some(a) = attribute.and_then(compared) else {
        return;
    };
    let value = |text: String, detail: &str| Completion {
        text,
        kind: CompletionKind::Value,
        detail: detail.to_owned(),
        documentation: None,
    };
    if a.ty == AttributeType::Boolean {
        out.push(value("true".into(), "boolean"));
        out.push(value("false".into(), "boolean"));
    }
    for v in &a.canonical_values {
        // Quoted as the canonical filter writes a string.
        let literal = super::Value::String(v.as_str().into()).to_string();
        out.push(value(literal, "canonical value"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::SchemaRegistry;

    /// The completions at the `|` in `marked`, as (replaced text, candidate texts).
    fn at(marked: &str, resource_type: &str) -> (String, Vec<String>) {
        let cursor = marked.find('|').expect("a cursor mark");
        let text = marked.replacen('|', "", 1);
        let mut registry = SchemaRegistry::core();
        registry
            .add_extension_json(
                "User",
                r#"{"id": "urn:example:badge", "attributes": [
                    {"name": "badgeNumber", "type": "integer"},
                    {"name": "onSite", "type": "boolean"}]}"#,
                false,
            )
            .expect("a valid schema");
        let rt = registry
            .resource_type(resource_type)
            .expect("a resource type");
        let found = complete(&text, cursor, rt, &ParseOptions::default());
        let items = found.items.iter().map(|i| i.text.clone()).collect();
        (text[found.replace].to_owned(), items)
    }

    fn texts(marked: &str) -> Vec<String> {
        at(marked, "User").1
    }

    #[test]
    fn attributes_at_the_start_filtered_by_what_is_typed() {
        let all = texts("|");
        assert_eq!(all[..4], ["id", "externalId", "schemas", "meta"]);
        assert!(all.contains(&"userName".to_owned()));
        assert!(all.contains(&"not".to_owned()) && all.contains(&"(".to_owned()));
        assert!(
            !all.contains(&"password".to_owned()),
            "password is never returned"
        );
        assert_eq!(texts("user|"), ["userName", "userType"]);
        assert_eq!(texts("USERN|"), ["userName"]);
        assert_eq!(
            at("userN|ame eq 1", "User"),
            ("userName".into(), vec!["userName".into()])
        );
    }

    #[test]
    fn sub_attributes_after_a_dot_and_inside_a_value_filter() {
        assert_eq!(
            texts("name.fa|"),
            ["name.familyName"],
            "the parent is kept as typed"
        );
        let inside = texts("emails[|");
        assert!(inside.starts_with(&["value".into(), "display".into(), "type".into()]));
        assert_eq!(texts(r#"emails[type eq "work" and pri|"#), ["primary"]);
        assert!(texts("nosuch[|").iter().all(|t| t == "not" || t == "("));
    }

    #[test]
    fn extension_attributes_by_full_path_found_by_short_name() {
        assert_eq!(texts("badge|"), ["urn:example:badge:badgeNumber"]);
        assert_eq!(
            texts("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.|"),
            [
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName",
            ]
        );
    }

    #[test]
    fn operators_suit_the_attribute_type() {
        assert_eq!(texts("active |"), ["eq", "ne", "pr"]);
        assert_eq!(texts("urn:example:badge:badgeNumber |").len(), 7);
        assert_eq!(texts("userName s|"), ["sw"]);
        let emails = texts("emails |");
        assert!(emails.contains(&"co".to_owned()) && emails.contains(&"[".to_owned()));
        assert_eq!(texts("name |"), ["pr", "["], "complex without `value`");
        assert_eq!(texts("emails[primary |"), ["eq", "ne", "pr"]);
        assert_eq!(
            texts("nosuch |").len(),
            10,
            "an unknown attribute: every operator"
        );
    }

    #[test]
    fn values_booleans_and_canonical_values() {
        assert_eq!(texts("active eq |"), ["true", "false"]);
        assert_eq!(texts("onSite eq F|"), ["false"]);
        assert_eq!(
            at(r#"emails[type eq "wo|"#, "User"),
            (r#""wo"#.into(), vec![r#""work""#.into()])
        );
        assert!(texts("userName eq |").is_empty());
        assert!(
            texts("userName eq 12|").is_empty(),
            "a number is being typed"
        );
    }

    #[test]
    fn keywords_after_a_complete_term() {
        assert_eq!(texts(r#"userName eq "a" |"#), ["and", "or"]);
        assert_eq!(texts(r#"(userName eq "a" |"#), ["and", "or", ")"]);
        assert_eq!(texts(r#"emails[type eq "a" |"#), ["and", "or", "]"]);
        assert_eq!(texts(r#"userName eq "a" a|"#), ["and"]);
    }

    #[test]
    fn nothing_after_an_earlier_error_and_groups_complete_too() {
        assert!(texts(r#"userName eq eq and |"#).is_empty());
        assert_eq!(
            at("|", "Group").1[..5],
            ["id", "externalId", "schemas", "meta", "displayName"]
        );
        assert_eq!(texts("(|").len(), texts("|").len());
    }
}
