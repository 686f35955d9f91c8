//! LDAP reconciliation against a real OpenLDAP slapd: import, re-run, changes, removals,
//! nesting, escaping, paging, TLS, thresholds and an incomplete read.
#![allow(clippy::unwrap_used)] // a failed step should stop the test

use std::sync::Arc;

use usersync_core::ldap::config::SyncConfig;
use usersync_core::ldap::plan::{Action, Plan};
use usersync_core::ldap::{apply, plan, source};
use usersync_core::store::memory::MemoryStore;
use usersync_core::store::{Kind, Store, system_clock};
use usersync_testkit::{BASE, SERVICE_DN, Slapd};

fn make_config(slapd: &Slapd, extra_connection: &str, policy: &str) -> SyncConfig {
    // The password reaches the config through the environment, as in production.
    set_password_env();
    let text = format!(
        r#"
directory = "corp"
[connection]
urls = ["{url}"]
tls = "none"
bind_dn = "{SERVICE_DN}"
bind_password_env = "USERSYNC_TEST_LDAP_PASSWORD"
{extra_connection}
[users]
base = "ou=people,{BASE}"
filter = "(objectClass=inetOrgPerson)"
user_name = "uid"
[users.attributes]
"name.givenName" = "givenName"
"name.familyName" = "sn"
"displayName" = "{{givenName}} {{sn}}"
'emails[type eq "work"].value' = {{ attribute = "mail", transform = "lowercase" }}
"title" = "title"
[groups]
base = "ou=groups,{BASE}"
filter = "(objectClass=groupOfNames)"
nested = "flatten"
[policy]
{policy}
"#,
        url = slapd.url
    );
    SyncConfig::from_toml(&text).unwrap()
}

/// Sets the password variable every test reads, once, to one value.
fn set_password_env() {
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| {
        // Edition 2024 makes set_var unsafe; the value never changes, so readers in other
        // threads always see the same text.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var(
                "USERSYNC_TEST_LDAP_PASSWORD",
                usersync_testkit::SERVICE_PASSWORD,
            );
        }
    });
}

fn person(uid: &str, given: &str, sn: &str, ou: &str) -> String {
    format!(
        "dn: uid={uid},{ou}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {given} {sn}\ngivenName: {given}\nsn: {sn}\nmail: {uid}@Example.com\n\n"
    )
}

fn group(cn: &str, members: &[String]) -> String {
    let mut s = format!("dn: cn={cn},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {cn}\n");
    for m in members {
        s.push_str(&format!("member: {m}\n"));
    }
    s.push('\n');
    s
}

fn people(uid: &str) -> String {
    format!("uid={uid},ou=people,{BASE}")
}

fn run(store: &dyn Store, config: &SyncConfig) -> Plan {
    let snapshot = source::read(config).unwrap();
    plan::plan(
        config,
        &snapshot,
        &apply::current(store, &config.directory).unwrap(),
    )
}

fn count(plan: &Plan, action: Action, kind: Kind) -> usize {
    plan.changes
        .iter()
        .filter(|c| c.action == action && c.kind == kind)
        .count()
}

fn last_seq(store: &dyn Store) -> u64 {
    let mut seq = 0;
    loop {
        let events = store.events_after(seq, 1000).unwrap();
        match events.last() {
            Some(e) => seq = e.seq,
            None => return seq,
        }
    }
}

