//! One LDAP directory's sync configuration, read from TOML and checked before any connection
//! is made: every error names the key and says what is wrong with it.
//!
//! The README documents every key; `examples/openldap.toml` and
//! `examples/active-directory.toml` are complete files.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::filter::LdapFilter;
use crate::scim::path::PatchPath;
use crate::scim::schema::{Mutability, Resolved, SchemaRegistry};

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", key.as_deref().map(|k| format!("`{k}`: ")).unwrap_or_default())]
pub struct ConfigError {
    /// The key at fault (`users.filter`), when the problem is one key's.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    fn at(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            message: message.into(),
        }
    }
}

/// What kind of server a directory is: it sets the defaults of the searches and mapping,
/// and the rules the server imposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerKind {
    /// Any LDAP server (OpenLDAP, 389 Directory Server…): `inetOrgPerson` users by
    /// `entryUUID` and `uid`, `groupOfNames` groups.
    #[default]
    Ldap,
    /// Active Directory (or Samba AD): `objectGUID` anchors, `sAMAccountName`, `active` from
    /// `userAccountControl`, transport security required for a simple bind.
    ActiveDirectory,
}

impl ServerKind {
    fn user_filter(self) -> &'static str {
        match self {
            Self::Ldap => "(objectClass=inetOrgPerson)",
            Self::ActiveDirectory => "(&(objectCategory=person)(objectClass=user))",
        }
    }

    fn group_filter(self) -> &'static str {
        match self {
            Self::Ldap => "(objectClass=groupOfNames)",
            Self::ActiveDirectory => "(objectClass=group)",
        }
    }

    fn anchor(self) -> &'static str {
        match self {
            Self::Ldap => "entryUUID",
            Self::ActiveDirectory => "objectGUID",
        }
    }

    fn user_name(self) -> &'static str {
        match self {
            Self::Ldap => "uid",
            Self::ActiveDirectory => "sAMAccountName",
        }
    }
}

/// Whether an anchor attribute holds binary values when the configuration does not say:
/// AD's `objectGUID` does.
fn binary_by_default(anchor: &str) -> bool {
    anchor.eq_ignore_ascii_case("objectGUID")
}

/// A checked sync configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SyncConfig {
    /// The usersync directory (kind `ldap`) the users and groups go to.
    pub directory: String,
    /// The kind of server.
    pub kind: ServerKind,
    /// How to reach and authenticate to the server.
    pub connection: Connection,
    /// Which entries are users, and how they map to SCIM.
    pub users: UserSearch,
    /// Which entries are groups; no groups are imported without it.
    pub groups: Option<GroupSearch>,
    /// What removal means and when a plan is too destructive to apply unasked.
    pub policy: Policy,
    /// When `usersync sync --daemon` runs.
    pub schedule: Schedule,
    /// Incremental runs between full ones; `None`: every run reads everything.
    pub incremental: Option<Incremental>,
}

/// Incremental runs: only entries changed since the last successful run are read in full.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Incremental {
    /// The attribute that tells when an entry last changed (`modifyTimestamp`).
    pub attribute: String,
    /// Seconds re-read before the last run's start: clock skew and replication lag.
    pub overlap_seconds: u64,
    /// A full run at least this often, in seconds.
    pub full_every_seconds: u64,
}

/// When syncs run in daemon mode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Schedule {
    /// Seconds from the start of one run to the start of the next (without `cron`).
    pub interval_seconds: u64,
    /// Runs start at the times of this cron expression (UTC) instead of every interval.
    pub cron: Option<super::schedule::CronExpression>,
    /// Seconds before the first retry after a failed run; each further failure doubles it,
    /// up to the interval.
    pub retry_seconds: u64,
}

/// Transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Plain LDAP (only for tests and trusted networks).
    None,
    /// `ldap://` upgraded with StartTLS.
    StartTls,
    /// `ldaps://`.
    Ldaps,
}

