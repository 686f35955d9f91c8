//! Reading the users and groups a configuration selects from an LDAP server: failover across
//! URLs, StartTLS or ldaps verified against the configured CA, paged searches (RFC 2696)
//! consumed as they stream in.
//!
//! A read that does not finish cleanly — a refused page size, a size or time limit, a dropped
//! connection, a timeout, any non-success result — still returns what it read, marked
//! incomplete with the reason: the plan then removes nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use super::config::{
    ConfigError, Connection, Membership, Scope, ScopeVia, ServerKind, SyncConfig, Tls,
};
use super::connection::{ConnectionError, LdapConnection, Security, parenthesised};
use super::filter::LdapFilter;
use super::protocol::{Control, Outcome, SearchScope};

pub use super::protocol::Entry;

/// What a read found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The entries the user search returned (in an incremental read: those changed since
    /// the watermark, and those the target does not hold as active users).
    pub users: Vec<Entry>,
    /// In an incremental read, every other user in scope, with only its anchor, name (and
    /// `memberOf`): present and unchanged, so the target's state of it stands.
    pub unchanged_users: Vec<Entry>,
    /// The watermark an incremental read started from (`None` for a full read).
    pub changed_since: Option<String>,
    /// The entries the group search returned (in an incremental AD read: the groups whose
    /// members changed since the watermark, those above them when nested groups are
    /// flattened, and those the target does not hold).
    pub groups: Vec<Entry>,
    /// In an incremental AD read, every other group in scope with its anchor, name,
    /// `memberOf` (and `objectSid`), not its members: they are as the target holds them,
    /// less the users and groups read in full, whose own `memberOf` says where they belong.
    pub unchanged_groups: Vec<Entry>,
    /// Why the snapshot is incomplete; it is complete when this is empty.
    pub problems: Vec<String>,
    /// Groups whose member list could not be read whole (DN, why): the snapshot is complete
    /// otherwise, but no member leaves these groups.
    pub partial_groups: Vec<(String, String)>,
    /// AD: the domain controller that answered and its highest committed USN when the read
    /// began: the watermark the next incremental read starts from.
    pub usn: Option<UsnMark>,
    /// AD, in an incremental read: users deleted since the watermark (their tombstones),
    /// by anchor, with the OU they were last in.
    pub deleted_users: Vec<(String, String)>,
    /// Why an incremental read asked for was made full instead (AD: another domain
    /// controller answered, or its database was restored).
    pub full_because: Option<String>,
    /// Things an operator must know (verification turned off, a server skipped).
    pub warnings: Vec<String>,
    /// The server that answered.
    pub server: String,
}

impl Snapshot {
    /// Whether everything the configuration selects was read.
    pub fn is_complete(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Why nothing could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The configuration cannot be used (a secret or CA file is missing).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No server answered.
    #[error("no LDAP server answered: {0}")]
    Connect(String),
    /// The server refused the bind.
    #[error("the LDAP server refused the bind as `{dn}`: {message}")]
    Bind {
        /// The DN bound as.
        dn: String,
        /// The server's answer.
        message: String,
    },
}

/// Reads the users and groups `config` selects.
///
/// # Errors
/// [`SourceError`] when no server can be reached or the bind fails; problems after that
/// make the snapshot incomplete instead.
pub fn read(config: &SyncConfig) -> Result<Snapshot, SourceError> {
    read_with(config, None, &mut |_| {})
}

/// Work done while the server prepares the next page of a full read: told the users read
/// so far (the snapshot's users, in order), while their search goes on and then while
/// the groups are read.
pub(crate) type WhileWaiting<'w> = &'w mut dyn FnMut(&[Entry]);

/// [`read`], calling `while_waiting` each time a page has been asked for.
pub(crate) fn read_while(
    config: &SyncConfig,
    while_waiting: WhileWaiting<'_>,
) -> Result<Snapshot, SourceError> {
    read_with(config, None, while_waiting)
}

/// Where an Active Directory domain controller's changes stood: which controller (its NTDS
/// Settings DN), which copy of its database (`invocationId`, new after a restore), and its
/// highest committed update sequence number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UsnMark {
    /// The `dsServiceName` of the controller.
    pub server: String,
    /// Its `invocationId`, as GUID text.
    pub invocation_id: String,
    /// Its `highestCommittedUSN` when the read began.
    pub highest: u64,
}

/// What an incremental read needs to know.
#[derive(Clone, Copy)]
pub struct Changes<'a> {
    /// Entries whose change attribute is at or after this LDAP GeneralizedTime
    /// (`20261128164200Z`) are read in full.
    pub since: &'a str,
    /// AD: where the last clean read stood; entries whose `uSNChanged` is above it are read
    /// in full (instead of `since`), if the same controller and database answer.
    pub usn: Option<&'a UsnMark>,
    /// Whether the target holds groups' member lists whole ([`Known::groups`]).
    pub holds_member_lists: bool,
    /// What the target holds; called once, when the read first needs it (after its first
    /// searches), so that the target can be read meanwhile. `None` when the target could
    /// not be read: the read then stops, incomplete.
    pub known: &'a dyn Fn() -> Option<Known>,
}

impl std::fmt::Debug for Changes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("since", &self.since)
            .field("usn", &self.usn)
            .field("holds_member_lists", &self.holds_member_lists)
            .finish_non_exhaustive()
    }
}

