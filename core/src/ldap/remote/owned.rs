//! What of a remote resource is the sync's: the attributes its mapping sets.
//!
//! A remote endpoint is shared. Its admins, or other tools, may set attributes the mapping
//! does not (a user's `title`, `name.middleName`, an extension's `costCenter`). The sync
//! plans against the parts it owns only, and changes what differs by PATCH: a PUT of the
//! mapped attributes would clear the others at every server that replaces whole resources.
//!
//! Ownership goes as deep as the mapping names it: `name.givenName` owns that
//! sub-attribute, an extension's attribute owns that attribute. A multi-valued attribute
//! set through a filter (`emails[type eq "work"].value`) is owned whole: its values carry
//! no identity to tell the sync's from others'.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::ldap::config::{SyncConfig, UserSearch};
use crate::ldap::plan::AttributeChange;
use crate::store::Kind;

/// The core user schema: a path qualified with it is a path of the top level.
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// What the sync owns of its users and of its groups.
#[derive(Debug)]
pub(super) struct Ownership {
    users: Owned,
    groups: Owned,
}

impl Ownership {
    pub(super) fn of(config: &SyncConfig) -> Self {
        Self {
            users: Owned::users(&config.users),
            groups: Owned::groups(),
        }
    }

    /// What the sync owns of each resource of `kind`.
    pub(super) fn of_kind(&self, kind: Kind) -> &Owned {
        match kind {
            Kind::User => &self.users,
            Kind::Group => &self.groups,
        }
    }
}

/// A part of a resource the sync owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Owned {
    /// The whole value.
    Whole,
    /// These keys of an object (in lower case: SCIM names are case-insensitive).
    Parts(BTreeMap<String, Owned>),
}

impl Owned {
    /// What the sync owns of its users: `userName`, `active` and what the mapping sets.
    pub(super) fn users(users: &UserSearch) -> Self {
        let mut owned = Self::Parts(BTreeMap::new());
        owned.insert(&["userName"]);
        owned.insert(&["active"]);
        for (path, _) in &users.attributes {
            let mut keys = Vec::with_capacity(3);
            if let Some(urn) = path.attr.urn()
                && !urn.eq_ignore_ascii_case(CORE_USER)
            {
                keys.push(urn);
            }
            keys.push(path.attr.name());
            if path.filter.is_none()
                && let Some(sub) = path.attr.sub_attr()
            {
                keys.push(sub);
            }
            owned.insert(&keys);
        }
        owned
    }

    /// What the sync owns of its groups: their `displayName` (members are changed apart).
    pub(super) fn groups() -> Self {
        let mut owned = Self::Parts(BTreeMap::new());
        owned.insert(&["displayName"]);
        owned
    }

    /// Owns the part at `keys` (a part whose parent is owned whole is owned already).
    fn insert(&mut self, keys: &[&str]) {
        let (Self::Parts(parts), Some((first, rest))) = (self, keys.split_first()) else {
            return;
        };
        let key = first.to_lowercase();
        if rest.is_empty() {
            parts.insert(key, Self::Whole);
        } else {
            parts
                .entry(key)
                .or_insert_with(|| Self::Parts(BTreeMap::new()))
                .insert(rest);
        }
    }

    /// The owned part of `key`, if any.
    fn part(&self, key: &str) -> Option<&Self> {
        match self {
            Self::Whole => Some(self),
            Self::Parts(parts) => parts.get(&key.to_lowercase()),
        }
    }

    /// `attributes` without what the sync does not own.
    pub(super) fn keep(&self, attributes: Map<String, Value>) -> Map<String, Value> {
        attributes
            .into_iter()
            .filter_map(|(key, value)| match (self.part(&key)?, value) {
                (Self::Whole, value) => Some((key, value)),
                (parts, Value::Object(inner)) => {
                    let inner = parts.keep(inner);
                    (!inner.is_empty()).then_some((key, Value::Object(inner)))
                }
                // Not the object the schema says: kept, so that it shows as changed.
                (_, value) => Some((key, value)),
            })
            .collect()
    }

    /// The PATCH operations that take the owned attributes from each change's `old` to its
    /// `new`: a `replace` for each owned part that differs, a `remove` for each gone.
    pub(super) fn operations(&self, changes: &[AttributeChange]) -> Vec<Value> {
        let mut operations = Vec::new();
        for change in changes {
            let owned = self.part(&change.attribute).unwrap_or(&Self::Whole);
            owned.differences(
                &change.attribute,
                change.attribute.contains(':'),
                &change.old,
                &change.new,
                &mut operations,
            );
        }
        operations
    }