/// How to reach the server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Connection {
    /// Tried in order until one answers.
    pub urls: Vec<String>,
    /// Transport security; `ldaps` when the URLs say `ldaps://`.
    pub tls: Tls,
    /// The CA certificates (PEM) that sign the server's certificate; the system roots when
    /// `None`.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification: never in production; logged loudly.
    pub insecure_skip_verify: bool,
    /// The DN to bind as (with [`Connection::bind_password`]); anonymous when `None`.
    pub bind_dn: Option<String>,
    /// Where the bind password comes from (never the file itself, never the command line).
    pub bind_password: Option<Secret>,
    /// Seconds to wait for a connection.
    pub connect_timeout_seconds: u64,
    /// Seconds to wait for each operation.
    pub operation_timeout_seconds: u64,
    /// Entries per page of a paged search (RFC 2696).
    pub page_size: u32,
}

/// Where a secret is read from when it is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// An environment variable.
    Env(String),
    /// A file (its first line).
    File(PathBuf),
}

impl Secret {
    /// Reads the secret.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable or file when it is missing or empty.
    pub fn read(&self) -> Result<String, ConfigError> {
        let (key, value) = match self {
            Self::Env(var) => (
                "connection.bind_password_env",
                std::env::var(var).map_err(|_| {
                    ConfigError::at(
                        "connection.bind_password_env",
                        format!("the environment variable `{var}` is not set"),
                    )
                })?,
            ),
            Self::File(path) => (
                "connection.bind_password_file",
                std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::at(
                        "connection.bind_password_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?,
            ),
        };
        let value = value.lines().next().unwrap_or_default().to_owned();
        if value.is_empty() {
            return Err(ConfigError::at(key, "the password is empty"));
        }
        Ok(value)
    }
}

/// Search scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The base entry only.
    Base,
    /// Its children.
    One,
    /// The whole subtree.
    Sub,
}

/// Where users are and how they become SCIM users.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UserSearch {
    /// The search base DN.
    pub base: String,
    /// The search scope.
    pub scope: Scope,
    /// Which entries are users.
    pub filter: LdapFilter,
    /// Only users that are members (directly or through nested groups) of one of these
    /// group DNs; every user when empty.
    pub only_members_of: Vec<String>,
    /// Who works out [`UserSearch::only_members_of`].
    pub only_members_of_via: ScopeVia,
    /// The attribute that identifies an entry for good (survives renames and moves).
    pub anchor: String,
    /// Whether the anchor is binary (AD `objectGUID`): rendered as a UUID.
    pub anchor_is_binary: bool,
    /// The attribute that becomes `userName`.
    pub user_name: String,
    /// `active` from the source; every user is active when `None`.
    pub active: Option<Source>,
    /// SCIM attribute path → where its value comes from.
    pub attributes: Vec<(PatchPath, Source)>,
}

/// Who works out which users are members of the `only_members_of` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeVia {
    /// usersync, from the groups it reads (nesting expanded client-side; any server).
    #[default]
    Groups,
    /// The server, through AD's transitive matching rule in the user search
    /// (`memberOf:1.2.840.113556.1.4.1941:=<group>`): no `[groups]` needed.
    MatchingRule,
}

/// Where groups are and how members are listed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GroupSearch {
    /// The search base DN.
    pub base: String,
    /// The search scope.
    pub scope: Scope,
    /// Which entries are groups.
    pub filter: LdapFilter,
    /// The attribute that identifies a group for good.
    pub anchor: String,
    /// Whether the anchor is binary.
    pub anchor_is_binary: bool,
    /// The attribute that becomes `displayName`.
    pub name: String,
    /// How membership is written in the directory.
    pub membership: Membership,
    /// Nested groups: their users counted as members (`flatten`), or the groups themselves
    /// as members (`keep`).
    pub nested: Nested,
    /// AD: a user is a member of its primary group (`primaryGroupID`, the RID of the
    /// group's `objectSid`; Domain Users for most), which `member` never lists.
    pub primary_group: bool,
}

/// How membership is written in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Membership {
    /// Groups list member DNs in `member` (groupOfNames, AD).
    Member,
    /// Groups list member DNs in `uniqueMember` (groupOfUniqueNames).
    UniqueMember,
    /// Groups list member user names in `memberUid` (posixGroup).
    MemberUid,
    /// Users list their groups' DNs in `memberOf`.
    MemberOf,
}

