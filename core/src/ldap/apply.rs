//! Applying a plan to the store, in the plan's order: objects exist before they become
//! members, and removals come last. Idempotent: a plan computed again after an apply is
//! empty, and an apply cut short converges on the next run. Every write goes through the
//! store, so every change reaches the change feed.

use std::collections::BTreeMap;
use std::time::Instant;

use foldhash::HashMap;

use super::config::{Conflict, SyncConfig};
use super::plan::{Action, Change, Current, Plan};
use crate::store::{
    Change as StoreChange, DirectoryKind, Kind, Member, NewDirectory, NewResource, Replacement,
    Resource, Store, StoreError, SyncLock, Write,
};

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Report {
    /// The usersync directory.
    pub directory: String,
    /// Changes applied, by action.
    pub applied: BTreeMap<Action, usize>,
    /// Changes skipped: `userName`s another directory owns (policy `skip`).
    pub conflicts: Vec<String>,
    /// Changes that failed, with the reason; the next run tries them again.
    pub failures: Vec<String>,
    /// Requests to a remote target sent again after a busy answer or a dropped connection.
    pub retries: u64,
    /// Wall time of the apply, in milliseconds.
    pub milliseconds: u64,
}

/// Why an apply did not run or stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The plan crosses a deletion threshold and the override was not given.
    #[error("the plan is blocked: {}; apply it with --allow-deletes if this is intended", .0.join("; "))]
    Blocked(Vec<String>),
    /// A `userName` another directory owns, with policy `fail`.
    #[error("{0} (policy.user_name_conflict = \"fail\")")]
    Conflict(String),
    /// The store failed; what was applied before stays, the next run converges.
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    /// The remote SCIM target could not be read.
    #[error("the SCIM target failed: {0}")]
    Remote(String),
    /// The directory's sync lock was lost part-way (its database session ended), so another
    /// sync may be running: the apply stopped before its next batch. What was applied
    /// stays; the next run converges.
    #[error(
        "{why}; stopped after {done} of {total} changes so that two syncs do not write at once"
    )]
    LockLost {
        /// Why the lock is lost.
        why: String,
        /// Changes applied (or failed) before the apply stopped.
        done: usize,
        /// Changes in the plan.
        total: usize,
    },
    /// The caller asked the apply to stop ([`ApplyOptions::with_cancel`]): a daemon told
    /// to stop, Ctrl-C in Python. What was applied stays; the next run converges.
    #[error("the apply was stopped after {done} of {total} changes; the next run goes on")]
    Cancelled {
        /// Changes applied (or failed) before the apply stopped.
        done: usize,
        /// Changes in the plan.
        total: usize,
    },
}

impl From<crate::client::ClientError> for ApplyError {
    fn from(e: crate::client::ClientError) -> Self {
        Self::Remote(e.to_string())
    }
}

/// How far an apply has come: `done` of `total` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Changes applied or failed so far.
    pub done: usize,
    /// Changes in the plan.
    pub total: usize,
}

/// How to apply a plan.
#[derive(Default, Clone)]
#[non_exhaustive]
pub struct ApplyOptions<'a> {
    /// Apply a plan that crosses a deletion threshold.
    pub allow_deletes: bool,
    /// Told as changes are applied (from several threads, for a remote target).
    pub progress: Option<&'a (dyn Fn(Progress) + Sync)>,
    /// The directory's sync lock, checked before each batch of writes.
    pub lock: Option<&'a SyncLock>,
    /// Asked before each batch of writes (each request, remotely): `true` stops the apply.
    pub cancel: Option<&'a (dyn Fn() -> bool + Sync)>,
    /// Where an apply that stops part-way leaves the report of what it did until then.
    pub partial: Option<&'a std::sync::Mutex<Option<Report>>>,
}

impl std::fmt::Debug for ApplyOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("allow_deletes", &self.allow_deletes)
            .field("progress", &self.progress.is_some())
            .field("lock", &self.lock.is_some())
            .field("cancel", &self.cancel.is_some())
            .field("partial", &self.partial.is_some())
            .finish()
    }
}

