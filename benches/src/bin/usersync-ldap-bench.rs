//! LDAP sync at scale: a private slapd with 100,000 users and 5,000 groups; a full sync, a
//! no-change re-sync (full, then incremental), into SQLite and then into PostgreSQL (a
//! private server), and a raw paged `ldapsearch` dump of the same entries, in one run,
//! printed as ratios to the dump. Every run is repeated (three rounds unless `--rounds N`
//! says otherwise, each into a new empty store) and the best time of each is kept: these
//! machines are noisy. The dump is repeated each round too, and each run's ratio to its
//! round's dump is shown as well (the median over the rounds): the noise moves the dump by
//! up to a half between rounds.
//!
//! After the SQLite runs come two floors: the rows the full sync wrote, written again into a
//! new database of the same schema by SQLite alone (`INSERT … SELECT`, one transaction), with
//! and without the secondary indexes. No writer of those rows through SQLite's insert path
//! can be faster, so a floor over a target's ratio puts the target out of reach for this
//! store on this machine.
//!
//! ```sh
//! cargo run --release -p usersync-benches --bin usersync-ldap-bench            # 100,000 users, 5,000 groups
//! cargo run --release -p usersync-benches --bin usersync-ldap-bench 10000 500  # a quick run
//! cargo run --release -p usersync-benches --bin usersync-ldap-bench -- --sqlite-only --rounds 1
//! ```

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use usersync_core::ldap::apply::{ApplyOptions, LocalTarget};
use usersync_core::ldap::config::SyncConfig;
use usersync_core::ldap::run::{self, RunOptions, RunOutcome};
use usersync_core::store::postgres::PostgresStore;
use usersync_core::store::sqlite::SqliteStore;
use usersync_core::store::{Store, system_clock};
use usersync_testkit::{BASE, SERVICE_DN, SERVICE_PASSWORD, Slapd};

const MEMBERS_PER_GROUP: usize = 25;

/// The allocator `usersync` itself uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: usersync-ldap-bench [USERS [GROUPS]] [--rounds N] [--sqlite-only]";

/// The command line: users, groups, rounds, SQLite only. Anything else is refused: a run
/// takes minutes, and a mistyped flag would run the defaults.
fn arguments() -> Result<(usize, usize, usize, bool), String> {
    let mut sizes = Vec::new();
    let (mut rounds, mut sqlite_only) = (3, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sqlite-only" => sqlite_only = true,
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--rounds takes a number of rounds, 1 or more")?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            _ => match a.parse::<usize>() {
                Ok(n) if sizes.len() < 2 => sizes.push(n),
                _ => return Err(format!("unexpected argument `{a}`\n{USAGE}")),
            },
        }
    }
    let users = sizes.first().copied().unwrap_or(100_000);
    let groups = sizes.get(1).copied().unwrap_or(5_000);
    Ok((users, groups, rounds, sqlite_only))
}

