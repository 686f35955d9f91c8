//! The plan's safety rules on made-up snapshots (the slapd tests cover real reads).

use std::sync::Arc;

use super::*;
use crate::ldap::apply;
use crate::ldap::config::SyncConfig;
use crate::store::memory::MemoryStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{DirectoryKind, NewDirectory, Store, system_clock};

const CONFIG: &str = r#"
directory = "corp"
[connection]
urls = ["ldap://127.0.0.1:1"]
[users]
base = "ou=people,dc=x"
active = { attribute = "flags", bit_clear = 2 }
[users.attributes]
"title" = "title"
[groups]
base = "ou=groups,dc=x"
"#;

fn user(uid: &str, flags: Option<&str>, title: &str) -> Entry {
    let mut attrs = vec![
        ("entryUUID", vec![uid]),
        ("uid", vec![uid]),
        ("title", vec![title]),
    ];
    if let Some(f) = flags {
        attrs.push(("flags", vec![f]));
    }
    Entry::new(&format!("uid={uid},ou=people,dc=x"), attrs)
}

fn group(cn: &str, members: Vec<&str>) -> Entry {
    let dns: Vec<String> = members
        .iter()
        .map(|m| format!("uid={m},ou=people,dc=x"))
        .collect();
    let mut e = Entry::new(
        &format!("cn={cn},ou=groups,dc=x"),
        [("entryUUID", vec![cn]), ("cn", vec![cn])],
    );
    e.attributes.insert(
        "member".into(),
        dns.into_iter().map(String::into_bytes).collect(),
    );
    e
}

/// A new store with `snapshot` imported into it.
fn imported(config: &SyncConfig, snapshot: &Snapshot) -> Arc<dyn Store> {
    // SQLite, the default store, hands held users over as text (`HeldAttributes::Text`).
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory(system_clock()).unwrap());
    let first = plan(config, snapshot, &apply::current(&*store, "corp").unwrap());
    assert!(first.incomplete.is_empty(), "{first}");
    apply::apply(&*store, config, &first, false).unwrap();
    store
}

/// Ten active users in two groups, synced.
fn synced() -> (SyncConfig, Arc<dyn Store>, Snapshot) {
    let config = SyncConfig::from_toml(CONFIG).unwrap();
    let names: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
    let snapshot = Snapshot {
        users: names
            .iter()
            .map(|n| user(n, Some("512"), "Engineer"))
            .collect(),
        groups: vec![
            group("a", names.iter().map(String::as_str).collect()),
            group("b", vec!["u0"]),
        ],
        ..Snapshot::default()
    };
    let store = imported(&config, &snapshot);
    let again = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    assert!(again.is_empty(), "{again}");
    (config, store, snapshot)
}

#[test]
fn a_user_disabled_with_other_changes_is_still_a_deactivation() {
    let (config, store, mut snapshot) = synced();
    // Two of ten disabled (0x2 set) and retitled at once: 20%, above the 10% threshold.
    snapshot.users[0] = user("u0", Some("514"), "Former employee");
    snapshot.users[1] = user("u1", Some("514"), "Former employee");
    let p = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    let deactivations: Vec<&Change> = p
        .changes
        .iter()
        .filter(|c| c.action == Action::Deactivate)
        .collect();
    assert_eq!(deactivations.len(), 2, "{p}");
    assert!(
        deactivations[0]
            .diff()
            .iter()
            .any(|d| d.attribute == "title")
    );
    assert!(!p.blocked.is_empty(), "{p}");
}

#[test]
fn an_unreadable_active_flag_is_missing_information_not_a_disabled_user() {
    let (config, store, mut snapshot) = synced();
    snapshot.users[3] = user("u3", None, "Engineer");
    snapshot.users[4] = user("u4", Some("not a number"), "Engineer");
    let p = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    assert_eq!(p.incomplete.len(), 2, "{p}");
    assert!(p.incomplete[0].contains("users.active has no readable value"));
    assert!(
        !p.changes.iter().any(|c| c.action.is_destructive()),
        "nothing is taken away: {p}"
    );
}

#[test]
fn an_incomplete_read_keeps_disabled_users_active_without_churn() {
    let (config, store, mut snapshot) = synced();
    snapshot.users[0] = user("u0", Some("514"), "Engineer");
    snapshot
        .problems
        .push("the users search stopped after 10 entries".into());
    let p = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    assert!(
        p.changes.is_empty(),
        "no deactivation and no spurious update: {p}"
    );
}

#[test]
fn groups_vanishing_at_once_block_the_plan() {
    let (config, store, mut snapshot) = synced();
    // The bind account lost access to the groups: the search returns nothing, cleanly.
    snapshot.groups.clear();
    let p = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    assert_eq!(
        p.changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .count(),
        2
    );
    assert!(p.blocked.iter().any(|b| b.contains("2 of 2 groups")), "{p}");
}

