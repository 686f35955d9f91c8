//! SCIM filters as SQL over the `resources` table (alias `r`) in PostgreSQL, with exactly the
//! semantics of the filter evaluator over the rendered resource (`store::view`), the same
//! rules the SQLite translation follows (see there). What differs is how PostgreSQL gets
//! there, as it cannot call Rust:
//!
//! - Each row keeps `attributes_keys`: its attributes with every string replaced by its case
//!   fold ([`comparable`]), or NULL when that changes nothing. A value and its key are read in step (`ROWS FROM` zips the two lists
//!   item by item), so a folded comparison always looks at the same item's fold.
//! - Resource ids are ASCII (every store refuses others), and `lower` under `COLLATE "C"`
//!   lowers exactly ASCII: it is the fold of ids and of the text made of them.
//! - `usersync_datetime`, a function of the schema, gives the key of
//!   `DateTime::sort_key` for an `xsd:dateTime` and NULL for other text.
//! - Numbers compare as `numeric`, which is exact, with literals written exactly
//!   ([`number_text`]): an integer beyond 2^53 and a decimal compare as the evaluator
//!   compares them, where `float8` would round.
//! - Compared text is `COLLATE "C"`, byte order, which is the order of Rust strings.
//! - `co`, `sw` and `ew` are `LIKE` with the needle's `\`, `%` and `_` escaped.
//! - PostgreSQL text cannot hold U+0000 and no stored text holds one: a needle with one is
//!   decided here, or (ordered) replaced by the text before it.
//!
//! Values reach SQL only as bound parameters. Every expression is `true` or `false`, never
//! NULL, so that `not` is plain `NOT`. A filter this module cannot translate makes
//! [`condition`] `None`, and the store evaluates it in Rust instead.

use postgres::types::ToSql;
use serde_json::Value;

use crate::scim::filter::CompareOp;
use crate::scim::filter::eval::{CompiledFilter, Literal, Node, Target};
use crate::scim::schema::ResourceType;
use crate::scim::text::fold;
use crate::store::Kind;
use crate::store::sql::{BindText, comparison_operator, prefix_range};

/// SQL text with numbered parameters, built in pieces.
#[derive(Default)]
pub(super) struct Sql {
    pub(super) params: Vec<Box<dyn ToSql + Sync>>,
    aliases: usize,
}

impl Sql {
    /// Binds `value` as SQL type `ty`; returns the parameter, cast to `ty` so that its type
    /// never depends on where it stands.
    pub(super) fn bind(&mut self, value: impl ToSql + Sync + 'static, ty: &str) -> String {
        self.params.push(Box::new(value));
        format!("${}::{ty}", self.params.len())
    }

    /// The parameters from the first on, as the driver takes them.
    pub(super) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| &**p as &(dyn ToSql + Sync))
            .collect()
    }

    /// A fresh table alias.
    fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }
}

impl BindText for Sql {
    fn bind_text(&mut self, value: String) -> String {
        self.bind(value, "text")
    }
}

/// The attributes as the translation compares them: every string replaced by its case
/// fold. `None` when that is `attributes` itself. Numbers stay as `jsonb` stores them: the
/// store's own values, which filters must select by.
pub(super) fn comparable(attributes: &Value) -> Option<Value> {
    fn walk(v: &Value, changed: &mut bool) -> Value {
        match v {
            Value::String(s) => {
                let folded = fold(s);
                if folded != s.as_str() {
                    *changed = true;
                    return Value::String(folded.into_owned());
                }
                v.clone()
            }
            Value::Array(items) => Value::Array(items.iter().map(|x| walk(x, changed)).collect()),
            Value::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, x)| (k.clone(), walk(x, changed)))
                    .collect(),
            ),
            _ => v.clone(),
        }
    }
    let mut changed = false;
    let keys = walk(attributes, &mut changed);
    changed.then_some(keys)
}

