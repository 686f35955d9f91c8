//! The plan: a pure function from what the source holds, what the store holds and the
//! configuration, to the list of changes an administrator reviews before anything happens.
//!
//! Safety first: an incomplete snapshot plans no deactivation, deletion or membership
//! removal (and says why), and a plan that crosses a deletion threshold is blocked until it
//! is applied with an explicit override.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use serde_json::{Map, Value, json};

use super::config::{
    GroupSearch, Membership, Nested, Removal, ScopeVia, Source, SyncConfig, Transform, UserSearch,
};
use super::dn::dn_key;
use super::source::{Entry, Snapshot, guid_text};
use crate::scim::filter::{CompareOp, Compatibility, Filter, Value as Literal};
use crate::scim::path::PatchPath;
use crate::scim::schema::SchemaRegistry;
use crate::scim::service::resource::{Input, read_input};
use crate::scim::text::fold;
use crate::store::{HeldAttributes, Kind, Member, Resource};
use settle::Early;
pub(crate) use settle::{Settled, Settler};
use shape::Shape;

/// A user the target holds, its attributes as the target hands them over.
pub type HeldUser = Resource<HeldAttributes>;

/// What the store holds for the directory being synced.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// Its users; a store may keep their attributes unparsed ([`HeldAttributes`]), since
    /// a re-sync finds most of them as wanted.
    pub users: Vec<HeldUser>,
    /// Its groups.
    pub groups: Vec<Resource>,
    /// Each group's direct members, by group `id`.
    pub members: std::collections::HashMap<String, Vec<Member>>,
}

impl Current {
    /// Each user's and group's `(id, anchor, name, kind)`, users first; those without an
    /// anchor are not the sync's.
    fn anchored(&self) -> impl Iterator<Item = (&str, &str, &str, Kind)> {
        fn of<A>(r: &Resource<A>) -> Option<(&str, &str, &str, Kind)> {
            let anchor = r.external_id.as_deref()?;
            Some((r.id.as_str(), anchor, r.name.as_str(), r.kind))
        }
        let users = self.users.iter().filter_map(of);
        users.chain(self.groups.iter().filter_map(of))
    }
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A user's `userName` is freed for another user of the directory (see
    /// [`release_names`]): it is renamed `NAME~ANCHOR` before anything else applies.
    ReleaseName,
    /// A new user or group.
    Create,
    /// Changed attributes (a new `userName` or DN included).
    Update,
    /// An inactive user is active again.
    Reactivate,
    /// Members join a group.
    AddMembers,
    /// Members leave a group.
    RemoveMembers,
    /// A user is deactivated (removed from the source, out of scope, or disabled).
    Deactivate,
    /// A user or group is deleted.
    Delete,
}

impl Action {
    /// Whether the change takes something away (blocked on an incomplete snapshot).
    pub fn is_destructive(self) -> bool {
        matches!(self, Self::Deactivate | Self::Delete | Self::RemoveMembers)
    }

    fn label(self) -> &'static str {
        match self {
            Self::ReleaseName => "release name",
            Self::Create => "create",
            Self::Update => "update",
            Self::Reactivate => "reactivate",
            Self::AddMembers => "add members",
            Self::RemoveMembers => "remove members",
            Self::Deactivate => "deactivate",
            Self::Delete => "delete",
        }
    }
}

/// One attribute's old and new value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AttributeChange {
    /// The SCIM attribute (top level: `name`, `emails`, an extension URN).
    pub attribute: String,
    /// Before (`null` when absent).
    pub old: Value,
    /// After (`null` when removed).
    pub new: Value,
}

/// A member of a group as the plan knows it: by anchor, since new users have no `id` yet.
/// Two references are the same member when kind and anchor agree, whatever the name (a
/// renamed user is still the same member).
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberRef {
    /// User or group.
    #[serde(serialize_with = "kind_name")]
    pub kind: Kind,
    /// The member's anchor.
    pub anchor: String,
    /// Its `userName` or `displayName`, for people reading the plan.
    pub name: String,
}

impl PartialEq for MemberRef {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, &self.anchor) == (other.kind, &other.anchor)
    }
}

impl Eq for MemberRef {}

impl PartialOrd for MemberRef {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MemberRef {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.kind, &self.anchor).cmp(&(other.kind, &other.anchor))
    }
}

impl std::hash::Hash for MemberRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.kind, &self.anchor).hash(state);
    }
}

fn kind_name<S: serde::Serializer>(kind: &Kind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

/// One planned change. Serialised with its [`diff`](Change::diff) as `diff`.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// What it does.
    pub action: Action,
    /// To a user or a group.
    pub kind: Kind,
    /// The source's anchor of the object.
    pub anchor: String,
    /// Its `userName` or `displayName`.
    pub name: String,
    /// Its `id` in the store, when it exists there.
    pub id: Option<String>,
    /// Why.
    pub reason: String,
    /// The attribute changes of an update. Empty for a create: its diff is its whole new
    /// state, rendered from `input` when asked for, so that a first import does not hold
    /// (and free) every attribute twice.
    pub(crate) changed: Vec<AttributeChange>,
    /// Members added or removed.
    pub members: Vec<MemberRef>,
    /// The new state (creates and updates).
    pub(crate) input: Option<Input>,
}

impl Change {
    /// Attribute changes: for a create every attribute it sets, for an update those it
    /// changes; empty for other actions.
    #[must_use]
    pub fn diff(&self) -> Cow<'_, [AttributeChange]> {
        match (&self.action, &self.input) {
            (Action::Create, Some(input)) => {
                let active = (self.kind == Kind::User).then_some(input.active);
                Cow::Owned(diff(&Map::new(), &input.attributes, None, active))
            }
            _ => Cow::Borrowed(&self.changed),
        }
    }
}

impl serde::Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut c = s.serialize_struct("Change", 8)?;
        c.serialize_field("action", &self.action)?;
        c.serialize_field("kind", self.kind.as_str())?;
        c.serialize_field("anchor", &self.anchor)?;
        c.serialize_field("name", &self.name)?;
        c.serialize_field("id", &self.id)?;
        c.serialize_field("reason", &self.reason)?;
        c.serialize_field("diff", &*self.diff())?;
        c.serialize_field("members", &self.members)?;
        c.end()
    }
}

/// The plan of one sync.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Plan {
    /// The usersync directory it applies to.
    pub directory: String,
    /// The changes, in the order they apply: creates and updates, memberships, removals.
    pub changes: Vec<Change>,
    /// Why the snapshot is incomplete (then no removal is planned); empty when complete.
    pub incomplete: Vec<String>,
    /// Thresholds the plan crosses; applying it needs the override when not empty.
    pub blocked: Vec<String>,
    /// Things to know that change nothing.
    pub warnings: Vec<String>,
    /// For a plan of an incremental read: the watermark it read changes from.
    pub changed_since: Option<String>,
    /// (kind, anchor) → store `id` of every object of the state the plan was computed
    /// against, so that applying it need not read the directory again.
    #[serde(skip)]
    pub(crate) ids: HashMap<(Kind, String), String>,
}

/// Counts of changes by action.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Action → count, for the actions present.
    pub counts: BTreeMap<Action, usize>,
}

impl Plan {
    /// How many changes of each action.
    pub fn summary(&self) -> Summary {
        let mut counts = BTreeMap::new();
        for c in &self.changes {
            *counts.entry(c.action).or_insert(0) += 1;
        }
        Summary { counts }
    }

    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The plan as JSON (what `usersync plan --json` prints).
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        v["summary"] = serde_json::to_value(self.summary().counts).unwrap_or(Value::Null);
        v
    }
}

