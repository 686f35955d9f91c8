//! `usersync plan` and `usersync sync` as processes against a real slapd, the way an
//! administrator runs them.
#![allow(clippy::unwrap_used)] // test support: a failed step should stop the test

mod common;

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{temp_db, usersync};
use serde_json::Value;
use usersync_core::store::{Store, SyncLock, system_clock};
use usersync_testkit::{BASE, SERVICE_DN, SERVICE_PASSWORD, Slapd};

fn open(db: &str) -> Arc<dyn Store> {
    usersync_core::store::open(db, system_clock()).unwrap()
}

/// Takes the sync lock of `directory` as another process would, once a daemon's run (which
/// holds it briefly) has let go.
fn hold_sync_lock(store: &dyn Store, directory: &str) -> SyncLock {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(lock) = store.try_lock_sync(directory).unwrap() {
            return lock;
        }
        assert!(Instant::now() < deadline, "the lock is never free");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until some process holds the sync lock of `directory`.
fn wait_until_locked(store: &dyn Store, directory: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(lock) = store.try_lock_sync(directory).unwrap() {
        drop(lock);
        assert!(Instant::now() < deadline, "nobody takes the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A `usersync sync --daemon` process and its output lines.
fn daemon(
    config: &str,
    db: &str,
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_usersync"))
        .args(["sync", "--daemon", "--config", config, "--db", db])
        .env("USERSYNC_CLI_TEST_PASSWORD", SERVICE_PASSWORD)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// A configuration that syncs `ou=people` of `slapd` into `corp` every second.
fn every_second(slapd: &Slapd, path: &std::path::Path) {
    std::fs::write(
        path,
        format!(
            "directory = \"corp\"\n[connection]\nurls = [\"{}\"]\ntls = \"none\"\nbind_dn = \"{SERVICE_DN}\"\n\
             bind_password_env = \"USERSYNC_CLI_TEST_PASSWORD\"\noperation_timeout_seconds = 120\n\
             [users]\nbase = \"ou=people,{BASE}\"\n[schedule]\ninterval = \"1s\"\n",
            slapd.url
        ),
    )
    .unwrap();
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_usersync"))
        .args(args)
        .env("USERSYNC_CLI_TEST_PASSWORD", SERVICE_PASSWORD)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plan_then_sync_then_nothing_left_to_do() {
    let slapd = Slapd::start("cli-sync");
    let mut ldif = String::new();
    for uid in ["ann", "bob", "cid", "dee", "eve"] {
        ldif.push_str(&format!(
            "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {uid}@example.com\n\n"
        ));
    }
    ldif.push_str(&format!(
        "dn: cn=staff,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: staff\nmember: uid=ann,ou=people,{BASE}\nmember: uid=bob,ou=people,{BASE}\n"
    ));
    slapd.add(&ldif);
    let db = temp_db("cli-sync");
    let config = db.with_file_name("corp.toml");
    std::fs::write(
        &config,
        format!(
            "directory = \"corp\"\n[connection]\nurls = [\"{}\"]\ntls = \"none\"\nbind_dn = \"{SERVICE_DN}\"\n\
             bind_password_env = \"USERSYNC_CLI_TEST_PASSWORD\"\n[users]\nbase = \"ou=people,{BASE}\"\n\
             [users.attributes]\n'emails[type eq \"work\"].value' = \"mail\"\n\
             [groups]\nbase = \"ou=groups,{BASE}\"\n",
            slapd.url
        ),
    )
    .unwrap();
    let (config, db) = (config.to_str().unwrap(), db.to_str().unwrap());
    // Made beforehand for its setting: deactivated users are purged at once.
    let made = usersync(&[
        "directory",
        "create",
        "corp",
        "--kind",
        "ldap",
        "--retention-days",
        "0",
        "--db",
        db,
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let (code, out, err) = run(&["plan", "--config", config, "--db", db]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("action "), "{out}");
    assert!(out.contains("6 create, 1 add members"), "{out}");
    let (code, out, _) = run(&["plan", "--config", config, "--db", db, "--json"]);
    assert_eq!(code, 0);
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["summary"]["create"], 6, "{plan}");
    assert_eq!(plan["changes"][0]["action"], "create");

    let (code, out, err) = run(&["sync", "--config", config, "--db", db]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied 7 changes"), "{out}");
    let (code, out, _) = run(&["plan", "--config", config, "--db", db]);
    assert_eq!(
        (code, out.trim()),
        (0, "No changes: `corp` is in step with the source.")
    );
    // The imported directory is an ordinary directory: it lists with its users.
    let listed = usersync(&["directory", "list", "--db", db]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("corp"));

    // Two of five users leave: 40% is above the 10% threshold; nothing is applied.
    slapd.delete(&[
        &format!("uid=dee,ou=people,{BASE}"),
        &format!("uid=eve,ou=people,{BASE}"),
    ]);
    let (code, out, err) = run(&["sync", "--config", config, "--db", db]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("--allow-deletes"), "{err}");
    assert!(out.contains("blocked: 2 of 5 active users (40%)"), "{out}");
    let (code, out, err) = run(&["sync", "--config", config, "--db", db, "--allow-deletes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied 2 changes"), "{out}");
    // Deactivated, then purged after the run: the retention is 0 days.
    assert!(err.contains("purged 2 users"), "{err}");
    let listed = usersync(&["directory", "list", "--db", db]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("active 3\tinactive 0"), "{listed}");

    // Every run is on record, newest first: applied, blocked, applied.
    let (code, out, _) = run(&["directory", "runs", "corp", "--db", db, "--json"]);
    assert_eq!(code, 0);
    let runs: Value = serde_json::from_str(&out).unwrap();
    let outcomes: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["succeeded", "blocked", "succeeded"], "{runs}");
    assert_eq!(
        runs[0]["report"]["report"]["applied"]["deactivate"], 2,
        "{runs}"
    );
    assert_eq!(runs[2]["report"]["plan"]["summary"]["create"], 6, "{runs}");
    let (_, text, _) = run(&["directory", "runs", "corp", "--db", db]);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("succeeded\t2 changes applied"),
        "{text}"
    );

    // A configuration error names the key and stops before connecting.
    let bad = std::path::Path::new(config).with_file_name("bad.toml");
    std::fs::write(&bad, "directory = \"corp\"\n[connection]\nurls = [\"ldap://x\"]\n[users]\nbase = \"ou=people\"\nfilter = \"uid=x\"\n").unwrap();
    let (code, _, err) = run(&["plan", "--config", bad.to_str().unwrap(), "--db", db]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "`users.filter`: invalid LDAP filter: a filter starts with `(`: write `(uid=x)`"
        ),
        "{err}"
    );
}

/// `sync --daemon` runs on the schedule, one sync per directory at a time, and stops
/// cleanly on SIGTERM.
#[test]
fn the_daemon_syncs_on_schedule_alone_and_stops_on_sigterm() {
    let slapd = Slapd::start("cli-daemon");
    slapd.add(&format!(
        "dn: uid=ann,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: ann\ncn: ann\nsn: ann\n"
    ));
    let db = temp_db("cli-daemon");
    let config = db.with_file_name("corp.toml");
    every_second(&slapd, &config);
    let (config, db) = (config.to_str().unwrap(), db.to_str().unwrap());
    let (mut daemon, mut lines) = daemon(config, db);
    assert!(
        lines
            .next()
            .unwrap()
            .unwrap()
            .starts_with("syncing `corp` every 1 s")
    );
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("sync `corp`: applied 1 changes"), "{first}");
    let second = lines.next().unwrap().unwrap();
    assert!(second.contains("applied 0 changes"), "{second}");
    // While another process syncs `corp`, a sync of it refuses to start and the daemon
    // waits its turn.
    let held = hold_sync_lock(&*open(db), "corp");
    let (code, _, err) = run(&["sync", "--config", config, "--db", db]);
    assert_eq!(code, 1);
    assert!(
        err.contains("another usersync sync of `corp` is running"),
        "{err}"
    );
    let waits = lines.next().unwrap().unwrap();
    assert!(waits.contains("is running; waiting for it"), "{waits}");
    drop(held);
    let third = lines.next().unwrap().unwrap();
    assert!(third.contains("applied 0 changes"), "{third}");
    std::process::Command::new("kill")
        .arg(daemon.id().to_string())
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert_eq!(rest.last().map(String::as_str), Some("stopped"), "{rest:?}");
    assert!(daemon.wait().unwrap().success());
    // The lock went with it.
    let (code, out, err) = run(&["sync", "--config", config, "--db", db]);
    assert_eq!(code, 0, "{out}{err}");
    // A run that cannot reach the server is on record too.
    drop(slapd);
    let (code, _, _) = run(&["sync", "--config", config, "--db", db]);
    assert_eq!(code, 1);
    let (_, text, _) = run(&["directory", "runs", "corp", "--db", db, "--limit", "1"]);
    assert!(text.contains("failed\tno LDAP server answered"), "{text}");
}

/// Daemons on two nodes sharing one PostgreSQL database keep one schedule: each due sync
/// runs once between them. When the node running a sync is killed (`kill -9`), its lock
/// goes with it and the other node runs the sync.
#[test]
fn daemons_on_two_nodes_share_one_schedule_and_survive_a_killed_node() {
    let pg = usersync_testkit::postgres::Postgres::start("cli-daemons");
    let db = pg.create_database("daemons");
    let slapd = Slapd::start("cli-daemons");
    slapd.add(&format!(
        "dn: uid=ann,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: ann\ncn: ann\nsn: ann\n"
    ));
    let config = temp_db("cli-daemons").with_file_name("corp.toml");
    every_second(&slapd, &config);
    let config = config.to_str().unwrap();
    let store = open(&db);

    // Node A's first run hangs: the LDAP server has stopped answering.
    let slapd_pid = slapd.pid().unwrap();
    signal("-STOP", slapd_pid);
    let (mut a, _a_lines) = daemon(config, &db);
    wait_until_locked(&*store, "corp");
    let (mut b, mut b_lines) = daemon(config, &db);
    assert!(
        b_lines
            .next()
            .unwrap()
            .unwrap()
            .starts_with("syncing `corp`")
    );
    let waits = b_lines.next().unwrap().unwrap();
    assert!(waits.contains("is running; waiting for it"), "{waits}");

    // A dies mid-run; B runs the sync A left undone.
    signal("-KILL", a.id());
    a.wait().unwrap();
    signal("-CONT", slapd_pid);
    let ran = b_lines.next().unwrap().unwrap();
    assert!(ran.contains("sync `corp`: applied 1 changes"), "{ran}");
    let corp = store.directory("corp").unwrap().unwrap().id;
    assert_eq!(store.runs(corp, 100).unwrap().len(), 1, "A left no record");

    // With both nodes up, each due run happens once: runs on record start at least the
    // interval (1 s) apart.
    let (mut a, _a_lines) = daemon(config, &db);
    std::thread::sleep(Duration::from_millis(4500));
    for child in [&mut a, &mut b] {
        signal("-TERM", child.id());
        assert!(child.wait().unwrap().success());
    }
    let runs = store.runs(corp, 100).unwrap();
    assert!(runs.len() >= 3, "{} runs", runs.len());
    assert!(runs.iter().all(|r| r.outcome == "succeeded"), "{runs:?}");
    for pair in runs.windows(2) {
        // Newest first; whole seconds, so a gap of a full second or more shows as >= 1.
        let gap = pair[0].started.unix_seconds() - pair[1].started.unix_seconds();
        assert!(gap >= 1, "two runs {gap} s apart: {runs:?}");
    }
}

/// A run that cannot be recorded (the configuration names a SCIM directory, which a sync may
/// not write to) is retried after the schedule's backoff, not at once and again.
#[test]
fn the_daemon_backs_off_when_a_run_cannot_be_recorded() {
    let db = temp_db("cli-daemon-scim");
    let config = db.with_file_name("corp.toml");
    let db = db.to_str().unwrap();
    assert!(
        usersync(&["directory", "create", "corp", "--db", db])
            .status
            .success()
    );
    std::fs::write(
        &config,
        "directory = \"corp\"\n[connection]\nurls = [\"ldap://127.0.0.1:9\"]\ntls = \"none\"\n\
         [users]\nbase = \"ou=people,dc=example,dc=com\"\n[schedule]\ninterval = \"1h\"\nretry = \"1m\"\n",
    )
    .unwrap();
    let (mut daemon, lines) = daemon(config.to_str().unwrap(), db);
    // Read as it prints, so that a daemon printing without pause never blocks on its pipe.
    let reader = std::thread::spawn(move || lines.map(Result::unwrap).collect::<Vec<String>>());
    std::thread::sleep(Duration::from_secs(3));
    signal("-TERM", daemon.id());
    let lines = reader.join().unwrap();
    assert!(daemon.wait().unwrap().success());
    let runs: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(" sync `corp`: "))
        .collect();
    assert_eq!(
        runs.len(),
        1,
        "{} runs: {:?}",
        runs.len(),
        &lines[..lines.len().min(4)]
    );
    assert!(runs[0].contains("failed: "), "{lines:?}");
}
