//! SCIM filters and sort keys as SQL over the `resources` table (alias `r`), with exactly the
//! semantics of the filter evaluator over the rendered resource (`store::view`):
//!
//! - a comparison holds when one value of the attribute (multi-valued attributes and
//!   sub-attributes of multi-valued complex attributes flattened) satisfies it; `ne` also
//!   holds when there is no value at all;
//! - empty values (`null`, `""`, empty lists and objects) are no values, for `pr` and for
//!   every comparison;
//! - text that ignores case is compared by its fold (`usersync_fold`, the same Rust function
//!   the evaluator uses); `co`, `sw` and `ew` use `GLOB` with the needle's wildcards escaped;
//! - dateTimes compare as instants (`usersync_datetime` gives a key in chronological order).
//!
//! Values reach SQL only as bound parameters. Every expression is `0` or `1`, never NULL, so
//! that `not` is plain `NOT`.

use rusqlite::types::Value as SqlValue;

use crate::scim::filter::CompareOp;
use crate::scim::filter::eval::{CompiledFilter, Literal, Node, Target};
use crate::scim::schema::ResourceType;
use crate::store::Kind;
use crate::store::sql::{BindText, comparison_operator, prefix_range};

/// SQL text with numbered parameters, built in pieces.
#[derive(Debug, Default)]
pub(super) struct Sql {
    pub(super) params: Vec<SqlValue>,
    aliases: usize,
}

impl Sql {
    /// Binds `value`; returns its placeholder.
    pub(super) fn bind(&mut self, value: impl Into<SqlValue>) -> String {
        self.params.push(value.into());
        format!("?{}", self.params.len())
    }

    /// A fresh table alias.
    fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }
}

impl BindText for Sql {
    fn bind_text(&mut self, value: String) -> String {
        self.bind(value)
    }
}

/// What a filter is applied to.
pub(super) struct Scope<'a> {
    pub(super) kind: Kind,
    pub(super) resource_type: &'a ResourceType,
    pub(super) base: &'a str,
}

/// The filter as a boolean SQL expression over `r`.
pub(super) fn condition(filter: &CompiledFilter, scope: &Scope<'_>, sql: &mut Sql) -> String {
    node(filter.root(), &Base::Row, scope, sql)
}

/// Where the attributes of a term are: the resource row, one item of a complex attribute,
/// one membership row, or the `meta` of the row.
enum Base {
    Row,
    /// A JSON object (an SQL expression).
    Item(String),
    /// A `memberships` row seen from its group (`members`).
    Member(String),
    /// A `memberships` row seen from its member (`groups`).
    GroupOf(String),
    Meta,
}