impl fmt::Display for Plan {
    /// The readable table of changes an administrator reviews.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            writeln!(
                f,
                "No changes: `{}` is in step with the source.",
                self.directory
            )?;
        } else {
            writeln!(f, "{:<15} {:<6} {:<32} details", "action", "kind", "name")?;
            for c in &self.changes {
                let details = if !c.members.is_empty() {
                    let names: Vec<&str> = c.members.iter().map(|m| m.name.as_str()).collect();
                    let shown = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
                    if names.len() > 5 {
                        format!("{shown} and {} more", names.len() - 5)
                    } else {
                        shown
                    }
                } else if c.action == Action::Update {
                    let attrs: Vec<&str> = c.changed.iter().map(|d| d.attribute.as_str()).collect();
                    format!("{} ({})", c.reason, attrs.join(", "))
                } else {
                    c.reason.clone()
                };
                writeln!(
                    f,
                    "{:<15} {:<6} {:<32} {details}",
                    c.action.label(),
                    c.kind.as_str(),
                    truncate(&c.name, 32)
                )?;
            }
            let summary: Vec<String> = self
                .summary()
                .counts
                .iter()
                .map(|(a, n)| format!("{n} {}", a.label()))
                .collect();
            writeln!(f, "\n{}", summary.join(", "))?;
        }
        for p in &self.incomplete {
            writeln!(
                f,
                "incomplete: {p} — no user is removed and no member leaves a group"
            )?;
        }
        for b in &self.blocked {
            writeln!(
                f,
                "blocked: {b} — apply with --allow-deletes if this is intended"
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        if let Some(since) = &self.changed_since {
            writeln!(
                f,
                "incremental: users changed since {since} were read in full, the others by anchor"
            )?;
        }
        Ok(())
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// The anchor of an entry, as text.
pub(crate) fn anchor_of(entry: &Entry, attribute: &str, binary: bool) -> Option<String> {
    anchor_in(entry, attribute, binary).map(Cow::into_owned)
}

/// [`anchor_of`], borrowed from the entry when its value is the text.
fn anchor_in<'a>(entry: &'a Entry, attribute: &str, binary: bool) -> Option<Cow<'a, str>> {
    let value = entry.values(attribute).first()?;
    if binary {
        guid_text(value).map(Cow::Owned)
    } else {
        std::str::from_utf8(value)
            .ok()
            .filter(|s| !s.is_empty())
            .map(Cow::Borrowed)
    }
}

/// A user as the source wants it, borrowing from the entry it was read from (a hundred
/// thousand of them are made on the mapping threads, and freed here).
struct Desired<'a> {
    anchor: Cow<'a, str>,
    dn: &'a str,
    /// [`dn_key`] of `dn`, made on the mapping threads: the groups' members are looked up
    /// by it.
    dn_key: Cow<'a, str>,
    /// With no attributes when [`Standing::Held`] or [`Standing::Unchanged`].
    input: Input,
    standing: Standing<'a>,
}

/// Where a wanted user stands against what the target holds.
enum Standing<'a> {
    /// Unchanged since the last run (an incremental read): wanted as the target holds it.
    Held,
    /// Read in full and mapped to what the target holds: nothing to do.
    Unchanged,
    /// Not held by the target: to create.
    New,
    /// Held by the target otherwise (as `.0`, with its attributes parsed): what changes is
    /// worked out by the plan, once it knows whether the read was complete.
    Differs(&'a HeldUser, Map<String, Value>),
}

/// Computes the plan.
pub fn plan(config: &SyncConfig, snapshot: &Snapshot, current: &Current) -> Plan {
    plan_settled(config, snapshot, current, Settled::default())
}

