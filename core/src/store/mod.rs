//! Where directories, users, groups, memberships and the change feed live.
//!
//! [`Store`] is the one interface every backend implements: [`memory::MemoryStore`] for tests
//! and [`sqlite::SqliteStore`], the embedded default. One generic contract suite
//! (`contract.rs`) runs against every backend, so they cannot disagree.
//!
//! Every write is one transaction: it checks the expected version (optimistic concurrency),
//! enforces uniqueness, and appends its event to the change feed in the same transaction, so
//! the feed never misses a committed change nor shows an uncommitted one.

#[cfg(test)]
mod contract;
#[cfg(test)]
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod differential;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
mod query;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub(crate) mod view;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::scim::datetime::DateTime;

pub use query::{Page, Position, Query, SortBy, Start};

/// Where a directory's users and groups come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirectoryKind {
    /// Provisioned by an identity provider over SCIM.
    Scim,
    /// Reconciled from an LDAP or Active Directory server.
    Ldap,
    /// Managed in the platform itself.
    Local,
}

impl DirectoryKind {
    /// The stored name: `scim`, `ldap`, `local`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Scim => "scim",
            Self::Ldap => "ldap",
            Self::Local => "local",
        }
    }

    /// The kind called `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Scim, Self::Ldap, Self::Local]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// Which users a `userName` must be unique among.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserNameScope {
    /// Every directory that uses this scope (the default): a login name resolves to one
    /// person on the platform.
    Platform,
    /// This directory only.
    Directory,
}

impl UserNameScope {
    /// The stored name: `platform`, `directory`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Directory => "directory",
        }
    }

    /// The scope called `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Platform, Self::Directory]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A namespace of users and groups with one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    /// Stable identifier.
    pub id: i64,
    /// Unique name, used in the endpoint path (`/scim/v2/<name>/…`).
    pub name: String,
    /// The source of its users and groups.
    pub kind: DirectoryKind,
    /// Days a deactivated user is kept before [`Store::purge_inactive`] deletes it
    /// (0: deleted at once).
    pub retention_days: u32,
    /// Which users a `userName` must be unique among.
    pub user_name_scope: UserNameScope,
    /// Whether a password an identity provider sends is kept, as a salted Argon2id hash, for
    /// the platform to check sign-ins against; otherwise it is checked and dropped.
    pub keep_password_hashes: bool,
    /// Whether its SCIM endpoint holds clients to RFC 7644 to the letter, refusing what only
    /// identity providers send (Entra's `"False"` for a boolean, capitalised PATCH ops, …);
    /// otherwise those are accepted.
    pub strict: bool,
}

/// What [`Store::create_directory`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDirectory {
    /// Unique name: letters, digits, `-`, `_` and `.`, at most 64 bytes.
    pub name: String,
    /// The source of its users and groups.
    pub kind: DirectoryKind,
    /// See [`Directory::retention_days`]; 30 by default.
    pub retention_days: u32,
    /// See [`Directory::user_name_scope`].
    pub user_name_scope: UserNameScope,
    /// See [`Directory::keep_password_hashes`]; off by default.
    pub keep_password_hashes: bool,
    /// See [`Directory::strict`]; off by default.
    pub strict: bool,
}

impl NewDirectory {
    /// A directory with the defaults: 30 days' retention, platform-wide `userName`s, no
    /// password hashes, identity providers' ways accepted.
    pub fn new(name: impl Into<String>, kind: DirectoryKind) -> Self {
        Self {
            name: name.into(),
            kind,
            retention_days: 30,
            user_name_scope: UserNameScope::Platform,
            keep_password_hashes: false,
            strict: false,
        }
    }

