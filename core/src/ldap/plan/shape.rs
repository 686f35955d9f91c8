//! The users' mapping compiled into the shape of the JSON it builds, so that a re-sync can
//! tell a user the target holds as wanted without building that JSON.
//!
//! A re-sync of a hundred thousand users finds most of them unchanged. Building each one's
//! attributes as a `serde_json` map (a string per key and per value, a tree per object) only
//! to compare it with the text the target holds was a third of the mapping's work. A [`Shape`]
//! writes the same text straight from the entry's values ([`Shape::user`]): when it is the
//! text the target holds, the user is unchanged; otherwise the map is built as before.
//!
//! The shape must write exactly what [`super::mapped_body`] builds, so it only takes the
//! mappings whose outcome does not depend on the order values arrive in: each key holds one
//! kind of thing (a value, an object of sub-attributes, or a list of elements told apart by
//! their `[type eq "…"]` filters). A mapping outside that gets no shape, and every user goes
//! the long way. The tests hold the two to the same text.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use super::equalities;
use crate::ldap::config::{Piece, Source, Transform, UserSearch};
use crate::ldap::source::Entry;

/// The SCIM core user schema: a path qualified with it is a path of the top level.
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// What a mapping gives for one entry, borrowed from the entry where it can be.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Mapped<'a> {
    Text(Cow<'a, str>),
    Bool(bool),
    Json(&'a Value),
}

impl Mapped<'_> {
    pub(super) fn into_value(self) -> Value {
        match self {
            Self::Text(t) => Value::String(t.into_owned()),
            Self::Bool(b) => Value::Bool(b),
            Self::Json(v) => v.clone(),
        }
    }
}

impl Serialize for Mapped<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(t) => s.serialize_str(t),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::Json(v) => v.serialize(s),
        }
    }
}

/// The first value of `name` as text, lossy for binary values.
fn text<'a>(entry: &'a Entry, name: &str) -> Option<Cow<'a, str>> {
    entry
        .values(name)
        .first()
        .map(|v| String::from_utf8_lossy(v))
}

/// The value a mapping gives for an entry; `None` when the entry has none.
pub(super) fn evaluate<'a>(source: &'a Source, entry: &'a Entry) -> Option<Mapped<'a>> {
    match source {
        Source::Constant(v) => Some(Mapped::Json(v)),
        Source::Template(pieces) => {
            let mut out = String::new();
            for p in pieces {
                match p {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Attribute(a) => out.push_str(&text(entry, a)?),
                }
            }
            Some(Mapped::Text(Cow::Owned(out)))
        }
        Source::Attribute { name, transform } => {
            let text = text(entry, name)?;
            let flag =
                |t: &str| matches!(t.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1");
            let bits = |t: &str| t.trim().parse::<i64>().ok().map(|n| n as u64);
            Some(match transform {
                Transform::None => Mapped::Text(text),
                Transform::Lowercase => Mapped::Text(Cow::Owned(text.to_lowercase())),
                Transform::Uppercase => Mapped::Text(Cow::Owned(text.to_uppercase())),
                Transform::Boolean => Mapped::Bool(flag(&text)),
                // A present lock attribute with any value but an explicit false: locked.
                Transform::NotBoolean => Mapped::Bool(matches!(
                    text.trim().to_ascii_lowercase().as_str(),
                    "false" | "no" | "0"
                )),
                Transform::BitSet(mask) => Mapped::Bool(bits(&text)? & mask != 0),
                Transform::BitClear(mask) => Mapped::Bool(bits(&text)? & mask == 0),
            })
        }
    }
}

/// The keys of an object, in the order `serde_json` writes them (its maps are sorted).
type Keys = Vec<(String, Node)>;

/// What a key of the mapped JSON holds.
#[derive(Debug)]
enum Node {
    /// The user's `userName`.
    UserName,
    /// The user's `active`.
    Active,
    /// The value of the last of these mappings (by index) that gives one.
    Value(Vec<usize>),
    /// An object of sub-attributes, there when one of them is.
    Object(Keys),
    /// A list of elements, each there when one of its sub-attributes is.
    List(List),
}

/// A multi-valued attribute set through filters: `emails[type eq "work"].value`.
#[derive(Debug, Default)]
struct List {
    elements: Vec<Element>,
    /// Each mapping into the list (by index) and its element, in the mappings' order: an
    /// element joins the list when the first of its mappings gives a value.
    mappings: Vec<(usize, usize)>,
}

/// One element of a [`List`]: its filter's values, and its sub-attributes.
#[derive(Debug)]
struct Element {
    equalities: Map<String, Value>,
    subs: BTreeMap<String, Vec<usize>>,
}

/// The users' mapping as the shape of the JSON it builds.
#[derive(Debug)]
pub(super) struct Shape {
    root: Keys,
}

/// What `name` holds in `keys` while the shape is built, empty when it is new.
fn slot<'k>(keys: &'k mut BTreeMap<String, Building>, name: &str) -> &'k mut Building {
    keys.entry(name.to_owned()).or_insert(Building::Empty)
}