/// [`plan`], with the users a [`Settler`] settled while the source was being read.
pub(crate) fn plan_settled(
    config: &SyncConfig,
    snapshot: &Snapshot,
    current: &Current,
    settled: Settled,
) -> Plan {
    let mut incomplete = snapshot.problems.clone();
    let mut warnings = snapshot.warnings.clone();
    let registry = SchemaRegistry::core();
    // The core registry always has both resource types.
    let (Some(user_rt), Some(group_rt)) = (
        registry.resource_type("User"),
        registry.resource_type("Group"),
    ) else {
        return Plan {
            directory: config.directory.clone(),
            changes: Vec::new(),
            incomplete: vec!["the core schemas are missing".into()],
            blocked: Vec::new(),
            warnings,
            changed_since: snapshot.changed_since.clone(),
            ids: HashMap::new(),
        };
    };

    // ---- Users the source wants ----
    // (Maps of a hundred thousand are sized up front: growing them rehashes every key.)
    let held = held_by_anchor(current);
    let mut desired: Vec<Desired<'_>> =
        Vec::with_capacity(snapshot.users.len() + snapshot.unchanged_users.len());
    desired_users(
        config,
        user_rt,
        &snapshot.users,
        settled,
        &held,
        &mut desired,
        &mut incomplete,
    );

    // ---- Users an incremental read found unchanged: wanted as the target holds them ----
    for entry in &snapshot.unchanged_users {
        let anchor = match user_anchor(&config.users, entry) {
            Ok(anchor) => anchor,
            Err(why) => {
                incomplete.push(why);
                continue;
            }
        };
        match held.get(&*anchor) {
            Some(r) if r.active => desired.push(Desired {
                anchor,
                dn: &entry.dn,
                dn_key: dn_key(&entry.dn),
                input: Input {
                    name: r.name.clone(),
                    active: true,
                    ..Input::default()
                },
                standing: Standing::Held,
            }),
            // The reader reads these in full; one that slipped through waits for the
            // next run rather than being planned on a guess.
            _ => incomplete.push(format!(
                "{} was not read in full; the next run reads it",
                entry.dn
            )),
        }
    }
    // One anchor, one user: a second entry with it (moved between two searches of one
    // read) is missing information.
    let mut seen = HashSet::with_capacity(desired.len());
    let first: Vec<bool> = desired.iter().map(|d| seen.insert(&*d.anchor)).collect();
    for (d, _) in desired.iter().zip(&first).filter(|(_, first)| !**first) {
        incomplete.push(format!(
            "two entries share the anchor `{}` ({})",
            d.anchor, d.dn
        ));
    }
    drop(seen);
    let mut first = first.into_iter();
    desired.retain(|_| first.next().unwrap_or(true));

    // ---- Groups and memberships ----
    // The target's objects by id: its members are ids.
    let mut anchor_of_id: HashMap<&str, (&str, &str, Kind)> =
        HashMap::with_capacity(current.users.len() + current.groups.len());
    anchor_of_id.extend(
        current
            .anchored()
            .map(|(id, anchor, name, kind)| (id, (anchor, name, kind))),
    );
    let groups = config.groups.as_ref().map(|g| {
        read_groups(
            g,
            snapshot,
            current,
            &anchor_of_id,
            &desired,
            &mut incomplete,
        )
    });

    // Scope: only members of the listed groups (through nesting).
    if !config.users.only_members_of.is_empty()
        && config.users.only_members_of_via == ScopeVia::Groups
        && let Some(groups) = &groups
    {
        let wanted: HashSet<String> = config
            .users
            .only_members_of
            .iter()
            .map(|d| dn_key(d).into_owned())
            .collect();
        let mut in_scope = HashSet::new();
        for g in groups.groups.iter().filter(|g| wanted.contains(&g.dn_key)) {
            in_scope.extend(
                groups
                    .flattened_users(&g.anchor)
                    .into_iter()
                    .map(str::to_owned),
            );
            // Users missing from a list not read whole are not out of scope: nothing may
            // be taken away on that.
            if let Some(why) = groups.partial_because(&g.anchor, Nested::Flatten) {
                incomplete.push(format!(
                    "the group `{}` of users.only_members_of: {why}",
                    g.name
                ));
            }
        }
        for missing in wanted
            .iter()
            .filter(|w| !groups.groups.iter().any(|g| &&g.dn_key == w))
        {
            incomplete.push(format!(
                "the group `{missing}` of users.only_members_of was not found"
            ));
        }
        desired.retain(|d| in_scope.contains(&*d.anchor));
    }

    // Each group's SCIM input, checked before the plan decides whether the snapshot is
    // complete: a group the target would refuse is missing information, as one without a
    // name is (see `read_groups`).
    let group_inputs: Vec<Option<Input>> = groups.as_ref().map_or_else(Vec::new, |groups| {
        groups
            .groups
            .iter()
            .map(|g| {
                read_input(
                    group_rt,
                    Kind::Group,
                    &json!({"schemas": [group_rt.schema.id], "displayName": g.name, "externalId": g.anchor}),
                    Compatibility::default(),
                )
                .map_err(|e| incomplete.push(format!("group {}: {}", g.dn, e.detail)))
                .ok()
            })
            .collect()
    });

    let complete = incomplete.is_empty();
    // Sized for every user to change and every group to be made with its members: grown
    // from empty, a first import's hundred thousand creates were copied at each doubling.
    let users_to_change = desired
        .iter()
        .filter(|d| matches!(d.standing, Standing::New | Standing::Differs(..)))
        .count();
    let mut changes = Vec::with_capacity(users_to_change + 2 * snapshot.groups.len());

    // ---- User creates, updates, reactivations ----
    for d in &mut desired {
        // On partial information nothing is taken away, a disabled flag included.
        if !complete && !d.input.active && matches!(d.standing, Standing::Differs(r, _) if r.active)
        {
            d.input.active = true;
            d.input
                .attributes
                .insert("active".into(), Value::Bool(true));
        }
    }
    // Each wanted state moves into its change (its name stays, for the groups): a hundred
    // thousand users are not copied.
    let take_input = |d: &mut Desired<'_>| {
        let input = std::mem::take(&mut d.input);
        d.input.name.clone_from(&input.name);
        input
    };
    for d in &mut desired {
        match &d.standing {
            Standing::Held | Standing::Unchanged => {}
            Standing::New => changes.push(Change {
                action: Action::Create,
                kind: Kind::User,
                anchor: d.anchor.to_string(),
                name: d.input.name.clone(),
                id: None,
                reason: format!("new in the source ({})", d.dn),
                changed: Vec::new(),
                members: Vec::new(),
                input: Some(take_input(d)),
            }),
            // Disabled on an incomplete read and made active again above: as held.
            Standing::Differs(r, held) if holds_as_wanted(r, held, &d.input) => {}
            Standing::Differs(r, held) => {
                let mut attr_diff = diff(
                    held,
                    &d.input.attributes,
                    Some(r.active),
                    Some(d.input.active),
                );
                if r.name != d.input.name && !attr_diff.iter().any(|c| c.attribute == "userName") {
                    attr_diff.push(AttributeChange {
                        attribute: "userName".into(),
                        old: json!(r.name),
                        new: json!(d.input.name),
                    });
                }
                if attr_diff.is_empty() {
                    continue;
                }
                // Whatever else changed with it, a user turned inactive is a deactivation:
                // it counts against the thresholds.
                let (action, reason) = match (r.active, d.input.active) {
                    (false, true) => (Action::Reactivate, "active again in the source".to_owned()),
                    (true, false) => (Action::Deactivate, "disabled in the source".to_owned()),
                    _ if r.name != d.input.name => {
                        (Action::Update, format!("renamed from `{}`", r.name))
                    }
                    _ => (Action::Update, "changed in the source".to_owned()),
                };
                if action == Action::Deactivate && !complete {
                    continue;
                }
                changes.push(Change {
                    action,
                    kind: Kind::User,
                    anchor: d.anchor.to_string(),
                    name: d.input.name.clone(),
                    id: Some(r.id.clone()),
                    reason,
                    changed: attr_diff,
                    members: Vec::new(),
                    input: Some(take_input(d)),
                });
            }
        }
    }
    // Anchor → userName of every user wanted.
    let mut user_names: HashMap<&str, &str> = HashMap::with_capacity(desired.len());
    user_names.extend(desired.iter().map(|d| (&*d.anchor, d.input.name.as_str())));

    // ---- Groups: creates, renames, membership ----
    let current_groups: HashMap<&str, &Resource> = current
        .groups
        .iter()
        .filter_map(|r| r.external_id.as_deref().map(|a| (a, r)))
        .collect();
    let mut member_removals: Vec<Change> = Vec::new();
    if let (Some(groups), Some(group_config)) = (&groups, &config.groups) {
        let group_names: HashMap<&str, &str> = groups
            .groups
            .iter()
            .map(|g| (g.anchor.as_str(), g.name.as_str()))
            .collect();
        for (g, input) in groups.groups.iter().zip(group_inputs) {
            let Some(input) = input else {
                continue;
            };
            let wanted_members: Members<'_> = groups
                .members(&g.anchor, group_config.nested)
                .into_iter()
                .filter_map(|(kind, anchor)| {
                    let name = match kind {
                        Kind::User => *user_names.get(anchor)?,
                        Kind::Group => *group_names.get(anchor)?,
                    };
                    Some(((kind, anchor), name))
                })
                .collect();
            match current_groups.get(g.anchor.as_str()) {
                None => {
                    changes.push(Change {
                        action: Action::Create,
                        kind: Kind::Group,
                        anchor: g.anchor.clone(),
                        name: g.name.clone(),
                        id: None,
                        reason: format!("new in the source ({})", g.dn),
                        changed: Vec::new(),
                        members: Vec::new(),
                        input: Some(input),
                    });
                    if !wanted_members.0.is_empty() {
                        changes.push(membership(
                            Action::AddMembers,
                            g,
                            None,
                            member_refs(&wanted_members, &Members(Vec::new())),
                        ));
                    }
                }
                Some(r) => {
                    let attr_diff = diff(
                        r.attributes.as_object().unwrap_or(&Map::new()),
                        &input.attributes,
                        None,
                        None,
                    );
                    if !attr_diff.is_empty() {
                        changes.push(Change {
                            action: Action::Update,
                            kind: Kind::Group,
                            anchor: g.anchor.clone(),
                            name: g.name.clone(),
                            id: Some(r.id.clone()),
                            reason: format!("renamed from `{}`", r.name),
                            changed: attr_diff,
                            members: Vec::new(),
                            input: Some(input),
                        });
                    }
                    let have: Members<'_> = current
                        .members
                        .get(&r.id)
                        .into_iter()
                        .flatten()
                        .filter_map(|m| {
                            let &(anchor, name, kind) = anchor_of_id.get(m.id.as_str())?;
                            Some(((kind, anchor), name))
                        })
                        .collect();
                    let add = member_refs(&wanted_members, &have);
                    let remove = member_refs(&have, &wanted_members);
                    if !add.is_empty() {
                        changes.push(membership(Action::AddMembers, g, Some(&r.id), add));
                    }
                    let partial = groups.partial_because(&g.anchor, group_config.nested);
                    if let (false, Some(why)) = (remove.is_empty(), &partial) {
                        warnings.push(format!(
                            "group `{}`: {why}; none of its {} departing members leaves it in this run",
                            g.name,
                            remove.len()
                        ));
                    }
                    if !remove.is_empty() && complete && partial.is_none() {
                        let total = have.0.len();
                        let percent = remove.len() as f64 * 100.0 / total as f64;
                        let limit = config.policy.max_member_removal_percent;
                        let mut change = membership(Action::RemoveMembers, g, Some(&r.id), remove);
                        // Small groups change by large shares in normal life: the share only
                        // counts from ten members up.
                        if total >= 10 && percent > limit {
                            change.reason = format!(
                                "{} of {total} members ({percent:.0}%) leave, above the {limit}% limit",
                                change.members.len()
                            );
                        }
                        member_removals.push(change);
                    }
                }
            }
        }
        // Groups gone from the source.
        let present: HashSet<&str> = groups.groups.iter().map(|g| g.anchor.as_str()).collect();
        if complete {
            for r in &current.groups {
                if let Some(anchor) = r.external_id.as_deref()
                    && !present.contains(anchor)
                {
                    changes.push(Change {
                        action: Action::Delete,
                        kind: Kind::Group,
                        anchor: anchor.to_owned(),
                        name: r.name.clone(),
                        id: Some(r.id.clone()),
                        reason: "removed from the source".into(),
                        changed: Vec::new(),
                        members: Vec::new(),
                        input: None,
                    });
                }
            }
        }
    }

    // ---- Users gone from the source or the scope ----
    let mut removals = Vec::new();
    // Anchors are unique on both sides: when as many wanted users are held as the target
    // holds anchors, none goes, and a re-sync skips a hundred thousand lookups.
    let held_wanted = desired
        .iter()
        .filter(|d| !matches!(d.standing, Standing::New))
        .count();
    if complete && held_wanted < held.len() {
        // Anchors of every entry read, only needed (and made) when a user is to go.
        let in_source = std::cell::OnceCell::new();
        let in_source = || {
            in_source.get_or_init(|| {
                snapshot
                    .users
                    .iter()
                    .chain(&snapshot.unchanged_users)
                    .filter_map(|e| {
                        anchor_of(e, &config.users.anchor, config.users.anchor_is_binary)
                    })
                    .collect::<HashSet<String>>()
            })
        };
        // AD tombstones: the OU each deleted user was last in.
        let deleted: HashMap<&str, &str> = snapshot
            .deleted_users
            .iter()
            .map(|(anchor, parent)| (anchor.as_str(), parent.as_str()))
            .collect();
        for r in &current.users {
            let Some(anchor) = r.external_id.as_deref() else {
                continue;
            };
            if user_names.contains_key(anchor) {
                continue;
            }
            let reason = match deleted.get(anchor) {
                _ if in_source().contains(anchor) => {
                    "out of scope (users.only_members_of)".to_owned()
                }
                Some(parent) => format!("deleted in Active Directory (last in {parent})"),
                None => "removed from the source".to_owned(),
            };
            let action = match config.policy.removal {
                Removal::Deactivate if !r.active => continue,
                Removal::Deactivate => Action::Deactivate,
                Removal::Delete => Action::Delete,
            };
            removals.push(Change {
                action,
                kind: Kind::User,
                anchor: anchor.to_owned(),
                name: r.name.clone(),
                id: Some(r.id.clone()),
                reason,
                changed: Vec::new(),
                members: Vec::new(),
                input: None,
            });
        }
    }

    let handover = release_names(&mut changes, current, &user_names, complete);

    // ---- Thresholds ----
    let mut blocked = Vec::new();
    let removed_users = removals.len()
        + changes
            .iter()
            .filter(|c| c.kind == Kind::User && c.action == Action::Deactivate)
            .count();
    let users_now = current.users.iter().filter(|u| u.active).count().max(1);
    let policy = &config.policy;
    if removed_users as u64 > policy.max_deletions {
        blocked.push(format!(
            "{removed_users} users would be deactivated or deleted, above policy.max_deletions ({})",
            policy.max_deletions
        ));
    }
    let percent = removed_users as f64 * 100.0 / users_now as f64;
    if removed_users > 0 && percent > policy.max_deletion_percent {
        blocked.push(format!(
            "{removed_users} of {users_now} active users ({percent:.0}%) would be deactivated or deleted, above policy.max_deletion_percent ({}%)",
            policy.max_deletion_percent
        ));
    }
    let groups_deleted = changes
        .iter()
        .filter(|c| c.kind == Kind::Group && c.action == Action::Delete)
        .count();
    if groups_deleted > 0 {
        let groups_now = current.groups.len().max(1);
        let percent = groups_deleted as f64 * 100.0 / groups_now as f64;
        if groups_deleted as u64 > policy.max_group_deletions
            || percent > policy.max_group_deletion_percent
        {
            blocked.push(format!(
                "{groups_deleted} of {groups_now} groups ({percent:.0}%) would be deleted with their memberships, above policy.max_group_deletions ({}) or policy.max_group_deletion_percent ({}%)",
                policy.max_group_deletions, policy.max_group_deletion_percent
            ));
        }
    }
    for c in &member_removals {
        if c.reason.contains("above the") {
            blocked.push(format!("group `{}`: {}", c.name, c.reason));
        }
    }
    if !complete {
        warnings.push("the snapshot is incomplete: removals are left for a complete run".into());
    }

    changes.extend(member_removals);
    changes.extend(removals);
    // Deterministic: by phase, then kind, then name and anchor.
    // Among creates and updates, those of users a name passes between come first.
    let first = |c: &Change| {
        !handover.is_empty()
            && phase(c) == 1
            && c.kind == Kind::User
            && handover.contains(&c.anchor)
    };
    changes.sort_by(|a, b| {
        phase(a)
            .cmp(&phase(b))
            .then_with(|| first(b).cmp(&first(a)))
            .then(a.kind.cmp(&b.kind))
            .then_with(|| fold(&a.name).cmp(&fold(&b.name)))
            .then_with(|| a.anchor.cmp(&b.anchor))
    });
    let ids = ids_named(&changes, current);
    Plan {
        directory: config.directory.clone(),
        changes,
        incomplete,
        blocked,
        warnings,
        changed_since: snapshot.changed_since.clone(),
        ids,
    }
}