/// What the target holds, as an incremental read needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    /// The anchors of the users the target holds as active: any other user in scope is
    /// read in full too (new to the target, back in scope, or re-enabled).
    pub active: HashSet<String>,
    /// The anchors of the groups the target holds, when it holds their member lists
    /// whole: AD reads any other group in full, and every group when `None`.
    pub groups: Option<HashSet<String>>,
}

/// An incremental read: users changed since `changes.since`, and users the target does not
/// hold as active, in full; every other user in scope by anchor and name only (so that
/// removals are still seen). Groups are read in full (a membership change shows on the
/// group, and a nested group's change on every group above it), except on Active Directory,
/// where a membership change moves the group's `uSNChanged`: there only the groups that
/// changed (and those above them, when flattened) are read with their members.
///
/// # Errors
/// As [`read`].
pub fn read_changes(config: &SyncConfig, changes: Changes<'_>) -> Result<Snapshot, SourceError> {
    read_with(config, Some(changes), &mut |_| {})
}

/// Above this many users to fetch one by one, an incremental read reads all users instead.
const FETCH_ONE_BY_ONE: usize = 1000;

fn read_with(
    config: &SyncConfig,
    changes: Option<Changes<'_>>,
    while_waiting: WhileWaiting<'_>,
) -> Result<Snapshot, SourceError> {
    let mut snapshot = Snapshot::default();
    let c = &config.connection;
    let (mut ldap, server) = connect(c, &mut snapshot.warnings)?;
    snapshot.server = server;
    let users = &config.users;
    let member_of = config
        .groups
        .as_ref()
        .is_some_and(|g| g.membership == Membership::MemberOf);
    let primary_group = config.groups.as_ref().is_some_and(|g| g.primary_group);
    let mut light_attributes = vec![users.anchor.clone(), users.user_name.clone()];
    if member_of {
        light_attributes.push("memberOf".into());
    }
    if primary_group {
        light_attributes.push("primaryGroupID".into());
    }
    let mut user_attributes = light_attributes.clone();
    // AD: groups are read by USN only when members are listed on the group (the users'
    // `memberOf` then says which unchanged groups a user read in full belongs to).
    let groups_by_usn = config.kind == ServerKind::ActiveDirectory
        && config.incremental.is_some()
        && changes.is_some_and(|c| c.holds_member_lists)
        && config
            .groups
            .as_ref()
            .is_some_and(|g| matches!(g.membership, Membership::Member | Membership::UniqueMember));
    if groups_by_usn {
        user_attributes.push("memberOf".into());
    }
    for (_, source) in &users.attributes {
        user_attributes.extend(source_attributes(source));
    }
    if let Some(active) = &users.active {
        user_attributes.extend(source_attributes(active));
    }
    dedup(&mut user_attributes);
    dedup(&mut light_attributes);
    let filter = user_filter(config);
    let mut notes = Notes {
        active_directory: config.kind == ServerKind::ActiveDirectory,
        ..Notes::default()
    };
    // AD: where the controller stands before anything is read, so that what changes during
    // the read is read again next time.
    let ad_incremental = config.kind == ServerKind::ActiveDirectory && config.incremental.is_some();
    if ad_incremental {
        // Without it the read is full (complete on its own) and saves no USN watermark:
        // a warning, not a gap that would keep every run from removing leavers.
        match usn_mark(&mut ldap) {
            Ok(mark) => snapshot.usn = Some(mark),
            Err(why) => notes.warnings.push(why),
        }
    }
    // The entries changed since the last clean read: by USN on the same AD controller and
    // database, by the change attribute elsewhere; `None` makes the read full.
    let changed_since = match (changes, &snapshot.usn) {
        (Some(changes), _) if !ad_incremental => config.incremental.as_ref().map(|i| {
            format!(
                "({}>={})",
                i.attribute,
                super::filter::escape_value(changes.since.as_bytes())
            )
        }),
        (
            Some(Changes {
                usn: Some(last), ..
            }),
            Some(now),
        ) => {
            if last.server != now.server {
                snapshot.full_because = Some(format!(
                    "another domain controller answered ({}, the last clean run read {})",
                    now.server, last.server
                ));
                None
            } else if last.invocation_id != now.invocation_id {
                snapshot.full_because = Some(format!(
                    "the domain controller's invocationId changed ({} to {}): its database was restored",
                    last.invocation_id, now.invocation_id
                ));
                None
            } else {
                Some(format!("(uSNChanged>={})", last.highest.saturating_add(1)))
            }
        }
        (Some(_), None) => {
            snapshot.full_because =
                Some("where the domain controller stands (its USN) could not be read".into());
            None
        }
        (Some(_), Some(_)) => {
            snapshot.full_because = Some("no USN watermark of this domain controller".into());
            None
        }
        (None, _) => None,
    };
    let read_users = |ldap: &mut LdapConnection,
                      what: &str,
                      filter: &str,
                      attributes: &[String],
                      notes: &mut Notes,
                      while_waiting: WhileWaiting<'_>| {
        search(
            ldap,
            c,
            what,
            &users.base,
            users.scope,
            filter,
            attributes,
            notes,
            while_waiting,
        )
    };
    // An incremental read, unless it would fetch too many users one by one.
    let mut read_all = true;
    let mut known = None;
    if let (Some(changes), Some(changed_since)) = (changes, &changed_since) {
        let changed_filter = format!("(&{filter}{changed_since})");
        let changed = read_users(
            &mut ldap,
            "changed users",
            &changed_filter,
            &user_attributes,
            &mut notes,
            &mut |_| {},
        );
        let all = read_users(
            &mut ldap,
            "users",
            &filter,
            &light_attributes,
            &mut notes,
            &mut |_| {},
        );
        let anchor = |e: &Entry| super::plan::anchor_of(e, &users.anchor, users.anchor_is_binary);
        let read: HashSet<String> = changed.iter().filter_map(anchor).collect();
        known = (changes.known)();
        let known_active = known.as_ref().map(|k| &k.active);
        // Each user in scope: read in full already, held active by the target, or unknown
        // to it (to read in full).
        let (mut unchanged, mut unknown) = (Vec::new(), Vec::new());
        for e in all {
            match anchor(&e) {
                Some(a) if read.contains(&a) => {}
                Some(a) if known_active.is_some_and(|k| k.contains(&a)) => unchanged.push(e),
                _ => unknown.push(e),
            }
        }
        if known.is_none() {
            // The run fails on the target's error: nothing more is read for it.
            notes
                .problems
                .push("what the target holds could not be read".into());
            return Ok(finish(ldap, snapshot, notes));
        }
        if unknown.len() > FETCH_ONE_BY_ONE {
            snapshot.warnings.push(format!(
                "{} users in scope are not active in the target: all users were read in full",
                unknown.len()
            ));
        } else {
            read_all = false;
            snapshot.changed_since = Some(match changes.usn {
                Some(mark) if ad_incremental => format!("USN {}", mark.highest),
                _ => changes.since.to_owned(),
            });
            if let Some(mark) = changes.usn.filter(|_| ad_incremental) {
                snapshot.deleted_users = deleted_users(&mut ldap, config, mark, &mut notes);
            }
            snapshot.users = changed;
            snapshot.unchanged_users = unchanged;
            let found = read_each(
                &mut ldap,
                c,
                "user",
                &unknown,
                &filter,
                &user_attributes,
                &mut notes,
            );
            snapshot.users.extend(found);
        }
    }
    if read_all {
        snapshot.users = read_users(
            &mut ldap,
            "users",
            &filter,
            &user_attributes,
            &mut notes,
            &mut *while_waiting,
        );
    }
    if let Some(groups) = &config.groups {
        let member = match groups.membership {
            Membership::Member | Membership::MemberOf => "member",
            Membership::UniqueMember => "uniqueMember",
            Membership::MemberUid => "memberUid",
        };
        // Active Directory hands out a large `member` in ranges of at most 1,500 values
        // (MaxValRange); asking for the first range outright reads every group alike.
        let member_attribute = if config.kind == ServerKind::ActiveDirectory {
            format!("{member};range=0-{}", RANGE_STEP - 1)
        } else {
            member.to_owned()
        };
        let mut light = vec![groups.anchor.clone(), groups.name.clone()];
        if groups.primary_group {
            light.push("objectSid".into());
        }
        let mut attributes = light.clone();
        attributes.push(member_attribute);
        dedup(&mut attributes);
        let known_groups = known.as_ref().and_then(|k| k.groups.as_ref());
        let by_usn = match (known_groups, &changed_since) {
            (Some(known_groups), Some(changed_since)) if groups_by_usn && !read_all => {
                light.push("memberOf".into());
                attributes.push("memberOf".into());
                dedup(&mut light);
                let read = GroupRead {
                    ldap: &mut ldap,
                    c,
                    config: groups,
                    light: &light,
                    full: &attributes,
                };
                read.changes(changed_since, known_groups, &mut snapshot, &mut notes)
            }
            _ => false,
        };
        if !by_usn {
            let users = &snapshot.users;
            snapshot.groups = search(
                &mut ldap,
                c,
                "groups",
                &groups.base,
                groups.scope,
                &groups.filter.to_string(),
                &attributes,
                &mut notes,
                &mut |_| while_waiting(users),
            );
        }
        for e in &mut snapshot.groups {
            if let Err(why) = read_ranges(&mut ldap, e, member) {
                snapshot.partial_groups.push((e.dn.clone(), why));
            }
        }
    }
    // AD hands out any large attribute in ranges (`memberOf` of an entry in more than
    // 1,500 groups, a long `proxyAddresses`): each is read to the end, or the read is
    // incomplete. Left ranged, it would look absent and its value be cleared.
    if config.kind == ServerKind::ActiveDirectory {
        for e in snapshot
            .users
            .iter_mut()
            .chain(&mut snapshot.unchanged_users)
            .chain(&mut snapshot.groups)
            .chain(&mut snapshot.unchanged_groups)
        {
            let ranged: BTreeSet<String> = e
                .attributes
                .keys()
                .filter_map(|k| k.split_once(";range=").map(|(name, _)| name.to_owned()))
                .collect();
            for attribute in ranged {
                if let Err(why) = read_ranges(&mut ldap, e, &attribute) {
                    notes.problems.push(format!("{}: {why}", e.dn));
                }
            }
        }
    }
    Ok(finish(ldap, snapshot, notes))
}