    /// A directory named `name` with the settings of a JSON object, as the bindings take
    /// them: `{"kind": "scim", "retentionDays": 30, "userNameScope": "platform",
    /// "keepPasswordHashes": false, "strict": false}`, each optional (these are the defaults).
    ///
    /// ```
    /// use usersync_core::store::{NewDirectory, UserNameScope};
    /// let d = NewDirectory::from_options("okta", &serde_json::json!({"keepPasswordHashes": true}))?;
    /// assert!(d.keep_password_hashes);
    /// assert_eq!(d.user_name_scope, UserNameScope::Platform);
    /// assert!(NewDirectory::from_options("okta", &serde_json::json!({"retention": 3})).is_err());
    /// # Ok::<(), usersync_core::store::StoreError>(())
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Invalid`] naming the setting: not an object, an unknown key, a value of
    /// the wrong type or out of range.
    pub fn from_options(name: &str, options: &Value) -> Result<Self, StoreError> {
        let invalid = |m: String| StoreError::Invalid(m);
        let fields = match options {
            Value::Null => return Ok(Self::new(name, DirectoryKind::Scim)),
            Value::Object(fields) => fields,
            _ => return Err(invalid("directory options: expected a JSON object".into())),
        };
        let mut d = Self::new(name, DirectoryKind::Scim);
        for (key, value) in fields {
            let wrong =
                |expected: &str| invalid(format!("directory option `{key}`: expected {expected}"));
            match key.as_str() {
                "kind" => {
                    d.kind = value
                        .as_str()
                        .and_then(DirectoryKind::parse)
                        .ok_or_else(|| wrong("\"scim\", \"ldap\" or \"local\""))?;
                }
                "retentionDays" => {
                    d.retention_days = value
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| wrong("a number of days"))?;
                }
                "userNameScope" => {
                    d.user_name_scope = value
                        .as_str()
                        .and_then(UserNameScope::parse)
                        .ok_or_else(|| wrong("\"platform\" or \"directory\""))?;
                }
                "keepPasswordHashes" => {
                    d.keep_password_hashes =
                        value.as_bool().ok_or_else(|| wrong("true or false"))?;
                }
                "strict" => {
                    d.strict = value.as_bool().ok_or_else(|| wrong("true or false"))?;
                }
                _ => {
                    return Err(invalid(format!(
                        "unknown directory option `{key}` (kind, retentionDays, userNameScope, keepPasswordHashes, strict)"
                    )));
                }
            }
        }
        Ok(d)
    }
}

/// The two SCIM resource types a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A user.
    User,
    /// A group.
    Group,
}

impl Kind {
    /// `User` or `Group`, as SCIM names the resource types.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
        }
    }

    /// `Users` or `Groups`: the endpoint's collection (`/scim/v2/<directory>/Users`).
    pub const fn collection(self) -> &'static str {
        match self {
            Self::User => "Users",
            Self::Group => "Groups",
        }
    }
}

/// A stored user or group; its attributes are JSON ([`Value`]), or as [`Store::list_held`]
/// hands them over for comparison ([`HeldAttributes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Resource<A = Value> {
    /// The directory it belongs to.
    pub directory: i64,
    /// User or group.
    pub kind: Kind,
    /// Our identifier; never changes.
    pub id: String,
    /// The source's identifier.
    pub external_id: Option<String>,
    /// `userName` for a user, `displayName` for a group: the unique name.
    pub name: String,
    /// Whether the user is active (groups always are).
    pub active: bool,
    /// Incremented by every change, membership changes of a group included.
    pub version: u64,
    /// When it was created.
    pub created: DateTime,
    /// When it last changed.
    pub modified: DateTime,
    /// Since when the user has been inactive; `None` while active.
    pub inactive_since: Option<DateTime>,
    /// The SCIM attributes as JSON, without `id`, `meta`, `members` or `groups`, which the
    /// store keeps itself.
    pub attributes: A,
}

impl<A> Resource<A> {
    /// The same resource with its attributes passed through `f`.
    pub fn map_attributes<B>(self, f: impl FnOnce(A) -> B) -> Resource<B> {
        Resource {
            directory: self.directory,
            kind: self.kind,
            id: self.id,
            external_id: self.external_id,
            name: self.name,
            active: self.active,
            version: self.version,
            created: self.created,
            modified: self.modified,
            inactive_since: self.inactive_since,
            attributes: f(self.attributes),
        }
    }
}

impl From<Resource> for Resource<HeldAttributes> {
    fn from(r: Resource) -> Self {
        r.map_attributes(HeldAttributes::Value)
    }
}

/// A resource's attributes as [`Store::list_held`] hands them over, to be compared with
/// the attributes a sync wants. A re-sync compares a hundred thousand users, most of them
/// unchanged: parsing their JSON into maps was half the time of reading them.
#[derive(Debug, Clone, PartialEq)]
pub enum HeldAttributes {
    /// Parsed, as most stores read them.
    Value(Value),
    /// The JSON text as the store keeps it: compact, keys in order, as `serde_json` writes
    /// a [`Value`]. Parsed only when it is not the text of the attributes compared with.
    Text(String),
}

impl HeldAttributes {
    /// Whether these are the attributes `wanted`, told without parsing text: the same text
    /// is the same attributes. Text written another way (by an older release, say) may be
    /// too: when this says no, compare [`HeldAttributes::to_object`].
    pub fn is_written_as(&self, wanted: &serde_json::Map<String, Value>) -> bool {
        match self {
            Self::Value(v) => v.as_object() == Some(wanted),
            Self::Text(text) => written_as(text, wanted),
        }
    }

    /// Whether these are text written exactly as `wanted` serialises, told as it is
    /// written: no says nothing (parsed attributes, text written another way), so compare
    /// with [`HeldAttributes::is_written_as`] then.
    pub fn is_text_of(&self, wanted: &impl serde::Serialize) -> bool {
        match self {
            Self::Value(_) => false,
            Self::Text(text) => written_as(text, wanted),
        }
    }

    /// The attributes as a JSON object; empty when they are not one (text that does not
    /// parse as an object: a difference shows every wanted attribute, and an update
    /// writes them all).
    pub fn to_object(&self) -> std::borrow::Cow<'_, serde_json::Map<String, Value>> {
        use std::borrow::Cow;
        match self {
            Self::Value(Value::Object(m)) => Cow::Borrowed(m),
            Self::Value(_) => Cow::Owned(serde_json::Map::new()),
            Self::Text(text) => Cow::Owned(serde_json::from_str(text).unwrap_or_default()),
        }
    }
}

/// Whether `serde_json` writes `value` as exactly `text`: compared as it is written, with
/// no copy of the text made.
fn written_as(text: &str, value: &impl serde::Serialize) -> bool {
    /// Takes what is written off the front of `rest`; fails at the first difference.
    struct Expect<'a> {
        rest: &'a [u8],
    }
    impl std::io::Write for Expect<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            match self.rest.strip_prefix(buf) {
                Some(rest) => {
                    self.rest = rest;
                    Ok(buf.len())
                }
                None => Err(std::io::ErrorKind::InvalidData.into()),
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut expect = Expect {
        rest: text.as_bytes(),
    };
    serde_json::to_writer(&mut expect, value).is_ok() && expect.rest.is_empty()
}

/// What [`Store::create`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewResource {
    /// The directory it belongs to.
    pub directory: i64,
    /// User or group.
    pub kind: Kind,
    /// Our identifier, chosen by the caller (a random UUID).
    pub id: String,
    /// The source's identifier.
    pub external_id: Option<String>,
    /// `userName` or `displayName`.
    pub name: String,
    /// Whether the user is active.
    pub active: bool,
    /// The SCIM attributes, as for [`Resource::attributes`].
    pub attributes: Value,
    /// For a group: its initial members, added in the same transaction.
    pub members: Vec<Member>,
    /// For a user of a directory that keeps password hashes: the hash of its password.
    pub password: Option<PasswordHash>,
}