fn main() {
    let (users, groups, rounds, sqlite_only) = match arguments() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };

    let slapd = Slapd::start("bench");
    let started = Instant::now();
    // ldapadd in chunks keeps each tool run's input moderate.
    let mut ldif = String::new();
    for i in 0..users {
        let _ = write!(
            ldif,
            "dn: uid=user{i:07},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: user{i:07}\n\
             cn: User {i}\ngivenName: User\nsn: Number {i}\nmail: user{i:07}@Example.com\n\
             title: Engineer\ndepartmentNumber: {}\n\n",
            i % 50
        );
        if ldif.len() > 4 << 20 {
            slapd.add(&ldif);
            ldif.clear();
        }
    }
    let mut next = 0usize;
    for g in 0..groups {
        let _ = write!(
            ldif,
            "dn: cn=group{g:05},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: group{g:05}\n"
        );
        for _ in 0..MEMBERS_PER_GROUP {
            let _ = writeln!(ldif, "member: uid=user{:07},ou=people,{BASE}", next % users);
            next = next.wrapping_mul(7).wrapping_add(13) % users.max(1) + 1;
        }
        ldif.push('\n');
        if ldif.len() > 4 << 20 {
            slapd.add(&ldif);
            ldif.clear();
        }
    }
    if !ldif.is_empty() {
        slapd.add(&ldif);
    }
    println!(
        "loaded {users} users and {groups} groups into slapd in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Set once, before any other thread exists.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("USERSYNC_BENCH_LDAP_PASSWORD", SERVICE_PASSWORD);
    }
    let dir = std::env::temp_dir().join(format!("usersync-ldap-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let postgres = (!sqlite_only).then(|| {
        // Durable as SQLite's WAL with `synchronous = NORMAL` is (see usersync-store-bench).
        usersync_testkit::postgres::Postgres::start_with(
            "ldap-bench",
            &[
                "synchronous_commit=off",
                "shared_buffers=1GB",
                "max_wal_size=4GB",
            ],
        )
    });
    let mut best: Vec<(String, Duration, String)> = Vec::new();
    let mut ratios: Vec<Vec<f64>> = Vec::new();
    for round in 0..rounds {
        let mut rows = vec![(
            "raw paged ldapsearch dump (the baseline)".to_owned(),
            dump(&slapd),
            String::new(),
        )];
        let path = dir.join(format!("bench-{round}.db"));
        let sqlite = SqliteStore::open(&path, system_clock()).expect("store");
        rows.extend(runs("SQLite", &sqlite, &slapd));
        drop(sqlite);
        for bare in [false, true] {
            rows.push(sqlite_floor(
                &path,
                &dir.join(format!("floor-{round}.db")),
                bare,
            ));
        }
        let _ = std::fs::remove_file(&path);
        if let Some(server) = &postgres {
            let url = server.create_database(&format!("bench{round}"));
            let pg = PostgresStore::open(&url, system_clock()).expect("store");
            rows.extend(runs("PostgreSQL", &pg, &slapd));
        }
        let round_dump = rows[0].1.as_secs_f64();
        for (i, row) in rows.iter().enumerate() {
            if ratios.len() <= i {
                ratios.push(Vec::new());
            }
            ratios[i].push(row.1.as_secs_f64() / round_dump);
        }
        // The best time of each run over the rounds, with its steps.
        for row in rows {
            match best.iter_mut().find(|b| b.0 == row.0) {
                Some(b) if b.1 <= row.1 => {}
                Some(b) => *b = row,
                None => best.push(row),
            }
        }
    }
    let dump = best[0].1;
    let rows = best;

    println!();
    println!(
        "{:<44}{:>10}{:>12}{:>22}{:>18}",
        "run", "seconds", "vs dump", "median of rounds' x", "first round's x"
    );
    for ((name, d, detail), ratios) in rows.iter().zip(&mut ratios) {
        // The first round is what `usersync sync` meets in a new process: a heap that has
        // yet to take its memory from the kernel.
        let first = ratios[0];
        ratios.sort_by(f64::total_cmp);
        println!(
            "{name:<44}{:>10.2}{:>11.2}x{:>21.2}x{:>17.2}x",
            d.as_secs_f64(),
            d.as_secs_f64() / dump.as_secs_f64(),
            ratios[ratios.len() / 2],
            first
        );
        if !detail.is_empty() {
            println!("    {detail}");
        }
    }
    println!(
        "\npeak memory (VmHWM): {}",
        usersync_benches::memory_report()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The baseline: what reading the same entries costs with OpenLDAP's own client.
fn dump(slapd: &Slapd) -> Duration {
    time(|| {
        for (base, attrs) in [
            (
                format!("ou=people,{BASE}"),
                "entryUUID uid givenName sn mail title departmentNumber",
            ),
            (format!("ou=groups,{BASE}"), "entryUUID cn member"),
        ] {
            let status = Command::new("ldapsearch")
                .args([
                    "-x",
                    "-LLL",
                    "-H",
                    &slapd.url,
                    "-D",
                    SERVICE_DN,
                    "-w",
                    SERVICE_PASSWORD,
                ])
                .args(["-E", "pr=500/noprompt", "-b", &base, "(objectClass=*)"])
                .args(attrs.split(' '))
                .stdout(Stdio::null())
                .status()
                .expect("ldapsearch");
            assert!(status.success());
        }
    })
}

/// A full sync, a no-change re-sync, and a no-change incremental one into `store`: one row
/// each (name, time, the steps' times).
fn runs(backend: &str, store: &dyn Store, slapd: &Slapd) -> Vec<(String, Duration, String)> {
    let config = SyncConfig::from_toml(&config_text(slapd)).expect("config");
    let mut phases = Vec::new();
    let full = time(|| phases = sync(&config, store));
    let full_phases = phases.join(", ");
    let events_before = last_event(store);
    let again = time(|| phases = sync(&config, store));
    let writes = last_event(store) - events_before;

    // Incremental: a first run of the incremental configuration is full and leaves the
    // watermark; after it, the load is outside the window of the next run.
    let incremental = SyncConfig::from_toml(&format!(
        "{}\n[incremental]\nenabled = true\noverlap = \"1s\"\n",
        config_text(slapd)
    ))
    .expect("config");
    sync(&incremental, store);
    std::thread::sleep(Duration::from_secs(2));
    let events_before = last_event(store);
    let mut steps = Vec::new();
    let incremental_again = time(|| steps = sync(&incremental, store));
    let incremental_writes = last_event(store) - events_before;
    vec![
        (format!("full sync into {backend}"), full, full_phases),
        (
            format!("no-change re-sync, {backend}"),
            again,
            format!("{}; {writes} writes", phases.join(", ")),
        ),
        (
            format!("no-change re-sync, incremental, {backend}"),
            incremental_again,
            format!("{}; {incremental_writes} writes", steps.join(", ")),
        ),
    ]
}

/// The floor under any full sync into SQLite on this machine: the rows the full sync left
/// in `synced` (resources, memberships, change-feed events) written again into a new
/// database of the store's own schema and settings at `scratch`, by SQLite alone: already in
/// memory, `INSERT … SELECT` in one transaction, no usersync code in between. `bare` drops
/// the secondary indexes first (those the SCIM service's lookups and the membership checks
/// need), to show what they cost. A writer of these rows, streaming or not, cannot beat it.
fn sqlite_floor(synced: &Path, scratch: &Path, bare: bool) -> (String, Duration, String) {
    drop(SqliteStore::open(scratch, system_clock()).expect("the floor's store"));
    let conn = rusqlite::Connection::open(scratch).expect("the floor's database");
    // As `SqliteStore` sets them (journal_mode = WAL stays with the file).
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 8192; PRAGMA foreign_keys = ON;
         PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;",
    )
    .expect("pragmas");
    if bare {
        conn.execute_batch(
            "DROP INDEX resources_unique_name; DROP INDEX resources_by_directory;
             DROP INDEX resources_by_name_id; DROP INDEX resources_by_external_id;
             DROP INDEX memberships_by_member;",
        )
        .expect("drop the secondary indexes");
    }
    conn.execute("ATTACH DATABASE ?1 AS synced", [synced.to_string_lossy()])
        .expect("attach");
    conn.execute_batch(
        "INSERT INTO directories SELECT * FROM synced.directories;
         CREATE TEMP TABLE r AS SELECT * FROM synced.resources ORDER BY rowid;
         CREATE TEMP TABLE m AS SELECT * FROM synced.memberships;
         CREATE TEMP TABLE e AS SELECT * FROM synced.events ORDER BY seq;
         DETACH DATABASE synced;",
    )
    .expect("rows into memory");
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM temp.{table}"), [], |r| {
            r.get(0)
        })
        .expect("count")
    };
    let rows = format!(
        "{} resources, {} memberships, {} events",
        count("r"),
        count("m"),
        count("e"),
    );
    // In the order the sync wrote them: resources and events as they came, memberships
    // group by group (members within a group in key order, which if anything favours the
    // floor).
    let written_before = written_bytes();
    let took = time(|| {
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             INSERT INTO resources SELECT * FROM temp.r ORDER BY rowid;
             INSERT INTO memberships SELECT * FROM temp.m ORDER BY group_id, member_id;
             INSERT INTO events SELECT * FROM temp.e ORDER BY seq;
             COMMIT;",
        )
        .expect("the floor's writes");
    });
    let written = written_bytes()
        .zip(written_before)
        .map(|(after, before)| format!(", {:.0} MB written", (after - before) as f64 / 1e6))
        .unwrap_or_default();
    let indexed = if bare {
        "; only the primary keys indexed"
    } else {
        ""
    };
    let detail = format!("{rows}, INSERT … SELECT in one transaction{written}{indexed}");
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", scratch.display()));
    }
    let name = if bare {
        "  the same, without secondary indexes"
    } else {
        "SQLite alone writing those rows (floor)"
    };
    (name.to_owned(), took, detail)
}

