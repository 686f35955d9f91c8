//! Criterion benchmark of an LDAP sync's plan, the CPU-only step between reading the source
//! and applying: 20,000 users (the mapping of `usersync-ldap-bench`) and 1,000 groups of 25,
//! planned against an empty store (a first import: every user mapped and created) and
//! against a store that already holds them (a re-sync with nothing to do, and one where
//! every user's title changed), and the read of that store's state (SQLite's, which runs
//! beside the source's read); then the first import's apply into a new SQLite database
//! file, beside the floor under it: the same rows written by bare prepared inserts, no
//! checks, already serialised. The runs of `usersync-ldap-bench` are too noisy on a shared
//! machine to show a change to one step of a few percent; compare code changes here with
//! criterion's baselines:
//! `cargo bench -p usersync-benches --bench plan -- --save-baseline before`, then
//! `-- --baseline before`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use usersync_benches::sync_selection;
use usersync_core::ldap::apply::{self, Target};
use usersync_core::ldap::config::SyncConfig;
use usersync_core::ldap::plan::{Current, plan};
use usersync_core::ldap::source::{Entry, Snapshot};
use usersync_core::store::sqlite::SqliteStore;
use usersync_core::store::{DirectoryKind, NewDirectory, Store, system_clock};

/// The allocator `usersync` itself uses: a plan makes and frees millions of small values.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USERS: usize = 20_000;
const GROUPS: usize = 1_000;
const MEMBERS_PER_GROUP: usize = 25;
const BASE: &str = "dc=example,dc=com";

fn config() -> SyncConfig {
    SyncConfig::from_toml(&format!(
        "directory = \"corp\"\n[connection]\nurls = [\"ldap://127.0.0.1:1\"]\ntls = \"none\"\n{}",
        sync_selection(BASE)
    ))
    .expect("the benchmark's configuration")
}

/// The entries `usersync-ldap-bench` loads into slapd, as the reader hands them over, every
/// user with the title `title`.
fn entries(title: &str) -> Snapshot {
    let users = (0..USERS)
        .map(|i| {
            let uid = format!("user{i:07}");
            let (cn, sn) = (format!("User {i}"), format!("Number {i}"));
            let (mail, department) = (format!("{uid}@Example.com"), (i % 50).to_string());
            Entry::new(
                &format!("uid={uid},ou=people,{BASE}"),
                [
                    (
                        "entryUUID",
                        vec![format!("00000000-0000-4000-8000-{i:012}").as_str()],
                    ),
                    ("uid", vec![uid.as_str()]),
                    ("cn", vec![cn.as_str()]),
                    ("givenName", vec!["User"]),
                    ("sn", vec![sn.as_str()]),
                    ("mail", vec![mail.as_str()]),
                    ("title", vec![title]),
                    ("departmentNumber", vec![department.as_str()]),
                ],
            )
        })
        .collect();
    let mut next = 0_usize;
    let groups = (0..GROUPS)
        .map(|g| {
            let members: Vec<String> = (0..MEMBERS_PER_GROUP)
                .map(|_| {
                    let dn = format!("uid=user{:07},ou=people,{BASE}", next % USERS);
                    next = next.wrapping_mul(7).wrapping_add(13) % USERS + 1;
                    dn
                })
                .collect();
            let cn = format!("group{g:05}");
            Entry::new(
                &format!("cn={cn},ou=groups,{BASE}"),
                [
                    (
                        "entryUUID",
                        vec![format!("00000000-0000-4000-9000-{g:012}").as_str()],
                    ),
                    ("cn", vec![cn.as_str()]),
                    ("member", members.iter().map(String::as_str).collect()),
                ],
            )
        })
        .collect();
    Snapshot {
        users,
        groups,
        server: "ldap://127.0.0.1:1".into(),
        ..Snapshot::default()
    }
}