/// A password hash in PHC string form (`$argon2id$v=19$…`). The store keeps it apart from
/// the SCIM attributes, so no read, search or change-feed path can return it; its `Debug`
/// shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(pub String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// A change to a user's kept password hash (see [`Change::password`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordChange {
    /// A new password.
    Set(PasswordHash),
    /// No password any more.
    Clear,
}

/// The new state of a resource for [`Store::replace`].
#[derive(Debug, Clone, PartialEq)]
pub struct Replacement {
    /// The source's identifier.
    pub external_id: Option<String>,
    /// `userName` or `displayName`.
    pub name: String,
    /// Whether the user is active.
    pub active: bool,
    /// The SCIM attributes, as for [`Resource::attributes`].
    pub attributes: Value,
    /// For a group: the new set of members, replacing the old one in the same transaction;
    /// `None` leaves the members as they are.
    pub members: Option<Vec<Member>>,
}

/// A change to a resource for [`Store::update`]: new attributes and/or membership changes,
/// applied in one transaction with one version bump.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Change {
    /// New attributes (and, when it says so, a new set of members).
    pub replacement: Option<Replacement>,
    /// Members to add to a group (present ones are skipped).
    pub add_members: Vec<Member>,
    /// Members to remove from a group (absent ones are ignored).
    pub remove_members: Vec<Member>,
    /// For a user: a new password hash, or none any more; `None` leaves it as it is (a PUT
    /// cannot send back a password it was never shown, so a replacement keeps it).
    pub password: Option<PasswordChange>,
    /// The content a replacement was computed from: the write fails with a version
    /// mismatch if the resource no longer has it. Unlike an expected version, member
    /// changes made meanwhile (which bump the version too) do not conflict, so a rename
    /// goes through while identity providers add members to the group on other nodes.
    pub unless_changed: Option<Content>,
}

/// What a resource holds besides its members, as read at `version`: see
/// [`Change::unless_changed`].
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// The version read, for the error.
    pub version: u64,
    /// As [`Resource::external_id`].
    pub external_id: Option<String>,
    /// As [`Resource::name`].
    pub name: String,
    /// As [`Resource::active`].
    pub active: bool,
    /// As [`Resource::attributes`].
    pub attributes: Value,
}

impl Content {
    /// What `r` holds now.
    pub fn of(r: &Resource) -> Self {
        Self {
            version: r.version,
            external_id: r.external_id.clone(),
            name: r.name.clone(),
            active: r.active,
            attributes: r.attributes.clone(),
        }
    }

    /// Whether `r` holds this content, at whatever version.
    pub fn is_held_by(&self, r: &Resource) -> bool {
        self.external_id == r.external_id
            && self.name == r.name
            && self.active == r.active
            && self.attributes == r.attributes
    }
}

/// One write of a [`Store::batch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// As [`Store::create`].
    Create(NewResource),
    /// As [`Store::update`].
    Update {
        /// The directory.
        directory: i64,
        /// User or group.
        kind: Kind,
        /// The resource.
        id: String,
        /// The version it must still be at (any when `None`).
        expected_version: Option<u64>,
        /// What changes.
        change: Change,
    },
    /// As [`Store::delete`].
    Delete {
        /// The directory.
        directory: i64,
        /// User or group.
        kind: Kind,
        /// The resource.
        id: String,
        /// The version it must still be at (any when `None`).
        expected_version: Option<u64>,
    },
}

/// The outcome of one write of a batch: the resource after it (`None` after a deletion).
pub type WriteOutcome = Result<Option<Resource>, StoreError>;

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    /// The member's `id`.
    pub id: String,
    /// Whether the member is a user or a group.
    pub kind: Kind,
}

/// What a change-feed event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The resource was created.
    Created,
    /// The resource's attributes or memberships changed.
    Updated,
    /// The resource was deleted.
    Deleted,
}

impl EventKind {
    /// `created`, `updated` or `deleted`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }
}

/// One committed change, in commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position in the feed: strictly increasing in commit order, so that a reader that
    /// has seen `seq` misses nothing after it. Numbers may be skipped (PostgreSQL does not
    /// reuse those of writes rolled back): never wait for a missing one.
    pub seq: u64,
    /// The directory of the resource.
    pub directory: i64,
    /// User or group.
    pub kind: Kind,
    /// The resource's `id`.
    pub id: String,
    /// What happened.
    pub event: EventKind,
    /// The resource's version after the change (for a deletion, the last version).
    pub version: u64,
    /// When the change was committed.
    pub time: DateTime,
}

/// Active and inactive user counts of a directory; inactive users are not licensed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserCounts {
    /// Users with `active` true: the licensed count.
    pub active: u64,
    /// Deactivated users awaiting purge.
    pub inactive: u64,
}

/// The record of one sync run (LDAP reconciliation), kept so that operators can see what
/// each run did.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRun {
    /// Its number, in the order runs were recorded.
    pub id: i64,
    /// The directory synced.
    pub directory: i64,
    /// When it started.
    pub started: DateTime,
    /// When it ended.
    pub finished: DateTime,
    /// `succeeded`, `blocked` or `failed`.
    pub outcome: String,
    /// What it found and did (the plan's summary, failures, conflicts, durations), as JSON.
    pub report: Value,
}

