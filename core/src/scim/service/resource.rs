//! Between SCIM JSON and stored resources: checking and normalising what clients send
//! (canonical attribute names, types, read-only and write-only attributes), and rendering
//! what the service returns (`schemas`, `meta`, members, projection).

use serde_json::{Map, Value};

use super::ScimError;
use crate::password::{MAX_PASSWORD_BYTES, Password};
use crate::scim::datetime::DateTime;
use crate::scim::filter::{AttrPath, Compatibility};
use crate::scim::schema::{Attribute, AttributeType, Mutability, ResourceType, Returned, Schema};
use crate::store::view::view;
use crate::store::{Kind, Member, Resource};

/// A checked request body.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Input {
    /// `userName` or `displayName`.
    pub(crate) name: String,
    pub(crate) external_id: Option<String>,
    pub(crate) active: bool,
    /// Canonical attributes, extension attributes under their schema URN.
    pub(crate) attributes: Map<String, Value>,
    /// A group's `members` as given (their kinds resolved later), if the body has them.
    pub(crate) members: Option<Vec<String>>,
    /// A user's `password`, checked; kept (hashed) only by directories configured to.
    pub(crate) password: Option<Password>,
}

/// The longest `userName`, group `displayName` or `externalId` (and case fold of a name), in
/// bytes: the stores index them, and PostgreSQL refuses an index entry over about 2.7 KB.
/// Far above any real name.
const MAX_KEY_BYTES: usize = 1024;

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request("invalidValue", detail)
}

/// Checks a create or replace body against the resource type, a new name and externalId
/// against [`MAX_KEY_BYTES`] too.
pub(crate) fn read_input(
    rt: &ResourceType,
    kind: Kind,
    body: &Value,
    compat: Compatibility,
) -> Result<Input, ScimError> {
    let input = read_held(rt, kind, body, compat)?;
    check_key_lengths(kind, &input, None)?;
    Ok(input)
}