impl<'a> ApplyOptions<'a> {
    /// Options with the delete override as given.
    pub fn new(allow_deletes: bool) -> Self {
        Self {
            allow_deletes,
            progress: None,
            lock: None,
            cancel: None,
            partial: None,
        }
    }

    /// Keeping in `partial` the report of an apply that stops part-way (a lost lock, a
    /// store failing, a stop asked for): what it applied until then, for the run's record.
    #[must_use]
    pub fn with_partial(mut self, partial: &'a std::sync::Mutex<Option<Report>>) -> Self {
        self.partial = Some(partial);
        self
    }

    /// The end of an apply that started at `started` and told `report`: the report, or
    /// the error that stopped it, its report so far kept in [`Self::partial`].
    pub(crate) fn finish(
        &self,
        started: Instant,
        mut report: Report,
        applied: Result<(), ApplyError>,
    ) -> Result<Report, ApplyError> {
        report.milliseconds = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match applied {
            Ok(()) => Ok(report),
            Err(e) => {
                if let Some(partial) = self.partial
                    && let Ok(mut kept) = partial.lock()
                {
                    *kept = Some(report);
                }
                Err(e)
            }
        }
    }

    /// Checking `lock` (held by the caller) before each batch: a lock lost part-way stops
    /// the apply with [`ApplyError::LockLost`].
    #[must_use]
    pub fn with_lock(mut self, lock: &'a SyncLock) -> Self {
        self.lock = Some(lock);
        self
    }

    /// Asking `cancel` before each batch: when it answers `true`, the apply stops with
    /// [`ApplyError::Cancelled`] before its next write.
    #[must_use]
    pub fn with_cancel(mut self, cancel: &'a (dyn Fn() -> bool + Sync)) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// [`ApplyError::Cancelled`] when the caller asks to stop.
    pub(crate) fn check_cancel(&self, done: usize, total: usize) -> Result<(), ApplyError> {
        match self.cancel {
            Some(cancel) if cancel() => Err(ApplyError::Cancelled { done, total }),
            _ => Ok(()),
        }
    }

    /// [`ApplyError::LockLost`] when the lock is given and lost, after `done` of `total`
    /// changes.
    pub(crate) fn check_lock(&self, done: usize, total: usize) -> Result<(), ApplyError> {
        let why = match self.lock.map(SyncLock::check) {
            Some(Err(StoreError::Backend(why))) => why,
            Some(Err(other)) => other.to_string(),
            _ => return Ok(()),
        };
        Err(ApplyError::LockLost { why, done, total })
    }

    /// With a progress callback.
    #[must_use]
    pub fn with_progress(mut self, progress: &'a (dyn Fn(Progress) + Sync)) -> Self {
        self.progress = Some(progress);
        self
    }
}

/// Where a sync writes: the local store, or a remote SCIM endpoint
/// ([`super::remote::RemoteTarget`]). Both are read the same way and take the same plan;
/// a target is read while the source is (hence `Sync`).
pub trait Target: Sync {
    /// What the target holds for `config`'s directory, to plan against.
    ///
    /// # Errors
    /// [`ApplyError`] when it cannot be read.
    fn current(&self, config: &SyncConfig) -> Result<Current, ApplyError>;

    /// Applies `plan`, computed against [`Target::current`].
    ///
    /// # Errors
    /// [`ApplyError`]: blocked, a conflict under policy `fail`, or the target failed.
    fn apply(
        &self,
        config: &SyncConfig,
        plan: &Plan,
        options: &ApplyOptions<'_>,
    ) -> Result<Report, ApplyError>;

    /// Whether [`Target::current`] gives every group's member list whole, so that an
    /// incremental read may keep the members of groups that did not change.
    fn holds_member_lists(&self) -> bool {
        true
    }
}

/// The local store as a [`Target`].
#[derive(Debug)]
pub struct LocalTarget<'a>(pub &'a dyn Store);

impl Target for LocalTarget<'_> {
    fn current(&self, config: &SyncConfig) -> Result<Current, ApplyError> {
        Ok(current(self.0, &config.directory)?)
    }

    fn apply(
        &self,
        config: &SyncConfig,
        plan: &Plan,
        options: &ApplyOptions<'_>,
    ) -> Result<Report, ApplyError> {
        apply_with(self.0, config, plan, options)
    }
}