/// A directory's secret token as stored: only its SHA-256 hash, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// Identifies the token for listing and revocation; not secret.
    pub id: i64,
    /// The directory the token opens.
    pub directory: i64,
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// When it was issued.
    pub created: DateTime,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The directory, user or group does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// A unique value is already taken.
    #[error("{attribute} `{value}` is already taken")]
    Uniqueness {
        /// The attribute (`userName`, `displayName`, `name`).
        attribute: &'static str,
        /// The value.
        value: String,
    },
    /// The resource changed since the version the caller read.
    #[error("version mismatch: expected {expected}, the resource is at {actual}")]
    VersionMismatch {
        /// The version the caller expected.
        expected: u64,
        /// The stored version.
        actual: u64,
    },
    /// A value the store cannot accept.
    #[error("invalid {0}")]
    Invalid(String),
    /// The backend failed (I/O, corruption); the operation changed nothing.
    #[error("storage failure: {0}")]
    Backend(String),
}

/// The clock the store stamps changes with; injected so that tests control time.
pub type Clock = Arc<dyn Fn() -> DateTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        // Milliseconds, as SCIM `meta` timestamps are usually written.
        DateTime::from_unix(since.as_secs() as i64, since.subsec_millis() * 1_000_000)
    })
}

/// How many runs of a directory the store keeps ([`Store::add_run`]): a daemon running every
/// minute would otherwise grow the table by half a million records a year. At most the
/// newest hundred are read to find the last watermark.
pub const KEPT_RUNS: usize = 1000;

/// The store interface every backend implements. Methods are synchronous; callers on an
/// async runtime run them on a blocking thread.
pub trait Store: Send + Sync + fmt::Debug {
    /// Creates a directory.
    ///
    /// # Errors
    /// [`StoreError::Uniqueness`] for a name already in use, [`StoreError::Invalid`] for a
    /// name that cannot appear in an endpoint path.
    fn create_directory(&self, directory: NewDirectory) -> Result<Directory, StoreError>;

    /// Every directory, by name.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn directories(&self) -> Result<Vec<Directory>, StoreError>;

    /// The directory called `name`.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn directory(&self, name: &str) -> Result<Option<Directory>, StoreError>;

    /// Creates a user or group (with its members, for a group).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown directory or member, [`StoreError::Uniqueness`]
    /// for a taken `id` or name.
    fn create(&self, resource: NewResource) -> Result<Resource, StoreError>;

    /// The resource `id` of `kind` in `directory`.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn get(&self, directory: i64, kind: Kind, id: &str) -> Result<Option<Resource>, StoreError>;