/// (kind, anchor) → id of the target's objects that `changes` change or name as members:
/// what applying them looks up (a no-change plan of a hundred thousand users needs none).
fn ids_named(changes: &[Change], current: &Current) -> HashMap<(Kind, String), String> {
    if changes.is_empty() {
        return HashMap::new();
    }
    let named: HashSet<(Kind, &str)> = changes
        .iter()
        .flat_map(|c| {
            std::iter::once((c.kind, c.anchor.as_str()))
                .chain(c.members.iter().map(|m| (m.kind, m.anchor.as_str())))
        })
        .collect();
    current
        .anchored()
        .filter(|&(_, anchor, _, kind)| named.contains(&(kind, anchor)))
        .map(|(id, anchor, _, kind)| ((kind, anchor.to_owned()), id.to_owned()))
        .collect()
}

/// The order changes apply in: objects exist before they become members; removals last.
fn phase(c: &Change) -> u8 {
    match c.action {
        Action::ReleaseName => 0,
        Action::Create | Action::Update | Action::Reactivate => 1,
        Action::AddMembers => 2,
        Action::RemoveMembers => 3,
        Action::Deactivate | Action::Delete => 4,
    }
}

/// Users of the directory whose `userName` the source now gives to another of its users (a
/// leaver's name reused for a new hire, two names swapped): each is first renamed
/// `NAME~ANCHOR` (a [`Action::ReleaseName`] added to `changes`), so that the name is free
/// when its new holder is created or renamed. A holder the source renamed then takes its
/// new name (its change now renames it from the released name: should that name be taken,
/// the holder keeps the released one, not the name just given away); one that left keeps
/// the released name, and is deactivated or deleted as any leaver. On an incomplete read
/// only holders the source renamed give theirs up: a user missing from a partial read may
/// still hold its name, and the newcomer waits as a conflict.
///
/// Returns the anchors of the users a name passes between: their changes apply first among
/// creates and updates, so that a run that stops at a conflict (policy `fail`) leaves no
/// one with a released name for long.
fn release_names(
    changes: &mut Vec<Change>,
    current: &Current,
    wanted: &HashMap<&str, &str>,
    complete: bool,
) -> HashSet<String> {
    // A first import holds no name yet: its hundred thousand creates are not looked at.
    if current.users.is_empty() {
        return HashSet::new();
    }
    let renames =
        |c: &Change| c.kind == Kind::User && c.changed.iter().any(|a| a.attribute == "userName");
    // Folded new name → anchor of the user taking it.
    let claims: HashMap<Cow<'_, str>, &str> = changes
        .iter()
        .filter(|c| c.kind == Kind::User && c.action == Action::Create || renames(c))
        .map(|c| (fold(&c.name), c.anchor.as_str()))
        .collect();
    if claims.is_empty() {
        return HashSet::new();
    }
    // Anchor → position of its rename.
    let renamed: HashMap<&str, usize> = changes
        .iter()
        .enumerate()
        .filter(|(_, c)| renames(c))
        .map(|(i, c)| (c.anchor.as_str(), i))
        .collect();
    let mut involved = HashSet::new();
    let mut releases = Vec::new();
    // (position of the holder's own rename, the name it is released under)
    let mut renamed_from = Vec::new();
    for r in &current.users {
        let Some(anchor) = r.external_id.as_deref() else {
            continue;
        };
        let Some(&taker) = claims.get(fold(&r.name).as_ref()) else {
            continue;
        };
        let own_rename = renamed.get(anchor).copied();
        let gives_up = if wanted.contains_key(anchor) {
            own_rename.is_some()
        } else {
            complete
        };
        if taker == anchor || !gives_up {
            continue;
        }
        let released = format!("{}~{anchor}", r.name);
        involved.insert(anchor.to_owned());
        involved.insert(taker.to_owned());
        renamed_from.extend(own_rename.map(|i| (i, released.clone())));
        releases.push(Change {
            action: Action::ReleaseName,
            kind: Kind::User,
            anchor: anchor.to_owned(),
            name: released.clone(),
            id: Some(r.id.clone()),
            reason: format!(
                "the source gives `{}` to another user (anchor `{taker}`)",
                r.name
            ),
            changed: vec![AttributeChange {
                attribute: "userName".into(),
                old: json!(r.name),
                new: json!(released),
            }],
            members: Vec::new(),
            input: None,
        });
    }
    for (i, released) in renamed_from {
        for c in changes[i]
            .changed
            .iter_mut()
            .filter(|c| c.attribute == "userName")
        {
            c.old = json!(released);
        }
    }
    changes.extend(releases);
    involved
}