#[test]
fn import_rerun_change_and_remove() {
    let slapd = Slapd::start("sync");
    let ou = format!("ou=people,{BASE}");
    let mut ldif = String::new();
    for (uid, given, sn) in [
        ("jdoe", "Jane", "Doe"),
        ("rroe", "Richard", "Roe"),
        ("zluc", "Zoë", "Lučić"),
    ] {
        ldif.push_str(&person(uid, given, sn, &ou));
    }
    // A DN with characters that must be escaped.
    ldif.push_str(&format!(
        "dn: uid=smith\\2C j\\2B\\22x\\22\\5C,{ou}\nobjectClass: inetOrgPerson\nuid: smith, j+\"x\"\\\ncn: Smith\nsn: Smith\ngivenName: J\n\n"
    ));
    ldif.push_str(&format!(
        "dn: uid=\\ lead,{ou}\nobjectClass: inetOrgPerson\nuid:  lead\ncn: Lead\nsn: Lead\n\n"
    ));
    slapd.add(&ldif);
    let escaped = format!("uid=smith\\2C j\\2B\\22x\\22\\5C,{ou}");
    // Nested groups with a cycle: staff ⊃ devs ⊃ ops ⊃ devs.
    slapd.add(&format!(
        "{}{}",
        group("devs", &[people("jdoe"), people("zluc")]),
        group("ops", &[people("rroe")])
    ));
    slapd.modify(&format!(
        "dn: cn=devs,ou=groups,{BASE}\nchangetype: modify\nadd: member\nmember: cn=ops,ou=groups,{BASE}\n\n\
         dn: cn=ops,ou=groups,{BASE}\nchangetype: modify\nadd: member\nmember: cn=devs,ou=groups,{BASE}\n"
    ));
    slapd.add(&group(
        "staff",
        &[format!("cn=devs,ou=groups,{BASE}"), escaped.clone()],
    ));

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(system_clock()));
    let config = make_config(&slapd, "page_size = 2", "");
    let first = run(&*store, &config);
    assert!(first.incomplete.is_empty(), "{first}");
    assert_eq!(count(&first, Action::Create, Kind::User), 5, "{first}");
    assert_eq!(count(&first, Action::Create, Kind::Group), 3, "{first}");
    let report = apply::apply(&*store, &config, &first, false).unwrap();
    assert!(
        report.failures.is_empty() && report.conflicts.is_empty(),
        "{report:?}"
    );

    let d = store.directory("corp").unwrap().unwrap();
    let users = store.list(d.id, Kind::User).unwrap();
    let zoe = users.iter().find(|u| u.name == "zluc").unwrap();
    assert_eq!(zoe.attributes["displayName"], "Zoë Lučić");
    assert_eq!(zoe.attributes["emails"][0]["value"], "zluc@example.com");
    assert_eq!(zoe.attributes["emails"][0]["type"], "work");
    assert!(users.iter().any(|u| u.name == "smith, j+\"x\"\\"));
    // LDIF drops the leading space of a value; the DN keeps its escaped one.
    assert!(users.iter().any(|u| u.name == "lead"));
    // Flattened: staff has everyone in devs and ops (through the cycle) and smith.
    let groups = store.list(d.id, Kind::Group).unwrap();
    let staff = groups.iter().find(|g| g.name == "staff").unwrap();
    let names = |g: &str| -> Vec<String> {
        let users = store.list(d.id, Kind::User).unwrap();
        let mut n: Vec<String> = store
            .members(d.id, g)
            .unwrap()
            .iter()
            .map(|m| users.iter().find(|u| u.id == m.id).unwrap().name.clone())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&staff.id),
        ["jdoe", "rroe", "smith, j+\"x\"\\", "zluc"]
    );
    let devs = groups.iter().find(|g| g.name == "devs").unwrap();
    assert_eq!(names(&devs.id), ["jdoe", "rroe", "zluc"]);

    // The same source again: no change, no write.
    let before = last_seq(&*store);
    let again = run(&*store, &config);
    assert!(again.is_empty(), "{again}");
    apply::apply(&*store, &config, &again, false).unwrap();
    assert_eq!(last_seq(&*store), before, "a no-change run writes nothing");

    // A changed attribute, a rename (same entry, new uid), a move to another OU, a member
    // leaving, a user removed.
    slapd.add(&format!(
        "dn: ou=alumni,{BASE}\nobjectClass: organizationalUnit\nou: alumni\n"
    ));
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: title\ntitle: Engineer\n\n\
         dn: {}\nchangetype: modrdn\nnewrdn: uid=rroe2\ndeleteoldrdn: 1\n\n\
         dn: cn=ops,ou=groups,{BASE}\nchangetype: modify\ndelete: member\nmember: cn=devs,ou=groups,{BASE}\n",
        people("jdoe"),
        people("rroe"),
    ));
    slapd.delete(&[&people("zluc")]);
    let changes = run(&*store, &config);
    assert!(changes.incomplete.is_empty(), "{changes}");
    let jdoe = changes
        .changes
        .iter()
        .find(|c| c.name == "jdoe" && c.action == Action::Update)
        .unwrap();
    assert_eq!(jdoe.diff().len(), 1, "{changes}");
    assert_eq!(jdoe.diff()[0].attribute, "title");
    let renamed = changes.changes.iter().find(|c| c.name == "rroe2").unwrap();
    assert_eq!(renamed.action, Action::Update);
    assert!(renamed.reason.contains("renamed from `rroe`"), "{changes}");
    let gone = changes
        .changes
        .iter()
        .find(|c| c.name == "zluc" && c.kind == Kind::User)
        .unwrap();
    assert_eq!(
        (gone.action, gone.reason.as_str()),
        (Action::Deactivate, "removed from the source")
    );
    // 1 of 5 users is 20%: above the default 10% threshold.
    assert!(!changes.blocked.is_empty(), "{changes}");
    assert!(matches!(
        apply::apply(&*store, &config, &changes, false),
        Err(apply::ApplyError::Blocked(_))
    ));
    let report = apply::apply(&*store, &config, &changes, true).unwrap();
    assert!(report.failures.is_empty(), "{report:?}");
    let zoe_now = store.get(d.id, Kind::User, &zoe.id).unwrap().unwrap();
    assert!(!zoe_now.active, "deactivated, not deleted");
    assert_eq!(
        names(&devs.id),
        ["jdoe", "rroe2"],
        "zluc left devs; renamed rroe2 stays a member through ops"
    );
    assert!(run(&*store, &config).is_empty(), "converged");
}