/// `x` as an integer when it is a whole number an `i64` or `u64` holds.
///
/// `jsonb` keeps a stored decimal as the number its shortest text says, and beyond 2^53 a
/// double's shortest text is not its value (`2^60` is written `1.152921504606847e18`). The
/// evaluator compares a literal's exact value: written exactly, a whole literal compares
/// with every stored number as the evaluator compares it (a decimal below 2^53 has no stored
/// number between it and its shortest text).
fn whole_number(x: f64) -> Option<serde_json::Number> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if x.fract() != 0.0 || !x.is_finite() {
        return None;
    }
    if (-TWO_63..TWO_63).contains(&x) {
        // Whole and within range: the cast is exact.
        Some((x as i64).into())
    } else if (0.0..2.0 * TWO_63).contains(&x) {
        Some((x as u64).into())
    } else {
        None
    }
}

/// A literal number as `numeric` text: whole numbers exactly, others in their shortest form.
fn number_text(x: f64) -> String {
    whole_number(x).map_or_else(|| format!("{x:?}"), |n| n.to_string())
}

/// What a filter is applied to.
pub(super) struct Scope<'a> {
    pub(super) kind: Kind,
    pub(super) resource_type: &'a ResourceType,
    pub(super) base: &'a str,
}

/// The filter as a boolean SQL expression over `r`, or `None` when it cannot be one.
pub(super) fn condition(
    filter: &CompiledFilter,
    scope: &Scope<'_>,
    sql: &mut Sql,
) -> Option<String> {
    node(filter.root(), &Base::Row, scope, sql)
}

/// A JSON document and its keys (see [`comparable`]), as SQL expressions of type `jsonb`.
#[derive(Clone)]
struct Doc {
    v: String,
    k: String,
}

/// Where the attributes of a term are: the resource row, one item of a complex attribute,
/// one membership row, or the `meta` of the row.
enum Base {
    Row,
    Item(Doc),
    /// A `memberships` row seen from its group (`members`).
    Member(String),
    /// A `memberships` row seen from its member (`groups`).
    GroupOf(String),
    Meta,
}

/// The values a term looks at.
enum Leaves {
    /// At most one value, no value when NULL or `''`.
    Scalar(Scalar),
    /// One value per row of `from` where `filter` holds.
    Rows {
        from: String,
        filter: String,
        value: RowValue,
    },
    /// A value that is present and equals nothing comparable (`meta` itself).
    Opaque,
    /// No value ever (an attribute the view never has, such as `members.display`).
    Empty,
}

enum Scalar {
    /// Text, and its fold when SQL can make it.
    Text { expr: String, folded: Option<Fold> },
    /// A boolean column.
    Bool(String),
}

/// The value of one row of [`Leaves::Rows`].
enum RowValue {
    /// A JSON value and its key.
    Json(Doc),
    /// Text, possibly NULL, and its fold.
    Text { v: String, folded: Fold },
    /// An object with a value (a membership seen whole): present, equal to nothing.
    Object,
}

/// Makes the SQL of a text's fold when a comparison needs it: it may bind a parameter, and
/// a parameter bound but not used is an error.
type Fold = Box<dyn Fn(&mut Sql) -> String>;

/// The fold that is the SQL expression `expr`.
fn fold_expr(expr: String) -> Fold {
    Box::new(move |_| expr.clone())
}

/// The JSON text of a `jsonb` value, in byte order.
fn json_text(v: &str) -> String {
    format!("(({v}) #>> '{{}}') COLLATE \"C\"")
}

/// The ASCII fold of text made of ids and ASCII constants.
fn ascii_fold(expr: &str) -> String {
    format!("lower(({expr}) COLLATE \"C\")")
}

fn node(n: &Node, base: &Base, scope: &Scope<'_>, sql: &mut Sql) -> Option<String> {
    Some(match n {
        Node::Never => "false".into(),
        Node::Not(inner) => format!("NOT ({})", node(inner, base, scope, sql)?),
        Node::And(items) => join(items, " AND ", "true", base, scope, sql)?,
        Node::Or(items) => join(items, " OR ", "false", base, scope, sql)?,
        Node::Present(target) => exists(&leaves(target, base, scope, sql), None),
        Node::Compare {
            target,
            op,
            literal,
        } => {
            let leaves = leaves(target, base, scope, sql);
            let test = test(&leaves, *op, literal, sql)?;
            let hit = exists(&leaves, Some(&test));
            if *op == CompareOp::Ne {
                format!("({hit} OR NOT {})", exists(&leaves, None))
            } else {
                hit
            }
        }
        Node::ValuePath { target, inner } => value_path(target, inner, base, scope, sql)?,
    })
}

