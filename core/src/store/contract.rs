//! The contract every [`Store`] backend passes: one suite, run against each backend below.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::json;

use super::*;

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn new() -> Self {
        Self(Arc::new(AtomicI64::new(1_700_000_000)))
    }
    fn clock(&self) -> Clock {
        let t = self.0.clone();
        Arc::new(move || DateTime::from_unix(t.load(Ordering::SeqCst), 0))
    }
    fn advance_days(&self, days: i64) {
        self.0.fetch_add(days * 86_400, Ordering::SeqCst);
    }
    fn now(&self) -> DateTime {
        DateTime::from_unix(self.0.load(Ordering::SeqCst), 0)
    }
}

fn user(directory: i64, id: &str, name: &str) -> NewResource {
    NewResource {
        directory,
        kind: Kind::User,
        id: id.into(),
        external_id: Some(format!("ext-{id}")),
        name: name.into(),
        active: true,
        attributes: json!({"userName": name, "displayName": name.to_uppercase()}),
        members: Vec::new(),
        password: None,
    }
}

fn group(directory: i64, id: &str, name: &str) -> NewResource {
    NewResource {
        directory,
        kind: Kind::Group,
        id: id.into(),
        external_id: None,
        name: name.into(),
        active: true,
        attributes: json!({"displayName": name}),
        members: Vec::new(),
        password: None,
    }
}

fn replacement(r: &Resource) -> Replacement {
    Replacement {
        external_id: r.external_id.clone(),
        name: r.name.clone(),
        active: r.active,
        attributes: r.attributes.clone(),
        members: None,
    }
}

fn m(id: &str, kind: Kind) -> Member {
    Member {
        id: id.into(),
        kind,
    }
}

/// Runs the whole contract against stores made by `make`.
fn contract(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    directories(make);
    crud_and_versions(make);
    uniqueness(make);
    memberships(make);
    many_members(make);
    change_feed(make);
    deprovisioning(make);
    isolation(make);
    tokens(make);
    batches(make);
    sync_runs(make);
    password_hashes(make);
    member_changes_by_id(make);
    sync_locks(make);
    feed_waits(make);
    content_checks(make);
    held_lists(make);
}

/// `list_held` is `list`, its attributes held as what was written: the same attributes
/// compare as held, any other do not.
fn held_lists(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let s = make(TestClock::new().clock());
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Ldap))
        .unwrap()
        .id;
    let attributes = json!({
        "userName": "zoë",
        "name": {"givenName": "Zoë \"Z\"", "familyName": "Lee"},
        "emails": [{"value": "z@example.com", "type": "work", "primary": true}],
        "x-number": 1.5,
        "active": false,
    });
    s.create(NewResource {
        attributes: attributes.clone(),
        active: false,
        ..user(d, "u1", "zoë")
    })
    .unwrap();
    s.create(user(d, "u2", "ann")).unwrap();
    let listed = s.list(d, Kind::User).unwrap();
    let held = s.list_held(d, Kind::User).unwrap();
    assert_eq!(held.len(), 2);
    for (r, h) in listed.iter().zip(&held) {
        let as_listed = h.clone().map_attributes(|_| r.attributes.clone());
        assert_eq!(&as_listed, r, "the same resource");
        let wanted = r.attributes.as_object().unwrap();
        assert!(
            h.attributes.is_written_as(wanted),
            "{r:?}: as the store wrote it"
        );
        assert_eq!(&*h.attributes.to_object(), wanted);
        let mut other = wanted.clone();
        other.insert("title".into(), json!("Engineer"));
        assert!(!h.attributes.is_written_as(&other), "{r:?}: not with more");
        other.remove("title");
        other.insert("userName".into(), json!("someone else"));
        assert!(
            !h.attributes.is_written_as(&other),
            "{r:?}: not with a change"
        );
    }
    assert_eq!(
        &*held[0].attributes.to_object(),
        attributes.as_object().unwrap()
    );
}

/// A replacement computed from a read goes through over member changes made since, not over
/// a change of the content it was computed from.
fn content_checks(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let s = make(TestClock::new().clock());
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
        .unwrap()
        .id;
    s.create(user(d, "u1", "ann")).unwrap();
    let read = s.create(group(d, "g", "Staff")).unwrap();
    s.change_members(d, "g", &["u1".to_owned()], &[]).unwrap();
    let rename = |name: &str, from: &Resource| Change {
        replacement: Some(Replacement {
            name: name.into(),
            attributes: json!({"displayName": name}),
            ..replacement(from)
        }),
        unless_changed: Some(Content::of(from)),
        ..Change::default()
    };
    let renamed = s
        .update(d, Kind::Group, "g", None, rename("Staff 2", &read))
        .expect("a member add since the read does not conflict");
    assert_eq!(renamed.name, "Staff 2");
    assert_eq!(renamed.version, read.version + 2);
    assert_eq!(s.members(d, "g").unwrap(), [m("u1", Kind::User)], "kept");
    assert_eq!(
        s.update(d, Kind::Group, "g", None, rename("Staff 3", &read))
            .unwrap_err(),
        StoreError::VersionMismatch {
            expected: read.version,
            actual: renamed.version
        },
        "a rename since the read conflicts"
    );
    assert_eq!(s.get(d, Kind::Group, "g").unwrap().unwrap().name, "Staff 2");
}

/// One sync per directory at a time; other directories are independent; a dropped lock can
/// be taken again.
fn sync_locks(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let s = make(TestClock::new().clock());
    let first = s.try_lock_sync("ldap").unwrap().expect("free");
    assert!(s.try_lock_sync("ldap").unwrap().is_none(), "held");
    let other = s.try_lock_sync("ldap-2").unwrap();
    assert!(other.is_some(), "another directory is independent");
    drop(first);
    assert!(s.try_lock_sync("ldap").unwrap().is_some(), "released");
    assert!(matches!(
        s.try_lock_sync("../ldap"),
        Err(StoreError::Invalid(_))
    ));
}

/// A reader waiting on the feed wakes when a write commits, and times out when none does.
fn feed_waits(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    use std::time::Duration;
    let s = make(TestClock::new().clock());
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
        .unwrap()
        .id;
    s.create(user(d, "u0", "first")).unwrap();
    let last = s.events_after(0, 100).unwrap().last().unwrap().seq;
    assert!(
        s.wait_for_events(0, Duration::ZERO).unwrap(),
        "already there"
    );
    assert!(
        !s.wait_for_events(last, Duration::from_millis(100)).unwrap(),
        "nothing after the last event"
    );
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(150));
            s.create(user(d, "u1", "second")).unwrap();
        });
        assert!(s.wait_for_events(last, Duration::from_secs(30)).unwrap());
    });
    assert_eq!(s.events_after(last, 100).unwrap().len(), 1);
}

/// Dozens of members in one call, as an LDAP import adds them: each is added once, those
/// already present or named twice are skipped, and only a call that adds one moves the
/// version.
fn many_members(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let s = make(TestClock::new().clock());
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Ldap))
        .unwrap()
        .id;
    let users: Vec<Member> = (0..50)
        .map(|i| {
            let id = format!("u{i:02}");
            s.create(user(d, &id, &format!("user{i:02}"))).unwrap();
            m(&id, Kind::User)
        })
        .collect();
    let mut with = group(d, "g", "Created with 35");
    with.members = users[..35].to_vec();
    assert_eq!(s.create(with).unwrap().version, 1);
    assert_eq!(s.members(d, "g").unwrap(), users[..35]);

    // 34 named: 32 present, and one new member twice: one member added, one version.
    let mut some = users[3..35].to_vec();
    some.push(users[40].clone());
    some.push(users[40].clone());
    assert_eq!(s.add_members(d, "g", None, &some).unwrap().version, 2);
    assert_eq!(s.members(d, "g").unwrap().len(), 36);
    assert_eq!(
        s.add_members(d, "g", None, &users[..35]).unwrap().version,
        2,
        "35 present members: nothing added, no version"
    );
    assert_eq!(s.add_members(d, "g", None, &users).unwrap().version, 3);
    assert_eq!(s.members(d, "g").unwrap(), users);
    assert_eq!(s.get(d, Kind::Group, "g").unwrap().unwrap().version, 3);

    // One unknown member among dozens: none of them joins.
    let mut other = group(d, "h", "All or nothing");
    other.members = users[..20].to_vec();
    other.members.push(m("ghost", Kind::User));
    assert!(matches!(s.create(other), Err(StoreError::NotFound { .. })));
    s.create(group(d, "h", "All or nothing")).unwrap();
    let mut bad = users[..40].to_vec();
    bad.insert(30, m("ghost", Kind::User));
    assert!(matches!(
        s.add_members(d, "h", None, &bad),
        Err(StoreError::NotFound { .. })
    ));
    assert!(s.members(d, "h").unwrap().is_empty());
}