    /// The resource of `kind` in `directory` whose unique name is `name` (ignoring case).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn get_by_name(
        &self,
        directory: i64,
        kind: Kind,
        name: &str,
    ) -> Result<Option<Resource>, StoreError>;

    /// Replaces a resource's attributes (and a group's members, when given), when its
    /// version is still `expected_version` (any version when `None`).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (also for an unknown member), [`StoreError::VersionMismatch`],
    /// [`StoreError::Uniqueness`], [`StoreError::Invalid`] for a group made its own member.
    fn replace(
        &self,
        directory: i64,
        kind: Kind,
        id: &str,
        expected_version: Option<u64>,
        replacement: Replacement,
    ) -> Result<Resource, StoreError> {
        let change = Change {
            replacement: Some(replacement),
            ..Change::default()
        };
        self.update(directory, kind, id, expected_version, change)
    }

    /// Applies `change` in one transaction, when the version is still `expected_version`
    /// (any version when `None`). The version goes up once if anything changed; a change
    /// that changes nothing (members already there, or already gone) leaves it alone.
    ///
    /// # Errors
    /// As for [`Store::replace`] and [`Store::add_members`]; [`StoreError::Invalid`] for
    /// membership changes to a user.
    fn update(
        &self,
        directory: i64,
        kind: Kind,
        id: &str,
        expected_version: Option<u64>,
        change: Change,
    ) -> Result<Resource, StoreError>;

    /// Deletes a resource and its memberships (as a group and as a member).
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::VersionMismatch`].
    fn delete(
        &self,
        directory: i64,
        kind: Kind,
        id: &str,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError>;

    /// Every resource of `kind` in `directory`, in `id` order.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn list(&self, directory: i64, kind: Kind) -> Result<Vec<Resource>, StoreError>;

    /// [`Store::list`], for comparing what is held with what a sync wants: a store may hand
    /// the attributes over as the JSON text it keeps, unparsed.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn list_held(
        &self,
        directory: i64,
        kind: Kind,
    ) -> Result<Vec<Resource<HeldAttributes>>, StoreError> {
        Ok(self
            .list(directory, kind)?
            .into_iter()
            .map(Resource::from)
            .collect())
    }

    /// The resources of `kind` in `directory` whose `externalId` is `external_id` (exactly),
    /// in `id` order. External ids are the source's anchors; the RFC does not make them
    /// unique, so there may be several.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn find_by_external_id(
        &self,
        directory: i64,
        kind: Kind,
        external_id: &str,
    ) -> Result<Vec<Resource>, StoreError>;

    /// How many resources of `kind` `directory` holds.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn count(&self, directory: i64, kind: Kind) -> Result<u64, StoreError>;

    /// One page of the resources a query selects, and how many it selects in all.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn query(&self, query: &Query<'_>) -> Result<Page, StoreError>;

    /// Applies `writes` in order, each one all or nothing, and returns each one's outcome;
    /// a write that fails leaves no trace and the others still apply. SQLite commits the
    /// whole batch at once (one transaction; each write refused before it writes anything),
    /// so that a thousand small writes cost one commit; PostgreSQL likewise, with a
    /// savepoint for writes it can refuse later; the default (the in-memory store) applies
    /// them one by one.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the batch stops: SQLite keeps none of it, the default
    /// keeps the writes before the failure.
    fn batch(&self, writes: Vec<Write>) -> Result<Vec<WriteOutcome>, StoreError> {
        let mut out = Vec::with_capacity(writes.len());
        for w in writes {
            let outcome = match w {
                Write::Create(n) => self.create(n).map(Some),
                Write::Update {
                    directory,
                    kind,
                    id,
                    expected_version,
                    change,
                } => self
                    .update(directory, kind, &id, expected_version, change)
                    .map(Some),
                Write::Delete {
                    directory,
                    kind,
                    id,
                    expected_version,
                } => self
                    .delete(directory, kind, &id, expected_version)
                    .map(|()| None),
            };
            match outcome {
                Err(e @ StoreError::Backend(_)) => return Err(e),
                other => out.push(other),
            }
        }
        Ok(out)
    }

    /// Adds members to a group; members already there are left alone. Bumps the group's
    /// version once when anything changed, and returns the group.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown group or member (members must be in the same
    /// directory), [`StoreError::VersionMismatch`], [`StoreError::Invalid`] for a group made
    /// a member of itself.
    fn add_members(
        &self,
        directory: i64,
        group: &str,
        expected_version: Option<u64>,
        members: &[Member],
    ) -> Result<Resource, StoreError> {
        let change = Change {
            add_members: members.to_vec(),
            ..Change::default()
        };
        self.update(directory, Kind::Group, group, expected_version, change)
    }

    /// Removes members from a group; absent ones are ignored. Bumps the version once when
    /// anything changed, and returns the group.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::VersionMismatch`].
    fn remove_members(
        &self,
        directory: i64,
        group: &str,
        expected_version: Option<u64>,
        members: &[Member],
    ) -> Result<Resource, StoreError> {
        let change = Change {
            remove_members: members.to_vec(),
            ..Change::default()
        };
        self.update(directory, Kind::Group, group, expected_version, change)
    }

    /// Adds the members `add` to a group, then takes the members `remove` out of it, all by
    /// id, whatever their kind, in one transaction: what a membership PATCH asks. Members
    /// already there and absent ones to remove are left alone; the version goes up once when
    /// anything changed, and is returned.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown group; [`StoreError::Invalid`] (nothing
    /// changed) for a member to add that is no user or group of `directory`, or the group
    /// itself.
    fn change_members(
        &self,
        directory: i64,
        group: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<u64, StoreError> {
        let mut change = Change::default();
        for id in add {
            let kind = member_kind(self, directory, id)?.ok_or_else(|| not_a_member(id))?;
            change.add_members.push(Member {
                id: id.clone(),
                kind,
            });
        }
        for id in remove {
            if let Some(kind) = member_kind(self, directory, id)? {
                change.remove_members.push(Member {
                    id: id.clone(),
                    kind,
                });
            }
        }
        Ok(self
            .update(directory, Kind::Group, group, None, change)?
            .version)
    }

    /// A group's direct members, in `id` order.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn members(&self, directory: i64, group: &str) -> Result<Vec<Member>, StoreError>;

    /// The direct members of every group of `directory` that has any, by group `id`, each
    /// list in `id` order: what a sync plans against, in one statement rather than one per
    /// group.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn all_members(
        &self,
        directory: i64,
    ) -> Result<std::collections::HashMap<String, Vec<Member>>, StoreError> {
        let mut out = std::collections::HashMap::new();
        for g in self.list(directory, Kind::Group)? {
            let members = self.members(directory, &g.id)?;
            if !members.is_empty() {
                out.insert(g.id, members);
            }
        }
        Ok(out)
    }

    /// The groups that have `member` as a direct member, in `id` order.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn groups_of(&self, directory: i64, member: &str) -> Result<Vec<String>, StoreError>;

    /// A user and the groups it is a direct member of (as [`Store::get`] then
    /// [`Store::groups_of`]), in one read where the backend can: what a GET of a user needs.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn get_user_with_groups(
        &self,
        directory: i64,
        id: &str,
    ) -> Result<Option<(Resource, Vec<String>)>, StoreError> {
        let Some(user) = self.get(directory, Kind::User, id)? else {
            return Ok(None);
        };
        Ok(Some((user, self.groups_of(directory, id)?)))
    }

    /// The groups of each of `members` (as [`Store::groups_of`]), in the order given: one
    /// round trip for a page of users.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn groups_of_each(
        &self,
        directory: i64,
        members: &[&str],
    ) -> Result<Vec<Vec<String>>, StoreError> {
        members
            .iter()
            .map(|m| self.groups_of(directory, m))
            .collect()
    }

    /// The kept password hash of user `id` in `directory`, if it has one.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn password_hash(&self, directory: i64, id: &str) -> Result<Option<PasswordHash>, StoreError>;

    /// Up to `limit` events with a sequence number above `after`, in order.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError>;

    /// Deletes the users of `directory` that have been inactive for longer than its
    /// retention, as of `now`; returns how many.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown directory.
    fn purge_inactive(&self, directory: i64, now: DateTime) -> Result<u64, StoreError>;

    /// Stores the hash of a new token for `directory`; several may be valid at once, so that
    /// a token can be rotated without downtime.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown directory.
    fn add_token(&self, directory: i64, hash: [u8; 32]) -> Result<StoredToken, StoreError>;

    /// The valid tokens of `directory`, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn tokens(&self, directory: i64) -> Result<Vec<StoredToken>, StoreError>;

    /// Revokes token `id` of `directory`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the directory has no such token.
    fn revoke_token(&self, directory: i64, id: i64) -> Result<(), StoreError>;

    /// Records a finished sync run of `run.directory` (its `id` is assigned here), and
    /// forgets the directory's runs older than its newest [`KEPT_RUNS`].
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown directory.
    fn add_run(&self, run: SyncRun) -> Result<SyncRun, StoreError>;

    /// The last `limit` sync runs of `directory`, newest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn runs(&self, directory: i64, limit: usize) -> Result<Vec<SyncRun>, StoreError>;

    /// Active (licensed) and inactive user counts of `directory`.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn user_counts(&self, directory: i64) -> Result<UserCounts, StoreError>;

    /// Takes the lock that lets one sync of `directory` (by name) run at a time across
    /// every process using this store; `None` when another sync holds it. Dropping the
    /// lock releases it, and so does the holder's process dying.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the lock cannot be asked for.
    fn try_lock_sync(&self, directory: &str) -> Result<Option<SyncLock>, StoreError>;

    /// Waits until the change feed has an event after `after`, or `timeout` passes;
    /// returns whether it has one. A reader follows the feed with this and
    /// [`Store::events_after`] instead of polling. This default checks every 50 ms; the
    /// PostgreSQL store is woken by `NOTIFY` as the writing transaction commits.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    fn wait_for_events(&self, after: u64, timeout: Duration) -> Result<bool, StoreError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if !self.events_after(after, 1)?.is_empty() {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