/// Ends a read: unbinds, and notes what went wrong in the snapshot.
fn finish(ldap: LdapConnection, mut snapshot: Snapshot, notes: Notes) -> Snapshot {
    ldap.unbind();
    snapshot.problems.extend(notes.problems);
    snapshot.warnings.extend(notes.warnings);
    snapshot
}

/// What reading groups needs: the connection, the group search, and the attributes of a
/// group read without (`light`) and with (`full`) its members.
struct GroupRead<'a> {
    ldap: &'a mut LdapConnection,
    c: &'a Connection,
    config: &'a super::config::GroupSearch,
    light: &'a [String],
    full: &'a [String],
}

impl GroupRead<'_> {
    /// AD, incremental: the groups `changed_since` selects in full, with the groups above
    /// them (flattened nesting) and those the target does not hold; every other group
    /// light, into `snapshot.unchanged_groups`. Returns `false`, having read nothing kept,
    /// when too many would be read one by one: the caller reads every group in full.
    fn changes(
        self,
        changed_since: &str,
        known: &HashSet<String>,
        snapshot: &mut Snapshot,
        notes: &mut Notes,
    ) -> bool {
        use super::dn::dn_key;
        let g = self.config;
        let filter = g.filter.to_string();
        let changed = search(
            self.ldap,
            self.c,
            "changed groups",
            &g.base,
            g.scope,
            &format!("(&{filter}{changed_since})"),
            self.full,
            notes,
            &mut |_| {},
        );
        let all = search(
            self.ldap,
            self.c,
            "groups",
            &g.base,
            g.scope,
            &filter,
            self.light,
            notes,
            &mut |_| {},
        );
        let anchor = |e: &Entry| super::plan::anchor_of(e, &g.anchor, g.anchor_is_binary);
        let read: HashSet<String> = changed.iter().filter_map(anchor).collect();
        let flattened = g.nested == super::config::Nested::Flatten;
        let in_scope: HashSet<String> = all.iter().filter_map(anchor).collect();
        // Flattened, a group that left the search (deleted, moved out, filtered out) takes
        // its users out of every group above it, and nothing here says which those are.
        if let Some(gone) = known.iter().find(|a| flattened && !in_scope.contains(*a)) {
            snapshot.warnings.push(format!(
                "a group the target holds ({gone}) left the group search: all groups were read in full"
            ));
            return false;
        }
        // Each group's parents, by DN key.
        let mut parents: HashMap<String, Vec<String>> = HashMap::new();
        if flattened {
            for e in changed.iter().chain(&all) {
                parents
                    .entry(dn_key(&e.dn).into_owned())
                    .or_insert_with(|| {
                        e.values("memberOf")
                            .iter()
                            .map(|v| dn_key(&String::from_utf8_lossy(v)).into_owned())
                            .collect()
                    });
            }
        }
        // Groups read with their members: changed ones, and those the target does not hold.
        let (mut unchanged, mut one_by_one) = (Vec::new(), Vec::new());
        for e in all {
            match anchor(&e) {
                Some(a) if read.contains(&a) => {}
                Some(a) if known.contains(&a) => unchanged.push(e),
                _ => one_by_one.push(e),
            }
        }
        // Flattened, a change inside a group changes the group's users too: every group
        // above one read with its members is read with its members.
        let mut above = HashSet::new();
        if flattened {
            let mut stack: Vec<String> = changed
                .iter()
                .chain(&one_by_one)
                .map(|e| dn_key(&e.dn).into_owned())
                .collect();
            while let Some(k) = stack.pop() {
                for p in parents.get(&k).into_iter().flatten() {
                    if above.insert(p.clone()) {
                        stack.push(p.clone());
                    }
                }
            }
            let (held, to_read): (Vec<Entry>, Vec<Entry>) = unchanged
                .into_iter()
                .partition(|e| !above.contains(dn_key(&e.dn).as_ref()));
            unchanged = held;
            one_by_one.extend(to_read);
        }
        if one_by_one.len() > FETCH_ONE_BY_ONE {
            snapshot.warnings.push(format!(
                "{} groups are above a changed group or new to the target: all groups were read in full",
                one_by_one.len()
            ));
            return false;
        }
        snapshot.groups = changed;
        snapshot.unchanged_groups = unchanged;
        let found = read_each(
            self.ldap,
            self.c,
            "group",
            &one_by_one,
            &filter,
            self.full,
            notes,
        );
        snapshot.groups.extend(found);
        true
    }
}

