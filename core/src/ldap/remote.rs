//! A remote SCIM 2.0 endpoint as the target of an LDAP sync: an on-premises agent reads the
//! directory and feeds a cloud tenant (`https://…/scim/v2/<tenant>` and its token).
//!
//! The endpoint's current state is read over SCIM, the same plan is computed against it, and
//! the plan is applied with bounded concurrency, phase by phase as in the local store.
//! Only resources with an `externalId` are the sync's: anything else at the endpoint is
//! left alone. Every request is retried by the [`ScimClient`]; what still fails is
//! reported per object, and the next run tries it again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use foldhash::{HashMap, HashSet, HashSetExt};
use serde_json::{Value, json};

use super::apply::{ApplyError, ApplyOptions, PHASES, Progress, Report, Target, begin};
use super::config::{Conflict, SyncConfig};
use super::plan::{Action, Change, Current, Plan};
use crate::client::{ClientError, PATCH_OP, ScimClient};
use crate::scim::datetime::DateTime;
use crate::scim::filter::Compatibility;
use crate::scim::schema::{Attribute, ResourceType, SchemaRegistry};
use crate::scim::service::resource::{Input, read_held};
use crate::store::{Kind, Member, Resource};

mod owned;

use owned::Ownership;

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Members per PATCH adding members: large groups are fed in slices a server accepts.
const ADD_SLICE: usize = 500;
/// Members per PATCH removing members: each is a term of the path's value filter.
const REMOVE_SLICE: usize = 50;
/// Requests between checks of the sync lock ([`ApplyOptions::with_lock`]).
const LOCK_CHECK_EVERY: usize = 100;

/// A SCIM endpoint to sync into.
#[derive(Debug)]
pub struct RemoteTarget {
    client: ScimClient,
    /// Whether the endpoint pages with cursors; known once it has been checked.
    cursors: std::sync::OnceLock<bool>,
}

impl RemoteTarget {
    /// A target that is checked when first read (see [`RemoteTarget::check`]): what a
    /// long-running daemon wants, where an endpoint down at start is one failed run to retry.
    pub fn new(client: ScimClient) -> Self {
        Self {
            client,
            cursors: std::sync::OnceLock::new(),
        }
    }

    /// A target checked now: what a one-off sync wants, to stop before LDAP is read.
    ///
    /// # Errors
    /// As [`RemoteTarget::check`].
    pub fn connect(client: ScimClient) -> Result<Self, ClientError> {
        let target = Self::new(client);
        target.check()?;
        Ok(target)
    }

    /// Reads the endpoint's `/ServiceProviderConfig` and one user, which checks the URL and
    /// the token (discovery may be open to all) and learns how it pages.
    ///
    /// # Errors
    /// The [`ClientError`] of the first request that fails.
    pub fn check(&self) -> Result<(), ClientError> {
        let config = self.client.get("/ServiceProviderConfig", &[])?;
        self.client.get("/Users", &[("count", "1")])?;
        let cursors = config.pointer("/pagination/cursor") == Some(&Value::Bool(true));
        let _ = self.cursors.set(cursors);
        Ok(())
    }

    /// Requests retried so far.
    pub fn retries(&self) -> u64 {
        self.client.retries()
    }