/// A [`Node`] while the shape is built.
enum Building {
    Empty,
    Value(Vec<usize>),
    Object(BTreeMap<String, Building>),
    List(List),
}

impl Building {
    fn object(&mut self) -> Option<&mut BTreeMap<String, Building>> {
        if matches!(self, Self::Empty) {
            *self = Self::Object(BTreeMap::new());
        }
        match self {
            Self::Object(keys) => Some(keys),
            _ => None,
        }
    }

    fn value(&mut self, mapping: usize) -> Option<()> {
        if matches!(self, Self::Empty) {
            *self = Self::Value(Vec::new());
        }
        match self {
            Self::Value(v) => {
                v.push(mapping);
                Some(())
            }
            _ => None,
        }
    }

    fn list(&mut self) -> Option<&mut List> {
        if matches!(self, Self::Empty) {
            *self = Self::List(List::default());
        }
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }

    fn done(keys: BTreeMap<String, Self>) -> Keys {
        keys.into_iter()
            .map(|(k, b)| {
                let node = match b {
                    // Not left so: every slot made is filled, or the shape is refused.
                    Self::Empty => Node::Value(Vec::new()),
                    Self::Value(v) => Node::Value(v),
                    Self::Object(keys) => Node::Object(Self::done(keys)),
                    Self::List(l) => Node::List(l),
                };
                (k, node)
            })
            .collect()
    }
}

impl Shape {
    /// The shape of the users' mapping; `None` when the JSON it builds depends on more than
    /// which mappings give a value (then every user is mapped the long way).
    pub(super) fn of(users: &UserSearch) -> Option<Self> {
        let mut root: BTreeMap<String, Building> = BTreeMap::new();
        for (i, (path, _)) in users.attributes.iter().enumerate() {
            let (container, top) = match path.attr.urn() {
                Some(urn) if !urn.eq_ignore_ascii_case(CORE_USER) => {
                    (slot(&mut root, urn).object()?, false)
                }
                _ => (&mut root, true),
            };
            let name = path.attr.name();
            // Both are set after the mappings, over anything a mapping put there.
            if top && (name == "userName" || name == "active") {
                return None;
            }
            match (&path.filter, path.attr.sub_attr()) {
                (None, None) => slot(container, name).value(i)?,
                (None, Some(sub)) => slot(slot(container, name).object()?, sub).value(i)?,
                (Some(filter), _) => {
                    let sub = path.sub_attr.as_deref()?;
                    let equalities = equalities(filter)?;
                    if equalities.contains_key(sub) {
                        return None;
                    }
                    let list = slot(container, name).list()?;
                    // Every filter of a list names the same sub-attributes, none of them
                    // set by a mapping: an element is then found by its filter alone.
                    let same_keys = |e: &Element| {
                        e.equalities.len() == equalities.len()
                            && e.equalities.keys().all(|k| equalities.contains_key(k))
                    };
                    if !list.elements.iter().all(same_keys)
                        || list
                            .elements
                            .iter()
                            .any(|e| e.subs.keys().any(|s| equalities.contains_key(s)))
                    {
                        return None;
                    }
                    let at = match list
                        .elements
                        .iter()
                        .position(|e| e.equalities == equalities)
                    {
                        Some(at) => at,
                        None => {
                            list.elements.push(Element {
                                equalities,
                                subs: BTreeMap::new(),
                            });
                            list.elements.len() - 1
                        }
                    };
                    list.elements[at]
                        .subs
                        .entry(sub.to_owned())
                        .or_default()
                        .push(i);
                    list.mappings.push((i, at));
                }
            }
        }
        let mut root = Building::done(root);
        root.push(("userName".to_owned(), Node::UserName));
        root.push(("active".to_owned(), Node::Active));
        // Among the mapped keys, in the same order (no mapped key is either: refused above).
        root.sort_by(|a, b| a.0.cmp(&b.0));
        Some(Self { root })
    }

    /// The attributes the mapping gives `entry`, written as [`super::mapped_body`] would
    /// write them; `values` is [`Shape::values`] of the entry.
    pub(super) fn user<'s>(
        &'s self,
        values: &'s [Option<Mapped<'s>>],
        user_name: &'s str,
        active: bool,
    ) -> impl Serialize + 's {
        Object {
            keys: &self.root,
            user: User {
                values,
                user_name,
                active,
            },
        }
    }
}

