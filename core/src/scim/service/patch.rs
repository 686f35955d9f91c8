//! PATCH (RFC 7644 §3.5.2): `add`, `replace` and `remove`, with attribute paths, value
//! filters and pathless values, applied all or none. A group's `members` are changed row by
//! row in the store, so adding one member to a large group never rewrites the group.

use serde_json::{Map, Value, json};

use super::resource::{
    Edit, Projection, check_immutable, check_key_lengths, member_ids, read_held, settle_primaries,
};
use super::{ScimError, ScimRequest, ScimResponse, Service, declares, etag};
use crate::scim::filter::eval::get as member;
use crate::scim::filter::{Compatibility, Filter, ParseOptions, Value as Literal, ValuePath};
use crate::scim::path::PatchPath;
use crate::scim::schema::{AttributeType, Mutability, ResourceType};
use crate::store::{
    Change, Content, Directory, Kind, Member, PasswordChange, Replacement, Resource, member_kind,
};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Add,
    Replace,
    Remove,
}

/// How a PATCH changes a group's members, in the order its operations say.
#[derive(Debug, Default)]
struct MemberEdits {
    /// A whole new set (`replace` on `members`, or `remove` of all of them).
    replace: Option<Vec<String>>,
    add: Vec<String>,
    remove: Vec<String>,
}

impl MemberEdits {
    fn add(&mut self, ids: Vec<String>) {
        for id in ids {
            match &mut self.replace {
                Some(set) => {
                    if !set.contains(&id) {
                        set.push(id);
                    }
                }
                None => {
                    self.remove.retain(|r| *r != id);
                    self.add.push(id);
                }
            }
        }
    }

    fn remove(&mut self, ids: Vec<String>) {
        for id in ids {
            match &mut self.replace {
                Some(set) => set.retain(|r| *r != id),
                None => {
                    self.add.retain(|a| *a != id);
                    self.remove.push(id);
                }
            }
        }
    }

    fn replace_all(&mut self, ids: Vec<String>) {
        *self = Self {
            replace: Some(ids),
            ..Self::default()
        };
    }
}

fn bad(scim_type: &'static str, detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(scim_type, detail)
}

impl Service {
    pub(super) fn patch(
        &self,
        d: &Directory,
        kind: Kind,
        id: &str,
        req: &ScimRequest,
        base: &str,
    ) -> Result<ScimResponse, ScimError> {
        self.retrying(req, || self.patch_once(d, kind, id, req, base))
    }