    /// One change, as the requests it takes.
    fn execute(
        &self,
        change: &Change,
        ids: &HashMap<(Kind, String), String>,
        owned: &Ownership,
    ) -> Result<Sent, ClientError> {
        let collection = format!("/{}", change.kind.collection());
        let id = ids.get(&(change.kind, change.anchor.clone()));
        let at = |id: &str| format!("{collection}/{id}");
        let patch = |id: &str, operations: Vec<Value>| {
            let body = json!({"schemas": [PATCH_OP], "Operations": operations});
            self.client
                .send(
                    reqwest::Method::PATCH,
                    self.client.url(&at(id), &[]),
                    Some(&body),
                )
                .map(|_| Sent::Applied)
        };
        match (change.action, &change.input, id) {
            (Action::Create, Some(input), _) => {
                let body = body(change, input);
                let url = self.client.url(&collection, &[]);
                // An answer lost after the server made it: found, not made twice.
                let made = || {
                    Ok(self
                        .find(&collection, change)?
                        .map(|id| json!({ "id": id })))
                };
                match self
                    .client
                    .send_once(reqwest::Method::POST, url, Some(&body), &made)
                {
                    Ok((_, created)) => match created.get("id").and_then(Value::as_str) {
                        Some(id) => Ok(Sent::Created(id.to_owned())),
                        None => Err(ClientError::Protocol {
                            url: collection.clone(),
                            message: "the created resource has no `id`".into(),
                        }),
                    },
                    // A create retried after its answer was lost: it is there already.
                    // A lookup that fails leaves the 409 as the answer: a name taken.
                    Err(e) if e.status() == Some(409) => match self.find(&collection, change) {
                        Ok(Some(id)) => Ok(Sent::Created(id)),
                        _ => Err(e),
                    },
                    Err(e) => Err(e),
                }
            }
            // What differs of what the sync owns, by PATCH: a PUT would clear what others
            // set at the target, and a group's its members.
            (Action::Update | Action::Reactivate | Action::Deactivate, Some(_), Some(id)) => {
                let operations = owned.of_kind(change.kind).operations(&change.changed);
                if operations.is_empty() {
                    return Ok(Sent::Nothing);
                }
                patch(id, operations)
            }
            (Action::ReleaseName, _, Some(id)) => patch(
                id,
                vec![json!({"op": "replace", "path": "userName", "value": change.name})],
            ),
            (Action::Deactivate, None, Some(id)) => patch(
                id,
                vec![json!({"op": "replace", "path": "active", "value": false})],
            ),
            (Action::Delete, _, Some(id)) => {
                match self
                    .client
                    .send(reqwest::Method::DELETE, self.client.url(&at(id), &[]), None)
                {
                    Err(e) if e.status() == Some(404) => Ok(Sent::Applied),
                    other => other.map(|_| Sent::Applied),
                }
            }
            (Action::AddMembers, _, Some(id)) => {
                let members: Vec<Value> = member_ids(change, ids)
                    .map(|(kind, member)| json!({"value": member, "type": kind.as_str()}))
                    .collect();
                if members.is_empty() {
                    return Ok(Sent::Nothing);
                }
                for slice in members.chunks(ADD_SLICE) {
                    patch(
                        id,
                        vec![json!({"op": "add", "path": "members", "value": slice})],
                    )?;
                }
                Ok(Sent::Applied)
            }
            (Action::RemoveMembers, _, Some(id)) => {
                let members: Vec<String> = member_ids(change, ids)
                    .map(|(_, member)| format!("value eq {}", Value::String(member.clone())))
                    .collect();
                if members.is_empty() {
                    return Ok(Sent::Nothing);
                }
                for slice in members.chunks(REMOVE_SLICE) {
                    let path = format!("members[{}]", slice.join(" or "));
                    patch(id, vec![json!({"op": "remove", "path": path})])?;
                }
                Ok(Sent::Applied)
            }
            // Its object is gone, or was never created: nothing to do.
            _ => Ok(Sent::Nothing),
        }
    }

    /// The `id` of the resource with the change's anchor as `externalId`, if there is one.
    fn find(&self, collection: &str, change: &Change) -> Result<Option<String>, ClientError> {
        let filter = format!("externalId eq {}", Value::String(change.anchor.clone()));
        let found = self.client.get(collection, &[("filter", &filter)])?;
        Ok(match found.get("Resources").and_then(Value::as_array) {
            Some(r) if r.len() == 1 => r[0].get("id").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        })
    }
}

impl Target for RemoteTarget {
    /// A SCIM server may leave `members` out of the groups it lists (an unassigned
    /// attribute may be omitted, and large groups often are): an incremental read then
    /// reads every group with its members.
    fn holds_member_lists(&self) -> bool {
        false
    }