/// A stable 64-bit hash (FNV-1a) of a directory name: the same on every node and in every
/// version, for keys and seeds that processes must agree on.
pub fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Held while one sync of a directory runs (see [`Store::try_lock_sync`]).
pub struct SyncLock {
    /// Whatever keeps the lock taken: a locked file, a database session, a set entry.
    held: Box<dyn HeldLock>,
}

/// What keeps a [`SyncLock`] taken, and whether it still does.
pub(crate) trait HeldLock: Send + Sync {
    /// `Err` (saying why) once the lock is no longer held. A lock this process holds
    /// until it drops it (a locked file, a set entry) cannot be lost.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

impl HeldLock for std::fs::File {}

impl SyncLock {
    pub(crate) fn new(held: impl HeldLock + 'static) -> Self {
        Self {
            held: Box::new(held),
        }
    }

    /// Whether the lock is still held. A lock kept by a database session is lost when the
    /// database ends that session (an administrator's `pg_terminate_backend`, a failover,
    /// a network cut): another process may then take it and sync the same directory, so a
    /// sync checks before each batch of writes and stops when it is lost.
    ///
    /// # Errors
    /// [`StoreError::Backend`] saying why the lock is lost.
    pub fn check(&self) -> Result<(), StoreError> {
        self.held
            .check()
            .map_err(|why| StoreError::Backend(format!("the sync lock was lost: {why}")))
    }
}

#[cfg(test)]
impl SyncLock {
    /// A lock that its database lets go of after `held_for` checks.
    pub(crate) fn lost_after(held_for: usize) -> Self {
        struct LostAfter(usize, std::sync::atomic::AtomicUsize);
        impl HeldLock for LostAfter {
            fn check(&self) -> Result<(), String> {
                let checks = self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if checks < self.0 {
                    Ok(())
                } else {
                    Err("its session ended".into())
                }
            }
        }
        Self::new(LostAfter(held_for, 0.into()))
    }
}

impl fmt::Debug for SyncLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SyncLock")
    }
}

/// Sync locks that only this process sees: enough for a store no other process can open
/// (in memory).
#[derive(Debug, Default, Clone)]
pub(crate) struct LocalSyncLocks(Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

impl LocalSyncLocks {
    pub(crate) fn try_lock(&self, directory: &str) -> Result<Option<SyncLock>, StoreError> {
        check_directory_name(directory)?;
        let mut held = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !held.insert(directory.to_owned()) {
            return Ok(None);
        }
        Ok(Some(SyncLock::new(LocalSyncLock {
            locks: self.clone(),
            directory: directory.to_owned(),
        })))
    }
}

struct LocalSyncLock {
    locks: LocalSyncLocks,
    directory: String,
}

impl HeldLock for LocalSyncLock {}

impl Drop for LocalSyncLock {
    fn drop(&mut self) {
        self.locks
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.directory);
    }
}

/// Whether a store location names a database server (a PostgreSQL URL) rather than a file.
pub fn is_server_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// `location` as it may be shown (in errors, logs, a `repr`): a URL's password, in its
/// user part or as a `password=` parameter, replaced by `***`.
///
/// ```
/// use usersync_core::store::shown_location;
/// assert_eq!(
///     shown_location("postgres://app:s3cret@db:5432/users?sslmode=require&password=x"),
///     "postgres://app:***@db:5432/users?sslmode=require&password=***"
/// );
/// assert_eq!(shown_location("/var/lib/usersync.db"), "/var/lib/usersync.db");
/// ```
pub fn shown_location(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_owned();
    };
    let (authority, tail) = rest
        .find(['/', '?'])
        .map_or((rest, ""), |i| rest.split_at(i));
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let mut shown = format!("{scheme}://{authority}{path}");
    if tail.contains('?') {
        let parameters: Vec<&str> = query
            .split('&')
            .map(|p| {
                if p.starts_with("password=") {
                    "password=***"
                } else {
                    p
                }
            })
            .collect();
        shown.push('?');
        shown.push_str(&parameters.join("&"));
    }
    shown
}