/// A user disabled in the source and renamed at once to a `userName` another directory
/// owns is still disabled: only the rename waits, reported as a conflict.
#[test]
fn a_rename_to_a_taken_name_does_not_keep_a_disabled_user_active() {
    let (config, store, mut snapshot) = synced();
    let other = store
        .create_directory(NewDirectory::new("other", DirectoryKind::Scim))
        .unwrap()
        .id;
    store
        .create(crate::store::NewResource {
            directory: other,
            kind: Kind::User,
            id: "elsewhere".into(),
            external_id: None,
            name: "taken".into(),
            active: true,
            attributes: json!({"userName": "taken"}),
            members: Vec::new(),
            password: None,
        })
        .unwrap();
    let mut renamed = user("u3", Some("514"), "Engineer");
    renamed
        .attributes
        .insert("uid".into(), vec![b"taken".to_vec()]);
    snapshot.users[3] = renamed;
    let held = |store: &dyn Store| {
        let d = store.directory("corp").unwrap().unwrap().id;
        store
            .list(d, Kind::User)
            .unwrap()
            .into_iter()
            .find(|r| r.external_id.as_deref() == Some("u3"))
            .unwrap()
    };
    let p = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    assert!(
        p.changes.iter().any(|c| c.action == Action::Deactivate),
        "{p}"
    );
    let report = apply::apply(&*store, &config, &p, false).unwrap();
    assert_eq!(report.conflicts.len(), 1, "{report:?}");
    assert!(
        report.conflicts[0].contains("userName `taken` is already taken")
            && report.conflicts[0].contains("applied under the userName `u3`"),
        "{report:?}"
    );
    let u3 = held(&*store);
    assert!(!u3.active, "disabled in the source, inactive in the store");
    assert_eq!(u3.name, "u3");
    // The rename alone is left: planned again, refused again, nothing else written.
    let p = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    assert_eq!(p.changes.len(), 1, "{p}");
    let version = u3.version;
    let report = apply::apply(&*store, &config, &p, false).unwrap();
    assert_eq!(report.conflicts.len(), 1, "{report:?}");
    assert!(!report.conflicts[0].contains("applied under"), "{report:?}");
    assert_eq!(held(&*store).version, version);
}

/// `(userName, active)` of each user of `corp`, by anchor.
fn users_by_anchor(store: &dyn Store) -> BTreeMap<String, (String, bool)> {
    let d = store.directory("corp").unwrap().unwrap().id;
    store
        .list(d, Kind::User)
        .unwrap()
        .into_iter()
        .map(|r| {
            assert_eq!(r.attributes["userName"], json!(r.name), "{r:?}");
            (r.external_id.unwrap(), (r.name, r.active))
        })
        .collect()
}

/// Plans and applies `snapshot` with no conflict, then checks that a second plan is empty.
fn converge(config: &SyncConfig, store: &dyn Store, snapshot: &Snapshot) -> Plan {
    let p = plan(config, snapshot, &apply::current(store, "corp").unwrap());
    let report = apply::apply(store, config, &p, false).unwrap();
    assert!(
        report.conflicts.is_empty() && report.failures.is_empty(),
        "{p}\n{report:?}"
    );
    let again = plan(config, snapshot, &apply::current(store, "corp").unwrap());
    assert!(again.is_empty(), "{again}");
    p
}

/// A leaver's userName given to a new hire, in the same run or runs later, moves to the new
/// hire: the leaver keeps a released name, `NAME~ANCHOR`, and is deactivated as before.
#[test]
fn a_user_name_the_source_reuses_moves_to_its_new_holder() {
    let (config, store, mut snapshot) = synced();
    // u9 leaves and a new entry takes its uid in the same run.
    let mut hire = user("n9", Some("512"), "Engineer");
    hire.attributes.insert("uid".into(), vec![b"U9".to_vec()]);
    snapshot.users[9] = hire;
    let p = converge(&config, &*store, &snapshot);
    assert_eq!(p.changes[0].action, Action::ReleaseName, "{p}");
    let users = users_by_anchor(&*store);
    assert_eq!(users["n9"], ("U9".to_owned(), true));
    assert_eq!(users["u9"], ("u9~u9".to_owned(), false));

    // u8 left in an earlier run; its name is reused later.
    snapshot.users.remove(8);
    converge(&config, &*store, &snapshot);
    assert_eq!(users_by_anchor(&*store)["u8"], ("u8".to_owned(), false));
    snapshot.users.push(user("n8", Some("512"), "Engineer"));
    snapshot
        .users
        .last_mut()
        .unwrap()
        .attributes
        .insert("uid".into(), vec![b"u8".to_vec()]);
    converge(&config, &*store, &snapshot);
    let users = users_by_anchor(&*store);
    assert_eq!(users["n8"], ("u8".to_owned(), true));
    assert_eq!(users["u8"], ("u8~u8".to_owned(), false));
}

/// Two users of the directory swap names, and a third takes the name of one that was
/// renamed: every rename lands in one run.
#[test]
fn names_swapped_or_passed_along_in_the_source_land_in_one_run() {
    let (config, store, mut snapshot) = synced();
    let name = |e: &mut Entry, uid: &str| {
        e.attributes
            .insert("uid".into(), vec![uid.as_bytes().to_vec()]);
    };
    name(&mut snapshot.users[1], "u2");
    name(&mut snapshot.users[2], "u1");
    name(&mut snapshot.users[3], "u33");
    name(&mut snapshot.users[4], "u3");
    let p = converge(&config, &*store, &snapshot);
    let releases = p
        .changes
        .iter()
        .filter(|c| c.action == Action::ReleaseName)
        .count();
    assert_eq!(releases, 3, "{p}");
    let users = users_by_anchor(&*store);
    for (anchor, name) in [("u1", "u2"), ("u2", "u1"), ("u3", "u33"), ("u4", "u3")] {
        assert_eq!(users[anchor], (name.to_owned(), true));
    }
}