/// The values a term looks at.
enum Leaves {
    /// At most one value: an SQL expression of type `ty`, no value when NULL or `''`.
    /// `folded` is an expression for its case fold when the store keeps one.
    Scalar {
        expr: String,
        ty: ScalarType,
        folded: Option<String>,
    },
    /// One value per row of `from` where `filter` holds: value `v`, JSON type `t`.
    Rows {
        from: String,
        filter: String,
        v: String,
        t: String,
    },
    /// A value that is present and equals nothing comparable (`meta` itself).
    Opaque,
    /// No value ever (an attribute the view never has, such as `members.display`).
    Empty,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ScalarType {
    Text,
    /// 0 or 1.
    Bool,
}

fn node(n: &Node, base: &Base, scope: &Scope<'_>, sql: &mut Sql) -> String {
    match n {
        Node::Never => "0".into(),
        Node::Not(inner) => format!("NOT ({})", node(inner, base, scope, sql)),
        Node::And(items) => join(items, " AND ", "1", base, scope, sql),
        Node::Or(items) => join(items, " OR ", "0", base, scope, sql),
        Node::Present(target) => {
            let leaves = leaves(target, base, scope, sql);
            exists(&leaves, None)
        }
        Node::Compare {
            target,
            op,
            literal,
        } => {
            let leaves = leaves(target, base, scope, sql);
            let test = test(&leaves, *op, literal, sql);
            let hit = exists(&leaves, test.as_deref());
            if *op == CompareOp::Ne {
                format!("({hit} OR NOT {})", exists(&leaves, None))
            } else {
                hit
            }
        }
        Node::ValuePath { target, inner } => value_path(target, inner, base, scope, sql),
    }
}

fn join(
    items: &[Node],
    separator: &str,
    empty: &str,
    base: &Base,
    scope: &Scope<'_>,
    sql: &mut Sql,
) -> String {
    if items.is_empty() {
        return empty.into();
    }
    let parts: Vec<String> = items.iter().map(|i| node(i, base, scope, sql)).collect();
    format!("({})", parts.join(separator))
}

/// Whether one of the leaves has a value and, when given, passes `test`.
fn exists(leaves: &Leaves, test: Option<&str>) -> String {
    let test = test.map_or(String::new(), |t| format!(" AND {t}"));
    match leaves {
        Leaves::Scalar { expr, ty, .. } => match ty {
            ScalarType::Text => format!("({expr} IS NOT NULL AND {expr} <> ''{test})"),
            ScalarType::Bool => format!("(1{test})"),
        },
        Leaves::Rows { from, filter, v, t } => {
            format!(
                "EXISTS (SELECT 1 FROM {from} WHERE {filter} AND {}{test})",
                has_value(v, t)
            )
        }
        Leaves::Opaque => {
            if test.is_empty() {
                "1".into()
            } else {
                "0".into()
            }
        }
        Leaves::Empty => "0".into(),
    }
}

/// SCIM presence of a JSON value `v` of type `t`: not null, not `""`, and for objects and
/// lists, some value inside.
fn has_value(v: &str, t: &str) -> String {
    format!(
        "({t} IN ('integer', 'real', 'true', 'false') OR ({t} = 'text' AND {v} <> '') \
         OR ({t} IN ('object', 'array') AND EXISTS (SELECT 1 FROM json_tree({v}) x \
         WHERE x.type IN ('integer', 'real', 'true', 'false') OR (x.type = 'text' AND x.atom <> ''))))"
    )
}

/// The comparison of one leaf with the literal; `None` when no leaf can satisfy it.
fn test(leaves: &Leaves, op: CompareOp, literal: &Literal, sql: &mut Sql) -> Option<String> {
    let folded_column = match leaves {
        Leaves::Scalar { folded, .. } => folded.clone(),
        _ => None,
    };
    let (v, t, folded) = match leaves {
        Leaves::Scalar { expr, ty, folded } => {
            let t = match ty {
                ScalarType::Text => "'text'".to_owned(),
                ScalarType::Bool => format!("CASE {expr} WHEN 1 THEN 'true' ELSE 'false' END"),
            };
            (expr.clone(), t, folded.clone())
        }
        Leaves::Rows { v, t, .. } => (v.clone(), t.clone(), None),
        Leaves::Opaque | Leaves::Empty => return Some("0".into()),
    };
    Some(match literal {
        // Stored text never holds U+0000 (the service refuses it), and GLOB would stop at it:
        // a substring needle with one matches nothing, as in the evaluator.
        Literal::Text { needle, .. }
            if needle.contains('\0')
                && matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) =>
        {
            "0".to_owned()
        }
        Literal::Text { needle, folded: f } => {
            let lhs = if *f {
                folded.unwrap_or_else(|| format!("usersync_fold({v})"))
            } else {
                v
            };
            let rhs = match op {
                CompareOp::Co => sql.bind(format!("*{}*", glob_escape(needle))),
                CompareOp::Sw => sql.bind(format!("{}*", glob_escape(needle))),
                CompareOp::Ew => sql.bind(format!("*{}", glob_escape(needle))),
                _ => sql.bind(needle.to_string()),
            };
            if t == "'text'" {
                let range = match (op, &folded_column) {
                    (CompareOp::Sw, Some(column)) => prefix_range(column, needle, sql),
                    _ => String::new(),
                };
                format!("{lhs} {} {rhs}{range}", comparison_operator(op, "GLOB"))
            } else {
                format!(
                    "({t} = 'text' AND {lhs} {} {rhs})",
                    comparison_operator(op, "GLOB")
                )
            }
        }
        Literal::Boolean(b) => {
            let wanted = if *b == (op == CompareOp::Eq) {
                "true"
            } else {
                "false"
            };
            format!("{t} = '{wanted}'")
        }
        Literal::Integer(i) => {
            let n = sql.bind(*i);
            format!(
                "({t} IN ('integer', 'real') AND {v} {} {n})",
                comparison_operator(op, "GLOB")
            )
        }
        Literal::Decimal(x) => {
            let n = sql.bind(*x);
            format!(
                "({t} IN ('integer', 'real') AND {v} {} {n})",
                comparison_operator(op, "GLOB")
            )
        }
        Literal::DateTime(d) => {
            let key = sql.bind(d.sort_key());
            format!(
                "IFNULL({t} = 'text' AND usersync_datetime({v}) {} {key}, 0)",
                comparison_operator(op, "GLOB")
            )
        }
    })
}