/// Paging past the server's limit reads everything; a page size the server refuses leaves
/// the snapshot incomplete, and an incomplete snapshot removes nothing.
#[test]
fn paging_and_incomplete_reads() {
    let slapd = Slapd::start("paging");
    let ou = format!("ou=people,{BASE}");
    let total = usersync_testkit::HARD_LIMIT + 150;
    let ldif: String = (0..total)
        .map(|i| person(&format!("u{i:05}"), "Test", &format!("User {i}"), &ou))
        .collect();
    slapd.add(&ldif);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(system_clock()));
    let config = make_config(&slapd, "page_size = 100", "");
    let first = run(&*store, &config);
    assert!(first.incomplete.is_empty(), "{:?}", first.incomplete);
    assert_eq!(count(&first, Action::Create, Kind::User), total);
    apply::apply(&*store, &config, &first, false).unwrap();

    // Pages above the server's limit are refused: the read is incomplete, so the users it
    // did not get are not deactivated.
    let too_big = make_config(
        &slapd,
        &format!("page_size = {}", usersync_testkit::PAGE_LIMIT + 100),
        "",
    );
    let partial = run(&*store, &too_big);
    assert!(!partial.incomplete.is_empty(), "{partial}");
    assert!(
        partial
            .incomplete
            .iter()
            .any(|p| p.contains("administrative limit") || p.contains("size limit")),
        "{:?}",
        partial.incomplete
    );
    assert_eq!(
        count(&partial, Action::Deactivate, Kind::User),
        0,
        "{partial}"
    );
    assert!(partial.to_string().contains("incomplete:"));

    // A subtree handed to another server (a referral object in its place): its users are
    // not read, and not taken away either.
    let contractors = format!("ou=contractors,{ou}");
    slapd.add(&format!(
        "dn: {contractors}\nobjectClass: organizationalUnit\nou: contractors\n\n{}{}",
        person("c1", "Con", "Tractor", &contractors),
        person("c2", "Con", "Sultant", &contractors)
    ));
    let with_contractors = run(&*store, &config);
    assert_eq!(count(&with_contractors, Action::Create, Kind::User), 2);
    apply::apply(&*store, &config, &with_contractors, false).unwrap();
    slapd.delete(&[
        &format!("uid=c1,{contractors}"),
        &format!("uid=c2,{contractors}"),
    ]);
    slapd.delete(&[&contractors]);
    slapd.add(&format!(
        "dn: {contractors}\nobjectClass: referral\nobjectClass: extensibleObject\nou: contractors\n\
         ref: ldap://elsewhere.invalid/{contractors}\n\n"
    ));
    let referred = run(&*store, &config);
    assert!(
        referred
            .incomplete
            .iter()
            .any(|p| p.contains("continuation reference") && p.contains("elsewhere.invalid")),
        "{referred}"
    );
    assert_eq!(
        count(&referred, Action::Deactivate, Kind::User),
        0,
        "{referred}"
    );
}