/// A holder renamed in the source to a name another directory owns keeps the released
/// name (and gets its other changes), not the name just given away; under policy `fail`
/// the changes a name passes through come first, before one that stops the run.
#[test]
fn a_released_name_is_not_taken_back() {
    let (config, store, mut snapshot) = synced();
    let other = store
        .create_directory(NewDirectory::new("other", DirectoryKind::Scim))
        .unwrap()
        .id;
    for name in ["taken", "a-taken"] {
        store
            .create(crate::store::NewResource {
                directory: other,
                kind: Kind::User,
                id: name.into(),
                external_id: None,
                name: name.into(),
                active: true,
                attributes: json!({"userName": name}),
                members: Vec::new(),
                password: None,
            })
            .unwrap();
    }
    let mut renamed = user("u3", Some("512"), "Manager");
    renamed
        .attributes
        .insert("uid".into(), vec![b"taken".to_vec()]);
    snapshot.users[3] = renamed;
    let mut hire = user("n3", Some("512"), "Engineer");
    hire.attributes.insert("uid".into(), vec![b"u3".to_vec()]);
    snapshot.users.push(hire);
    let p = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    let report = apply::apply(&*store, &config, &p, false).unwrap();
    assert_eq!(report.conflicts.len(), 1, "{report:?}");
    let users = users_by_anchor(&*store);
    assert_eq!(users["u3"], ("u3~u3".to_owned(), true));
    assert_eq!(users["n3"], ("u3".to_owned(), true));
    let d = store.directory("corp").unwrap().unwrap().id;
    let u3 = store
        .list(d, Kind::User)
        .unwrap()
        .into_iter()
        .find(|r| r.external_id.as_deref() == Some("u3"))
        .unwrap();
    assert_eq!(
        u3.attributes["title"], "Manager",
        "its other changes applied"
    );

    // Policy `fail`: u1 and u2 swap names while u5 is renamed to a name that sorts first
    // (another directory's, say): the swap's changes come before u5's.
    let config = SyncConfig::from_toml(&format!(
        "{CONFIG}\n[policy]\nuser_name_conflict = \"fail\"\n"
    ))
    .unwrap();
    let (_, store, mut snapshot) = synced();
    for (i, uid) in [(1, "u2"), (2, "u1"), (5, "a-taken")] {
        snapshot.users[i]
            .attributes
            .insert("uid".into(), vec![uid.as_bytes().to_vec()]);
    }
    let p = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    let order: Vec<(Action, &str)> = p
        .changes
        .iter()
        .map(|c| (c.action, c.anchor.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            (Action::ReleaseName, "u1"),
            (Action::ReleaseName, "u2"),
            (Action::Update, "u2"),
            (Action::Update, "u1"),
            (Action::Update, "u5"),
        ]
    );
}

/// On an incomplete read a user missing from it may still hold its name: the name is not
/// taken from it, and the newcomer waits as a conflict.
#[test]
fn an_incomplete_read_takes_no_name_from_a_user_it_missed() {
    let (config, store, mut snapshot) = synced();
    let mut hire = user("n9", Some("512"), "Engineer");
    hire.attributes.insert("uid".into(), vec![b"u9".to_vec()]);
    snapshot.users[9] = hire;
    snapshot
        .problems
        .push("the server stopped answering".into());
    let p = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    assert!(
        p.changes.iter().all(|c| c.action != Action::ReleaseName),
        "{p}"
    );
    let report = apply::apply(&*store, &config, &p, false).unwrap();
    assert_eq!(report.conflicts.len(), 1, "{report:?}");
    let users = users_by_anchor(&*store);
    assert_eq!(users["u9"], ("u9".to_owned(), true));
    assert!(!users.contains_key("n9"));
}

/// A group the target would refuse (a name with U+0000) is missing information: the plan
/// takes nothing away, as for a group without a name, and says why.
#[test]
fn a_group_the_target_would_refuse_makes_the_snapshot_incomplete() {
    let (config, store, mut snapshot) = synced();
    // u9 left the directory, u8 left group `a`, and `b` got a name no store keeps.
    snapshot.users.truncate(9);
    let a_members: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
    snapshot.groups[0] = group("a", a_members.iter().map(String::as_str).collect());
    snapshot.groups[1]
        .attributes
        .insert("cn".into(), vec![b"b\0x".to_vec()]);
    let p = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    assert!(
        p.incomplete
            .iter()
            .any(|why| why.starts_with("group cn=b,ou=groups,dc=x: ") && why.contains("U+0000")),
        "{p}"
    );
    assert!(
        !p.changes.iter().any(|c| c.action.is_destructive()),
        "nothing is taken away: {p}"
    );
    // With the group's name fixed, the same read removes both.
    snapshot.groups[1] = group("b", vec!["u0"]);
    let p = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    assert!(p.incomplete.is_empty(), "{p}");
    assert_eq!(
        p.changes
            .iter()
            .filter(|c| c.action.is_destructive())
            .count(),
        2,
        "{p}"
    );
}

/// A group whose member list was not read whole (ranges left unread, or a range the reader
/// could not get) loses no member; the rest of the plan, removals included, goes on.
#[test]
fn a_group_not_read_whole_loses_no_member() {
    let (config, store, snapshot) = synced();
    let half = |mut snapshot: Snapshot, ranged: bool| {
        let members = snapshot.groups[0].attributes.remove("member").unwrap();
        let key = if ranged { "member;range=0-4" } else { "member" };
        snapshot.groups[0]
            .attributes
            .insert(key.into(), members[..5].to_vec());
        // u0 leaves `b` for real.
        snapshot.groups[1]
            .attributes
            .insert("member".into(), Vec::new());
        snapshot
    };
    let mut reported = half(snapshot.clone(), false);
    reported.partial_groups = vec![(
        "cn=a,ou=groups,dc=x".into(),
        "reading member;range=5-1504: timed out".into(),
    )];
    for (snapshot, says) in [(half(snapshot, true), "in ranges"), (reported, "timed out")] {
        let p = plan(
            &config,
            &snapshot,
            &apply::current(&*store, "corp").unwrap(),
        );
        assert!(p.incomplete.is_empty(), "{p}");
        let removals: Vec<&str> = p
            .changes
            .iter()
            .filter(|c| c.action == Action::RemoveMembers)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(removals, ["b"], "{p}");
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("group `a`") && w.contains(says)),
            "{p}"
        );
    }
}