/// `text` as a GLOB pattern that matches exactly it: `*`, `?` and `[` in brackets.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// A JSON path to `names` in turn, as a bound parameter.
fn json_path(names: &[&str], sql: &mut Sql) -> String {
    let mut path = String::from("$");
    for n in names {
        // Attribute names and schema URNs never hold `"` (the schema loader checks them).
        path.push_str(&format!(".\"{n}\""));
    }
    sql.bind(path)
}

/// The JSON value at `path` in `doc` as a list: itself when it is one, else a list of it.
fn as_list(doc: &str, path: &str) -> String {
    format!(
        "CASE json_type({doc}, {path}) WHEN 'array' THEN {doc} -> {path} ELSE json_array({doc} -> {path}) END"
    )
}

fn leaves(target: &Target, base: &Base, scope: &Scope<'_>, sql: &mut Sql) -> Leaves {
    let name = &*target.name;
    let sub = target.sub.as_deref();
    match base {
        Base::Row if target.container.is_none() => match (name, scope.kind) {
            ("id", _) => text("r.id".into(), None),
            ("externalId", _) => text("r.external_id".into(), None),
            ("active", Kind::User) => Leaves::Scalar {
                expr: "r.active".into(),
                ty: ScalarType::Bool,
                folded: None,
            },
            ("userName", Kind::User) | ("displayName", Kind::Group) => {
                text("r.name".into(), Some("r.name_key".into()))
            }
            ("meta", _) => match sub {
                None => Leaves::Opaque,
                Some(s) => meta(s, scope, sql),
            },
            ("schemas", _) => schemas(scope, sql),
            ("members", Kind::Group) => {
                let m = sql.alias("m");
                membership_rows(
                    format!("memberships {m}"),
                    format!("{m}.group_id = r.id"),
                    sub.map(|s| member_attribute(&m, s, scope, sql)),
                )
            }
            ("groups", Kind::User) => {
                let g = sql.alias("g");
                membership_rows(
                    format!("memberships {g}"),
                    format!("{g}.member_id = r.id"),
                    sub.map(|s| group_attribute(&g, s, scope, sql)),
                )
            }
            _ => json_leaves("r.attributes", &[name], sub, sql),
        },
        Base::Row => {
            let urn = target.container.as_deref().unwrap_or_default();
            json_leaves("r.attributes", &[urn, name], sub, sql)
        }
        Base::Item(doc) => json_leaves(doc, &[name], sub, sql),
        Base::Member(m) => member_attribute(m, name, scope, sql),
        Base::GroupOf(g) => group_attribute(g, name, scope, sql),
        Base::Meta => meta(name, scope, sql),
    }
}

fn text(expr: String, folded: Option<String>) -> Leaves {
    Leaves::Scalar {
        expr,
        ty: ScalarType::Text,
        folded,
    }
}

/// `meta.<sub>`, as the view renders it from the row's columns.
fn meta(sub: &str, scope: &Scope<'_>, sql: &mut Sql) -> Leaves {
    match sub {
        "resourceType" => text(sql.bind(scope.kind.as_str().to_owned()), None),
        "created" => text("r.created".into(), None),
        "lastModified" => text("r.modified".into(), None),
        "version" => text("('W/\"' || r.version || '\"')".into(), None),
        "location" => {
            let prefix = sql.bind(format!(
                "{}/{}/",
                scope.base,
                crate::store::view::endpoint(scope.kind)
            ));
            text(format!("({prefix} || r.id)"), None)
        }
        _ => Leaves::Empty,
    }
}

/// `schemas`: the core schema, and each extension the resource has attributes of.
fn schemas(scope: &Scope<'_>, sql: &mut Sql) -> Leaves {
    let rt = scope.resource_type;
    let mut items = vec![sql.bind(rt.schema.id.clone())];
    for ext in &rt.extensions {
        let path = json_path(&[&ext.schema.id], sql);
        let urn = sql.bind(ext.schema.id.clone());
        items.push(format!(
            "CASE WHEN json_type(r.attributes, {path}) IS NOT NULL THEN {urn} END"
        ));
    }
    let s = sql.alias("s");
    Leaves::Rows {
        from: format!("json_each(json_array({})) {s}", items.join(", ")),
        filter: "1".into(),
        v: format!("{s}.value"),
        t: format!("{s}.type"),
    }
}