/// A group's members by (kind, anchor), with their names: sorted by (kind, anchor), each
/// once. (Five thousand groups of a few dozen: sorted lists cost less than a hash map
/// each.)
struct Members<'a>(Vec<((Kind, &'a str), &'a str)>);

impl<'a> FromIterator<((Kind, &'a str), &'a str)> for Members<'a> {
    fn from_iter<I: IntoIterator<Item = ((Kind, &'a str), &'a str)>>(items: I) -> Self {
        let mut list: Vec<_> = items.into_iter().collect();
        // Sorted by name too, so that of two names of one member the same one stays.
        list.sort_unstable();
        list.dedup_by(|a, b| a.0 == b.0);
        Self(list)
    }
}

/// The members of `from` not in `except`, in order.
fn member_refs(from: &Members<'_>, except: &Members<'_>) -> Vec<MemberRef> {
    let mut except = except.0.iter().map(|(key, _)| key).peekable();
    from.0
        .iter()
        .filter(|(key, _)| {
            while except.next_if(|e| *e < key).is_some() {}
            except.peek() != Some(&key)
        })
        .map(|&((kind, anchor), name)| MemberRef {
            kind,
            anchor: anchor.to_owned(),
            name: name.to_owned(),
        })
        .collect()
}

fn membership(
    action: Action,
    g: &SourceGroup,
    id: Option<&String>,
    members: Vec<MemberRef>,
) -> Change {
    let reason = match action {
        Action::AddMembers => "members in the source".to_owned(),
        _ => "no longer members in the source".to_owned(),
    };
    Change {
        action,
        kind: Kind::Group,
        anchor: g.anchor.clone(),
        name: g.name.clone(),
        id: id.cloned(),
        reason,
        changed: Vec::new(),
        members,
        input: None,
    }
}

/// Attribute-level differences between stored and wanted attributes (and `active`).
fn diff(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    old_active: Option<bool>,
    new_active: Option<bool>,
) -> Vec<AttributeChange> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out: Vec<AttributeChange> = keys
        .into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| AttributeChange {
            attribute: k.clone(),
            old: old.get(k).cloned().unwrap_or(Value::Null),
            new: new.get(k).cloned().unwrap_or(Value::Null),
        })
        .collect();
    // `active` is said once: when the attributes carry it, their row says it.
    if let Some(new_active) = new_active
        && old_active != Some(new_active)
        && (old_active.is_some() || !new_active)
        && !out.iter().any(|c| c.attribute == "active")
    {
        out.push(AttributeChange {
            attribute: "active".into(),
            old: old_active.map_or(Value::Null, Value::Bool),
            new: Value::Bool(new_active),
        });
    }
    out
}

/// The target's users by anchor (their `externalId`), sized up front: a hundred thousand.
fn held_by_anchor(current: &Current) -> HashMap<&str, &HeldUser> {
    let mut held = HashMap::with_capacity(current.users.len());
    held.extend(
        current
            .users
            .iter()
            .filter_map(|r| r.external_id.as_deref().map(|a| (a, r))),
    );
    held
}

/// Whether the target's `r`, its attributes parsed as `attributes`, is the user `wanted`
/// describes.
fn holds_as_wanted(r: &HeldUser, attributes: &Map<String, Value>, wanted: &Input) -> bool {
    r.active == wanted.active && r.name == wanted.name && *attributes == wanted.attributes
}

/// [`desired_user`] of each entry, in order, on every core, each compared with what the
/// target holds (`held`, by anchor): each entry's mapping and schema check stands alone,
/// and a full read brings a hundred thousand. Entries `settled` while the source was read
/// are not mapped again. The users go to `into`, the entries that cannot be mapped to
/// `problems`.
fn desired_users<'a>(
    config: &SyncConfig,
    rt: &crate::scim::schema::ResourceType,
    entries: &'a [Entry],
    settled: Settled,
    held: &HashMap<&str, &'a HeldUser>,
    into: &mut Vec<Desired<'a>>,
    problems: &mut Vec<String>,
) {
    /// Below this many entries per thread, a thread costs more than it saves.
    const PER_THREAD: usize = 2000;
    /// Entries mapped at a time, by whichever thread is free.
    const CHUNK: usize = 512;
    let unsettled = entries.len() - settled.count();
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(unsettled / PER_THREAD)
        .max(1);
    let shape = Shape::of(&config.users);
    // Each chunk's settled users, taken by whichever thread maps the chunk.
    let mut settled = settled.0.into_iter();
    let settled: Vec<std::sync::Mutex<Vec<Option<Early>>>> = entries
        .chunks(CHUNK)
        .map(|chunk| std::sync::Mutex::new(settled.by_ref().take(chunk.len()).collect()))
        .collect();
    let map = |i: usize, chunk: &'a [Entry]| -> Vec<Result<Desired<'a>, String>> {
        let early = settled
            .get(i)
            .map(|s| {
                std::mem::take(&mut *s.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
            })
            .unwrap_or_default();
        let mut early = early.into_iter();
        chunk
            .iter()
            .map(|e| match early.next().flatten() {
                Some(early) => early.into_desired(config, e),
                None => desired_user(config, rt, shape.as_ref(), e, held),
            })
            .collect()
    };
    let mut take = |mapped: Vec<Result<Desired<'a>, String>>| {
        for d in mapped {
            match d {
                Ok(d) => into.push(d),
                Err(problem) => problems.push(problem),
            }
        }
    };
    // The entries go out in small chunks, each to the thread free first, the calling
    // thread among them: cut in equal halves, one thread finished a fifth of the mapping's
    // time before the other when its core was shared.
    let chunks: Vec<&'a [Entry]> = entries.chunks(CHUNK).collect();
    if threads == 1 {
        for (i, chunk) in chunks.into_iter().enumerate() {
            take(map(i, chunk));
        }
        return;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(chunk) = chunks.get(i) else {
                return done;
            };
            done.push((i, map(i, chunk)));
        }
    };
    let mut mapped = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut mapped = work();
        for t in helpers {
            mapped.extend(t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        mapped
    });
    // In the entries' order: the plan is deterministic.
    mapped.sort_unstable_by_key(|(i, _)| *i);
    for (_, chunk) in mapped {
        take(chunk);
    }
}