/// Opens the store at `location`: a PostgreSQL URL (`postgres://…` or `postgresql://…`), or
/// the path of an SQLite database file (created when missing), as every surface's `--db`
/// takes it.
///
/// # Errors
/// [`StoreError::Backend`] when the database cannot be opened or reached, or a PostgreSQL
/// URL is given to a build without the `postgres` feature.
#[cfg(feature = "sqlite")]
pub fn open(location: &str, clock: Clock) -> Result<Arc<dyn Store>, StoreError> {
    if is_server_url(location) {
        #[cfg(feature = "postgres")]
        return Ok(Arc::new(postgres::PostgresStore::open(location, clock)?));
        #[cfg(not(feature = "postgres"))]
        return Err(StoreError::Backend(
            "this build has no PostgreSQL store (feature `postgres`)".into(),
        ));
    }
    Ok(Arc::new(sqlite::SqliteStore::open(
        std::path::Path::new(location),
        clock,
    )?))
}

/// Every directory as the command line and the bindings list it: name, kind, endpoint, user
/// counts and settings (the keys of [`NewDirectory::from_options`]), as JSON objects.
///
/// # Errors
/// [`StoreError::Backend`].
pub fn directory_summaries(store: &dyn Store) -> Result<Vec<Value>, StoreError> {
    let mut rows = Vec::new();
    for d in store.directories()? {
        let counts = store.user_counts(d.id)?;
        rows.push(serde_json::json!({
            "name": d.name,
            "kind": d.kind.as_str(),
            "endpoint": format!("/scim/v2/{}", d.name),
            "activeUsers": counts.active,
            "inactiveUsers": counts.inactive,
            "retentionDays": d.retention_days,
            "userNameScope": d.user_name_scope.as_str(),
            "keepPasswordHashes": d.keep_password_hashes,
            "strict": d.strict,
        }));
    }
    Ok(rows)
}

/// Deletes the users inactive for longer than their directory's retention, as of `now`, in
/// every directory (or only the one named `only`): what keeps a deactivated user no longer
/// than its directory says. `usersync serve` runs it hourly, `usersync sync` after each run
/// into the local store, `usersync directory purge` (or a binding) when asked. Returns each
/// directory that purged users, with how many; directories without inactive users are not
/// written to.
///
/// # Errors
/// [`StoreError::NotFound`] for an unknown `only`; [`StoreError::Backend`].
pub fn purge_expired(
    store: &dyn Store,
    now: DateTime,
    only: Option<&str>,
) -> Result<Vec<(String, u64)>, StoreError> {
    let directories = match only {
        Some(name) => vec![store.directory(name)?.ok_or_else(|| StoreError::NotFound {
            what: format!("directory `{name}`"),
        })?],
        None => store.directories()?,
    };
    let mut purged = Vec::new();
    for d in directories {
        if store.user_counts(d.id)?.inactive == 0 {
            continue;
        }
        let n = store.purge_inactive(d.id, now)?;
        if n > 0 {
            purged.push((d.name, n));
        }
    }
    Ok(purged)
}

/// Up to `limit` change-feed events after sequence number `after`, as the C and Python
/// bindings hand them out: `{"seq", "directory" (its name), "type" (`User`/`Group`), "id",
/// "event", "version", "time"}`, in sequence order.
///
/// # Errors
/// [`StoreError::Backend`].
pub fn event_feed(store: &dyn Store, after: u64, limit: usize) -> Result<Vec<Value>, StoreError> {
    let events = store.events_after(after, limit)?;
    let names: std::collections::HashMap<i64, String> = store
        .directories()?
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect();
    Ok(events
        .iter()
        .map(|e| {
            serde_json::json!({
                "seq": e.seq,
                "directory": names.get(&e.directory),
                "type": e.kind.as_str(),
                "id": e.id,
                "event": e.event.as_str(),
                "version": e.version,
                "time": e.time.to_string(),
            })
        })
        .collect())
}

impl SyncRun {
    /// The run as the command line and the bindings show it.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "started": self.started.to_string(),
            "finished": self.finished.to_string(),
            "outcome": self.outcome,
            "report": self.report,
        })
    }
}

/// Checks a directory name: it becomes a URL path segment.
pub(crate) fn check_directory_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "directory name `{name}`: use 1 to 64 letters, digits, `-`, `_` or `.`"
        )))
    }
}

/// Checks a new resource's id: it becomes a URL path segment, and the SQL stores fold it
/// as ASCII. Ids are made by usersync (UUIDs); this guards the Rust API.
pub(crate) fn check_resource_id(id: &str) -> Result<(), StoreError> {
    let ok =
        !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "resource id `{}`: use 1 to 255 printable ASCII characters other than `/`",
            id.chars().take(64).collect::<String>()
        )))
    }
}

/// The error for a group given itself as a member.
pub(crate) fn contains_itself(group: &str) -> StoreError {
    StoreError::Invalid(format!("member: group `{group}` cannot contain itself"))
}

/// The error for a member to add that is no user or group of the directory.
pub(crate) fn not_a_member(id: &str) -> StoreError {
    StoreError::Invalid(format!(
        "member `{id}` is no user or group of this directory"
    ))
}

/// Refuses a password change for a group, or for a user of a directory that does not keep
/// password hashes (whatever a caller sends, such a directory never holds one).
pub(crate) fn check_password_change(kind: Kind, keeps: bool) -> Result<(), StoreError> {
    if kind != Kind::User {
        return Err(StoreError::Invalid(
            "password: only users have passwords".into(),
        ));
    }
    if !keeps {
        return Err(StoreError::Invalid(
            "password: this directory does not keep password hashes".into(),
        ));
    }
    Ok(())
}

/// Whether `r` is still at the version the caller expects (any version when `None`).
pub(crate) fn check_version(r: &Resource, expected: Option<u64>) -> Result<(), StoreError> {
    match expected {
        Some(e) if e != r.version => Err(StoreError::VersionMismatch {
            expected: e,
            actual: r.version,
        }),
        _ => Ok(()),
    }
}

