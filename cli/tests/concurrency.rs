//! Many identity-provider connections at once against one `usersync serve`, or two on one
//! PostgreSQL database: 50 clients add members to one group while others rename it. No
//! member may be lost, and no client may get anything but success. With two nodes, also
//! conflicting updates and a node killed mid-load.
//!
//! `USERSYNC_LOAD_MEMBERS` sets the members each client adds (default 40; the full
//! size is 1000, see BENCHMARKS.md).
#![allow(clippy::unwrap_used)] // a failed step should stop the test

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::thread;
use std::time::Duration;

use common::{Server, http, temp_db, try_http};
use serde_json::json;

const CLIENTS: usize = 50;

fn members_per_client() -> usize {
    std::env::var("USERSYNC_LOAD_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

#[test]
fn concurrent_member_adds_lose_nothing() {
    let db = temp_db("load");
    let server = Server::start(&db);
    let token = server.token.clone().unwrap();
    member_load(&[&server.addr], &token, members_per_client());
    assert_eq!(server.stop(), 0);
    std::fs::remove_dir_all(db.parent().unwrap()).unwrap();
}

/// The same load split across two `usersync serve` nodes on one PostgreSQL database: client
/// `c` talks to node `c % 2`, as a load balancer would spread them.
#[test]
fn concurrent_member_adds_through_two_postgres_nodes_lose_nothing() {
    let pg = usersync_testkit::postgres::Postgres::start("load");
    let url = pg.create_database("load");
    let a = Server::start(Path::new(&url));
    let b = Server::start(Path::new(&url));
    let token = a.token.clone().unwrap();
    member_load(&[&a.addr, &b.addr], &token, members_per_client());

    // Two nodes update one group at the same version at once: one succeeds, one gets 412.
    let (status, group) = http(
        &a.addr,
        "POST",
        "/scim/v2/default/Groups",
        Some(&token),
        Some(&json!({"displayName": "Race"})),
    );
    assert_eq!(status, 201);
    let path = format!("/scim/v2/default/Groups/{}", group["id"].as_str().unwrap());
    let etag = group["meta"]["version"].as_str().unwrap().to_owned();
    let start = std::sync::Barrier::new(2);
    let mut statuses: Vec<u16> = thread::scope(|s| {
        let racers: Vec<_> = [&a.addr, &b.addr]
            .into_iter()
            .enumerate()
            .map(|(n, addr)| {
                let (path, etag, token, start) = (&path, &etag, &token, &start);
                s.spawn(move || {
                    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "displayName", "value": format!("Race {n}")}]});
                    start.wait();
                    try_http(addr, "PATCH", path, Some(token), Some(&body), &[("If-Match", etag)])
                        .unwrap()
                        .0
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 412]);
    assert_eq!(a.stop(), 0);
    assert_eq!(b.stop(), 0);
}

/// One of two nodes is killed (`kill -9`) while clients write through both: the other keeps
/// serving without a single failed request, every write either node acknowledged is there,
/// and the change feed, read while both write, has each committed change exactly once, in
/// commit order per resource.
#[test]
fn a_postgres_node_killed_mid_load_leaves_the_other_serving() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use usersync_core::store::{Kind, system_clock};

    let pg = usersync_testkit::postgres::Postgres::start("kill");
    let url = pg.create_database("kill");
    let mut a = Server::start(Path::new(&url));
    let b = Server::start(Path::new(&url));
    let token = a.token.clone().unwrap();
    let (a_addr, b_addr) = (a.addr.clone(), b.addr.clone());
    let feed_reader = usersync_core::store::open(&url, system_clock()).unwrap();
    let acknowledged = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let a_killed = AtomicBool::new(false);
    let writers_done = AtomicBool::new(false);
    let feed = Mutex::new(Vec::new());
    thread::scope(|s| {
        // The feed, followed while the nodes write.
        s.spawn(|| {
            let mut last = 0;
            loop {
                let done = writers_done.load(Ordering::SeqCst);
                let batch = feed_reader.events_after(last, 500).unwrap();
                if let Some(e) = batch.last() {
                    last = e.seq;
                }
                feed.lock().unwrap().extend(batch.iter().cloned());
                if batch.is_empty() {
                    if done {
                        break;
                    }
                    feed_reader
                        .wait_for_events(last, Duration::from_millis(200))
                        .unwrap();
                }
            }
        });
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let node = if w % 2 == 0 { &a_addr } else { &b_addr };
                let (token, acknowledged, stop, a_killed) =
                    (&token, &acknowledged, &stop, &a_killed);
                s.spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let body = json!({"userName": format!("w{w}-{i}@example.com")});
                        match try_http(
                            node,
                            "POST",
                            "/scim/v2/default/Users",
                            Some(token),
                            Some(&body),
                            &[],
                        ) {
                            Ok((201, user)) => acknowledged
                                .lock()
                                .unwrap()
                                .push(user["id"].as_str().unwrap().to_owned()),
                            Ok((status, reply)) => panic!("{status}: {reply}"),
                            // Node A's clients lose their server; node B's never may.
                            Err(e) => {
                                assert!(
                                    w % 2 == 0 && a_killed.load(Ordering::SeqCst),
                                    "node B failed: {e}"
                                );
                                break;
                            }
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(1500));
        a_killed.store(true, Ordering::SeqCst);
        a.kill();
        thread::sleep(Duration::from_millis(1500));
        stop.store(true, Ordering::SeqCst);
        for w in writers {
            w.join().unwrap();
        }
        // Only now is every write committed: the follower reads to the end and stops.
        writers_done.store(true, Ordering::SeqCst);
    });

    // Every acknowledged write is there, read through the surviving node.
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(acknowledged.len() > 20, "{} writes", acknowledged.len());
    for id in &acknowledged {
        let (status, _) = http(
            &b.addr,
            "GET",
            &format!("/scim/v2/default/Users/{id}"),
            Some(&token),
            None,
        );
        assert_eq!(status, 200, "{id}");
    }
    // The feed as followed is the feed as stored: each event once, in order; each user
    // created once.
    let followed: Vec<u64> = feed.into_inner().unwrap().iter().map(|e| e.seq).collect();
    let stored = feed_reader.events_after(0, 1_000_000).unwrap();
    assert_eq!(followed, stored.iter().map(|e| e.seq).collect::<Vec<_>>());
    let created: BTreeSet<&str> = stored
        .iter()
        .filter(|e| e.kind == Kind::User)
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(
        created.len(),
        stored.iter().filter(|e| e.kind == Kind::User).count(),
        "one event per user"
    );
    assert!(acknowledged.iter().all(|id| created.contains(id.as_str())));
    assert_eq!(b.stop(), 0);
}

/// `clients` clients (spread over `nodes`) create users and add them to one group while
/// others rename it; checks that every member is there.
fn member_load(nodes: &[&str], token: &str, per_client: usize) {
    let addr = nodes[0];
    let (status, group) = http(
        addr,
        "POST",
        "/scim/v2/default/Groups",
        Some(token),
        Some(&json!({"displayName": "Everyone"})),
    );
    assert_eq!(status, 201);
    let group_path = format!("/scim/v2/default/Groups/{}", group["id"].as_str().unwrap());
    let node = |c: usize| nodes[c % nodes.len()];

    // The users, created by the clients themselves, in parallel.
    let users: Vec<Vec<String>> = thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let addr = node(c);
                s.spawn(move || {
                    (0..per_client)
                        .map(|i| {
                            let body = json!({"userName": format!("user-{c}-{i}@example.com")});
                            let (status, user) = http(
                                addr,
                                "POST",
                                "/scim/v2/default/Users",
                                Some(token),
                                Some(&body),
                            );
                            assert_eq!(status, 201, "{user}");
                            user["id"].as_str().unwrap().to_owned()
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    thread::scope(|s| {
        for (c, ids) in users.iter().enumerate() {
            let (addr, group_path) = (node(c), &group_path);
            s.spawn(move || {
                for id in ids {
                    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "Add", "path": "members", "value": [{"value": id}]}]});
                    let (status, reply) = http(addr, "PATCH", group_path, Some(token), Some(&body));
                    assert_eq!(status, 204, "{reply}");
                }
            });
        }
        // Renames race the member adds: each one retries past the concurrent changes.
        for r in 0..5 {
            let (addr, group_path) = (node(r), &group_path);
            s.spawn(move || {
                for i in 0..10 {
                    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "displayName", "value": format!("Everyone {r}-{i}")}]});
                    let (status, reply) = http(addr, "PATCH", group_path, Some(token), Some(&body));
                    assert_eq!(status, 204, "{reply}");
                }
            });
        }
    });

    // Read back through every node.
    let expected: BTreeSet<String> = users.into_iter().flatten().collect();
    for addr in nodes {
        let (status, group) = http(addr, "GET", &group_path, Some(token), None);
        assert_eq!(status, 200);
        let members: BTreeSet<String> = group["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["value"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(members.len(), CLIENTS * per_client);
        assert_eq!(members, expected, "every member added is there");
        assert!(
            group["displayName"]
                .as_str()
                .unwrap()
                .starts_with("Everyone ")
        );
    }
}