/// StartTLS and ldaps verify the server against the configured CA; another CA fails.
#[test]
fn tls_is_verified() {
    let slapd = Slapd::start("tls");
    slapd.add(&person("jdoe", "Jane", "Doe", &format!("ou=people,{BASE}")));
    let ca = slapd.certificates.ca.display().to_string();
    let make = |url: &str, tls: &str, ca: &str| {
        let text = format!(
            "directory = \"corp\"\n[connection]\nurls = [\"{url}\"]\n{tls}\nca_file = \"{ca}\"\nbind_dn = \"{SERVICE_DN}\"\nbind_password_env = \"USERSYNC_TEST_LDAP_PASSWORD\"\n[users]\nbase = \"ou=people,{BASE}\"\n"
        );
        set_password_env();
        SyncConfig::from_toml(&text).unwrap()
    };
    let starttls = make(
        &slapd.url.replace("127.0.0.1", "localhost"),
        "tls = \"starttls\"",
        &ca,
    );
    let snapshot = source::read(&starttls).unwrap();
    assert_eq!(snapshot.users.len(), 1, "{:?}", snapshot.problems);
    let ldaps = make(&slapd.ldaps_url, "", &ca);
    assert_eq!(source::read(&ldaps).unwrap().users.len(), 1);
    // A CA that did not sign the server's certificate.
    let other_dir = std::env::temp_dir().join(format!("usersync-other-ca-{}", std::process::id()));
    let other = usersync_testkit::certificates(&other_dir);
    let wrong = make(&slapd.ldaps_url, "", &other.ca.display().to_string());
    let err = source::read(&wrong).unwrap_err();
    assert!(err.to_string().contains("no LDAP server answered"), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    // Verification turned off on purpose: the same server is read, and the run says so.
    let unverified = make(
        &slapd.ldaps_url,
        "insecure_skip_verify = true",
        &other.ca.display().to_string(),
    );
    let snapshot = source::read(&unverified).unwrap();
    assert_eq!(snapshot.users.len(), 1, "{:?}", snapshot.problems);
    assert!(
        snapshot
            .warnings
            .iter()
            .any(|w| w.contains("verification is OFF")),
        "{:?}",
        snapshot.warnings
    );
    let _ = std::fs::remove_dir_all(other_dir);
}

/// A server that is gone: a clear error, and nothing planned or applied.
#[test]
fn a_dead_server_is_an_error_not_an_empty_directory() {
    let mut slapd = Slapd::start("dead");
    slapd.add(&person("jdoe", "Jane", "Doe", &format!("ou=people,{BASE}")));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(system_clock()));
    let config = make_config(&slapd, "connect_timeout_seconds = 2", "");
    let first = run(&*store, &config);
    apply::apply(&*store, &config, &first, false).unwrap();
    slapd.kill();
    let err = source::read(&config).unwrap_err();
    assert!(err.to_string().contains("no LDAP server answered"), "{err}");
    let d = store.directory("corp").unwrap().unwrap();
    assert!(store.list(d.id, Kind::User).unwrap()[0].active);
}

/// Forwards one connection to the slapd at `url` and kills slapd (SIGKILL) once `after`
/// bytes of its answers have passed; the thread returns whether it killed it.
fn killing_proxy(url: &str, pid: u32, after: usize) -> (String, std::thread::JoinHandle<bool>) {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("ldap://{}", listener.local_addr().unwrap());
    let server = url
        .trim_start_matches("ldap://")
        .trim_end_matches('/')
        .to_owned();
    let handle = std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        let mut upstream = TcpStream::connect(&server).unwrap();
        let (mut requests, mut to_server) =
            (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut requests, &mut to_server);
        });
        let (mut passed, mut killed) = (0, false);
        let mut buffer = [0_u8; 16 * 1024];
        while let Ok(n @ 1..) = upstream.read(&mut buffer) {
            if client.write_all(&buffer[..n]).is_err() {
                break;
            }
            passed += n;
            if passed >= after && !killed {
                killed = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .is_ok_and(|s| s.success());
            }
        }
        let _ = client.shutdown(Shutdown::Both);
        killed
    });
    (proxy, handle)
}