/// What nested groups mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Nested {
    /// A group's members include the users of the groups inside it.
    Flatten,
    /// Groups inside a group are its members.
    Keep,
}

/// Where a SCIM attribute's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// An LDAP attribute's value(s), transformed.
    Attribute {
        /// The LDAP attribute.
        name: String,
        /// What to do to the value.
        transform: Transform,
    },
    /// Text with `{attribute}` placeholders; empty when a placeholder has no value.
    Template(Vec<Piece>),
    /// The same value for everyone.
    Constant(serde_json::Value),
}

/// A part of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// The first value of an attribute.
    Attribute(String),
}

/// What to do to an attribute's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// As it is.
    None,
    /// Lower-cased.
    Lowercase,
    /// Upper-cased.
    Uppercase,
    /// `true` for TRUE, true, yes, 1 (any case); `false` otherwise.
    Boolean,
    /// The opposite of `Boolean` (for "disabled" or "locked" flags).
    NotBoolean,
    /// `true` when bit `n` (a mask such as 2) of an integer is set.
    BitSet(u64),
    /// `true` when bit `n` of an integer is clear (AD: enabled when 0x2 is clear).
    BitClear(u64),
}

/// What removal means and when a plan is blocked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Policy {
    /// What happens to a user that left the source or the scope.
    pub removal: Removal,
    /// A plan that deactivates or deletes more users than this is blocked.
    pub max_deletions: u64,
    /// … or more than this percentage of the directory's users.
    pub max_deletion_percent: f64,
    /// A plan that removes more than this percentage of one group's members is blocked.
    pub max_member_removal_percent: f64,
    /// A plan that deletes more groups than this is blocked.
    pub max_group_deletions: u64,
    /// … or more than this percentage of the directory's groups.
    pub max_group_deletion_percent: f64,
    /// A `userName` another directory already owns: skip the user and report it, or fail.
    pub user_name_conflict: Conflict,
}

/// What removal means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Removal {
    /// Deactivate; the directory's retention purges later.
    Deactivate,
    /// Delete at once.
    Delete,
}

/// What to do about a `userName` owned by another directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Conflict {
    /// Skip the user and report the conflict.
    Skip,
    /// Fail the run.
    Fail,
}

// ---- The TOML as written ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    directory: String,
    #[serde(default)]
    kind: ServerKind,
    connection: RawConnection,
    users: RawUsers,
    groups: Option<RawGroups>,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    schedule: RawSchedule,
    incremental: Option<RawIncremental>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIncremental {
    #[serde(default)]
    enabled: bool,
    attribute: Option<String>,
    overlap: Option<String>,
    full_every: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    interval: Option<String>,
    cron: Option<String>,
    retry: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    urls: Vec<String>,
    tls: Option<Tls>,
    ca_file: Option<PathBuf>,
    #[serde(default)]
    insecure_skip_verify: bool,
    bind_dn: Option<String>,
    bind_password_env: Option<String>,
    bind_password_file: Option<PathBuf>,
    connect_timeout_seconds: Option<u64>,
    operation_timeout_seconds: Option<u64>,
    page_size: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUsers {
    base: String,
    scope: Option<Scope>,
    filter: Option<String>,
    #[serde(default)]
    only_members_of: Vec<String>,
    #[serde(default)]
    only_members_of_via: ScopeVia,
    anchor: Option<String>,
    anchor_is_binary: Option<bool>,
    user_name: Option<String>,
    active: Option<RawSource>,
    #[serde(default)]
    attributes: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroups {
    base: String,
    scope: Option<Scope>,
    filter: Option<String>,
    anchor: Option<String>,
    anchor_is_binary: Option<bool>,
    name: Option<String>,
    membership: Option<Membership>,
    nested: Option<Nested>,
    #[serde(default)]
    primary_group: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    removal: Option<Removal>,
    max_deletions: Option<u64>,
    max_deletion_percent: Option<f64>,
    max_member_removal_percent: Option<f64>,
    max_group_deletions: Option<u64>,
    max_group_deletion_percent: Option<f64>,
    user_name_conflict: Option<Conflict>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSource {
    Text(String),
    Table(RawSourceTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSourceTable {
    attribute: Option<String>,
    transform: Option<String>,
    bit_set: Option<u64>,
    bit_clear: Option<u64>,
    template: Option<String>,
    constant: Option<toml::Value>,
}

impl SyncConfig {
    /// Reads and checks a configuration file.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file or the key at fault.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            key: None,
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        Self::from_toml(&text)
    }

    /// Reads and checks a configuration from TOML text.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the key at fault, or the line and column of a TOML error.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        raw.check()
    }

    /// Reads and checks a configuration given as data with the file's keys and tables (the
    /// Python binding's dicts).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the key at fault.
    pub fn from_json(value: serde_json::Value) -> Result<Self, ConfigError> {
        let raw: RawConfig = serde_json::from_value(value).map_err(|e| ConfigError {
            key: None,
            message: e.to_string(),
        })?;
        raw.check()
    }
}

/// A TOML error as `line L, column C: message`, with the key when serde knows it.
fn toml_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim_end().to_owned();
    let at = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("line {line}, column {column}: ")
    });
    ConfigError {
        key: None,
        message: format!("{}{message}", at.unwrap_or_default()),
    }
}