fn join(
    items: &[Node],
    separator: &str,
    empty: &str,
    base: &Base,
    scope: &Scope<'_>,
    sql: &mut Sql,
) -> Option<String> {
    if items.is_empty() {
        return Some(empty.into());
    }
    let parts = items
        .iter()
        .map(|i| node(i, base, scope, sql))
        .collect::<Option<Vec<_>>>()?;
    Some(format!("({})", parts.join(separator)))
}

/// Whether one of the leaves has a value and, when given, passes `test`.
fn exists(leaves: &Leaves, test: Option<&str>) -> String {
    let test = test.map_or(String::new(), |t| format!(" AND {t}"));
    match leaves {
        Leaves::Scalar(Scalar::Text { expr, .. }) => {
            format!("({expr} IS NOT NULL AND {expr} <> ''{test})")
        }
        Leaves::Scalar(Scalar::Bool(_)) => format!("(true{test})"),
        Leaves::Rows {
            from,
            filter,
            value,
        } => {
            let has_value = match value {
                RowValue::Json(doc) => has_value(&doc.v),
                RowValue::Text { v, .. } => format!("{v} <> ''"),
                RowValue::Object => "true".into(),
            };
            format!("EXISTS (SELECT 1 FROM {from} WHERE {filter} AND {has_value}{test})")
        }
        Leaves::Opaque => if test.is_empty() { "true" } else { "false" }.into(),
        Leaves::Empty => "false".into(),
    }
}

/// SCIM presence of the `jsonb` value `v`: not null, not `""`, and for objects and lists,
/// some value inside.
fn has_value(v: &str) -> String {
    format!(
        "CASE jsonb_typeof({v}) WHEN 'string' THEN {v} <> '\"\"' WHEN 'number' THEN true \
         WHEN 'boolean' THEN true WHEN 'null' THEN false \
         ELSE jsonb_path_exists({v}, 'strict $.** ? (@.type() == \"number\" || @.type() == \"boolean\" \
         || (@.type() == \"string\" && @ != \"\"))') END"
    )
}

/// The comparison of one leaf with the literal; `None` when SQL cannot make it.
fn test(leaves: &Leaves, op: CompareOp, literal: &Literal, sql: &mut Sql) -> Option<String> {
    let value = match leaves {
        Leaves::Scalar(s) => Leaf::Scalar(s),
        Leaves::Rows { value, .. } => Leaf::Row(value),
        Leaves::Opaque | Leaves::Empty => return Some("false".into()),
    };
    Some(match literal {
        Literal::Text { needle, folded } => {
            // Decided before any part of the statement is made: a parameter bound but unused
            // is an error.
            let decided = decided_by_nul(op, needle);
            let (lhs, json) = match value {
                Leaf::Scalar(Scalar::Text { expr, folded: f }) => {
                    if let Some(decided) = decided {
                        return Some(decided.into());
                    }
                    let lhs = if *folded {
                        f.as_ref()?(sql)
                    } else {
                        expr.clone()
                    };
                    let range = if op == CompareOp::Sw && lhs == "r.name_key" {
                        prefix_range(&lhs, needle, sql)
                    } else {
                        String::new()
                    };
                    return Some(format!("{}{range}", text_test(&lhs, op, needle, sql)));
                }
                Leaf::Row(RowValue::Json(doc)) => (
                    json_text(if *folded { &doc.k } else { &doc.v }),
                    Some(&doc.v),
                ),
                Leaf::Row(RowValue::Text { v, folded: f }) => {
                    if let Some(decided) = decided {
                        return Some(decided.into());
                    }
                    (if *folded { f(sql) } else { v.clone() }, None)
                }
                Leaf::Scalar(Scalar::Bool(_)) | Leaf::Row(RowValue::Object) => {
                    return Some("false".into());
                }
            };
            // A JSON leaf compares as text only when it is a string.
            let test = decided.map_or_else(|| text_test(&lhs, op, needle, sql), str::to_owned);
            match json {
                Some(v) => {
                    format!("CASE WHEN jsonb_typeof({v}) = 'string' THEN {test} ELSE false END")
                }
                None => test,
            }
        }
        Literal::Boolean(b) => {
            let wanted = *b == (op == CompareOp::Eq);
            match value {
                Leaf::Scalar(Scalar::Bool(expr)) => format!("{expr} = {wanted}"),
                Leaf::Row(RowValue::Json(doc)) => format!("{} = '{wanted}'::jsonb", doc.v),
                _ => "false".into(),
            }
        }
        Literal::Integer(i) => number_test(value, op, i.to_string(), sql),
        Literal::Decimal(x) => number_test(value, op, number_text(*x), sql),
        Literal::DateTime(d) => {
            let text = match value {
                Leaf::Scalar(Scalar::Text { expr, .. }) => expr.clone(),
                Leaf::Row(RowValue::Text { v, .. }) => v.clone(),
                Leaf::Row(RowValue::Json(doc)) => format!(
                    "CASE WHEN jsonb_typeof({v}) = 'string' THEN {v} #>> '{{}}' END",
                    v = doc.v
                ),
                _ => return Some("false".into()),
            };
            let key = sql.bind(d.sort_key(), "text");
            format!(
                "COALESCE(usersync_datetime({text}) COLLATE \"C\" {} {key}, false)",
                comparison_operator(op, "LIKE")
            )
        }
    })
}