    fn patch_once(
        &self,
        d: &Directory,
        kind: Kind,
        id: &str,
        req: &ScimRequest,
        base: &str,
    ) -> Result<ScimResponse, ScimError> {
        // Read before anything is written (the answer renders with it): a 400 must mean
        // nothing changed.
        let projection = Self::projection(req)?;
        let compat = self.compat(d);
        // A body error is reported after the resource is found, as for any request.
        let parsed = self.body(req).and_then(|body| operations(&body, compat));
        if kind == Kind::Group
            && req.header("If-Match").is_none()
            && let Ok(ops) = &parsed
            && let Some(members) = self.member_edits_alone(d, id, ops)
        {
            // What identity providers send most: members in or out, nothing else. Neither
            // the group nor its members need be read first: the store resolves the members'
            // kinds inside its write, and checks the group exists.
            let version = self
                .store
                .change_members(d.id, id, &members.add, &members.remove)?;
            if !Self::asks_attributes(req) {
                return Ok(no_content(version));
            }
            let updated = self.existing(d, kind, id)?;
            return self.patched(&updated, req, base, &projection);
        }
        let current = self.existing(d, kind, id)?;
        let pinned = Self::if_match(req, current.version)?;
        let ops = parsed?;
        let rt = self.resource_type(kind)?;
        let removes_password = ops
            .iter()
            .any(|(op, path, _)| *op == OpKind::Remove && path.as_ref().is_some_and(is_password));
        let original = editable(&current);
        let mut doc = original.clone();
        let mut members = MemberEdits::default();
        for (op_kind, path, value) in ops {
            let mut editor = Editor {
                rt,
                kind,
                id,
                compat,
                doc: &mut doc,
                members: &mut members,
                service: self,
                directory: d,
            };
            match path {
                Some(p) => editor.apply_path(op_kind, &p, value.as_ref())?,
                None => editor.apply_pathless(op_kind, value.as_ref())?,
            }
        }
        // The result must be a valid resource, checked exactly as a PUT body is; a value
        // made primary takes that from the others.
        let mut input = read_held(rt, kind, &Value::Object(doc.clone()), compat)?;
        check_key_lengths(kind, &input, Some(&current))?;
        settle_primaries(&original, &mut input.attributes, Edit::Patch)?;
        check_immutable(rt, &current.attributes, &input.attributes)?;
        let mut change = Change::default();
        // The password is no attribute: it was set by an `add` or `replace` if the edited
        // document has one, and taken away if it has none after a `remove` of it.
        if kind == Kind::User && doc.remove("password").is_some() {
            change.password = super::password_change(d, input.password.as_ref())?;
        } else if kind == Kind::User && d.keep_password_hashes && removes_password {
            change.password = Some(PasswordChange::Clear);
        }
        if doc != original || members.replace.is_some() {
            change.replacement = Some(Replacement {
                external_id: input.external_id,
                name: input.name,
                active: input.active,
                attributes: Value::Object(input.attributes),
                members: match members.replace.take() {
                    Some(ids) => Some(self.members(d.id, &ids)?),
                    None => None,
                },
            });
        }
        change.add_members = self.members(d.id, &members.add)?;
        change.remove_members = self.known_members(d.id, &members.remove)?;
        // New attributes were computed from the content read: they are written only over
        // that content (or, with If-Match, that version). Member changes made meanwhile do
        // not conflict, and member changes alone apply to whatever the group holds now.
        if change.replacement.is_some() {
            change.unless_changed = Some(Content::of(&current));
        }
        let updated = self.store.update(d.id, kind, id, pinned, change)?;
        self.patched(&updated, req, base, &projection)
    }

    /// The answer to a PATCH that changed `updated`. Rendering a group means listing its
    /// members, which would make every member add cost the group's size: unless the client
    /// asks for attributes, a group PATCH answers 204 (RFC 7644 §3.5.2 allows it) with the
    /// new ETag.
    fn patched(
        &self,
        updated: &Resource,
        req: &ScimRequest,
        base: &str,
        projection: &Projection,
    ) -> Result<ScimResponse, ScimError> {
        if updated.kind == Kind::Group && !Self::asks_attributes(req) {
            return Ok(no_content(updated.version));
        }
        let rendered = self.render(updated, base, projection)?;
        Ok(ScimResponse::json(200, &rendered).with_header("ETag", etag(updated.version)))
    }

    /// Whether the request names the attributes to return (then a PATCH answers with them).
    fn asks_attributes(req: &ScimRequest) -> bool {
        let params = super::list::query_params(&req.query);
        ["attributes", "excludedAttributes"]
            .iter()
            .any(|p| super::list::param(&params, p).is_some())
    }

    /// The member edits of a PATCH whose every operation adds or removes members of a group
    /// by path: such a PATCH needs nothing of the group itself. `None` sends the PATCH down
    /// the general path: another attribute, a pathless operation, a whole new member set, or
    /// an error (reported there, as for any PATCH).
    fn member_edits_alone(
        &self,
        d: &Directory,
        id: &str,
        ops: &[Operation],
    ) -> Option<MemberEdits> {
        let rt = self.resource_type(Kind::Group).ok()?;
        let mut doc = Map::new();
        let mut members = MemberEdits::default();
        for (op, path, value) in ops {
            let path = path.as_ref()?;
            if !path.attr.name().eq_ignore_ascii_case("members") || path.sub_attribute().is_some() {
                return None;
            }
            let mut editor = Editor {
                rt,
                kind: Kind::Group,
                id,
                compat: self.compat(d),
                doc: &mut doc,
                members: &mut members,
                service: self,
                directory: d,
            };
            editor.apply_path(*op, path, value.as_ref()).ok()?;
        }
        (members.replace.is_none() && doc.is_empty()).then_some(members)
    }