/// Reads each of `entries` again (found by a lighter search) with `attributes`, one base
/// search each. One no longer found (gone, or changed out of `filter` between the two
/// reads) makes the read incomplete: the next run sees it.
fn read_each(
    ldap: &mut LdapConnection,
    c: &Connection,
    what: &str,
    entries: &[Entry],
    filter: &str,
    attributes: &[String],
    notes: &mut Notes,
) -> Vec<Entry> {
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let found = search(
            ldap,
            c,
            what,
            &e.dn,
            Scope::Base,
            filter,
            attributes,
            notes,
            &mut |_| {},
        );
        if found.is_empty() {
            notes.problems.push(format!(
                "{} left the search while it was read; the next run reads it",
                e.dn
            ));
        }
        out.extend(found);
    }
    out
}

/// Where the domain controller stands: RootDSE's `dsServiceName` and
/// `highestCommittedUSN`, and the `invocationId` of its NTDS Settings.
fn usn_mark(ldap: &mut LdapConnection) -> Result<UsnMark, String> {
    let read = |ldap: &mut LdapConnection, dn: &str, attributes: &[&str]| {
        read_base(ldap, dn, attributes)
            .map_err(|e| format!("reading `{dn}` for the USN watermark: {e}"))?
            .into_iter()
            .next()
            .ok_or_else(|| format!("reading `{dn}` for the USN watermark: no entry"))
    };
    let root = read(ldap, "", &["dsServiceName", "highestCommittedUSN"])?;
    let server = root
        .text("dsServiceName")
        .ok_or("the RootDSE has no dsServiceName: is this Active Directory?")?;
    let highest = root
        .text("highestCommittedUSN")
        .and_then(|t| t.trim().parse().ok())
        .ok_or("the RootDSE has no highestCommittedUSN: is this Active Directory?")?;
    let settings = read(ldap, &server, &["invocationId"])?;
    let invocation_id = settings
        .values("invocationId")
        .first()
        .and_then(|v| guid_text(v))
        .ok_or_else(|| format!("`{server}` has no invocationId"))?;
    Ok(UsnMark {
        server,
        invocation_id,
        highest,
    })
}