/// A JSON leaf compared as a number with `number` (exact `numeric` text).
fn number_test(value: Leaf<'_>, op: CompareOp, number: String, sql: &mut Sql) -> String {
    let Leaf::Row(RowValue::Json(doc)) = value else {
        return "false".into();
    };
    let n = sql.bind(number, "text");
    format!(
        "CASE WHEN jsonb_typeof({k}) = 'number' THEN ({k})::numeric {} {n}::numeric ELSE false END",
        comparison_operator(op, "LIKE"),
        k = doc.k
    )
}

/// One leaf value, whichever kind of leaves it comes from.
#[derive(Clone, Copy)]
enum Leaf<'a> {
    Scalar(&'a Scalar),
    Row(&'a RowValue),
}

/// What a comparison with a needle holding U+0000 is whatever the value: no stored text
/// holds one (PostgreSQL text cannot), so such a needle equals, contains, starts and ends
/// nothing. `None` for other needles, and for orderings, which need the value.
fn decided_by_nul(op: CompareOp, needle: &str) -> Option<&'static str> {
    match op {
        _ if !needle.contains('\0') => None,
        CompareOp::Ne => Some("true"),
        CompareOp::Eq | CompareOp::Co | CompareOp::Sw | CompareOp::Ew => Some("false"),
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => None,
    }
}

/// `lhs` (text in byte order, not NULL) compared with `needle` by `op`.
fn text_test(lhs: &str, op: CompareOp, needle: &str, sql: &mut Sql) -> String {
    if let Some(decided) = decided_by_nul(op, needle) {
        return decided.into();
    }
    if let Some(nul) = needle.find('\0') {
        // An ordering: against text without U+0000, the needle orders as the text before
        // it does, just above it.
        let before = sql.bind(needle[..nul].to_owned(), "text");
        return match op {
            CompareOp::Gt | CompareOp::Ge => format!("{lhs} > {before}"),
            _ => format!("{lhs} <= {before}"),
        };
    }
    let rhs = match op {
        CompareOp::Co => sql.bind(format!("%{}%", like_escape(needle)), "text"),
        CompareOp::Sw => sql.bind(format!("{}%", like_escape(needle)), "text"),
        CompareOp::Ew => sql.bind(format!("%{}", like_escape(needle)), "text"),
        _ => sql.bind(needle.to_owned(), "text"),
    };
    format!("{lhs} {} {rhs}", comparison_operator(op, "LIKE"))
}

/// `text` as a `LIKE` pattern that matches exactly it.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `jsonb` at `path` in `doc` as a list: itself when it is one, else a list of it.
fn as_list(json: &str) -> String {
    format!(
        "(CASE jsonb_typeof({json}) WHEN 'array' THEN {json} ELSE jsonb_build_array({json}) END)"
    )
}

