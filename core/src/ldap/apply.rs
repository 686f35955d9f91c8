//! Applying a plan to the store, in the plan's order: objects exist before they become
//! members, and removals come last. Idempotent: a plan computed again after an apply is
//! empty, and an apply cut short converges on the next run. Every write goes through the
//! store, so every change reaches the change feed.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use super::config::{Conflict, SyncConfig};
use super::plan::{Action, Current, MemberRef, Plan};
use crate::store::{
    Change as StoreChange, DirectoryKind, Kind, Member, NewDirectory, NewResource, Replacement,
    Store, StoreError,
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
}

/// The store's users, groups and memberships of `directory` (empty when it does not exist).
///
/// # Errors
/// [`StoreError`] when the store cannot be read.
pub fn current(store: &dyn Store, directory: &str) -> Result<Current, StoreError> {
    let Some(d) = store.directory(directory)? else {
        return Ok(Current::default());
    };
    let users = store.list(d.id, Kind::User)?;
    let groups = store.list(d.id, Kind::Group)?;
    let mut members = HashMap::new();
    for g in &groups {
        members.insert(g.id.clone(), store.members(d.id, &g.id)?);
    }
    Ok(Current {
        users,
        groups,
        members,
    })
}

/// Applies `plan` to `store`, creating the directory (kind `ldap`) on first use.
///
/// # Errors
/// [`ApplyError::Blocked`] without `allow_deletes` on a blocked plan (nothing is applied);
/// [`ApplyError::Conflict`] under policy `fail`; [`ApplyError::Store`] when the store fails.
pub fn apply(
    store: &dyn Store,
    config: &SyncConfig,
    plan: &Plan,
    allow_deletes: bool,
) -> Result<Report, ApplyError> {
    if !plan.blocked.is_empty() && !allow_deletes {
        return Err(ApplyError::Blocked(plan.blocked.clone()));
    }
    let started = Instant::now();
    let directory = match store.directory(&plan.directory)? {
        Some(d) => d,
        None => store.create_directory(NewDirectory::new(&plan.directory, DirectoryKind::Ldap))?,
    };
    let mut report = Report {
        directory: plan.directory.clone(),
        ..Report::default()
    };
    // Anchor → id, for everything that exists or gets created.
    let mut ids: HashMap<(Kind, String), String> = HashMap::new();
    for kind in [Kind::User, Kind::Group] {
        for r in store.list(directory.id, kind)? {
            if let Some(anchor) = r.external_id {
                ids.insert((kind, anchor), r.id);
            }
        }
    }
    let resolve = |ids: &HashMap<(Kind, String), String>, members: &[MemberRef]| -> Vec<Member> {
        members
            .iter()
            .filter_map(|m| {
                ids.get(&(m.kind, m.anchor.clone())).map(|id| Member {
                    id: id.clone(),
                    kind: m.kind,
                })
            })
            .collect()
    };
    for change in &plan.changes {
        let key = (change.kind, change.anchor.clone());
        let outcome: Result<(), StoreError> = match change.action {
            Action::Create => {
                let Some(input) = &change.input else { continue };
                let id = uuid::Uuid::new_v4().to_string();
                store
                    .create(NewResource {
                        directory: directory.id,
                        kind: change.kind,
                        id: id.clone(),
                        external_id: Some(change.anchor.clone()),
                        name: input.name.clone(),
                        active: input.active,
                        attributes: serde_json::Value::Object(input.attributes.clone()),
                        members: Vec::new(),
                    })
                    .map(|_| {
                        ids.insert(key.clone(), id);
                    })
            }
            Action::Update | Action::Reactivate | Action::Deactivate if change.input.is_some() => {
                let (Some(input), Some(id)) = (&change.input, ids.get(&key)) else {
                    continue;
                };
                store
                    .replace(
                        directory.id,
                        change.kind,
                        id,
                        None,
                        Replacement {
                            external_id: Some(change.anchor.clone()),
                            name: input.name.clone(),
                            active: input.active,
                            attributes: serde_json::Value::Object(input.attributes.clone()),
                            members: None,
                        },
                    )
                    .map(|_| ())
            }
            Action::Deactivate => {
                let Some(id) = ids.get(&key) else { continue };
                match store.get(directory.id, change.kind, id)? {
                    Some(r) if r.active => store
                        .replace(
                            directory.id,
                            change.kind,
                            id,
                            Some(r.version),
                            Replacement {
                                external_id: r.external_id.clone(),
                                name: r.name.clone(),
                                active: false,
                                attributes: r.attributes.clone(),
                                members: None,
                            },
                        )
                        .map(|_| ()),
                    _ => Ok(()),
                }
            }
            Action::AddMembers | Action::RemoveMembers => {
                let Some(id) = ids.get(&key).cloned() else {
                    continue;
                };
                let members = resolve(&ids, &change.members);
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
                store
                    .update(directory.id, Kind::Group, &id, None, edit)
                    .map(|_| ())
            }
            Action::Delete => {
                let Some(id) = ids.get(&key) else { continue };
                match store.delete(directory.id, change.kind, id, None) {
                    Err(StoreError::NotFound { .. }) => Ok(()),
                    other => other,
                }
            }
            // Updates without a new state do not exist; nothing to do.
            Action::Update | Action::Reactivate => continue,
        };
        match outcome {
            Ok(()) => *report.applied.entry(change.action).or_insert(0) += 1,
            Err(StoreError::Uniqueness { attribute, value }) => {
                let message = format!(
                    "{} `{}`: {attribute} `{value}` is already taken (another directory or object owns it)",
                    change.kind.as_str(),
                    change.name
                );
                match config.policy.user_name_conflict {
                    Conflict::Skip => report.conflicts.push(message),
                    Conflict::Fail => return Err(ApplyError::Conflict(message)),
                }
            }
            Err(
                e @ (StoreError::NotFound { .. }
                | StoreError::Invalid(_)
                | StoreError::VersionMismatch { .. }),
            ) => {
                report.failures.push(format!(
                    "{} {} `{}`: {e}",
                    change.action_name(),
                    change.kind.as_str(),
                    change.name
                ));
            }
            Err(e) => return Err(ApplyError::Store(e)),
        }
    }
    report.milliseconds = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

impl super::plan::Change {
    fn action_name(&self) -> String {
        serde_json::to_value(self.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}