/// The SCIM user an entry maps to, settled against what the target holds (`held`, by
/// anchor); `shape` is the mapping's [`Shape`], when it has one.
fn desired_user<'a>(
    config: &SyncConfig,
    rt: &crate::scim::schema::ResourceType,
    shape: Option<&Shape>,
    entry: &'a Entry,
    held: &HashMap<&str, &'a HeldUser>,
) -> Result<Desired<'a>, String> {
    let users = &config.users;
    let anchor = user_anchor(users, entry)?;
    let user_name = entry
        .text(&users.user_name)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{} has no `{}` (the userName)", entry.dn, users.user_name))?;
    let active = user_active(users, entry)?;
    let holder = held.get(&*anchor).copied();
    // A re-sync's common case: the target holds just what the mapping gives. What it holds
    // passed the schema check when it was written, and the check keeps what it passes as
    // it is (a test holds it to that), so the check is not run again. The shape tells it
    // from the entry's values; the attributes are made as JSON only when it cannot (no
    // shape, a target that hands its users over parsed, a user that differs).
    let values = shape::values(users, entry);
    let by_shape = holder.zip(shape).is_some_and(|(r, shape)| {
        r.active == active
            && r.name == user_name
            && r.attributes
                .is_text_of(&shape.user(&values, &user_name, active))
    });
    // Made only when the shape could not tell: a user it tells is unchanged.
    let mut body = if by_shape {
        Value::Null
    } else {
        mapped_body(users, values, &user_name, active)
    };
    let (input, standing) = if let Some(r) = holder
        && r.active == active
        && r.name == user_name
        && (by_shape
            || body
                .as_object()
                .is_some_and(|b| r.attributes.is_written_as(b)))
    {
        let input = Input {
            name: user_name,
            active,
            ..Input::default()
        };
        (input, Standing::Unchanged)
    } else {
        body["schemas"] = json!([rt.schema.id]);
        body["externalId"] = Value::String(anchor.to_string());
        let mut input = read_input(rt, Kind::User, &body, Compatibility::default())
            .map_err(|e| format!("{}: {}", entry.dn, e.detail))?;
        // Settled here, on the mapping threads: a first import's creates are made ready,
        // the attributes of a user held as wanted are freed, and those of a user held
        // otherwise are parsed (once) for the plan's comparison and diff.
        let standing = match holder {
            None => Standing::New,
            Some(r) => {
                let parsed = (!r.attributes.is_written_as(&input.attributes))
                    .then(|| r.attributes.to_object().into_owned());
                if holds_as_wanted(r, parsed.as_ref().unwrap_or(&input.attributes), &input) {
                    input.attributes = Map::new();
                    Standing::Unchanged
                } else {
                    Standing::Differs(r, parsed.unwrap_or_else(|| input.attributes.clone()))
                }
            }
        };
        (input, standing)
    };
    Ok(Desired {
        anchor,
        dn: &entry.dn,
        dn_key: dn_key(&entry.dn),
        input,
        standing,
    })
}

/// The anchor of a user's entry, or why it has none.
fn user_anchor<'a>(users: &UserSearch, entry: &'a Entry) -> Result<Cow<'a, str>, String> {
    anchor_in(entry, &users.anchor, users.anchor_is_binary)
        .ok_or_else(|| format!("{} has no usable `{}` (the anchor)", entry.dn, users.anchor))
}

/// Whether the user is active, as `users.active` says.
fn user_active(users: &UserSearch, entry: &Entry) -> Result<bool, String> {
    let Some(source) = &users.active else {
        return Ok(true);
    };
    match evaluate(source, entry) {
        Some(Value::Bool(b)) => Ok(b),
        // No value: a lock flag that is not set (pwdAccountLockedTime absent) means
        // active; for any other source, a value that cannot be read says nothing, and
        // guessing "disabled" would deactivate on missing information.
        None if matches!(
            source,
            Source::Attribute {
                transform: Transform::NotBoolean,
                ..
            }
        ) =>
        {
            Ok(true)
        }
        None => Err(format!(
            "{}: users.active has no readable value (is the attribute there, and readable by the bind account?)",
            entry.dn
        )),
        Some(other) => Err(format!(
            "{}: users.active gave `{other}`, not a boolean (use a boolean or bit transform)",
            entry.dn
        )),
    }
}

/// The SCIM attributes the mapping gives an entry, from what each mapping gives it
/// ([`shape::values`]): `userName`, each mapped path in the configuration's order (a later
/// one over an earlier at the same path), then `active`. [`Shape::user`] writes the same,
/// without making it.
fn mapped_body(
    users: &UserSearch,
    values: Vec<Option<shape::Mapped<'_>>>,
    user_name: &str,
    active: bool,
) -> Value {
    let mut body = json!({ "userName": user_name });
    for ((path, _), value) in users.attributes.iter().zip(values) {
        if let Some(value) = value {
            set_path(&mut body, path, value.into_value());
        }
    }
    body["active"] = Value::Bool(active);
    body
}

/// The value a mapping gives for an entry; `None` when the entry has none.
fn evaluate(source: &Source, entry: &Entry) -> Option<Value> {
    shape::evaluate(source, entry).map(shape::Mapped::into_value)
}

/// Sets `value` at a PATCH-style path in a SCIM body: `a`, `a.b`, `urn:…:a`, or
/// `a[type eq "work"].b` (the element with those values, created when missing).
fn set_path(body: &mut Value, path: &PatchPath, value: Value) {
    let Value::Object(root) = body else { return };
    let container = match path.attr.urn() {
        Some(urn) if !urn.eq_ignore_ascii_case("urn:ietf:params:scim:schemas:core:2.0:User") => {
            match root
                .entry(urn.to_owned())
                .or_insert_with(|| Value::Object(Map::new()))
            {
                Value::Object(m) => m,
                _ => return,
            }
        }
        _ => root,
    };
    let name = path.attr.name().to_owned();
    match (&path.filter, path.attr.sub_attr()) {
        (None, None) => {
            container.insert(name, value);
        }
        (None, Some(sub)) => {
            if let Value::Object(m) = container
                .entry(name)
                .or_insert_with(|| Value::Object(Map::new()))
            {
                m.insert(sub.to_owned(), value);
            }
        }
        (Some(filter), _) => {
            let Some(mut element) = equalities(filter) else {
                return;
            };
            let Value::Array(items) = container
                .entry(name)
                .or_insert_with(|| Value::Array(Vec::new()))
            else {
                return;
            };
            let found = items.iter_mut().find(|i| {
                element
                    .iter()
                    .all(|(k, v)| i.get(k).is_some_and(|x| x == v))
            });
            let target = match (found, &path.sub_attr) {
                (Some(existing), _) => existing,
                (None, _) => {
                    if path.sub_attr.is_none() {
                        // `emails[type eq "work"]` = value: the value is the element.
                        if let Value::Object(v) = value {
                            element.extend(v);
                        }
                        items.push(Value::Object(element));
                        return;
                    }
                    items.push(Value::Object(element));
                    let Some(last) = items.last_mut() else { return };
                    last
                }
            };
            if let (Some(sub), Value::Object(m)) = (&path.sub_attr, target) {
                m.insert(sub.clone(), value);
            }
        }
    }
}