    /// The members among `ids` that still exist; removing a vanished one is no error.
    fn known_members(&self, directory: i64, ids: &[String]) -> Result<Vec<Member>, ScimError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(kind) = member_kind(&*self.store, directory, id)? {
                out.push(Member {
                    id: id.clone(),
                    kind,
                });
            }
        }
        Ok(out)
    }
}

/// Whether `path` is the user's `password` (plain or URN-qualified).
fn is_password(path: &PatchPath) -> bool {
    path.filter.is_none()
        && path.sub_attr.is_none()
        && path.attr.sub_attr().is_none()
        && path.attr.name().eq_ignore_ascii_case("password")
        && path
            .attr
            .urn()
            .is_none_or(|u| u.eq_ignore_ascii_case(crate::scim::schema::USER_SCHEMA))
}

/// 204 with the new ETag: the answer to a group PATCH that asks for no attributes.
fn no_content(version: u64) -> ScimResponse {
    ScimResponse::empty(204, vec![("ETag".into(), etag(version))])
}

/// The resource as an editable JSON object of canonical attributes, as a PUT body would be.
fn editable(r: &Resource) -> Map<String, Value> {
    let mut doc = r.attributes.as_object().cloned().unwrap_or_default();
    if let Some(e) = &r.external_id {
        doc.insert("externalId".into(), json!(e));
    }
    if r.kind == Kind::User {
        doc.insert("active".into(), json!(r.active));
    }
    doc
}

type Operation = (OpKind, Option<PatchPath>, Option<Value>);

/// The operations of a PatchOp body, checked.
fn operations(body: &Value, compat: Compatibility) -> Result<Vec<Operation>, ScimError> {
    if !body.is_object() {
        return Err(bad("invalidSyntax", "the body must be a PatchOp object"));
    }
    let field = |name: &str| member(body, name);
    if !declares(body, PATCH_OP) && compat == Compatibility::strict() {
        return Err(bad(
            "invalidSyntax",
            format!("`schemas` must name {PATCH_OP}"),
        ));
    }
    let Some(Value::Array(ops)) = field("Operations") else {
        return Err(bad(
            "invalidSyntax",
            "a PatchOp needs an `Operations` array",
        ));
    };
    if ops.is_empty() {
        return Err(bad("invalidValue", "`Operations` is empty"));
    }
    let options = ParseOptions::default().with_compat(compat);
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            if !op.is_object() {
                return Err(bad(
                    "invalidSyntax",
                    format!("operation {i} is not an object"),
                ));
            }
            let get = |name: &str| member(op, name);
            // Microsoft Entra ID capitalises the operation names.
            let kind = match get("op")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("add") => OpKind::Add,
                Some("replace") => OpKind::Replace,
                Some("remove") => OpKind::Remove,
                other => {
                    return Err(bad(
                        "invalidSyntax",
                        format!(
                            "operation {i}: `op` must be add, replace or remove, not {other:?}"
                        ),
                    ));
                }
            };
            let path = match get("path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) if p.trim().is_empty() => None,
                Some(Value::String(p)) => Some(PatchPath::parse_with(p, &options)?),
                Some(_) => {
                    return Err(bad(
                        "invalidPath",
                        format!("operation {i}: `path` must be a string"),
                    ));
                }
            };
            let value = get("value").cloned();
            if kind == OpKind::Remove && path.is_none() {
                return Err(bad(
                    "noTarget",
                    format!("operation {i}: `remove` needs a `path`"),
                ));
            }
            if kind != OpKind::Remove && value.is_none() {
                return Err(bad(
                    "invalidValue",
                    format!("operation {i}: `{kind:?}` needs a `value`").to_lowercase(),
                ));
            }
            Ok((kind, path, value))
        })
        .collect()
}