/// The longest interval or retry delay of a schedule: past it, the daemon would in effect
/// never run.
const LONGEST_SCHEDULE_DAYS: u64 = 3650;

/// A duration of the schedule: at most ten years.
fn schedule_duration(key: &str, text: &str) -> Result<u64, ConfigError> {
    match duration(key, text)? {
        seconds if seconds <= LONGEST_SCHEDULE_DAYS * 86_400 => Ok(seconds),
        _ => Err(ConfigError::at(
            key,
            format!("`{text}` is longer than {LONGEST_SCHEDULE_DAYS} days"),
        )),
    }
}

/// `90s`, `15m`, `1h`, `1d`: a whole number and a unit.
fn duration(key: &str, text: &str) -> Result<u64, ConfigError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match n.parse::<u64>() {
        Ok(n) if n > 0 && scale > 0 => n
            .checked_mul(scale)
            .ok_or_else(|| ConfigError::at(key, format!("`{text}` is too long"))),
        _ => Err(ConfigError::at(
            key,
            format!(
                "`{text}` is not a duration: write a whole number and s, m, h or d, such as `15m`"
            ),
        )),
    }
}

fn filter_at(key: &str, text: Option<&str>, default: &str) -> Result<LdapFilter, ConfigError> {
    LdapFilter::parse(text.unwrap_or(default)).map_err(|e| ConfigError::at(key, e.to_string()))
}

fn attribute_name(key: &str, name: &str) -> Result<String, ConfigError> {
    // The attribute-description syntax of filters: a name or OID, then `;options`.
    match LdapFilter::parse(&format!("({name}=*)")) {
        Ok(LdapFilter::Present { .. }) => Ok(name.to_owned()),
        _ => Err(ConfigError::at(
            key,
            format!("`{name}` is not an LDAP attribute name"),
        )),
    }
}

fn dn(key: &str, text: &str) -> Result<String, ConfigError> {
    if text.trim().is_empty() || !text.contains('=') {
        return Err(ConfigError::at(
            key,
            format!("`{text}` is not a DN (expected a form like `ou=people,dc=example,dc=com`)"),
        ));
    }
    Ok(text.to_owned())
}

