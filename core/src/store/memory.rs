//! An in-memory [`Store`], for tests and for embedding without persistence. One mutex around
//! the whole state makes every operation a transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use super::query::reference_page;
use super::view::view;
use super::{
    Change, Clock, Directory, Event, EventKind, Kind, Member, NewDirectory, NewResource, Page,
    PasswordChange, PasswordHash, Query, Resource, Store, StoreError, StoredToken, UserCounts,
    UserNameScope, apply_replacement, check_directory_name, check_member_change,
    check_password_change, check_update, check_version, contains_itself, name_attribute,
};
use crate::scim::datetime::DateTime;
use crate::scim::text::fold;

/// A [`Store`] held in memory. Cheap to create; everything is lost when it is dropped.
#[derive(Debug)]
pub struct MemoryStore {
    clock: ClockDebug,
    state: Mutex<State>,
    sync_locks: super::LocalSyncLocks,
}

/// A clock that prints as `Clock`, so stores can derive `Debug`.
pub(super) struct ClockDebug(pub(super) Clock);

impl std::fmt::Debug for ClockDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

#[derive(Debug, Default)]
struct State {
    directories: Vec<Directory>,
    /// By `id`, which is unique across directories and kinds.
    resources: BTreeMap<String, Resource>,
    /// (group id, member).
    memberships: BTreeSet<(String, Member)>,
    /// Users' password hashes, by user id.
    passwords: BTreeMap<String, PasswordHash>,
    events: Vec<Event>,
    tokens: Vec<StoredToken>,
    runs: Vec<super::SyncRun>,
    next_token: i64,
}

impl MemoryStore {
    /// An empty store stamping changes with `clock`.
    pub fn new(clock: Clock) -> Self {
        Self {
            clock: ClockDebug(clock),
            state: Mutex::new(State::default()),
            sync_locks: super::LocalSyncLocks::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change: every method
        // checks first and mutates last.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> DateTime {
        (self.clock.0)()
    }
}

impl State {
    fn directory(&self, id: i64) -> Result<&Directory, StoreError> {
        self.directories
            .iter()
            .find(|d| d.id == id)
            .ok_or_else(|| StoreError::NotFound {
                what: format!("directory {id}"),
            })
    }

    /// A group's members, in `id` order.
    fn members_of(&self, group: &str) -> Vec<Member> {
        self.memberships
            .iter()
            .filter(|(g, _)| g == group)
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// The groups `member` is a direct member of, in `id` order.
    fn groups_of(&self, member: &str) -> Vec<String> {
        let mut groups: Vec<String> = self
            .memberships
            .iter()
            .filter(|(_, m)| m.id == member)
            .map(|(g, _)| g.clone())
            .collect();
        groups.sort();
        groups
    }

    fn resource(&self, directory: i64, kind: Kind, id: &str) -> Option<&Resource> {
        self.resources
            .get(id)
            .filter(|r| r.directory == directory && r.kind == kind)
    }

    fn existing(&self, directory: i64, kind: Kind, id: &str) -> Result<&Resource, StoreError> {
        self.resource(directory, kind, id)
            .ok_or_else(|| StoreError::NotFound {
                what: format!("{} `{id}`", kind.as_str()),
            })
    }

    /// Whether `name` is free for a resource of `kind` in `directory`, ignoring `except`.
    fn check_name(
        &self,
        directory: i64,
        kind: Kind,
        name: &str,
        except: Option<&str>,
    ) -> Result<(), StoreError> {
        let scope = self.directory(directory)?.user_name_scope;
        let key = fold(name);
        let clash = self.resources.values().any(|r| {
            r.kind == kind
                && Some(r.id.as_str()) != except
                && fold(&r.name) == key
                && match (kind, scope) {
                    (Kind::User, UserNameScope::Platform) => self
                        .directory(r.directory)
                        .is_ok_and(|d| d.user_name_scope == UserNameScope::Platform),
                    _ => r.directory == directory,
                }
        });
        if clash {
            Err(StoreError::Uniqueness {
                attribute: name_attribute(kind),
                value: name.to_owned(),
            })
        } else {
            Ok(())
        }
    }

    /// Whether every member exists in `directory` with its kind and is not `group` itself.
    fn check_members(
        &self,
        directory: i64,
        group: &str,
        members: &[Member],
    ) -> Result<(), StoreError> {
        for m in members {
            if m.id == group {
                return Err(contains_itself(group));
            }
            self.existing(directory, m.kind, &m.id)?;
        }
        Ok(())
    }

    fn record(&mut self, r: &Resource, event: EventKind, time: DateTime) {
        let seq = self.events.len() as u64 + 1;
        self.events.push(Event {
            seq,
            directory: r.directory,
            kind: r.kind,
            id: r.id.clone(),
            event,
            version: r.version,
            time,
        });
    }

    /// Bumps the version of each group in `groups` and records the change.
    fn touch_groups(&mut self, groups: &BTreeSet<String>, now: DateTime) {
        for g in groups {
            if let Some(group) = self.resources.get_mut(g) {
                group.version += 1;
                group.modified = now;
                let snapshot = group.clone();
                self.record(&snapshot, EventKind::Updated, now);
            }
        }
    }
}

impl Store for MemoryStore {
    fn create_directory(&self, d: NewDirectory) -> Result<Directory, StoreError> {
        check_directory_name(&d.name)?;
        let mut s = self.lock();
        if s.directories.iter().any(|x| x.name == d.name) {
            return Err(StoreError::Uniqueness {
                attribute: "name",
                value: d.name,
            });
        }
        let directory = Directory {
            id: s.directories.iter().map(|x| x.id).max().unwrap_or(0) + 1,
            name: d.name,
            kind: d.kind,
            retention_days: d.retention_days,
            user_name_scope: d.user_name_scope,
            keep_password_hashes: d.keep_password_hashes,
            strict: d.strict,
        };
        s.directories.push(directory.clone());
        Ok(directory)
    }