    /// Adds to `out` the operations on `path` (an extension's URN when `urn`) from `old` to
    /// `new`, part by part where the sync owns parts of an object.
    fn differences(&self, path: &str, urn: bool, old: &Value, new: &Value, out: &mut Vec<Value>) {
        if old == new {
            return;
        }
        let object = |v: &Value| match v {
            Value::Object(m) => Some(m.clone()),
            Value::Null => Some(Map::new()),
            _ => None,
        };
        if let (Self::Parts(_), Some(old), Some(new)) = (self, object(old), object(new)) {
            let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            for key in keys {
                // An extension's attributes follow its URN after `:`, sub-attributes `.`.
                let inner = if urn {
                    format!("{path}:{key}")
                } else {
                    format!("{path}.{key}")
                };
                self.part(key).unwrap_or(&Self::Whole).differences(
                    &inner,
                    false,
                    old.get(key).unwrap_or(&Value::Null),
                    new.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        } else if new.is_null() {
            out.push(json!({"op": "remove", "path": path}));
        } else {
            out.push(json!({"op": "replace", "path": path, "value": new}));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn owned() -> Owned {
        let config = SyncConfig::from_toml(&format!(
            "directory = \"corp\"\n[connection]\nurls = [\"ldap://127.0.0.1:1\"]\n\
             tls = \"none\"\n[users]\nbase = \"dc=example,dc=com\"\n[users.attributes]\n\
             'name.givenName' = \"givenName\"\n'emails[type eq \"work\"].value' = \"mail\"\n\
             title = \"title\"\n'{ENTERPRISE}:department' = \"ou\"\n\
             '{ENTERPRISE}:manager.value' = \"manager\"\n"
        ))
        .unwrap();
        Owned::users(&config.users)
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_target_s_own_attributes_are_not_the_sync_s() {
        let held = object(json!({
            "userName": "ann",
            "active": true,
            "title": "Engineer",
            "nickName": "annie",
            "name": {"givenName": "Ann", "middleName": "B"},
            "emails": [{"type": "work", "value": "a@x"}, {"type": "home", "value": "a@y"}],
            ENTERPRISE: {"department": "R&D", "costCenter": "7", "manager": {"value": "m1", "displayName": "M"}},
            "phoneNumbers": [{"value": "1"}],
        }));
        assert_eq!(
            Value::Object(owned().keep(held)),
            json!({
                "userName": "ann",
                "active": true,
                "title": "Engineer",
                "name": {"givenName": "Ann"},
                "emails": [{"type": "work", "value": "a@x"}, {"type": "home", "value": "a@y"}],
                ENTERPRISE: {"department": "R&D", "manager": {"value": "m1"}},
            })
        );
        // Nothing owned left in an object: the object is not held.
        let held = object(json!({"userName": "ann", "name": {"middleName": "B"}}));
        assert_eq!(
            Value::Object(owned().keep(held)),
            json!({"userName": "ann"})
        );
    }

    #[test]
    fn only_the_parts_that_differ_are_sent() {
        let change = |attribute: &str, old: Value, new: Value| AttributeChange {
            attribute: attribute.into(),
            old,
            new,
        };
        let operations = owned().operations(&[
            change(
                "name",
                json!({"givenName": "Ann"}),
                json!({"givenName": "Anne"}),
            ),
            change("title", json!("Engineer"), Value::Null),
            change(
                ENTERPRISE,
                json!({"department": "R&D", "manager": {"value": "m1"}}),
                json!({"department": "Ops"}),
            ),
            change(
                "emails",
                Value::Null,
                json!([{"type": "work", "value": "a@x"}]),
            ),
            change("active", json!(true), json!(false)),
        ]);
        assert_eq!(
            Value::Array(operations),
            json!([
                {"op": "replace", "path": "name.givenName", "value": "Anne"},
                {"op": "remove", "path": "title"},
                {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Ops"},
                {"op": "remove", "path": format!("{ENTERPRISE}:manager.value")},
                {"op": "replace", "path": "emails", "value": [{"type": "work", "value": "a@x"}]},
                {"op": "replace", "path": "active", "value": false},
            ])
        );
    }

    #[test]
    fn a_group_owns_its_display_name_only() {
        let held = object(json!({"displayName": "staff", "members": [], "x": 1}));
        assert_eq!(
            Value::Object(Owned::groups().keep(held)),
            json!({"displayName": "staff"})
        );
    }
}