#[test]
fn a_sync_never_writes_into_a_scim_directory() {
    let config = SyncConfig::from_toml(&CONFIG.replace("\"corp\"", "\"default\"")).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(system_clock()));
    store
        .create_directory(NewDirectory::new("default", DirectoryKind::Scim))
        .unwrap();
    let err = apply::current(&*store, "default").unwrap_err();
    assert!(err.to_string().contains("is a scim directory"), "{err}");
    let p = plan(&config, &Snapshot::default(), &Current::default());
    assert!(
        apply::apply(&*store, &config, &p, true).is_ok(),
        "an empty plan writes nothing"
    );
    let p = plan(
        &config,
        &Snapshot {
            users: vec![user("x", Some("512"), "t")],
            ..Snapshot::default()
        },
        &Current::default(),
    );
    assert!(apply::apply(&*store, &config, &p, true).is_err());
}

#[test]
fn a_hash_in_a_member_dn_is_part_of_the_dn() {
    let config = SyncConfig::from_toml(CONFIG).unwrap();
    let mut room = user("room", Some("512"), "t");
    room.dn = "uid=Room #5,ou=people,dc=x".into();
    let mut g = group("rooms", vec![]);
    g.attributes.insert(
        "member".into(),
        vec![b"uid=Room #5,ou=people,dc=x".to_vec()],
    );
    let snapshot = Snapshot {
        users: vec![room],
        groups: vec![g],
        ..Snapshot::default()
    };
    let p = plan(&config, &snapshot, &Current::default());
    let adds = p
        .changes
        .iter()
        .find(|c| c.action == Action::AddMembers)
        .unwrap();
    assert_eq!(adds.members.len(), 1, "{p}");
}

/// A member DN written with other escapes, case or spaces than the entry's own DN (as
/// servers and tools write them) names the same user.
#[test]
fn a_member_dn_written_otherwise_names_the_same_user() {
    let config = SyncConfig::from_toml(CONFIG).unwrap();
    let mut lee = user("lee", Some("512"), "t");
    lee.dn = "uid=Lee\\, Ann+cn=\\C3\\A9,ou=people,dc=x".into();
    let mut g = group("staff", vec![]);
    g.attributes.insert(
        "member".into(),
        vec![b"CN=\\c3\\a9 + UID=lee\\2c ann , ou=People,dc=x".to_vec()],
    );
    let snapshot = Snapshot {
        users: vec![lee],
        groups: vec![g],
        ..Snapshot::default()
    };
    let p = plan(&config, &snapshot, &Current::default());
    let adds = p.changes.iter().find(|c| c.action == Action::AddMembers);
    assert_eq!(adds.map(|c| c.members.len()), Some(1), "{p}");
}

#[test]
fn member_uid_names_users_ignoring_case() {
    let config = SyncConfig::from_toml(&CONFIG.replace(
        "base = \"ou=groups,dc=x\"",
        "base = \"ou=groups,dc=x\"\nmembership = \"memberUid\"",
    ))
    .unwrap();
    let mut g = group("posix", vec![]);
    g.attributes.insert(
        "memberuid".into(),
        vec![b"Ann".to_vec(), b"bob".to_vec(), b"nobody".to_vec()],
    );
    let snapshot = Snapshot {
        users: ["ann", "bob", "cal"]
            .into_iter()
            .map(|u| user(u, Some("512"), "t"))
            .collect(),
        groups: vec![g],
        ..Snapshot::default()
    };
    let p = plan(&config, &snapshot, &Current::default());
    assert!(p.incomplete.is_empty(), "{p}");
    let adds = p
        .changes
        .iter()
        .find(|c| c.action == Action::AddMembers)
        .unwrap();
    let mut names: Vec<&str> = adds.members.iter().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["ann", "bob"], "{p}");
}

#[test]
fn a_sid_ends_in_its_rid() {
    // S-1-5-21-1-2-3-1105: revision 1, five sub-authorities, authority 5.
    let mut sid = vec![1, 5, 0, 0, 0, 0, 0, 5];
    for part in [21_u32, 1, 2, 3, 1105] {
        sid.extend(part.to_le_bytes());
    }
    assert_eq!(sid_rid(&sid), Some(1105));
    assert_eq!(sid_rid(&sid[..sid.len() - 1]), None, "truncated");
    assert_eq!(sid_rid(b"S-1-5-21"), None, "text is not a SID");
}

/// A scope group not read whole is missing information: the users it seems to lose are
/// not taken out of scope.
#[test]
fn a_scope_group_not_read_whole_removes_no_user() {
    let text = CONFIG.replace(
        "[users.attributes]",
        "only_members_of = [\"cn=a,ou=groups,dc=x\"]\n[users.attributes]",
    );
    let config = SyncConfig::from_toml(&text).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(system_clock()));
    let names: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
    let mut snapshot = Snapshot {
        users: names
            .iter()
            .map(|n| user(n, Some("512"), "Engineer"))
            .collect(),
        groups: vec![group("a", names.iter().map(String::as_str).collect())],
        ..Snapshot::default()
    };
    let first = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    apply::apply(&*store, &config, &first, false).unwrap();
    // Half of `a` was read; the rest of its ranges failed.
    let members = snapshot.groups[0].attributes.remove("member").unwrap();
    snapshot.groups[0]
        .attributes
        .insert("member".into(), members[..5].to_vec());
    snapshot.partial_groups = vec![("cn=a,ou=groups,dc=x".into(), "timed out".into())];
    let p = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    assert!(
        p.incomplete.iter().any(|i| i.contains("only_members_of")),
        "{p}"
    );
    assert!(
        !p.changes.iter().any(|c| c.action == Action::Deactivate),
        "{p}"
    );
}

/// `memberOf` values naming groups of the test's group base.
fn member_of(mut e: Entry, groups: &[&str]) -> Entry {
    e.attributes.insert(
        "memberof".into(),
        groups
            .iter()
            .map(|g| format!("cn={g},ou=groups,dc=x").into_bytes())
            .collect(),
    );
    e
}