/// What each mapping gives `entry`, by index.
pub(super) fn values<'a>(users: &'a UserSearch, entry: &'a Entry) -> Vec<Option<Mapped<'a>>> {
    users
        .attributes
        .iter()
        .map(|(_, source)| evaluate(source, entry))
        .collect()
}

/// One user's values, as the shape writes them.
#[derive(Clone, Copy)]
struct User<'a> {
    values: &'a [Option<Mapped<'a>>],
    user_name: &'a str,
    active: bool,
}

impl<'a> User<'a> {
    /// The value of the last of `mappings` that gives one.
    fn last(self, mappings: &[usize]) -> Option<&'a Mapped<'a>> {
        mappings
            .iter()
            .rev()
            .find_map(|&i| self.values.get(i).and_then(Option::as_ref))
    }

    fn has(self, node: &Node) -> bool {
        match node {
            Node::UserName | Node::Active => true,
            Node::Value(mappings) => self.last(mappings).is_some(),
            Node::Object(keys) => keys.iter().any(|(_, n)| self.has(n)),
            Node::List(list) => list.elements.iter().any(|e| self.has_element(e)),
        }
    }

    fn has_element(self, e: &Element) -> bool {
        e.subs.values().any(|m| self.last(m).is_some())
    }
}

struct Object<'a> {
    keys: &'a Keys,
    user: User<'a>,
}

impl Serialize for Object<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // No length: `serde_json` writes the same without one.
        let mut map = s.serialize_map(None)?;
        for (key, node) in self.keys.iter().filter(|(_, n)| self.user.has(n)) {
            map.serialize_key(key)?;
            match node {
                Node::UserName => map.serialize_value(self.user.user_name)?,
                Node::Active => map.serialize_value(&self.user.active)?,
                Node::Value(mappings) => map.serialize_value(&self.user.last(mappings))?,
                Node::Object(keys) => map.serialize_value(&Object {
                    keys,
                    user: self.user,
                })?,
                Node::List(list) => map.serialize_value(&ListOf {
                    list,
                    user: self.user,
                })?,
            }
        }
        map.end()
    }
}

struct ListOf<'a> {
    list: &'a List,
    user: User<'a>,
}

impl Serialize for ListOf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // In the order the elements are made: by the first of their mappings that gives
        // a value.
        let mut order: Vec<usize> = Vec::with_capacity(self.list.elements.len());
        for &(mapping, element) in &self.list.mappings {
            let given = self.user.values.get(mapping).is_some_and(Option::is_some);
            if given && !order.contains(&element) {
                order.push(element);
            }
        }
        let mut seq = s.serialize_seq(Some(order.len()))?;
        for at in order {
            seq.serialize_element(&ElementOf {
                element: &self.list.elements[at],
                user: self.user,
            })?;
        }
        seq.end()
    }
}

struct ElementOf<'a> {
    element: &'a Element,
    user: User<'a>,
}