/// The items of two lists of one length side by side, as rows `alias(v, k)`.
fn zip(doc: &Doc, at: &str, alias: &str) -> String {
    format!(
        "ROWS FROM (jsonb_array_elements({}), jsonb_array_elements({})) {alias}(v, k)",
        as_list(&format!("{}{at}", doc.v)),
        as_list(&format!("{}{at}", doc.k)),
    )
}

fn leaves(target: &Target, base: &Base, scope: &Scope<'_>, sql: &mut Sql) -> Leaves {
    let name = &*target.name;
    let sub = target.sub.as_deref();
    match base {
        Base::Row if target.container.is_none() => match (name, scope.kind) {
            ("id", _) => text("r.id".into(), Some(fold_expr(ascii_fold("r.id")))),
            // `caseExact`: never compared by its fold.
            ("externalId", _) => text("r.external_id".into(), None),
            ("active", Kind::User) => Leaves::Scalar(Scalar::Bool("r.active".into())),
            ("userName", Kind::User) | ("displayName", Kind::Group) => {
                text("r.name".into(), Some(fold_expr("r.name_key".into())))
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
            _ => json_leaves(&row_doc(), &[name], sub, sql),
        },
        Base::Row => {
            let urn = target.container.as_deref().unwrap_or_default();
            json_leaves(&row_doc(), &[urn, name], sub, sql)
        }
        Base::Item(doc) => json_leaves(doc, &[name], sub, sql),
        Base::Member(m) => member_attribute(m, name, scope, sql),
        Base::GroupOf(g) => group_attribute(g, name, scope, sql),
        Base::Meta => meta(name, scope, sql),
    }
}

/// The row's attributes and their keys.
fn row_doc() -> Doc {
    Doc {
        v: "r.attributes".into(),
        k: "COALESCE(r.attributes_keys, r.attributes)".into(),
    }
}

fn text(expr: String, folded: Option<Fold>) -> Leaves {
    Leaves::Scalar(Scalar::Text { expr, folded })
}

/// Bound text, and its fold bound when needed, in the SQL `around` makes of it; both in
/// byte order (two parameters compared would otherwise take the database's collation).
fn bound_text(
    value: &str,
    sql: &mut Sql,
    around: impl Fn(&str) -> String + 'static,
) -> (String, Fold) {
    let v = format!("({} COLLATE \"C\")", sql.bind(value.to_owned(), "text"));
    let folded = fold(value).into_owned();
    (
        v,
        Box::new(move |sql| {
            around(&format!(
                "({} COLLATE \"C\")",
                sql.bind(folded.clone(), "text")
            ))
        }),
    )
}

/// Bound text and its fold, each as itself.
fn bound(value: &str, sql: &mut Sql) -> (String, Fold) {
    bound_text(value, sql, str::to_owned)
}

/// `meta.<sub>`, as the view renders it from the row's columns.
fn meta(sub: &str, scope: &Scope<'_>, sql: &mut Sql) -> Leaves {
    match sub {
        "resourceType" => {
            let (v, f) = bound(scope.kind.as_str(), sql);
            text(v, Some(f))
        }
        "created" => text("r.created".into(), Some(fold_expr(ascii_fold("r.created")))),
        "lastModified" => text(
            "r.modified".into(),
            Some(fold_expr(ascii_fold("r.modified"))),
        ),
        "version" => text(
            "(('W/\"' || r.version || '\"') COLLATE \"C\")".into(),
            Some(fold_expr(
                "(('w/\"' || r.version || '\"') COLLATE \"C\")".into(),
            )),
        ),
        "location" => {
            let endpoint = crate::store::view::endpoint(scope.kind);
            let (prefix, folded) =
                bound_text(&format!("{}/{endpoint}/", scope.base), sql, |prefix| {
                    format!("(({prefix} || {}) COLLATE \"C\")", ascii_fold("r.id"))
                });
            text(format!("(({prefix} || r.id) COLLATE \"C\")"), Some(folded))
        }
        _ => Leaves::Empty,
    }
}

/// `schemas`: the core schema, and each extension the resource has attributes of.
fn schemas(scope: &Scope<'_>, sql: &mut Sql) -> Leaves {
    let rt = scope.resource_type;
    // Both lists are in the statement whatever it compares: their folds are bound now.
    let bound = |value: &str, sql: &mut Sql| {
        (
            sql.bind(value.to_owned(), "text"),
            sql.bind(fold(value).into_owned(), "text"),
        )
    };
    let (core, folded_core) = bound(&rt.schema.id, sql);
    let (mut items, mut folds) = (vec![core], vec![folded_core]);
    for ext in &rt.extensions {
        let (urn, folded_urn) = bound(&ext.schema.id, sql);
        items.push(format!("CASE WHEN r.attributes ? {urn} THEN {urn} END"));
        folds.push(format!(
            "CASE WHEN r.attributes ? {urn} THEN {folded_urn} END"
        ));
    }
    let s = sql.alias("s");
    Leaves::Rows {
        from: format!(
            "unnest(ARRAY[{}]::text[], ARRAY[{}]::text[]) {s}(v, f)",
            items.join(", "),
            folds.join(", ")
        ),
        filter: format!("{s}.v IS NOT NULL"),
        value: RowValue::Text {
            v: format!("({s}.v COLLATE \"C\")"),
            folded: fold_expr(format!("({s}.f COLLATE \"C\")")),
        },
    }
}

/// Membership rows as the leaves of `members.<sub>` or `groups.<sub>`; without a
/// sub-attribute, each row is an object that has a value.
fn membership_rows(from: String, filter: String, sub: Option<Leaves>) -> Leaves {
    match sub {
        None => Leaves::Rows {
            from,
            filter,
            value: RowValue::Object,
        },
        Some(Leaves::Scalar(Scalar::Text { expr, folded })) => Leaves::Rows {
            from,
            filter,
            value: RowValue::Text {
                folded: folded.unwrap_or_else(|| fold_expr(ascii_fold(&expr))),
                v: expr,
            },
        },
        Some(other) => other,
    }
}

/// A sub-attribute of one `members` value: `{value, type, $ref}`.
fn member_attribute(m: &str, sub: &str, scope: &Scope<'_>, sql: &mut Sql) -> Leaves {
    let id = format!("{m}.member_id");
    match sub {
        "value" => text(id.clone(), Some(fold_expr(ascii_fold(&id)))),
        "type" => {
            let kind = format!("{m}.member_kind");
            text(kind.clone(), Some(fold_expr(ascii_fold(&kind))))
        }
        "$ref" => {
            let path = |m: &str, users: &str, groups: &str| {
                format!("CASE {m}.member_kind WHEN 'User' THEN '{users}' ELSE '{groups}' END")
            };
            let folded_rest = format!("{} || {}", path(m, "/users/", "/groups/"), ascii_fold(&id));
            // The base ends where a `/` begins: its fold and the rest's join as they are.
            let (base, folded) = bound_text(scope.base, sql, move |base| {
                format!("(({base} || {folded_rest}) COLLATE \"C\")")
            });
            text(
                format!(
                    "(({base} || {} || {id}) COLLATE \"C\")",
                    path(m, "/Users/", "/Groups/")
                ),
                Some(folded),
            )
        }
        _ => Leaves::Empty,
    }
}

/// A sub-attribute of one `groups` value: `{value, type: "direct", $ref}`.
fn group_attribute(g: &str, sub: &str, scope: &Scope<'_>, sql: &mut Sql) -> Leaves {
    let id = format!("{g}.group_id");
    match sub {
        "value" => text(id.clone(), Some(fold_expr(ascii_fold(&id)))),
        "type" => {
            let (v, f) = bound("direct", sql);
            text(v, Some(f))
        }
        "$ref" => {
            let folded_id = ascii_fold(&id);
            let (prefix, folded) =
                bound_text(&format!("{}/Groups/", scope.base), sql, move |prefix| {
                    format!("(({prefix} || {folded_id}) COLLATE \"C\")")
                });
            text(format!("(({prefix} || {id}) COLLATE \"C\")"), Some(folded))
        }
        _ => Leaves::Empty,
    }
}

/// The leaves of the JSON attribute at `names` in `doc`, or of its sub-attribute `sub`.
fn json_leaves(doc: &Doc, names: &[&str], sub: Option<&str>, sql: &mut Sql) -> Leaves {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let path = format!(" #> {}", sql.bind(names, "text[]"));
    let j = sql.alias("j");
    match sub {
        None => Leaves::Rows {
            from: zip(doc, &path, &j),
            filter: format!("jsonb_typeof({j}.v) <> 'array'"),
            value: RowValue::Json(Doc {
                v: format!("{j}.v"),
                k: format!("{j}.k"),
            }),
        },
        Some(sub) => {
            let i = sql.alias("i");
            let sub_path = format!(" -> {}", sql.bind(sub.to_owned(), "text"));
            let item = Doc {
                v: format!("{i}.v"),
                k: format!("{i}.k"),
            };
            Leaves::Rows {
                from: format!("{}, {}", zip(doc, &path, &i), zip(&item, &sub_path, &j)),
                filter: format!(
                    "jsonb_typeof({i}.v) = 'object' AND jsonb_typeof({j}.v) <> 'array'"
                ),
                value: RowValue::Json(Doc {
                    v: format!("{j}.v"),
                    k: format!("{j}.k"),
                }),
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
) -> Option<String> {
    let on_row = matches!(base, Base::Row) && target.container.is_none();
    Some(match (&*target.name, scope.kind) {
        ("meta", _) if on_row => node(inner, &Base::Meta, scope, sql)?,
        ("members", Kind::Group) if on_row => {
            let m = sql.alias("m");
            let inner = node(inner, &Base::Member(m.clone()), scope, sql)?;
            format!("EXISTS (SELECT 1 FROM memberships {m} WHERE {m}.group_id = r.id AND {inner})")
        }
        ("groups", Kind::User) if on_row => {
            let g = sql.alias("g");
            let inner = node(inner, &Base::GroupOf(g.clone()), scope, sql)?;
            format!("EXISTS (SELECT 1 FROM memberships {g} WHERE {g}.member_id = r.id AND {inner})")
        }
        _ => {
            let doc = match base {
                Base::Item(doc) => doc.clone(),
                _ => row_doc(),
            };
            let mut names = Vec::new();
            if let Some(urn) = target.container.as_deref() {
                names.push(urn.to_owned());
            }
            names.push(target.name.to_string());
            let path = format!(" #> {}", sql.bind(names, "text[]"));
            let i = sql.alias("i");
            let item = Doc {
                v: format!("{i}.v"),
                k: format!("{i}.k"),
            };
            let inner = node(inner, &Base::Item(item), scope, sql)?;
            format!(
                "EXISTS (SELECT 1 FROM {} WHERE jsonb_typeof({i}.v) = 'object' AND {inner})",
                zip(&doc, &path, &i)
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::{comparable, number_text};
    use crate::scim::datetime::DateTime;
    use crate::store::differential;
    use crate::store::postgres::PostgresStore;
    use crate::store::{Clock, Query, Store};

    #[test]
    fn keys_fold_text_and_literals_are_exact() {
        assert_eq!(comparable(&json!({"a": "abc", "n": 7, "x": 0.5})), None);
        assert_eq!(
            comparable(&json!({"title": "Ǆemo", "tags": ["A", "b"], "n": 1.5})),
            Some(json!({"title": "ǆemo", "tags": ["a", "b"], "n": 1.5}))
        );
        assert_eq!(
            number_text(1_152_921_504_606_846_976.0),
            "1152921504606846976"
        );
        assert_eq!(number_text(7.25), "7.25");
        assert_eq!(number_text(1e300), "1e300");
    }

    /// A database whose tables are emptied (ids restarting at 1) before each store opens.
    struct Fresh {
        _server: usersync_testkit::postgres::Postgres,
        url: String,
    }

    impl Fresh {
        /// A database whose default collation is ICU's `en-US`, not byte order: text the
        /// translation compares must say `COLLATE "C"` to agree with the evaluator.
        fn start(name: &str) -> Self {
            let server = usersync_testkit::postgres::Postgres::start(name);
            let url = server.create_database_with(
                name,
                &[
                    "--template=template0",
                    "--locale-provider=icu",
                    "--icu-locale=en-US",
                    "--locale=C.UTF-8",
                ],
            );
            Self {
                _server: server,
                url,
            }
        }

        fn open(&self, clock: Clock) -> Box<dyn Store> {
            let store = PostgresStore::open(&self.url, clock).unwrap();
            let mut admin = ::postgres::Client::connect(&self.url, ::postgres::NoTls).unwrap();
            admin
                .batch_execute(
                    "TRUNCATE directories, resources, memberships, passwords, tokens, \
                     resource_counts, sync_runs, events RESTART IDENTITY CASCADE",
                )
                .unwrap();
            Box::new(store)
        }
    }

    /// Whether the store answers `q` in SQL.
    fn translated(q: &Query<'_>) -> bool {
        super::super::selection(q, &mut super::Sql::default()).is_some()
    }

    #[test]
    fn sql_filters_select_what_the_evaluator_selects() {
        let db = Fresh::start("differential");
        differential::filters_select_what_the_evaluator_selects(&|c| db.open(c), &translated, 64);
    }

    #[test]
    fn known_traps_agree() {
        let db = Fresh::start("traps");
        differential::known_traps_agree(&|c| db.open(c));
    }

    /// Text near `xsd:dateTime`: valid instants and each way of missing one.
    fn datetime_like() -> impl Strategy<Value = String> {
        let digits = |n: usize| {
            prop::collection::vec(0u8..10, n).prop_map(|d| {
                d.into_iter()
                    .map(|x| char::from(b'0' + x))
                    .collect::<String>()
            })
        };
        let date = prop_oneof![
            (0u32..10_000, 0u32..14, 0u32..33)
                .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
            Just("2000-02-29".to_owned()),
            Just("1900-02-29".to_owned()),
            Just("0000-01-01".to_owned()),
            Just("9999-12-31".to_owned()),
            (digits(3), digits(2)).prop_map(|(y, m)| format!("{y}-{m}-01")),
        ];
        let time = prop_oneof![
            (0u32..26, 0u32..61, 0u32..61).prop_map(|(h, m, s)| format!("{h:02}:{m:02}:{s:02}")),
            Just("24:00:00".to_owned()),
            Just("23:59:59".to_owned()),
        ];
        let fraction = prop_oneof![
            Just(String::new()),
            Just(".".to_owned()),
            (1usize..12)
                .prop_flat_map(digits)
                .prop_map(|d| format!(".{d}")),
        ];
        let zone = prop_oneof![
            Just(String::new()),
            Just("Z".to_owned()),
            Just("z".to_owned()),
            (prop::sample::select(vec!['+', '-']), 0u32..16, 0u32..61)
                .prop_map(|(s, h, m)| format!("{s}{h:02}:{m:02}")),
            Just("+0100".to_owned()),
            Just("Z ".to_owned()),
        ];
        let t = prop::sample::select(vec!["T", "t", " ", ""]);
        (date, t, time, fraction, zone).prop_map(|(d, t, time, f, z)| format!("{d}{t}{time}{f}{z}"))
    }

    /// `usersync_datetime` in SQL accepts what `DateTime::parse` accepts and gives its key.
    #[test]
    fn datetime_keys_agree_with_the_parser() {
        let db = Fresh::start("datetimes");
        drop(db.open(std::sync::Arc::new(|| DateTime::from_unix(0, 0))));
        let client = std::cell::RefCell::new(
            ::postgres::Client::connect(&db.url, ::postgres::NoTls).unwrap(),
        );
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
            cases: 64,
            ..Default::default()
        });
        let texts = prop::collection::vec(datetime_like(), 64);
        runner
            .run(&texts, |texts| {
                let keys: Vec<Option<String>> = client
                    .borrow_mut()
                    .query(
                        "SELECT usersync_datetime(t) FROM unnest($1::text[]) t",
                        &[&texts],
                    )
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                for (text, key) in texts.iter().zip(keys) {
                    let expected = DateTime::parse(text).ok().map(|d| d.sort_key());
                    prop_assert_eq!(key, expected, "`{}`", text);
                }
                Ok(())
            })
            .unwrap();
    }
}