/// `type eq "work" and primary eq true` as the object `{type: "work", primary: true}`.
pub(crate) fn equalities(filter: &Filter) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let mut add = |f: &Filter| match f {
        Filter::Compare(c) if c.op == CompareOp::Eq && c.path.sub_attr().is_none() => {
            let v = match &c.value {
                Literal::String(s) => Value::String(s.to_string()),
                Literal::Boolean(b) => Value::Bool(*b),
                Literal::Integer(n) => json!(n),
                _ => return false,
            };
            out.insert(c.path.name().to_owned(), v);
            true
        }
        _ => false,
    };
    let ok = match filter {
        Filter::And(items) => items.iter().all(&mut add),
        other => add(other),
    };
    ok.then_some(out)
}

/// A group as read from the source.
pub(crate) struct SourceGroup {
    anchor: String,
    dn_key: String,
    dn: String,
    name: String,
}

/// Groups and their direct members, by anchor.
struct Groups {
    groups: Vec<SourceGroup>,
    /// Group anchor → direct members (kind, anchor), unsorted and possibly listed twice:
    /// what reads them makes sets of them.
    direct: HashMap<String, Vec<(Kind, String)>>,
    /// Group anchor → why its member list was not read whole.
    partial: HashMap<String, String>,
}

impl Groups {
    /// Why a group's members as the configuration wants them are not known whole: its own
    /// list, or (flattened) the list of a group inside it, was not read whole.
    fn partial_because(&self, anchor: &str, nested: Nested) -> Option<String> {
        if nested == Nested::Keep {
            return self.partial.get(anchor).cloned();
        }
        let mut seen = HashSet::new();
        let mut stack = vec![anchor.to_owned()];
        while let Some(g) = stack.pop() {
            if !seen.insert(g.clone()) {
                continue;
            }
            if let Some(why) = self.partial.get(&g) {
                return Some(if g == anchor {
                    why.clone()
                } else {
                    format!("a group inside it: {why}")
                });
            }
            for (kind, member) in self.direct.get(&g).into_iter().flatten() {
                if *kind == Kind::Group {
                    stack.push(member.clone());
                }
            }
        }
        None
    }

    /// The users of a group, through nested groups, each group visited once (cycles end).
    fn flattened_users<'a>(&'a self, anchor: &'a str) -> HashSet<&'a str> {
        let mut users = HashSet::new();
        let mut seen = HashSet::new();
        let mut stack = vec![anchor];
        while let Some(g) = stack.pop() {
            if !seen.insert(g) {
                continue;
            }
            for (kind, member) in self.direct.get(g).into_iter().flatten() {
                match kind {
                    Kind::User => {
                        users.insert(member.as_str());
                    }
                    Kind::Group => stack.push(member),
                }
            }
        }
        users
    }

    /// A group's members as the configuration wants them (kept nesting: maybe some twice).
    fn members<'a>(&'a self, anchor: &'a str, nested: Nested) -> Vec<(Kind, &'a str)> {
        match nested {
            Nested::Flatten => self
                .flattened_users(anchor)
                .into_iter()
                .map(|u| (Kind::User, u))
                .collect(),
            Nested::Keep => self
                .direct
                .get(anchor)
                .into_iter()
                .flatten()
                .filter(|(k, a)| *k == Kind::User || a != anchor)
                .map(|(k, a)| (*k, a.as_str()))
                .collect(),
        }
    }
}

fn read_groups(
    config: &GroupSearch,
    snapshot: &Snapshot,
    current: &Current,
    anchor_of_id: &HashMap<&str, (&str, &str, Kind)>,
    users: &[Desired<'_>],
    incomplete: &mut Vec<String>,
) -> Groups {
    let mut groups = Vec::new();
    let mut seen = HashSet::new();
    for e in snapshot.groups.iter().chain(&snapshot.unchanged_groups) {
        let Some(anchor) = anchor_of(e, &config.anchor, config.anchor_is_binary) else {
            incomplete.push(format!(
                "{} has no usable `{}` (the anchor)",
                e.dn, config.anchor
            ));
            continue;
        };
        // Two entries of one group: moved between two searches of one read.
        if !seen.insert(anchor.clone()) {
            incomplete.push(format!(
                "two entries share the anchor `{anchor}` ({})",
                e.dn
            ));
            continue;
        }
        // A name that is only spaces is no displayName: flagged here, before the plan
        // decides whether the snapshot is complete.
        let Some(name) = e.text(&config.name).filter(|n| !n.trim().is_empty()) else {
            incomplete.push(format!(
                "{} has no `{}` (the group name)",
                e.dn, config.name
            ));
            continue;
        };
        groups.push(SourceGroup {
            anchor,
            dn_key: dn_key(&e.dn).into_owned(),
            dn: e.dn.clone(),
            name,
        });
    }
    let mut user_by_dn: HashMap<&str, &str> = HashMap::with_capacity(users.len());
    user_by_dn.extend(users.iter().map(|u| (u.dn_key.as_ref(), u.anchor.as_ref())));
    let group_by_dn: HashMap<&str, &str> = groups
        .iter()
        .map(|g| (g.dn_key.as_str(), g.anchor.as_str()))
        .collect();
    let mut direct: HashMap<String, Vec<(Kind, String)>> = HashMap::new();
    let mut partial: HashMap<String, String> = snapshot
        .partial_groups
        .iter()
        .filter_map(|(dn, why)| {
            group_by_dn
                .get(dn_key(dn).as_ref())
                .map(|g| ((*g).to_owned(), why.clone()))
        })
        .collect();
    let group_at: HashMap<&str, &SourceGroup> = groups.iter().map(|g| (g.dn.as_str(), g)).collect();
    let resolve = |dn: &str| -> Option<(Kind, String)> {
        let key = dn_key(dn);
        if let Some(u) = user_by_dn.get(key.as_ref()) {
            Some((Kind::User, (*u).to_owned()))
        } else {
            group_by_dn
                .get(key.as_ref())
                .map(|g| (Kind::Group, (*g).to_owned()))
        }
    };
    match config.membership {
        Membership::Member | Membership::UniqueMember => {
            let attribute = if config.membership == Membership::Member {
                "member"
            } else {
                "uniqueMember"
            };
            let ranged = format!("{};range=", attribute.to_ascii_lowercase());
            for e in &snapshot.groups {
                let Some(group) = group_at.get(e.dn.as_str()) else {
                    continue;
                };
                // A range left unread (`member;range=0-1499` of more): the source's
                // reader reads ranges to the end, so this snapshot was made elsewhere.
                if e.attributes.keys().any(|k| k.starts_with(&ranged)) {
                    partial.insert(
                        group.anchor.clone(),
                        format!("its members come in ranges ({ranged}…) not read to the end"),
                    );
                }
                let list = direct.entry(group.anchor.clone()).or_default();
                for v in e.values(attribute) {
                    let text = String::from_utf8_lossy(v);
                    // uniqueMember may end in an optional UID, `#'0101'B`; `#` is otherwise
                    // an ordinary character of a DN.
                    let dn = match text.rsplit_once('#') {
                        Some((dn, uid))
                            if config.membership == Membership::UniqueMember
                                && uid.starts_with('\'')
                                && uid.ends_with("'B") =>
                        {
                            dn
                        }
                        _ => &text,
                    };
                    // Members outside the user and group searches are not imported.
                    if let Some(m) = resolve(dn) {
                        list.push(m);
                    }
                }
            }
        }
        Membership::MemberUid => {
            // Folded names only here: folding every userName cost 12-18% of a plan.
            let user_by_name: HashMap<String, &str> = users
                .iter()
                .map(|u| (fold(&u.input.name).into_owned(), &*u.anchor))
                .collect();
            for e in &snapshot.groups {
                let Some(group) = group_at.get(e.dn.as_str()) else {
                    continue;
                };
                let list = direct.entry(group.anchor.clone()).or_default();
                for v in e.values("memberUid") {
                    if let Some(u) = user_by_name.get(fold(&String::from_utf8_lossy(v)).as_ref()) {
                        list.push((Kind::User, (*u).to_owned()));
                    }
                }
            }
        }
        Membership::MemberOf => {
            let user_at: HashMap<&str, &Desired<'_>> = users.iter().map(|u| (u.dn, u)).collect();
            for entry in snapshot.users.iter().chain(&snapshot.unchanged_users) {
                let Some(user) = user_at.get(entry.dn.as_str()) else {
                    continue;
                };
                for v in entry.values("memberOf") {
                    if let Some(g) = group_by_dn.get(dn_key(&String::from_utf8_lossy(v)).as_ref()) {
                        direct
                            .entry((*g).to_owned())
                            .or_default()
                            .push((Kind::User, user.anchor.to_string()));
                    }
                }
            }
        }
    }
    // `primaryGroupID` is the last part (the RID) of the group's `objectSid`.
    let group_by_rid: HashMap<u32, &str> = if config.primary_group {
        snapshot
            .groups
            .iter()
            .chain(&snapshot.unchanged_groups)
            .filter_map(|e| {
                let rid = sid_rid(e.values("objectSid").first()?)?;
                Some((rid, group_at.get(e.dn.as_str())?.anchor.as_str()))
            })
            .collect()
    } else {
        HashMap::new()
    };
    let primary_group = |entry: &Entry| {
        let rid = entry.text("primaryGroupID")?.trim().parse::<u32>().ok()?;
        group_by_rid.get(&rid).copied()
    };
    // Without primary groups, no user is looked up for nothing.
    if !group_by_rid.is_empty() {
        for entry in snapshot.users.iter().chain(&snapshot.unchanged_users) {
            if let Some(group) = primary_group(entry)
                && let Some(user) = user_by_dn.get(dn_key(&entry.dn).as_ref())
            {
                direct
                    .entry(group.to_owned())
                    .or_default()
                    .push((Kind::User, (*user).to_owned()));
            }
        }
    }
    if !snapshot.unchanged_groups.is_empty() {
        let held = Held {
            config,
            snapshot,
            current,
            anchor_of_id,
            user_by_dn: &user_by_dn,
            group_by_dn: &group_by_dn,
            primary_group: &primary_group,
        };
        held.members(users, &mut direct, incomplete);
    }
    Groups {
        groups,
        direct,
        partial,
    }
}

/// What the members of groups an incremental read found unchanged are worked out from.
struct Held<'a> {
    config: &'a GroupSearch,
    snapshot: &'a Snapshot,
    current: &'a Current,
    /// The target's objects by id: (anchor, name, kind).
    anchor_of_id: &'a HashMap<&'a str, (&'a str, &'a str, Kind)>,
    /// User DN key → anchor, of every user wanted.
    user_by_dn: &'a HashMap<&'a str, &'a str>,
    /// Group DN key → anchor, of every group read.
    group_by_dn: &'a HashMap<&'a str, &'a str>,
    /// A user entry's primary group, when the configuration imports them.
    primary_group: &'a dyn Fn(&Entry) -> Option<&'a str>,
}