impl RawConfig {
    fn check(self) -> Result<SyncConfig, ConfigError> {
        crate::store::check_directory_name(&self.directory)
            .map_err(|e| ConfigError::at("directory", e.to_string()))?;
        let connection = self.connection.check()?;
        if self.kind == ServerKind::ActiveDirectory
            && connection.tls == Tls::None
            && connection.bind_dn.is_some()
        {
            return Err(ConfigError::at(
                "connection.tls",
                "Active Directory refuses a simple bind without transport security: use ldaps:// URLs or tls = \"starttls\"",
            ));
        }
        let users = self.users.check(self.kind)?;
        let groups = self.groups.map(|g| g.check(self.kind)).transpose()?;
        if users.only_members_of_via == ScopeVia::MatchingRule
            && self.kind != ServerKind::ActiveDirectory
        {
            return Err(ConfigError::at(
                "users.only_members_of_via",
                "`matching_rule` is Active Directory's (1.2.840.113556.1.4.1941): set kind = \"active_directory\", or use `groups`",
            ));
        }
        if !users.only_members_of.is_empty()
            && users.only_members_of_via == ScopeVia::Groups
            && groups.is_none()
        {
            return Err(ConfigError::at(
                "users.only_members_of",
                "needs a [groups] section to read the groups' members",
            ));
        }
        let policy = self.policy.check()?;
        let interval_seconds = match &self.schedule.interval {
            Some(_) if self.schedule.cron.is_some() => {
                return Err(ConfigError::at(
                    "schedule.cron",
                    "give either an interval or a cron expression, not both",
                ));
            }
            Some(text) => schedule_duration("schedule.interval", text)?,
            None => 3600,
        };
        let cron = self
            .schedule
            .cron
            .as_deref()
            .map(super::schedule::CronExpression::parse)
            .transpose()
            .map_err(|e| ConfigError::at("schedule.cron", e))?;
        let retry_seconds = match &self.schedule.retry {
            Some(text) => schedule_duration("schedule.retry", text)?,
            None => 60.min(interval_seconds),
        };
        // Checked when off too: a typo in a section kept for later is found now.
        let incremental = match self.incremental {
            Some(i) => Some((
                i.enabled,
                Incremental {
                    attribute: match i.attribute {
                        Some(a) => attribute_name("incremental.attribute", &a)?,
                        None => "modifyTimestamp".into(),
                    },
                    overlap_seconds: match &i.overlap {
                        Some(text) => duration("incremental.overlap", text)?,
                        None => 600,
                    },
                    full_every_seconds: match &i.full_every {
                        Some(text) => duration("incremental.full_every", text)?,
                        None => 86_400,
                    },
                },
            )),
            None => None,
        }
        .and_then(|(enabled, i)| enabled.then_some(i));
        Ok(SyncConfig {
            directory: self.directory,
            kind: self.kind,
            connection,
            users,
            groups,
            policy,
            incremental,
            schedule: Schedule {
                interval_seconds,
                cron,
                retry_seconds,
            },
        })
    }
}