/// The store's users, groups and memberships of `directory` (empty when it does not exist).
///
/// # Errors
/// [`StoreError::Invalid`] when `directory` is not of kind `ldap`; [`StoreError::Backend`]
/// when the store cannot be read.
pub fn current(store: &dyn Store, directory: &str) -> Result<Current, StoreError> {
    let Some(d) = store.directory(directory)? else {
        return Ok(Current::default());
    };
    ldap_directory(&d)?;
    let users = store.list_held(d.id, Kind::User)?;
    let groups = store.list(d.id, Kind::Group)?;
    let mut members = store.all_members(d.id)?;
    for g in &groups {
        members.entry(g.id.clone()).or_default();
    }
    Ok(Current {
        users,
        groups,
        members,
    })
}

/// Refuses a directory an LDAP sync does not own: its users would all look "removed from
/// the source", and the source's users would land among them.
fn ldap_directory(d: &crate::store::Directory) -> Result<(), StoreError> {
    if d.kind == DirectoryKind::Ldap {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "directory `{}` is a {} directory: an LDAP sync only writes to directories of kind ldap; name another in `directory`",
            d.name,
            d.kind.as_str()
        )))
    }
}

/// Writes per store transaction: large enough that commits do not dominate, small enough
/// that an interrupted apply loses little and readers are not held up.
const BATCH: usize = 1000;

/// The order changes apply in, whatever the target: names handed over are free first,
/// objects exist before they become members, members join before others leave, and
/// removals come last.
pub(crate) const PHASES: [&[Action]; 5] = [
    &[Action::ReleaseName],
    &[Action::Create, Action::Update, Action::Reactivate],
    &[Action::AddMembers],
    &[Action::RemoveMembers],
    &[Action::Deactivate, Action::Delete],
];

/// Applies `plan` (computed against `store`'s current state, as [`current`] reads it) to
/// `store`, creating the directory (kind `ldap`) on first use. Changes go
/// in batches of up to 1,000 writes per transaction, phase by phase (objects, then members
/// joining, members leaving, removals), so that members always exist before they join.
///
/// # Errors
/// [`ApplyError::Blocked`] without `allow_deletes` on a blocked plan (nothing is applied);
/// [`ApplyError::Conflict`] under policy `fail`; [`ApplyError::Store`] when the store fails.
/// What was committed before an error stays; the next run converges.
pub fn apply(
    store: &dyn Store,
    config: &SyncConfig,
    plan: &Plan,
    allow_deletes: bool,
) -> Result<Report, ApplyError> {
    apply_with(store, config, plan, &ApplyOptions::new(allow_deletes))
}

/// [`apply`], with a progress callback told after each batch.
///
/// # Errors
/// As [`apply`].
pub fn apply_with(
    store: &dyn Store,
    config: &SyncConfig,
    plan: &Plan,
    options: &ApplyOptions<'_>,
) -> Result<Report, ApplyError> {
    let started = Instant::now();
    let mut report = begin(plan, options)?;
    let applied = apply_into(store, config, plan, options, &mut report);
    options.finish(started, report, applied)
}

