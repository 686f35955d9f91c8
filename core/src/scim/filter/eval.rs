//! Filters bound to a resource type and evaluated against resource JSON. Compiling resolves
//! every attribute once and prepares every literal (case fold, dateTime), so matching many
//! resources does no schema lookups and no literal work. The semantics are described in the
//! module documentation of [`super`].

use std::cmp::Ordering;

use serde_json::Value as Json;

use super::ast::{AttrPath, CompareOp, Comparison, Filter, Present, Value};
use super::{Compatibility, SyntaxError};
use crate::Error;
use crate::scim::datetime::DateTime;
use crate::scim::schema::{Attribute, AttributeType, ResourceType};
use crate::scim::text::{self, TextOp};

/// A filter resolved against a resource type, ready to test resources.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    root: Node,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A term on an attribute the resource type does not define.
    Never,
    Compare {
        target: Target,
        op: CompareOp,
        literal: Literal,
    },
    Present(Target),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    ValuePath {
        target: Target,
        inner: Box<Node>,
    },
}

/// Where an attribute's values are in resource JSON: `[container.]name[.sub]`.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The extension URN the attribute lives under, for extension attributes.
    pub(crate) container: Option<Box<str>>,
    pub(crate) name: Box<str>,
    pub(crate) sub: Option<Box<str>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Literal {
    /// Compared exactly, or against a value's case fold when `folded`.
    Text {
        needle: Box<str>,
        folded: bool,
    },
    Boolean(bool),
    Integer(i64),
    Decimal(f64),
    DateTime(DateTime),
}

/// Which attributes a path may name: a resource type's, or one complex attribute's
/// sub-attributes (inside `attr[…]`).
#[derive(Clone, Copy)]
pub(crate) enum Scope<'a> {
    Resource(&'a ResourceType),
    Complex(&'a Attribute),
}

impl CompiledFilter {
    pub(super) fn new(
        filter: &Filter,
        resource_type: &ResourceType,
        compat: Compatibility,
    ) -> Result<Self, Error> {
        let root = compile::<true>(filter, Scope::Resource(resource_type), compat)
            .map_err(Error::Filter)?;
        Ok(Self { root })
    }

    /// The resolved tree, for backends that translate filters (SQL).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))] // used by the SQL translation
    pub(crate) fn root(&self) -> &Node {
        &self.root
    }

    /// Whether `resource` (a SCIM resource as JSON) satisfies the filter.
    pub fn matches(&self, resource: &Json) -> bool {
        eval(&self.root, resource)
    }
}

impl Filter {
    /// The attribute paths this filter names that `resource_type` does not define, in the
    /// order they appear. Such a term matches nothing, which is allowed, but is usually a
    /// typing mistake an editor should point out.
    ///
    /// ```
    /// use usersync_core::scim::filter::Filter;
    /// use usersync_core::scim::schema::SchemaRegistry;
    /// let registry = SchemaRegistry::core();
    /// let users = registry.resource_type("User").expect("built in");
    /// let f = Filter::parse(r#"usrName eq "a" or emails[kind eq "work"]"#)?;
    /// let unknown: Vec<_> = f.undefined_attributes(users).iter().map(|p| p.as_str()).collect();
    /// assert_eq!(unknown, ["usrName", "kind"]);
    /// # Ok::<(), usersync_core::Error>(())
    /// ```
    pub fn undefined_attributes(&self, resource_type: &ResourceType) -> Vec<&AttrPath> {
        fn walk<'f>(f: &'f Filter, scope: Scope<'_>, out: &mut Vec<&'f AttrPath>) {
            match f {
                Filter::Compare(Comparison { path, .. })
                | Filter::Present(Present { path, .. }) => {
                    if resolve(path, scope).is_none() {
                        out.push(path);
                    }
                }
                Filter::Not(inner) => walk(inner, scope, out),
                Filter::And(items) | Filter::Or(items) => {
                    items.iter().for_each(|i| walk(i, scope, out));
                }
                Filter::ValuePath(vp) => match resolve(&vp.path, scope) {
                    Some((_, attr)) if attr.ty == AttributeType::Complex => {
                        walk(&vp.filter, Scope::Complex(attr), out);
                    }
                    Some(_) => {}
                    None => out.push(&vp.path),
                },
            }
        }
        let mut out = Vec::new();
        walk(self, Scope::Resource(resource_type), &mut out);
        out
    }
}