/// A group with users and groups as members.
fn group_of(cn: &str, users: &[&str], groups: &[&str]) -> Entry {
    let mut e = group(cn, users.to_vec());
    if let Some(members) = e.attributes.get_mut("member") {
        members.extend(
            groups
                .iter()
                .map(|g| format!("cn={g},ou=groups,dc=x").into_bytes()),
        );
    }
    e
}

/// An entry as an incremental read returns one it found unchanged: anchor and name.
fn light(e: &Entry, name: &str) -> Entry {
    let mut light = Entry::new(&e.dn, []);
    for key in ["entryuuid", name, "memberof"] {
        if let Some(v) = e.attributes.get(key) {
            light.attributes.insert(key.into(), v.clone());
        }
    }
    light
}

/// An incremental AD read lists the members of changed groups only: the plan takes the
/// other groups' members from the target, corrected by the `memberOf` of the users read in
/// full — the same plan as a full read's, with nesting flattened or kept.
#[test]
fn unchanged_groups_keep_the_targets_members() {
    for nested in ["flatten", "keep"] {
        let config = SyncConfig::from_toml(
            &CONFIG.replace("[groups]\n", &format!("[groups]\nnested = \"{nested}\"\n")),
        )
        .unwrap();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(system_clock()));
        let names: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
        let users = |skip: &[&str]| -> Vec<Entry> {
            names
                .iter()
                .filter(|n| !skip.contains(&n.as_str()))
                .map(|n| user(n, Some("512"), "Engineer"))
                .collect()
        };
        // u7 is in `a` and u8 in `e` (inside `f`), both out of the user search at first.
        let first = Snapshot {
            users: users(&["u7", "u8"]),
            groups: vec![
                group_of("a", &["u0", "u1", "u7"], &["c"]),
                group_of("b", &["u2"], &[]),
                member_of(group_of("c", &["u3", "u4"], &[]), &["a"]),
                member_of(group_of("e", &["u8", "u9"], &[]), &["f"]),
                group_of("f", &[], &["e"]),
            ],
            ..Snapshot::default()
        };
        let p = plan(&config, &first, &apply::current(&*store, "corp").unwrap());
        apply::apply(&*store, &config, &p, false).unwrap();

        // Then: u5 joins b; u4 leaves c and u6 joins it; u1's title changes; u7 and u8
        // come into scope.
        let mut full = Snapshot {
            users: users(&[]),
            groups: vec![
                group_of("a", &["u0", "u1", "u7"], &["c"]),
                group_of("b", &["u2", "u5"], &[]),
                member_of(group_of("c", &["u3", "u6"], &[]), &["a"]),
                member_of(group_of("e", &["u8", "u9"], &[]), &["f"]),
                group_of("f", &[], &["e"]),
            ],
            ..Snapshot::default()
        };
        full.users[1] = user("u1", Some("512"), "Lead");
        let read_in_full = ["u1", "u7", "u8"];
        let member_ofs = [&["a"][..], &["a"], &["e"]];
        let flattened = nested == "flatten";
        let incremental = Snapshot {
            users: read_in_full
                .iter()
                .zip(member_ofs)
                .map(|(n, groups)| {
                    let i = names.iter().position(|m| m == n).unwrap();
                    member_of(full.users[i].clone(), groups)
                })
                .collect(),
            unchanged_users: full
                .users
                .iter()
                .filter(|u| {
                    !read_in_full
                        .iter()
                        .any(|n| u.dn.starts_with(&format!("uid={n},")))
                })
                .map(|u| light(u, "uid"))
                .collect(),
            // Flattened, `a` is read because `c` inside it changed.
            groups: full.groups[usize::from(!flattened)..3].to_vec(),
            unchanged_groups: full
                .groups
                .iter()
                .enumerate()
                .filter(|(i, _)| *i >= 3 || (*i == 0 && !flattened))
                .map(|(_, g)| light(g, "cn"))
                .collect(),
            changed_since: Some("USN 1".into()),
            ..Snapshot::default()
        };
        let current = apply::current(&*store, "corp").unwrap();
        let key = |p: &Plan| -> Vec<String> {
            let mut k: Vec<String> = p
                .changes
                .iter()
                .map(|c| format!("{:?} {} {:?}", c.action, c.name, c.members))
                .collect();
            k.sort();
            k
        };
        let by_full = plan(&config, &full, &current);
        let by_changes = plan(&config, &incremental, &current);
        assert!(by_changes.incomplete.is_empty(), "{by_changes}");
        assert_eq!(key(&by_changes), key(&by_full), "{nested}: {by_changes}");
        let adds = |name: &str| -> Vec<String> {
            let mut m: Vec<String> = by_changes
                .changes
                .iter()
                .filter(|c| c.name == name && c.action == Action::AddMembers)
                .flat_map(|c| c.members.iter().map(|m| m.name.clone()))
                .collect();
            m.sort();
            m
        };
        let a_gains = if flattened {
            vec!["u6", "u7"]
        } else {
            vec!["u7"]
        };
        assert_eq!(adds("a"), a_gains, "{nested}: {by_changes}");
        assert_eq!(adds("b"), ["u5"], "{nested}");
        assert_eq!(adds("e"), ["u8"], "{nested}");
        let f_gains: &[&str] = if flattened { &["u8"] } else { &[] };
        assert_eq!(adds("f"), f_gains, "{nested}");

        // A group the target does not hold is read in full by the reader; one handed
        // over light is missing information, not an empty group.
        let mut stray = incremental.clone();
        stray
            .unchanged_groups
            .push(light(&group("z", vec![]), "cn"));
        let p = plan(&config, &stray, &current);
        assert!(
            p.incomplete
                .iter()
                .any(|i| i.contains("cn=z,ou=groups,dc=x")),
            "{p}"
        );
    }
}