/// The batches of [`apply_with`], told into `report`.
fn apply_into(
    store: &dyn Store,
    config: &SyncConfig,
    plan: &Plan,
    options: &ApplyOptions<'_>,
    report: &mut Report,
) -> Result<(), ApplyError> {
    if plan.changes.is_empty() {
        return Ok(());
    }
    options.check_lock(0, plan.changes.len())?;
    let directory = match store.directory(&plan.directory)? {
        Some(d) => {
            ldap_directory(&d)?;
            d
        }
        None => store.create_directory(NewDirectory::new(&plan.directory, DirectoryKind::Ldap))?,
    };
    let d = directory.id;
    // Anchor → id: what existed when the plan was made, and what this apply creates.
    let mut ids = plan.ids.clone();
    let mut done = 0;
    for actions in PHASES {
        let changes: Vec<&Change> = plan
            .changes
            .iter()
            .filter(|c| actions.contains(&c.action))
            .collect();
        for chunk in changes.chunks(BATCH) {
            options.check_cancel(done, plan.changes.len())?;
            options.check_lock(done, plan.changes.len())?;
            let mut writes = Vec::with_capacity(chunk.len());
            let mut applied_to = Vec::with_capacity(chunk.len());
            for change in chunk {
                if let Some(w) = write_for(store, d, change, &ids)? {
                    writes.push(w);
                    applied_to.push(*change);
                }
            }
            let outcomes = store.batch(writes)?;
            for (change, outcome) in applied_to.into_iter().zip(outcomes) {
                match outcome {
                    Ok(resource) => {
                        if change.action == Action::Create
                            && let Some(r) = resource
                        {
                            ids.insert((change.kind, change.anchor.clone()), r.id);
                        }
                        *report.applied.entry(change.action).or_insert(0) += 1;
                    }
                    Err(StoreError::Uniqueness { attribute, value }) => {
                        let mut message = format!(
                            "{} `{}`: {attribute} `{value}` is already taken (another directory or object owns it)",
                            change.kind.as_str(),
                            change.name
                        );
                        if config.policy.user_name_conflict == Conflict::Fail {
                            return Err(ApplyError::Conflict(message));
                        }
                        if let Some(kept) = change.keeping_name()
                            && let Some(w) = write_for(store, d, &kept, &ids)?
                        {
                            match store.batch(vec![w])?.pop() {
                                Some(Ok(_)) => {
                                    message = kept.applied_without_rename(&message);
                                    *report.applied.entry(change.action).or_insert(0) += 1;
                                }
                                Some(Err(e)) => report.failures.push(kept.rest_failed(&e)),
                                None => {}
                            }
                        }
                        report.conflicts.push(message);
                    }
                    Err(e) => report.failures.push(format!(
                        "{} {} `{}`: {e}",
                        change.action_name(),
                        change.kind.as_str(),
                        change.name
                    )),
                }
            }
            done += chunk.len();
            if let Some(progress) = options.progress {
                progress(Progress {
                    done,
                    total: plan.changes.len(),
                });
            }
        }
    }
    Ok(())
}

/// The empty report of an apply that may go ahead: refused for a blocked plan without the
/// override, whatever the target.
pub(crate) fn begin(plan: &Plan, options: &ApplyOptions<'_>) -> Result<Report, ApplyError> {
    if !plan.blocked.is_empty() && !options.allow_deletes {
        return Err(ApplyError::Blocked(plan.blocked.clone()));
    }
    Ok(Report {
        directory: plan.directory.clone(),
        ..Report::default()
    })
}

/// The store write a change makes; `None` when there is nothing to write (its object is
/// gone, or a member it names was never created).
fn write_for(
    store: &dyn Store,
    d: i64,
    change: &Change,
    ids: &HashMap<(Kind, String), String>,
) -> Result<Option<Write>, StoreError> {
    let id = ids.get(&(change.kind, change.anchor.clone()));
    let replacement = |input: &crate::scim::service::resource::Input| Replacement {
        external_id: Some(change.anchor.clone()),
        name: input.name.clone(),
        active: input.active,
        attributes: serde_json::Value::Object(input.attributes.clone()),
        members: None,
    };
    Ok(match (change.action, &change.input, id) {
        (Action::Create, Some(input), _) => Some(Write::Create(NewResource {
            directory: d,
            kind: change.kind,
            // Time-ordered, as the service's ids (see `new_ids`).
            id: uuid::Uuid::now_v7().to_string(),
            external_id: Some(change.anchor.clone()),
            name: input.name.clone(),
            active: input.active,
            attributes: serde_json::Value::Object(input.attributes.clone()),
            members: Vec::new(),
            password: None,
        })),
        (Action::Update | Action::Reactivate | Action::Deactivate, Some(input), Some(id)) => {
            Some(Write::Update {
                directory: d,
                kind: change.kind,
                id: id.clone(),
                expected_version: None,
                change: StoreChange {
                    replacement: Some(replacement(input)),
                    ..StoreChange::default()
                },
            })
        }
        (Action::AddMembers | Action::RemoveMembers, _, Some(id)) => {
            let members: Vec<Member> = change
                .members
                .iter()
                .filter_map(|m| {
                    ids.get(&(m.kind, m.anchor.clone())).map(|id| Member {
                        id: id.clone(),
                        kind: m.kind,
                    })
                })
                .collect();
            if members.is_empty() {
                return Ok(None);
            }
            let edit = if change.action == Action::AddMembers {
                StoreChange {
                    add_members: members,
                    ..StoreChange::default()
                }
            } else {
                StoreChange {
                    remove_members: members,
                    ..StoreChange::default()
                }
            };
            Some(Write::Update {
                directory: d,
                kind: Kind::Group,
                id: id.clone(),
                expected_version: None,
                change: edit,
            })
        }
        // A name handed over: the user as held, renamed.
        (Action::ReleaseName, _, Some(id)) => held_rewritten(store, d, change.kind, id, |r| {
            r.name.clone_from(&change.name);
            if let Some(a) = r.attributes.as_object_mut() {
                a.insert("userName".into(), change.name.clone().into());
            }
            true
        })?,
        // A removal: deactivate what is still active.
        (Action::Deactivate, None, Some(id)) => held_rewritten(store, d, change.kind, id, |r| {
            std::mem::replace(&mut r.active, false)
        })?,
        (Action::Delete, _, Some(id)) => Some(Write::Delete {
            directory: d,
            kind: change.kind,
            id: id.clone(),
            expected_version: None,
        }),
        _ => None,
    })
}