    fn current(&self, config: &SyncConfig) -> Result<Current, ApplyError> {
        if self.cursors.get().is_none() {
            self.check()?;
        }
        let cursors = self.cursors.get().copied().unwrap_or(false);
        let registry = SchemaRegistry::core();
        let owned = Ownership::of(config);
        let mut current = Current::default();
        let mut group_ids = HashSet::new();
        let mut members_of = Vec::new();
        for kind in [Kind::Group, Kind::User] {
            let collection = format!("/{}", kind.collection());
            let rt = registry
                .resource_type(kind.as_str())
                .ok_or_else(|| ApplyError::Remote("the core schemas are missing".into()))?;
            for value in self.client.list_all(&collection, cursors)? {
                // Only what carries an anchor is the sync's; the rest is left alone.
                let Some(external_id) = value.get("externalId").and_then(Value::as_str) else {
                    continue;
                };
                let Some(id) = value.get("id").and_then(Value::as_str) else {
                    return Err(ApplyError::Remote(format!(
                        "{collection}: a resource without `id` (externalId `{external_id}`)"
                    )));
                };
                let known = known_attributes(rt, &value);
                let input = read_held(rt, kind, &known, Compatibility::default()).map_err(|e| {
                    ApplyError::Remote(format!("{collection}/{id} cannot be read: {}", e.detail))
                })?;
                if kind == Kind::Group {
                    group_ids.insert(id.to_owned());
                    // `null` is left out too, as some servers write an unassigned attribute.
                    let listed = value.get("members").filter(|m| !m.is_null()).cloned();
                    members_of.push((id.to_owned(), listed));
                }
                let resource = Resource {
                    directory: 0,
                    kind,
                    id: id.to_owned(),
                    external_id: Some(external_id.to_owned()),
                    name: input.name,
                    active: input.active,
                    version: 0,
                    created: DateTime::from_unix(0, 0),
                    modified: DateTime::from_unix(0, 0),
                    inactive_since: None,
                    attributes: Value::Object(owned.of_kind(kind).keep(input.attributes)),
                };
                match kind {
                    Kind::User => current.users.push(resource.into()),
                    Kind::Group => current.groups.push(resource),
                }
            }
        }
        // A group listed without `members` (servers leave large lists out of pages) is read
        // on its own: taken as empty, its leavers would never be removed.
        let unlisted: Vec<&String> = members_of
            .iter()
            .filter(|(_, m)| m.is_none())
            .map(|(id, _)| id)
            .collect();
        let read_alone = concurrently(&unlisted, self.client.options().concurrency, |id| {
            let path = format!("/Groups/{id}");
            self.client
                .get(&path, &[("attributes", "members")])
                .map(|group| group.get("members").cloned())
        });
        let mut alone: HashMap<String, Option<Value>> = HashMap::default();
        let mut gone = HashSet::new();
        for (id, members) in unlisted.into_iter().zip(read_alone) {
            match members {
                Ok(members) => {
                    alone.insert(id.clone(), members);
                }
                // Deleted since the listing: not held, as if listed a moment later.
                Err(e) if e.status() == Some(404) => {
                    gone.insert(id.clone());
                }
                Err(e) => return Err(e.into()),
            }
        }
        current.groups.retain(|g| !gone.contains(&g.id));
        for (group, listed) in members_of {
            if gone.contains(&group) {
                continue;
            }
            let members = listed
                .or_else(|| alone.remove(&group).flatten())
                .as_ref()
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|m| {
                    let id = m.get("value")?.as_str()?.to_owned();
                    let kind = match m.get("type").and_then(Value::as_str) {
                        Some(t) if t.eq_ignore_ascii_case("Group") => Kind::Group,
                        Some(_) => Kind::User,
                        None if group_ids.contains(&id) => Kind::Group,
                        None => Kind::User,
                    };
                    Some(Member { id, kind })
                })
                .collect();
            current.members.insert(group, members);
        }
        Ok(current)
    }

    fn apply(
        &self,
        config: &SyncConfig,
        plan: &Plan,
        options: &ApplyOptions<'_>,
    ) -> Result<Report, ApplyError> {
        let started = Instant::now();
        let mut report = begin(plan, options)?;
        let retries_before = self.client.retries();
        let applied = self.apply_into(config, plan, options, &mut report);
        report.retries = self.client.retries() - retries_before;
        options.finish(started, report, applied)
    }
}