/// A re-sync takes a user the target holds just as mapped for unchanged without checking it
/// against the schema again. That holds only if the check keeps what it passed as it is:
/// every user a first import stored (names, a template, a lower-cased and filtered email, a
/// constant, the enterprise extension, attribute names in the wrong case) reads back the
/// same. And a user changed in the target since is still put back.
#[test]
fn what_the_target_holds_passes_the_schema_check_unchanged() {
    let config = SyncConfig::from_toml(
        r#"
directory = "corp"
[connection]
urls = ["ldap://127.0.0.1:1"]
[users]
base = "ou=people,dc=x"
active = { attribute = "locked", transform = "not_boolean" }
[users.attributes]
"name.givenName" = "givenName"
"NAME.familyName" = "sn"
"displayName" = "{givenName} {sn}"
'emails[type eq "work"].value' = { attribute = "mail", transform = "lowercase" }
"Title" = "title"
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber" = "employeeNumber"
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value" = "manager"
"userType" = { constant = "Employee" }
"#,
    )
    .unwrap();
    let person = |uid: &str, title: &str| {
        Entry::new(
            &format!("uid={uid},ou=people,dc=x"),
            [
                ("entryUUID", vec![uid]),
                ("uid", vec![uid]),
                ("givenName", vec!["Zoë"]),
                ("sn", vec![" Lee "]),
                ("mail", vec!["Zoe.Lee@Example.TEST"]),
                ("title", vec![title]),
                ("employeeNumber", vec!["0042"]),
                ("manager", vec!["boss"]),
            ],
        )
    };
    let snapshot = Snapshot {
        users: vec![person("zoe", "Engineer"), person("ann", "")],
        ..Snapshot::default()
    };
    let store = imported(&config, &snapshot);
    let current = apply::current(&*store, "corp").unwrap();
    let registry = SchemaRegistry::core();
    let rt = registry.resource_type("User").unwrap();
    for held in &current.users {
        let attributes = held.attributes.to_object().into_owned();
        let mut body = Value::Object(attributes.clone());
        body["schemas"] = json!([rt.schema.id]);
        let checked = read_input(rt, Kind::User, &body, Compatibility::default()).unwrap();
        assert_eq!(checked.attributes, attributes, "{}", held.name);
    }
    // `name.givenName` and `NAME.familyName` fill one `name`.
    let zoe = current.users.iter().find(|u| u.name == "zoe").unwrap();
    let name = &zoe.attributes.to_object()["name"];
    assert!(
        name["givenName"].is_string() && name["familyName"].is_string(),
        "{name}"
    );
    let again = plan(&config, &snapshot, &current);
    assert!(again.is_empty(), "{again}");
    // Kept as text written another way (a line per value): the same users, nothing to do.
    let mut pretty = current.clone();
    for u in &mut pretty.users {
        let text = serde_json::to_string_pretty(&*u.attributes.to_object()).unwrap();
        u.attributes = HeldAttributes::Text(text);
    }
    let again = plan(&config, &snapshot, &pretty);
    assert!(again.is_empty(), "{again}");

    // Retitled in the target (by hand, say): the re-sync puts the title back.
    let mut drifted = zoe.clone();
    let mut attributes = drifted.attributes.to_object().into_owned();
    attributes["title"] = json!("Manager");
    drifted.attributes = HeldAttributes::Text(Value::Object(attributes).to_string());
    let mut current = current.clone();
    current.users = vec![drifted];
    let p = plan(&config, &snapshot, &current);
    let update = p
        .changes
        .iter()
        .find(|c| c.action == Action::Update && c.name == "zoe")
        .unwrap_or_else(|| panic!("{p}"));
    assert!(update.diff().iter().any(|d| d.attribute == "title"), "{p}");
}

/// Two entries with one anchor (a user moved between two searches of one read, or read in
/// full and listed as unchanged too) are one user: the first is planned, the second is
/// missing information, so nothing is taken away.
#[test]
fn two_entries_with_one_anchor_are_missing_information() {
    let (config, store, mut snapshot) = synced();
    let mut moved = user("u3", Some("512"), "Engineer");
    moved.dn = "uid=u3,ou=moved,dc=x".into();
    snapshot.users.push(moved);
    snapshot.users.remove(9);
    let current = apply::current(&*store, "corp").unwrap();
    let p = plan(&config, &snapshot, &current);
    assert_eq!(
        p.incomplete,
        ["two entries share the anchor `u3` (uid=u3,ou=moved,dc=x)"],
        "{p}"
    );
    assert!(p.changes.is_empty(), "u9 stays, u3 is as held: {p}");

    // An incremental read: u2 read in full, and listed among the unchanged users as well.
    let incremental = Snapshot {
        users: vec![user("u2", Some("512"), "Lead")],
        unchanged_users: snapshot.users[..9].to_vec(),
        changed_since: Some("USN 1".into()),
        ..Snapshot::default()
    };
    let p = plan(&config, &incremental, &current);
    assert_eq!(
        p.incomplete,
        ["two entries share the anchor `u2` (uid=u2,ou=people,dc=x)"],
        "{p}"
    );
    let update = p
        .changes
        .iter()
        .find(|c| c.name == "u2")
        .unwrap_or_else(|| panic!("{p}"));
    assert_eq!(update.action, Action::Update, "the entry read in full: {p}");
    assert!(!p.changes.iter().any(|c| c.action.is_destructive()), "{p}");
}

