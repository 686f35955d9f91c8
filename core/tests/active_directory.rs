//! Active Directory reconciliation against a real Samba AD domain controller: the
//! `active_directory` preset (binary GUID anchors, `sAMAccountName`, `userAccountControl`),
//! ranged `member` retrieval, nested groups with a cycle, disabled and re-enabled users, a
//! user renamed and moved, primary groups, the transitive matching rule as a scope,
//! referrals, StartTLS, and incremental runs by USN with tombstones, reading only the
//! groups that changed (a plan the same as a full read's; a full run when the controller or
//! its `invocationId` changes).
//!
//! A domain controller listens on fixed ports, so every case runs in this one test, one
//! after the other, each in an OU of its own.
#![allow(clippy::unwrap_used)] // a failed step should stop the test

use usersync_core::ldap::apply::{ApplyOptions, LocalTarget};
use usersync_core::ldap::config::SyncConfig;
use usersync_core::ldap::plan::{Action, Plan};
use usersync_core::ldap::run::{self, RunOptions, RunOutcome};
use usersync_core::ldap::{apply, plan, source};
use usersync_core::store::memory::MemoryStore;
use usersync_core::store::{Kind, Resource, Store, system_clock};
use usersync_testkit::samba::{ADMIN_DN, ADMIN_PASSWORD, DOMAIN, Samba};

/// A sync of the users and groups under `ou`, with the preset's defaults; `groups` holds
/// more keys of `[groups]`.
fn config(samba: &Samba, ou: &str, groups: &str) -> SyncConfig {
    config_of(samba, ou, "", Some(groups))
}

/// A sync of the users under `ou` (with more keys of `[users]`), and of the groups under it
/// when `groups` holds the more keys of `[groups]`.
fn config_of(samba: &Samba, ou: &str, users: &str, groups: Option<&str>) -> SyncConfig {
    set_password_env();
    let groups = groups.map_or(String::new(), |extra| {
        format!("[groups]\nbase = \"{ou}\"\n{extra}\n")
    });
    let text = format!(
        r#"
directory = "ad"
kind = "active_directory"
[connection]
urls = ["{url}"]
ca_file = "{ca}"
bind_dn = "{ADMIN_DN}"
bind_password_env = "USERSYNC_TEST_AD_PASSWORD"
[users]
base = "{ou}"
{users}
[users.attributes]
"name.givenName" = "givenName"
"name.familyName" = "sn"
{groups}
[policy]
# Small OUs change by large shares: the thresholds have tests of their own.
max_deletion_percent = 100
max_member_removal_percent = 100
max_group_deletion_percent = 100
"#,
        url = samba.ldaps_url,
        ca = samba.certificates.ca.display(),
    );
    SyncConfig::from_toml(&text).unwrap()
}

fn set_password_env() {
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| {
        // Edition 2024 makes set_var unsafe; the value never changes.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("USERSYNC_TEST_AD_PASSWORD", ADMIN_PASSWORD);
        }
    });
}

/// An OU for one case.
fn ou(samba: &Samba, name: &str) -> String {
    let dn = format!("OU={name},{DOMAIN}");
    samba.add(&format!(
        "dn: {dn}\nobjectClass: organizationalUnit\nou: {name}\n\n"
    ));
    dn
}

/// A user without a password: `userAccountControl` 544 (normal, no password required) is
/// enabled, 546 disabled.
fn user(name: &str, parent: &str, enabled: bool) -> String {
    let control = if enabled { 544 } else { 546 };
    format!(
        "dn: CN={name},{parent}\nobjectClass: user\nsAMAccountName: {name}\ngivenName: {name}\nsn: Tester\nuserAccountControl: {control}\n\n"
    )
}

fn group(name: &str, parent: &str, members: &[String]) -> String {
    let mut s = format!("dn: CN={name},{parent}\nobjectClass: group\nsAMAccountName: {name}\n");
    for m in members {
        s.push_str(&format!("member: {m}\n"));
    }
    s.push('\n');
    s
}