// Validation without evaluation: what only validates (the browser build) then does not carry
// the Unicode normalisation tables that folding literals needs.
impl Filter {
    /// Whether this filter can apply to `resource_type`: the same checks, and the same
    /// errors, as [`Filter::compile_with`].
    ///
    /// # Errors
    /// As for [`Filter::compile`].
    ///
    /// ```
    /// use usersync_core::scim::filter::{Compatibility, Filter};
    /// use usersync_core::scim::schema::SchemaRegistry;
    /// let registry = SchemaRegistry::core();
    /// let users = registry.resource_type("User").expect("built in");
    /// assert!(Filter::parse("active gt true")?.check(users, Compatibility::default()).is_err());
    /// # Ok::<(), usersync_core::Error>(())
    /// ```
    pub fn check(&self, resource_type: &ResourceType, compat: Compatibility) -> Result<(), Error> {
        compile::<false>(self, Scope::Resource(resource_type), compat)
            .map(drop)
            .map_err(Error::Filter)
    }
}

/// Resolves and type-checks `f`; with `PREPARE`, also prepares its literals for evaluation.
fn compile<const PREPARE: bool>(
    f: &Filter,
    scope: Scope<'_>,
    compat: Compatibility,
) -> Result<Node, SyntaxError> {
    Ok(match f {
        Filter::Compare(c) => compile_compare::<PREPARE>(c, scope, compat)?,
        Filter::Present(p) => match resolve(&p.path, scope) {
            Some((target, _)) => Node::Present(target),
            None => Node::Never,
        },
        Filter::Not(inner) => Node::Not(Box::new(compile::<PREPARE>(inner, scope, compat)?)),
        Filter::And(items) => Node::And(
            items
                .iter()
                .map(|i| compile::<PREPARE>(i, scope, compat))
                .collect::<Result<_, _>>()?,
        ),
        Filter::Or(items) => Node::Or(
            items
                .iter()
                .map(|i| compile::<PREPARE>(i, scope, compat))
                .collect::<Result<_, _>>()?,
        ),
        Filter::ValuePath(vp) => match resolve(&vp.path, scope) {
            None => Node::Never,
            Some((target, attr)) if attr.ty == AttributeType::Complex => Node::ValuePath {
                target,
                inner: Box::new(compile::<PREPARE>(
                    &vp.filter,
                    Scope::Complex(attr),
                    compat,
                )?),
            },
            Some(_) => {
                let span = vp.path.span().range();
                return Err(SyntaxError::new(
                    span.start,
                    span.end,
                    format!(
                        "`{}` is not a complex attribute, so it takes no value filter",
                        vp.path
                    ),
                ));
            }
        },
    })
}

/// The JSON location of `path` and the attribute it ends at; `None` when undefined.
pub(crate) fn resolve<'a>(path: &AttrPath, scope: Scope<'a>) -> Option<(Target, &'a Attribute)> {
    match scope {
        Scope::Resource(rt) => {
            let r = rt.resolve_path(path)?;
            let target = Target {
                container: r.in_extension.then(|| r.schema.id.as_str().into()),
                name: r.attribute.name.as_str().into(),
                sub: r.sub_attribute.map(|s| s.name.as_str().into()),
            };
            Some((target, r.sub_attribute.unwrap_or(r.attribute)))
        }
        Scope::Complex(parent) => {
            if path.urn().is_some() || path.sub_attr().is_some() {
                return None;
            }
            let sub = parent.sub_attribute(path.name())?;
            Some((
                Target {
                    container: None,
                    name: sub.name.as_str().into(),
                    sub: None,
                },
                sub,
            ))
        }
    }
}