#[test]
fn a_create_shows_every_attribute_it_sets() {
    let config = SyncConfig::from_toml(CONFIG).unwrap();
    let snapshot = Snapshot {
        users: vec![
            user("u0", Some("512"), "Engineer"),
            user("u1", Some("2"), "Chef"),
        ],
        groups: vec![group("a", vec!["u0"])],
        ..Snapshot::default()
    };
    let store = MemoryStore::new(system_clock());
    let p = plan(&config, &snapshot, &apply::current(&store, "corp").unwrap());
    let create = |name: &str| {
        p.changes
            .iter()
            .find(|c| c.action == Action::Create && c.name == name)
            .unwrap_or_else(|| panic!("a create of {name}: {p}"))
    };
    let set = |c: &Change| -> Vec<(String, Value)> {
        c.diff()
            .iter()
            .inspect(|d| assert_eq!(d.old, Value::Null, "{p}"))
            .map(|d| (d.attribute.clone(), d.new.clone()))
            .collect()
    };
    let (enabled, disabled) = (set(create("u0")), set(create("u1")));
    for (attributes, title, active) in [(&enabled, "Engineer", true), (&disabled, "Chef", false)] {
        for wanted in [
            ("title".to_owned(), json!(title)),
            ("active".to_owned(), json!(active)),
        ] {
            assert!(attributes.contains(&wanted), "{attributes:?}");
        }
        let names: BTreeSet<&str> = attributes.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(
            names.len(),
            attributes.len(),
            "each attribute once: {attributes:?}"
        );
    }
    assert!(
        set(create("a")).contains(&("displayName".into(), json!("a"))),
        "{p}"
    );
    // The JSON a reviewer reads carries the same diff.
    let shown = serde_json::to_value(&p).unwrap();
    for (c, json) in p.changes.iter().zip(shown["changes"].as_array().unwrap()) {
        assert_eq!(
            json["diff"],
            serde_json::to_value(&*c.diff()).unwrap(),
            "{json}"
        );
        assert_eq!(json["kind"], c.kind.as_str());
    }
}

/// A read large enough to be mapped on several threads is planned in the entries' order:
/// of two entries with one anchor the first is kept, and problems are listed as read.
#[test]
fn a_large_read_is_planned_in_the_order_it_was_read() {
    let config = SyncConfig::from_toml(CONFIG).unwrap();
    let mut users: Vec<Entry> = (0..5000)
        .map(|i| user(&format!("u{i:04}"), Some("512"), "Engineer"))
        .collect();
    let mut moved = user("u0700", Some("512"), "Lead");
    moved.dn = "uid=u0700,ou=moved,dc=x".into();
    users[1100] = moved;
    for i in [1030, 600] {
        users[i].attributes.remove("uid");
    }
    let snapshot = Snapshot {
        users,
        ..Snapshot::default()
    };
    let p = plan(&config, &snapshot, &Current::default());
    assert_eq!(
        p.incomplete,
        [
            "uid=u0600,ou=people,dc=x has no `uid` (the userName)",
            "uid=u1030,ou=people,dc=x has no `uid` (the userName)",
            "two entries share the anchor `u0700` (uid=u0700,ou=moved,dc=x)",
        ],
        "{p}"
    );
    assert_eq!(p.changes.len(), 4997, "every other entry is a create: {p}");
    let kept = p.changes.iter().find(|c| c.name == "u0700").unwrap();
    assert!(
        kept.reason.contains("ou=people"),
        "the first entry: {kept:?}"
    );
}

/// A group's members are compared as sets: those to add and those to remove, each in
/// order, whatever order the source lists them in.
#[test]
fn members_joining_and_leaving_are_listed_in_order() {
    let config = SyncConfig::from_toml(CONFIG).unwrap();
    let names = ["u1", "u2", "u3", "u4", "u5", "u6"];
    let mut snapshot = Snapshot {
        users: names
            .iter()
            .map(|n| user(n, Some("512"), "Engineer"))
            .collect(),
        groups: vec![group("g", vec!["u5", "u1", "u3", "u1"])],
        ..Snapshot::default()
    };
    let store = imported(&config, &snapshot);
    snapshot.groups = vec![group("g", vec!["u6", "u3", "u4", "u2", "u4"])];
    let p = plan(
        &config,
        &snapshot,
        &apply::current(&*store, "corp").unwrap(),
    );
    let members = |action| -> Vec<&str> {
        p.changes
            .iter()
            .filter(|c| c.action == action)
            .flat_map(|c| c.members.iter().map(|m| m.name.as_str()))
            .collect()
    };
    assert_eq!(members(Action::AddMembers), ["u2", "u4", "u6"], "{p}");
    assert_eq!(members(Action::RemoveMembers), ["u1", "u5"], "{p}");
}