impl Serialize for ElementOf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The filter's values and the sub-attributes given, merged in key order (a key is
        // never both: the shape is refused then).
        let mut fixed = self.element.equalities.iter().peekable();
        let mut subs = self
            .element
            .subs
            .iter()
            .filter_map(|(k, m)| Some((k, self.user.last(m)?)))
            .peekable();
        let mut map = s.serialize_map(None)?;
        loop {
            let fixed_first = match (fixed.peek(), subs.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((a, _)), Some((b, _))) => a < b,
            };
            if fixed_first {
                let Some((k, v)) = fixed.next() else { break };
                map.serialize_entry(k, v)?;
            } else {
                let Some((k, v)) = subs.next() else { break };
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::super::mapped_body;
    use super::*;
    use crate::ldap::config::SyncConfig;

    /// A configuration whose users' mapping is `attributes` (TOML lines).
    fn config(attributes: &str) -> SyncConfig {
        SyncConfig::from_toml(&format!(
            "directory = \"corp\"\n[connection]\nurls = [\"ldap://127.0.0.1:1\"]\n\
             [users]\nbase = \"ou=people,dc=x\"\n[users.attributes]\n{attributes}"
        ))
        .unwrap()
    }

    /// Every kind of mapping a shape takes: plain, sub-attributes, the enterprise
    /// extension (with a sub-attribute), two lists told apart by `type` (one element with
    /// two sub-attributes, one with a constant), templates, transforms and constants of
    /// every JSON kind. (The configuration refuses a path mapped twice.)
    const RICH: &str = r#"
"title" = "title"
"displayName" = "{givenName} {sn}"
"nickName" = { attribute = "nick", transform = "uppercase" }
"name.givenName" = "givenName"
"name.familyName" = "sn"
"name.formatted" = "cn"
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" = "department"
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value" = "manager"
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter" = { constant = "CC-1" }
'emails[type eq "home"].value' = "homeMail"
'emails[type eq "work"].value' = { attribute = "mail", transform = "lowercase" }
'emails[type eq "work"].primary' = { attribute = "primaryFlag", transform = "boolean" }
'emails[type eq "other"].display' = { constant = "other" }
'phoneNumbers[type eq "mobile"].value' = "mobile"
'phoneNumbers[type eq "work"].value' = "telephoneNumber"
"locale" = "title"
"preferredLanguage" = { attribute = "flags", bit_set = 4 }
"timezone" = { attribute = "lockFlag", transform = "not_boolean" }
"profileUrl" = { constant = 7 }
"userType" = { constant = ["a", { b = 1.5 }] }
"#;

    const ATTRIBUTES: [&str; 14] = [
        "title",
        "givenName",
        "sn",
        "cn",
        "nick",
        "department",
        "manager",
        "homeMail",
        "mail",
        "primaryFlag",
        "mobile",
        "telephoneNumber",
        "flags",
        "lockFlag",
    ];

    #[test]
    fn the_mappings_people_write_have_a_shape() {
        for file in ["openldap.toml", "active-directory.toml"] {
            let path = format!("{}/../examples/{file}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            let config = SyncConfig::from_toml(&text).unwrap();
            assert!(Shape::of(&config.users).is_some(), "{file}");
        }
    }

    #[test]
    fn mappings_that_depend_on_their_order_have_no_shape() {
        for attributes in [
            // A value and sub-attributes at one path.
            "\"name\" = { constant = { givenName = \"x\" } }\n\"name.familyName\" = \"sn\"",
            // Elements that filters with other sub-attributes may or may not share.
            "'emails[type eq \"work\"].value' = \"mail\"\n'emails[primary eq true].value' = \"other\"",
            // A sub-attribute its own filter sets.
            "'emails[type eq \"work\"].type' = \"mail\"",
            // A filter on a sub-attribute another element's mapping sets.
            "'emails[type eq \"work\"].display' = \"mail\"\n'emails[display eq \"x\"].type' = \"other\"",
        ] {
            let Ok(config) = SyncConfig::from_toml(&format!(
                "directory = \"corp\"\n[connection]\nurls = [\"ldap://127.0.0.1:1\"]\n\
                 [users]\nbase = \"ou=people,dc=x\"\n[users.attributes]\n{attributes}"
            )) else {
                continue; // refused by the configuration itself: fine too
            };
            assert!(Shape::of(&config.users).is_none(), "{attributes}");
        }
        assert!(Shape::of(&config(RICH).users).is_some());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// The shape writes, for any entry, the text of the JSON the mapping builds: a
        /// user it calls unchanged is one the long way calls unchanged.
        #[test]
        fn a_shape_writes_what_the_mapping_builds(
            present in proptest::collection::vec(proptest::bool::ANY, ATTRIBUTES.len()),
            texts in proptest::collection::vec(
                "[a-zA-Z0-9 \"\\\\/é\u{1f600}\u{0}\u{1f}\u{7f}\u{2028}<>&]{0,12}",
                ATTRIBUTES.len(),
            ),
            binary in proptest::collection::vec(0..=255u8, 0..4),
            user_name in "[a-z\"\\\\é]{1,8}",
            active in proptest::bool::ANY,
        ) {
            let config = config(RICH);
            let shape = Shape::of(&config.users).unwrap();
            let mut attributes: Vec<(&str, Vec<Vec<u8>>)> = Vec::new();
            for (i, name) in ATTRIBUTES.iter().enumerate() {
                if present[i] {
                    let mut value = texts[i].clone().into_bytes();
                    if i == 0 {
                        // Not UTF-8: read lossily, both ways.
                        value.extend(&binary);
                        value.push(0xff);
                    }
                    attributes.push((name, vec![value]));
                }
            }
            let mut entry = Entry::new("uid=x,ou=people,dc=x", Vec::<(&str, Vec<&str>)>::new());
            for (name, values) in attributes {
                entry.attributes.insert(name.to_ascii_lowercase(), values);
            }
            let values = values(&config.users, &entry);
            let written = serde_json::to_string(&shape.user(&values, &user_name, active)).unwrap();
            let built = mapped_body(&config.users, values, &user_name, active);
            proptest::prop_assert_eq!(written, serde_json::to_string(&built).unwrap());
        }
    }
}
