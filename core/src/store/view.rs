//! A stored resource as SCIM JSON, before any projection: what the service renders and what
//! filters and `sortBy` see. One function, so that what a client reads and what its filter
//! matched can never disagree.

use serde_json::{Map, Value, json};

use super::{Kind, Member, Resource};
use crate::scim::schema::ResourceType;

/// The endpoint (`Users` or `Groups`) resources of `kind` live under.
pub(crate) const fn endpoint(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "Users",
        Kind::Group => "Groups",
    }
}

/// The weak ETag of a version: what `meta.version` holds.
pub(crate) fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// `r` as SCIM JSON: `schemas`, `id`, `externalId`, its attributes, `active` (users),
/// `members` (groups, when given), `groups` (users, when given and not empty) and `meta`.
/// References are written under `base`, the directory's endpoint URL.
pub(crate) fn view(
    rt: &ResourceType,
    r: &Resource,
    members: Option<&[Member]>,
    groups: Option<&[String]>,
    base: &str,
) -> Value {
    let mut out = Map::new();
    let mut schemas = vec![Value::String(rt.schema.id.clone())];
    for ext in &rt.extensions {
        if r.attributes.get(&ext.schema.id).is_some() {
            schemas.push(Value::String(ext.schema.id.clone()));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(r.id.clone()));
    if let Some(e) = &r.external_id {
        out.insert("externalId".into(), Value::String(e.clone()));
    }
    if let Value::Object(attrs) = &r.attributes {
        for (k, v) in attrs {
            out.insert(k.clone(), v.clone());
        }
    }
    if r.kind == Kind::User {
        out.insert("active".into(), Value::Bool(r.active));
    }
    if let Some(members) = members {
        let list = members
            .iter()
            .map(|m| {
                json!({
                    "value": m.id,
                    "type": m.kind.as_str(),
                    "$ref": format!("{base}/{}/{}", endpoint(m.kind), m.id),
                })
            })
            .collect();
        out.insert("members".into(), Value::Array(list));
    }
    if let Some(groups) = groups.filter(|g| !g.is_empty()) {
        let list = groups
            .iter()
            .map(|g| json!({"value": g, "type": "direct", "$ref": format!("{base}/Groups/{g}")}))
            .collect();
        out.insert("groups".into(), Value::Array(list));
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": r.kind.as_str(),
            "created": r.created.to_string(),
            "lastModified": r.modified.to_string(),
            "location": format!("{base}/{}/{}", endpoint(r.kind), r.id),
            "version": etag(r.version),
        }),
    );
    Value::Object(out)
}
