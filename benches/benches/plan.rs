//! Criterion benchmark of an LDAP sync's plan, the CPU-only step between reading the source
//! and applying: 20,000 users (the mapping of `usersync-ldap-bench`) and 1,000 groups of 25,
//! planned against an empty store (a first import: every user mapped and created) and
//! against a store that already holds them (a re-sync with nothing to do); then the first
//! import's apply into a new SQLite database file. The runs of `usersync-ldap-bench` are
//! too noisy on a shared machine to show a change to one step of a few percent; compare
//! code changes here with criterion's baselines:
//! `cargo bench -p usersync-benches --bench plan -- --save-baseline before`, then
//! `-- --baseline before`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use usersync_benches::sync_selection;
use usersync_core::ldap::apply::{self, Target};
use usersync_core::ldap::config::SyncConfig;
use usersync_core::ldap::plan::{Current, plan};
use usersync_core::ldap::source::{Entry, Snapshot};
use usersync_core::store::memory::MemoryStore;
use usersync_core::store::sqlite::SqliteStore;
use usersync_core::store::system_clock;

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

/// The entries `usersync-ldap-bench` loads into slapd, as the reader hands them over.
fn snapshot() -> Snapshot {
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
                    ("title", vec!["Engineer"]),
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
    let snapshot = snapshot();
    let empty = Current::default();
    let store = MemoryStore::new(system_clock());
    let first = plan(&config, &snapshot, &empty);
    assert!(first.incomplete.is_empty(), "{first}");
    apply::apply(&store, &config, &first, false).expect("the first import applies");
    let held = apply::LocalTarget(&store)
        .current("corp")
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
    group.finish();

    // A new database file for each apply: a first import writes into an empty store.
    let dir = std::env::temp_dir().join(format!("usersync-plan-bench-{}", std::process::id()));
    let mut group = c.benchmark_group("apply");
    group.sample_size(10);
    let mut n = 0_u32;
    group.bench_function("first import into SQLite", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("a scratch directory");
                n += 1;
                SqliteStore::open(&dir.join(format!("{n}.db")), system_clock())
                    .expect("an SQLite store")
            },
            |store| {
                let report = apply::apply(&store, &config, &first, false).expect("applies");
                assert!(report.failures.is_empty(), "{report:?}");
                store
            },
            criterion::BatchSize::PerIteration,
        );
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, plans);
criterion_main!(benches);
