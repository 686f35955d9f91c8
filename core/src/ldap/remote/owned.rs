//! What of a remote resource is the sync's: the attributes its mapping sets.
//!
//! A remote endpoint is shared. Its admins, or other tools, may set attributes the mapping
//! does not (a user's `title`, `name.middleName`, an extension's `costCenter`). The sync
//! plans against the parts it owns only, and changes what differs by PATCH: a PUT of the
//! mapped attributes would clear the others at every server that replaces whole resources.
//!
//! Ownership goes as deep as the mapping names it: `name.givenName` owns that
//! sub-attribute, an extension's attribute owns that attribute, and a mapping through a
//! filter (`emails[type eq "work"].value`) owns that sub-attribute of the element its filter
//! selects: a `home` email set at the endpoint stays, and so does the work email's `display`.
//! An element holding none of the mapped sub-attributes is the endpoint's own; one whose
//! mapped values are all gone from the source is removed whole. A mapping of a whole
//! element (`emails[type eq "work"]`) owns it whole.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::ldap::config::{SyncConfig, UserSearch};
use crate::ldap::plan::{AttributeChange, equalities};
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
    /// The elements of a multi-valued attribute that the mapping's filters select.
    Elements(Vec<Element>),
}

/// An element of a multi-valued attribute the mapping sets: `emails[type eq "work"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Element {
    /// The filter's values (`{"type": "work"}`): an element holding them is this one.
    equalities: Map<String, Value>,
    /// The mappings into it (by index), each with its sub-attribute (`value`; none for the
    /// whole element): the mapped body lists an element where the first of these that gave
    /// a value stands.
    mappings: Vec<(usize, Option<String>)>,
}

impl Element {
    fn selects(&self, item: &Value) -> bool {
        self.equalities
            .iter()
            .all(|(k, v)| item.get(k).is_some_and(|x| x == v))
    }

    /// Whether a mapping sets the whole element, not sub-attributes of it.
    fn whole(&self) -> bool {
        self.mappings.iter().any(|(_, sub)| sub.is_none())
    }