/// Reads, plans and applies; returns the plan.
fn sync(store: &dyn Store, config: &SyncConfig) -> Plan {
    let snapshot = source::read(config).unwrap();
    assert!(
        snapshot.is_complete(),
        "complete read: {:?}",
        snapshot.problems
    );
    let plan = plan::plan(
        config,
        &snapshot,
        &apply::current(store, &config.directory).unwrap(),
    );
    apply::apply(store, config, &plan, false).unwrap();
    plan
}

fn users(store: &dyn Store) -> Vec<Resource> {
    let d = store.directory("ad").unwrap().unwrap().id;
    store.list(d, Kind::User).unwrap()
}

fn by_name<'a>(resources: &'a [Resource], name: &str) -> &'a Resource {
    resources.iter().find(|r| r.name == name).unwrap()
}

/// Member names of the group named `name`.
fn member_names(store: &dyn Store, name: &str) -> Vec<String> {
    let d = store.directory("ad").unwrap().unwrap().id;
    let g = store.get_by_name(d, Kind::Group, name).unwrap().unwrap();
    let mut names: Vec<String> = store
        .members(d, &g.id)
        .unwrap()
        .into_iter()
        .map(|m| store.get(d, m.kind, &m.id).unwrap().unwrap().name)
        .collect();
    names.sort();
    names
}

fn count(plan: &Plan, action: Action, kind: Kind) -> usize {
    plan.changes
        .iter()
        .filter(|c| c.action == action && c.kind == kind)
        .count()
}

#[test]
fn active_directory_against_samba() {
    let samba = Samba::start("ad");
    preset_import_disable_and_move(&samba);
    ranged_members(&samba);
    nested_groups_with_a_cycle(&samba);
    primary_groups(&samba);
    transitive_scope_by_the_matching_rule(&samba);
    referrals_are_reported_not_followed(&samba);
    incremental_runs_by_usn(&samba);
    starttls(&samba);
}

/// The preset reads users by `objectGUID` (in samba-tool's text form), `sAMAccountName` and
/// `userAccountControl`; disabling deactivates, enabling reactivates; a user renamed and
/// moved to another OU keeps its identity.
fn preset_import_disable_and_move(samba: &Samba) {
    let base = ou(samba, "Staff");
    samba.add(&format!(
        "dn: OU=Sales,{base}\nobjectClass: organizationalUnit\nou: Sales\n\n\
         dn: OU=Support,{base}\nobjectClass: organizationalUnit\nou: Support\n\n"
    ));
    let sales = format!("OU=Sales,{base}");
    let mut ldif = String::new();
    ldif.push_str(&user("alice", &sales, true));
    ldif.push_str(&user("bob", &sales, false));
    ldif.push_str(&user("carol", &sales, true));
    ldif.push_str(&group(
        "Sellers",
        &base,
        &[format!("CN=alice,{sales}"), format!("CN=bob,{sales}")],
    ));
    samba.add(&ldif);

    let store = MemoryStore::new(system_clock());
    let config = config(samba, &base, "");
    let plan = sync(&store, &config);
    assert_eq!(count(&plan, Action::Create, Kind::User), 3, "{plan:?}");
    let all = users(&store);
    for name in ["alice", "bob", "carol"] {
        assert_eq!(
            by_name(&all, name).external_id.as_deref(),
            Some(samba.attribute("user", name, "objectGUID").as_str()),
            "{name}'s anchor is its GUID"
        );
    }
    assert!(by_name(&all, "alice").active);
    assert!(!by_name(&all, "bob").active, "disabled in AD");
    assert_eq!(member_names(&store, "Sellers"), ["alice", "bob"]);
    let again = sync(&store, &config);
    assert!(again.changes.is_empty(), "idempotent: {again:?}");

    // Disabled is not deleted; enabled comes back.
    samba.modify(&format!(
        "dn: CN=alice,{sales}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n\n\
         dn: CN=bob,{sales}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 544\n\n"
    ));
    let plan = sync(&store, &config);
    assert_eq!(count(&plan, Action::Deactivate, Kind::User), 1, "{plan:?}");
    assert_eq!(count(&plan, Action::Reactivate, Kind::User), 1, "{plan:?}");
    assert_eq!(count(&plan, Action::Delete, Kind::User), 0);
    let all = users(&store);
    assert!(!by_name(&all, "alice").active);
    assert!(by_name(&all, "bob").active);
    assert_eq!(member_names(&store, "Sellers"), ["alice", "bob"], "kept");

    // Renamed (CN and sAMAccountName) and moved to another OU: the same user.
    let carol = by_name(&all, "carol").clone();
    samba.modify(&format!(
        "dn: CN=carol,{sales}\nchangetype: modrdn\nnewrdn: CN=caroline\ndeleteoldrdn: 1\nnewsuperior: OU=Support,{base}\n\n\
         dn: CN=caroline,OU=Support,{base}\nchangetype: modify\nreplace: sAMAccountName\nsAMAccountName: caroline\n\n"
    ));
    let plan = sync(&store, &config);
    assert_eq!(count(&plan, Action::Create, Kind::User), 0, "{plan:?}");
    assert_eq!(count(&plan, Action::Delete, Kind::User), 0, "{plan:?}");
    assert_eq!(count(&plan, Action::Deactivate, Kind::User), 0, "{plan:?}");
    let caroline = by_name(&users(&store), "caroline").clone();
    assert_eq!(caroline.id, carol.id, "same resource");
    assert_eq!(caroline.external_id, carol.external_id, "same GUID");
}