impl RawConnection {
    fn check(self) -> Result<Connection, ConfigError> {
        if self.urls.is_empty() {
            return Err(ConfigError::at(
                "connection.urls",
                "list at least one server URL",
            ));
        }
        let mut ldaps = 0;
        for url in &self.urls {
            let rest = if let Some(r) = url.strip_prefix("ldaps://") {
                ldaps += 1;
                r
            } else if let Some(r) = url.strip_prefix("ldap://") {
                r
            } else {
                return Err(ConfigError::at(
                    "connection.urls",
                    format!("`{url}`: a server URL starts with ldap:// or ldaps://"),
                ));
            };
            if super::url::host_and_port(url).is_none() || rest.contains(' ') {
                return Err(ConfigError::at(
                    "connection.urls",
                    format!("`{url}` has no host, or a port that is not a number"),
                ));
            }
        }
        if ldaps != 0 && ldaps != self.urls.len() {
            return Err(ConfigError::at(
                "connection.urls",
                "mix of ldap:// and ldaps:// URLs: use one kind, and `tls` for StartTLS",
            ));
        }
        let tls = match (self.tls, ldaps > 0) {
            (None, true) | (Some(Tls::Ldaps), true) => Tls::Ldaps,
            (Some(Tls::Ldaps), false) => {
                return Err(ConfigError::at(
                    "connection.tls",
                    "`ldaps` needs ldaps:// URLs",
                ));
            }
            (Some(other), true) => {
                return Err(ConfigError::at(
                    "connection.tls",
                    format!("ldaps:// URLs are already TLS; `{other:?}` does not apply"),
                ));
            }
            (None, false) => Tls::StartTls,
            (Some(t), false) => t,
        };
        let bind_password = match (self.bind_password_env, self.bind_password_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::at(
                    "connection.bind_password_env",
                    "give the password either in an environment variable or in a file, not both",
                ));
            }
            (Some(var), None) if !var.is_empty() => Some(Secret::Env(var)),
            (Some(_), None) => {
                return Err(ConfigError::at(
                    "connection.bind_password_env",
                    "name the environment variable",
                ));
            }
            (None, Some(file)) => Some(Secret::File(file)),
            (None, None) => None,
        };
        let bind_dn = self
            .bind_dn
            .map(|d| dn("connection.bind_dn", &d))
            .transpose()?;
        match (&bind_dn, &bind_password) {
            (None, Some(_)) => {
                return Err(ConfigError::at(
                    "connection.bind_dn",
                    "a bind password needs the DN to bind as",
                ));
            }
            // Binding anonymously by mistake reads less, and less is not "removed".
            (Some(_), None) => {
                return Err(ConfigError::at(
                    "connection.bind_dn",
                    "give its password with bind_password_env or bind_password_file (leave bind_dn out to bind anonymously)",
                ));
            }
            _ => {}
        }
        let page_size = self.page_size.unwrap_or(500);
        // RFC 2696 sends the size as an INTEGER (0..maxInt).
        if page_size == 0 || i32::try_from(page_size).is_err() {
            return Err(ConfigError::at(
                "connection.page_size",
                "must be from 1 to 2147483647",
            ));
        }
        let positive = |key: &str, v: Option<u64>, default: u64| match v {
            Some(0) => Err(ConfigError::at(key, "must be at least 1 second")),
            v => Ok(v.unwrap_or(default)),
        };
        Ok(Connection {
            urls: self.urls,
            tls,
            ca_file: self.ca_file,
            insecure_skip_verify: self.insecure_skip_verify,
            bind_dn,
            bind_password,
            connect_timeout_seconds: positive(
                "connection.connect_timeout_seconds",
                self.connect_timeout_seconds,
                10,
            )?,
            operation_timeout_seconds: positive(
                "connection.operation_timeout_seconds",
                self.operation_timeout_seconds,
                120,
            )?,
            page_size,
        })
    }
}