/// The users deleted since `mark`: their tombstones (read with the Show Deleted control)
/// whose last parent is under the user search's base, by anchor.
fn deleted_users(
    ldap: &mut LdapConnection,
    config: &SyncConfig,
    mark: &UsnMark,
    notes: &mut Notes,
) -> Vec<(String, String)> {
    const SHOW_DELETED: &str = "1.2.840.113556.1.4.417";
    let users = &config.users;
    let filter = format!(
        "(&(isDeleted=TRUE)(objectClass=user)(uSNChanged>={}))",
        mark.highest.saturating_add(1)
    );
    let attributes = [users.anchor.as_str(), "lastKnownParent"];
    let show_deleted = Control {
        oid: SHOW_DELETED.into(),
        critical: true,
        value: None,
    };
    let read = search_whole(
        ldap,
        &naming_context(&users.base),
        SearchScope::Sub,
        &filter,
        &attributes,
        &[show_deleted],
    );
    // Tombstones only say why a user left (the read of every user in scope already shows
    // that it did): what cannot be read of them is a warning, never a gap in the snapshot.
    let found = match read {
        Ok((found, result)) => {
            match result.code {
                0 => {}
                4 => notes.warnings.push(format!(
                    "the server returned {} tombstones and no more (size limit): other deleted users are reported as removed from the source",
                    found.len()
                )),
                rc => notes.warnings.push(format!(
                    "deleted users (tombstones) could not be read, result {rc} ({}): they are reported as removed from the source",
                    rc_name(rc)
                )),
            }
            found
        }
        Err(e) => {
            notes.warnings.push(format!(
                "deleted users (tombstones) could not be read: {e}; they are reported as removed from the source"
            ));
            return Vec::new();
        }
    };
    let base = super::dn::dn_key(&users.base);
    found
        .into_iter()
        .filter_map(|e| {
            let parent = e.text("lastKnownParent")?;
            let key = super::dn::dn_key(&parent);
            let under = super::dn::is_within(&key, &base);
            let anchor = super::plan::anchor_of(&e, &users.anchor, users.anchor_is_binary)?;
            under.then_some((anchor, parent))
        })
        .collect()
}