impl RemoteTarget {
    /// The phases of [`Target::apply`], told into `report`.
    fn apply_into(
        &self,
        config: &SyncConfig,
        plan: &Plan,
        options: &ApplyOptions<'_>,
        report: &mut Report,
    ) -> Result<(), ApplyError> {
        let total = plan.changes.len();
        let done = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let started_changes = AtomicUsize::new(0);
        let lost = std::sync::Mutex::new(None);
        let mut ids = plan.ids.clone();
        let owned = Ownership::of(config);
        let mut conflict = None;
        for actions in PHASES {
            let changes: Vec<&Change> = plan
                .changes
                .iter()
                .filter(|c| actions.contains(&c.action))
                .collect();
            let outcomes = concurrently(&changes, self.client.options().concurrency, |change| {
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
                if let Err(e) = options.check_cancel(done.load(Ordering::Relaxed), total) {
                    stop.store(true, Ordering::Relaxed);
                    if let Ok(mut lost) = lost.lock() {
                        lost.get_or_insert(e);
                    }
                    return None;
                }
                if started_changes
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(LOCK_CHECK_EVERY)
                    && let Err(e) = options.check_lock(done.load(Ordering::Relaxed), total)
                {
                    stop.store(true, Ordering::Relaxed);
                    if let Ok(mut lost) = lost.lock() {
                        lost.get_or_insert(e);
                    }
                    return None;
                }
                let outcome = self.execute(change, &ids, &owned);
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(progress) = options.progress {
                    progress(Progress {
                        done: finished,
                        total,
                    });
                }
                if matches!(&outcome, Err(e) if name_taken(change, e))
                    && config.policy.user_name_conflict == Conflict::Fail
                {
                    stop.store(true, Ordering::Relaxed);
                }
                Some(outcome)
            });
            // Lost (or stopped): what was sent is still told into the report, nothing more
            // is sent (not even a rename kept back), and the caller learns it before any
            // conflict.
            let stopped = lost.lock().ok().and_then(|mut lost| lost.take());
            for (change, outcome) in changes.into_iter().zip(outcomes) {
                match outcome {
                    // Counted as the local store counts: what sent nothing did nothing.
                    None | Some(Ok(Sent::Nothing)) => {}
                    Some(Ok(sent)) => {
                        if let Sent::Created(id) = sent {
                            ids.insert((change.kind, change.anchor.clone()), id);
                        }
                        *report.applied.entry(change.action).or_insert(0) += 1;
                    }
                    Some(Err(e)) if name_taken(change, &e) => {
                        let mut message = format!(
                            "{} `{}`: the target refused it as taken: {e}",
                            change.kind.as_str(),
                            change.name
                        );
                        if config.policy.user_name_conflict == Conflict::Fail {
                            conflict = conflict.or(Some(message));
                            continue;
                        }
                        // As into the local store (`Change::keeping_name`).
                        if stopped.is_none()
                            && let Some(kept) = change.keeping_name()
                        {
                            match self.execute(&kept, &ids, &owned) {
                                Ok(_) => {
                                    message = kept.applied_without_rename(&message);
                                    *report.applied.entry(change.action).or_insert(0) += 1;
                                }
                                Err(e) => report.failures.push(kept.rest_failed(&e)),
                            }
                        }
                        report.conflicts.push(message);
                    }
                    Some(Err(e)) => report.failures.push(format!(
                        "{} {} `{}`: {e}",
                        change.action_name(),
                        change.kind.as_str(),
                        change.name
                    )),
                }
            }
            if let Some(e) = stopped {
                return Err(e);
            }
            if let Some(message) = conflict {
                return Err(ApplyError::Conflict(message));
            }
        }
        Ok(())
    }
}