struct Editor<'a> {
    rt: &'a ResourceType,
    kind: Kind,
    id: &'a str,
    compat: Compatibility,
    doc: &'a mut Map<String, Value>,
    members: &'a mut MemberEdits,
    service: &'a Service,
    directory: &'a Directory,
}

impl Editor<'_> {
    /// A pathless `add` or `replace`: each key of the value is a path (`name.givenName`,
    /// a URN-qualified name, or an extension URN holding an object).
    fn apply_pathless(&mut self, op: OpKind, value: Option<&Value>) -> Result<(), ScimError> {
        let Some(Value::Object(fields)) = value else {
            return Err(bad(
                "invalidValue",
                "an operation without `path` needs an object `value`",
            ));
        };
        for (key, v) in fields {
            if ["id", "meta", "schemas"]
                .iter()
                .any(|k| key.eq_ignore_ascii_case(k))
            {
                continue; // read-only; Okta echoes `id` back
            }
            if let Some(ext) = self
                .rt
                .extensions
                .iter()
                .find(|e| e.schema.id.eq_ignore_ascii_case(key))
            {
                let Value::Object(inner) = v else {
                    return Err(bad(
                        "invalidValue",
                        format!("`{key}` must be an object of extension attributes"),
                    ));
                };
                let urn = ext.schema.id.clone();
                for (k, v) in inner {
                    let path = PatchPath::parse(&format!("{urn}:{k}"))?;
                    self.apply_path(op, &path, Some(v))?;
                }
                continue;
            }
            let path = PatchPath::parse(key)
                .map_err(|_| bad("invalidPath", format!("`{key}` is not an attribute path")))?;
            self.apply_path(op, &path, Some(v))?;
        }
        Ok(())
    }

    fn apply_path(
        &mut self,
        op: OpKind,
        path: &PatchPath,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if self.kind == Kind::Group && path.attr.name().eq_ignore_ascii_case("members") {
            // `members.value`, `members[value eq "u1"].display`: a member is added or
            // removed whole; editing one of its parts would otherwise change nothing, or
            // drop the member.
            if path.sub_attribute().is_some() {
                return Err(bad(
                    "mutability",
                    "a member's `value`, `type` and `display` cannot be edited: add or remove the member",
                ));
            }
            return self.members(op, path, value);
        }
        if path.attr.name().eq_ignore_ascii_case("externalId") && path.attr.urn().is_none() {
            if path.sub_attribute().is_some() || path.filter.is_some() {
                return Err(bad(
                    "invalidPath",
                    format!("`externalId` is a single string: `{path}` names no part of it"),
                ));
            }
            match op {
                OpKind::Remove => {
                    self.doc.remove("externalId");
                }
                _ => {
                    self.doc
                        .insert("externalId".into(), value.cloned().unwrap_or(Value::Null));
                }
            }
            return Ok(());
        }
        let Some(resolved) = self.rt.resolve_path(&path.attr) else {
            return Err(bad(
                "invalidPath",
                format!("`{}` is not an attribute of {}", path.attr, self.rt.name),
            ));
        };
        let attr = resolved.attribute;
        let target = resolved.sub_attribute.unwrap_or(attr);
        if attr.mutability == Mutability::ReadOnly || target.mutability == Mutability::ReadOnly {
            return Err(bad("mutability", format!("`{}` is read-only", path.attr)));
        }
        // A user without `active` is active: removing the flag of a disabled user (or
        // setting it to null) would enable it, which no client means by that.
        if (op == OpKind::Remove || value.is_none_or(Value::is_null))
            && self.kind == Kind::User
            && !resolved.in_extension
            && attr.name == "active"
        {
            return Err(bad(
                "invalidValue",
                "`active` cannot be removed: replace it with true or false",
            ));
        }
        let key = attr.name.clone();
        let container: &mut Map<String, Value> = if resolved.in_extension {
            let urn = resolved.schema.id.clone();
            let slot = self
                .doc
                .entry(urn)
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            slot.as_object_mut()
                .ok_or_else(|| bad("invalidValue", "extension is not an object"))?
        } else {
            self.doc
        };
        // Entra sends the manager as a bare id.
        let wrapped;
        let value = match value {
            Some(Value::String(s))
                if self.compat.string_booleans
                    && attr.ty == AttributeType::Complex
                    && !attr.multi_valued
                    && resolved.sub_attribute.is_none()
                    && path.filter.is_none() =>
            {
                wrapped = json!({"value": s});
                Some(&wrapped)
            }
            v => v,
        };
        let sub = resolved.sub_attribute.map(|s| s.name.clone()).or_else(|| {
            path.sub_attr
                .as_ref()
                .and_then(|s| attr.sub_attribute(s))
                .map(|s| s.name.clone())
        });
        if path.sub_attr.is_some() && sub.is_none() {
            return Err(bad(
                "invalidPath",
                format!(
                    "`{}` has no sub-attribute `{}`",
                    attr.name,
                    path.sub_attr.as_deref().unwrap_or("")
                ),
            ));
        }
        match &path.filter {
            None => edit_plain(
                container,
                &key,
                attr.multi_valued,
                sub.as_deref(),
                op,
                value,
            ),
            Some(filter) => {
                let matcher = ValuePath {
                    path: path.attr.clone(),
                    filter: filter.clone(),
                    span: Default::default(),
                };
                let compiled =
                    Filter::ValuePath(Box::new(matcher)).compile_with(self.rt, self.compat)?;
                let wrap = |entry: &Value| -> Value {
                    let inner = json!({ key.as_str(): [entry] });
                    if resolved.in_extension {
                        json!({ resolved.schema.id.as_str(): inner })
                    } else {
                        inner
                    }
                };
                let entries = match container.get_mut(&key) {
                    Some(Value::Array(items)) => items,
                    Some(other) if other.is_object() => {
                        *other = Value::Array(vec![other.clone()]);
                        other
                            .as_array_mut()
                            .ok_or_else(|| bad("invalidValue", "not a list"))?
                    }
                    _ => {
                        container.insert(key.clone(), Value::Array(Vec::new()));
                        container
                            .get_mut(&key)
                            .and_then(Value::as_array_mut)
                            .ok_or_else(|| bad("invalidValue", "not a list"))?
                    }
                };
                let matched: Vec<usize> = (0..entries.len())
                    .filter(|&i| compiled.matches(&wrap(&entries[i])))
                    .collect();
                match (op, &sub) {
                    (OpKind::Remove, None) => {
                        let mut i = 0;
                        entries.retain(|_| {
                            let keep = !matched.contains(&i);
                            i += 1;
                            keep
                        });
                    }
                    (OpKind::Remove, Some(sub)) => {
                        for &i in &matched {
                            if let Some(o) = entries[i].as_object_mut() {
                                o.remove(sub);
                            }
                        }
                    }
                    (_, Some(sub)) if matched.is_empty() => {
                        // Entra writes `emails[type eq "work"].value` for a user without a work
                        // email: create the entry the filter describes.
                        if !self.compat.value_path_sub_attribute {
                            return Err(bad(
                                "noTarget",
                                format!("no value of `{}` matches the filter", attr.name),
                            ));
                        }
                        let mut entry = equalities(filter).ok_or_else(|| {
                            bad(
                                "noTarget",
                                format!("no value of `{}` matches the filter", attr.name),
                            )
                        })?;
                        entry.insert(sub.clone(), value.cloned().unwrap_or(Value::Null));
                        entries.push(Value::Object(entry));
                    }
                    (_, Some(sub)) => {
                        for &i in &matched {
                            if let Some(o) = entries[i].as_object_mut() {
                                o.insert(sub.clone(), value.cloned().unwrap_or(Value::Null));
                            }
                        }
                    }
                    (_, None) if matched.is_empty() => {
                        return Err(bad(
                            "noTarget",
                            format!("no value of `{}` matches the filter", attr.name),
                        ));
                    }
                    (kind, None) => {
                        let Some(Value::Object(new)) = value else {
                            return Err(bad(
                                "invalidValue",
                                format!("values of `{}` are objects", attr.name),
                            ));
                        };
                        for &i in &matched {
                            match (&mut entries[i], kind) {
                                (Value::Object(old), OpKind::Add) => old.extend(new.clone()),
                                (slot, _) => *slot = Value::Object(new.clone()),
                            }
                        }
                    }
                }
                if entries.is_empty() {
                    container.remove(&key);
                }
                Ok(())
            }
        }?;
        if resolved.in_extension && container_is_empty(self.doc, &resolved.schema.id) {
            self.doc.remove(&resolved.schema.id);
        }
        Ok(())
    }

    /// `members` of a group: kept apart from the attributes and changed row by row.
    fn members(
        &mut self,
        op: OpKind,
        path: &PatchPath,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let ids = |value: Option<&Value>| member_ids(value.unwrap_or(&Value::Null));
        match (op, &path.filter) {
            (OpKind::Add, None) => self.members.add(ids(value)?),
            (OpKind::Replace, None) => self.members.replace_all(ids(value)?),
            // Entra removes exactly the listed members; without a value, all of them go.
            (OpKind::Remove, None) => match value {
                None | Some(Value::Null) => self.members.replace_all(Vec::new()),
                v => self.members.remove(ids(v)?),
            },
            (OpKind::Remove, Some(filter)) => {
                let mut ids = match value_equalities(filter) {
                    Some(ids) => ids,
                    None => self.members_matching(path)?,
                };
                // No id holds U+0000: no member to remove (and none to ask the store for).
                ids.retain(|id| !id.contains('\0'));
                self.members.remove(ids);
            }
            (_, Some(_)) => {
                return Err(bad(
                    "invalidPath",
                    "a value filter on `members` is for `remove` only",
                ));
            }
        }
        Ok(())
    }

    /// The current members a filter such as `members[type eq "Group"]` selects.
    fn members_matching(&self, path: &PatchPath) -> Result<Vec<String>, ScimError> {
        let Some(filter) = &path.filter else {
            return Ok(Vec::new());
        };
        let matcher = ValuePath {
            path: path.attr.clone(),
            filter: filter.clone(),
            span: Default::default(),
        };
        let compiled = Filter::ValuePath(Box::new(matcher)).compile_with(self.rt, self.compat)?;
        let current = self.service.store.members(self.directory.id, self.id)?;
        Ok(current
            .into_iter()
            .filter(|m| {
                compiled.matches(&json!({"members": [{"value": m.id, "type": m.kind.as_str()}]}))
            })
            .map(|m| m.id)
            .collect())
    }
}