impl RawUsers {
    fn check(self, kind: ServerKind) -> Result<UserSearch, ConfigError> {
        let registry = SchemaRegistry::core();
        let users = registry.resource_type("User").ok_or_else(|| ConfigError {
            key: None,
            message: "the User resource type is missing".into(),
        })?;
        let mut attributes: Vec<(PatchPath, Source)> = Vec::new();
        for (path, value) in self.attributes {
            let key = format!("users.attributes.\"{path}\"");
            let written =
                PatchPath::parse(&path).map_err(|e| ConfigError::at(&key, e.to_string()))?;
            let resolved = users.resolve_path(&written.attr);
            let Some(parsed) = resolved
                .as_ref()
                .and_then(|resolved| canonical(&written, resolved))
            else {
                return Err(ConfigError::at(
                    &key,
                    format!("`{path}` is not an attribute of SCIM users"),
                ));
            };
            if resolved.is_some_and(|r| {
                [Some(r.attribute), r.sub_attribute]
                    .into_iter()
                    .flatten()
                    .any(|a| a.mutability == Mutability::ReadOnly)
            }) {
                return Err(ConfigError::at(
                    &key,
                    format!("`{path}` is read-only in SCIM: the server sets it"),
                ));
            }
            if parsed
                .filter
                .as_ref()
                .is_some_and(|f| super::plan::equalities(f).is_none())
            {
                return Err(ConfigError::at(
                    &key,
                    "the filter of a mapped path says which value to write: use equalities joined by `and`, such as `emails[type eq \"work\"].value`",
                ));
            }
            let name = parsed.attr.name();
            if [
                "id",
                "meta",
                "userName",
                "externalId",
                "active",
                "groups",
                "password",
            ]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
                && parsed.attr.urn().is_none()
            {
                return Err(ConfigError::at(
                    &key,
                    format!(
                        "`{name}` is not mapped here: userName comes from `users.user_name`, active from `users.active`, externalId is the anchor"
                    ),
                ));
            }
            let spelt = parsed.to_string();
            if attributes.iter().any(|(p, _)| p.to_string() == spelt) {
                return Err(ConfigError::at(
                    &key,
                    format!("another key maps `{spelt}` too: keep one"),
                ));
            }
            let raw: RawSource = value
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::at(&key, e.message().to_owned()))?;
            attributes.push((parsed, raw.check(&key)?));
        }
        Ok(UserSearch {
            base: dn("users.base", &self.base)?,
            scope: self.scope.unwrap_or(Scope::Sub),
            filter: filter_at("users.filter", self.filter.as_deref(), kind.user_filter())?,
            only_members_of: self
                .only_members_of
                .iter()
                .map(|d| dn("users.only_members_of", d))
                .collect::<Result<_, _>>()?,
            only_members_of_via: self.only_members_of_via,
            anchor_is_binary: self.anchor_is_binary.unwrap_or_else(|| {
                binary_by_default(self.anchor.as_deref().unwrap_or(kind.anchor()))
            }),
            anchor: attribute_name(
                "users.anchor",
                self.anchor.as_deref().unwrap_or(kind.anchor()),
            )?,
            user_name: attribute_name(
                "users.user_name",
                self.user_name.as_deref().unwrap_or(kind.user_name()),
            )?,
            active: match (self.active, kind) {
                (Some(a), _) => Some(a.check("users.active")?),
                // Enabled while bit 0x2 (ACCOUNTDISABLE) is clear.
                (None, ServerKind::ActiveDirectory) => Some(Source::Attribute {
                    name: "userAccountControl".into(),
                    transform: Transform::BitClear(2),
                }),
                (None, ServerKind::Ldap) => None,
            },
            attributes,
        })
    }
}

impl RawGroups {
    fn check(self, kind: ServerKind) -> Result<GroupSearch, ConfigError> {
        if self.primary_group
            && !matches!(
                self.membership,
                None | Some(Membership::Member | Membership::MemberOf)
            )
        {
            return Err(ConfigError::at(
                "groups.primary_group",
                "primary groups are Active Directory's: use them with membership `member` or `memberOf`",
            ));
        }
        Ok(GroupSearch {
            base: dn("groups.base", &self.base)?,
            scope: self.scope.unwrap_or(Scope::Sub),
            filter: filter_at("groups.filter", self.filter.as_deref(), kind.group_filter())?,
            anchor_is_binary: self.anchor_is_binary.unwrap_or_else(|| {
                binary_by_default(self.anchor.as_deref().unwrap_or(kind.anchor()))
            }),
            anchor: attribute_name(
                "groups.anchor",
                self.anchor.as_deref().unwrap_or(kind.anchor()),
            )?,
            name: attribute_name("groups.name", self.name.as_deref().unwrap_or("cn"))?,
            membership: self.membership.unwrap_or(Membership::Member),
            nested: self.nested.unwrap_or(Nested::Flatten),
            primary_group: self.primary_group,
        })
    }
}

impl RawPolicy {
    fn check(self) -> Result<Policy, ConfigError> {
        let percent = |key: &str, v: Option<f64>, default: f64| match v {
            Some(p) if !(0.0..=100.0).contains(&p) => Err(ConfigError::at(
                key,
                format!("{p} is not a percentage (0 to 100)"),
            )),
            v => Ok(v.unwrap_or(default)),
        };
        Ok(Policy {
            removal: self.removal.unwrap_or(Removal::Deactivate),
            max_deletions: self.max_deletions.unwrap_or(500),
            max_deletion_percent: percent(
                "policy.max_deletion_percent",
                self.max_deletion_percent,
                10.0,
            )?,
            max_member_removal_percent: percent(
                "policy.max_member_removal_percent",
                self.max_member_removal_percent,
                50.0,
            )?,
            max_group_deletions: self.max_group_deletions.unwrap_or(50),
            max_group_deletion_percent: percent(
                "policy.max_group_deletion_percent",
                self.max_group_deletion_percent,
                10.0,
            )?,
            user_name_conflict: self.user_name_conflict.unwrap_or(Conflict::Skip),
        })
    }
}