/// Refuses a name or externalId longer than [`MAX_KEY_BYTES`], unless `held` (the resource
/// a write replaces) has it already: one stored before the limit can still be written.
pub(crate) fn check_key_lengths(
    kind: Kind,
    input: &Input,
    held: Option<&Resource>,
) -> Result<(), ScimError> {
    let name_attr = match kind {
        Kind::User => "userName",
        Kind::Group => "displayName",
    };
    let kept = |value: &str, held_value: Option<&str>| held_value == Some(value);
    let name = &input.name;
    if !kept(name, held.map(|r| r.name.as_str()))
        && (name.len() > MAX_KEY_BYTES || crate::scim::text::fold(name).len() > MAX_KEY_BYTES)
    {
        return Err(invalid(format!(
            "`{name_attr}` is longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    if let Some(id) = &input.external_id
        && !kept(id, held.and_then(|r| r.external_id.as_deref()))
        && id.len() > MAX_KEY_BYTES
    {
        return Err(invalid(format!(
            "`externalId` is longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

/// [`read_input`] without the length limit: for what a store or a target holds already.
pub(crate) fn read_held(
    rt: &ResourceType,
    kind: Kind,
    body: &Value,
    compat: Compatibility,
) -> Result<Input, ScimError> {
    let Value::Object(fields) = body else {
        return Err(ScimError::bad_request(
            "invalidSyntax",
            "the body must be a JSON object",
        ));
    };
    let mut attributes = Map::new();
    let mut external_id = None;
    let mut members = None;
    let mut password = None;
    for (key, value) in fields {
        if key.eq_ignore_ascii_case("schemas") {
            check_schemas(value)?;
            continue;
        }
        if key.eq_ignore_ascii_case("id") || key.eq_ignore_ascii_case("meta") {
            continue; // read-only; clients echo them back
        }
        if key.eq_ignore_ascii_case("externalId") {
            external_id = match value {
                Value::Null => None,
                Value::String(s) if s.contains('\0') => {
                    return Err(invalid("`externalId` may not contain U+0000"));
                }
                Value::String(s) => Some(s.clone()),
                _ => return Err(invalid("`externalId` must be a string")),
            };
            continue;
        }
        if kind == Kind::Group && key.eq_ignore_ascii_case("members") {
            members = Some(member_ids(value)?);
            continue;
        }
        if kind == Kind::User && key.eq_ignore_ascii_case("password") {
            password = match value {
                Value::Null => None,
                Value::String(s) if s.is_empty() => return Err(invalid("`password` is empty")),
                Value::String(s) if s.len() > MAX_PASSWORD_BYTES => {
                    return Err(invalid(format!(
                        "`password` is longer than {MAX_PASSWORD_BYTES} bytes"
                    )));
                }
                Value::String(s) => Some(Password(s.clone())),
                _ => return Err(invalid("`password` must be a string")),
            };
            continue;
        }
        if let Some(ext) = rt
            .extensions
            .iter()
            .find(|e| e.schema.id.eq_ignore_ascii_case(key))
        {
            let Value::Object(inner) = value else {
                return Err(invalid(format!(
                    "`{key}` must be an object of extension attributes"
                )));
            };
            let mut out = Map::new();
            for (k, v) in inner {
                put_attribute(&ext.schema, k, v, compat, &mut out, key)?;
            }
            if !out.is_empty() {
                attributes.insert(ext.schema.id.clone(), Value::Object(out));
            }
            continue;
        }
        put_attribute(&rt.schema, key, value, compat, &mut attributes, "")?;
    }
    let name_attr = match kind {
        Kind::User => "userName",
        Kind::Group => "displayName",
    };
    let name = match attributes.get(name_attr) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(invalid(format!("`{name_attr}` is required"))),
    };
    let active = match attributes.get("active") {
        Some(Value::Bool(b)) => *b,
        _ => true,
    };
    Ok(Input {
        name,
        external_id,
        active,
        attributes,
        members,
        password,
    })
}

/// How a body with a new primary value came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edit {
    /// A create or replace: the body is the whole resource.
    Whole,
    /// A PATCH: a value made primary takes that from the others.
    Patch,
}

/// At most one value of a multi-valued attribute is `primary` (RFC 7643 §2.4).
///
/// A value of `attributes` marked primary is new unless `held` held it as primary: the
/// same value, or one with the same `value`; of two new, one where the held primary was, of
/// its `type`, is that primary edited (a PATCH may change the primary email and make
/// another primary at once). When one is new, a PATCH takes primary from the others (RFC
/// 7644 §3.5.2); a create or replace with two primaries, whose body says it all, is
/// refused, as is a PATCH with two new. Several primaries held already (stored before this
/// check) are left alone, so that echoing them back fails no PATCH or PUT. A create passes
/// an empty `held`.
pub(crate) fn settle_primaries(
    held: &Map<String, Value>,
    attributes: &mut Map<String, Value>,
    edit: Edit,
) -> Result<(), ScimError> {
    fn primary(value: &Value) -> bool {
        value.as_object().is_some_and(|o| {
            o.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("primary")
                    && (v == &Value::Bool(true)
                        || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true")))
            })
        })
    }
    let settle = |path: &str, was: Option<&Value>, items: &mut Vec<Value>| {
        let held: &[Value] = was.and_then(Value::as_array).map_or(&[], Vec::as_slice);
        let was_primary = |item: &Value| {
            held.iter()
                .filter(|h| primary(h))
                .any(|h| h == item || h.get("value").is_some_and(|v| Some(v) == item.get("value")))
        };
        let mut new: Vec<usize> = (0..items.len())
            .filter(|&i| primary(&items[i]) && !was_primary(&items[i]))
            .collect();
        // Of two new, one where the held primary was, of its type, is that primary edited.
        let edited = |i: usize| {
            held.get(i).is_some_and(|h| {
                primary(h)
                    && h.get("type")
                        .is_some_and(|t| Some(t) == items[i].get("type"))
            })
        };
        if new.len() > 1 && new.iter().filter(|&&i| !edited(i)).count() == 1 {
            new.retain(|&i| !edited(i));
        }
        let primaries = items.iter().filter(|v| primary(v)).count();
        match new[..] {
            [] => Ok(()),
            _ if primaries == 1 => Ok(()),
            [chosen] if edit == Edit::Patch => {
                for (i, item) in items.iter_mut().enumerate() {
                    if i != chosen
                        && primary(item)
                        && let Some(o) = item.as_object_mut()
                    {
                        o.retain(|k, _| !k.eq_ignore_ascii_case("primary"));
                        o.insert("primary".into(), Value::Bool(false));
                    }
                }
                Ok(())
            }
            _ => Err(invalid(format!(
                "`{path}`: {primaries} values are marked primary; at most one may be"
            ))),
        }
    };
    for (key, value) in attributes.iter_mut() {
        let was = held.get(key);
        match value {
            Value::Array(items) => settle(key, was, items)?,
            // An extension's attributes.
            Value::Object(inner) if key.contains(':') => {
                for (k, v) in inner.iter_mut() {
                    if let Value::Array(items) = v {
                        settle(&format!("{key}:{k}"), was.and_then(|w| w.get(k)), items)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a change to an immutable attribute (or sub-attribute) that already has a value:
/// it may be set once, on creation or later, and never changed (RFC 7643 §2.2).
pub(crate) fn check_immutable(
    rt: &ResourceType,
    old: &Value,
    new: &Map<String, Value>,
) -> Result<(), ScimError> {
    let schemas = std::iter::once((None, &*rt.schema)).chain(
        rt.extensions
            .iter()
            .map(|e| (Some(e.schema.id.as_str()), &*e.schema)),
    );
    for (urn, schema) in schemas {
        let (old_container, new_container) = match urn {
            None => (Some(old), Some(new)),
            Some(urn) => (old.get(urn), new.get(urn).and_then(Value::as_object)),
        };
        let Some(old_container) = old_container else {
            continue;
        };
        for attr in &schema.attributes {
            let before = old_container.get(&attr.name);
            let after = new_container.and_then(|c| c.get(&attr.name));
            let changed = |b: Option<&Value>, a: Option<&Value>| {
                b.is_some_and(|b| !b.is_null() && Some(b) != a)
            };
            if attr.mutability == Mutability::Immutable && changed(before, after) {
                return Err(ScimError::bad_request(
                    "mutability",
                    format!("`{}` is immutable once set", attr.name),
                ));
            }
            if !attr.multi_valued {
                for sub in attr
                    .sub_attributes
                    .iter()
                    .filter(|s| s.mutability == Mutability::Immutable)
                {
                    let b = before.and_then(|v| v.get(&sub.name));
                    let a = after.and_then(|v| v.get(&sub.name));
                    if changed(b, a) {
                        return Err(ScimError::bad_request(
                            "mutability",
                            format!("`{}.{}` is immutable once set", attr.name, sub.name),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_schemas(value: &Value) -> Result<(), ScimError> {
    match value {
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(()),
        _ => Err(invalid("`schemas` must be an array of schema URNs")),
    }
}

/// The ids of a `members` value: a list of `{"value": id, …}` (a single one is taken too).
pub(crate) fn member_ids(value: &Value) -> Result<Vec<String>, ScimError> {
    let items: Vec<&Value> = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items.iter().collect(),
        one @ Value::Object(_) => vec![one],
        _ => return Err(invalid("`members` must be an array of objects")),
    };
    items
        .into_iter()
        .map(|m| {
            match m
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("value")))
            {
                // No id holds U+0000 (PostgreSQL text cannot).
                Some((_, Value::String(id))) if id.contains('\0') => {
                    Err(invalid("a member's `value` may not contain U+0000"))
                }
                Some((_, Value::String(id))) => Ok(id.clone()),
                _ => Err(invalid("each member needs a `value` with the member's id")),
            }
        })
        .collect()
}

/// Checks one attribute of `schema` and stores it under its canonical name, unless it is
/// read-only (ignored) or write-only (checked, not kept).
fn put_attribute(
    schema: &Schema,
    key: &str,
    value: &Value,
    compat: Compatibility,
    out: &mut Map<String, Value>,
    prefix: &str,
) -> Result<(), ScimError> {
    let Some(attr) = schema.attribute(key) else {
        let shown = if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}:{key}")
        };
        return Err(invalid(format!("unknown attribute `{shown}`")));
    };
    if attr.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    let checked = check_value(attr, value, compat, &attr.name)?;
    if attr.mutability == Mutability::WriteOnly {
        return Ok(()); // an extension's write-only attribute: checked, never kept
    }
    match checked {
        Some(v) => {
            out.insert(attr.name.clone(), v);
        }
        None => {
            out.remove(&attr.name);
        }
    }
    Ok(())
}

/// Checks `value` against `attr`; `None` for an empty value (null, `[]`, `{}`).
pub(crate) fn check_value(
    attr: &Attribute,
    value: &Value,
    compat: Compatibility,
    path: &str,
) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if attr.multi_valued {
        let Value::Array(items) = value else {
            return Err(invalid(format!("`{path}` is multi-valued: send an array")));
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = check_single(attr, item, compat, path)? {
                out.push(v);
            }
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    check_single(attr, value, compat, path)
}

fn check_single(
    attr: &Attribute,
    value: &Value,
    compat: Compatibility,
    path: &str,
) -> Result<Option<Value>, ScimError> {
    let wrong = |what: &str| invalid(format!("`{path}` must be {what}"));
    Ok(Some(match attr.ty {
        AttributeType::Complex => {
            let Value::Object(fields) = value else {
                return Err(wrong("an object"));
            };
            let mut out = Map::new();
            for (k, v) in fields {
                let Some(sub) = attr.sub_attribute(k) else {
                    return Err(invalid(format!("unknown sub-attribute `{path}.{k}`")));
                };
                // The server's to set (`manager.displayName`): ignored, as a read-only
                // attribute is.
                if sub.mutability == Mutability::ReadOnly {
                    continue;
                }
                if let Some(v) = check_single(sub, v, compat, &format!("{path}.{}", sub.name))? {
                    out.insert(sub.name.clone(), v);
                }
            }
            if out.is_empty() {
                return Ok(None);
            }
            Value::Object(out)
        }
        _ if value.is_null() => return Ok(None),
        AttributeType::String | AttributeType::Reference => match value {
            // U+0000 ends text in C and in SQLite's text functions: refused, so that stored
            // text reads the same everywhere.
            Value::String(s) if s.contains('\0') => {
                return Err(invalid(format!("`{path}` may not contain U+0000")));
            }
            Value::String(_) => value.clone(),
            _ => return Err(wrong("a string")),
        },
        AttributeType::Binary => match value {
            Value::String(s) if is_base64(s) => value.clone(),
            _ => return Err(wrong("base64 text")),
        },
        AttributeType::Boolean => match value {
            Value::Bool(_) => value.clone(),
            Value::String(s) if compat.string_booleans && s.eq_ignore_ascii_case("true") => {
                Value::Bool(true)
            }
            Value::String(s) if compat.string_booleans && s.eq_ignore_ascii_case("false") => {
                Value::Bool(false)
            }
            _ => return Err(wrong("a boolean")),
        },
        AttributeType::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => value.clone(),
            _ => return Err(wrong("an integer")),
        },
        AttributeType::Decimal => match value {
            Value::Number(_) => value.clone(),
            _ => return Err(wrong("a number")),
        },
        AttributeType::DateTime => match value {
            Value::String(s) => {
                DateTime::parse(s).map_err(|e| invalid(format!("`{path}`: {e}")))?;
                value.clone()
            }
            _ => return Err(wrong("a dateTime string")),
        },
    }))
}

fn is_base64(s: &str) -> bool {
    s.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_' | b'\r' | b'\n')
    })
}

/// What to include in a rendered resource (RFC 7644 §3.9).
#[derive(Debug, Clone, Default)]
pub(crate) struct Projection {
    pub(crate) attributes: Vec<AttrPath>,
    pub(crate) excluded: Vec<AttrPath>,
}

impl Projection {
    /// Parses the `attributes` and `excludedAttributes` parameters (comma-separated paths).
    pub(crate) fn parse(
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Self, ScimError> {
        let list = |text: Option<&str>| -> Result<Vec<AttrPath>, ScimError> {
            text.map(|t| t.split(',').map(str::trim).filter(|s| !s.is_empty()))
                .into_iter()
                .flatten()
                .map(|p| AttrPath::parse(p).map_err(ScimError::from))
                .collect()
        };
        Ok(Self {
            attributes: list(attributes)?,
            excluded: list(excluded)?,
        })
    }

    /// Whether the top-level attribute `name` (of `schema_id`) is asked for at all; used to
    /// skip loading members nobody will see.
    pub(crate) fn wants(&self, rt: &ResourceType, name: &str) -> bool {
        let names = |paths: &[AttrPath]| paths.iter().any(|p| matches_attr(rt, p, name));
        if !self.attributes.is_empty() {
            names(&self.attributes)
        } else {
            !self
                .excluded
                .iter()
                .any(|p| p.sub_attr().is_none() && matches_attr(rt, p, name))
        }
    }
}

/// Whether `path` names the core or common attribute `name` of `rt`.
fn matches_attr(rt: &ResourceType, path: &AttrPath, name: &str) -> bool {
    rt.resolve_path(path)
        .is_some_and(|r| !r.in_extension && r.attribute.name.eq_ignore_ascii_case(name))
}

/// Renders a stored resource as SCIM JSON, projected. `members` (groups) or `groups`
/// (users) are included when given.
pub(crate) fn render(
    rt: &ResourceType,
    r: &Resource,
    members: Option<&[Member]>,
    groups: Option<&[String]>,
    base: &str,
    projection: &Projection,
) -> Value {
    project(rt, view(rt, r, members, groups, base), projection)
}

/// Applies `attributes` / `excludedAttributes` and the `returned` characteristic.
fn project(rt: &ResourceType, resource: Value, projection: &Projection) -> Value {
    let Value::Object(fields) = resource else {
        return resource;
    };
    let mut out = Map::new();
    for (key, value) in fields {
        // Extension containers: project their attributes one by one.
        if let Some(ext) = rt.extensions.iter().find(|e| e.schema.id == key) {
            if let Value::Object(inner) = value {
                let kept: Map<String, Value> = inner
                    .into_iter()
                    .filter_map(|(k, v)| {
                        let attr = ext.schema.attribute(&k)?;
                        keep(projection, rt, attr, &format!("{key}:{k}"), v).map(|v| (k, v))
                    })
                    .collect();
                if !kept.is_empty() {
                    out.insert(key, Value::Object(kept));
                }
            }
            continue;
        }
        let attr = rt
            .common_attributes()
            .iter()
            .chain(&rt.schema.attributes)
            .find(|a| a.name == key);
        match attr {
            Some(attr) => {
                if let Some(v) = keep(projection, rt, attr, &key, value) {
                    out.insert(key, v);
                }
            }
            None => {
                out.insert(key, value);
            }
        }
    }
    Value::Object(out)
}

/// The part of `value` (attribute `attr`, written `path`) the projection keeps.
fn keep(
    projection: &Projection,
    rt: &ResourceType,
    attr: &Attribute,
    path: &str,
    value: Value,
) -> Option<Value> {
    match attr.returned {
        Returned::Never => return None,
        Returned::Always => return Some(value),
        Returned::Request if projection.attributes.is_empty() => return None,
        _ if projection.attributes.is_empty() && projection.excluded.is_empty() => {
            return Some(value);
        }
        _ => {}
    }
    let Ok(me) = AttrPath::parse(path) else {
        return Some(value);
    };
    let same = |p: &AttrPath| {
        let (a, b) = (rt.resolve_path(p), rt.resolve_path(&me));
        matches!((a, b), (Some(a), Some(b)) if std::ptr::eq(a.attribute, b.attribute))
    };
    if !projection.attributes.is_empty() {
        let listed: Vec<&AttrPath> = projection.attributes.iter().filter(|p| same(p)).collect();
        if listed.is_empty() {
            return None;
        }
        if listed.iter().any(|p| p.sub_attr().is_none()) {
            return Some(value);
        }
        let subs: Vec<&str> = listed.iter().filter_map(|p| p.sub_attr()).collect();
        return filter_subs(value, |k| subs.iter().any(|s| s.eq_ignore_ascii_case(k)));
    }
    if attr.returned == Returned::Request {
        return None;
    }
    let excluded: Vec<&AttrPath> = projection.excluded.iter().filter(|p| same(p)).collect();
    if excluded.iter().any(|p| p.sub_attr().is_none()) {
        return None;
    }
    let subs: Vec<&str> = excluded.iter().filter_map(|p| p.sub_attr()).collect();
    if subs.is_empty() {
        return Some(value);
    }
    filter_subs(value, |k| !subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
}

/// Keeps the sub-attributes of a complex value (or of each value of a list) that `keep` says.
fn filter_subs(value: Value, keep: impl Fn(&str) -> bool + Copy) -> Option<Value> {
    match value {
        Value::Object(fields) => {
            let kept: Map<String, Value> = fields.into_iter().filter(|(k, _)| keep(k)).collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .into_iter()
                .filter_map(|v| filter_subs(v, keep))
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => Some(other),
    }
}
