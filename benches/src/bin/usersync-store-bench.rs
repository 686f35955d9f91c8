//! The SCIM endpoint at scale, in process, on the embedded SQLite store and then on the
//! PostgreSQL store (a private server the benchmark starts): loads users and a large group,
//! then times the operations identity providers repeat, each beside the database's own cost
//! for the same rows (a raw primary-key lookup, page and write on a connection of its own)
//! measured in the same run. Ends with both stores side by side.
//!
//! Usage: `usersync-store-bench [USERS] [GROUP_MEMBERS] [--sqlite-only]` (defaults 1,000,000
//! and 100,000).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use usersync_core::scim::schema::SchemaRegistry;
use usersync_core::scim::service::{ScimRequest, Service, ServiceConfig, new_ids};
use usersync_core::store::postgres::PostgresStore;
use usersync_core::store::sqlite::SqliteStore;
use usersync_core::store::{
    Change, DirectoryKind, Kind, Member, NewDirectory, NewResource, Store, Write, system_clock,
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

/// The database's own cost of the work an operation does, on a connection of its own.
trait Raw {
    /// The row of user `id` (its attributes).
    fn lookup(&mut self, id: &str);
    /// 100 users from `offset`, in `id` order.
    fn page(&mut self, directory: i64, offset: usize);
    /// A one-row insert, committed.
    fn write(&mut self, key: i64);
    /// The statements a member add runs, in one transaction, on group `raw`.
    fn member_add(&mut self, directory: i64, member: &str);
    /// After the load: what the database does by itself soon after a bulk load.
    fn settle(&mut self) {}
}

struct RawSqlite(rusqlite::Connection);

impl Raw for RawSqlite {
    fn lookup(&mut self, id: &str) {
        let mut stmt = self
            .0
            .prepare_cached("SELECT attributes FROM resources WHERE id = ?1")
            .expect("prepare");
        let text: String = stmt.query_row([id], |r| r.get(0)).expect("row");
        black_box(text);
    }

    fn page(&mut self, directory: i64, offset: usize) {
        let mut stmt = self
            .0
            .prepare_cached(
                "SELECT id, attributes FROM resources WHERE directory = ?1 AND kind = 'User' \
                 ORDER BY id LIMIT 100 OFFSET ?2",
            )
            .expect("prepare");
        let page: Vec<(String, String)> = stmt
            .query_map(rusqlite::params![directory, offset as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("page")
            .map(|r| r.expect("row"))
            .collect();
        black_box(page);
    }

    fn write(&mut self, key: i64) {
        self.0.execute_batch("BEGIN IMMEDIATE").expect("begin");
        self.0
            .prepare_cached("INSERT INTO bench_scratch (k, v) VALUES (?1, ?2)")
            .expect("prepare")
            .execute(rusqlite::params![key, "u00000001"])
            .expect("insert");
        self.0.execute_batch("COMMIT").expect("commit");
    }

    fn member_add(&mut self, directory: i64, member: &str) {
        let raw = &self.0;
        raw.execute_batch("BEGIN IMMEDIATE").expect("begin");
        let version: i64 = raw
            .prepare_cached(
                "SELECT version FROM resources WHERE id = ?1 AND directory = ?2 AND kind = 'Group'",
            )
            .expect("prepare")
            .query_row(rusqlite::params!["raw", directory], |r| r.get(0))
            .expect("group");
        raw.prepare_cached(
            "INSERT OR IGNORE INTO memberships (group_id, member_id, member_kind) \
             SELECT ?1, id, kind FROM resources WHERE id = ?2 AND directory = ?3",
        )
        .expect("prepare")
        .execute(rusqlite::params!["raw", member, directory])
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
            directory,
            "raw",
            version + 1,
            "2026-11-28T00:00:00Z"
        ])
        .expect("event");
        raw.execute_batch("COMMIT").expect("commit");
    }
}

/// The raw PostgreSQL baseline, with its statements prepared once (one round trip each).
struct RawPostgres {
    client: postgres::Client,
    lookup: postgres::Statement,
    page: postgres::Statement,
    write: postgres::Statement,
    member_add: [postgres::Statement; 4],
}

impl RawPostgres {
    fn new(url: &str) -> Self {
        let mut client = postgres::Client::connect(url, postgres::NoTls).expect("raw connection");
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS bench_scratch (k BIGINT PRIMARY KEY, v TEXT)",
            )
            .expect("scratch table");
        let mut prepare = |sql: &str| client.prepare(sql).expect("prepare");
        let lookup = prepare("SELECT attributes::text FROM resources WHERE id = $1");
        let page = prepare(
            "SELECT id, attributes::text FROM resources WHERE directory = $1 AND kind = 'User' \
             ORDER BY id LIMIT 100 OFFSET $2",
        );
        let write = prepare("INSERT INTO bench_scratch (k, v) VALUES ($1, $2)");
        let member_add = [
            prepare(
                "SELECT version FROM resources WHERE id = $1 AND directory = $2 AND kind = 'Group' FOR UPDATE",
            ),
            prepare(
                "INSERT INTO memberships (group_id, member_id, member_kind) \
                 SELECT $1, id, kind FROM resources WHERE id = $2 AND directory = $3 ON CONFLICT DO NOTHING",
            ),
            prepare("UPDATE resources SET version = $1, modified = $2 WHERE id = $3"),
            prepare(
                "INSERT INTO events (directory, kind, resource_id, event, version, time) \
                 SELECT $1::bigint, 'Group', $2::text, 'updated', $3::bigint, $4::text \
                 FROM (SELECT pg_advisory_xact_lock(1), pg_notify('usersync_events', '')) AS feed",
            ),
        ];
        Self {
            client,
            lookup,
            page,
            write,
            member_add,
        }
    }
}