fn container_is_empty(doc: &Map<String, Value>, key: &str) -> bool {
    doc.get(key)
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
}

/// An edit without a value filter: the attribute, or one sub-attribute of it.
fn edit_plain(
    container: &mut Map<String, Value>,
    key: &str,
    multi: bool,
    sub: Option<&str>,
    op: OpKind,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let value = value.cloned().unwrap_or(Value::Null);
    match (sub, op) {
        // A value names the values to remove, as for `members`: not every one of them.
        (None, OpKind::Remove) if multi && !value.is_null() => {
            let listed = match value {
                Value::Array(items) => items,
                one => vec![one],
            };
            if let Some(Value::Array(items)) = container.get_mut(key) {
                items.retain(|item| !listed.iter().any(|l| names_value(l, item)));
                if items.is_empty() {
                    container.remove(key);
                }
            }
        }
        (None, OpKind::Remove) => {
            container.remove(key);
        }
        (None, OpKind::Add) if multi => {
            let new = match value {
                Value::Array(items) => items,
                Value::Null => Vec::new(),
                one => vec![one],
            };
            let list = container
                .entry(key)
                .or_insert_with(|| Value::Array(Vec::new()));
            if !list.is_array() {
                *list = Value::Array(Vec::new());
            }
            if let Value::Array(items) = list {
                for v in new {
                    if !items.contains(&v) {
                        items.push(v);
                    }
                }
            }
        }
        (None, _) => match (container.get_mut(key), value) {
            // A complex value merges into what is there (RFC 7644 §3.5.2.1 and .3).
            (Some(Value::Object(old)), Value::Object(new)) if !multi => old.extend(new),
            (_, v) => {
                container.insert(key.to_owned(), v);
            }
        },
        (Some(sub), OpKind::Remove) => match container.get_mut(key) {
            Some(Value::Object(o)) => {
                o.remove(sub);
            }
            Some(Value::Array(items)) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    item.remove(sub);
                }
            }
            _ => {}
        },
        (Some(sub), _) => {
            let slot = container.entry(key).or_insert_with(|| {
                if multi {
                    Value::Array(Vec::new())
                } else {
                    Value::Object(Map::new())
                }
            });
            match slot {
                Value::Object(o) => {
                    o.insert(sub.to_owned(), value);
                }
                // No filter on a multi-valued attribute: every value's sub-attribute; with no
                // value yet, a first one that has it (else the edit would vanish).
                Value::Array(items) if !items.iter().any(Value::is_object) => {
                    items.push(json!({ sub: value }));
                }
                Value::Array(items) => {
                    for item in items.iter_mut().filter_map(Value::as_object_mut) {
                        item.insert(sub.to_owned(), value.clone());
                    }
                }
                other => {
                    *other = json!({ sub: value });
                }
            }
        }
    }
    Ok(())
}