/// Settling users while the source is read changes nothing in the plan, however many were
/// settled and whenever the target became known.
#[test]
fn users_settled_during_the_read_plan_as_the_plan_alone_would() {
    let (_, store, synced) = synced();
    // Two users a call at most (`page_size` 1): most calls leave some to the plan.
    let config =
        SyncConfig::from_toml(&CONFIG.replace("[connection]\n", "[connection]\npage_size = 1\n"))
            .unwrap();
    let mut snapshot = synced.clone();
    snapshot.users[1] = user("u1", Some("512"), "Manager");
    snapshot.users[2] = user("u2", Some("514"), "Engineer");
    snapshot
        .users
        .extend(["n0", "n1", "n2"].map(|n| user(n, Some("512"), "Intern")));
    let mut no_anchor = user("n3", Some("512"), "Intern");
    no_anchor.attributes.remove("entryuuid");
    snapshot.users.push(no_anchor);
    snapshot.users.push(user("u3", Some("512"), "Engineer"));
    let current = apply::current(&*store, "corp").unwrap();
    let alone = plan(&config, &snapshot, &current);
    assert!(
        ["u1", "n0"]
            .iter()
            .all(|n| alone.changes.iter().any(|c| c.name == *n)),
        "{alone}"
    );
    assert!(
        alone.incomplete.iter().any(|i| i.contains("uid=n3")),
        "{alone}"
    );
    assert!(
        alone
            .incomplete
            .iter()
            .any(|i| i.contains("share the anchor `u3`")),
        "{alone}"
    );

    let users = &snapshot.users;
    // (calls before the target is known, pages read in all): none settled, some, all.
    for (waiting, pages) in [
        (users.len(), users.len()),
        (3, 9),
        (0, 6),
        (0, users.len() + 6),
    ] {
        let known = std::cell::Cell::new(false);
        let target = || known.get().then_some(&current);
        let mut settler = Settler::new(&config, &target);
        for page in 0..pages {
            known.set(page >= waiting);
            settler.settle(&users[..(page + 1).min(users.len())]);
        }
        let settled = settler.finish();
        // The two users the target holds otherwise are left to the plan.
        let settleable = users.len() - 2;
        let count = settled.count();
        match (waiting, pages) {
            (w, _) if w == users.len() => assert_eq!(count, 0),
            (0, p) if p > users.len() => assert_eq!(count, settleable),
            _ => assert!(0 < count && count < settleable, "{count} settled"),
        }
        let p = plan_settled(&config, &snapshot, &current, settled);
        assert_eq!(
            p.to_json(),
            alone.to_json(),
            "waiting {waiting}, pages {pages}"
        );
    }
}

/// On Active Directory, a mapping that reads `memberOf` waits for the plan: `memberOf` is
/// read in ranges after the users' search.
#[test]
fn nothing_is_settled_early_when_active_directory_may_add_to_a_mapped_member_of() {
    let ad = SyncConfig::from_toml(&CONFIG.replace(
        "directory = \"corp\"\n",
        "directory = \"corp\"\nkind = \"active_directory\"\n",
    ))
    .unwrap();
    let with_member_of = SyncConfig::from_toml(
        &CONFIG
            .replace(
                "directory = \"corp\"\n",
                "directory = \"corp\"\nkind = \"active_directory\"\n",
            )
            .replace("\"title\" = \"title\"", "\"title\" = \"memberOf\""),
    )
    .unwrap();
    let users = vec![user("u0", Some("512"), "Engineer")];
    let current = Current::default();
    let target = || Some(&current);
    for (config, expected) in [(&ad, 1), (&with_member_of, 0)] {
        let mut settler = Settler::new(config, &target);
        settler.settle(&users);
        assert_eq!(settler.finish().count(), expected);
    }
}

/// A lock lost part-way stops the apply before its next batch: the batches before it stay,
/// nothing is written after, and the next run (under a lock held again) converges.
#[test]
fn an_apply_stops_at_the_batch_after_its_sync_lock_is_lost() {
    let config = SyncConfig::from_toml(CONFIG).unwrap();
    let names: Vec<String> = (0..2500).map(|i| format!("u{i}")).collect();
    let snapshot = Snapshot {
        users: names
            .iter()
            .map(|n| user(n, Some("512"), "Engineer"))
            .collect(),
        groups: vec![group("all", names.iter().map(String::as_str).collect())],
        ..Snapshot::default()
    };
    let store = SqliteStore::open_in_memory(system_clock()).unwrap();
    let p = plan(&config, &snapshot, &apply::current(&store, "corp").unwrap());
    let lock = crate::store::SyncLock::lost_after(3);
    let partial = std::sync::Mutex::new(None);
    let options = apply::ApplyOptions::new(false)
        .with_lock(&lock)
        .with_partial(&partial);
    let err = apply::apply_with(&store, &config, &p, &options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the sync lock was lost: its session ended; stopped after 2000 of 2502 changes so that two syncs do not write at once"
    );
    // What it did until then is reported, for the run's record.
    let done = partial.into_inner().unwrap().unwrap();
    assert_eq!(done.applied.get(&Action::Create), Some(&2000));
    let d = store.directory("corp").unwrap().unwrap().id;
    assert_eq!(store.list(d, Kind::User).unwrap().len(), 2000);
    assert!(store.list(d, Kind::Group).unwrap().is_empty());
    let held = crate::store::SyncLock::lost_after(usize::MAX);
    let again = plan(&config, &snapshot, &apply::current(&store, "corp").unwrap());
    assert_eq!(again.changes.len(), 502, "{again}");
    apply::apply_with(
        &store,
        &config,
        &again,
        &apply::ApplyOptions::new(false).with_lock(&held),
    )
    .unwrap();
    assert_eq!(store.list(d, Kind::User).unwrap().len(), 2500);
    assert!(plan(&config, &snapshot, &apply::current(&store, "corp").unwrap()).is_empty());
}

/// A caller's request to stop (a daemon told to stop, Ctrl-C in Python) stops the apply
/// before its next batch, keeping the batches before it.
#[test]
fn an_apply_stops_at_the_batch_after_its_caller_asks() {
    let config = SyncConfig::from_toml(CONFIG).unwrap();
    let snapshot = Snapshot {
        users: (0..1500)
            .map(|i| user(&format!("u{i}"), Some("512"), "Engineer"))
            .collect(),
        ..Snapshot::default()
    };
    let store = SqliteStore::open_in_memory(system_clock()).unwrap();
    let p = plan(&config, &snapshot, &apply::current(&store, "corp").unwrap());
    let asked = std::sync::atomic::AtomicUsize::new(0);
    let cancel = || asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1;
    let options = apply::ApplyOptions::new(false).with_cancel(&cancel);
    let err = apply::apply_with(&store, &config, &p, &options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the apply was stopped after 1000 of 1500 changes; the next run goes on"
    );
    let d = store.directory("corp").unwrap().unwrap().id;
    assert_eq!(store.list(d, Kind::User).unwrap().len(), 1000);
}