/// The body of a create: the wanted attributes, the anchor as `externalId`, and a user's
/// `active` always.
fn body(change: &Change, input: &Input) -> Value {
    let attributes = &input.attributes;
    let core = match change.kind {
        Kind::User => USER_SCHEMA,
        Kind::Group => GROUP_SCHEMA,
    };
    let schemas: Vec<&str> = std::iter::once(core)
        .chain(
            attributes
                .keys()
                .filter(|k| k.starts_with("urn:"))
                .map(String::as_str),
        )
        .collect();
    let mut body = attributes.clone();
    body.insert("schemas".into(), json!(schemas));
    body.insert("externalId".into(), Value::String(change.anchor.clone()));
    if change.kind == Kind::User {
        body.entry("active").or_insert(Value::Bool(input.active));
    }
    Value::Object(body)
}

/// What a change's requests did.
enum Sent {
    /// A create made the resource with this `id`.
    Created(String),
    /// The change is made.
    Applied,
    /// Nothing was sent: its object is gone or was never made, or none of its members was.
    Nothing,
}

/// Whether `e`, the answer to `change`, is a name taken: a 409 to a change that sets a
/// name. A 409 to a member change or a deletion is a failure like any other.
fn name_taken(change: &Change, e: &ClientError) -> bool {
    e.status() == Some(409)
        && matches!(
            change.action,
            Action::Create
                | Action::Update
                | Action::Reactivate
                | Action::Deactivate
                | Action::ReleaseName
        )
}

/// `resource` without the attributes, sub-attributes and extensions the core schemas do
/// not define: a target's own (a vendor's extension, say) are none of the sync's, and read
/// as they are they would fail every run.
fn known_attributes(rt: &ResourceType, resource: &Value) -> Value {
    let Value::Object(fields) = resource else {
        return resource.clone();
    };
    let own = ["schemas", "id", "meta", "externalId", "members"];
    let mut known = serde_json::Map::new();
    for (key, value) in fields {
        if own.iter().any(|k| k.eq_ignore_ascii_case(key)) {
            known.insert(key.clone(), value.clone());
        } else if let Some(attribute) = rt.schema.attribute(key) {
            known.insert(key.clone(), known_parts(attribute, value));
        } else if let Some(ext) = rt
            .extensions
            .iter()
            .find(|e| e.schema.id.eq_ignore_ascii_case(key))
        {
            let kept = match value {
                Value::Object(inner) => Value::Object(
                    inner
                        .iter()
                        .filter_map(|(k, v)| {
                            let attribute = ext.schema.attribute(k)?;
                            Some((k.clone(), known_parts(attribute, v)))
                        })
                        .collect(),
                ),
                other => other.clone(),
            };
            known.insert(key.clone(), kept);
        }
    }
    Value::Object(known)
}

/// A complex attribute's `value` (each value, when multi-valued) without the
/// sub-attributes its schema does not define; other values as they are.
fn known_parts(attribute: &Attribute, value: &Value) -> Value {
    match value {
        Value::Object(parts) if !attribute.sub_attributes.is_empty() => Value::Object(
            parts
                .iter()
                .filter(|(k, _)| attribute.sub_attribute(k).is_some())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        Value::Array(values) => {
            Value::Array(values.iter().map(|v| known_parts(attribute, v)).collect())
        }
        other => other.clone(),
    }
}

/// The target's ids of the members a change names, skipping those never created.
fn member_ids<'a>(
    change: &'a Change,
    ids: &'a HashMap<(Kind, String), String>,
) -> impl Iterator<Item = (Kind, &'a String)> {
    change
        .members
        .iter()
        .filter_map(|m| ids.get(&(m.kind, m.anchor.clone())).map(|id| (m.kind, id)))
}