/// Whether `listed`, a value of a `remove`, names `item`: equal, or (a complex value) every
/// sub-attribute it gives equal to the item's, so that `{"value": "a@x"}` names the work
/// email `a@x` whatever its type.
fn names_value(listed: &Value, item: &Value) -> bool {
    match (listed, item) {
        (Value::Object(given), Value::Object(held)) => {
            !given.is_empty() && given.iter().all(|(k, v)| held.get(k) == Some(v))
        }
        _ => listed == item,
    }
}

/// The entry a filter of equalities describes (`type eq "work" and primary eq true`).
fn equalities(filter: &Filter) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let mut add = |f: &Filter| -> Option<()> {
        let Filter::Compare(c) = f else { return None };
        if c.op != crate::scim::filter::CompareOp::Eq || c.path.sub_attr().is_some() {
            return None;
        }
        let v = match &c.value {
            Literal::String(s) => json!(s.as_ref()),
            Literal::Boolean(b) => json!(b),
            Literal::Integer(n) => json!(n),
            _ => return None,
        };
        out.insert(c.path.name().to_owned(), v);
        Some(())
    };
    match filter {
        Filter::And(items) => {
            for i in items {
                add(i)?;
            }
        }
        single => add(single)?,
    }
    Some(out)
}

/// The ids of `value eq "…"` (or several joined by `or`), the form Entra uses for members.
fn value_equalities(filter: &Filter) -> Option<Vec<String>> {
    let one = |f: &Filter| match f {
        Filter::Compare(c)
            if c.op == crate::scim::filter::CompareOp::Eq
                && c.path.name().eq_ignore_ascii_case("value")
                && c.path.sub_attr().is_none() =>
        {
            match &c.value {
                Literal::String(s) => Some(s.to_string()),
                _ => None,
            }
        }
        _ => None,
    };
    match filter {
        Filter::Or(items) => items.iter().map(one).collect(),
        single => one(single).map(|id| vec![id]),
    }
}
