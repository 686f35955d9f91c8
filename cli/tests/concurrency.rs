//! Many identity-provider connections at once against one `usersync serve`: 50 clients add
//! members to one group while others rename it. No member may be lost, and no client may get
//! anything but success.
//!
//! `USERSYNC_LOAD_MEMBERS` sets the members each client adds (default 40; the full
//! size is 1000, see BENCHMARKS.md).
#![allow(clippy::unwrap_used)] // a failed step should stop the test

mod common;

use std::collections::BTreeSet;
use std::thread;

use common::{Server, http, temp_db};
use serde_json::json;

const CLIENTS: usize = 50;

#[test]
fn concurrent_member_adds_lose_nothing() {
    let per_client: usize = std::env::var("USERSYNC_LOAD_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let db = temp_db("load");
    let server = Server::start(&db);
    let token = server.token.clone().unwrap();
    let addr = server.addr.clone();
    let (status, group) = http(
        &addr,
        "POST",
        "/scim/v2/default/Groups",
        Some(&token),
        Some(&json!({"displayName": "Everyone"})),
    );
    assert_eq!(status, 201);
    let group_path = format!("/scim/v2/default/Groups/{}", group["id"].as_str().unwrap());

    // The users, created by the clients themselves, in parallel.
    let users: Vec<Vec<String>> = thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (addr, token) = (&addr, &token);
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
        for ids in &users {
            let (addr, token, group_path) = (&addr, &token, &group_path);
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
            let (addr, token, group_path) = (&addr, &token, &group_path);
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

    let (status, group) = http(&addr, "GET", &group_path, Some(&token), None);
    assert_eq!(status, 200);
    let members: BTreeSet<String> = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = users.into_iter().flatten().collect();
    assert_eq!(members.len(), CLIENTS * per_client);
    assert_eq!(members, expected, "every member added is there");
    assert!(
        group["displayName"]
            .as_str()
            .unwrap()
            .starts_with("Everyone ")
    );
    assert_eq!(server.stop(), 0);
    std::fs::remove_dir_all(db.parent().unwrap()).unwrap();
}