/// The domain naming context a DN is in (its `DC=` components, from the first on), where AD
/// keeps its deleted objects.
fn naming_context(dn: &str) -> String {
    // Split at the commas between RDNs, not at escaped ones (`OU=Sales\, EMEA`).
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in dn.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                parts.push(&dn[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&dn[start..]);
    let first = parts
        .iter()
        .position(|p| p.trim_start().to_ascii_lowercase().starts_with("dc="));
    first.map_or_else(
        || dn.to_owned(),
        |i| {
            parts[i..]
                .iter()
                .map(|p| p.trim())
                .collect::<Vec<_>>()
                .join(",")
        },
    )
}

/// The user search's filter: the configured one, and on AD with
/// `only_members_of_via = "matching_rule"`, membership of one of the groups through any
/// depth of nesting, which the server works out.
fn user_filter(config: &SyncConfig) -> String {
    let users = &config.users;
    if users.only_members_of_via != ScopeVia::MatchingRule || users.only_members_of.is_empty() {
        return users.filter.to_string();
    }
    let groups: String = users
        .only_members_of
        .iter()
        .map(|dn| {
            format!(
                "(memberOf:1.2.840.113556.1.4.1941:={})",
                super::filter::escape_value(dn.as_bytes())
            )
        })
        .collect();
    format!("(&{}(|{groups}))", users.filter)
}

/// What searches say beside their entries: why the read is incomplete (`problems`), and
/// what an operator should know (`warnings`).
#[derive(Default)]
struct Notes {
    problems: Vec<String>,
    warnings: Vec<String>,
    /// Whether the server is Active Directory, whose searches from a domain's root meet
    /// references to its other naming contexts (which hide nothing a search had).
    active_directory: bool,
}

/// How many values of a ranged attribute one request asks for: AD's default MaxValRange.
const RANGE_STEP: u64 = 1500;

/// Reads `attribute` of `e` to the end when the server handed it out in ranges
/// (`member;range=0-1499`: values 0 to 1499 of more), asking for the following ranges
/// (`member;range=1500-2999`, …) until one ends in `*`; the values end up under
/// `attribute` itself.
///
/// # Errors
/// Why the values could not be read whole (the ones read are kept).
fn read_ranges(ldap: &mut LdapConnection, e: &mut Entry, attribute: &str) -> Result<(), String> {
    let name = attribute.to_ascii_lowercase();
    let prefix = format!("{name};range=");
    let mut next = take_ranges(e, &name, &prefix)?;
    while let Some(low) = next {
        let wanted = format!(
            "{attribute};range={low}-{}",
            low.saturating_add(RANGE_STEP - 1)
        );
        let found = read_base(ldap, &e.dn, &[wanted.as_str()])
            .map_err(|err| format!("reading {wanted}: {err}"))?;
        let [mut part] = <[Entry; 1]>::try_from(found)
            .map_err(|found| format!("reading {wanted}: {} entries answered", found.len()))?;
        let before = e.values(attribute).len();
        let start = take_ranges(&mut part, &name, &prefix)?;
        // The server owes the values of the range asked for (AD ends with `…-*`): an answer
        // without any means the list changed under the read.
        let values = part
            .attributes
            .remove(&name)
            .ok_or_else(|| format!("reading {wanted}: the server sent none of its values"))?;
        if values.is_empty() && start.is_some() {
            return Err(format!(
                "reading {wanted}: the server sent no values and more to come"
            ));
        }
        e.attributes.entry(name.clone()).or_default().extend(values);
        next = start;
        if next.is_some_and(|n| n <= low) {
            return Err(format!(
                "reading {wanted}: the server's ranges go backwards after {before} values"
            ));
        }
    }
    Ok(())
}

/// Moves the values of `e`'s ranged forms of an attribute (`prefix` is `name;range=`) under
/// `name`; returns where the next range starts, `None` when the last one ended in `*` (or
/// there was none).
fn take_ranges(e: &mut Entry, name: &str, prefix: &str) -> Result<Option<u64>, String> {
    let ranged: Vec<String> = e
        .attributes
        .keys()
        .filter(|k| k.starts_with(prefix))
        .cloned()
        .collect();
    let mut next = None;
    for key in ranged {
        let values = e.attributes.remove(&key).unwrap_or_default();
        let bounds = &key[prefix.len()..];
        let high = bounds
            .split_once('-')
            .filter(|(low, _)| low.parse::<u64>().is_ok())
            .map(|(_, high)| high)
            .ok_or_else(|| format!("`{key}` is not a range the server should send"))?;
        next = match high {
            "*" => None,
            // The server's numbers: one at the top of u64 is refused, not wrapped.
            h => Some(
                h.parse::<u64>()
                    .ok()
                    .and_then(|h| h.checked_add(1))
                    .ok_or_else(|| format!("`{key}` is not a range the server should send"))?,
            ),
        };
        e.attributes
            .entry(name.to_owned())
            .or_default()
            .extend(values);
    }
    Ok(next)
}

/// The LDAP attributes a mapping reads.
pub(crate) fn source_attributes(source: &super::config::Source) -> Vec<String> {
    use super::config::{Piece, Source};
    match source {
        Source::Attribute { name, .. } => vec![name.clone()],
        Source::Template(pieces) => pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Attribute(a) => Some(a.clone()),
                Piece::Text(_) => None,
            })
            .collect(),
        Source::Constant(_) => Vec::new(),
    }
}

fn dedup(names: &mut Vec<String>) {
    let mut seen = HashSet::new();
    names.retain(|n| seen.insert(n.to_ascii_lowercase()));
}

/// Connects to the first server that answers (upgrading with StartTLS when configured) and
/// binds. A server that drops the connection is skipped; a refused bind is an error at once
/// (the credentials are the same on every server).
fn connect(
    c: &Connection,
    warnings: &mut Vec<String>,
) -> Result<(LdapConnection, String), SourceError> {
    if c.insecure_skip_verify && c.tls != Tls::None {
        warnings.push(
            "TLS certificate verification is OFF (connection.insecure_skip_verify): anyone on the \
             path can impersonate the server"
                .into(),
        );
    }
    warnings.extend(in_clear(c));
    let tls = || -> Result<_, SourceError> {
        Ok(Arc::new(if c.insecure_skip_verify {
            crate::tls::unverified_client_config()
                .map_err(|e| SourceError::Connect(e.to_string()))?
        } else {
            tls_config(c)?
        }))
    };
    let security = match c.tls {
        Tls::None => Security::None,
        Tls::StartTls => Security::StartTls(tls()?),
        Tls::Ldaps => Security::Ldaps(tls()?),
    };
    let password = c
        .bind_password
        .as_ref()
        .map(super::config::Secret::read)
        .transpose()?;
    let connect_timeout = Duration::from_secs(c.connect_timeout_seconds);
    let timeout = Duration::from_secs(c.operation_timeout_seconds);
    let mut failures = Vec::new();
    for url in &c.urls {
        let mut conn = match LdapConnection::open(url, &security, connect_timeout, timeout) {
            Ok(conn) => conn,
            Err(e) => {
                failures.push(format!("{url}: {e}"));
                continue;
            }
        };
        if let (Some(dn), Some(password)) = (&c.bind_dn, &password) {
            match conn.simple_bind(dn, password) {
                // The connection failed under the bind: try the next server.
                Err(e) => {
                    failures.push(format!("{url}: {e}"));
                    continue;
                }
                // Busy, unavailable, unwilling (a replica starting or in maintenance),
                // or another server's business (a referral): another server may take the
                // bind. Refused credentials are refused by all of them.
                Ok(result) if matches!(result.code, 10 | 51 | 52 | 53 | 80) => {
                    failures.push(format!(
                        "{url}: the bind got result {}{}",
                        result.code,
                        parenthesised(&result.message)
                    ));
                    continue;
                }
                Ok(result) if result.code != 0 => {
                    return Err(SourceError::Bind {
                        dn: dn.clone(),
                        message: format!(
                            "result {}{}",
                            result.code,
                            parenthesised(&result.message)
                        ),
                    });
                }
                Ok(_) => {}
            }
        }
        if !failures.is_empty() {
            warnings.push(format!("skipped: {}", failures.join("; ")));
        }
        return Ok((conn, url.clone()));
    }
    Err(SourceError::Connect(failures.join("; ")))
}