    fn directories(&self) -> Result<Vec<Directory>, StoreError> {
        let mut all = self.lock().directories.clone();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    fn directory(&self, name: &str) -> Result<Option<Directory>, StoreError> {
        Ok(self
            .lock()
            .directories
            .iter()
            .find(|d| d.name == name)
            .cloned())
    }

    fn create(&self, n: NewResource) -> Result<Resource, StoreError> {
        super::check_resource_id(&n.id)?;
        let now = self.now();
        let mut s = self.lock();
        s.directory(n.directory)?;
        if s.resources.contains_key(&n.id) {
            return Err(StoreError::Uniqueness {
                attribute: "id",
                value: n.id,
            });
        }
        s.check_name(n.directory, n.kind, &n.name, None)?;
        s.check_members(n.directory, &n.id, &n.members)?;
        if n.password.is_some() {
            check_password_change(n.kind, s.directory(n.directory)?.keep_password_hashes)?;
        }
        let r = Resource {
            directory: n.directory,
            kind: n.kind,
            id: n.id,
            external_id: n.external_id,
            name: n.name,
            active: n.active || n.kind == Kind::Group,
            version: 1,
            created: now,
            modified: now,
            inactive_since: (!n.active && n.kind == Kind::User).then_some(now),
            attributes: n.attributes,
        };
        s.record(&r, EventKind::Created, now);
        s.resources.insert(r.id.clone(), r.clone());
        for m in n.members {
            s.memberships.insert((r.id.clone(), m));
        }
        if let Some(hash) = n.password {
            s.passwords.insert(r.id.clone(), hash);
        }
        Ok(r)
    }

    fn get(&self, directory: i64, kind: Kind, id: &str) -> Result<Option<Resource>, StoreError> {
        Ok(self.lock().resource(directory, kind, id).cloned())
    }

    fn get_by_name(
        &self,
        directory: i64,
        kind: Kind,
        name: &str,
    ) -> Result<Option<Resource>, StoreError> {
        let key = fold(name);
        Ok(self
            .lock()
            .resources
            .values()
            .find(|r| r.directory == directory && r.kind == kind && fold(&r.name) == key)
            .cloned())
    }

    fn update(
        &self,
        directory: i64,
        kind: Kind,
        id: &str,
        expected_version: Option<u64>,
        change: Change,
    ) -> Result<Resource, StoreError> {
        let now = self.now();
        let mut s = self.lock();
        let mut r = s.existing(directory, kind, id)?.clone();
        check_update(&r, expected_version, &change)?;
        let new_members = change.replacement.as_ref().and_then(|n| n.members.as_ref());
        check_member_change(kind, &change)?;
        // Check everything before changing anything.
        if let Some(n) = &change.replacement {
            s.check_name(directory, kind, &n.name, Some(id))?;
        }
        s.check_members(directory, id, new_members.map_or(&[][..], Vec::as_slice))?;
        s.check_members(directory, id, &change.add_members)?;
        if change.password.is_some() {
            check_password_change(kind, s.directory(directory)?.keep_password_hashes)?;
        }
        let mut changed = false;
        if let Some(n) = change.replacement {
            apply_replacement(&mut r, &n, now);
            if let Some(members) = n.members {
                s.memberships.retain(|(g, _)| g != id);
                for m in members {
                    s.memberships.insert((id.to_owned(), m));
                }
            }
            changed = true;
        }
        for m in change.add_members {
            changed |= s.memberships.insert((id.to_owned(), m));
        }
        for m in change.remove_members {
            changed |= s.memberships.remove(&(id.to_owned(), m));
        }
        changed |= match change.password {
            Some(PasswordChange::Set(hash)) => {
                s.passwords.insert(id.to_owned(), hash);
                true
            }
            Some(PasswordChange::Clear) => s.passwords.remove(id).is_some(),
            None => false,
        };
        if changed {
            r.version += 1;
            r.modified = now;
            s.record(&r, EventKind::Updated, now);
            s.resources.insert(r.id.clone(), r.clone());
        }
        Ok(r)
    }

    fn delete(
        &self,
        directory: i64,
        kind: Kind,
        id: &str,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut s = self.lock();
        let r = s.existing(directory, kind, id)?.clone();
        check_version(&r, expected_version)?;
        let containing: BTreeSet<String> = s
            .memberships
            .iter()
            .filter(|(_, m)| m.id == id)
            .map(|(g, _)| g.clone())
            .collect();
        s.memberships.retain(|(g, m)| g != id && m.id != id);
        s.resources.remove(id);
        s.passwords.remove(id);
        s.record(&r, EventKind::Deleted, now);
        s.touch_groups(&containing, now);
        Ok(())
    }

    fn list(&self, directory: i64, kind: Kind) -> Result<Vec<Resource>, StoreError> {
        Ok(self
            .lock()
            .resources
            .values()
            .filter(|r| r.directory == directory && r.kind == kind)
            .cloned()
            .collect())
    }

    fn members(&self, directory: i64, group: &str) -> Result<Vec<Member>, StoreError> {
        let s = self.lock();
        if s.resource(directory, Kind::Group, group).is_none() {
            return Ok(Vec::new());
        }
        Ok(s.members_of(group))
    }

    fn password_hash(&self, directory: i64, id: &str) -> Result<Option<PasswordHash>, StoreError> {
        let s = self.lock();
        Ok(s.resource(directory, Kind::User, id)
            .and_then(|_| s.passwords.get(id).cloned()))
    }

    fn groups_of(&self, directory: i64, member: &str) -> Result<Vec<String>, StoreError> {
        let s = self.lock();
        Ok(s.groups_of(member)
            .into_iter()
            .filter(|g| s.resource(directory, Kind::Group, g).is_some())
            .collect())
    }

    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let s = self.lock();
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(s.events.len());
        Ok(s.events[start..].iter().take(limit).cloned().collect())
    }