/// A group of 2,000 members is read whole through ranges of 1,500 (`member;range=0-1499`,
/// then `member;range=1500-*`), and a member leaving it is seen.
fn ranged_members(samba: &Samba) {
    let base = ou(samba, "Crowd");
    let mut ldif = String::new();
    let mut dns = Vec::new();
    for i in 0..2000 {
        let name = format!("crowd{i:04}");
        ldif.push_str(&user(&name, &base, true));
        dns.push(format!("CN={name},{base}"));
    }
    ldif.push_str(&group("Everyone", &base, &dns));
    samba.add(&ldif);
    // The server hands the list out in ranges when asked, as AD does unasked: the reader
    // must go on to the end.
    let first = samba.read(&format!("CN=Everyone,{base}"), &["member;range=0-1499"]);
    assert_eq!(
        first
            .lines()
            .filter(|l| l.starts_with("member;range=0-1499: "))
            .count(),
        1500,
        "{}",
        &first[..first.len().min(300)]
    );
    let store = MemoryStore::new(system_clock());
    let config = config(samba, &base, "");
    sync(&store, &config);
    let members = member_names(&store, "Everyone");
    assert_eq!(members.len(), 2000);
    assert_eq!(members.first().map(String::as_str), Some("crowd0000"));
    assert_eq!(members.last().map(String::as_str), Some("crowd1999"));

    samba.modify(&format!(
        "dn: CN=Everyone,{base}\nchangetype: modify\ndelete: member\nmember: CN=crowd1999,{base}\n\n"
    ));
    let plan = sync(&store, &config);
    let removal = plan
        .changes
        .iter()
        .find(|c| c.action == Action::RemoveMembers)
        .expect("one member leaves");
    assert_eq!(removal.members.len(), 1, "{removal:?}");
    assert_eq!(member_names(&store, "Everyone").len(), 1999);
}