/// slapd killed in the middle of a read: no destructive change, a clear reason, and the
/// next run, with the server back, converges.
#[test]
fn a_server_killed_mid_read_removes_nothing_and_the_next_run_converges() {
    let mut slapd = Slapd::start("midread");
    let ou = format!("ou=people,{BASE}");
    let total = 3000;
    let ldif: String = (0..total)
        .map(|i| person(&format!("m{i:05}"), "Test", &format!("User {i}"), &ou))
        .collect();
    slapd.add(&ldif);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(system_clock()));
    // Small pages: the read takes many round trips, so a kill lands in its middle.
    let config = make_config(&slapd, "page_size = 3", "");
    let first = run(&*store, &config);
    assert_eq!(count(&first, Action::Create, Kind::User), total);
    apply::apply(&*store, &config, &first, false).unwrap();

    // The read goes through a proxy that kills slapd once a third of the answers passed: in
    // the middle of the read however fast it runs (a timer raced it and lost).
    let mut through_proxy = config.clone();
    let (url, killer) = killing_proxy(&slapd.url, slapd.pid().unwrap(), 150_000);
    through_proxy.connection.urls = vec![url];
    let outcome = source::read(&through_proxy);
    assert!(
        killer.join().unwrap(),
        "slapd was killed in the middle of the read"
    );
    match outcome {
        Ok(snapshot) => {
            assert!(!snapshot.is_complete(), "a read cut short says so");
            assert!(snapshot.users.len() < total, "{}", snapshot.users.len());
            let p = plan::plan(
                &config,
                &snapshot,
                &apply::current(&*store, "corp").unwrap(),
            );
            assert!(
                !p.changes.iter().any(|c| c.action.is_destructive()),
                "nothing is taken away on a partial read: {p}"
            );
            assert!(p.to_string().contains("incomplete:"), "{p}");
            apply::apply(&*store, &config, &p, false).unwrap();
        }
        // Killed before the first answer: an error, and nothing planned at all.
        Err(e) => assert!(e.to_string().contains("LDAP"), "{e}"),
    }
    let d = store.directory("corp").unwrap().unwrap();
    assert!(
        store
            .list(d.id, Kind::User)
            .unwrap()
            .iter()
            .all(|u| u.active)
    );

    // The server comes back: the next run reads everything and has nothing to do.
    slapd.restart();
    let again = run(&*store, &config);
    assert!(again.incomplete.is_empty(), "{again}");
    assert!(again.is_empty(), "{again}");
}