/// The write of the held object `id` as `edit` leaves it, at the version read here, so that
/// a change made meanwhile is not overwritten; `None` when the object is gone or `edit`
/// finds nothing to change.
fn held_rewritten(
    store: &dyn Store,
    d: i64,
    kind: Kind,
    id: &str,
    edit: impl FnOnce(&mut Resource) -> bool,
) -> Result<Option<Write>, StoreError> {
    let Some(mut r) = store.get(d, kind, id)? else {
        return Ok(None);
    };
    if !edit(&mut r) {
        return Ok(None);
    }
    Ok(Some(Write::Update {
        directory: d,
        kind,
        id: id.to_owned(),
        expected_version: Some(r.version),
        change: StoreChange {
            replacement: Some(Replacement {
                external_id: r.external_id,
                name: r.name,
                active: r.active,
                attributes: r.attributes,
                members: None,
            }),
            ..StoreChange::default()
        },
    }))
}

impl Change {
    pub(crate) fn action_name(&self) -> String {
        serde_json::to_value(self.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// This change to a held user without its rename, when the rename is not all it does:
    /// what is applied when the new `userName` is taken. A user disabled in the source
    /// must not stay active because the name it was renamed to belongs to someone else.
    pub(crate) fn keeping_name(&self) -> Option<Self> {
        if self.kind != Kind::User || self.action == Action::Create {
            return None;
        }
        let held = self
            .changed
            .iter()
            .find(|c| c.attribute == "userName")?
            .old
            .as_str()?
            .to_owned();
        let mut kept = self.clone();
        kept.changed.retain(|c| c.attribute != "userName");
        if kept.changed.is_empty() {
            // Nothing but the name changes (`changed` holds `active` too when it moves).
            return None;
        }
        let input = kept.input.as_mut()?;
        input
            .attributes
            .insert("userName".into(), held.clone().into());
        input.name.clone_from(&held);
        kept.name = held;
        Some(kept)
    }

    /// The failure of this [`Change::keeping_name`], the rest of a change refused for its
    /// name: a failure, not only the conflict, so that the run is not taken as clean (its
    /// watermark would hide the change from the next incremental run).
    pub(crate) fn rest_failed(&self, error: &dyn std::fmt::Display) -> String {
        format!(
            "{} {} `{}` (the rest of a change refused for its new name): {error}",
            self.action_name(),
            self.kind.as_str(),
            self.name
        )
    }

    /// The conflict `message` of a change whose rest, this [`Change::keeping_name`], was
    /// applied after all.
    pub(crate) fn applied_without_rename(&self, message: &str) -> String {
        format!(
            "{message}; the rest of the change is applied under the userName `{}`",
            self.name
        )
    }
}