impl<'a> Held<'a> {
    /// The members of the groups in `snapshot.unchanged_groups` (AD: their `uSNChanged`
    /// did not move, nor, flattened, that of any group inside them), into `direct`: as the
    /// target holds them, less the users and groups read in full, which are members of
    /// the unchanged groups their `memberOf` (and primary group) names — flattened, of the
    /// unchanged groups above those too.
    fn members(
        &self,
        users: &[Desired<'_>],
        direct: &mut HashMap<String, Vec<(Kind, String)>>,
        incomplete: &mut Vec<String>,
    ) {
        let group_of = |e: &Entry| self.group_by_dn.get(dn_key(&e.dn).as_ref()).copied();
        let unchanged: HashSet<&str> = self
            .snapshot
            .unchanged_groups
            .iter()
            .filter_map(group_of)
            .collect();
        let read_groups: HashSet<&str> = self.snapshot.groups.iter().filter_map(group_of).collect();
        let read_user_anchors: HashSet<&str> = users
            .iter()
            .filter(|u| !matches!(u.standing, Standing::Held))
            .map(|u| &*u.anchor)
            .collect();
        // The target's members, except those read in full.
        let mut held = HashSet::new();
        for r in &self.current.groups {
            let Some(anchor) = r.external_id.as_deref().filter(|a| unchanged.contains(a)) else {
                continue;
            };
            held.insert(anchor);
            let list = direct.entry(anchor.to_owned()).or_default();
            for m in self.current.members.get(&r.id).into_iter().flatten() {
                let Some(&(member, _, kind)) = self.anchor_of_id.get(m.id.as_str()) else {
                    continue;
                };
                let read_in_full = match kind {
                    Kind::User => read_user_anchors.contains(member),
                    Kind::Group => read_groups.contains(member),
                };
                if !read_in_full {
                    list.push((kind, member.to_owned()));
                }
            }
        }
        // The reader reads groups the target does not hold in full; one that slipped
        // through waits for the next run rather than being planned on a guess.
        for e in &self.snapshot.unchanged_groups {
            if group_of(e).is_some_and(|g| !held.contains(g)) {
                incomplete.push(format!(
                    "{} was not read in full; the next run reads it",
                    e.dn
                ));
            }
        }
        // Each group's parents, as its `memberOf` names them among the groups read.
        let parents: HashMap<&str, Vec<&str>> = self
            .snapshot
            .groups
            .iter()
            .chain(&self.snapshot.unchanged_groups)
            .filter_map(|e| Some((group_of(e)?, self.member_of(e))))
            .collect();
        let nested = self.config.nested;
        // The unchanged groups a member of `start` is a member of, as configured.
        let containing = |start: Vec<&'a str>| -> Vec<&'a str> {
            let mut seen: HashSet<&'a str> = HashSet::new();
            let mut stack = start;
            while let Some(g) = stack.pop() {
                if seen.insert(g) && nested == Nested::Flatten {
                    stack.extend(parents.get(g).into_iter().flatten().copied());
                }
            }
            seen.into_iter().filter(|g| unchanged.contains(g)).collect()
        };
        // The users read in full: `snapshot.users`, whose wanted ones are not held.
        for e in &self.snapshot.users {
            let Some(user) = self.user_by_dn.get(dn_key(&e.dn).as_ref()) else {
                continue;
            };
            let mut groups = self.member_of(e);
            groups.extend((self.primary_group)(e));
            for g in containing(groups) {
                direct
                    .entry(g.to_owned())
                    .or_default()
                    .push((Kind::User, (*user).to_owned()));
            }
        }
        // Kept nesting: a group read in full is a member of the unchanged groups it names.
        if nested == Nested::Keep {
            for e in &self.snapshot.groups {
                let Some(g) = group_of(e) else { continue };
                for p in self
                    .member_of(e)
                    .into_iter()
                    .filter(|p| unchanged.contains(p))
                {
                    direct
                        .entry(p.to_owned())
                        .or_default()
                        .push((Kind::Group, g.to_owned()));
                }
            }
        }
    }

    /// The groups read that an entry's `memberOf` names.
    fn member_of(&self, e: &Entry) -> Vec<&'a str> {
        e.values("memberOf")
            .iter()
            .filter_map(|v| {
                self.group_by_dn
                    .get(dn_key(&String::from_utf8_lossy(v)).as_ref())
                    .copied()
            })
            .collect()
    }
}

/// The relative identifier of a binary SID: its last sub-authority (little-endian), after a
/// revision byte, a count byte and a six-byte authority.
fn sid_rid(sid: &[u8]) -> Option<u32> {
    let count = usize::from(*sid.get(1)?);
    if sid.first() != Some(&1) || count == 0 || sid.len() != 8 + 4 * count {
        return None;
    }
    let last: [u8; 4] = sid[sid.len() - 4..].try_into().ok()?;
    Some(u32::from_le_bytes(last))
}

mod settle;
mod shape;
#[cfg(test)]
mod tests;