/// The benchmark's sync configuration.
fn config_text(slapd: &Slapd) -> String {
    format!(
        r#"directory = "corp"
[connection]
urls = ["{}"]
tls = "none"
bind_dn = "{SERVICE_DN}"
bind_password_env = "USERSYNC_BENCH_LDAP_PASSWORD"
page_size = 500
{}"#,
        slapd.url,
        usersync_benches::sync_selection(BASE)
    )
}

/// One run as `usersync sync` makes it; returns the time of each step, then the CPU time
/// the run took.
fn sync(config: &SyncConfig, store: &dyn Store) -> Vec<String> {
    let options = RunOptions::new(ApplyOptions::new(true), false);
    let cpu_before = cpu_seconds();
    let run = run::sync(
        config,
        store,
        &LocalTarget(store),
        &options,
        &system_clock(),
    );
    assert_eq!(run.outcome, RunOutcome::Succeeded, "{:?}", run.error);
    let plan = run.plan.expect("a plan");
    assert!(plan.incomplete.is_empty(), "{:?}", plan.incomplete);
    let mut steps: Vec<String> = run
        .milliseconds
        .iter()
        .map(|(step, ms)| format!("{step} {:.2} s", *ms as f64 / 1000.0))
        .collect();
    steps.push(format!("{} changes", plan.changes.len()));
    if let (Some(before), Some(after)) = (cpu_before, cpu_seconds()) {
        steps.push(format!(
            "CPU {:.2} s (kernel {:.2} s, {} page faults), {:.0} MB written",
            after.user + after.kernel - before.user - before.kernel,
            after.kernel - before.kernel,
            after.page_faults - before.page_faults,
            (after.written - before.written) as f64 / 1e6
        ));
    }
    steps
}