/// `change_members` takes ids of either kind, adds then removes in one transaction, bumps
/// the version once when something changed, and refuses an unknown member or the group
/// itself without changing anything.
fn member_changes_by_id(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let s = make(TestClock::new().clock());
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
        .unwrap()
        .id;
    let other = s
        .create_directory(NewDirectory::new("other", DirectoryKind::Scim))
        .unwrap()
        .id;
    s.create(user(d, "u1", "one")).unwrap();
    s.create(user(d, "u2", "two")).unwrap();
    s.create(group(d, "sub", "Sub")).unwrap();
    s.create(user(other, "x1", "elsewhere")).unwrap();
    let g = s.create(group(d, "g", "Staff")).unwrap();
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let events = || s.events_after(0, 1000).unwrap().len();

    let before = events();
    let v = s.change_members(d, "g", &ids(&["u1", "sub"]), &[]).unwrap();
    assert_eq!(v, g.version + 1);
    assert_eq!(
        s.members(d, "g").unwrap(),
        [m("sub", Kind::Group), m("u1", Kind::User)]
    );
    assert_eq!(events(), before + 1, "one event");
    let feed = s.events_after(0, 1000).unwrap();
    let last = feed.last().unwrap();
    assert_eq!(
        (last.id.as_str(), last.version, last.event),
        ("g", v, EventKind::Updated)
    );
    assert_eq!(s.get(d, Kind::Group, "g").unwrap().unwrap().version, v);

    assert_eq!(
        s.change_members(d, "g", &ids(&["u1"]), &ids(&["u2", "gone"]))
            .unwrap(),
        v,
        "present and absent members: no change, no version"
    );
    assert_eq!(events(), before + 1);
    let v2 = s
        .change_members(d, "g", &ids(&["u2"]), &ids(&["u1"]))
        .unwrap();
    assert_eq!(v2, v + 1, "adds and removes: one version");
    assert_eq!(
        s.members(d, "g").unwrap(),
        [m("sub", Kind::Group), m("u2", Kind::User)]
    );

    for bad in [&["u1", "ghost"][..], &["u1", "x1"][..], &["u1", "g"][..]] {
        assert!(
            matches!(
                s.change_members(d, "g", &ids(bad), &[]),
                Err(StoreError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        s.members(d, "g").unwrap(),
        [m("sub", Kind::Group), m("u2", Kind::User)],
        "all or nothing"
    );
    assert_eq!(s.get(d, Kind::Group, "g").unwrap().unwrap().version, v2);
    assert!(matches!(
        s.change_members(d, "nope", &ids(&["u1"]), &[]),
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        matches!(
            s.change_members(d, "u1", &ids(&["u2"]), &[]),
            Err(StoreError::NotFound { .. })
        ),
        "a user is no group"
    );

    // Every membership at once: the groups that have members, as `members` lists them,
    // and nothing of another directory.
    s.create(group(other, "elsewhere", "Elsewhere")).unwrap();
    s.change_members(other, "elsewhere", &ids(&["x1"]), &[])
        .unwrap();
    s.change_members(d, "sub", &ids(&["u1"]), &[]).unwrap();
    let all = s.all_members(d).unwrap();
    let mut groups: Vec<&str> = all.keys().map(String::as_str).collect();
    groups.sort_unstable();
    assert_eq!(groups, ["g", "sub"]);
    for (group, members) in &all {
        assert_eq!(members, &s.members(d, group).unwrap(), "{group}");
    }
}

/// A kept password hash lives beside the user, never in it: set on create, kept by a
/// replacement, changed or cleared by an update (a new version), gone with the user; refused
/// for groups and for directories that do not keep hashes.
fn password_hashes(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let s = make(TestClock::new().clock());
    let keeps = s
        .create_directory(NewDirectory {
            keep_password_hashes: true,
            ..NewDirectory::new("okta", DirectoryKind::Scim)
        })
        .unwrap();
    assert!(keeps.keep_password_hashes);
    assert_eq!(s.directory("okta").unwrap(), Some(keeps.clone()));
    let d = keeps.id;
    let hash = |h: &str| PasswordHash(h.to_owned());
    let created = s
        .create(NewResource {
            password: Some(hash("$argon2id$one")),
            ..user(d, "u1", "alice")
        })
        .unwrap();
    assert_eq!(
        s.password_hash(d, "u1").unwrap(),
        Some(hash("$argon2id$one"))
    );
    let stored = s.get(d, Kind::User, "u1").unwrap().unwrap();
    assert!(
        !stored.attributes.to_string().contains("argon2"),
        "not an attribute"
    );
    assert_eq!(stored, created);

    let mut renamed = replacement(&created);
    renamed.name = "alice2".into();
    s.replace(d, Kind::User, "u1", None, renamed).unwrap();
    assert_eq!(
        s.password_hash(d, "u1").unwrap(),
        Some(hash("$argon2id$one")),
        "a replacement keeps the password"
    );
    let set = Change {
        password: Some(PasswordChange::Set(hash("$argon2id$two"))),
        ..Change::default()
    };
    let after = s.update(d, Kind::User, "u1", None, set).unwrap();
    assert_eq!(
        after.version,
        created.version + 2,
        "a new password is a change"
    );
    assert_eq!(
        s.password_hash(d, "u1").unwrap(),
        Some(hash("$argon2id$two"))
    );
    let clear = || Change {
        password: Some(PasswordChange::Clear),
        ..Change::default()
    };
    let cleared = s.update(d, Kind::User, "u1", None, clear()).unwrap();
    assert_eq!(cleared.version, after.version + 1);
    assert_eq!(s.password_hash(d, "u1").unwrap(), None);
    let again = s.update(d, Kind::User, "u1", None, clear()).unwrap();
    assert_eq!(
        again.version, cleared.version,
        "nothing to clear, no change"
    );

    s.create(NewResource {
        password: Some(hash("$argon2id$three")),
        ..user(d, "u2", "bob")
    })
    .unwrap();
    s.delete(d, Kind::User, "u2", None).unwrap();
    s.create(user(d, "u2", "bob")).unwrap();
    assert_eq!(
        s.password_hash(d, "u2").unwrap(),
        None,
        "gone with the user"
    );

    let group_password = NewResource {
        password: Some(hash("$argon2id$g")),
        ..group(d, "g", "staff")
    };
    assert!(matches!(
        s.create(group_password),
        Err(StoreError::Invalid(_))
    ));
    assert!(
        s.get(d, Kind::Group, "g").unwrap().is_none(),
        "nothing written"
    );

    let plain = s
        .create_directory(NewDirectory::new("entra", DirectoryKind::Scim))
        .unwrap();
    assert!(!plain.keep_password_hashes);
    let refused = NewResource {
        password: Some(hash("$argon2id$x")),
        ..user(plain.id, "u3", "carol")
    };
    assert!(matches!(s.create(refused), Err(StoreError::Invalid(_))));
    assert!(
        s.get(plain.id, Kind::User, "u3").unwrap().is_none(),
        "nothing written"
    );
    s.create(user(plain.id, "u3", "carol")).unwrap();
    let set = Change {
        password: Some(PasswordChange::Set(hash("$argon2id$y"))),
        ..Change::default()
    };
    assert!(matches!(
        s.update(plain.id, Kind::User, "u3", None, set),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(s.password_hash(plain.id, "u3").unwrap(), None);
    assert_eq!(
        s.password_hash(plain.id, "u1").unwrap(),
        None,
        "other directory"
    );
}

/// Sync runs are kept per directory, newest first.
fn sync_runs(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let clock = TestClock::new();
    let s = make(clock.clock());
    let d = s
        .create_directory(NewDirectory::new("corp", DirectoryKind::Ldap))
        .unwrap()
        .id;
    let other = s
        .create_directory(NewDirectory::new("other", DirectoryKind::Ldap))
        .unwrap()
        .id;
    for (dir, outcome) in [(d, "succeeded"), (other, "failed"), (d, "blocked")] {
        let run = s
            .add_run(SyncRun {
                id: 0,
                directory: dir,
                started: clock.now(),
                finished: clock.now(),
                outcome: outcome.into(),
                report: json!({"applied": {"create": 1}}),
            })
            .unwrap();
        assert!(run.id > 0);
    }
    let runs = s.runs(d, 10).unwrap();
    let outcomes: Vec<&str> = runs.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["blocked", "succeeded"]);
    assert_eq!(runs[0].report["applied"]["create"], 1);
    assert_eq!(s.runs(d, 1).unwrap().len(), 1);
    // Only the newest runs are kept, per directory.
    for i in 0..super::KEPT_RUNS {
        s.add_run(SyncRun {
            outcome: format!("run {i}"),
            ..runs[0].clone()
        })
        .unwrap();
    }
    let kept = s.runs(d, 2 * super::KEPT_RUNS).unwrap();
    assert_eq!(kept.len(), super::KEPT_RUNS);
    assert_eq!(kept[0].outcome, format!("run {}", super::KEPT_RUNS - 1));
    assert_eq!(kept[super::KEPT_RUNS - 1].outcome, "run 0");
    assert_eq!(
        s.runs(other, 10).unwrap().len(),
        1,
        "another directory's are its own"
    );
    assert!(
        s.add_run(SyncRun {
            directory: 999,
            ..runs[0].clone()
        })
        .is_err()
    );
}

/// A batch applies each write or none of it; a failing write leaves no trace (no event,
/// no count) and the others still apply.
fn batches(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let s = make(TestClock::new().clock());
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
        .unwrap()
        .id;
    s.create(user(d, "u0", "taken")).unwrap();
    let before = s.events_after(0, 100).unwrap().len();
    let outcomes = s
        .batch(vec![
            Write::Create(user(d, "u1", "one")),
            Write::Create(user(d, "u2", "TAKEN")),
            Write::Create(group(d, "g", "G")),
            Write::Update {
                directory: d,
                kind: Kind::Group,
                id: "g".into(),
                expected_version: None,
                change: Change {
                    add_members: vec![m("u1", Kind::User), m("u2", Kind::User)],
                    ..Change::default()
                },
            },
            Write::Update {
                directory: d,
                kind: Kind::Group,
                id: "g".into(),
                expected_version: None,
                change: Change {
                    add_members: vec![m("u1", Kind::User)],
                    ..Change::default()
                },
            },
            Write::Delete {
                directory: d,
                kind: Kind::User,
                id: "u0".into(),
                expected_version: Some(7),
            },
            // Refused before writing: a taken id, and a rename to a taken name.
            Write::Create(user(d, "u0", "another")),
            Write::Update {
                directory: d,
                kind: Kind::User,
                id: "u1".into(),
                expected_version: None,
                change: Change {
                    replacement: Some(Replacement {
                        external_id: None,
                        name: "Taken".into(),
                        active: true,
                        attributes: json!({}),
                        members: None,
                    }),
                    ..Change::default()
                },
            },
        ])
        .unwrap();
    assert!(outcomes[0].is_ok());
    assert!(matches!(outcomes[1], Err(StoreError::Uniqueness { .. })));
    assert!(outcomes[2].is_ok());
    assert!(
        matches!(outcomes[3], Err(StoreError::NotFound { .. })),
        "u2 was never created: the whole membership write fails"
    );
    assert_eq!(outcomes[4].as_ref().unwrap().as_ref().unwrap().version, 2);
    assert!(matches!(
        outcomes[5],
        Err(StoreError::VersionMismatch { .. })
    ));
    assert!(
        matches!(
            &outcomes[6],
            Err(StoreError::Uniqueness {
                attribute: "id",
                ..
            })
        ),
        "{:?}",
        outcomes[6]
    );
    assert!(
        matches!(
            &outcomes[7],
            Err(StoreError::Uniqueness {
                attribute: "userName",
                ..
            })
        ),
        "{:?}",
        outcomes[7]
    );
    assert_eq!(s.get(d, Kind::User, "u1").unwrap().unwrap().name, "one");
    assert_eq!(s.get(d, Kind::User, "u0").unwrap().unwrap().name, "taken");
    assert_eq!(s.members(d, "g").unwrap(), vec![m("u1", Kind::User)]);
    assert_eq!(s.count(d, Kind::User).unwrap(), 2);
    assert_eq!(s.count(d, Kind::Group).unwrap(), 1);
    // u1 created, g created, g updated: three events, none for the failed writes.
    assert_eq!(s.events_after(0, 100).unwrap().len(), before + 3);

    // Creates in a row as one by one: a name taken earlier in the batch is taken, and so
    // is an id; events come in the writes' order, counts follow.
    let before = s.events_after(0, 100).unwrap().len();
    let outcomes = s
        .batch(vec![
            Write::Create(user(d, "u5", "fresh")),
            Write::Create(user(d, "u6", "FRESH")),
            Write::Create(user(d, "u4", "four")),
            Write::Create(group(d, "g", "G2")),
            Write::Create(user(d, "u3", "three")),
        ])
        .unwrap();
    let names: Vec<Result<String, &'static str>> = outcomes
        .iter()
        .map(|o| match o {
            Ok(Some(r)) => Ok(r.name.clone()),
            Err(StoreError::Uniqueness { attribute, .. }) => Err(*attribute),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            Ok("fresh".into()),
            Err("userName"),
            Ok("four".into()),
            Err("id"),
            Ok("three".into())
        ]
    );
    let events: Vec<(String, EventKind)> = s.events_after(0, 100).unwrap()[before..]
        .iter()
        .map(|e| (e.id.clone(), e.event))
        .collect();
    assert_eq!(
        events,
        [
            ("u5".into(), EventKind::Created),
            ("u4".into(), EventKind::Created),
            ("u3".into(), EventKind::Created)
        ]
    );
    assert_eq!(s.count(d, Kind::User).unwrap(), 5);
    assert_eq!(s.count(d, Kind::Group).unwrap(), 1);
    // One id twice in a batch: the first takes it.
    let outcomes = s
        .batch(vec![
            Write::Create(user(d, "u7", "seven")),
            Write::Create(user(d, "u7", "seven again")),
        ])
        .unwrap();
    assert!(outcomes[0].is_ok());
    assert!(matches!(
        outcomes[1],
        Err(StoreError::Uniqueness {
            attribute: "id",
            ..
        })
    ));
    assert_eq!(s.count(d, Kind::User).unwrap(), 6);

    // Member adds in a row as one by one: each refused for its own reason, in the order
    // its checks come, and only the groups that gained a member get a version and an event.
    let other = s
        .create_directory(NewDirectory::new("other", DirectoryKind::Scim))
        .unwrap()
        .id;
    s.create(user(other, "x1", "x1")).unwrap();
    s.create(group(other, "gx", "GX")).unwrap();
    for i in 1..=8 {
        s.create(group(d, &format!("h{i}"), &format!("H{i}")))
            .unwrap();
    }
    let adding =
        |id: &str, expected_version: Option<u64>, members: &[(&str, Kind)]| Write::Update {
            directory: d,
            kind: Kind::Group,
            id: id.into(),
            expected_version,
            change: Change {
                add_members: members.iter().map(|(id, kind)| m(id, *kind)).collect(),
                ..Change::default()
            },
        };
    s.batch(vec![adding("h5", None, &[("u1", Kind::User)])])
        .unwrap();
    let before = s.events_after(0, 100).unwrap().len();
    let outcomes = s
        .batch(vec![
            adding(
                "h1",
                None,
                &[("u1", Kind::User), ("u3", Kind::User), ("u1", Kind::User)],
            ),
            adding("h2", None, &[("u1", Kind::User), ("nobody", Kind::User)]),
            adding("h3", Some(7), &[("u1", Kind::User)]),
            adding("h4", None, &[("h4", Kind::Group)]),
            adding("gx", None, &[("x1", Kind::User)]),
            adding("h6", None, &[("x1", Kind::User)]),
            adding("h5", None, &[("u1", Kind::User)]),
            adding("h7", None, &[("h1", Kind::Group), ("u4", Kind::User)]),
            adding("h8", None, &[("u1", Kind::Group)]),
        ])
        .unwrap();
    let told: Vec<Result<u64, String>> = outcomes
        .into_iter()
        .map(|o| match o {
            Ok(Some(r)) => Ok(r.version),
            Err(StoreError::NotFound { what }) => Err(what),
            Err(e) => Err(format!("{e:?}")
                .split([' ', '(', '{'])
                .next()
                .unwrap()
                .to_owned()),
            Ok(None) => panic!("a member add deleted"),
        })
        .collect();
    assert_eq!(
        told,
        [
            Ok(2),
            Err("User `nobody`".into()),
            Err("VersionMismatch".into()),
            Err("Invalid".into()),
            Err("Group `gx`".into()),
            Err("User `x1`".into()),
            Ok(2),
            Ok(2),
            Err("Group `u1`".into()),
        ],
        "h5 had u1 already: as it was"
    );
    assert_eq!(
        s.members(d, "h1").unwrap(),
        vec![m("u1", Kind::User), m("u3", Kind::User)]
    );
    assert!(s.members(d, "h2").unwrap().is_empty(), "refused whole");
    let mut h7 = s.members(d, "h7").unwrap();
    h7.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(h7, vec![m("h1", Kind::Group), m("u4", Kind::User)]);
    let events: Vec<(String, EventKind, u64)> = s.events_after(0, 100).unwrap()[before..]
        .iter()
        .map(|e| (e.id.clone(), e.event, e.version))
        .collect();
    assert_eq!(
        events,
        [
            ("h1".into(), EventKind::Updated, 2),
            ("h7".into(), EventKind::Updated, 2)
        ]
    );
}

fn tokens(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let s = make(TestClock::new().clock());
    let a = s
        .create_directory(NewDirectory::new("a", DirectoryKind::Scim))
        .unwrap()
        .id;
    let b = s
        .create_directory(NewDirectory::new("b", DirectoryKind::Scim))
        .unwrap()
        .id;
    let t1 = s.add_token(a, [1; 32]).unwrap();
    let t2 = s.add_token(a, [2; 32]).unwrap();
    s.add_token(b, [3; 32]).unwrap();
    assert_eq!(
        s.tokens(a).unwrap(),
        [t1.clone(), t2.clone()],
        "several valid at once, oldest first"
    );
    assert_eq!(s.tokens(b).unwrap().len(), 1);
    assert!(
        matches!(s.revoke_token(b, t1.id), Err(StoreError::NotFound { .. })),
        "only a directory's own tokens"
    );
    s.revoke_token(a, t1.id).unwrap();
    assert_eq!(s.tokens(a).unwrap(), [t2]);
    assert!(matches!(
        s.add_token(999, [0; 32]),
        Err(StoreError::NotFound { .. })
    ));
}

fn directories(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let s = make(TestClock::new().clock());
    let b = s
        .create_directory(NewDirectory::new("okta", DirectoryKind::Scim))
        .unwrap();
    let a = s
        .create_directory(NewDirectory::new("entra", DirectoryKind::Scim))
        .unwrap();
    assert_ne!(a.id, b.id);
    // A name with U+0000 (which C and Python callers can pass) names nothing, on every store.
    assert_eq!(s.directory("okta\0").unwrap(), None);
    assert_eq!(s.get_by_name(a.id, Kind::User, "x\0y").unwrap(), None);
    assert_eq!(a.retention_days, 30);
    assert_eq!(a.user_name_scope, UserNameScope::Platform);
    assert!(!a.strict && !a.keep_password_hashes);
    let strict = s
        .create_directory(NewDirectory {
            strict: true,
            retention_days: 3,
            user_name_scope: UserNameScope::Directory,
            ..NewDirectory::new("strict", DirectoryKind::Scim)
        })
        .unwrap();
    assert_eq!(
        s.directory("strict").unwrap(),
        Some(strict.clone()),
        "settings kept"
    );
    assert!(strict.strict);
    let names: Vec<String> = s
        .directories()
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["entra", "okta", "strict"]);
    assert_eq!(s.directory("okta").unwrap(), Some(b));
    assert_eq!(
        s.directory("OKTA").unwrap(),
        None,
        "directory names are exact"
    );
    assert!(matches!(
        s.create_directory(NewDirectory::new("okta", DirectoryKind::Ldap)),
        Err(StoreError::Uniqueness {
            attribute: "name",
            ..
        })
    ));
    for bad in ["", "a/b", "..", "with space", &"x".repeat(65)] {
        assert!(
            matches!(
                s.create_directory(NewDirectory::new(bad, DirectoryKind::Local)),
                Err(StoreError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
}

fn crud_and_versions(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let clock = TestClock::new();
    let s = make(clock.clock());
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
        .unwrap()
        .id;
    // Ids are URL path segments of printable ASCII.
    for bad in ["", "a/b", "ü1", "a b", "a\u{0}"] {
        assert!(
            matches!(s.create(user(d, bad, "x")), Err(StoreError::Invalid(_))),
            "id {bad:?}"
        );
    }
    let created = s.create(user(d, "u1", "bjensen")).unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.created, clock.now());
    assert_eq!(s.get(d, Kind::User, "u1").unwrap(), Some(created.clone()));
    assert_eq!(
        s.get(d, Kind::Group, "u1").unwrap(),
        None,
        "kind is part of the key"
    );
    assert_eq!(s.get(d, Kind::User, "nope").unwrap(), None);
    assert_eq!(
        s.get_by_name(d, Kind::User, "BJENSEN").unwrap().unwrap().id,
        "u1"
    );

    clock.advance_days(1);
    let mut next = replacement(&created);
    next.attributes = json!({"userName": "bjensen", "title": "Tour Guide"});
    let replaced = s
        .replace(d, Kind::User, "u1", Some(1), next.clone())
        .unwrap();
    assert_eq!(replaced.version, 2);
    assert_eq!(replaced.created, created.created);
    assert_eq!(replaced.modified, clock.now());
    assert_eq!(
        s.get(d, Kind::User, "u1").unwrap().unwrap().attributes["title"],
        "Tour Guide"
    );

    // A stale version changes nothing.
    let stale = s.replace(d, Kind::User, "u1", Some(1), replacement(&created));
    assert_eq!(
        stale,
        Err(StoreError::VersionMismatch {
            expected: 1,
            actual: 2
        })
    );
    assert_eq!(s.get(d, Kind::User, "u1").unwrap().unwrap(), replaced);
    assert_eq!(
        s.delete(d, Kind::User, "u1", Some(1)),
        Err(StoreError::VersionMismatch {
            expected: 1,
            actual: 2
        })
    );
    assert!(s.get(d, Kind::User, "u1").unwrap().is_some());

    s.replace(d, Kind::User, "u1", None, next).unwrap();
    s.delete(d, Kind::User, "u1", Some(3)).unwrap();
    assert_eq!(s.get(d, Kind::User, "u1").unwrap(), None);
    assert!(matches!(
        s.delete(d, Kind::User, "u1", None),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.replace(d, Kind::User, "u1", None, replacement(&created)),
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        matches!(
            s.create(user(999, "x", "x")),
            Err(StoreError::NotFound { .. })
        ),
        "unknown directory"
    );

    for i in [3, 1, 2] {
        s.create(user(d, &format!("id{i}"), &format!("user{i}")))
            .unwrap();
    }
    let ids: Vec<String> = s
        .list(d, Kind::User)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["id1", "id2", "id3"]);
    assert!(s.list(d, Kind::Group).unwrap().is_empty());
}

fn uniqueness(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let s = make(TestClock::new().clock());
    let a = s
        .create_directory(NewDirectory::new("a", DirectoryKind::Scim))
        .unwrap()
        .id;
    let b = s
        .create_directory(NewDirectory::new("b", DirectoryKind::Scim))
        .unwrap()
        .id;
    let mut own = NewDirectory::new("own", DirectoryKind::Ldap);
    own.user_name_scope = UserNameScope::Directory;
    let own = s.create_directory(own).unwrap().id;

    s.create(user(a, "u1", "Zoë@example.com")).unwrap();
    let taken = Err(StoreError::Uniqueness {
        attribute: "userName",
        value: "ZOË@EXAMPLE.COM".into(),
    });
    assert_eq!(
        s.create(user(a, "u2", "ZOË@EXAMPLE.COM")).map(|r| r.id),
        taken.clone(),
        "case-insensitive"
    );
    assert_eq!(
        s.create(user(b, "u2", "ZOË@EXAMPLE.COM")).map(|r| r.id),
        taken,
        "platform-wide by default"
    );
    s.create(user(own, "u3", "zoë@example.com")).unwrap();
    assert!(
        s.create(user(own, "u4", "Zoë@Example.com")).is_err(),
        "unique within its own directory"
    );
    assert!(matches!(
        s.create(user(b, "u1", "other")),
        Err(StoreError::Uniqueness {
            attribute: "id",
            ..
        })
    ));

    // Groups: displayName unique within a directory only, and apart from users.
    s.create(group(a, "g1", "Admins")).unwrap();
    assert!(matches!(
        s.create(group(a, "g2", "admins")),
        Err(StoreError::Uniqueness {
            attribute: "displayName",
            ..
        })
    ));
    s.create(group(b, "g2", "Admins")).unwrap();
    s.create(group(a, "g3", "Zoë@example.com")).unwrap();

    // Freed on rename and on delete; renaming to one's own name is fine.
    let u1 = s.get(a, Kind::User, "u1").unwrap().unwrap();
    let mut renamed = replacement(&u1);
    renamed.name = "zoe@example.com".into();
    s.replace(a, Kind::User, "u1", None, renamed).unwrap();
    s.create(user(b, "u5", "Zoë@example.com")).unwrap();
    let mut same = replacement(&s.get(a, Kind::User, "u1").unwrap().unwrap());
    same.name = "ZOE@example.com".into();
    s.replace(a, Kind::User, "u1", None, same).unwrap();
    s.delete(b, Kind::User, "u5", None).unwrap();
    s.create(user(a, "u6", "zoë@example.com")).unwrap();
    let mut clash = replacement(&s.get(a, Kind::User, "u6").unwrap().unwrap());
    clash.name = "Zoe@Example.com".into();
    assert!(matches!(
        s.replace(a, Kind::User, "u6", None, clash),
        Err(StoreError::Uniqueness { .. })
    ));
}

fn memberships(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let s = make(TestClock::new().clock());
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
        .unwrap()
        .id;
    s.create(group(d, "g", "Staff")).unwrap();
    s.create(group(d, "sub", "Sub")).unwrap();
    for i in 1..=3 {
        s.create(user(d, &format!("u{i}"), &format!("user{i}")))
            .unwrap();
    }
    let g = s
        .add_members(
            d,
            "g",
            Some(1),
            &[
                m("u2", Kind::User),
                m("u1", Kind::User),
                m("sub", Kind::Group),
            ],
        )
        .unwrap();
    assert_eq!(g.version, 2, "one bump per change, however many members");
    assert_eq!(
        s.members(d, "g").unwrap(),
        [
            m("sub", Kind::Group),
            m("u1", Kind::User),
            m("u2", Kind::User)
        ]
    );
    assert_eq!(s.groups_of(d, "u1").unwrap(), ["g"]);
    // A user with its groups in one read: the same as the two reads.
    s.add_members(d, "sub", None, &[m("u1", Kind::User)])
        .unwrap();
    let (u1, groups) = s.get_user_with_groups(d, "u1").unwrap().unwrap();
    assert_eq!(u1, s.get(d, Kind::User, "u1").unwrap().unwrap());
    assert_eq!(groups, ["g", "sub"]);
    assert_eq!(
        s.get_user_with_groups(d, "u3").unwrap().unwrap().1,
        Vec::<String>::new()
    );
    assert!(s.get_user_with_groups(d, "ghost").unwrap().is_none());
    assert!(
        s.get_user_with_groups(d, "g").unwrap().is_none(),
        "a group is not a user"
    );
    s.remove_members(d, "sub", None, &[m("u1", Kind::User)])
        .unwrap();

    let same = s.add_members(d, "g", None, &[m("u1", Kind::User)]).unwrap();
    assert_eq!(same.version, 2, "adding a present member changes nothing");
    // All or nothing: an unknown member aborts the whole call.
    assert!(matches!(
        s.add_members(d, "g", None, &[m("u3", Kind::User), m("ghost", Kind::User)]),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(s.members(d, "g").unwrap().len(), 3);
    assert!(
        matches!(
            s.add_members(d, "g", None, &[m("u3", Kind::Group)]),
            Err(StoreError::NotFound { .. })
        ),
        "kind must match"
    );
    let elsewhere = s
        .create_directory(NewDirectory::new("d2", DirectoryKind::Scim))
        .unwrap()
        .id;
    s.create(user(elsewhere, "x1", "xavier")).unwrap();
    assert!(
        matches!(
            s.add_members(d, "g", None, &[m("x1", Kind::User)]),
            Err(StoreError::NotFound { .. })
        ),
        "a user of another directory cannot join"
    );
    assert!(matches!(
        s.add_members(d, "g", None, &[m("g", Kind::Group)]),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        s.add_members(d, "g", Some(1), &[m("u3", Kind::User)])
            .map(|r| r.id),
        Err(StoreError::VersionMismatch {
            expected: 1,
            actual: 2
        })
    );
    assert!(matches!(
        s.add_members(d, "nope", None, &[m("u3", Kind::User)]),
        Err(StoreError::NotFound { .. })
    ));

    let g = s
        .remove_members(d, "g", Some(2), &[m("u2", Kind::User), m("u3", Kind::User)])
        .unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(
        s.remove_members(d, "g", None, &[m("u3", Kind::User)])
            .unwrap()
            .version,
        3,
        "removing an absent member changes nothing"
    );
    assert_eq!(
        s.members(d, "g").unwrap(),
        [m("sub", Kind::Group), m("u1", Kind::User)]
    );

    // Members given on create and replace, in the same transaction.
    let mut with = group(d, "g2", "With members");
    with.members = vec![m("u3", Kind::User), m("sub", Kind::Group)];
    assert_eq!(s.create(with).unwrap().version, 1);
    assert_eq!(
        s.members(d, "g2").unwrap(),
        [m("sub", Kind::Group), m("u3", Kind::User)]
    );
    let mut bad = group(d, "g3", "Bad");
    bad.members = vec![m("ghost", Kind::User)];
    assert!(matches!(s.create(bad), Err(StoreError::NotFound { .. })));
    assert_eq!(
        s.get(d, Kind::Group, "g3").unwrap(),
        None,
        "nothing of a failed create remains"
    );
    let mut next = replacement(&s.get(d, Kind::Group, "g2").unwrap().unwrap());
    next.members = Some(vec![m("u2", Kind::User)]);
    assert_eq!(
        s.replace(d, Kind::Group, "g2", Some(1), next.clone())
            .unwrap()
            .version,
        2
    );
    assert_eq!(s.members(d, "g2").unwrap(), [m("u2", Kind::User)]);
    next.members = Some(vec![m("u2", Kind::User), m("ghost", Kind::User)]);
    assert!(s.replace(d, Kind::Group, "g2", None, next).is_err());
    assert_eq!(
        s.members(d, "g2").unwrap(),
        [m("u2", Kind::User)],
        "a failed replace keeps the members"
    );
    assert_eq!(s.get(d, Kind::Group, "g2").unwrap().unwrap().version, 2);
    s.delete(d, Kind::Group, "g2", None).unwrap();

    // One update: new attributes plus member changes, one version, one event.
    let before = s.events_after(0, 1000).unwrap().len();
    let g = s.get(d, Kind::Group, "g").unwrap().unwrap();
    let mut renamed = replacement(&g);
    renamed.name = "Staff 2".into();
    let change = Change {
        replacement: Some(renamed),
        add_members: vec![m("u3", Kind::User)],
        remove_members: vec![m("sub", Kind::Group)],
        ..Change::default()
    };
    let after = s
        .update(d, Kind::Group, "g", Some(g.version), change)
        .unwrap();
    assert_eq!(
        (after.version, after.name.as_str()),
        (g.version + 1, "Staff 2")
    );
    assert_eq!(
        s.members(d, "g").unwrap(),
        [m("u1", Kind::User), m("u3", Kind::User)]
    );
    assert_eq!(
        s.events_after(0, 1000).unwrap().len(),
        before + 1,
        "one event"
    );
    let for_user = Change {
        add_members: vec![m("u2", Kind::User)],
        ..Change::default()
    };
    assert!(
        matches!(
            s.update(d, Kind::User, "u2", None, for_user),
            Err(StoreError::Invalid(_))
        ),
        "users have no members"
    );
    let failing = Change {
        add_members: vec![m("u2", Kind::User), m("ghost", Kind::User)],
        remove_members: vec![m("u1", Kind::User)],
        ..Change::default()
    };
    assert!(s.update(d, Kind::Group, "g", None, failing).is_err());
    assert_eq!(
        s.members(d, "g").unwrap(),
        [m("u1", Kind::User), m("u3", Kind::User)],
        "all or nothing"
    );
    let noop = Change {
        remove_members: vec![m("u2", Kind::User)],
        ..Change::default()
    };
    assert_eq!(
        s.update(d, Kind::Group, "g", None, noop).unwrap().version,
        after.version,
        "no change, no version"
    );
    let back = Change {
        remove_members: vec![m("u3", Kind::User)],
        add_members: vec![m("sub", Kind::Group)],
        ..Change::default()
    };
    s.update(d, Kind::Group, "g", None, back).unwrap();

    // Deleting a member takes it out of its groups, which change version.
    s.delete(d, Kind::User, "u1", None).unwrap();
    assert_eq!(s.members(d, "g").unwrap(), [m("sub", Kind::Group)]);
    assert_eq!(s.get(d, Kind::Group, "g").unwrap().unwrap().version, 6);
    s.delete(d, Kind::Group, "g", None).unwrap();
    assert!(s.groups_of(d, "sub").unwrap().is_empty());
    assert!(s.members(d, "g").unwrap().is_empty());
}

fn change_feed(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let clock = TestClock::new();
    let s = make(clock.clock());
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
        .unwrap()
        .id;
    s.create(user(d, "u1", "a")).unwrap();
    assert!(
        s.create(user(d, "u2", "A")).is_err(),
        "a failed write records nothing"
    );
    s.create(group(d, "g", "G")).unwrap();
    clock.advance_days(1);
    s.add_members(d, "g", None, &[m("u1", Kind::User)]).unwrap();
    assert!(
        s.add_members(d, "g", None, &[m("ghost", Kind::User)])
            .is_err()
    );
    s.delete(d, Kind::User, "u1", None).unwrap();
    let events = s.events_after(0, 100).unwrap();
    let summary: Vec<(u64, &str, &str, u64)> = events
        .iter()
        .map(|e| (e.seq, e.id.as_str(), e.event.as_str(), e.version))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "u1", "created", 1),
            (2, "g", "created", 1),
            (3, "g", "updated", 2),
            (4, "u1", "deleted", 1),
            (5, "g", "updated", 3),
        ]
    );
    assert_eq!(events[2].time, clock.now());
    assert_eq!(events[0].kind, Kind::User);
    assert_eq!(events[1].kind, Kind::Group);
    assert_eq!(s.events_after(3, 1).unwrap()[0].seq, 4);
    assert_eq!(s.events_after(2, 100).unwrap().len(), 3);
    assert!(s.events_after(5, 100).unwrap().is_empty());
}

fn deprovisioning(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let clock = TestClock::new();
    let s = make(clock.clock());
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
        .unwrap()
        .id;
    let mut now_dir = NewDirectory::new("now", DirectoryKind::Scim);
    now_dir.retention_days = 0;
    let now_dir = s.create_directory(now_dir).unwrap().id;
    for i in 1..=3 {
        s.create(user(d, &format!("u{i}"), &format!("user{i}")))
            .unwrap();
    }
    let deactivate = |id: &str, active: bool| {
        let mut r = replacement(&s.get(d, Kind::User, id).unwrap().unwrap());
        r.active = active;
        s.replace(d, Kind::User, id, None, r).unwrap()
    };
    let u1 = deactivate("u1", false);
    assert_eq!(u1.inactive_since, Some(clock.now()));
    assert_eq!(
        s.user_counts(d).unwrap(),
        UserCounts {
            active: 2,
            inactive: 1
        }
    );
    clock.advance_days(10);
    deactivate("u2", false);
    assert_eq!(
        deactivate("u1", false).inactive_since,
        u1.inactive_since,
        "stays inactive since the first time"
    );
    clock.advance_days(20);
    assert_eq!(
        s.purge_inactive(d, clock.now()).unwrap(),
        1,
        "30 days for u1, 20 for u2"
    );
    assert_eq!(s.get(d, Kind::User, "u1").unwrap(), None);
    assert_eq!(
        deactivate("u2", true).inactive_since,
        None,
        "reactivation clears it"
    );
    clock.advance_days(60);
    assert_eq!(s.purge_inactive(d, clock.now()).unwrap(), 0);
    assert_eq!(
        s.user_counts(d).unwrap(),
        UserCounts {
            active: 2,
            inactive: 0
        }
    );

    let mut gone = user(now_dir, "x", "leaver");
    gone.active = false;
    s.create(gone).unwrap();
    assert_eq!(
        s.user_counts(now_dir).unwrap(),
        UserCounts {
            active: 0,
            inactive: 1
        }
    );
    assert_eq!(
        s.purge_inactive(now_dir, clock.now()).unwrap(),
        1,
        "retention 0 purges at once"
    );
    assert!(matches!(
        s.purge_inactive(999, clock.now()),
        Err(StoreError::NotFound { .. })
    ));
}

fn isolation(make: &dyn Fn(Clock) -> Box<dyn Store>) {
    let s = make(TestClock::new().clock());
    let a = s
        .create_directory(NewDirectory::new("a", DirectoryKind::Scim))
        .unwrap()
        .id;
    let b = s
        .create_directory(NewDirectory::new("b", DirectoryKind::Scim))
        .unwrap()
        .id;
    s.create(user(a, "ua", "alice")).unwrap();
    s.create(group(b, "gb", "Team")).unwrap();
    assert_eq!(s.get(b, Kind::User, "ua").unwrap(), None);
    assert_eq!(s.get_by_name(b, Kind::User, "alice").unwrap(), None);
    assert!(matches!(
        s.delete(b, Kind::User, "ua", None),
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        matches!(
            s.add_members(b, "gb", None, &[m("ua", Kind::User)]),
            Err(StoreError::NotFound { .. })
        ),
        "members come from the same directory"
    );
    assert!(s.members(a, "gb").unwrap().is_empty());
    assert!(s.list(b, Kind::User).unwrap().is_empty());
    assert_eq!(s.user_counts(b).unwrap(), UserCounts::default());
}

#[test]
fn memory_store_meets_the_contract() {
    contract(&|clock| Box::new(memory::MemoryStore::new(clock)));
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_store_meets_the_contract() {
    contract(&|clock| Box::new(sqlite::SqliteStore::open_in_memory(clock).unwrap()));
}

/// The PostgreSQL store against a private server: a fresh database for each store the
/// contract makes.
#[cfg(feature = "postgres")]
#[test]
fn postgres_store_meets_the_contract() {
    let server = usersync_testkit::postgres::Postgres::start("contract");
    let made = std::sync::atomic::AtomicUsize::new(0);
    contract(&|clock| {
        let n = made.fetch_add(1, Ordering::SeqCst);
        let url = server.create_database(&format!("contract{n}"));
        Box::new(postgres::PostgresStore::open(&url, clock).unwrap())
    });
}

/// A database of another schema version is refused with a reason, not used.
#[cfg(feature = "postgres")]
#[test]
fn postgres_schema_versions_are_checked() {
    let server = usersync_testkit::postgres::Postgres::start("schema");
    let url = server.create_database("schema");
    let clock = TestClock::new();
    drop(postgres::PostgresStore::open(&url, clock.clock()).unwrap());
    drop(postgres::PostgresStore::open(&url, clock.clock()).expect("opens again"));
    let mut admin = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    for (version, says) in [
        (99_i64, "newer than this usersync"),
        (1, "create a new database"),
    ] {
        admin
            .execute("UPDATE usersync_schema SET version = $1", &[&version])
            .unwrap();
        let err = postgres::PostgresStore::open(&url, clock.clock()).unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
}

/// A database of schema version 2 (before filters were SQL) is upgraded in place on open,
/// by one node while another waits: its resources get their keys, and filters on folded
/// text and on dateTimes find them.
#[cfg(feature = "postgres")]
#[test]
fn postgres_schema_2_is_upgraded() {
    use crate::scim::filter::Filter;
    use crate::scim::schema::SchemaRegistry;
    let server = usersync_testkit::postgres::Postgres::start("upgrade");
    let url = server.create_database("upgrade");
    let clock = TestClock::new();
    let s = postgres::PostgresStore::open(&url, clock.clock()).unwrap();
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
        .unwrap()
        .id;
    for (id, title) in [("u1", "Ærø Chief"), ("u2", "clerk"), ("u3", "ΣΊΣΥΦΟΣ")] {
        let mut u = user(d, id, &format!("user-{id}"));
        u.attributes["title"] = title.into();
        s.create(u).unwrap();
    }
    drop(s);
    // What version 2 had: no keys, no function.
    let mut admin = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "ALTER TABLE resources DROP COLUMN attributes_keys; \
             DROP FUNCTION usersync_datetime; UPDATE usersync_schema SET version = 2",
        )
        .unwrap();
    let nodes: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| postgres::PostgresStore::open(&url, clock.clock())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let s = nodes.into_iter().next().unwrap().expect("upgraded");
    let version: i64 = admin
        .query_one("SELECT version FROM usersync_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, 3);
    let registry = SchemaRegistry::core();
    let rt = registry.resource_type("User").unwrap();
    for (text, expected) in [
        (r#"title sw "ærø""#, vec!["u1"]),
        (r#"title eq "σίσυφος""#, vec!["u3"]),
        (r#"title co "CLERK" or title ew "chief""#, vec!["u1", "u2"]),
        (
            r#"meta.created gt "2000-01-01T00:00:00Z""#,
            vec!["u1", "u2", "u3"],
        ),
    ] {
        let f = text.parse::<Filter>().unwrap().compile(rt).unwrap();
        let page = s
            .query(&Query::new(d, Kind::User, rt, "/scim/v2/d", 10).with_filter(Some(&f)))
            .unwrap();
        let ids: Vec<_> = page.resources.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, expected, "{text}");
    }
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_memory_by_name_is_one_database() {
    // `:memory:` opened by name: reads see what was written (not a fresh empty database per
    // pooled reader).
    let s = sqlite::SqliteStore::open(std::path::Path::new(":memory:"), TestClock::new().clock())
        .unwrap();
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
        .unwrap()
        .id;
    s.create(user(d, "u1", "user1")).unwrap();
    assert_eq!(s.directory("d").unwrap().unwrap().id, d);
    assert_eq!(s.get(d, Kind::User, "u1").unwrap().unwrap().name, "user1");
    assert_eq!(s.user_counts(d).unwrap().active, 1);
}

#[test]
fn sqlite_store_persists_across_reopening() {
    let dir = std::env::temp_dir().join(format!("usersync-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("usersync.db");
    let _ = std::fs::remove_file(&path);
    let clock = TestClock::new();
    {
        let s = sqlite::SqliteStore::open(&path, clock.clock()).unwrap();
        let d = s
            .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
            .unwrap()
            .id;
        s.create(user(d, "u1", "bjensen")).unwrap();
        s.create(group(d, "g", "G")).unwrap();
        s.add_members(d, "g", None, &[m("u1", Kind::User)]).unwrap();
    }
    let s = sqlite::SqliteStore::open(&path, clock.clock()).unwrap();
    let d = s.directory("d").unwrap().unwrap().id;
    assert_eq!(
        s.get(d, Kind::User, "u1").unwrap().unwrap().attributes["userName"],
        "bjensen"
    );
    assert_eq!(s.members(d, "g").unwrap(), [m("u1", Kind::User)]);
    assert_eq!(s.events_after(0, 10).unwrap().len(), 3);
    assert!(
        s.create(user(d, "u2", "BJENSEN")).is_err(),
        "the unique index survives"
    );
    // A sync lock is seen by every handle on the file (as by another process).
    let other = sqlite::SqliteStore::open(&path, clock.clock()).unwrap();
    let held = s.try_lock_sync("d").unwrap().expect("free");
    assert!(other.try_lock_sync("d").unwrap().is_none());
    drop(held);
    assert!(other.try_lock_sync("d").unwrap().is_some());
    drop((s, other));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// More readers at once than the pool holds: every read succeeds (the extra ones wait for a
/// connection), while a writer keeps writing, and a database of an older schema version
/// gets its counts and the password setting on opening.
#[cfg(feature = "sqlite")]
#[test]
fn sqlite_readers_share_a_bounded_pool_and_old_databases_migrate() {
    let dir = std::env::temp_dir().join(format!("usersync-pool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("usersync.db");
    let _ = std::fs::remove_file(&path);
    let clock = TestClock::new();
    let s = Arc::new(sqlite::SqliteStore::open(&path, clock.clock()).unwrap());
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
        .unwrap()
        .id;
    for i in 0..20 {
        s.create(user(d, &format!("u{i:02}"), &format!("user{i:02}")))
            .unwrap();
    }
    let readers: Vec<_> = (0..40)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let id = format!("u{:02}", (t + i) % 20);
                    assert!(s.get(d, Kind::User, &id).unwrap().is_some());
                    assert!(s.count(d, Kind::User).unwrap() >= 20);
                }
            })
        })
        .collect();
    for i in 20..40 {
        s.create(user(d, &format!("u{i:02}"), &format!("user{i:02}")))
            .unwrap();
    }
    for r in readers {
        r.join().unwrap();
    }
    drop(s);
    // An older database: no kept counts, no password setting or table.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "DELETE FROM resource_counts; DROP TABLE passwords;
             ALTER TABLE directories DROP COLUMN keep_password_hashes;
             ALTER TABLE directories DROP COLUMN strict;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let s = sqlite::SqliteStore::open(&path, clock.clock()).unwrap();
    assert_eq!(s.count(d, Kind::User).unwrap(), 40);
    let migrated = s.directory("d").unwrap().unwrap();
    assert!(!migrated.keep_password_hashes && !migrated.strict);
    let keeps = s
        .create_directory(NewDirectory {
            keep_password_hashes: true,
            ..NewDirectory::new("keeps", DirectoryKind::Scim)
        })
        .unwrap();
    let hash = PasswordHash("$argon2id$h".into());
    s.create(NewResource {
        password: Some(hash.clone()),
        ..user(keeps.id, "p1", "with-password")
    })
    .unwrap();
    assert_eq!(s.password_hash(keeps.id, "p1").unwrap(), Some(hash));
    drop(s);
    // A database from before schema versions (user_version 0, the old directories table),
    // opened by two processes at once: migrated once, and both open it.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "DELETE FROM passwords;
             ALTER TABLE directories DROP COLUMN keep_password_hashes;
             ALTER TABLE directories DROP COLUMN strict;
             PRAGMA user_version = 0;",
        )
        .unwrap();
    }
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let (path, clock) = (path.clone(), clock.clock());
            std::thread::spawn(move || sqlite::SqliteStore::open(&path, clock).map(|_| ()))
        })
        .collect();
    for o in openers {
        o.join().unwrap().unwrap();
    }
    let s = sqlite::SqliteStore::open(&path, clock.clock()).unwrap();
    assert!(!s.directory("keeps").unwrap().unwrap().keep_password_hashes);
    assert_eq!(s.count(d, Kind::User).unwrap(), 40);
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two nodes (two stores on one PostgreSQL database) writing at once: member adds to one
/// group lose nothing, one of two updates from the same version fails, and a reader polling
/// the change feed while both write sees every event exactly once, in order.
#[cfg(feature = "postgres")]
#[test]
fn postgres_over_tls_as_libpq_modes_say() {
    let (server, certificates) = usersync_testkit::postgres::Postgres::start_tls("tls");
    let url = server.create_database("tls");
    let ca = certificates.ca.display().to_string();
    let open = |parameters: &str| {
        postgres::PostgresStore::open(&format!("{url}?{parameters}"), TestClock::new().clock())
    };
    // The server refuses connections without TLS, as managed databases do.
    let refused = open("sslmode=disable").unwrap_err().to_string();
    assert!(refused.contains("cannot connect"), "{refused}");
    // Checked against the CA that signed the server's certificate: in, and working.
    let s = open(&format!("sslmode=verify-full&sslrootcert={ca}")).unwrap();
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
        .unwrap()
        .id;
    s.create(user(d, "u1", "ann")).unwrap();
    assert_eq!(s.count(d, Kind::User).unwrap(), 1);
    assert!(
        s.try_lock_sync("d").unwrap().is_some(),
        "the lock's connection too"
    );
    // The default (`prefer`) and `require` encrypt without checking, as libpq does.
    for mode in ["sslmode=prefer", "sslmode=require", "application_name=x"] {
        let s = open(mode).unwrap();
        assert_eq!(s.count(d, Kind::User).unwrap(), 1, "{mode}");
    }
    // Checked against the system's roots, which do not know the test CA: refused.
    let untrusted = open("sslmode=verify-full").unwrap_err().to_string();
    assert!(untrusted.contains("cannot connect"), "{untrusted}");
    let bad = open("sslmode=sometimes").unwrap_err().to_string();
    assert!(bad.contains("sslmode `sometimes`"), "{bad}");
    let missing = open("sslmode=verify-ca&sslrootcert=/nonexistent.pem")
        .unwrap_err()
        .to_string();
    assert!(missing.contains("sslrootcert"), "{missing}");
}

/// More calls at once than the pool's bound all succeed, and the server never sees more
/// connections than the bound (and the feed's listener); waiters on the feed hold none, so
/// more of them than the bound neither starve a write nor miss it.
#[cfg(feature = "postgres")]
#[test]
fn postgres_connections_are_bounded_and_feed_waiters_hold_none() {
    let server = usersync_testkit::postgres::Postgres::start("bound");
    let url = server.create_database("bound");
    let s = postgres::PostgresStore::open(&url, TestClock::new().clock()).unwrap();
    let d = s
        .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
        .unwrap()
        .id;
    s.create(user(d, "u0", "ann")).unwrap();
    let last = s.events_after(0, 10).unwrap().last().unwrap().seq;
    let mut admin = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let mut connections = || -> i64 {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let waiters = 2 * postgres::MAX_OPEN;
    let woken = std::sync::atomic::AtomicUsize::new(0);
    let most = AtomicI64::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..waiters {
            scope.spawn(|| {
                let seen = s
                    .wait_for_events(last, std::time::Duration::from_secs(60))
                    .unwrap();
                assert!(seen, "woken by the write");
                woken.fetch_add(1, Ordering::SeqCst);
            });
        }
        let readers: Vec<_> = (0..3 * postgres::MAX_OPEN)
            .map(|_| {
                scope.spawn(|| {
                    for _ in 0..20 {
                        assert_eq!(s.count(d, Kind::User).unwrap(), 1);
                    }
                })
            })
            .collect();
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                most.fetch_max(connections(), Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(woken.load(Ordering::SeqCst), 0, "nothing written yet");
        s.create(user(d, "u1", "bob"))
            .expect("a write among the waiters");
        while woken.load(Ordering::SeqCst) < waiters {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        done.store(true, Ordering::SeqCst);
    });
    let most = most.load(Ordering::SeqCst);
    assert!(
        most <= postgres::MAX_OPEN as i64 + 1,
        "{most} connections at once"
    );
    assert!(most > 4, "the readers ran at once ({most} connections)");
}

/// A node whose clock is an hour behind another's never takes a row's `lastModified` back:
/// not by an update, a member change, nor the group change a member's deletion makes.
#[cfg(feature = "postgres")]
fn clocks_apart(ahead: &dyn Store, url: &str, clock: &TestClock) {
    let late = TestClock::new();
    late.0
        .store(clock.0.load(Ordering::SeqCst) - 3600, Ordering::SeqCst);
    let behind = postgres::PostgresStore::open(url, late.clock()).unwrap();
    let d = ahead
        .create_directory(NewDirectory::new("skew", DirectoryKind::Scim))
        .unwrap()
        .id;
    let u = ahead.create(user(d, "skew-u", "skew-ann")).unwrap();
    let g = ahead.create(group(d, "skew-g", "Skew")).unwrap();
    let updated = behind
        .update(
            d,
            Kind::User,
            &u.id,
            Some(u.version),
            Change {
                replacement: Some(Replacement {
                    name: "skew-bob".into(),
                    attributes: json!({"userName": "skew-bob"}),
                    ..replacement(&u)
                }),
                ..Change::default()
            },
        )
        .unwrap();
    assert_eq!(updated.version, u.version + 1);
    assert_eq!(updated.modified, u.modified, "not an hour back");
    behind
        .change_members(d, &g.id, std::slice::from_ref(&u.id), &[])
        .unwrap();
    let joined = behind.get(d, Kind::Group, &g.id).unwrap().unwrap();
    assert_eq!(
        (joined.version, joined.modified),
        (g.version + 1, g.modified)
    );
    behind.delete(d, Kind::User, &u.id, None).unwrap();
    let left = behind.get(d, Kind::Group, &g.id).unwrap().unwrap();
    assert_eq!((left.version, left.modified), (g.version + 2, g.modified));
    let times: Vec<DateTime> = behind
        .events_after(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.directory == d)
        .map(|e| e.time)
        .collect();
    assert_eq!(times, vec![g.modified; times.len()], "events as the rows");
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_nodes_share_one_user_base() {
    let server = usersync_testkit::postgres::Postgres::start("nodes");
    let url = server.create_database("nodes");
    let clock = TestClock::new();
    let nodes: Vec<Arc<dyn Store>> = (0..2)
        .map(|_| {
            Arc::new(postgres::PostgresStore::open(&url, clock.clock()).unwrap()) as Arc<dyn Store>
        })
        .collect();
    let d = nodes[0]
        .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
        .unwrap()
        .id;
    assert_eq!(nodes[1].directory("d").unwrap().map(|x| x.id), Some(d));
    let held = nodes[0].try_lock_sync("d").unwrap().expect("free");
    assert!(
        nodes[1].try_lock_sync("d").unwrap().is_none(),
        "held by the other node"
    );
    drop(held);
    let held = nodes[1].try_lock_sync("d").unwrap().expect("released");
    held.check().expect("held while its session lives");
    // An administrator ends the holder's session: the lock goes with it, the other node
    // can take it, and the holder learns so at its next check.
    let mut admin = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let ended = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name LIKE 'usersync sync of d %'",
            &[],
        )
        .unwrap();
    assert_eq!(ended.len(), 1, "one lock session");
    let taken = (0..100).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        nodes[0].try_lock_sync("d").unwrap()
    });
    assert!(taken.is_some(), "free once its session ended");
    let lost = held.check().unwrap_err().to_string();
    assert!(
        lost.contains("the sync lock was lost: its PostgreSQL session ended"),
        "{lost}"
    );
    drop((taken, held));
    clocks_apart(&*nodes[0], &url, &clock);
    let g = nodes[1].create(group(d, "g", "Everyone")).unwrap();
    const PER_THREAD: usize = 40;
    for t in 0..8 {
        for i in 0..PER_THREAD {
            nodes[t % 2]
                .create(user(d, &format!("u{t}-{i}"), &format!("user{t}-{i}")))
                .unwrap();
        }
    }
    let polled = std::sync::Mutex::new(Vec::new());
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        // The reader: follows the feed after the last event it saw.
        scope.spawn(|| {
            let mut last = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let batch = nodes[0].events_after(last, 50).unwrap();
                if let Some(e) = batch.last() {
                    last = e.seq;
                }
                polled.lock().unwrap().extend(batch.iter().map(|e| e.seq));
                if finished && batch.is_empty() {
                    break;
                }
                if batch.is_empty() {
                    // Woken by the writers' NOTIFY; the timeout lets it see `done`.
                    nodes[0]
                        .wait_for_events(last, std::time::Duration::from_millis(200))
                        .unwrap();
                }
            }
        });
        let writers: Vec<_> = (0..8)
            .map(|t| {
                let node = nodes[t % 2].clone();
                scope.spawn(move || {
                    for i in 0..PER_THREAD {
                        node.change_members(d, "g", &[format!("u{t}-{i}")], &[])
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
    });
    assert_eq!(
        nodes[0].members(d, "g").unwrap().len(),
        8 * PER_THREAD,
        "no member lost"
    );
    let after = nodes[1].get(d, Kind::Group, "g").unwrap().unwrap();
    assert_eq!(
        after.version,
        g.version + (8 * PER_THREAD) as u64,
        "one version per add"
    );
    let all: Vec<u64> = nodes[1]
        .events_after(0, 100_000)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(
        *polled.lock().unwrap(),
        all,
        "the reader saw every event once, in order"
    );
    let versions: Vec<u64> = nodes[1]
        .events_after(0, 100_000)
        .unwrap()
        .iter()
        .filter(|e| e.id == "g")
        .map(|e| e.version)
        .collect();
    let expected: Vec<u64> = (1..=g.version + (8 * PER_THREAD) as u64).collect();
    assert_eq!(versions, expected, "the group's events in version order");

    // Two nodes update one user from the same version: one wins, one is told it changed.
    let u = nodes[0].get(d, Kind::User, "u0-0").unwrap().unwrap();
    let rename = |name: &str| Change {
        replacement: Some(Replacement {
            name: name.into(),
            ..replacement(&u)
        }),
        ..Change::default()
    };
    let outcomes = race(&nodes, |i, node| {
        let name = ["renamed-a", "renamed-b"][i];
        node.update(d, Kind::User, "u0-0", Some(u.version), rename(name))
    });
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Err(StoreError::VersionMismatch { .. }))),
        "{outcomes:?}"
    );
    // Two nodes creating one userName: one 409.
    let outcomes = race(&nodes, |i, node| {
        node.create(user(d, &format!("twin{i}"), "same-name"))
    });
    assert!(
        outcomes.iter().any(|o| matches!(
            o,
            Err(StoreError::Uniqueness {
                attribute: "userName",
                ..
            })
        )),
        "{outcomes:?}"
    );
}

/// Runs `write` on each node at once (the node's index and the node); returns the outcomes
/// after checking that exactly one write succeeded.
#[cfg(feature = "postgres")]
fn race(
    nodes: &[Arc<dyn Store>],
    write: impl Fn(usize, &dyn Store) -> Result<Resource, StoreError> + Sync,
) -> Vec<Result<Resource, StoreError>> {
    let write = &write;
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| scope.spawn(move || write(i, &**node)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    outcomes
}

/// The pages PostgreSQL answers in SQL (no filter, or a lookup by name, `externalId` or
/// `id`) are the pages the evaluator makes: the same resources, totals and groups, names
/// compared by their case fold (non-ASCII included).
#[cfg(feature = "postgres")]
#[test]
fn postgres_lookups_agree_with_the_evaluator() {
    use crate::scim::filter::Filter;
    use crate::scim::schema::SchemaRegistry;
    let server = usersync_testkit::postgres::Postgres::start("lookups");
    let url = server.create_database("lookups");
    let clock = TestClock::new();
    let stores: Vec<Box<dyn Store>> = vec![
        Box::new(memory::MemoryStore::new(clock.clock())),
        Box::new(postgres::PostgresStore::open(&url, clock.clock()).unwrap()),
    ];
    let names = [
        "Ærøskøbing",
        "ærøskøbing2",
        "ΣΊΣΥΦΟΣ",
        "bjensen",
        "BJensen2",
        "Zed",
        "a-b",
        "ab",
    ];
    for s in &stores {
        let d = s
            .create_directory(NewDirectory::new("d", DirectoryKind::Scim))
            .unwrap()
            .id;
        for (i, name) in names.iter().enumerate() {
            s.create(user(d, &format!("u{i}"), name)).unwrap();
        }
        s.create(group(d, "g1", "Staff")).unwrap();
        s.create(group(d, "g0", "staff-2")).unwrap();
        s.change_members(d, "g1", &["u1".into(), "u3".into()], &[])
            .unwrap();
        s.change_members(d, "g0", &["u1".into()], &[]).unwrap();
    }
    let registry = SchemaRegistry::core();
    let filters = [
        None,
        Some((Kind::User, r#"userName eq "ÆRØSKØBING""#)),
        Some((Kind::User, r#"userName eq "σίσυφος""#)),
        Some((Kind::User, r#"userName eq "BJENSEN""#)),
        Some((Kind::User, r#"userName eq "nobody""#)),
        Some((Kind::User, r#"externalId eq "ext-u3""#)),
        Some((Kind::User, r#"externalId eq "EXT-U3""#)),
        Some((Kind::User, r#"id eq "u5""#)),
        Some((Kind::Group, r#"displayName eq "STAFF""#)),
    ];
    for filter in filters {
        let kind = filter.map_or(Kind::User, |(k, _)| k);
        let rt = registry.resource_type(kind.as_str()).unwrap();
        let compiled = filter.map(|(_, text)| text.parse::<Filter>().unwrap().compile(rt).unwrap());
        for start in [
            Start::Offset(0),
            Start::Offset(2),
            Start::Offset(50),
            Start::After("u2"),
        ] {
            for limit in [1, 3, 100] {
                let q = Query::new(1, kind, rt, "/scim/v2/d", limit)
                    .with_filter(compiled.as_ref())
                    .with_start(start)
                    .with_groups(true);
                let pages: Vec<_> = stores
                    .iter()
                    .map(|s| {
                        let page = s.query(&q).unwrap();
                        let ids: Vec<String> =
                            page.resources.iter().map(|r| r.id.clone()).collect();
                        let groups = page.groups.unwrap_or_else(|| {
                            ids.iter().map(|id| s.groups_of(1, id).unwrap()).collect()
                        });
                        (
                            page.total,
                            ids,
                            if kind == Kind::User {
                                groups
                            } else {
                                Vec::new()
                            },
                        )
                    })
                    .collect();
                assert_eq!(pages[0], pages[1], "{filter:?} from {start:?}, {limit}");
            }
        }
    }
}
