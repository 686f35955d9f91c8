//! The SCIM endpoint over the embedded SQLite store at scale, in process: loads users and a
//! large group, then times the operations identity providers repeat, each beside a raw
//! SQLite primary-key lookup of the same rows measured in the same run.
//!
//! Usage: `usersync-store-bench [USERS] [GROUP_MEMBERS]` (defaults 1,000,000 and 100,000).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use usersync_core::scim::schema::SchemaRegistry;
use usersync_core::scim::service::{ScimRequest, Service, ServiceConfig, new_ids};
use usersync_core::store::sqlite::SqliteStore;
use usersync_core::store::{
    Change, DirectoryKind, Kind, Member, NewDirectory, NewResource, Store, system_clock,
};

const SAMPLES: usize = 20_000;

/// The allocator `usersync serve` uses, so that the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let users = args.first().copied().unwrap_or(1_000_000);
    let members = args.get(1).copied().unwrap_or(100_000).min(users);
    let dir = std::env::temp_dir().join(format!("usersync-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bench.db");
    let store = Arc::new(SqliteStore::open(&path, system_clock()).expect("open"));
    let d = store
        .create_directory(NewDirectory::new("bench", DirectoryKind::Scim))
        .expect("directory");

    let started = Instant::now();
    for i in 0..users {
        store
            .create(NewResource {
                directory: d.id,
                kind: Kind::User,
                id: format!("u{i:08}"),
                external_id: Some(format!("ext-{i:08}")),
                name: format!("user{i:08}@example.com"),
                active: true,
                attributes: json!({"userName": format!("user{i:08}@example.com"),
                    "name": {"givenName": "Bench", "familyName": format!("User {i}")},
                    "emails": [{"value": format!("user{i:08}@example.com"), "type": "work", "primary": true}]}),
                members: Vec::new(),
                password: None,
            })
            .expect("create");
        if i > 0 && i % 100_000 == 0 {
            eprintln!(
                "{i} users loaded ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let load_users = started.elapsed();
    store
        .create(NewResource {
            directory: d.id,
            kind: Kind::Group,
            id: "big".into(),
            external_id: None,
            name: "Everyone".into(),
            active: true,
            attributes: json!({"displayName": "Everyone"}),
            members: Vec::new(),
            password: None,
        })
        .expect("group");
    // The group the raw member-add baseline writes to, so that it never adds a member the
    // PATCHes will add.
    store
        .create(NewResource {
            directory: d.id,
            kind: Kind::Group,
            id: "raw".into(),
            external_id: None,
            name: "Raw baseline".into(),
            active: true,
            attributes: json!({"displayName": "Raw baseline"}),
            members: Vec::new(),
            password: None,
        })
        .expect("group");
    let started = Instant::now();
    for chunk in (0..members).collect::<Vec<_>>().chunks(10_000) {
        let add = chunk
            .iter()
            .map(|i| Member {
                id: format!("u{i:08}"),
                kind: Kind::User,
            })
            .collect();
        store
            .update(
                d.id,
                Kind::Group,
                "big",
                None,
                Change {
                    add_members: add,
                    ..Change::default()
                },
            )
            .expect("members");
    }
    let load_members = started.elapsed();
    println!(
        "loaded {users} users in {:.1} s, a {members}-member group in {:.1} s",
        load_users.as_secs_f64(),
        load_members.as_secs_f64()
    );

    let config = ServiceConfig::default().with_require_token(false);
    let service = Service::with(store.clone(), SchemaRegistry::core(), config, new_ids());
    let raw = rusqlite::Connection::open(&path).expect("raw connection");
    // The same durability and caching as the store's own connection, so that the raw
    // figures are what SQLite itself costs for the same work.
    raw.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -65536;",
    )
    .expect("raw connection settings");
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);

    // USERSYNC_BENCH_ONLY=<text>: run only the operations whose name contains it (profiling).
    let only = std::env::var("USERSYNC_BENCH_ONLY").ok();
    let baseline = measure("raw SQLite primary-key lookup", || {
        let i = rng.below(users);
        let mut stmt = raw
            .prepare_cached("SELECT attributes FROM resources WHERE id = ?1")
            .expect("prepare");
        let text: String = stmt
            .query_row([format!("u{i:08}")], |r| r.get(0))
            .expect("row");
        black_box(text);
    });
    let page_baseline = measure("raw SQLite 100-row page, random offset", || {
        if only.as_deref().is_some_and(|o| !o.contains("page")) {
            return;
        }
        let offset = rng.below(users);
        let mut stmt = raw
            .prepare_cached(
                "SELECT id, attributes FROM resources WHERE directory = ?1 AND kind = 'User' \
                 ORDER BY id LIMIT 100 OFFSET ?2",
            )
            .expect("prepare");
        let page: Vec<(String, String)> = stmt
            .query_map(rusqlite::params![d.id, offset as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("page")
            .map(|r| r.expect("row"))
            .collect();
        black_box(page);
    });
    raw.execute_batch("CREATE TABLE IF NOT EXISTS bench_scratch (k INTEGER PRIMARY KEY, v TEXT)")
        .expect("scratch table");
    let mut next_key = 0_i64;
    let write_baseline = measure("raw SQLite one-row insert transaction", || {
        next_key += 1;
        raw.execute_batch("BEGIN IMMEDIATE").expect("begin");
        raw.prepare_cached("INSERT INTO bench_scratch (k, v) VALUES (?1, ?2)")
            .expect("prepare")
            .execute(rusqlite::params![next_key, "u00000001"])
            .expect("insert");
        raw.execute_batch("COMMIT").expect("commit");
    });
    // What SQLite itself costs for the statements a member add runs (check the group, insert
    // the row from the member's own, bump the version, append the event), on the raw
    // connection: the floor under the PATCH figures, on a group of its own.
    let mut next_raw = 0;
    let membership_baseline = measure("raw SQLite member-add transaction (same SQL)", || {
        if only.as_deref().is_some_and(|o| !o.contains("PATCH")) {
            return;
        }
        next_raw = (next_raw + 1) % users;
        raw.execute_batch("BEGIN IMMEDIATE").expect("begin");
        let version: i64 = raw
            .prepare_cached(
                "SELECT version FROM resources WHERE id = ?1 AND directory = ?2 AND kind = 'Group'",
            )
            .expect("prepare")
            .query_row(rusqlite::params!["raw", d.id], |r| r.get(0))
            .expect("group");
        raw.prepare_cached(
            "INSERT OR IGNORE INTO memberships (group_id, member_id, member_kind) \
             SELECT ?1, id, kind FROM resources WHERE id = ?2 AND directory = ?3",
        )
        .expect("prepare")
        .execute(rusqlite::params!["raw", format!("u{next_raw:08}"), d.id])
        .expect("insert");
        raw.prepare_cached("UPDATE resources SET version = ?1, modified = ?2 WHERE id = ?3")
            .expect("prepare")
            .execute(rusqlite::params![
                version + 1,
                "2026-11-28T00:00:00Z",
                "raw"
            ])
            .expect("version");
        raw.prepare_cached(
            "INSERT INTO events (directory, kind, resource_id, event, version, time) \
             VALUES (?1, 'Group', ?2, 'updated', ?3, ?4)",
        )
        .expect("prepare")
        .execute(rusqlite::params![
            d.id,
            "raw",
            version + 1,
            "2026-11-28T00:00:00Z"
        ])
        .expect("event");
        raw.execute_batch("COMMIT").expect("commit");
    });
    let mut rows = vec![
        baseline.clone(),
        page_baseline.clone(),
        write_baseline.clone(),
        membership_baseline.clone(),
    ];
    let mut run = |name: &str, request: &mut dyn FnMut(&mut Rng) -> (ScimRequest, u16)| {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            return;
        }
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let stats = measure(name, || {
            let (req, want) = request(&mut rng);
            let res = service.handle(&req);
            assert_eq!(
                res.status,
                want,
                "{name}: {}",
                String::from_utf8_lossy(&res.body)
            );
        });
        rows.push(stats);
    };
    run("GET /Users/<id>", &mut |r| {
        (
            ScimRequest::new(
                "GET",
                &format!("/scim/v2/bench/Users/u{:08}", r.below(users)),
            ),
            200,
        )
    });
    run("filter userName eq", &mut |r| {
        let q = format!(
            "filter=userName eq \"user{:08}@example.com\"",
            r.below(users)
        );
        (
            ScimRequest::new("GET", "/scim/v2/bench/Users").with_query(&q),
            200,
        )
    });
    run("filter externalId eq", &mut |r| {
        let q = format!("filter=externalId eq \"ext-{:08}\"", r.below(users));
        (
            ScimRequest::new("GET", "/scim/v2/bench/Users").with_query(&q),
            200,
        )
    });
    let patch = |op: &str, id: usize| {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": op, "path": "members", "value": [{"value": format!("u{id:08}")}]}]});
        ScimRequest::new("PATCH", "/scim/v2/bench/Groups/big").with_body(&body.to_string())
    };
    let outside = users - members;
    if outside > 0 {
        let mut next_add = 0usize;
        run(
            &format!("PATCH add 1 member ({members}-member group)"),
            &mut |_| {
                next_add += 1;
                (patch("Add", members + (next_add - 1) % outside), 204)
            },
        );
        let mut next_remove = 0usize;
        run(
            &format!("PATCH remove 1 member ({members}-member group)"),
            &mut |_| {
                next_remove += 1;
                (patch("Remove", members + (next_remove - 1) % outside), 204)
            },
        );
    }
    run("GET 100-item page, first", &mut |_| {
        (
            ScimRequest::new("GET", "/scim/v2/bench/Users").with_query("count=100"),
            200,
        )
    });
    run("GET 100-item page, random startIndex", &mut |r| {
        let q = format!("startIndex={}&count=100", 1 + r.below(users));
        (
            ScimRequest::new("GET", "/scim/v2/bench/Users").with_query(&q),
            200,
        )
    });

    println!(
        "\n{:<46}{:>12}{:>10}{:>10}{:>14}{:>14}",
        "operation", "ops/s", "p50 µs", "p99 µs", "p50 vs raw", "vs same SQL"
    );
    for s in &rows {
        // A member change beside the raw transaction of the same statements: what usersync
        // adds to SQLite's own cost.
        let same_sql = if s.name.contains("PATCH") {
            format!("{:>13.1}x", micros(s.p50) / micros(membership_baseline.p50))
        } else {
            String::new()
        };
        println!(
            "{:<46}{:>12.0}{:>10.1}{:>10.1}{:>13.1}x{same_sql}",
            s.name,
            s.ops_per_s,
            micros(s.p50),
            micros(s.p99),
            // Pages are compared with a raw page, writes with a raw one-row write, everything
            // else with a raw lookup.
            micros(s.p50)
                / micros(if s.name.contains("page") {
                    page_baseline.p50
                } else if s.name.contains("PATCH") || s.name.contains("transaction") {
                    write_baseline.p50
                } else {
                    baseline.p50
                })
        );
    }
    println!(
        "\npeak memory (VmHWM): {}",
        usersync_benches::memory_report()
    );
    drop(service);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[derive(Clone)]
struct Stats {
    name: String,
    ops_per_s: f64,
    p50: Duration,
    p99: Duration,
}

/// Up to `SAMPLES` timed runs after a short warm-up, stopping after five seconds (at least
/// 100 runs) so that a slow operation still finishes.
fn measure(name: &str, mut op: impl FnMut()) -> Stats {
    for _ in 0..100 {
        op();
    }
    let mut times = Vec::with_capacity(SAMPLES);
    let started = Instant::now();
    while times.len() < SAMPLES && (times.len() < 100 || started.elapsed() < Duration::from_secs(5))
    {
        let t = Instant::now();
        op();
        times.push(t.elapsed());
    }
    let total = started.elapsed();
    times.sort_unstable();
    eprintln!("measured {name}");
    Stats {
        name: name.to_owned(),
        ops_per_s: times.len() as f64 / total.as_secs_f64(),
        p50: times[times.len() / 2],
        p99: times[times.len() * 99 / 100],
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