/// `work` over every item on up to `workers` threads; the results in the items' order.
fn concurrently<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            let sender = sender.clone();
            let (next, work) = (&next, &work);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if sender.send((i, work(item))).is_err() {
                        break;
                    }
                }
            });
        }
    });
    drop(sender);
    let mut results: Vec<(usize, R)> = receiver.into_iter().collect();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientOptions;

    /// A daemon's target is made without I/O; an endpoint that is down shows when the run
    /// reads it, as that run's failure.
    #[test]
    fn an_unchecked_target_reports_a_down_endpoint_when_read() {
        let options = ClientOptions {
            max_attempts: 1,
            ..ClientOptions::default()
        };
        let client = ScimClient::new("http://127.0.0.1:1/scim/v2/acme", "token", options)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let target = RemoteTarget::new(client);
        let config = SyncConfig::from_toml(
            "directory = \"corp\"\n[connection]\nurls = [\"ldap://127.0.0.1:1\"]\ntls = \"none\"\n\
             [users]\nbase = \"dc=example,dc=com\"\n",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        match target.current(&config) {
            Err(ApplyError::Remote(message)) => {
                assert!(message.contains("127.0.0.1:1"), "{message}");
            }
            other => panic!("expected the endpoint's failure, got {other:?}"),
        }
    }

    /// How many requests a partial report tells of: each one failed (the endpoint is down).
    fn sent(partial: std::sync::Mutex<Option<Report>>) -> Option<usize> {
        partial
            .into_inner()
            .ok()
            .flatten()
            .map(|r| r.failures.len())
    }

    /// A sync lock lost part-way stops a remote apply too, at its next check: checked
    /// before the first request, then every `LOCK_CHECK_EVERY`. (The endpoint is down, so
    /// a change that ran would fail, not stop the apply.)
    #[test]
    fn a_remote_apply_stops_when_its_sync_lock_is_lost() {
        let config = SyncConfig::from_toml(
            "directory = \"corp\"\n[connection]\nurls = [\"ldap://127.0.0.1:1\"]\n\
             [users]\nbase = \"ou=people,dc=x\"\n[groups]\nbase = \"ou=groups,dc=x\"\n",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let snapshot = crate::ldap::source::Snapshot {
            users: (0..250)
                .map(|i| {
                    let uid = format!("u{i}");
                    crate::ldap::source::Entry::new(
                        &format!("uid={uid},ou=people,dc=x"),
                        [
                            ("entryUUID", vec![uid.as_str()]),
                            ("uid", vec![uid.as_str()]),
                        ],
                    )
                })
                .collect(),
            ..Default::default()
        };
        let plan = crate::ldap::plan::plan(&config, &snapshot, &Current::default());
        let options = ClientOptions {
            max_attempts: 1,
            concurrency: 1,
            ..ClientOptions::default()
        };
        let client = ScimClient::new("http://127.0.0.1:1/scim/v2/acme", "token", options)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let target = RemoteTarget::new(client);
        for (held_for, done) in [(0, 0), (2, 200)] {
            let lock = crate::store::SyncLock::lost_after(held_for);
            let partial = std::sync::Mutex::new(None);
            let options = ApplyOptions::new(false)
                .with_lock(&lock)
                .with_partial(&partial);
            let err = target.apply(&config, &plan, &options).unwrap_err();
            assert_eq!(
                err,
                ApplyError::LockLost {
                    why: "the sync lock was lost: its session ended".into(),
                    done,
                    total: 250
                }
            );
            // What was sent before is in the report (each failed: the endpoint is down).
            assert_eq!(sent(partial), Some(done));
        }
        // A stop asked for, the same way, checked before every request.
        let asked = AtomicUsize::new(0);
        let cancel = || asked.fetch_add(1, Ordering::SeqCst) >= 30;
        let partial = std::sync::Mutex::new(None);
        let options = ApplyOptions::new(false)
            .with_cancel(&cancel)
            .with_partial(&partial);
        let err = target.apply(&config, &plan, &options).unwrap_err();
        assert_eq!(
            err,
            ApplyError::Cancelled {
                done: 30,
                total: 250
            }
        );
        assert_eq!(sent(partial), Some(30));
    }
}