fn compile_compare<const PREPARE: bool>(
    c: &Comparison,
    scope: Scope<'_>,
    compat: Compatibility,
) -> Result<Node, SyntaxError> {
    let Some((mut target, mut attr)) = resolve(&c.path, scope) else {
        return Ok(Node::Never);
    };
    let err = |message: String| {
        let span = c.span.range();
        SyntaxError::new(span.start, span.end, message)
    };
    if attr.ty == AttributeType::Complex {
        match compared(attr) {
            Some(value) if target.sub.is_none() => {
                target.sub = Some(value.name.as_str().into());
                attr = value;
            }
            _ => {
                return Err(err(format!(
                    "`{}` is a complex attribute: compare one of its sub-attributes",
                    c.path
                )));
            }
        }
    }
    let op = c.op;
    if c.value == Value::Null {
        return match op {
            CompareOp::Eq => Ok(Node::Not(Box::new(Node::Present(target)))),
            CompareOp::Ne => Ok(Node::Present(target)),
            _ => Err(err(format!("`{op}` cannot compare with null"))),
        };
    }
    if let Some(refused) = refusal(op, attr.ty) {
        return Err(err(match refused {
            Refusal::Order(values) => format!("`{op}` cannot order {values} (`{}`)", c.path),
            Refusal::Substring(kind) => {
                format!("`{op}` applies to strings, and `{}` is {kind}", c.path)
            }
        }));
    }
    let mismatch = |what: &str| {
        err(format!(
            "`{}` is {what}, and {} is not",
            c.path,
            describe_literal(&c.value)
        ))
    };
    let literal = match attr.ty {
        AttributeType::String | AttributeType::Reference | AttributeType::Binary => {
            let Value::String(s) = &c.value else {
                return Err(mismatch("a string"));
            };
            text_literal::<PREPARE>(s, attr.case_exact)
        }
        AttributeType::DateTime => {
            let Value::String(s) = &c.value else {
                return Err(mismatch("a dateTime"));
            };
            if op.is_substring() {
                text_literal::<PREPARE>(s, false)
            } else {
                Literal::DateTime(DateTime::parse(s).map_err(|e| err(e.to_string()))?)
            }
        }
        AttributeType::Boolean => match &c.value {
            Value::Boolean(b) => Literal::Boolean(*b),
            Value::String(s) if compat.string_booleans && s.eq_ignore_ascii_case("true") => {
                Literal::Boolean(true)
            }
            Value::String(s) if compat.string_booleans && s.eq_ignore_ascii_case("false") => {
                Literal::Boolean(false)
            }
            _ => return Err(mismatch("a boolean")),
        },
        AttributeType::Integer | AttributeType::Decimal => match &c.value {
            Value::Integer(n) => Literal::Integer(*n),
            // A check (`PREPARE` off) drops its literals: converting them would only bring
            // a float parser into the browser module, which checks and never evaluates.
            Value::Decimal(x) => Literal::Decimal(if PREPARE { x.to_f64() } else { 0.0 }),
            _ => return Err(mismatch("a number")),
        },
        // Sub-attributes are never complex, so `value` above was not either.
        AttributeType::Complex => {
            return Err(err(format!(
                "`{}` is a complex attribute: compare one of its sub-attributes",
                c.path
            )));
        }
    };
    Ok(Node::Compare {
        target,
        op,
        literal,
    })
}

/// The attribute a comparison on `attr` compares: a complex attribute compares its `value`
/// sub-attribute (`emails co "@example.com"`), and cannot be compared without one.
pub(crate) fn compared(attr: &Attribute) -> Option<&Attribute> {
    match attr.ty {
        AttributeType::Complex => attr.sub_attribute("value"),
        _ => Some(attr),
    }
}

/// Why an operator cannot compare values of a type.
pub(crate) enum Refusal {
    /// An ordering operator on values without an order (the plural noun).
    Order(&'static str),
    /// A substring operator on values that are not text (the type, with its article).
    Substring(&'static str),
}

/// Why `op` cannot compare values of type `ty`, or `None` when it can. The compiler's
/// errors and the completions offered (see [`super::complete`]) both come from here.
pub(crate) fn refusal(op: CompareOp, ty: AttributeType) -> Option<Refusal> {
    match ty {
        AttributeType::Binary if op.is_ordering() => Some(Refusal::Order("binary values")),
        AttributeType::Boolean if op.is_ordering() => Some(Refusal::Order("booleans")),
        AttributeType::Boolean if op.is_substring() => Some(Refusal::Substring("a boolean")),
        AttributeType::Integer | AttributeType::Decimal if op.is_substring() => {
            Some(Refusal::Substring("a number"))
        }
        _ => None,
    }
}

fn text_literal<const PREPARE: bool>(s: &str, case_exact: bool) -> Literal {
    if case_exact || !PREPARE {
        Literal::Text {
            needle: s.into(),
            folded: false,
        }
    } else {
        Literal::Text {
            needle: text::fold(s).as_ref().into(),
            folded: true,
        }
    }
}

fn describe_literal(v: &Value) -> String {
    match v {
        Value::String(_) => format!("the string {v}"),
        Value::Integer(_) | Value::Decimal(_) => format!("the number {v}"),
        Value::Boolean(_) => format!("the boolean {v}"),
        Value::Null => "null".to_owned(),
    }
}

fn eval(node: &Node, resource: &Json) -> bool {
    match node {
        Node::Never => false,
        Node::Compare {
            target,
            op,
            literal,
        } => {
            let mut seen_value = false;
            let hit = any_leaf(resource, target, &mut |v| {
                if !has_value(v) {
                    return false;
                }
                seen_value = true;
                test(v, *op, literal)
            });
            // `ne` holds when there is no value at all: nothing is equal to the literal.
            hit || (*op == CompareOp::Ne && !seen_value)
        }
        Node::Present(target) => any_leaf(resource, target, &mut has_value),
        Node::Not(inner) => !eval(inner, resource),
        Node::And(items) => items.iter().all(|i| eval(i, resource)),
        Node::Or(items) => items.iter().any(|i| eval(i, resource)),
        Node::ValuePath { target, inner } => match locate(resource, target) {
            Some(Json::Array(items)) => items
                .iter()
                .any(|item| item.is_object() && eval(inner, item)),
            Some(item @ Json::Object(_)) => eval(inner, item),
            _ => false,
        },
    }
}

/// The member `key` of an object, by exact name first and then ignoring ASCII case.
pub(crate) fn get<'a>(v: &'a Json, key: &str) -> Option<&'a Json> {
    let obj = v.as_object()?;
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The attribute value `[container.]name`, not descending into `sub`.
fn locate<'a>(resource: &'a Json, target: &Target) -> Option<&'a Json> {
    let base = match &target.container {
        Some(urn) => get(resource, urn)?,
        None => resource,
    };
    get(base, &target.name)
}