/// Incremental runs read changed users in full and the rest by anchor: they apply what
/// changed, still see removals, fetch users the store does not hold as active, and fall
/// back to a full run when the mapping changes or the last full run is old.
#[test]
fn incremental_runs_read_changes_and_still_see_removals() {
    use std::sync::atomic::{AtomicI64, Ordering};
    use usersync_core::ldap::apply::{ApplyError, ApplyOptions, LocalTarget, Target};
    use usersync_core::ldap::plan::Current;
    use usersync_core::ldap::run::{self, RunOptions, RunOutcome};
    use usersync_core::scim::datetime::DateTime;
    use usersync_core::store::{Change, Clock, Replacement};

    let slapd = Slapd::start("incremental");
    let ou = format!("ou=people,{BASE}");
    let uids: Vec<String> = (1..=30).map(|i| format!("u{i:02}")).collect();
    let mut ldif = String::new();
    for uid in &uids {
        ldif.push_str(&person(uid, "Given", uid, &ou));
    }
    ldif.push_str(&group(
        "some",
        &[people("u01"), people("u02"), people("u03")],
    ));
    slapd.add(&ldif);
    let incremental = "max_deletion_percent = 50\n[incremental]\nenabled = true\noverlap = \"1s\"\nfull_every = \"1d\"";
    let config = make_config(&slapd, "", incremental);
    // The real time, plus an offset a test step can move forward.
    let offset = Arc::new(AtomicI64::new(0));
    let clock: Clock = {
        let offset = offset.clone();
        Arc::new(move || {
            let now = system_clock()();
            DateTime::from_unix(now.unix_seconds() + offset.load(Ordering::SeqCst), 0)
        })
    };
    let store = MemoryStore::new(clock.clone());
    let target = LocalTarget(&store);
    let sync = |config: &SyncConfig, full: bool| {
        let options = RunOptions::new(ApplyOptions::new(false), full);
        let run = run::sync(config, &store, &target, &options, &clock);
        assert_eq!(run.outcome, RunOutcome::Succeeded, "{:?}", run.error);
        run
    };
    let user = |uid: &str| {
        let d = store.directory("corp").unwrap().unwrap();
        store
            .list(d.id, Kind::User)
            .unwrap()
            .into_iter()
            .find(|u| u.name == uid)
            .unwrap()
    };

    let first = sync(&config, false);
    assert_eq!(first.mode.since, None);
    assert_eq!(first.mode.reason, "no earlier run left a watermark");
    assert_eq!(first.report.unwrap().applied[&Action::Create], 31);

    // modifyTimestamp counts seconds: the load falls out of the next run's window
    // (its start, less the overlap of a second).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let second = sync(&config, false);
    assert!(second.mode.since.is_some(), "{:?}", second.mode);
    assert!(second.plan.unwrap().is_empty());

    // An unchanged user is taken as the store holds it: an edit made in the store (not in
    // LDAP) stands through incremental runs, and a full run puts the source's value back.
    let d = store.directory("corp").unwrap().unwrap();
    let mut edited = user("u20");
    edited.attributes["title"] = "edited in the store".into();
    store
        .update(
            d.id,
            Kind::User,
            &edited.id,
            None,
            Change {
                replacement: Some(Replacement {
                    external_id: edited.external_id.clone(),
                    name: edited.name.clone(),
                    active: true,
                    attributes: edited.attributes.clone(),
                    members: None,
                }),
                ..Change::default()
            },
        )
        .unwrap();
    // A user the store holds as inactive, unchanged in LDAP, is read in full: reactivated.
    let mut inactive = user("u21");
    inactive.attributes["active"] = false.into();
    store
        .update(
            d.id,
            Kind::User,
            &inactive.id,
            None,
            Change {
                replacement: Some(Replacement {
                    external_id: inactive.external_id.clone(),
                    name: inactive.name.clone(),
                    active: false,
                    attributes: inactive.attributes.clone(),
                    members: None,
                }),
                ..Change::default()
            },
        )
        .unwrap();

    // Changes in LDAP: one user's title, one user gone, one new, one member leaves.
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: title\ntitle: Boss\n\n\
         dn: cn=some,ou=groups,{BASE}\nchangetype: modify\ndelete: member\nmember: {}\n",
        people("u05"),
        people("u03")
    ));
    slapd.delete(&[&people("u07")]);
    slapd.add(&person("u31", "New", "Comer", &ou));
    let third = sync(&config, false);
    assert!(third.mode.since.is_some(), "{:?}", third.mode);
    let plan = third.plan.unwrap();
    let mut seen: Vec<(Action, String)> = plan
        .changes
        .iter()
        .map(|c| (c.action, c.name.clone()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (Action::Create, "u31".to_owned()),
            (Action::Update, "u05".to_owned()),
            (Action::Reactivate, "u21".to_owned()),
            (Action::RemoveMembers, "some".to_owned()),
            (Action::Deactivate, "u07".to_owned()),
        ],
        "{plan}"
    );
    assert_eq!(user("u05").attributes["title"], "Boss");
    assert!(!user("u07").active);
    assert!(user("u21").active);
    assert_eq!(user("u20").attributes["title"], "edited in the store");

    // A full run on demand reads everything: the store's edit gives way to the source.
    let full = sync(&config, true);
    assert_eq!(full.mode.reason, "a full run was asked for");
    assert_eq!(full.plan.unwrap().changes.len(), 1);
    assert!(user("u20").attributes.get("title").is_none());

    // A changed mapping makes the next run full; so does an old last full run.
    let mapped = SyncConfig::from_toml(&format!(
        "directory = \"corp\"\n[connection]\nurls = [\"{}\"]\ntls = \"none\"\nbind_dn = \"{SERVICE_DN}\"\n\
         bind_password_env = \"USERSYNC_TEST_LDAP_PASSWORD\"\n[users]\nbase = \"ou=people,{BASE}\"\n\
         [users.attributes]\n\"title\" = \"title\"\n[groups]\nbase = \"ou=groups,{BASE}\"\n\
         [policy]\n{incremental}\n",
        slapd.url
    ))
    .unwrap();
    let changed = run::sync(
        &mapped,
        &store,
        &target,
        &RunOptions::new(ApplyOptions::new(true), false),
        &clock,
    );
    assert_eq!(
        changed.mode.reason,
        "the searches, mappings, URLs or change attribute differ from the last clean run's"
    );
    let again = sync(&config, false);
    assert_eq!(
        again.mode.since, None,
        "back to the first mapping: full again"
    );
    assert!(sync(&config, false).mode.since.is_some());
    offset.store(2 * 86_400, Ordering::SeqCst);
    let late = sync(&config, false);
    assert_eq!(
        late.mode.reason,
        "the last full run is older than incremental.full_every"
    );
    // Every run is on record, with its mode.
    let runs = store.runs(d.id, 100).unwrap();
    assert_eq!(runs.len(), 8);
    assert_eq!(runs[0].report["mode"]["since"], serde_json::Value::Null);
    assert!(runs[1].report["mode"]["since"].is_string());

    // Another server's watermark says nothing of this one: a changed URL list runs full.
    assert!(sync(&config, false).mode.since.is_some());
    let mut moved = config.clone();
    moved.connection.urls.push("ldap://127.0.0.1:1".into());
    let failover = run::sync(
        &moved,
        &store,
        &target,
        &RunOptions::new(ApplyOptions::new(true), false),
        &clock,
    );
    assert_eq!(
        failover.mode.reason,
        "the searches, mappings, URLs or change attribute differ from the last clean run's"
    );
    assert_eq!(
        sync(&config, false).mode.since,
        None,
        "and back: full again"
    );
    // A record dated after the clock (set back, or ahead when it ran) runs full, instead of
    // reading the changes since a time that has not come.
    offset.store(0, Ordering::SeqCst);
    assert_eq!(
        sync(&config, false).mode.reason,
        "the last clean run is dated after this machine's clock"
    );

    // The target is read while the incremental read runs: when it cannot be, the run
    // fails with the target's error and plans nothing on what was read.
    struct Unreadable<'a>(LocalTarget<'a>);
    impl Target for Unreadable<'_> {
        fn current(&self, _: &SyncConfig) -> Result<Current, ApplyError> {
            Err(ApplyError::Remote("the target is down".into()))
        }
        fn apply(
            &self,
            config: &SyncConfig,
            plan: &Plan,
            options: &ApplyOptions<'_>,
        ) -> Result<usersync_core::ldap::apply::Report, ApplyError> {
            self.0.apply(config, plan, options)
        }
    }
    assert!(
        sync(&config, false).mode.since.is_some(),
        "the next run is incremental too"
    );
    let before = last_seq(&store);
    let down = run::sync(
        &config,
        &store,
        &Unreadable(LocalTarget(&store)),
        &RunOptions::new(ApplyOptions::new(false), false),
        &clock,
    );
    assert_eq!(down.outcome, RunOutcome::Failed);
    assert_eq!(
        down.error.as_deref(),
        Some("the SCIM target failed: the target is down")
    );
    assert!(down.plan.is_none());
    assert_eq!(last_seq(&store), before, "nothing written");
}