/// A warning when the bind password goes to another host without TLS. Active Directory
/// refuses such a bind (the configuration check); another server takes it.
fn in_clear(c: &Connection) -> Option<String> {
    let off_host = |url: &String| {
        super::url::host_and_port(url).is_none_or(|(host, _, _)| {
            !(host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback()))
        })
    };
    (c.tls == Tls::None && c.bind_password.is_some() && c.urls.iter().any(off_host)).then(|| {
        "connection.tls = \"none\": the bind password and every entry cross the network \
         unencrypted; use ldaps:// or StartTLS"
            .to_owned()
    })
}

/// A rustls client configuration trusting the configured CA (or the system's roots).
fn tls_config(c: &Connection) -> Result<rustls::ClientConfig, SourceError> {
    crate::tls::client_config(c.ca_file.as_deref()).map_err(|e| match e {
        crate::tls::TlsError::Ca(message) => SourceError::Config(ConfigError {
            key: Some("connection.ca_file".into()),
            message,
        }),
        crate::tls::TlsError::Setup(message) => SourceError::Connect(message),
    })
}

/// One paged search, streamed; problems go to `problems` and the entries read so far are
/// kept. `while_waiting` is told the entries read so far each time a page has been asked
/// for, before it is read.
#[allow(clippy::too_many_arguments)]
fn search(
    ldap: &mut LdapConnection,
    c: &Connection,
    what: &str,
    base: &str,
    scope: Scope,
    filter: &str,
    attributes: &[String],
    notes: &mut Notes,
    while_waiting: WhileWaiting<'_>,
) -> Vec<Entry> {
    let scope = match scope {
        Scope::Base => SearchScope::Base,
        Scope::One => SearchScope::One,
        Scope::Sub => SearchScope::Sub,
    };
    let mut entries = Vec::new();
    let filter = match LdapFilter::parse(filter) {
        Ok(f) => f,
        Err(e) => {
            notes
                .problems
                .push(format!("the {what} search's filter `{filter}`: {e}"));
            return entries;
        }
    };
    let mut referrals = Vec::new();
    let mut cookie = Vec::new();
    let stopped = |notes: &mut Notes, read: usize, why: &dyn std::fmt::Display| {
        notes.problems.push(format!(
            "the {what} search stopped after {read} entries: {why}"
        ));
    };
    loop {
        let paged = Control::paged(c.page_size, &cookie);
        let result = match ldap
            .search(base, scope, &filter, attributes, &[paged])
            .and_then(|page| {
                // The server prepares the page meanwhile.
                while_waiting(&entries);
                page.read_into(&mut entries, &mut referrals)
            }) {
            Ok(result) => result,
            Err(ConnectionError::Malformed(e)) => {
                notes.problems.push(format!(
                    "the {what} search returned a malformed entry after {} entries: {e}",
                    entries.len()
                ));
                break;
            }
            Err(e) => {
                stopped(notes, entries.len(), &e);
                break;
            }
        };
        // The result code arrives at the end of each page: a refused page size or a size
        // limit shows here.
        if result.code != 0 {
            notes.problems.push(format!(
                "the {what} search ended with result {} ({}){} after {} entries",
                result.code,
                rc_name(result.code),
                if result.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", result.message)
                },
                entries.len()
            ));
            break;
        }
        match result.next_page() {
            Ok(Some(next)) => cookie = next,
            Ok(None) => break,
            Err(e) => {
                stopped(notes, entries.len(), &e);
                break;
            }
        }
    }
    // Continuation references are not followed. On AD, one to another naming context
    // (`CN=Configuration`, DNS zones, a child domain) names what was never in this search's
    // scope. Any other (a referral object, a subtree handed to another server, which on
    // other servers may be a `dc=` subtree) hides entries a read before may have had: the
    // read is incomplete, so none of them is taken away.
    let (contexts, hiding): (Vec<String>, Vec<String>) = referrals
        .into_iter()
        .partition(|r| notes.active_directory && super::url::names_a_naming_context(r));
    if !contexts.is_empty() {
        notes.warnings.push(format!(
            "the {what} search returned {} continuation reference(s) to other naming contexts, not followed: {}",
            contexts.len(),
            contexts.join(", ")
        ));
    }
    if !hiding.is_empty() {
        notes.problems.push(format!(
            "the {what} search returned {} continuation reference(s), not followed: {}; the entries there are not read (narrow the base, or read that server in a configuration of its own)",
            hiding.len(),
            hiding.join(", ")
        ));
    }
    entries
}