    fn purge_inactive(&self, directory: i64, now: DateTime) -> Result<u64, StoreError> {
        let s = self.lock();
        let retention = i64::from(s.directory(directory)?.retention_days) * 86_400;
        let expired: Vec<(String, u64)> = s
            .resources
            .values()
            .filter(|r| r.directory == directory && r.kind == Kind::User)
            .filter(|r| {
                r.inactive_since
                    .is_some_and(|t| now.unix_seconds() - t.unix_seconds() >= retention)
            })
            .map(|r| (r.id.clone(), r.version))
            .collect();
        drop(s);
        let mut purged = 0;
        for (id, version) in &expired {
            // A user changed or deleted since the scan is no longer due: skip it.
            match self.delete(directory, Kind::User, id, Some(*version)) {
                Ok(()) => purged += 1,
                Err(StoreError::VersionMismatch { .. } | StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(purged)
    }

    fn find_by_external_id(
        &self,
        directory: i64,
        kind: Kind,
        external_id: &str,
    ) -> Result<Vec<Resource>, StoreError> {
        Ok(self
            .lock()
            .resources
            .values()
            .filter(|r| {
                r.directory == directory
                    && r.kind == kind
                    && r.external_id.as_deref() == Some(external_id)
            })
            .cloned()
            .collect())
    }

    fn count(&self, directory: i64, kind: Kind) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .resources
            .values()
            .filter(|r| r.directory == directory && r.kind == kind)
            .count() as u64)
    }

    fn query(&self, q: &Query<'_>) -> Result<Page, StoreError> {
        let s = self.lock();
        let candidates = s
            .resources
            .values()
            .filter(|r| r.directory == q.directory && r.kind == q.kind)
            .map(|r| {
                let members: Vec<Member>;
                let groups: Vec<String>;
                let view = match r.kind {
                    Kind::Group => {
                        members = s.members_of(&r.id);
                        view(q.resource_type, r, Some(&members), None, q.base)
                    }
                    Kind::User => {
                        groups = s.groups_of(&r.id);
                        view(q.resource_type, r, None, Some(&groups), q.base)
                    }
                };
                (r.clone(), view)
            })
            .collect::<Vec<_>>();
        Ok(reference_page(q, candidates))
    }

    fn add_token(&self, directory: i64, hash: [u8; 32]) -> Result<StoredToken, StoreError> {
        let now = self.now();
        let mut s = self.lock();
        s.directory(directory)?;
        s.next_token += 1;
        let token = StoredToken {
            id: s.next_token,
            directory,
            hash,
            created: now,
        };
        s.tokens.push(token.clone());
        Ok(token)
    }

    fn tokens(&self, directory: i64) -> Result<Vec<StoredToken>, StoreError> {
        Ok(self
            .lock()
            .tokens
            .iter()
            .filter(|t| t.directory == directory)
            .cloned()
            .collect())
    }

    fn revoke_token(&self, directory: i64, id: i64) -> Result<(), StoreError> {
        let mut s = self.lock();
        let before = s.tokens.len();
        s.tokens
            .retain(|t| !(t.directory == directory && t.id == id));
        if s.tokens.len() == before {
            return Err(StoreError::NotFound {
                what: format!("token {id}"),
            });
        }
        Ok(())
    }

    fn add_run(&self, mut run: super::SyncRun) -> Result<super::SyncRun, StoreError> {
        let mut s = self.lock();
        s.directory(run.directory)?;
        run.id = s.runs.last().map_or(1, |r| r.id + 1);
        s.runs.push(run.clone());
        let mut newer = 0;
        for i in (0..s.runs.len()).rev() {
            if s.runs[i].directory == run.directory {
                newer += 1;
                if newer > super::KEPT_RUNS {
                    s.runs.remove(i);
                }
            }
        }
        Ok(run)
    }

    fn runs(&self, directory: i64, limit: usize) -> Result<Vec<super::SyncRun>, StoreError> {
        Ok(self
            .lock()
            .runs
            .iter()
            .rev()
            .filter(|r| r.directory == directory)
            .take(limit)
            .cloned()
            .collect())
    }

    fn user_counts(&self, directory: i64) -> Result<UserCounts, StoreError> {
        let s = self.lock();
        let mut counts = UserCounts::default();
        for r in s
            .resources
            .values()
            .filter(|r| r.directory == directory && r.kind == Kind::User)
        {
            if r.active {
                counts.active += 1;
            } else {
                counts.inactive += 1;
            }
        }
        Ok(counts)
    }

    fn try_lock_sync(&self, directory: &str) -> Result<Option<super::SyncLock>, StoreError> {
        self.sync_locks.try_lock(directory)
    }
}