impl Raw for RawPostgres {
    /// Table statistics for the planner, as autovacuum gathers within a minute of a load.
    fn settle(&mut self) {
        self.client.batch_execute("ANALYZE").expect("analyze");
    }

    fn lookup(&mut self, id: &str) {
        let row = self.client.query_one(&self.lookup, &[&id]).expect("row");
        black_box(row.get::<_, String>(0));
    }

    fn page(&mut self, directory: i64, offset: usize) {
        let rows = self
            .client
            .query(&self.page, &[&directory, &(offset as i64)])
            .expect("page");
        let page: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        black_box(page);
    }

    fn write(&mut self, key: i64) {
        self.client
            .execute(&self.write, &[&key, &"u00000001"])
            .expect("insert");
    }

    fn member_add(&mut self, directory: i64, member: &str) {
        let [group, insert, version, event] = &self.member_add;
        let mut tx = self.client.transaction().expect("begin");
        let v: i64 = tx
            .query_one(group, &[&"raw", &directory])
            .expect("group")
            .get(0);
        tx.execute(insert, &[&"raw", &member, &directory])
            .expect("insert");
        tx.execute(version, &[&(v + 1), &"2026-11-28T00:00:00Z", &"raw"])
            .expect("version");
        tx.execute(
            event,
            &[&directory, &"raw", &(v + 1), &"2026-11-28T00:00:00Z"],
        )
        .expect("event");
        tx.commit().expect("commit");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let users = numbers.first().copied().unwrap_or(1_000_000);
    let members = numbers.get(1).copied().unwrap_or(100_000).min(users);
    let sqlite_only = args.iter().any(|a| a == "--sqlite-only");

    let dir = std::env::temp_dir().join(format!("usersync-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bench.db");
    let sqlite = Arc::new(SqliteStore::open(&path, system_clock()).expect("open"));
    let raw = rusqlite::Connection::open(&path).expect("raw connection");
    // The same durability and caching as the store's own connection, so that the raw
    // figures are what SQLite itself costs for the same work.
    raw.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -65536;
         CREATE TABLE IF NOT EXISTS bench_scratch (k INTEGER PRIMARY KEY, v TEXT);",
    )
    .expect("raw connection settings");
    let sqlite_rows = workload("SQLite", sqlite, &mut RawSqlite(raw), users, members);
    let _ = std::fs::remove_dir_all(&dir);
    if sqlite_only {
        println!(
            "\npeak memory (VmHWM): {}",
            usersync_benches::memory_report()
        );
        return;
    }

    // Durable as SQLite's WAL with `synchronous = NORMAL` is: commits are not flushed one
    // by one, the log is; a cache about the size of SQLite's map.
    let server = usersync_testkit::postgres::Postgres::start_with(
        "store-bench",
        &[
            "synchronous_commit=off",
            "shared_buffers=1GB",
            "max_wal_size=4GB",
        ],
    );
    let url = server.create_database("bench");
    let pg = Arc::new(PostgresStore::open(&url, system_clock()).expect("open"));
    let pg_rows = workload(
        "PostgreSQL",
        pg,
        &mut RawPostgres::new(&url),
        users,
        members,
    );

    println!(
        "\n{:<46}{:>14}{:>18}{:>14}",
        "side by side (p50)", "SQLite µs", "PostgreSQL µs", "PG/SQLite"
    );
    for (s, p) in sqlite_rows.iter().zip(&pg_rows) {
        println!(
            "{:<46}{:>14.1}{:>18.1}{:>13.1}x",
            s.name,
            micros(s.p50),
            micros(p.p50),
            micros(p.p50) / micros(s.p50)
        );
    }
    println!(
        "\npeak memory (VmHWM): {}",
        usersync_benches::memory_report()
    );
}

/// Loads `users` users and a `members`-member group into `store`, times the operations, and
/// prints them beside `raw`'s figures; returns the service's figures, one per operation.
fn workload(
    backend: &str,
    store: Arc<dyn Store>,
    raw: &mut dyn Raw,
    users: usize,
    members: usize,
) -> Vec<Stats> {
    let d = store
        .create_directory(NewDirectory::new("bench", DirectoryKind::Scim))
        .expect("directory");
    // In batches of 1,000 per transaction, as an LDAP sync writes.
    let started = Instant::now();
    for chunk in (0..users).collect::<Vec<_>>().chunks(1_000) {
        let writes = chunk
            .iter()
            .map(|&i| {
                Write::Create(NewResource {
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
            })
            .collect();
        for outcome in store.batch(writes).expect("batch") {
            outcome.expect("create");
        }
        let loaded = chunk.last().map_or(0, |i| i + 1);
        if loaded % 100_000 == 0 {
            eprintln!(
                "{backend}: {loaded} users loaded ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let load_users = started.elapsed();
    for (id, name) in [("big", "Everyone"), ("raw", "Raw baseline")] {
        // `raw`: the group the raw member-add baseline writes to, so that it never adds a
        // member the PATCHes will add.
        store
            .create(NewResource {
                directory: d.id,
                kind: Kind::Group,
                id: id.into(),
                external_id: None,
                name: name.into(),
                active: true,
                attributes: json!({"displayName": name}),
                members: Vec::new(),
                password: None,
            })
            .expect("group");
    }
    let started = Instant::now();
    for chunk in (0..members).collect::<Vec<_>>().chunks(10_000) {
        let add = chunk
            .iter()
            .map(|i| Member {
                id: format!("u{i:08}"),
                kind: Kind::User,
            })
            .collect();
        let change = Change {
            add_members: add,
            ..Change::default()
        };
        store
            .update(d.id, Kind::Group, "big", None, change)
            .expect("members");
    }
    let load_members = started.elapsed();
    raw.settle();
    println!(
        "\n{backend}: loaded {users} users in {:.1} s, a {members}-member group in {:.1} s",
        load_users.as_secs_f64(),
        load_members.as_secs_f64()
    );

    let config = ServiceConfig::default().with_require_token(false);
    let service = Service::with(store.clone(), SchemaRegistry::core(), config, new_ids());
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);

    // USERSYNC_BENCH_ONLY=<text>: run only the operations whose name contains it (profiling).
    let only = std::env::var("USERSYNC_BENCH_ONLY").ok();
    let baseline = measure(&format!("raw {backend} primary-key lookup"), || {
        raw.lookup(&format!("u{:08}", rng.below(users)));
    });
    let page_baseline = measure(
        &format!("raw {backend} 100-row page, random offset"),
        || {
            if only.as_deref().is_some_and(|o| !o.contains("page")) {
                return;
            }
            raw.page(d.id, rng.below(users));
        },
    );
    let mut next_key = 0_i64;
    let write_baseline = measure(&format!("raw {backend} one-row insert transaction"), || {
        next_key += 1;
        raw.write(next_key);
    });
    // What the database itself costs for the statements a member add runs (check the
    // group, insert the row from the member's own, bump the version, append the event): the
    // floor under the PATCH figures, on a group of its own.
    let mut next_raw = 0;
    let membership_baseline = measure(&format!("raw {backend} member add (same SQL)"), || {
        if only.as_deref().is_some_and(|o| !o.contains("PATCH")) {
            return;
        }
        next_raw = (next_raw + 1) % users;
        raw.member_add(d.id, &format!("u{next_raw:08}"));
    });
    let mut rows = Vec::new();
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
        backend, "ops/s", "p50 µs", "p99 µs", "p50 vs raw", "vs same SQL"
    );
    let baselines = [
        baseline.clone(),
        page_baseline.clone(),
        write_baseline.clone(),
        membership_baseline.clone(),
    ];
    for s in baselines.iter().chain(&rows) {
        // A member change beside the raw transaction of the same statements: what usersync
        // adds to the database's own cost.
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
                } else if s.name.contains("PATCH")
                    || s.name.contains("insert")
                    || s.name.contains("member add")
                {
                    write_baseline.p50
                } else {
                    baseline.p50
                })
        );
    }
    rows
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