/// Groups nested three deep, the innermost holding the outermost (a cycle): flattened, each
/// group holds the users of every group below it, and the cycle ends.
fn nested_groups_with_a_cycle(samba: &Samba) {
    let base = ou(samba, "Nest");
    let mut ldif = String::new();
    for name in ["top", "middle", "bottom"] {
        ldif.push_str(&user(name, &base, true));
    }
    samba.add(&ldif);
    let cn = |n: &str| format!("CN={n},{base}");
    samba.add(&group("G3", &base, &[cn("bottom")]));
    samba.add(&group("G2", &base, &[cn("middle"), cn("G3")]));
    samba.add(&group("G1", &base, &[cn("top"), cn("G2")]));
    samba.modify(&format!(
        "dn: {}\nchangetype: modify\nadd: member\nmember: {}\n\n",
        cn("G3"),
        cn("G1")
    ));
    let store = MemoryStore::new(system_clock());
    sync(&store, &config(samba, &base, ""));
    let everyone = ["bottom", "middle", "top"];
    for g in ["G1", "G2", "G3"] {
        assert_eq!(
            member_names(&store, g),
            everyone,
            "{g}: a cycle holds everyone in it"
        );
    }
    // Kept as groups, the nesting is what AD says.
    let store = MemoryStore::new(system_clock());
    sync(&store, &config(samba, &base, "nested = \"keep\""));
    assert_eq!(member_names(&store, "G1"), ["G2", "top"]);
    assert_eq!(member_names(&store, "G3"), ["G1", "bottom"]);
}

/// A user's primary group is not in the group's `member`: it counts when
/// `groups.primary_group` asks for it.
fn primary_groups(samba: &Samba) {
    let base = ou(samba, "Primary");
    samba.add(&user("pat", &base, true));
    samba.add(&group("Staffers", &base, &[format!("CN=pat,{base}")]));
    let sid = samba.attribute("group", "Staffers", "objectSid");
    let rid = sid.rsplit('-').next().unwrap();
    samba.modify(&format!(
        "dn: CN=pat,{base}\nchangetype: modify\nreplace: primaryGroupID\nprimaryGroupID: {rid}\n\n"
    ));
    let listed = samba.read(&format!("CN=Staffers,{base}"), &["member"]);
    assert!(
        !listed.contains("member:"),
        "AD lists no primary member: {listed}"
    );
    let store = MemoryStore::new(system_clock());
    sync(&store, &config(samba, &base, ""));
    assert!(member_names(&store, "Staffers").is_empty());
    let store = MemoryStore::new(system_clock());
    sync(&store, &config(samba, &base, "primary_group = true"));
    assert_eq!(member_names(&store, "Staffers"), ["pat"]);
}

/// `only_members_of_via = "matching_rule"`: the server picks the members of a group through
/// nested groups, and no group needs to be read.
fn transitive_scope_by_the_matching_rule(samba: &Samba) {
    let base = ou(samba, "Scoped");
    let mut ldif = String::new();
    for name in ["inner1", "outer1", "nobody1"] {
        ldif.push_str(&user(name, &base, true));
    }
    samba.add(&ldif);
    let cn = |n: &str| format!("CN={n},{base}");
    samba.add(&group("Inner", &base, &[cn("inner1")]));
    samba.add(&group("Outer", &base, &[cn("outer1"), cn("Inner")]));
    let config = config_of(
        samba,
        &base,
        &format!(
            "only_members_of = [\"{}\"]\nonly_members_of_via = \"matching_rule\"",
            cn("Outer")
        ),
        None,
    );
    let store = MemoryStore::new(system_clock());
    sync(&store, &config);
    let mut names: Vec<String> = users(&store).into_iter().map(|u| u.name).collect();
    names.sort();
    assert_eq!(names, ["inner1", "outer1"]);
}

/// StartTLS on the plain port works as ldaps does, verified against the test CA; plain
/// LDAP is refused by the configuration before any connection.
fn starttls(samba: &Samba) {
    let base = format!("OU=Staff,{DOMAIN}");
    let mut config = config(samba, &base, "");
    config.connection.urls = vec![samba.url.clone()];
    config.connection.tls = usersync_core::ldap::config::Tls::StartTls;
    let snapshot = source::read(&config).unwrap();
    assert!(snapshot.is_complete(), "{:?}", snapshot.problems);
    assert_eq!(snapshot.users.len(), 3);
}