/// As [`check_version`], and whether `r` still holds the content `change` was computed
/// from (see [`Change::unless_changed`]).
pub(crate) fn check_update(
    r: &Resource,
    expected: Option<u64>,
    change: &Change,
) -> Result<(), StoreError> {
    check_version(r, expected)?;
    match &change.unless_changed {
        Some(c) if r.version != c.version && !c.is_held_by(r) => Err(StoreError::VersionMismatch {
            expected: c.version,
            actual: r.version,
        }),
        _ => Ok(()),
    }
}

/// Since when a user is inactive after a change that leaves it `active` or not: the first
/// deactivation counts, a reactivation clears it.
/// A stored resource kind (`User`, `Group`), as the database backends keep it.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn kind_from(s: &str) -> Result<Kind, StoreError> {
    match s {
        "User" => Ok(Kind::User),
        "Group" => Ok(Kind::Group),
        other => Err(StoreError::Backend(format!(
            "unknown resource kind `{other}` in the database"
        ))),
    }
}

/// A stored event kind (`created`, `updated`, `deleted`).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn event_from(s: &str) -> Result<EventKind, StoreError> {
    [EventKind::Created, EventKind::Updated, EventKind::Deleted]
        .into_iter()
        .find(|e| e.as_str() == s)
        .ok_or_else(|| StoreError::Backend(format!("unknown event `{s}`")))
}

/// A member's groups as a backend reads them beside its row: a JSON array of ids.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn groups_from(json: &str, member: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Backend(format!("groups of `{member}`: {e}")))
}

/// What `id` names in `directory`, as a member: a user, a group, or nothing.
///
/// # Errors
/// [`StoreError::Backend`].
pub(crate) fn member_kind<S: Store + ?Sized>(
    store: &S,
    directory: i64,
    id: &str,
) -> Result<Option<Kind>, StoreError> {
    for kind in [Kind::User, Kind::Group] {
        if store.get(directory, kind, id)?.is_some() {
            return Ok(Some(kind));
        }
    }
    Ok(None)
}

/// A stored time.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn time_from(s: &str) -> Result<DateTime, StoreError> {
    DateTime::parse(s).map_err(|e| StoreError::Backend(e.to_string()))
}

/// Refuses membership changes to a user before anything is changed.
pub(crate) fn check_member_change(kind: Kind, change: &Change) -> Result<(), StoreError> {
    let touches_members = change
        .replacement
        .as_ref()
        .is_some_and(|n| n.members.is_some())
        || !change.add_members.is_empty()
        || !change.remove_members.is_empty();
    if touches_members && kind != Kind::Group {
        return Err(StoreError::Invalid(
            "members: only groups have members".into(),
        ));
    }
    Ok(())
}

/// Gives `r` the attributes of replacement `n` at `now` (its members are the backend's).
pub(crate) fn apply_replacement(r: &mut Resource, n: &Replacement, now: DateTime) {
    let active = n.active || r.kind == Kind::Group;
    r.inactive_since = inactive_since(active, r.inactive_since, now);
    r.external_id = n.external_id.clone();
    r.name = n.name.clone();
    r.active = active;
    r.attributes = n.attributes.clone();
}

pub(crate) fn inactive_since(
    active: bool,
    before: Option<DateTime>,
    now: DateTime,
) -> Option<DateTime> {
    match (active, before) {
        (true, _) => None,
        (false, Some(since)) => Some(since),
        (false, None) => Some(now),
    }
}

/// The attribute a resource's unique name is, for uniqueness errors.
pub(crate) fn name_attribute(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "userName",
        Kind::Group => "displayName",
    }
}

/// Why the create of `r` inserted nothing: its id is taken (`id_taken`), or else its name.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn create_conflict(r: Resource, id_taken: bool) -> StoreError {
    if id_taken {
        StoreError::Uniqueness {
            attribute: "id",
            value: r.id,
        }
    } else {
        StoreError::Uniqueness {
            attribute: name_attribute(r.kind),
            value: r.name,
        }
    }
}

#[cfg(test)]
mod held_attributes_tests {
    use serde_json::json;

    use super::HeldAttributes;

    /// The store's own text is taken as the attributes it is, unparsed. Text another writer
    /// made (spaces, other key order, other escapes) is not, but parses to the same
    /// attributes; text of other attributes, or no JSON object at all, is neither.
    #[test]
    fn text_is_compared_as_written_then_as_parsed() {
        let wanted = json!({"b": [1, {"c": "é"}], "a": null});
        let wanted = wanted.as_object().unwrap();
        let text = |t: &str| HeldAttributes::Text(t.to_owned());
        assert!(text(r#"{"a":null,"b":[1,{"c":"é"}]}"#).is_written_as(wanted));
        assert!(text("{}").is_written_as(&serde_json::Map::new()));
        for elsewhere in [
            r#"{ "b": [1, {"c": "\u00e9"}], "a": null }"#,
            r#"{"a":null,"b":[1,{"c":"é"}]} "#,
        ] {
            assert!(!text(elsewhere).is_written_as(wanted), "{elsewhere}");
            assert_eq!(&*text(elsewhere).to_object(), wanted, "{elsewhere}");
        }
        for other in [
            r#"{"a":null,"b":[1,{"c":"e"}]}"#,
            r#"{"a":null,"b":[1,{"c":"é"}],"d":1}"#,
            r#"{"a":null}"#,
            r#"{"a":null,"b":[1,{"c":"é"}]"#,
            "[]",
            "",
        ] {
            assert!(!text(other).is_written_as(wanted), "{other}");
            assert_ne!(&*text(other).to_object(), wanted, "{other}");
        }
        assert!(text("not json").to_object().is_empty());
    }
}