/// `path` spelt as the schema spells its names (`NAME.familyname` → `name.familyName`), so
/// that two keys differing in case write one attribute, and a user mapped as the target
/// holds it compares equal. `None` when the sub-attribute after a filter is not one.
fn canonical(path: &PatchPath, resolved: &Resolved<'_>) -> Option<PatchPath> {
    let mut text = String::new();
    if resolved.in_extension {
        text.push_str(&resolved.schema.id);
        text.push(':');
    }
    text.push_str(&resolved.attribute.name);
    if let Some(sub) = resolved.sub_attribute {
        text.push('.');
        text.push_str(&sub.name);
    }
    if let Some(filter) = &path.filter {
        text.push_str(&format!("[{filter}]"));
    }
    if let Some(sub) = &path.sub_attr {
        text.push('.');
        text.push_str(&resolved.attribute.sub_attribute(sub)?.name);
    }
    PatchPath::parse(&text).ok()
}

impl RawSource {
    fn check(self, key: &str) -> Result<Source, ConfigError> {
        match self {
            Self::Text(text) if text.contains('{') => template(key, &text),
            Self::Text(name) => Ok(Source::Attribute {
                name: attribute_name(key, &name)?,
                transform: Transform::None,
            }),
            Self::Table(t) => {
                let given = [
                    t.attribute.is_some(),
                    t.template.is_some(),
                    t.constant.is_some(),
                ];
                if given.iter().filter(|g| **g).count() != 1 {
                    return Err(ConfigError::at(
                        key,
                        "give exactly one of `attribute`, `template` or `constant`",
                    ));
                }
                if let Some(text) = t.template {
                    return template(key, &text);
                }
                if let Some(value) = t.constant {
                    let json = serde_json::to_value(value)
                        .map_err(|e| ConfigError::at(key, e.to_string()))?;
                    return Ok(Source::Constant(json));
                }
                let name = attribute_name(key, t.attribute.as_deref().unwrap_or_default())?;
                let transform = match (t.transform.as_deref(), t.bit_set, t.bit_clear) {
                    (None, None, None) => Transform::None,
                    (Some("lowercase"), None, None) => Transform::Lowercase,
                    (Some("uppercase"), None, None) => Transform::Uppercase,
                    (Some("boolean"), None, None) => Transform::Boolean,
                    (Some("not_boolean"), None, None) => Transform::NotBoolean,
                    (None, Some(bit), None) => Transform::BitSet(bit),
                    (None, None, Some(bit)) => Transform::BitClear(bit),
                    (Some(other), None, None) => {
                        return Err(ConfigError::at(
                            key,
                            format!(
                                "unknown transform `{other}` (lowercase, uppercase, boolean, not_boolean)"
                            ),
                        ));
                    }
                    _ => {
                        return Err(ConfigError::at(
                            key,
                            "give one of `transform`, `bit_set` or `bit_clear`",
                        ));
                    }
                };
                Ok(Source::Attribute { name, transform })
            }
        }
    }
}

/// Parses `"{givenName} {sn}"`.
fn template(key: &str, text: &str) -> Result<Source, ConfigError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_owned()));
        }
        let Some(close) = rest[open..].find('}') else {
            return Err(ConfigError::at(key, format!("`{text}`: `{{` without `}}`")));
        };
        let name = &rest[open + 1..open + close];
        pieces.push(Piece::Attribute(attribute_name(key, name)?));
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return Err(ConfigError::at(key, format!("`{text}`: `}}` without `{{`")));
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(Source::Template(pieces))
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Base => "base",
            Self::One => "one",
            Self::Sub => "sub",
        })
    }
}

#[cfg(test)]
mod tests;