    /// `item` with only what the sync owns of it: its filter's values and the mapped
    /// sub-attributes (all of it when the element is owned whole); `None` when it holds no
    /// mapped sub-attribute: an element the endpoint made, none of the sync's.
    fn owned_part(&self, item: &Value) -> Option<Value> {
        let Value::Object(fields) = item else {
            return Some(item.clone());
        };
        if self.whole() {
            return Some(item.clone());
        }
        let mapped = |k: &str| {
            self.mappings
                .iter()
                .any(|(_, sub)| sub.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(k)))
        };
        if !fields.keys().any(|k| mapped(k)) {
            return None;
        }
        Some(Value::Object(
            fields
                .iter()
                .filter(|(k, _)| self.equalities.contains_key(*k) || mapped(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ))
    }

    /// Where the mapped body lists `item`: at the first of its mappings that it holds.
    fn place(&self, item: &Value) -> usize {
        self.mappings
            .iter()
            .filter(|(_, sub)| sub.as_ref().is_none_or(|s| item.get(s).is_some()))
            .map(|(i, _)| *i)
            .min()
            .unwrap_or(usize::MAX)
    }

    /// Its path under `attribute`: `emails[type eq "work"]`.
    fn path(&self, attribute: &str) -> String {
        let terms: Vec<String> = self
            .equalities
            .iter()
            .map(|(k, v)| format!("{k} eq {v}"))
            .collect();
        format!("{attribute}[{}]", terms.join(" and "))
    }
}

impl Owned {
    /// What the sync owns of its users: `userName`, `active` and what the mapping sets.
    pub(super) fn users(users: &UserSearch) -> Self {
        let mut owned = Self::Parts(BTreeMap::new());
        owned.insert(&["userName"]);
        owned.insert(&["active"]);
        for (index, (path, _)) in users.attributes.iter().enumerate() {
            let mut keys = Vec::with_capacity(3);
            if let Some(urn) = path.attr.urn()
                && !urn.eq_ignore_ascii_case(CORE_USER)
            {
                keys.push(urn);
            }
            keys.push(path.attr.name());
            // The configuration takes equality filters only; another would be owned whole.
            match path.filter.as_ref().map(equalities) {
                Some(Some(equalities)) => {
                    owned.insert_element(&keys, equalities, (index, path.sub_attr.clone()));
                }
                Some(None) => owned.insert(&keys),
                None => {
                    keys.extend(path.attr.sub_attr());
                    owned.insert(&keys);
                }
            }
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

    /// Owns the element of the multi-valued attribute at `keys` that holds `equalities`,
    /// set by `mapping` (unless the attribute is owned whole).
    fn insert_element(
        &mut self,
        keys: &[&str],
        equalities: Map<String, Value>,
        mapping: (usize, Option<String>),
    ) {
        let (Self::Parts(parts), Some((first, rest))) = (self, keys.split_first()) else {
            return;
        };
        let part = parts
            .entry(first.to_lowercase())
            .or_insert_with(|| match rest {
                [] => Self::Elements(Vec::new()),
                _ => Self::Parts(BTreeMap::new()),
            });
        if !rest.is_empty() {
            return part.insert_element(rest, equalities, mapping);
        }
        if let Self::Elements(elements) = part {
            match elements.iter_mut().find(|e| e.equalities == equalities) {
                Some(element) => element.mappings.push(mapping),
                None => elements.push(Element {
                    equalities,
                    mappings: vec![mapping],
                }),
            }
        }
    }

    /// The owned part of `key`, if any.
    fn part(&self, key: &str) -> Option<&Self> {
        match self {
            Self::Whole => Some(self),
            Self::Parts(parts) => parts.get(&key.to_lowercase()),
            Self::Elements(_) => None,
        }
    }

    /// The owned parts of the items of a multi-valued attribute that `elements` select,
    /// listed as the mapped body lists them.
    fn selected(elements: &[Element], items: &[Value]) -> Vec<Value> {
        let mut selected: Vec<(usize, Value)> = items
            .iter()
            .filter_map(|item| {
                let element = elements.iter().find(|e| e.selects(item))?;
                Some((element.place(item), element.owned_part(item)?))
            })
            .collect();
        selected.sort_by_key(|(place, _)| *place);
        selected.into_iter().map(|(_, item)| item).collect()
    }

    /// `attributes` without what the sync does not own.
    pub(super) fn keep(&self, attributes: Map<String, Value>) -> Map<String, Value> {
        attributes
            .into_iter()
            .filter_map(|(key, value)| match (self.part(&key)?, value) {
                (Self::Whole, value) => Some((key, value)),
                (Self::Elements(elements), Value::Array(items)) => {
                    let items = Self::selected(elements, &items);
                    (!items.is_empty()).then_some((key, Value::Array(items)))
                }
                (parts @ Self::Parts(_), Value::Object(inner)) => {
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
        let items = |v: &Value| match v {
            Value::Array(items) => Some(items.clone()),
            Value::Null => Some(Vec::new()),
            _ => None,
        };
        if let (Self::Elements(elements), Some(old), Some(new)) = (self, items(old), items(new)) {
            // Element by element: the others' elements are neither read nor sent.
            for element in elements {
                let was = Self::selected(std::slice::from_ref(element), &old);
                let is = Self::selected(std::slice::from_ref(element), &new);
                if was == is {
                    continue;
                }
                let at = element.path(path);
                match (was.as_slice(), is.as_slice()) {
                    (_, []) => out.push(json!({"op": "remove", "path": at})),
                    ([], _) => out.push(json!({"op": "add", "path": path, "value": is})),
                    ([_], [one]) if element.whole() => {
                        out.push(json!({"op": "replace", "path": at, "value": one}));
                    }
                    // Sub-attribute by sub-attribute: the element's others stay.
                    ([Value::Object(old)], [Value::Object(new)]) => {
                        let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
                        for key in keys {
                            match (old.get(key), new.get(key)) {
                                (a, b) if a == b => {}
                                (_, None) => {
                                    out.push(json!({"op": "remove", "path": format!("{at}.{key}")}));
                                }
                                (_, Some(value)) => out.push(
                                    json!({"op": "replace", "path": format!("{at}.{key}"), "value": value}),
                                ),
                            }
                        }
                    }
                    _ => {
                        out.push(json!({"op": "remove", "path": at}));
                        out.push(json!({"op": "add", "path": path, "value": is}));
                    }
                }
            }
        } else if let (Self::Parts(_), Some(old), Some(new)) = (self, object(old), object(new)) {
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
                "emails": [{"type": "work", "value": "a@x"}],
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
                json!([{"type": "work", "value": "a@w"}]),
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
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@x"},
                {"op": "replace", "path": "active", "value": false},
            ])
        );
    }

    /// Elements selected by a filter are the sync's one by one: added, replaced or removed
    /// by their own path, listed in the order the mapping lists them, whatever the order
    /// the endpoint keeps them in.
    #[test]
    fn filtered_elements_are_owned_one_by_one() {
        let config = SyncConfig::from_toml(
            "directory = \"corp\"\n[connection]\nurls = [\"ldap://127.0.0.1:1\"]\n\
             tls = \"none\"\n[users]\nbase = \"dc=example,dc=com\"\n[users.attributes]\n\
             'phoneNumbers[type eq \"work\"].value' = \"telephoneNumber\"\n\
             'phoneNumbers[type eq \"mobile\"].value' = \"mobile\"\n\
             'phoneNumbers[type eq \"work\"].display' = \"cn\"\n",
        )
        .unwrap();
        let owned = Owned::users(&config.users);
        let held = object(json!({"phoneNumbers": [
            {"type": "fax", "value": "9"},
            {"type": "work", "display": "Ann", "primary": true},
            {"type": "mobile", "display": "spare"},
            {"type": "mobile", "value": "2"},
        ]}));
        // The work phone without `value` is listed where its `display` mapping stands; its
        // `primary`, set at the endpoint, is not the sync's, nor is a mobile phone without
        // a mapped sub-attribute (the endpoint's own, never removed by the sync).
        assert_eq!(
            Value::Object(owned.keep(held)),
            json!({"phoneNumbers": [{"type": "mobile", "value": "2"}, {"type": "work", "display": "Ann"}]})
        );
        let operations = owned.operations(&[AttributeChange {
            attribute: "phoneNumbers".into(),
            old: json!([{"type": "mobile", "value": "2"}, {"type": "work", "display": "Ann"}]),
            new: json!([{"type": "work", "value": "1"}]),
        }]);
        assert_eq!(
            Value::Array(operations),
            json!([
                {"op": "remove", "path": "phoneNumbers[type eq \"mobile\"]"},
                {"op": "remove", "path": "phoneNumbers[type eq \"work\"].display"},
                {"op": "replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "1"},
            ])
        );
        let operations = owned.operations(&[AttributeChange {
            attribute: "phoneNumbers".into(),
            old: Value::Null,
            new: json!([{"type": "work", "value": "1"}]),
        }]);
        assert_eq!(
            Value::Array(operations),
            json!([{"op": "add", "path": "phoneNumbers", "value": [{"type": "work", "value": "1"}]}])
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