/// A search from the domain's root meets a continuation reference (the Configuration
/// naming context): reported, not followed, and the read stays complete.
fn referrals_are_reported_not_followed(samba: &Samba) {
    let config = config(
        samba,
        DOMAIN,
        "filter = \"(&(objectClass=group)(cn=Sellers))\"",
    );
    let snapshot = source::read(&config).unwrap();
    assert!(snapshot.is_complete(), "{:?}", snapshot.problems);
    assert_eq!(snapshot.groups.len(), 1);
    assert!(
        snapshot
            .warnings
            .iter()
            .any(|w| w.contains("continuation reference") && w.contains("CN=Configuration")),
        "{:?}",
        snapshot.warnings
    );
}

/// Incremental runs read the users whose `uSNChanged` passed the last clean run's USN, and
/// deleted users from their tombstones; each plan is the plan a full read makes; another
/// copy of the controller's database (a new `invocationId`) makes the next run full.
fn incremental_runs_by_usn(samba: &Samba) {
    let base = ou(samba, "Delta");
    let mut ldif = String::new();
    for name in ["ann", "ben", "cal", "dee", "eve"] {
        ldif.push_str(&user(name, &base, true));
    }
    samba.add(&ldif);
    let cn = |n: &str| format!("CN={n},{base}");
    samba.add(&group("Team", &base, &[cn("ann"), cn("ben")]));
    samba.add(&group("Crew", &base, &[cn("Team")]));
    samba.add(&group("Quiet", &base, &[cn("eve")]));
    // (The extra keys of [groups] end its table: [incremental] follows.)
    let config = config_of(samba, &base, "", Some("[incremental]\nenabled = true"));
    let store = MemoryStore::new(system_clock());
    let target = LocalTarget(&store);
    let clock = system_clock();
    // Each run: the plan a full read would make first (nothing applied), then the run.
    let step = |expect_incremental: bool| {
        let full = run::plan_run(&config, &store, &target, true, &clock).unwrap();
        let options = RunOptions::new(ApplyOptions::new(false), false);
        let run = run::sync(&config, &store, &target, &options, &clock);
        assert_eq!(run.outcome, RunOutcome::Succeeded, "{:?}", run.error);
        assert_eq!(
            run.mode.since.is_some(),
            expect_incremental,
            "{:?}",
            run.mode
        );
        let plan = run.plan.clone().unwrap();
        let key = |p: &Plan| {
            let mut changes: Vec<String> = p
                .changes
                .iter()
                .map(|c| format!("{:?} {} {:?}", c.action, c.name, c.members))
                .collect();
            changes.sort();
            changes
        };
        assert_eq!(key(&plan), key(&full.plan), "the same plan as a full read");
        plan
    };
    let first = step(false);
    assert_eq!(count(&first, Action::Create, Kind::User), 5);
    let quiet = step(true);
    assert!(quiet.changes.is_empty(), "{quiet:?}");
    // What an incremental read from the last clean run's watermark reads with members:
    // (groups read in full, groups read without their members).
    let read_groups = || {
        let d = store.directory("ad").unwrap().unwrap();
        let last = store.runs(d.id, 1).unwrap().remove(0);
        let mark: source::UsnMark =
            serde_json::from_value(last.report["watermark"]["usn"].clone()).unwrap();
        let current = apply::current(&store, "ad").unwrap();
        fn anchors<A>(rs: &[Resource<A>]) -> foldhash::HashSet<String> {
            rs.iter().filter_map(|r| r.external_id.clone()).collect()
        }
        let known = || {
            Some(source::Known {
                active: anchors(&current.users),
                groups: Some(anchors(&current.groups)),
            })
        };
        let snapshot = source::read_changes(
            &config,
            source::Changes {
                since: "",
                usn: Some(&mark),
                holds_member_lists: true,
                known: &known,
            },
        )
        .unwrap();
        assert!(snapshot.is_complete(), "{:?}", snapshot.problems);
        let name = &config.groups.as_ref().unwrap().name;
        let names = |es: &[source::Entry]| {
            let mut n: Vec<String> = es.iter().filter_map(|e| e.text(name)).collect();
            n.sort();
            n
        };
        (names(&snapshot.groups), names(&snapshot.unchanged_groups))
    };
    assert_eq!(
        read_groups(),
        (vec![], vec!["Crew".into(), "Quiet".into(), "Team".into()])
    );

    // A changed user, a membership change (only the group's USN moves), a deleted user.
    samba.modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: givenName\ngivenName: Annie\n\n\
         dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n-\nadd: member\nmember: {}\n\n",
        cn("ann"),
        cn("Team"),
        cn("ben"),
        cn("cal")
    ));
    samba.delete(&[&cn("dee")]);
    // Team changed; Crew holds it (flattened, its users changed too); Quiet did not.
    assert_eq!(
        read_groups(),
        (vec!["Crew".into(), "Team".into()], vec!["Quiet".into()])
    );
    let changed = step(true);
    assert_eq!(
        count(&changed, Action::Update, Kind::User),
        1,
        "{changed:?}"
    );
    let gone = changed
        .changes
        .iter()
        .find(|c| c.action == Action::Deactivate)
        .expect("dee is deactivated");
    assert_eq!(gone.name, "dee");
    assert!(
        gone.reason.contains("deleted in Active Directory"),
        "the tombstone says why: {}",
        gone.reason
    );
    assert_eq!(member_names(&store, "Team"), ["ann", "cal"]);
    assert_eq!(member_names(&store, "Crew"), ["ann", "cal"]);

    // eve, disabled then enabled again, is read in full each time; the group she is in
    // is not, and she stays in it (its members come from the target and her memberOf).
    for control in [546, 544] {
        samba.modify(&format!(
            "dn: {}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: {control}\n\n",
            cn("eve")
        ));
        assert_eq!(
            read_groups(),
            (vec![], vec!["Crew".into(), "Quiet".into(), "Team".into()])
        );
        let plan = step(true);
        assert_eq!(plan.changes.len(), 1, "{plan:?}");
        assert_eq!(member_names(&store, "Quiet"), ["eve"]);
    }

    // Team, inside Crew, is deleted: nothing in Crew's own entry need say so, and the
    // reader cannot tell which groups held it, so it reads every group with its members.
    samba.delete(&[&cn("Team")]);
    let gone = step(true);
    assert_eq!(count(&gone, Action::Delete, Kind::Group), 1, "{gone:?}");
    assert!(member_names(&store, "Crew").is_empty());
    assert_eq!(
        read_groups(),
        (vec![], vec!["Crew".into(), "Quiet".into()]),
        "the target no longer holds Team: incremental reads by USN again"
    );

    // The last clean run's watermark is made to name another controller, or another copy
    // of the database (a restore gives a new invocationId): the next run is full, and says
    // why.
    let d = store.directory("ad").unwrap().unwrap();
    for (field, value, says) in [
        (
            "invocation_id",
            "00000000-0000-0000-0000-000000000000",
            "invocationId",
        ),
        (
            "server",
            "CN=NTDS Settings,CN=DC2,CN=Servers",
            "another domain controller",
        ),
    ] {
        let last = store.runs(d.id, 1).unwrap().remove(0);
        let mut report = last.report.clone();
        report["watermark"]["usn"][field] = value.into();
        store
            .add_run(usersync_core::store::SyncRun { report, ..last })
            .unwrap();
        let options = RunOptions::new(ApplyOptions::new(false), false);
        let run = run::sync(&config, &store, &target, &options, &clock);
        assert_eq!(run.outcome, RunOutcome::Succeeded, "{:?}", run.error);
        assert_eq!(run.mode.since, None, "{:?}", run.mode);
        assert!(run.mode.reason.contains(says), "{}", run.mode.reason);
        assert!(run.plan.unwrap().changes.is_empty());
        // And the run after it is incremental again.
        step(true);
    }
}