fn plans(c: &mut Criterion) {
    let config = config();
    let snapshot = entries("Engineer");
    let empty = Current::default();
    // The target a re-sync reads: SQLite's, which hands held users over as text.
    let store = SqliteStore::open_in_memory(system_clock()).expect("an SQLite store");
    let first = plan(&config, &snapshot, &empty);
    assert!(first.incomplete.is_empty(), "{first}");
    apply::apply(&store, &config, &first, false).expect("the first import applies");
    let held = apply::LocalTarget(&store)
        .current(&config)
        .expect("the store's state");
    assert!(
        plan(&config, &snapshot, &held).changes.is_empty(),
        "a re-sync has nothing to do"
    );

    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    group.bench_function("first import", |b| {
        b.iter(|| black_box(plan(&config, black_box(&snapshot), &empty)));
    });
    group.bench_function("no change", |b| {
        b.iter(|| black_box(plan(&config, black_box(&snapshot), &held)));
    });
    // A re-sync where every user changed: each held user's attributes are parsed and diffed.
    let retitled = entries("Manager");
    group.bench_function("every user retitled", |b| {
        b.iter(|| black_box(plan(&config, black_box(&retitled), &held)));
    });
    // The step beside the source's read: what the target holds, as the plan takes it.
    group.bench_function("the target's read", |b| {
        b.iter(|| black_box(apply::LocalTarget(&store).current(&config)));
    });
    group.finish();

    // A new database file for each apply: a first import writes into an empty store.
    let dir = std::env::temp_dir().join(format!("usersync-plan-bench-{}", std::process::id()));
    let mut group = c.benchmark_group("apply");
    group.sample_size(10);
    let mut n = 0_u32;
    // The previous database goes: a hundred of them would fill the disk.
    let mut new_database = || {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        n += 1;
        dir.join(format!("{n}.db"))
    };
    group.bench_function("first import into SQLite", |b| {
        b.iter_batched(
            || SqliteStore::open(&new_database(), system_clock()).expect("an SQLite store"),
            |store| {
                let report = apply::apply(&store, &config, &first, false).expect("applies");
                assert!(report.failures.is_empty(), "{report:?}");
                store
            },
            criterion::BatchSize::PerIteration,
        );
    });
    group.bench_function("the same rows, bare inserts (the floor)", |b| {
        b.iter_batched(
            || {
                let path = new_database();
                let store = SqliteStore::open(&path, system_clock()).expect("an SQLite store");
                let d = store
                    .create_directory(NewDirectory::new("corp", DirectoryKind::Ldap))
                    .expect("the directory")
                    .id;
                drop(store);
                (bare_connection(&path), bare_rows(&first, d))
            },
            |(conn, rows)| {
                bare_inserts(&conn, &rows);
                conn
            },
            criterion::BatchSize::PerIteration,
        );
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A connection set up as the store sets up its writer.
fn bare_connection(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("the database");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
         PRAGMA wal_autocheckpoint = 8192; PRAGMA cache_size = -65536;
         PRAGMA mmap_size = 1073741824; PRAGMA temp_store = MEMORY;",
    )
    .expect("the settings");
    conn
}

/// What the first import writes, row by row: (kind, id, anchor, name, attributes as JSON)
/// for each object, then (group id, member ids) for each group, in directory `d`.
struct BareRows {
    directory: i64,
    objects: Vec<(&'static str, String, String, String, String)>,
    members: Vec<(String, Vec<String>)>,
}

fn bare_rows(plan: &usersync_core::ldap::plan::Plan, directory: i64) -> BareRows {
    use usersync_core::ldap::plan::Action;
    use usersync_core::store::Kind;
    let mut ids = std::collections::HashMap::new();
    let mut objects = Vec::new();
    for (i, c) in plan.changes.iter().enumerate() {
        if c.action != Action::Create {
            continue;
        }
        // Time-ordered, as the apply's UUIDv7 ids.
        let id = format!("019d0000-0000-7000-8000-{i:012x}");
        let attributes: serde_json::Map<String, serde_json::Value> = c
            .diff()
            .iter()
            .map(|a| (a.attribute.clone(), a.new.clone()))
            .collect();
        let kind = if c.kind == Kind::User {
            "User"
        } else {
            "Group"
        };
        ids.insert(c.anchor.clone(), id.clone());
        let text = serde_json::Value::Object(attributes).to_string();
        objects.push((kind, id, c.anchor.clone(), c.name.clone(), text));
    }
    let members = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::AddMembers)
        .map(|c| {
            (
                ids[&c.anchor].clone(),
                c.members.iter().map(|m| ids[&m.anchor].clone()).collect(),
            )
        })
        .collect();
    BareRows {
        directory,
        objects,
        members,
    }
}

/// The rows of `bare_rows`, each object with its change-feed event, each group's members
/// with its version bump and event, in transactions of 1,000 writes, as the apply batches.
fn bare_inserts(conn: &rusqlite::Connection, rows: &BareRows) {
    use rusqlite::params;
    let now = "2026-11-29T12:00:00Z";
    let d = rows.directory;
    let event = "INSERT INTO events (directory, kind, resource_id, event, version, time) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    for chunk in rows.objects.chunks(1000) {
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        for (kind, id, anchor, name, attributes) in chunk {
            conn.prepare_cached(
                "INSERT INTO resources (id, directory, kind, external_id, name, name_key, \
                 unique_scope, active, version, created, modified, inactive_since, attributes) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, 1, ?8, ?8, NULL, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![id, d, kind, anchor, name, name, d, now, attributes])
            })
            .expect("a resource");
            conn.prepare_cached(event)
                .and_then(|mut s| s.execute(params![d, kind, id, "created", 1, now]))
                .expect("an event");
        }
        conn.execute_batch("COMMIT").expect("commit");
    }
    for chunk in rows.members.chunks(1000) {
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        for (group, members) in chunk {
            for m in members {
                conn.prepare_cached(
                    "INSERT OR IGNORE INTO memberships (group_id, member_id, member_kind) \
                     VALUES (?1, ?2, 'User')",
                )
                .and_then(|mut s| s.execute(params![group, m]))
                .expect("a membership");
            }
            conn.prepare_cached("UPDATE resources SET version = 2, modified = ?1 WHERE id = ?2")
                .and_then(|mut s| s.execute(params![now, group]))
                .expect("a version");
            conn.prepare_cached(event)
                .and_then(|mut s| s.execute(params![d, "Group", group, "updated", 2, now]))
                .expect("an event");
        }
        conn.execute_batch("COMMIT").expect("commit");
    }
}

criterion_group!(benches, plans);
criterion_main!(benches);