/// A run goes on record in the records' store; when a directory of that name there is not
/// an LDAP one (a SCIM endpoint's, beside a remote target), the run says it was not
/// recorded instead of dropping its record in silence.
#[test]
fn a_run_that_cannot_be_recorded_says_so() {
    use usersync_core::ldap::apply::{ApplyOptions, LocalTarget};
    use usersync_core::ldap::run::{self, RunOptions};
    use usersync_core::store::{DirectoryKind, NewDirectory};

    let slapd = Slapd::start("unrecorded");
    slapd.add(&person("jdoe", "Jane", "Doe", &format!("ou=people,{BASE}")));
    let config = make_config(&slapd, "", "");
    let target = MemoryStore::new(system_clock());
    let records = MemoryStore::new(system_clock());
    records
        .create_directory(NewDirectory::new("corp", DirectoryKind::Scim))
        .unwrap();
    let run = run::sync(
        &config,
        &records,
        &LocalTarget(&target),
        &RunOptions::new(ApplyOptions::new(false), false),
        &system_clock(),
    );
    assert!(run.report.is_some(), "applied: {:?}", run.error);
    let error = run.error.unwrap_or_default();
    assert!(
        error.contains("the run was not recorded")
            && error.contains("`corp` is a scim directory, not an LDAP one"),
        "{error}"
    );
}
