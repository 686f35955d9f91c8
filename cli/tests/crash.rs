//! `kill -9` of `usersync serve` in the middle of concurrent writes: after a restart the
//! database opens, every acknowledged write is there, and the change feed has exactly one
//! event per committed change, numbered without gaps.
#![allow(clippy::unwrap_used)] // a failed step should stop the test

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{Server, http, temp_db};
use serde_json::json;
use usersync_core::store::sqlite::SqliteStore;
use usersync_core::store::{EventKind, Kind, Store, system_clock};

#[test]
fn kill_9_during_writes_leaves_a_consistent_database() {
    let db = temp_db("crash");
    let server = Server::start(&db);
    let token = server.token.clone().unwrap();
    let addr = server.addr.clone();
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (addr, token, acknowledged, stop) = (
                addr.clone(),
                token.clone(),
                acknowledged.clone(),
                stop.clone(),
            );
            thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let body = json!({"userName": format!("w{w}-{i}@example.com")});
                    // Once the server is gone, connections fail: that is the point.
                    let Ok((status, user)) = std::panic::catch_unwind(|| {
                        http(
                            &addr,
                            "POST",
                            "/scim/v2/default/Users",
                            Some(&token),
                            Some(&body),
                        )
                    }) else {
                        break;
                    };
                    if status == 201 {
                        acknowledged
                            .lock()
                            .unwrap()
                            .insert(user["id"].as_str().unwrap().to_owned());
                    }
                    i += 1;
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(700));
    Command::new("sh")
        .arg("-c")
        .arg(format!("kill -KILL {}", server.pid()))
        .status()
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    drop(server);
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "the writers got going ({} acknowledged)",
        acknowledged.len()
    );

    let store = SqliteStore::open(&db, system_clock()).unwrap();
    let directory = store.directory("default").unwrap().unwrap();
    let users: BTreeSet<String> = store
        .list(directory.id, Kind::User)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(
        acknowledged.is_subset(&users),
        "every acknowledged user survived"
    );
    let events = store.events_after(0, usize::MAX >> 1).unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "no gap in the feed"
    );
    let created: BTreeSet<String> = events
        .iter()
        .filter(|e| e.kind == Kind::User && e.event == EventKind::Created)
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(
        created, users,
        "one event per committed user, none for an uncommitted one"
    );
    drop(store);

    // And it serves again.
    let server = Server::start(&db);
    let (status, list) = http(
        &server.addr,
        "GET",
        "/scim/v2/default/Users?count=0",
        Some(&token),
        None,
    );
    assert_eq!(
        (status, list["totalResults"].as_u64().unwrap() as usize),
        (200, users.len())
    );
    assert_eq!(server.stop(), 0);
    std::fs::remove_dir_all(db.parent().unwrap()).unwrap();
}