/// Membership rows as the leaves of `members.<sub>` or `groups.<sub>`; without a
/// sub-attribute, each row is an object that has a value.
fn membership_rows(from: String, filter: String, sub: Option<Leaves>) -> Leaves {
    match sub {
        None => Leaves::Rows {
            from,
            filter,
            v: "1".into(),
            t: "'true'".into(),
        },
        Some(Leaves::Scalar { expr, .. }) => Leaves::Rows {
            from,
            filter,
            v: expr,
            t: "'text'".into(),
        },
        Some(other) => other,
    }
}

/// A sub-attribute of one `members` value: `{value, type, $ref}`.
fn member_attribute(m: &str, sub: &str, scope: &Scope<'_>, sql: &mut Sql) -> Leaves {
    match sub {
        "value" => text(format!("{m}.member_id"), None),
        "type" => text(format!("{m}.member_kind"), None),
        "$ref" => {
            let base = sql.bind(scope.base.to_owned());
            text(
                format!(
                    "({base} || CASE {m}.member_kind WHEN 'User' THEN '/Users/' ELSE '/Groups/' END || {m}.member_id)"
                ),
                None,
            )
        }
        _ => Leaves::Empty,
    }
}

/// A sub-attribute of one `groups` value: `{value, type: "direct", $ref}`.
fn group_attribute(g: &str, sub: &str, scope: &Scope<'_>, sql: &mut Sql) -> Leaves {
    match sub {
        "value" => text(format!("{g}.group_id"), None),
        "type" => text(sql.bind("direct".to_owned()), None),
        "$ref" => {
            let prefix = sql.bind(format!("{}/Groups/", scope.base));
            text(format!("({prefix} || {g}.group_id)"), None)
        }
        _ => Leaves::Empty,
    }
}

/// The leaves of the JSON attribute at `names` in `doc`, or of its sub-attribute `sub`.
fn json_leaves(doc: &str, names: &[&str], sub: Option<&str>, sql: &mut Sql) -> Leaves {
    let path = json_path(names, sql);
    let j = sql.alias("j");
    match sub {
        None => Leaves::Rows {
            from: format!("json_each({}) {j}", as_list(doc, &path)),
            filter: format!("{j}.type <> 'array'"),
            v: format!("{j}.value"),
            t: format!("{j}.type"),
        },
        Some(sub) => {
            let i = sql.alias("i");
            let sub_path = json_path(&[sub], sql);
            Leaves::Rows {
                from: format!(
                    "json_each({}) {i}, json_each({}) {j}",
                    as_list(doc, &path),
                    as_list(&format!("{i}.value"), &sub_path)
                ),
                filter: format!("{i}.type = 'object' AND {j}.type <> 'array'"),
                v: format!("{j}.value"),
                t: format!("{j}.type"),
            }
        }
    }
}

/// `attr[inner]`: some value of the complex attribute satisfies `inner`.
fn value_path(
    target: &Target,
    inner: &Node,
    base: &Base,
    scope: &Scope<'_>,
    sql: &mut Sql,
) -> String {
    let on_row = matches!(base, Base::Row) && target.container.is_none();
    match (&*target.name, scope.kind) {
        ("meta", _) if on_row => node(inner, &Base::Meta, scope, sql),
        ("members", Kind::Group) if on_row => {
            let m = sql.alias("m");
            let inner = node(inner, &Base::Member(m.clone()), scope, sql);
            format!("EXISTS (SELECT 1 FROM memberships {m} WHERE {m}.group_id = r.id AND {inner})")
        }
        ("groups", Kind::User) if on_row => {
            let g = sql.alias("g");
            let inner = node(inner, &Base::GroupOf(g.clone()), scope, sql);
            format!("EXISTS (SELECT 1 FROM memberships {g} WHERE {g}.member_id = r.id AND {inner})")
        }
        _ => {
            let doc = match base {
                Base::Item(doc) => doc.clone(),
                _ => "r.attributes".to_owned(),
            };
            let mut names = Vec::new();
            if let Some(urn) = target.container.as_deref() {
                names.push(urn);
            }
            names.push(&*target.name);
            let path = json_path(&names, sql);
            let i = sql.alias("i");
            let inner = node(inner, &Base::Item(format!("{i}.value")), scope, sql);
            format!(
                "EXISTS (SELECT 1 FROM json_each({}) {i} WHERE {i}.type = 'object' AND {inner})",
                as_list(&doc, &path)
            )
        }
    }
}
