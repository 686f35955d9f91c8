//! `usersync plan` and `usersync sync` as processes against a real slapd, the way an
//! administrator runs them.
#![allow(clippy::unwrap_used)] // test support: a failed step should stop the test

mod common;

use common::{temp_db, usersync};
use serde_json::Value;
use usersync_testkit::{BASE, SERVICE_DN, SERVICE_PASSWORD, Slapd};

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
    use std::io::{BufRead, BufReader};
    let slapd = Slapd::start("cli-daemon");
    slapd.add(&format!(
        "dn: uid=ann,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: ann\ncn: ann\nsn: ann\n"
    ));
    let db = temp_db("cli-daemon");
    let config = db.with_file_name("corp.toml");
    std::fs::write(
        &config,
        format!(
            "directory = \"corp\"\n[connection]\nurls = [\"{}\"]\ntls = \"none\"\nbind_dn = \"{SERVICE_DN}\"\n\
             bind_password_env = \"USERSYNC_CLI_TEST_PASSWORD\"\n[users]\nbase = \"ou=people,{BASE}\"\n\
             [schedule]\ninterval = \"1s\"\n",
            slapd.url
        ),
    )
    .unwrap();
    let (config, db) = (config.to_str().unwrap(), db.to_str().unwrap());
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_usersync"))
        .args(["sync", "--daemon", "--config", config, "--db", db])
        .env("USERSYNC_CLI_TEST_PASSWORD", SERVICE_PASSWORD)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(daemon.stdout.take().unwrap()).lines();
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
    // While the daemon holds the directory, another sync of it refuses to start.
    let (code, _, err) = run(&["sync", "--config", config, "--db", db]);
    assert_eq!(code, 1);
    assert!(
        err.contains("another usersync sync of `corp` is running"),
        "{err}"
    );
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