/// Whether `f` holds for one of the leaf values at `target`, multi-valued attributes and
/// sub-attributes of multi-valued complex attributes flattened.
fn any_leaf(resource: &Json, target: &Target, f: &mut dyn FnMut(&Json) -> bool) -> bool {
    let Some(v) = locate(resource, target) else {
        return false;
    };
    let mut visit = |v: &Json| match v {
        Json::Array(items) => items.iter().any(|x| !x.is_array() && f(x)),
        other => f(other),
    };
    match &target.sub {
        None => visit(v),
        Some(sub) => match v {
            Json::Array(items) => items
                .iter()
                .any(|item| get(item, sub).is_some_and(&mut visit)),
            Json::Object(_) => get(v, sub).is_some_and(visit),
            _ => false,
        },
    }
}

/// SCIM presence: not null, not `""`, not an empty list or object (recursively).
fn has_value(v: &Json) -> bool {
    match v {
        Json::Null => false,
        Json::String(s) => !s.is_empty(),
        Json::Array(items) => items.iter().any(has_value),
        Json::Object(members) => members.values().any(has_value),
        Json::Bool(_) | Json::Number(_) => true,
    }
}

fn test(v: &Json, op: CompareOp, literal: &Literal) -> bool {
    match literal {
        Literal::Text { needle, folded } => {
            let Json::String(s) = v else { return false };
            let text_op = match op {
                CompareOp::Eq | CompareOp::Ne => TextOp::Eq,
                CompareOp::Co => TextOp::Contains,
                CompareOp::Sw => TextOp::StartsWith,
                CompareOp::Ew => TextOp::EndsWith,
                _ => {
                    let ord = if *folded {
                        text::cmp_folded(s, needle)
                    } else {
                        s.as_str().cmp(needle)
                    };
                    return ordered(op, ord);
                }
            };
            let equal = if *folded {
                text::matches_folded(s, text_op, needle)
            } else {
                text::matches_exact(s, text_op, needle)
            };
            equal != (op == CompareOp::Ne)
        }
        Literal::Boolean(b) => match v {
            Json::Bool(x) => (x == b) != (op == CompareOp::Ne),
            _ => false,
        },
        Literal::Integer(_) | Literal::Decimal(_) => {
            let Json::Number(n) = v else { return false };
            // Integers against decimals compare exactly, as SQLite does: through f64, two
            // numbers beyond 2^53 that differ could compare equal.
            let ord = match *literal {
                Literal::Integer(i) => match (n.as_i64(), n.as_u64()) {
                    (Some(a), _) => Some(a.cmp(&i)),
                    (None, Some(_)) => Some(Ordering::Greater),
                    _ => n
                        .as_f64()
                        .and_then(|a| integer_to_decimal(i, a))
                        .map(Ordering::reverse),
                },
                Literal::Decimal(x) => match n.as_i64() {
                    Some(a) => integer_to_decimal(a, x),
                    None => n.as_f64().and_then(|a| a.partial_cmp(&x)),
                },
                _ => None,
            };
            ord.is_some_and(|o| ordered(op, o))
        }
        Literal::DateTime(t) => {
            let Json::String(s) = v else { return false };
            DateTime::parse(s).is_ok_and(|d| ordered(op, d.cmp(t)))
        }
    }
}

/// How the integer `i` compares with the decimal `x`, exactly (`None` for NaN).
fn integer_to_decimal(i: i64, x: f64) -> Option<Ordering> {
    if x.is_nan() {
        return None;
    }
    // Every i64 lies strictly between -2^63 - 1 and 2^63, both exact in f64.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if x >= TWO_63 {
        return Some(Ordering::Less);
    }
    if x < -TWO_63 {
        return Some(Ordering::Greater);
    }
    let whole = x.trunc();
    // `whole` is integral and within i64's range: the cast is exact.
    let by_whole = i.cmp(&(whole as i64));
    Some(by_whole.then_with(|| 0.0.partial_cmp(&(x - whole)).unwrap_or(Ordering::Equal)))
}

/// Whether `value` compared to the literal as `ord` satisfies `op` (an equality or ordering).
fn ordered(op: CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}
