//! A [`Store`] in PostgreSQL, for several platform nodes sharing one user base.
//!
//! Every write is one transaction. Versions are checked under a row lock (`FOR UPDATE`), so
//! two nodes writing one resource get one success and one version mismatch; uniqueness is
//! the database's own (unique indexes), so two nodes creating one `userName` get one success
//! and one 409. Change-feed events take a transaction-level advisory lock before they are
//! numbered, so sequence numbers commit in order and a reader never skips an event that a
//! slower transaction commits late.
//!
//! Text columns are `COLLATE "C"`: text is ordered byte by byte, as the other stores order
//! it, whatever the database's collation, and the indexes serve that order.
//!
//! Filters are SQL (`filter.rs`), as in the SQLite store, and so are sorts by a column and
//! the keyset that continues a sorted page; a page's users come with their groups beside
//! them. A lookup (`userName`/`displayName`, `externalId` or `id` `eq`, what identity
//! providers send most) is one statement outside any transaction when its page tells its
//! total.

use std::sync::Arc;

use postgres::error::SqlState;
use postgres::types::ToSql;
use std::collections::HashMap;

use postgres::config::SslMode;
use postgres::{Client, GenericClient, NoTls, Row, Statement, Transaction};

mod filter;
mod pool;

#[cfg(test)]
pub(crate) use pool::MAX_OPEN;

use super::query::{self, Page, Query, Start};
use super::sql::BindText;
use super::view::view;
use super::{
    Change, Clock, Directory, DirectoryKind, Event, EventKind, Kind, Member, NewDirectory,
    NewResource, PasswordChange, PasswordHash, Resource, Store, StoreError, StoredToken, SyncLock,
    SyncRun, UserCounts, UserNameScope, Write, WriteOutcome, apply_replacement,
    check_directory_name, check_member_change, check_password_change, check_update, check_version,
    contains_itself, event_from, groups_from, kind_from, name_attribute, not_a_member, time_from,
};
use crate::scim::datetime::DateTime;
use crate::scim::filter::CompareOp;
use crate::scim::filter::eval::{Literal, Node};
use crate::scim::text::fold;

/// The schema version this code writes; migrations run under an advisory lock, so two nodes
/// starting at once migrate once. Version 1, made by development builds before the first
/// release, ordered text by the database's collation; it is refused, not migrated. Version 3
/// added what filters need in SQL: `resources.attributes_keys` and `usersync_datetime`.
const SCHEMA_VERSION: i64 = 3;

/// The advisory lock key of migrations.
const MIGRATION_LOCK: i64 = 0x7573_6572_7379_6e63; // "usersync"
/// The advisory lock key that orders change-feed events (see the module's documentation).
const FEED_LOCK: i64 = 0x7573_6572_6665_6564; // "userfeed"
/// The first key of a directory's sync lock (the second is its name's hash), apart from the
/// single-key locks above.
const SYNC_LOCK: i32 = 0x7379_6e63; // "sync"

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS directories (
    id BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    retention_days BIGINT NOT NULL,
    user_name_scope TEXT NOT NULL,
    keep_password_hashes BOOLEAN NOT NULL DEFAULT false,
    strict BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS resources (
    id TEXT COLLATE "C" PRIMARY KEY,
    directory BIGINT NOT NULL REFERENCES directories(id),
    kind TEXT NOT NULL,
    external_id TEXT COLLATE "C",
    name TEXT COLLATE "C" NOT NULL,
    -- The case fold of `name`, and whom it must be unique among: 0 for users of
    -- directories with platform-wide userNames, otherwise the directory id.
    name_key TEXT COLLATE "C" NOT NULL,
    unique_scope BIGINT NOT NULL,
    active BOOLEAN NOT NULL,
    version BIGINT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    inactive_since TEXT,
    attributes JSONB NOT NULL,
    -- The attributes as filters compare them (`filter::comparable`), NULL when the same.
    attributes_keys JSONB
);
CREATE UNIQUE INDEX IF NOT EXISTS resources_unique_name ON resources(kind, unique_scope, name_key);
CREATE INDEX IF NOT EXISTS resources_by_directory ON resources(directory, kind, id);
CREATE INDEX IF NOT EXISTS resources_by_name_id ON resources(directory, kind, name_key, id);
CREATE INDEX IF NOT EXISTS resources_by_external_id ON resources(directory, kind, external_id, id);
CREATE TABLE IF NOT EXISTS memberships (
    group_id TEXT COLLATE "C" NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    member_id TEXT COLLATE "C" NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    member_kind TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX IF NOT EXISTS memberships_by_member ON memberships(member_id);
CREATE TABLE IF NOT EXISTS passwords (
    user_id TEXT COLLATE "C" PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id BIGSERIAL PRIMARY KEY,
    directory BIGINT NOT NULL REFERENCES directories(id),
    hash BYTEA NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS resource_counts (
    directory BIGINT NOT NULL,
    kind TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (directory, kind)
);
CREATE TABLE IF NOT EXISTS sync_runs (
    id BIGSERIAL PRIMARY KEY,
    directory BIGINT NOT NULL REFERENCES directories(id),
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    outcome TEXT NOT NULL,
    report JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS sync_runs_by_directory ON sync_runs(directory, id);
CREATE TABLE IF NOT EXISTS events (
    seq BIGSERIAL PRIMARY KEY,
    directory BIGINT NOT NULL,
    kind TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    event TEXT NOT NULL,
    version BIGINT NOT NULL,
    time TEXT NOT NULL
);
"#;

/// `usersync_datetime(text)`: for an `xsd:dateTime`, the key of `DateTime::sort_key` (whose
/// text order is chronological order); NULL for any other text. It follows
/// `DateTime::parse` rule for rule, and a test holds the two to the same answers.
const FUNCTIONS: &str = r#"
CREATE OR REPLACE FUNCTION usersync_datetime(t text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    p text[];
    y bigint; mo int; d int; h int; mi int; s int;
    nanos bigint := 0;
    offset_minutes bigint := 0;
    last_day int;
    yy bigint; era bigint; yoe bigint; doy bigint; days bigint; seconds bigint;
BEGIN
    p := regexp_match(t, '^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.]([0-9]+))?(?:[Zz]|([-+])([0-9]{2}):([0-9]{2}))?$');
    IF p IS NULL THEN
        RETURN NULL;
    END IF;
    y := p[1]::bigint; mo := p[2]::int; d := p[3]::int;
    h := p[4]::int; mi := p[5]::int; s := p[6]::int;
    IF p[7] IS NOT NULL THEN
        nanos := rpad(left(p[7], 9), 9, '0')::bigint;
    END IF;
    IF p[8] IS NOT NULL THEN
        IF p[9]::int > 14 OR p[10]::int > 59 THEN
            RETURN NULL;
        END IF;
        offset_minutes := p[9]::int * 60 + p[10]::int;
        IF p[8] = '-' THEN
            offset_minutes := -offset_minutes;
        END IF;
    END IF;
    IF mo < 1 OR mo > 12 THEN
        RETURN NULL;
    END IF;
    last_day := CASE
        WHEN mo = 2 AND ((y % 4 = 0 AND y % 100 <> 0) OR y % 400 = 0) THEN 29
        WHEN mo = 2 THEN 28
        WHEN mo IN (4, 6, 9, 11) THEN 30
        ELSE 31 END;
    IF d = 0 OR d > last_day THEN
        RETURN NULL;
    END IF;
    IF (h > 23 AND NOT (h = 24 AND mi = 0 AND s = 0 AND nanos = 0)) OR mi > 59 OR s > 59 THEN
        RETURN NULL;
    END IF;
    -- Days since 1970-01-01 ("days from civil"); `yy` is at least -1.
    yy := CASE WHEN mo <= 2 THEN y - 1 ELSE y END;
    era := CASE WHEN yy >= 0 THEN yy / 400 ELSE (yy - 399) / 400 END;
    yoe := yy - era * 400;
    doy := (153 * (CASE WHEN mo > 2 THEN mo - 3 ELSE mo + 9 END) + 2) / 5 + d - 1;
    days := era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    seconds := days * 86400 + h * 3600 + mi * 60 + s - offset_minutes * 60;
    IF seconds < -62167219200 OR seconds >= 253402300800 THEN
        RETURN NULL;
    END IF;
    RETURN lpad((seconds + 1000000000000)::text, 13, '0') || lpad(nanos::text, 9, '0');
END
$$;
"#;

/// A [`Store`] in a PostgreSQL database, shared by any number of processes.
pub struct PostgresStore {
    clock: super::memory::ClockDebug,
    endpoint: Endpoint,
    /// Connections for statements.
    pool: pool::Pool,
    /// Wakes [`Store::wait_for_events`].
    feed: Arc<pool::Feed>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

/// How to reach the server: the URL's settings, and TLS as its `sslmode` asks, with
/// libpq's meanings. `disable`: none. `prefer` (the default) and `allow`: TLS when the
/// server offers it, and `require`: TLS or nothing; these three check the server's
/// certificate only when `sslrootcert` names the CA file to check it against (as libpq,
/// which then acts as `verify-ca`). `verify-ca` and `verify-full`: TLS, the certificate
/// checked against `sslrootcert` or else the system's roots, and the host name with it
/// (rustls always checks it, so `verify-ca` is `verify-full` here).
struct Endpoint {
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Self, StoreError> {
        let invalid =
            |e: &dyn std::fmt::Display| StoreError::Backend(format!("the PostgreSQL URL: {e}"));
        // The driver knows only `disable`, `prefer` and `require`, and no CA file: both are
        // read here, and the rest of the URL goes to the driver.
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let (mut mode, mut root, mut kept) = ("prefer", None, Vec::new());
        for parameter in query.split('&').filter(|p| !p.is_empty()) {
            match parameter.split_once('=') {
                Some(("sslmode", value)) => mode = value,
                Some(("sslrootcert", value)) => root = Some(std::path::Path::new(value)),
                _ => kept.push(parameter),
            }
        }
        let driver_url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config: postgres::Config = driver_url.parse().map_err(|e| invalid(&e))?;
        let checked = || crate::tls::client_config(root);
        let unchecked = || match root {
            Some(_) => checked(),
            None => crate::tls::unverified_client_config(),
        };
        let (ssl_mode, tls) = match mode {
            "disable" => (SslMode::Disable, None),
            "allow" | "prefer" => (SslMode::Prefer, Some(unchecked())),
            "require" => (SslMode::Require, Some(unchecked())),
            "verify-ca" | "verify-full" => (SslMode::Require, Some(checked())),
            other => {
                return Err(invalid(&format!(
                    "sslmode `{other}`: use disable, allow, prefer, require, verify-ca or verify-full"
                )));
            }
        };
        config.ssl_mode(ssl_mode);
        // A server that does not answer must not hold a caller (or every waiter on the feed)
        // for the system's TCP timeout, minutes; the URL's `connect_timeout` overrides this.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        let tls = tls
            .transpose()
            .map_err(|e| invalid(&format!("sslrootcert: {e}")))?
            .map(tokio_postgres_rustls::MakeRustlsConnect::new);
        Ok(Self { config, tls })
    }

    /// A new connection with `config` (this endpoint's, perhaps with settings added).
    fn connect(&self, config: &postgres::Config) -> Result<Client, StoreError> {
        let connected = match &self.tls {
            Some(tls) => config.connect(tls.clone()),
            None => config.connect(NoTls),
        };
        connected.map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))
    }
}

/// A backend error; its text starts with the SQLSTATE, when there is one, so that
/// [`PostgresStore::write`] can tell a deadlock or serialization failure worth a retry.
fn backend(e: &postgres::Error) -> StoreError {
    match (e.code(), e.as_db_error()) {
        (Some(code), Some(db)) => StoreError::Backend(format!("{}: {}", code.code(), db.message())),
        (Some(code), None) => StoreError::Backend(format!("{}: {e}", code.code())),
        _ => StoreError::Backend(e.to_string()),
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        backend(&e)
    }
}

/// A connection and what it keeps between calls.
struct Conn {
    client: Client,
    cache: ConnCache,
}

/// What a connection keeps between calls.
#[derive(Default)]
struct ConnCache {
    /// The statements it has prepared: each statement text is parsed and planned once per
    /// connection, and every later call is one round trip instead of two.
    prepared: HashMap<String, Statement>,
    /// Each directory's uniqueness scope and password setting, which never change.
    directories: HashMap<i64, (UserNameScope, bool)>,
}

/// Statements kept per connection; the texts are the module's own (a few dozen, plus one
/// per page shape), so this bound is only a guard.
const MAX_PREPARED: usize = 512;

/// Running statements through a connection's prepared ones.
trait Prepared {
    type Client: GenericClient;

    fn parts(&mut self) -> (&mut Self::Client, &mut ConnCache);

    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        let (client, cache) = self.parts();
        let prepared = &mut cache.prepared;
        if let Some(s) = prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = client.prepare(sql)?;
        if prepared.len() >= MAX_PREPARED {
            prepared.clear();
        }
        prepared.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.parts().0.execute(&s, params)
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.parts().0.query(&s, params)
    }

    fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.parts().0.query_opt(&s, params)
    }

    fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.parts().0.query_one(&s, params)
    }
}

impl Prepared for Conn {
    type Client = Client;
    fn parts(&mut self) -> (&mut Client, &mut ConnCache) {
        (&mut self.client, &mut self.cache)
    }
}

/// A transaction (or a savepoint) on a [`Conn`], using what the connection keeps.
struct Tx<'a> {
    tx: Transaction<'a>,
    cache: &'a mut ConnCache,
}