/// One search without paging, read whole: its entries (references are left out) and how it
/// ended.
fn search_whole(
    ldap: &mut LdapConnection,
    base: &str,
    scope: SearchScope,
    filter: &str,
    attributes: &[&str],
    controls: &[Control],
) -> Result<(Vec<Entry>, Outcome), String> {
    let filter = LdapFilter::parse(filter).map_err(|e| format!("`{filter}`: {e}"))?;
    let mut entries = Vec::new();
    let result = ldap
        .search(base, scope, &filter, attributes, controls)
        .and_then(|search| search.read_into(&mut entries, &mut Vec::new()))
        .map_err(|e| e.to_string())?;
    Ok((entries, result))
}

/// The entry at `dn` with `attributes`; an error for any result but success.
fn read_base(
    ldap: &mut LdapConnection,
    dn: &str,
    attributes: &[&str],
) -> Result<Vec<Entry>, String> {
    let (entries, result) = search_whole(
        ldap,
        dn,
        SearchScope::Base,
        "(objectClass=*)",
        attributes,
        &[],
    )?;
    match result.code {
        0 => Ok(entries),
        rc => Err(format!(
            "result {rc} ({}){}",
            rc_name(rc),
            parenthesised(&result.message)
        )),
    }
}

fn rc_name(rc: u32) -> &'static str {
    match rc {
        3 => "time limit exceeded",
        4 => "size limit exceeded",
        11 => "administrative limit exceeded",
        32 => "no such object",
        50 => "insufficient access",
        51 => "busy",
        52 => "unavailable",
        80 => "other",
        _ => "error",
    }
}

/// A 16-byte GUID (AD `objectGUID`) in its standard text form: the first three fields are
/// little-endian.
pub fn guid_text(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    ))
}

#[cfg(test)]
mod tests {
    use super::{Entry, in_clear, naming_context, take_ranges};

    /// A password sent unencrypted to another host is warned of; to this host, not.
    #[test]
    fn a_bind_password_in_clear_is_warned_of() {
        let config = |urls: &str, tls: &str| {
            crate::ldap::config::SyncConfig::from_toml(&format!(
                "directory = \"corp\"\n[connection]\nurls = [{urls}]\ntls = \"{tls}\"\n\
                 bind_dn = \"cn=x\"\nbind_password_env = \"P\"\n[users]\nbase = \"dc=x\"\n"
            ))
            .unwrap_or_else(|e| panic!("{e}"))
            .connection
        };
        assert!(in_clear(&config("\"ldap://ldap.corp.example\"", "none")).is_some());
        assert!(
            in_clear(&config(
                "\"ldap://127.0.0.1:389\", \"ldap://10.0.0.5\"",
                "none"
            ))
            .is_some()
        );
        assert!(
            in_clear(&config(
                "\"ldap://127.0.0.1:389\", \"ldap://[::1]\"",
                "none"
            ))
            .is_none()
        );
        assert!(in_clear(&config("\"ldap://localhost\"", "none")).is_none());
        assert!(in_clear(&config("\"ldap://ldap.corp.example\"", "starttls")).is_none());
    }

    #[test]
    fn ranges_say_where_the_next_one_starts() {
        let prefix = "member;range=";
        let mut e = Entry::new("CN=g", [("member;range=0-1499", vec!["a", "b"])]);
        assert_eq!(take_ranges(&mut e, "member", prefix), Ok(Some(1500)));
        assert_eq!(e.values("member").len(), 2);
        let mut last = Entry::new("CN=g", [("member;range=1500-*", vec!["c"])]);
        assert_eq!(take_ranges(&mut last, "member", prefix), Ok(None));
        let mut whole = Entry::new("CN=g", [("member", vec!["a"])]);
        assert_eq!(take_ranges(&mut whole, "member", prefix), Ok(None));
        let mut odd = Entry::new("CN=g", [("member;range=x-9", vec!["a"])]);
        assert!(take_ranges(&mut odd, "member", prefix).is_err());
        // A range ending at the top of u64 has no next one to ask for: an error, not a
        // wrap to a range that starts at 0 again.
        let top = format!("member;range=0-{}", u64::MAX);
        let mut huge = Entry::new("CN=g", [(top.as_str(), vec!["a"])]);
        assert!(take_ranges(&mut huge, "member", prefix).is_err());
    }

    #[test]
    fn deleted_objects_live_in_the_domain_naming_context() {
        assert_eq!(
            naming_context("OU=Staff,OU=People,DC=example,DC=test"),
            "DC=example,DC=test"
        );
        assert_eq!(naming_context("dc=example,dc=test"), "dc=example,dc=test");
        assert_eq!(
            naming_context("OU=Staff, DC=corp, DC=com"),
            "DC=corp,DC=com"
        );
        // An escaped comma is inside an RDN, not between two.
        assert_eq!(
            naming_context(r"OU=Sales\,DC=fake,OU=EMEA,DC=corp,DC=com"),
            "DC=corp,DC=com"
        );
    }
}