/// What [`cpu_seconds`] reads.
struct Cpu {
    user: f64,
    kernel: f64,
    /// Minor page faults: fresh memory touched (or memory given back and touched again).
    page_faults: u64,
    /// Bytes handed to `write` and its kin (SQLite's log and checkpoints among them),
    /// whether or not they reached the disk yet.
    written: u64,
}

/// The CPU seconds this process has used, all its threads (not slapd's, a process of its
/// own), in user space and in the kernel for it (page faults of fresh memory among them),
/// and its page faults. slapd serves from the same two cores, so what a run costs in CPU
/// bounds its time as much as any wait does. `None` where `/proc` is missing. (A thread a
/// run leaves freeing its read counts in the next run.)
fn cpu_seconds() -> Option<Cpu> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command's name (in parentheses, maybe with spaces): the state, field 3;
    // minflt is field 10; utime and stime are fields 14 and 15, in ticks of 1/100 s
    // (Linux's USER_HZ).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |i: usize| fields.get(i - 3)?.parse::<u64>().ok();
    Some(Cpu {
        user: field(14)? as f64 / 100.0,
        kernel: field(15)? as f64 / 100.0,
        page_faults: field(10)?,
        written: written_bytes()?,
    })
}

/// What [`Cpu::written`] counts, so far: `None` where `/proc` is missing.
fn written_bytes() -> Option<u64> {
    std::fs::read_to_string("/proc/self/io")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("wchar:"))?
        .trim()
        .parse()
        .ok()
}

fn last_event(store: &dyn Store) -> u64 {
    let mut seq = 0;
    while let Some(e) = store.events_after(seq, 10_000).expect("events").last() {
        seq = e.seq;
    }
    seq
}

fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}