impl<'a> Prepared for Tx<'a> {
    type Client = Transaction<'a>;
    fn parts(&mut self) -> (&mut Transaction<'a>, &mut ConnCache) {
        (&mut self.tx, self.cache)
    }
}

impl Tx<'_> {
    fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.tx.batch_execute(sql)
    }

    /// A savepoint: its writes are undone alone by [`Tx::rollback`].
    fn savepoint(&mut self) -> Result<Tx<'_>, postgres::Error> {
        Ok(Tx {
            tx: self.tx.savepoint("write")?,
            cache: &mut *self.cache,
        })
    }

    fn commit(self) -> Result<(), postgres::Error> {
        self.tx.commit()
    }

    fn rollback(self) -> Result<(), postgres::Error> {
        self.tx.rollback()
    }
}

impl Conn {
    fn transaction(&mut self) -> Result<Tx<'_>, postgres::Error> {
        Ok(Tx {
            tx: self.client.transaction()?,
            cache: &mut self.cache,
        })
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`) and
    /// creates or upgrades its schema.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the server cannot be reached or the database holds a
    /// newer schema.
    pub fn open(url: &str, clock: Clock) -> Result<Self, StoreError> {
        let store = Self {
            clock: super::memory::ClockDebug(clock),
            endpoint: Endpoint::parse(url)?,
            pool: pool::Pool::new(),
            feed: pool::Feed::new(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn client(&self) -> Result<pool::Pooled<'_>, StoreError> {
        self.pool.get(&self.endpoint)
    }

    fn now(&self) -> DateTime {
        (self.clock.0)()
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS usersync_schema (version BIGINT NOT NULL)")?;
        let version: Option<i64> = tx
            .query_opt("SELECT version FROM usersync_schema", &[])?
            .map(|r| r.get(0));
        match version {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::Backend(format!(
                    "the database has schema version {v}, newer than this usersync ({SCHEMA_VERSION}): upgrade usersync"
                )));
            }
            Some(v) if v < 2 => {
                return Err(StoreError::Backend(format!(
                    "the database has schema version {v}, made by a development build of usersync before its first release: create a new database"
                )));
            }
            Some(2) => {
                tx.batch_execute("ALTER TABLE resources ADD COLUMN attributes_keys JSONB")?;
                tx.batch_execute(FUNCTIONS)?;
                fill_attribute_keys(&mut tx)?;
                tx.execute(
                    "UPDATE usersync_schema SET version = $1",
                    &[&SCHEMA_VERSION],
                )?;
            }
            // The functions are the code's: this version's replace whatever is there.
            Some(_) => tx.batch_execute(FUNCTIONS)?,
            None => {
                tx.batch_execute(SCHEMA)?;
                tx.batch_execute(FUNCTIONS)?;
                tx.execute(
                    "INSERT INTO usersync_schema (version) VALUES ($1)",
                    &[&SCHEMA_VERSION],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Runs `f` in a transaction and commits it; a deadlock or serialization failure between
    /// nodes runs it again (a few times) from the start.
    fn write<T>(
        &self,
        mut f: impl FnMut(&mut Tx<'_>, DateTime) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut c = self.client()?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut tx = c.transaction()?;
            let now = self.now();
            let out = f(&mut tx, now).and_then(|out| Ok((tx.commit()?, out)));
            match out {
                Ok(((), out)) => return Ok(out),
                Err(StoreError::Backend(text)) if attempts < 5 && is_retryable(&text) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs `f` in a read-only transaction (one snapshot).
    fn read<T>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut c = self.client()?;
        let Conn { client, cache } = &mut *c;
        let mut tx = Tx {
            tx: client
                .build_transaction()
                .read_only(true)
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .start()?,
            cache,
        };
        let out = f(&mut tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// Writes every resource's `attributes_keys` (schema version 3), a thousand rows at a time.
fn fill_attribute_keys(tx: &mut Tx<'_>) -> Result<(), StoreError> {
    let mut after = String::new();
    loop {
        let rows = tx.query(
            "SELECT id, attributes::text FROM resources WHERE id > $1 ORDER BY id LIMIT 1000",
            &[&after],
        )?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.get(0);
        let mut ids = Vec::new();
        let mut keys = Vec::new();
        for row in &rows {
            if let Some(k) = filter::comparable(&json_from(row.get(1))?) {
                ids.push(row.get::<_, String>(0));
                keys.push(k.to_string());
            }
        }
        tx.execute(
            "UPDATE resources r SET attributes_keys = k.keys::jsonb \
             FROM unnest($1::text[], $2::text[]) AS k(id, keys) WHERE r.id = k.id",
            &[&ids, &keys],
        )?;
    }
}

/// A session-level advisory lock: held exactly as long as its session lives, since usersync
/// never unlocks it but by closing the connection.
struct SessionLock(std::sync::Mutex<Client>);

impl super::HeldLock for SessionLock {
    /// Asks the lock's own session: a session the server ended (an administrator's
    /// `pg_terminate_backend`, a failover, a cut the keepalives saw) fails the query, and
    /// with it went the lock.
    fn check(&self) -> Result<(), String> {
        let mut client = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        client
            .simple_query("SELECT 1")
            .map(drop)
            .map_err(|e| format!("its PostgreSQL session ended ({e})"))
    }
}

/// Whether a backend error text is a deadlock or serialization failure (worth a retry).
fn is_retryable(text: &str) -> bool {
    text.starts_with("40P01") || text.starts_with("40001")
}

/// A statement error: unique violations become [`StoreError::Uniqueness`] of the attribute
/// the violated index guards; others are [`backend`] errors.
fn statement_error(e: postgres::Error, kind: Kind, name: &str, id: &str) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        let constraint = e.as_db_error().and_then(|d| d.constraint()).unwrap_or("");
        return if constraint == "resources_pkey" {
            StoreError::Uniqueness {
                attribute: "id",
                value: id.to_owned(),
            }
        } else {
            StoreError::Uniqueness {
                attribute: name_attribute(kind),
                value: name.to_owned(),
            }
        };
    }
    backend(&e)
}

fn json_from(s: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Backend(e.to_string()))
}

const DIRECTORY_COLUMNS: &str =
    "id, name, kind, retention_days, user_name_scope, keep_password_hashes, strict";

fn directory(row: &Row) -> Result<Directory, StoreError> {
    let kind: String = row.get(2);
    let scope: String = row.get(4);
    Ok(Directory {
        id: row.get(0),
        name: row.get(1),
        kind: DirectoryKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown directory kind `{kind}`")))?,
        retention_days: u32::try_from(row.get::<_, i64>(3)).unwrap_or(u32::MAX),
        user_name_scope: UserNameScope::parse(&scope)
            .ok_or_else(|| StoreError::Backend(format!("unknown userName scope `{scope}`")))?,
        keep_password_hashes: row.get(5),
        strict: row.get(6),
    })
}

const RESOURCE_COLUMNS: &str = "directory, kind, id, external_id, name, active, version, created, modified, inactive_since, attributes::text";

/// The groups of user `r` as a JSON array, in `id` order: one statement reads a user (or a
/// page of them) with their groups.
const GROUPS_COLUMN: &str = "(SELECT COALESCE(json_agg(m.group_id ORDER BY m.group_id), '[]')::text \
     FROM memberships m JOIN resources g ON g.id = m.group_id \
     WHERE m.member_id = r.id AND g.directory = r.directory)";

/// [`RESOURCE_COLUMNS`] of the table aliased `r`.
const RESOURCE_COLUMNS_R: &str = "r.directory, r.kind, r.id, r.external_id, r.name, r.active, r.version, r.created, r.modified, r.inactive_since, r.attributes::text";

fn resource(row: &Row) -> Result<Resource, StoreError> {
    let kind: String = row.get(1);
    let inactive: Option<String> = row.get(9);
    Ok(Resource {
        directory: row.get(0),
        kind: kind_from(&kind)?,
        id: row.get(2),
        external_id: row.get(3),
        name: row.get(4),
        active: row.get(5),
        version: u64::try_from(row.get::<_, i64>(6)).unwrap_or(0),
        created: time_from(row.get(7))?,
        modified: time_from(row.get(8))?,
        inactive_since: inactive.as_deref().map(time_from).transpose()?,
        attributes: json_from(row.get(10))?,
    })
}

fn load(
    tx: &mut Tx<'_>,
    directory: i64,
    kind: Kind,
    id: &str,
    lock: bool,
) -> Result<Option<Resource>, StoreError> {
    let sql = format!(
        "SELECT {RESOURCE_COLUMNS} FROM resources WHERE id = $1 AND directory = $2 AND kind = $3{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    tx.query_opt(&sql, &[&id, &directory, &kind.as_str()])?
        .as_ref()
        .map(resource)
        .transpose()
}

/// The resource, locked against concurrent writers until the transaction ends.
fn existing(tx: &mut Tx<'_>, directory: i64, kind: Kind, id: &str) -> Result<Resource, StoreError> {
    load(tx, directory, kind, id, true)?.ok_or_else(|| StoreError::NotFound {
        what: format!("{} `{id}`", kind.as_str()),
    })
}

/// Whom a resource's name must be unique among (see the `unique_scope` column), and whether
/// the directory keeps password hashes.
fn directory_rules(tx: &mut Tx<'_>, directory: i64, kind: Kind) -> Result<(i64, bool), StoreError> {
    let (scope, keeps) = match tx.cache.directories.get(&directory) {
        Some(rules) => *rules,
        None => {
            let row = tx
                .query_opt(
                    "SELECT user_name_scope, keep_password_hashes FROM directories WHERE id = $1",
                    &[&directory],
                )?
                .ok_or_else(|| StoreError::NotFound {
                    what: format!("directory {directory}"),
                })?;
            let scope = UserNameScope::parse(row.get(0)).unwrap_or(UserNameScope::Platform);
            let rules = (scope, row.get(1));
            tx.cache.directories.insert(directory, rules);
            rules
        }
    };
    let unique_scope = if scope == UserNameScope::Platform && kind == Kind::User {
        0
    } else {
        directory
    };
    Ok((unique_scope, keeps))
}

fn check_name(
    tx: &mut Tx<'_>,
    kind: Kind,
    scope: i64,
    name: &str,
    except: Option<&str>,
) -> Result<(), StoreError> {
    let taken: Option<String> = tx
        .query_opt(
            "SELECT id FROM resources WHERE kind = $1 AND unique_scope = $2 AND name_key = $3",
            &[&kind.as_str(), &scope, &fold(name).as_ref()],
        )?
        .map(|r| r.get(0));
    match taken {
        Some(id) if Some(id.as_str()) != except => Err(StoreError::Uniqueness {
            attribute: name_attribute(kind),
            value: name.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Appends an event to the change feed, after taking the feed lock (see the module's
/// documentation).
fn record_event(
    tx: &mut Tx<'_>,
    directory: i64,
    kind: Kind,
    id: &str,
    version: u64,
    event: EventKind,
    now: DateTime,
) -> Result<(), StoreError> {
    // One statement: the lock is taken (in the subquery) before the row, and its sequence
    // number, is made. The notification is sent as the transaction commits (once, however
    // many events).
    tx.execute(
        "INSERT INTO events (directory, kind, resource_id, event, version, time) \
         SELECT $1::bigint, $2::text, $3::text, $4::text, $5::bigint, $6::text \
         FROM (SELECT pg_advisory_xact_lock($7::bigint), pg_notify('usersync_events', '')) AS feed",
        &[
            &directory,
            &kind.as_str(),
            &id,
            &event.as_str(),
            &(version as i64),
            &now.to_string(),
            &FEED_LOCK,
        ],
    )?;
    Ok(())
}

fn record(
    tx: &mut Tx<'_>,
    r: &Resource,
    event: EventKind,
    now: DateTime,
) -> Result<(), StoreError> {
    record_event(tx, r.directory, r.kind, &r.id, r.version, event, now)
}

fn adjust_count(tx: &mut Tx<'_>, directory: i64, kind: Kind, delta: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO resource_counts (directory, kind, n) VALUES ($1, $2, $3) \
         ON CONFLICT (directory, kind) DO UPDATE SET n = resource_counts.n + excluded.n",
        &[&directory, &kind.as_str(), &delta],
    )?;
    Ok(())
}

/// Resources by id, as a member check reads them: each one's kind and directory.
type Found = HashMap<String, (String, i64)>;

/// The resources of `ids` (any directory), for [`missing_member`]. By primary key alone:
/// on a table without statistics yet (a first import), `directory = $1` led the planner to
/// scan the directory's whole index for every group, which made an import's member checks
/// quadratic, so the directory is compared in Rust.
fn find_members(tx: &mut Tx<'_>, ids: &[&str]) -> Result<Found, StoreError> {
    if ids.is_empty() {
        return Ok(Found::new());
    }
    Ok(tx
        .query(
            "SELECT id, kind, directory FROM resources WHERE id = ANY($1)",
            &[&ids],
        )?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect())
}

/// The first of `members` that is no resource of `directory` of the kind given, as the
/// error its member change gets.
fn missing_member(members: &[Member], directory: i64, found: &Found) -> Option<StoreError> {
    let m = members.iter().find(|m| {
        found
            .get(&m.id)
            .is_none_or(|(kind, d)| kind != m.kind.as_str() || *d != directory)
    })?;
    Some(StoreError::NotFound {
        what: format!("{} `{}`", m.kind.as_str(), m.id),
    })
}

/// Adds `members` to `group` (present ones are skipped); returns how many were new. Two
/// statements however many members: one checks them all, one inserts them all.
fn insert_members(
    tx: &mut Tx<'_>,
    directory: i64,
    group: &str,
    members: &[Member],
) -> Result<u64, StoreError> {
    if members.is_empty() {
        return Ok(0);
    }
    if members.iter().any(|m| m.id == group) {
        return Err(contains_itself(group));
    }
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    let kinds: Vec<&str> = members.iter().map(|m| m.kind.as_str()).collect();
    // Every member must be a resource of the directory, of the kind given.
    let found = find_members(tx, &ids)?;
    if let Some(e) = missing_member(members, directory, &found) {
        return Err(e);
    }
    Ok(tx.execute(
        "INSERT INTO memberships (group_id, member_id, member_kind) \
         SELECT $1, m.id, m.kind FROM unnest($2::text[], $3::text[]) AS m(id, kind) \
         ON CONFLICT DO NOTHING",
        &[&group, &ids, &kinds],
    )?)
}

/// Applies a password change to user `r`; returns whether anything changed.
fn set_password(
    tx: &mut Tx<'_>,
    r: &Resource,
    keeps: bool,
    change: Option<&PasswordChange>,
) -> Result<bool, StoreError> {
    let Some(change) = change else {
        return Ok(false);
    };
    check_password_change(r.kind, keeps)?;
    Ok(match change {
        PasswordChange::Set(hash) => {
            tx.execute(
                "INSERT INTO passwords (user_id, hash) VALUES ($1, $2) \
                 ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash",
                &[&r.id, &hash.0],
            )?;
            true
        }
        PasswordChange::Clear => {
            tx.execute("DELETE FROM passwords WHERE user_id = $1", &[&r.id])? > 0
        }
    })
}

/// The resource `n` makes, as first written at `now` (a group is always active).
fn first_version(n: &NewResource, now: DateTime) -> Resource {
    let active = n.active || n.kind == Kind::Group;
    Resource {
        directory: n.directory,
        kind: n.kind,
        id: n.id.clone(),
        external_id: n.external_id.clone(),
        name: n.name.clone(),
        active,
        version: 1,
        created: now,
        modified: now,
        inactive_since: (!active).then_some(now),
        attributes: n.attributes.clone(),
    }
}

fn create_in(tx: &mut Tx<'_>, now: DateTime, n: &NewResource) -> Result<Resource, StoreError> {
    super::check_resource_id(&n.id)?;
    let (scope, keeps) = directory_rules(tx, n.directory, n.kind)?;
    if n.password.is_some() {
        check_password_change(n.kind, keeps)?;
    }
    let r = first_version(n, now);
    let inserted = tx.execute(
        "INSERT INTO resources (id, directory, kind, external_id, name, name_key, unique_scope, active, \
         version, created, modified, inactive_since, attributes, attributes_keys) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10, $11::text::jsonb, $12::text::jsonb) \
         ON CONFLICT DO NOTHING",
        &[
            &r.id,
            &r.directory,
            &r.kind.as_str(),
            &r.external_id,
            &r.name,
            &fold(&r.name).as_ref(),
            &scope,
            &r.active,
            &now.to_string(),
            &r.inactive_since.map(|t| t.to_string()),
            &r.attributes.to_string(),
            &filter::comparable(&r.attributes).map(|k| k.to_string()),
        ],
    )?;
    // A taken id or name is told apart without a failed statement, which would end the
    // transaction (and a batch with it).
    if inserted == 0 {
        let id_taken = tx
            .query_opt("SELECT 1 FROM resources WHERE id = $1", &[&r.id])?
            .is_some();
        return Err(super::create_conflict(r, id_taken));
    }
    record(tx, &r, EventKind::Created, now)?;
    adjust_count(tx, r.directory, r.kind, 1)?;
    insert_members(tx, n.directory, &r.id, &n.members)?;
    if let Some(hash) = &n.password {
        set_password(tx, &r, keeps, Some(&PasswordChange::Set(hash.clone())))?;
    }
    Ok(r)
}

/// The time a write to a row stamps: `now`, or the row's last change when that is later.
/// The clock is read before the row is locked, and nodes' clocks differ, so a write that
/// waited for the lock may read an earlier time than the one it follows; a row's
/// `meta.lastModified` must still never go back as its version goes up.
fn stamp(now: DateTime, last_modified: DateTime) -> DateTime {
    now.max(last_modified)
}

/// Creates without members or password, as [`create_in`] does one by one (the same rows,
/// events and counts, the same outcome for each), in four statements however many: the
/// resources in one insert that skips those whose id or name is taken, then one query for
/// which of the skipped had their id taken, the events, and the counts. A name taken by an
/// earlier create of the same call is taken, as it would be one by one.
fn create_many(
    tx: &mut Tx<'_>,
    now: DateTime,
    news: &[&NewResource],
) -> Result<Vec<Result<Resource, StoreError>>, StoreError> {
    // An id twice in one call (ids are the server's UUIDs: never, in practice) would need
    // the outcome of each row of the insert: one by one instead.
    let mut seen = std::collections::HashSet::with_capacity(news.len());
    if !news.iter().all(|n| seen.insert(n.id.as_str())) {
        return news.iter().map(|n| one_create(tx, now, n)).collect();
    }
    let mut outcomes: Vec<Result<Resource, StoreError>> = Vec::with_capacity(news.len());
    let mut columns = CreateColumns::default();
    for n in news {
        let outcome = super::check_resource_id(&n.id)
            .and_then(|()| directory_rules(tx, n.directory, n.kind))
            .map(|(scope, _)| {
                let r = first_version(n, now);
                columns.push(&r, scope);
                r
            });
        if let Err(e @ StoreError::Backend(_)) = outcome {
            return Err(e);
        }
        outcomes.push(outcome);
    }
    if columns.ids.is_empty() {
        return Ok(outcomes);
    }
    let c = &columns;
    let inserted: std::collections::HashSet<String> = tx
        .query(
            "INSERT INTO resources (id, directory, kind, external_id, name, name_key, unique_scope, \
             active, version, created, modified, inactive_since, attributes, attributes_keys) \
             SELECT id, directory, kind, external_id, name, name_key, unique_scope, active, 1, $12, $12, \
             inactive_since, attributes::jsonb, attributes_keys::jsonb \
             FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], \
             $7::bigint[], $8::bool[], $9::text[], $10::text[], $11::text[]) WITH ORDINALITY \
             AS n(id, directory, kind, external_id, name, name_key, unique_scope, active, \
             inactive_since, attributes, attributes_keys, ord) \
             ORDER BY ord ON CONFLICT DO NOTHING RETURNING id",
            &[
                &c.ids,
                &c.directories,
                &c.kinds,
                &c.external_ids,
                &c.names,
                &c.name_keys,
                &c.scopes,
                &c.actives,
                &c.inactive_since,
                &c.attributes,
                &c.keys,
                &now.to_string(),
            ],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let skipped: Vec<&str> = c
        .ids
        .iter()
        .filter(|id| !inserted.contains(*id))
        .map(String::as_str)
        .collect();
    // Skipped for an id already stored, or for a name (stored, or earlier in this call).
    let ids_taken: std::collections::HashSet<String> = if skipped.is_empty() {
        std::collections::HashSet::new()
    } else {
        tx.query(
            "SELECT id FROM resources WHERE id = ANY($1::text[])",
            &[&skipped],
        )?
        .iter()
        .map(|row| row.get(0))
        .filter(|id: &String| !inserted.contains(id))
        .collect()
    };
    let mut events = EventColumns::default();
    let mut counts: HashMap<(i64, Kind), i64> = HashMap::new();
    let mut out = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        out.push(match outcome {
            Ok(r) if inserted.contains(&r.id) => {
                events.push(&r);
                *counts.entry((r.directory, r.kind)).or_default() += 1;
                Ok(r)
            }
            Ok(r) => {
                let id_taken = ids_taken.contains(&r.id);
                Err(super::create_conflict(r, id_taken))
            }
            Err(e) => Err(e),
        });
    }
    if !events.ids.is_empty() {
        tx.execute(
            "INSERT INTO events (directory, kind, resource_id, event, version, time) \
             SELECT e.directory, e.kind, e.id, 'created', 1, $4::text \
             FROM (SELECT pg_advisory_xact_lock($5::bigint), pg_notify('usersync_events', '')) AS feed, \
             unnest($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY AS e(directory, kind, id, ord) \
             ORDER BY e.ord",
            &[
                &events.directories,
                &events.kinds,
                &events.ids,
                &now.to_string(),
                &FEED_LOCK,
            ],
        )?;
    }
    let mut counts: Vec<((i64, Kind), i64)> = counts.into_iter().collect();
    counts.sort_by_key(|((d, k), _)| (*d, k.as_str()));
    for ((directory, kind), n) in counts {
        adjust_count(tx, directory, kind, n)?;
    }
    Ok(out)
}

/// One write of a batch in a savepoint of its own, which its refusal rolls back: the other
/// writes still commit. A store failure fails the whole batch (or, for a deadlock, runs it
/// again).
fn in_savepoint(
    tx: &mut Tx<'_>,
    write: impl FnOnce(&mut Tx<'_>) -> Result<Option<Resource>, StoreError>,
) -> Result<WriteOutcome, StoreError> {
    let mut sp = tx.savepoint()?;
    match write(&mut sp) {
        Err(e @ StoreError::Backend(_)) => Err(e),
        Err(e) => {
            sp.rollback()?;
            Ok(Err(e))
        }
        Ok(done) => {
            sp.commit()?;
            Ok(Ok(done))
        }
    }
}

/// A write of a batch that only adds members to a group (an import's groups, each
/// after its members were created).
struct MemberAdd<'w> {
    directory: i64,
    kind: Kind,
    id: &'w str,
    expected_version: Option<u64>,
    change: &'w Change,
}

impl<'w> MemberAdd<'w> {
    fn of(w: &'w Write) -> Option<Self> {
        match w {
            Write::Update {
                directory,
                kind,
                id,
                expected_version,
                change,
            } if change.replacement.is_none()
                && change.remove_members.is_empty()
                && change.password.is_none() =>
            {
                Some(Self {
                    directory: *directory,
                    kind: *kind,
                    id,
                    expected_version: *expected_version,
                    change,
                })
            }
            _ => None,
        }
    }
}

/// Member adds, as [`update_in`] makes each one by one (the same checks in the same order,
/// the same outcome, version and event), in five statements however many groups: the
/// groups locked (in id order), their members checked, the memberships inserted, and the
/// versions and events of the groups that gained one. A group twice in one call would need
/// the first add's outcome before the second's checks: one by one instead.
fn add_members_many(
    tx: &mut Tx<'_>,
    now: DateTime,
    adds: &[MemberAdd<'_>],
) -> Result<Vec<WriteOutcome>, StoreError> {
    if adds.is_empty() {
        return Ok(Vec::new());
    }
    let mut seen = std::collections::HashSet::with_capacity(adds.len());
    if !adds.iter().all(|a| seen.insert(a.id)) {
        return adds
            .iter()
            .map(|a| {
                in_savepoint(tx, |sp| {
                    update_in(
                        sp,
                        now,
                        a.directory,
                        a.kind,
                        a.id,
                        a.expected_version,
                        a.change,
                    )
                    .map(Some)
                })
            })
            .collect();
    }
    let ids: Vec<&str> = adds.iter().map(|a| a.id).collect();
    let mut held: HashMap<String, Resource> = HashMap::with_capacity(adds.len());
    for row in tx.query(
        &format!(
            "SELECT {RESOURCE_COLUMNS} FROM resources WHERE id = ANY($1) ORDER BY id FOR UPDATE"
        ),
        &[&ids],
    )? {
        let r = resource(&row)?;
        held.insert(r.id.clone(), r);
    }
    let mut outcomes: Vec<Result<Resource, StoreError>> = adds
        .iter()
        .map(|a| {
            let r = held
                .remove(a.id)
                .filter(|r| r.directory == a.directory && r.kind == a.kind)
                .ok_or_else(|| StoreError::NotFound {
                    what: format!("{} `{}`", a.kind.as_str(), a.id),
                })?;
            check_update(&r, a.expected_version, a.change)?;
            check_member_change(a.kind, a.change)?;
            if a.change.add_members.iter().any(|m| m.id == a.id) {
                return Err(contains_itself(a.id));
            }
            Ok(r)
        })
        .collect();
    // Every member must be a resource of its group's directory, of the kind given.
    let wanted: Vec<&str> = adds
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_ok())
        .flat_map(|(a, _)| a.change.add_members.iter().map(|m| m.id.as_str()))
        .collect();
    let found = find_members(tx, &wanted)?;
    let (mut groups, mut members, mut kinds) = (Vec::new(), Vec::new(), Vec::new());
    for (a, outcome) in adds.iter().zip(&mut outcomes) {
        if outcome.is_err() {
            continue;
        }
        if let Some(e) = missing_member(&a.change.add_members, a.directory, &found) {
            *outcome = Err(e);
            continue;
        }
        for m in &a.change.add_members {
            groups.push(a.id);
            members.push(m.id.as_str());
            kinds.push(m.kind.as_str());
        }
    }
    let grown: std::collections::HashSet<String> = if groups.is_empty() {
        std::collections::HashSet::new()
    } else {
        tx.query(
            "INSERT INTO memberships (group_id, member_id, member_kind) \
             SELECT m.g, m.id, m.kind FROM unnest($1::text[], $2::text[], $3::text[]) AS m(g, id, kind) \
             ON CONFLICT DO NOTHING RETURNING group_id",
            &[&groups, &members, &kinds],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect()
    };
    // The groups that gained a member: a new version, and an event each, in the writes' order.
    let mut bumped = EventColumns::default();
    let (mut versions, mut times) = (Vec::new(), Vec::new());
    for r in outcomes.iter_mut().flatten() {
        if grown.contains(&r.id) {
            r.version += 1;
            r.modified = stamp(now, r.modified);
            bumped.push(r);
            versions.push(r.version as i64);
            times.push(r.modified.to_string());
        }
    }
    if !bumped.ids.is_empty() {
        tx.execute(
            "UPDATE resources SET version = u.version, modified = u.modified \
             FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(id, version, modified) \
             WHERE resources.id = u.id",
            &[&bumped.ids, &versions, &times],
        )?;
        tx.execute(
            "INSERT INTO events (directory, kind, resource_id, event, version, time) \
             SELECT e.directory, e.kind, e.id, $6::text, e.version, e.time \
             FROM (SELECT pg_advisory_xact_lock($7::bigint), pg_notify('usersync_events', '')) AS feed, \
             unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[]) WITH ORDINALITY \
             AS e(directory, kind, id, version, time, ord) ORDER BY e.ord",
            &[
                &bumped.directories,
                &bumped.kinds,
                &bumped.ids,
                &versions,
                &times,
                &EventKind::Updated.as_str(),
                &FEED_LOCK,
            ],
        )?;
    }
    Ok(outcomes.into_iter().map(|o| o.map(Some)).collect())
}

/// One create of a batch, as [`create_in`] makes it: a store failure fails the batch.
fn one_create(
    tx: &mut Tx<'_>,
    now: DateTime,
    n: &NewResource,
) -> Result<Result<Resource, StoreError>, StoreError> {
    match create_in(tx, now, n) {
        Err(e @ StoreError::Backend(_)) => Err(e),
        outcome => Ok(outcome),
    }
}

/// The columns of [`create_many`]'s insert, one array each.
#[derive(Default)]
struct CreateColumns {
    ids: Vec<String>,
    directories: Vec<i64>,
    kinds: Vec<&'static str>,
    external_ids: Vec<Option<String>>,
    names: Vec<String>,
    name_keys: Vec<String>,
    scopes: Vec<i64>,
    actives: Vec<bool>,
    inactive_since: Vec<Option<String>>,
    attributes: Vec<String>,
    keys: Vec<Option<String>>,
}

impl CreateColumns {
    fn push(&mut self, r: &Resource, scope: i64) {
        self.ids.push(r.id.clone());
        self.directories.push(r.directory);
        self.kinds.push(r.kind.as_str());
        self.external_ids.push(r.external_id.clone());
        self.names.push(r.name.clone());
        self.name_keys.push(fold(&r.name).into_owned());
        self.scopes.push(scope);
        self.actives.push(r.active);
        self.inactive_since
            .push(r.inactive_since.map(|t| t.to_string()));
        self.attributes.push(r.attributes.to_string());
        self.keys
            .push(filter::comparable(&r.attributes).map(|k| k.to_string()));
    }
}

/// The columns of [`create_many`]'s events.
#[derive(Default)]
struct EventColumns {
    directories: Vec<i64>,
    kinds: Vec<&'static str>,
    ids: Vec<String>,
}

impl EventColumns {
    fn push(&mut self, r: &Resource) {
        self.directories.push(r.directory);
        self.kinds.push(r.kind.as_str());
        self.ids.push(r.id.clone());
    }
}

fn update_in(
    tx: &mut Tx<'_>,
    now: DateTime,
    directory: i64,
    kind: Kind,
    id: &str,
    expected_version: Option<u64>,
    change: &Change,
) -> Result<Resource, StoreError> {
    let mut r = existing(tx, directory, kind, id)?;
    let now = stamp(now, r.modified);
    check_update(&r, expected_version, change)?;
    check_member_change(kind, change)?;
    let (scope, keeps) = directory_rules(tx, directory, kind)?;
    let mut changed = false;
    if let Some(n) = &change.replacement {
        check_name(tx, kind, scope, &n.name, Some(id))?;
        apply_replacement(&mut r, n, now);
        if let Some(members) = &n.members {
            tx.execute("DELETE FROM memberships WHERE group_id = $1", &[&id])?;
            insert_members(tx, directory, id, members)?;
        }
        changed = true;
    }
    changed |= insert_members(tx, directory, id, &change.add_members)? > 0;
    if !change.remove_members.is_empty() {
        let ids: Vec<&str> = change
            .remove_members
            .iter()
            .map(|m| m.id.as_str())
            .collect();
        let kinds: Vec<&str> = change
            .remove_members
            .iter()
            .map(|m| m.kind.as_str())
            .collect();
        changed |= tx.execute(
            "DELETE FROM memberships m USING unnest($2::text[], $3::text[]) AS gone(id, kind) \
             WHERE m.group_id = $1 AND m.member_id = gone.id AND m.member_kind = gone.kind",
            &[&id, &ids, &kinds],
        )? > 0;
    }
    changed |= set_password(tx, &r, keeps, change.password.as_ref())?;
    if !changed {
        return Ok(r);
    }
    r.version += 1;
    r.modified = now;
    if change.replacement.is_none() {
        // Members or a password: the row's own columns are as they were but for its version
        // (a member PATCH neither rewrites the attributes nor folds them again).
        tx.execute(
            "UPDATE resources SET version = $1, modified = $2 WHERE id = $3",
            &[&(r.version as i64), &now.to_string(), &id],
        )?;
    } else {
        tx.execute(
            "UPDATE resources SET external_id = $1, name = $2, name_key = $3, active = $4, version = $5, \
             modified = $6, inactive_since = $7, attributes = $8::text::jsonb, \
             attributes_keys = $10::text::jsonb WHERE id = $9",
            &[
                &r.external_id,
                &r.name,
                &fold(&r.name).as_ref(),
                &r.active,
                &(r.version as i64),
                &now.to_string(),
                &r.inactive_since.map(|t| t.to_string()),
                &r.attributes.to_string(),
                &id,
                &filter::comparable(&r.attributes).map(|k| k.to_string()),
            ],
        )
        .map_err(|e| statement_error(e, kind, &r.name, id))?;
    }
    record(tx, &r, EventKind::Updated, now)?;
    Ok(r)
}

fn delete_in(
    tx: &mut Tx<'_>,
    directory: i64,
    kind: Kind,
    id: &str,
    expected_version: Option<u64>,
    now: DateTime,
) -> Result<(), StoreError> {
    let r = existing(tx, directory, kind, id)?;
    let now = stamp(now, r.modified);
    check_version(&r, expected_version)?;
    let containing: Vec<String> = tx
        .query(
            "SELECT group_id FROM memberships WHERE member_id = $1 ORDER BY group_id",
            &[&id],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    // Memberships and the password go with the resource (ON DELETE CASCADE).
    tx.execute("DELETE FROM resources WHERE id = $1", &[&id])?;
    adjust_count(tx, directory, kind, -1)?;
    record(tx, &r, EventKind::Deleted, now)?;
    for g in containing {
        let row = tx.query_one(
            "SELECT version, modified FROM resources WHERE id = $1 FOR UPDATE",
            &[&g],
        )?;
        let version = row.get::<_, i64>(0) + 1;
        let modified = stamp(now, time_from(row.get(1))?);
        tx.execute(
            "UPDATE resources SET version = $1, modified = $2 WHERE id = $3",
            &[&version, &modified.to_string(), &g],
        )?;
        record_event(
            tx,
            directory,
            Kind::Group,
            &g,
            version as u64,
            EventKind::Updated,
            modified,
        )?;
    }
    Ok(())
}

fn members_in(
    tx: &mut impl Prepared,
    directory: i64,
    group: &str,
) -> Result<Vec<Member>, StoreError> {
    tx.query(
        "SELECT m.member_id, m.member_kind FROM memberships m JOIN resources g ON g.id = m.group_id \
         WHERE m.group_id = $1 AND g.directory = $2 AND g.kind = 'Group' ORDER BY m.member_id",
        &[&group, &directory],
    )?
    .iter()
    .map(|row| {
        Ok(Member {
            id: row.get(0),
            kind: kind_from(row.get(1))?,
        })
    })
    .collect()
}

fn groups_in(
    tx: &mut impl Prepared,
    directory: i64,
    member: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(tx
        .query(
            "SELECT m.group_id FROM memberships m JOIN resources g ON g.id = m.group_id \
             WHERE m.member_id = $1 AND g.directory = $2 ORDER BY m.group_id",
            &[&member, &directory],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

/// Whether a filter is a lookup SQL answers through a unique or selective index:
/// `userName` (a user's) or `displayName` (a group's) against the folded name, `externalId`
/// and `id` exactly. Its page usually tells its total.
fn is_lookup(node: &Node, kind: Kind) -> bool {
    let Node::Compare {
        target,
        op: CompareOp::Eq,
        literal: Literal::Text { folded, .. },
    } = node
    else {
        return false;
    };
    target.container.is_none()
        && target.sub.is_none()
        && matches!(
            (&*target.name, kind, folded),
            ("userName", Kind::User, true)
                | ("displayName", Kind::Group, true)
                | ("externalId", _, false)
                | ("id", _, false)
        )
}

/// The `WHERE` condition on `r` of the resources of `q`'s directory and kind.
fn of_kind(q: &Query<'_>, sql: &mut filter::Sql) -> String {
    let directory = sql.bind(q.directory, "int8");
    let kind = sql.bind(q.kind.as_str().to_owned(), "text");
    format!("r.directory = {directory} AND r.kind = {kind}")
}

/// The `WHERE` condition on `r` of the resources `q` selects; `None` when its filter has no
/// SQL translation.
fn selection(q: &Query<'_>, sql: &mut filter::Sql) -> Option<String> {
    let mut selection = of_kind(q, sql);
    if let Some(f) = q.filter {
        let scope = filter::Scope {
            kind: q.kind,
            resource_type: q.resource_type,
            base: q.base,
        };
        selection.push_str(" AND ");
        selection.push_str(&filter::condition(f, &scope, sql)?);
    }
    Some(selection)
}

/// A page's statements, made once: run outside a transaction, or in one to count.
struct PageSql {
    sql: filter::Sql,
    /// The page's rows, with users' groups when `with_groups`.
    page: String,
    /// How many resources the selection holds, over the first `count_params` parameters.
    count: String,
    count_params: usize,
    with_groups: bool,
}

/// The statements of the page `q` asks for, selected by `selection` (over the first
/// `count_params` of `sql`'s parameters) and ordered by `order`, from `keyset` when a sorted
/// cursor page has one.
fn page_sql(
    q: &Query<'_>,
    mut sql: filter::Sql,
    selection: &str,
    count_params: usize,
    order: &str,
    keyset: Option<String>,
) -> PageSql {
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let mut tail = String::new();
    match (q.start, keyset) {
        (Start::AfterPosition(_), Some(keyset)) => tail.push_str(&format!(" AND {keyset}")),
        (Start::AfterPosition(p), None) => {
            tail.push_str(&format!(" AND r.id > {}", sql.bind_text(p.id().to_owned())));
        }
        (Start::After(id), _) => {
            tail.push_str(&format!(" AND r.id > {}", sql.bind_text(id.to_owned())));
        }
        (Start::Offset(_), _) => {}
    }
    // The limit is written into the text, not bound: a prepared statement's generic plan
    // can then be costed, and is used instead of planning each call anew (which costs more
    // than running a lookup). Few limits occur: a text per page size.
    tail.push_str(&format!(" ORDER BY {order} LIMIT {}", clamp(q.limit)));
    if let Start::Offset(n) = q.start {
        tail.push_str(&format!(" OFFSET {}", sql.bind(clamp(n), "int8")));
    }
    let with_groups = q.groups && q.kind == Kind::User;
    let groups_column = if with_groups {
        format!(", {GROUPS_COLUMN}")
    } else {
        String::new()
    };
    PageSql {
        // The page is chosen first, then its columns computed: a projection below OFFSET
        // would compute every skipped row's groups too.
        page: format!(
            "SELECT {RESOURCE_COLUMNS_R}{groups_column} \
             FROM (SELECT * FROM resources r WHERE {selection}{tail}) r ORDER BY {order}"
        ),
        count: format!("SELECT COUNT(*) FROM resources r WHERE {selection}"),
        count_params,
        with_groups,
        sql,
    }
}

/// Runs a page's statements: the page, or `None` when its total takes another statement
/// and `may_count` is false.
fn run_page(
    tx: &mut impl Prepared,
    q: &Query<'_>,
    p: &PageSql,
    may_count: bool,
) -> Result<Option<Page>, StoreError> {
    let params = p.sql.refs();
    let rows = tx.query(&p.page, &params)?;
    let mut resources = Vec::with_capacity(rows.len());
    let mut groups = Vec::with_capacity(if p.with_groups { rows.len() } else { 0 });
    for row in &rows {
        let r = resource(row)?;
        if p.with_groups {
            groups.push(groups_from(row.get(11), &r.id)?);
        }
        resources.push(r);
    }
    let told = query::total_from_page(q, resources.len() as u64);
    let total = match (q.filter, told) {
        (Some(_), Some(total)) => total,
        _ if !may_count => return Ok(None),
        (None, _) => {
            let n: Option<i64> = tx
                .query_opt(
                    "SELECT n FROM resource_counts WHERE directory = $1 AND kind = $2",
                    &[&q.directory, &q.kind.as_str()],
                )?
                .map(|r| r.get(0));
            n.unwrap_or(0).max(0) as u64
        }
        (Some(_), None) => {
            let n: i64 = tx.query_one(&p.count, &params[..p.count_params])?.get(0);
            n as u64
        }
    };
    Ok(Some(Page {
        total,
        resources,
        groups: p.with_groups.then_some(groups),
    }))
}

/// A group's members as JSON `[[id, kind], …]` beside its row, in `id` order.
const MEMBERS_COLUMN: &str = "(SELECT COALESCE(json_agg(json_build_array(m.member_id, m.member_kind) \
     ORDER BY m.member_id), '[]')::text FROM memberships m WHERE m.group_id = r.id)";

/// The page `q` asks for, made by the evaluator: of the resources `selection` holds (in one
/// statement, each with its members or groups), filtered by `q`'s filter when
/// `filter_in_rust`, sorted and paged in Rust.
fn page_in_rust(
    tx: &mut impl Prepared,
    q: &Query<'_>,
    sql: &filter::Sql,
    selection: &str,
    filter_in_rust: bool,
) -> Result<Page, StoreError> {
    let column = match q.kind {
        Kind::User => GROUPS_COLUMN,
        Kind::Group => MEMBERS_COLUMN,
    };
    let rows = tx.query(
        &format!(
            "SELECT {RESOURCE_COLUMNS_R}, {column} FROM resources r WHERE {selection} ORDER BY r.id"
        ),
        &sql.refs(),
    )?;
    let mut candidates = Vec::with_capacity(rows.len());
    for row in &rows {
        let r = resource(row)?;
        let text: &str = row.get(11);
        let v = match q.kind {
            Kind::User => view(
                q.resource_type,
                &r,
                None,
                Some(&groups_from(text, &r.id)?),
                q.base,
            ),
            Kind::Group => {
                let pairs: Vec<(String, String)> = serde_json::from_str(text)
                    .map_err(|e| StoreError::Backend(format!("members of `{}`: {e}", r.id)))?;
                let members = pairs
                    .into_iter()
                    .map(|(id, kind)| {
                        Ok(Member {
                            id,
                            kind: kind_from(&kind)?,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                view(q.resource_type, &r, Some(&members), None, q.base)
            }
        };
        candidates.push((r, v));
    }
    let q = if filter_in_rust {
        *q
    } else {
        Query { filter: None, ..*q }
    };
    Ok(query::reference_page(&q, candidates))
}

impl Store for PostgresStore {
    fn create_directory(&self, d: NewDirectory) -> Result<Directory, StoreError> {
        check_directory_name(&d.name)?;
        self.write(|tx, _| {
            let row = tx
                .query_opt(
                    &format!(
                        "INSERT INTO directories (name, kind, retention_days, user_name_scope, keep_password_hashes, strict) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING RETURNING {DIRECTORY_COLUMNS}"
                    ),
                    &[
                        &d.name,
                        &d.kind.as_str(),
                        &i64::from(d.retention_days),
                        &d.user_name_scope.as_str(),
                        &d.keep_password_hashes,
                        &d.strict,
                    ],
                )?
                .ok_or_else(|| StoreError::Uniqueness {
                    attribute: "name",
                    value: d.name.clone(),
                })?;
            directory(&row)
        })
    }

    fn directories(&self) -> Result<Vec<Directory>, StoreError> {
        self.client()?
            .query(
                &format!("SELECT {DIRECTORY_COLUMNS} FROM directories ORDER BY name"),
                &[],
            )?
            .iter()
            .map(directory)
            .collect()
    }

    fn directory(&self, name: &str) -> Result<Option<Directory>, StoreError> {
        // No stored text holds U+0000, which PostgreSQL refuses in a parameter.
        if name.contains('\0') {
            return Ok(None);
        }
        self.client()?
            .query_opt(
                &format!("SELECT {DIRECTORY_COLUMNS} FROM directories WHERE name = $1"),
                &[&name],
            )?
            .as_ref()
            .map(directory)
            .transpose()
    }

    fn create(&self, n: NewResource) -> Result<Resource, StoreError> {
        self.write(|tx, now| create_in(tx, now, &n))
    }

    /// One transaction for the whole batch, each write in a savepoint of its own, so that
    /// a write refused (a taken name, a version mismatch) leaves the others to commit.
    fn batch(&self, writes: Vec<Write>) -> Result<Vec<WriteOutcome>, StoreError> {
        self.write(|tx, now| {
            let mut out = Vec::with_capacity(writes.len());
            // Plain creates in a row (an import's) go in a few statements, not three each,
            // and so do member adds in a row (an import's groups); at most one of the two
            // waits at a time, so that outcomes stay in the writes' order.
            let mut plain: Vec<&NewResource> = Vec::new();
            let mut adds: Vec<MemberAdd<'_>> = Vec::new();
            for w in &writes {
                if let Write::Create(n) = w
                    && n.members.is_empty()
                    && n.password.is_none()
                {
                    out.extend(add_members_many(tx, now, &std::mem::take(&mut adds))?);
                    plain.push(n);
                    continue;
                }
                for outcome in create_many(tx, now, &std::mem::take(&mut plain))? {
                    out.push(outcome.map(Some));
                }
                if let Some(add) = MemberAdd::of(w) {
                    adds.push(add);
                    continue;
                }
                out.extend(add_members_many(tx, now, &std::mem::take(&mut adds))?);
                // A create refused is refused before it writes; other writes may fail
                // after writing something, which a savepoint of their own undoes.
                if let Write::Create(n) = w
                    && n.members.is_empty()
                {
                    out.push(one_create(tx, now, n)?.map(Some));
                    continue;
                }
                out.push(in_savepoint(tx, |sp| match w {
                    Write::Create(n) => create_in(sp, now, n).map(Some),
                    Write::Update {
                        directory,
                        kind,
                        id,
                        expected_version,
                        change,
                    } => update_in(sp, now, *directory, *kind, id, *expected_version, change)
                        .map(Some),
                    Write::Delete {
                        directory,
                        kind,
                        id,
                        expected_version,
                    } => {
                        delete_in(sp, *directory, *kind, id, *expected_version, now).map(|()| None)
                    }
                })?);
            }
            for outcome in create_many(tx, now, &plain)? {
                out.push(outcome.map(Some));
            }
            out.extend(add_members_many(tx, now, &adds)?);
            Ok(out)
        })
    }

    fn get(&self, directory: i64, kind: Kind, id: &str) -> Result<Option<Resource>, StoreError> {
        self.client()?
            .query_opt(
                &format!(
                    "SELECT {RESOURCE_COLUMNS} FROM resources WHERE id = $1 AND directory = $2 AND kind = $3"
                ),
                &[&id, &directory, &kind.as_str()],
            )?
            .as_ref()
            .map(resource)
            .transpose()
    }

    fn get_by_name(
        &self,
        directory: i64,
        kind: Kind,
        name: &str,
    ) -> Result<Option<Resource>, StoreError> {
        if name.contains('\0') {
            return Ok(None);
        }
        self.client()?
            .query_opt(
                &format!(
                    "SELECT {RESOURCE_COLUMNS} FROM resources WHERE directory = $1 AND kind = $2 AND name_key = $3"
                ),
                &[&directory, &kind.as_str(), &fold(name).as_ref()],
            )?
            .as_ref()
            .map(resource)
            .transpose()
    }

    fn update(
        &self,
        directory: i64,
        kind: Kind,
        id: &str,
        expected_version: Option<u64>,
        change: Change,
    ) -> Result<Resource, StoreError> {
        self.write(|tx, now| update_in(tx, now, directory, kind, id, expected_version, &change))
    }

    fn delete(
        &self,
        directory: i64,
        kind: Kind,
        id: &str,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        self.write(|tx, now| delete_in(tx, directory, kind, id, expected_version, now))
    }

    fn list(&self, directory: i64, kind: Kind) -> Result<Vec<Resource>, StoreError> {
        self.client()?
            .query(
                &format!(
                    "SELECT {RESOURCE_COLUMNS} FROM resources WHERE directory = $1 AND kind = $2 ORDER BY id"
                ),
                &[&directory, &kind.as_str()],
            )?
            .iter()
            .map(resource)
            .collect()
    }

    fn find_by_external_id(
        &self,
        directory: i64,
        kind: Kind,
        external_id: &str,
    ) -> Result<Vec<Resource>, StoreError> {
        self.client()?
            .query(
                &format!(
                    "SELECT {RESOURCE_COLUMNS} FROM resources WHERE directory = $1 AND kind = $2 AND external_id = $3 ORDER BY id"
                ),
                &[&directory, &kind.as_str(), &external_id],
            )?
            .iter()
            .map(resource)
            .collect()
    }

    fn count(&self, directory: i64, kind: Kind) -> Result<u64, StoreError> {
        let n: Option<i64> = self
            .client()?
            .query_opt(
                "SELECT n FROM resource_counts WHERE directory = $1 AND kind = $2",
                &[&directory, &kind.as_str()],
            )?
            .map(|r| r.get(0));
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    fn query(&self, q: &Query<'_>) -> Result<Page, StoreError> {
        let mut sql = filter::Sql::default();
        let Some(selection) = selection(q, &mut sql) else {
            // No SQL for this filter: the evaluator selects too.
            let mut sql = filter::Sql::default();
            let selection = of_kind(q, &mut sql);
            return self.read(|tx| page_in_rust(tx, q, &sql, &selection, true));
        };
        let selection_params = sql.params.len();
        // A sorted cursor page continues from its position in SQL (a keyset) when the sort
        // is a column's; otherwise the page is sorted in Rust.
        let keyset = match (q.sort, q.start) {
            (Some(sort), Start::AfterPosition(p)) => {
                crate::store::sql::column_after(sort, q.kind, p, &mut sql)
            }
            _ => None,
        };
        let order = match (q.sort, q.start) {
            (None, _) => Some("r.id".to_owned()),
            (Some(_), Start::AfterPosition(_)) if keyset.is_none() => None,
            (Some(sort), _) => crate::store::sql::column_order(sort, q.kind),
        };
        let Some(order) = order else {
            return self.read(|tx| page_in_rust(tx, q, &sql, &selection, false));
        };
        let statements = page_sql(q, sql, &selection, selection_params, &order, keyset);
        // A lookup's page usually tells its total (`totalResults`): then it is one
        // statement, which needs no transaction to be one snapshot.
        if q.filter.is_some_and(|f| is_lookup(f.root(), q.kind))
            && let Some(page) = run_page(&mut *self.client()?, q, &statements, false)?
        {
            return Ok(page);
        }
        // Allowed to count, it always has a page.
        self.read(|tx| run_page(tx, q, &statements, true))?
            .ok_or_else(|| StoreError::Backend("a page without its total".into()))
    }

    fn change_members(
        &self,
        directory: i64,
        group: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<u64, StoreError> {
        self.write(|tx, now| {
            // The group's row lock orders concurrent member changes of one group.
            let row = tx
                .query_opt(
                    "SELECT version, modified FROM resources WHERE id = $1 AND directory = $2 AND kind = 'Group' FOR UPDATE",
                    &[&group, &directory],
                )?
                .ok_or_else(|| StoreError::NotFound {
                    what: format!("Group `{group}`"),
                })?;
            let version: i64 = row.get(0);
            let now = stamp(now, time_from(row.get(1))?);
            let mut changed = false;
            for id in add {
                if id == group {
                    return Err(contains_itself(group));
                }
                let inserted = tx.execute(
                    "INSERT INTO memberships (group_id, member_id, member_kind) \
                     SELECT $1, id, kind FROM resources WHERE id = $2 AND directory = $3 \
                     ON CONFLICT DO NOTHING",
                    &[&group, id, &directory],
                )?;
                if inserted > 0 {
                    changed = true;
                    continue;
                }
                let exists = tx
                    .query_opt(
                        "SELECT 1 FROM resources WHERE id = $1 AND directory = $2",
                        &[id, &directory],
                    )?
                    .is_some();
                if !exists {
                    return Err(not_a_member(id));
                }
            }
            for id in remove {
                changed |= tx.execute(
                    "DELETE FROM memberships WHERE group_id = $1 AND member_id = $2",
                    &[&group, id],
                )? > 0;
            }
            if !changed {
                return Ok(version as u64);
            }
            let version = version as u64 + 1;
            tx.execute(
                "UPDATE resources SET version = $1, modified = $2 WHERE id = $3",
                &[&(version as i64), &now.to_string(), &group],
            )?;
            record_event(tx, directory, Kind::Group, group, version, EventKind::Updated, now)?;
            Ok(version)
        })
    }

    fn members(&self, directory: i64, group: &str) -> Result<Vec<Member>, StoreError> {
        members_in(&mut *self.client()?, directory, group)
    }

    fn all_members(&self, directory: i64) -> Result<HashMap<String, Vec<Member>>, StoreError> {
        let rows = self
            .client()?
            .query(crate::store::sql::ALL_MEMBERS, &[&directory])?;
        let mut out: HashMap<String, Vec<Member>> = HashMap::new();
        for row in &rows {
            out.entry(row.get(0)).or_default().push(Member {
                id: row.get(1),
                kind: kind_from(row.get(2))?,
            });
        }
        Ok(out)
    }

    fn groups_of(&self, directory: i64, member: &str) -> Result<Vec<String>, StoreError> {
        groups_in(&mut *self.client()?, directory, member)
    }

    fn get_user_with_groups(
        &self,
        directory: i64,
        id: &str,
    ) -> Result<Option<(Resource, Vec<String>)>, StoreError> {
        // One statement, one snapshot: the groups come as a JSON array beside the row.
        self.client()?
            .query_opt(
                &format!(
                    "SELECT {RESOURCE_COLUMNS_R}, {GROUPS_COLUMN} FROM resources r \
                     WHERE r.id = $1 AND r.directory = $2 AND r.kind = 'User'"
                ),
                &[&id, &directory],
            )?
            .map(|row| Ok((resource(&row)?, groups_from(row.get(11), id)?)))
            .transpose()
    }

    fn password_hash(&self, directory: i64, id: &str) -> Result<Option<PasswordHash>, StoreError> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT p.hash FROM passwords p JOIN resources r ON r.id = p.user_id \
                 WHERE p.user_id = $1 AND r.directory = $2 AND r.kind = 'User'",
                &[&id, &directory],
            )?
            .map(|r| PasswordHash(r.get(0))))
    }

    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.client()?
            .query(
                "SELECT seq, directory, kind, resource_id, event, version, time FROM events \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[
                    &i64::try_from(after).unwrap_or(i64::MAX),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
            )?
            .iter()
            .map(|row| {
                let event: String = row.get(4);
                Ok(Event {
                    seq: row.get::<_, i64>(0) as u64,
                    directory: row.get(1),
                    kind: kind_from(row.get(2))?,
                    id: row.get(3),
                    event: event_from(&event)?,
                    version: row.get::<_, i64>(5) as u64,
                    time: time_from(row.get(6))?,
                })
            })
            .collect()
    }

    fn purge_inactive(&self, directory: i64, now: DateTime) -> Result<u64, StoreError> {
        self.write(|tx, stamp| {
            let retention: i64 = tx
                .query_opt(
                    "SELECT retention_days FROM directories WHERE id = $1",
                    &[&directory],
                )?
                .map(|r| r.get(0))
                .ok_or_else(|| StoreError::NotFound {
                    what: format!("directory {directory}"),
                })?;
            let candidates: Vec<(String, String)> = tx
                .query(
                    // Locked: a user made active again meanwhile (on another node) is read
                    // again after that commits, and no longer selected.
                    "SELECT id, inactive_since FROM resources WHERE directory = $1 AND kind = 'User' \
                     AND inactive_since IS NOT NULL ORDER BY id FOR UPDATE",
                    &[&directory],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let mut purged = 0;
            for (id, since) in candidates {
                if now.unix_seconds() - time_from(&since)?.unix_seconds() >= retention * 86_400 {
                    delete_in(tx, directory, Kind::User, &id, None, stamp)?;
                    purged += 1;
                }
            }
            Ok(purged)
        })
    }

    fn add_token(&self, directory: i64, hash: [u8; 32]) -> Result<StoredToken, StoreError> {
        self.write(|tx, now| {
            let row = tx
                .query_opt(
                    "INSERT INTO tokens (directory, hash, created) \
                     SELECT id, $2, $3 FROM directories WHERE id = $1 RETURNING id",
                    &[&directory, &hash.as_slice(), &now.to_string()],
                )?
                .ok_or_else(|| StoreError::NotFound {
                    what: format!("directory {directory}"),
                })?;
            Ok(StoredToken {
                id: row.get(0),
                directory,
                hash,
                created: now,
            })
        })
    }

    fn tokens(&self, directory: i64) -> Result<Vec<StoredToken>, StoreError> {
        self.client()?
            .query(
                "SELECT id, hash, created FROM tokens WHERE directory = $1 ORDER BY id",
                &[&directory],
            )?
            .iter()
            .map(|row| {
                let id: i64 = row.get(0);
                let hash: Vec<u8> = row.get(1);
                let hash: [u8; 32] = hash
                    .try_into()
                    .map_err(|_| StoreError::Backend(format!("token {id} has a malformed hash")))?;
                Ok(StoredToken {
                    id,
                    directory,
                    hash,
                    created: time_from(row.get(2))?,
                })
            })
            .collect()
    }

    fn revoke_token(&self, directory: i64, id: i64) -> Result<(), StoreError> {
        self.write(|tx, _| {
            let n = tx.execute(
                "DELETE FROM tokens WHERE directory = $1 AND id = $2",
                &[&directory, &id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: format!("token {id}"),
                });
            }
            Ok(())
        })
    }

    fn add_run(&self, run: SyncRun) -> Result<SyncRun, StoreError> {
        self.write(|tx, _| {
            let row = tx
                .query_opt(
                    "INSERT INTO sync_runs (directory, started, finished, outcome, report) \
                     SELECT id, $2, $3, $4, $5::text::jsonb FROM directories WHERE id = $1 RETURNING id",
                    &[
                        &run.directory,
                        &run.started.to_string(),
                        &run.finished.to_string(),
                        &run.outcome,
                        &run.report.to_string(),
                    ],
                )?
                .ok_or_else(|| StoreError::NotFound {
                    what: format!("directory {}", run.directory),
                })?;
            tx.execute(
                "DELETE FROM sync_runs WHERE directory = $1 AND id <= \
                 (SELECT id FROM sync_runs WHERE directory = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                &[&run.directory, &(super::KEPT_RUNS as i64)],
            )?;
            Ok(SyncRun {
                id: row.get(0),
                ..run.clone()
            })
        })
    }

    fn runs(&self, directory: i64, limit: usize) -> Result<Vec<SyncRun>, StoreError> {
        self.client()?
            .query(
                "SELECT id, started, finished, outcome, report::text FROM sync_runs \
                 WHERE directory = $1 ORDER BY id DESC LIMIT $2",
                &[&directory, &i64::try_from(limit).unwrap_or(i64::MAX)],
            )?
            .iter()
            .map(|row| {
                Ok(SyncRun {
                    id: row.get(0),
                    directory,
                    started: time_from(row.get(1))?,
                    finished: time_from(row.get(2))?,
                    outcome: row.get(3),
                    report: json_from(row.get(4))?,
                })
            })
            .collect()
    }

    fn user_counts(&self, directory: i64) -> Result<UserCounts, StoreError> {
        let row = self.client()?.query_one(
            "SELECT COUNT(*) FILTER (WHERE active), COUNT(*) FILTER (WHERE NOT active) \
             FROM resources WHERE directory = $1 AND kind = 'User'",
            &[&directory],
        )?;
        Ok(UserCounts {
            active: row.get::<_, i64>(0) as u64,
            inactive: row.get::<_, i64>(1) as u64,
        })
    }

    /// A session-level advisory lock on a connection of its own: the server releases it
    /// when the connection closes, and TCP keepalives close the connection of a node that
    /// died without closing it. The server's side of the connection needs its own: the
    /// client's keepalives tell the client that the server is gone, not the server that the
    /// client is (Linux's default would hold a dead node's lock for about two hours).
    fn try_lock_sync(&self, directory: &str) -> Result<Option<SyncLock>, StoreError> {
        check_directory_name(directory)?;
        let mut config = self.endpoint.config.clone();
        // Named, so that an operator sees in `pg_stat_activity` which process holds it.
        config
            .keepalives(true)
            .keepalives_idle(std::time::Duration::from_secs(30))
            .application_name(&format!(
                "usersync sync of {directory} (pid {})",
                std::process::id()
            ));
        let mut client = self.endpoint.connect(&config)?;
        client.batch_execute(
            "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; \
             SET tcp_keepalives_count = 3",
        )?;
        // An idle session timeout set for the database would end the holder's session, and
        // the lock with it, while it syncs; PostgreSQL before 14 has none (then: an error,
        // and nothing to undo).
        let _ = client.batch_execute("SET idle_session_timeout = 0");
        // Both keys are int4: the name's hash is folded into 32 bits.
        let hash = super::name_hash(directory);
        let key = (hash ^ (hash >> 32)) as u32 as i32;
        let taken: bool = client
            .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&SYNC_LOCK, &key])?
            .get(0);
        Ok(taken.then(|| SyncLock::new(SessionLock(std::sync::Mutex::new(client)))))
    }

    /// Checks the feed after the store's listener ([`pool::Feed`]) is listening, then
    /// sleeps until it hears a commit: a commit after the check wakes the wait, one before
    /// it is seen by the check. No connection is held while asleep.
    fn wait_for_events(
        &self,
        after: u64,
        timeout: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let deadline = std::time::Instant::now() + timeout;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        loop {
            let heard = self.feed.listen(&self.endpoint)?;
            if self
                .client()?
                .query_opt("SELECT 1 FROM events WHERE seq > $1 LIMIT 1", &[&after])?
                .is_some()
            {
                return Ok(true);
            }
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            self.feed.wait(heard, deadline);
        }
    }
}
