//! `usersync sync --target`: an LDAP directory fed into a remote SCIM endpoint — a real
//! `usersync serve` — through a proxy that answers like a busy server.
#![allow(clippy::unwrap_used)] // test support: a failed step should stop the test

mod common;

use common::{Server, http, temp_db};
use serde_json::{Value, json};
use usersync_testkit::proxy::{Faults, FaultyProxy};
use usersync_testkit::{BASE, SERVICE_DN, SERVICE_PASSWORD, Slapd};

const TOKEN_VAR: &str = "USERSYNC_TEST_TARGET_TOKEN";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn run(token: &str, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_usersync"))
        .args(args)
        .env("USERSYNC_CLI_TEST_PASSWORD", SERVICE_PASSWORD)
        .env(TOKEN_VAR, token)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The endpoint's resources of `collection`, by `externalId` (those without are skipped).
fn by_anchor(server: &Server, token: &str, collection: &str) -> Vec<Value> {
    let (status, page) = http(
        &server.addr,
        "GET",
        &format!("/scim/v2/default/{collection}?count=1000"),
        Some(token),
        None,
    );
    assert_eq!(status, 200, "{page}");
    page["Resources"].as_array().unwrap().clone()
}

fn find<'a>(resources: &'a [Value], key: &str, name: &str) -> &'a Value {
    resources
        .iter()
        .find(|r| r[key] == name)
        .unwrap_or_else(|| panic!("no {name} in {resources:?}"))
}

fn member_names(group: &Value, users: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = group["members"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|m| {
            users.iter().find(|u| u["id"] == m["value"]).map_or_else(
                || m["value"].to_string(),
                |u| u["userName"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    names.sort();
    names
}

#[test]
fn an_ldap_directory_feeds_a_remote_endpoint_through_busy_answers() {
    let slapd = Slapd::start("cli-remote");
    let mut ldif = String::new();
    for uid in ["ann", "bob", "cid", "dee"] {
        ldif.push_str(&format!(
            "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\
             givenName: {uid}\nmail: {uid}@example.com\nou: Sales\n\n"
        ));
    }
    ldif.push_str(&format!(
        "dn: cn=staff,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: staff\nmember: uid=ann,ou=people,{BASE}\n\
         member: uid=bob,ou=people,{BASE}\nmember: uid=cid,ou=people,{BASE}\n"
    ));
    slapd.add(&ldif);

    let server_db = temp_db("cli-remote-server");
    let server = Server::start(&server_db);
    let token = server.token.clone().unwrap();
    // Someone else's user at the endpoint: no externalId, so never the sync's to touch.
    let (status, _) = http(
        &server.addr,
        "POST",
        "/scim/v2/default/Users",
        Some(&token),
        Some(
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "zed"}),
        ),
    );
    assert_eq!(status, 201);

    // Every 4th request is refused with 429 and Retry-After, every 5th with 503.
    let proxy = FaultyProxy::start(
        &server.addr,
        Faults {
            too_many_every: 4,
            unavailable_every: 5,
            ..Faults::default()
        },
    );
    let target = format!("http://{}/scim/v2/default", proxy.addr);
    let agent_db = temp_db("cli-remote-agent");
    let config = agent_db.with_file_name("corp.toml");
    std::fs::write(
        &config,
        format!(
            "directory = \"corp\"\n[connection]\nurls = [\"{}\"]\ntls = \"none\"\nbind_dn = \"{SERVICE_DN}\"\n\
             bind_password_env = \"USERSYNC_CLI_TEST_PASSWORD\"\n[users]\nbase = \"ou=people,{BASE}\"\n\
             [users.attributes]\n'emails[type eq \"work\"].value' = \"mail\"\n'name.givenName' = \"givenName\"\n\
             '{ENTERPRISE}:department' = \"ou\"\n\
             [groups]\nbase = \"ou=groups,{BASE}\"\n[policy]\nmax_deletion_percent = 50.0\n\
             max_member_removal_percent = 50.0\n",
            slapd.url
        ),
    )
    .unwrap();
    let (config, agent_db) = (config.to_str().unwrap(), agent_db.to_str().unwrap());
    let command = |command: &str, extra: &[&str]| {
        let mut args = vec![
            command,
            "--config",
            config,
            "--db",
            agent_db,
            "--target",
            &target,
            "--token-env",
            TOKEN_VAR,
        ];
        args.extend_from_slice(extra);
        run(&token, &args)
    };
    let sync = |extra: &[&str]| command("sync", &[&["--concurrency", "3"], extra].concat());
    let plan = || command("plan", &[]);

    let (code, out, err) = sync(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied 6 changes"), "{out}");
    assert!(out.contains("requests retried"), "{out}");
    assert!(
        proxy.faults() >= 2,
        "the proxy refused {} requests",
        proxy.faults()
    );

    // What the endpoint now holds, read directly: each user once, with its attributes.
    let users = by_anchor(&server, &token, "Users");
    assert_eq!(users.len(), 5, "4 synced and zed: {users:?}");
    let ann = find(&users, "userName", "ann");
    assert_eq!(ann["emails"][0]["value"], "ann@example.com");
    assert_eq!(ann["name"]["givenName"], "ann");
    assert!(ann["externalId"].is_string());
    let groups = by_anchor(&server, &token, "Groups");
    let staff = find(&groups, "displayName", "staff");
    assert_eq!(member_names(staff, &users), ["ann", "bob", "cid"]);

    // Planned again against the endpoint: nothing left to do.
    let (code, out, err) = plan();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "No changes: `corp` is in step with the source.");

    // The endpoint's own attributes on dee, which the mapping does not set.
    let dee = find(&users, "userName", "dee")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = http(
        &server.addr,
        "PATCH",
        &format!("/scim/v2/default/Users/{dee}"),
        Some(&token),
        Some(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "add", "path": "emails[type eq \"work\"].display", "value": "Dee at work"},
                {"op": "add", "value": {
                    "title": "Boss", "name": {"middleName": "Q"}, ENTERPRISE: {"costCenter": "7"},
                    "emails": [{"type": "home", "value": "dee@home.example.com"}],
                }},
            ],
        })),
    );
    assert_eq!(status, 200, "{body}");

    // Changes in LDAP: bob leaves, cid leaves the group and loses his givenName and ou,
    // dee's mail and ou change, staff is renamed.
    slapd.delete(&[&format!("uid=bob,ou=people,{BASE}")]);
    slapd.modify(&format!(
        "dn: cn=staff,ou=groups,{BASE}\nchangetype: modify\ndelete: member\nmember: uid=cid,ou=people,{BASE}\n\n\
         dn: uid=cid,ou=people,{BASE}\nchangetype: modify\ndelete: givenName\n-\ndelete: ou\n\n\
         dn: uid=dee,ou=people,{BASE}\nchangetype: modify\nreplace: mail\nmail: dee@corp.example.com\n-\n\
         replace: ou\nou: Ops\n\n\
         dn: cn=staff,ou=groups,{BASE}\nchangetype: modrdn\nnewrdn: cn=team\ndeleteoldrdn: 1\n"
    ));
    let (code, out, err) = sync(&[]);
    assert_eq!(code, 0, "{out}{err}");
    let users = by_anchor(&server, &token, "Users");
    // Only what the mapping sets changed: the endpoint's own attributes are still there.
    let dee = find(&users, "userName", "dee");
    assert_eq!(dee["title"], "Boss", "{dee}");
    assert_eq!(dee["name"], json!({"givenName": "dee", "middleName": "Q"}));
    assert_eq!(
        dee[ENTERPRISE],
        json!({"department": "Ops", "costCenter": "7"})
    );
    let mut emails: Vec<&Value> = dee["emails"].as_array().unwrap().iter().collect();
    emails.sort_by_key(|e| e["type"].as_str());
    assert_eq!(
        emails,
        [
            &json!({"type": "home", "value": "dee@home.example.com"}),
            &json!({"type": "work", "value": "dee@corp.example.com", "display": "Dee at work"})
        ],
        "the work email's value changed by its own path; the endpoint's home email, and the \
         display it gave the work email, kept"
    );
    let cid = find(&users, "userName", "cid");
    assert!(
        cid.get("name").is_none() && cid.get(ENTERPRISE).is_none(),
        "mapped attributes gone from LDAP are removed: {cid}"
    );
    // And they are not planned as changes either.
    let (code, out, err) = plan();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "No changes: `corp` is in step with the source.");
    assert_eq!(
        find(&users, "userName", "bob")["active"],
        false,
        "deactivated, kept"
    );
    assert_eq!(find(&users, "userName", "ann")["active"], true);
    assert_eq!(
        find(&users, "userName", "zed")["active"],
        true,
        "left alone"
    );
    let groups = by_anchor(&server, &token, "Groups");
    assert_eq!(groups.len(), 1, "renamed, not replaced: {groups:?}");
    assert_eq!(
        member_names(find(&groups, "displayName", "team"), &users),
        ["ann"],
        "bob's membership went with the refint overlay, cid's by the sync; the rename kept it"
    );

    // A new bob joins: the name moves to him, the old bob keeps a released name.
    let old_bob = find(&users, "userName", "bob")["id"].clone();
    slapd.add(&format!(
        "dn: uid=bob,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: bob\ncn: bob\nsn: bob\n"
    ));
    let (code, out, err) = sync(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("conflict"), "{out}");
    let users = by_anchor(&server, &token, "Users");
    let bob = find(&users, "userName", "bob");
    assert_ne!(bob["id"], old_bob);
    assert_eq!(bob["active"], true);
    let old = find(&users, "id", old_bob.as_str().unwrap());
    let anchor = old["externalId"].as_str().unwrap();
    assert_eq!(old["userName"], format!("bob~{anchor}"));
    assert_eq!(old["active"], false);

    // The runs are on record with the agent.
    let (code, out, _) = run(
        &token,
        &["directory", "runs", "corp", "--db", agent_db, "--json"],
    );
    assert_eq!(code, 0);
    let runs: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 3, "{runs}");
    assert!(
        runs[1]["report"]["report"]["retries"].as_u64().unwrap() > 0,
        "{runs}"
    );

    // A wrong token is refused before LDAP is read, and says so.
    let (code, _, err) = run(
        "not-the-token",
        &[
            "sync",
            "--config",
            config,
            "--db",
            agent_db,
            "--target",
            &target,
            "--token-env",
            TOKEN_VAR,
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("the target cannot be used") && err.contains("401"),
        "{err}"
    );
    server.stop();
}

/// Group pages with `"members": null` (each group read alone) and a group gone by the time
/// it is read alone (404), and users carrying a vendor's attributes, from a real
/// `usersync serve` behind a proxy that answers so.
fn as_other_servers_list(request: &str, body: &mut Value) {
    let Some(resources) = body.get_mut("Resources").and_then(Value::as_array_mut) else {
        return;
    };
    // A group of the sync's deleted between the listing and the read of its members.
    if request.contains("/Groups?") && !resources.is_empty() {
        resources.push(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "deleted-since", "externalId": "ghost", "displayName": "ghost",
        }));
    }
    for r in resources {
        if request.contains("/Groups?") {
            r["members"] = Value::Null;
        } else {
            r["urn:example:params:scim:schemas:extension:vendor:2.0:User"] = json!({"badge": "7"});
            r["vendorFlag"] = json!(true);
            r["name"]["vendorPart"] = json!("x");
        }
    }
}

/// A server that counts more than it lists.
fn counting_more(_: &str, body: &mut Value) {
    if let Some(total) = body.get("totalResults").and_then(Value::as_u64) {
        body["totalResults"] = json!(total + 5);
    }
}

/// An agent feeding a real `usersync serve` (behind proxies a test starts) from a slapd
/// holding `uids` and a group `staff` of `members`.
struct Agent {
    slapd: Slapd,
    server: Server,
    token: String,
    config: String,
    db: String,
}

impl Agent {
    fn start(name: &str, uids: &[&str], members: &[&str], policy: &str) -> Self {
        let slapd = Slapd::start(name);
        let mut ldif = String::new();
        for uid in uids {
            ldif.push_str(&format!(
                "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\n"
            ));
        }
        ldif.push_str(&format!(
            "dn: cn=staff,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: staff\n"
        ));
        for uid in members {
            ldif.push_str(&format!("member: uid={uid},ou=people,{BASE}\n"));
        }
        slapd.add(&ldif);
        let server = Server::start(&temp_db(&format!("{name}-server")));
        let token = server.token.clone().unwrap();
        let db = temp_db(&format!("{name}-agent"));
        let config = db.with_file_name("corp.toml");
        std::fs::write(
            &config,
            format!(
                "directory = \"corp\"\n[connection]\nurls = [\"{}\"]\ntls = \"none\"\nbind_dn = \"{SERVICE_DN}\"\n\
                 bind_password_env = \"USERSYNC_CLI_TEST_PASSWORD\"\n[users]\nbase = \"ou=people,{BASE}\"\n\
                 [groups]\nbase = \"ou=groups,{BASE}\"\n[policy]\n{policy}\n",
                slapd.url
            ),
        )
        .unwrap();
        Self {
            slapd,
            server,
            token,
            config: config.to_str().unwrap().to_owned(),
            db: db.to_str().unwrap().to_owned(),
        }
    }

    /// A proxy to the server that answers as `faults` says.
    fn proxy(&self, faults: Faults) -> FaultyProxy {
        FaultyProxy::start(&self.server.addr, faults)
    }

    /// The arguments of `usersync <command>` through `proxy`, then `extra`.
    fn args(&self, proxy: &FaultyProxy, command: &str, extra: &[&str]) -> Vec<String> {
        let target = format!("http://{}/scim/v2/default", proxy.addr);
        [
            command,
            "--config",
            &self.config,
            "--db",
            &self.db,
            "--target",
            &target,
        ]
        .into_iter()
        .chain(["--token-env", TOKEN_VAR])
        .chain(extra.iter().copied())
        .map(str::to_owned)
        .collect()
    }

    /// `usersync <command>` (`plan`, `sync`) through `proxy`, with `extra` arguments.
    fn run(&self, proxy: &FaultyProxy, command: &str, extra: &[&str]) -> (i32, String, String) {
        let args = self.args(proxy, command, extra);
        run(
            &self.token,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    }

    /// `usersync sync --daemon` through `proxy`, one request at a time, its output piped.
    fn daemon(&self, proxy: &FaultyProxy) -> std::process::Child {
        std::process::Command::new(env!("CARGO_BIN_EXE_usersync"))
            .args(self.args(proxy, "sync", &["--daemon", "--concurrency", "1"]))
            .env("USERSYNC_CLI_TEST_PASSWORD", SERVICE_PASSWORD)
            .env(TOKEN_VAR, &self.token)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The members of `staff` at the server, by userName.
    fn staff(&self) -> Vec<String> {
        let users = by_anchor(&self.server, &self.token, "Users");
        let groups = by_anchor(&self.server, &self.token, "Groups");
        member_names(find(&groups, "displayName", "staff"), &users)
    }
}

#[test]
fn a_target_that_lists_otherwise_is_read_whole_or_not_at_all() {
    let agent = Agent::start(
        "cli-remote-lists",
        &["ann", "bob"],
        &["ann", "bob"],
        "max_member_removal_percent = 100.0",
    );
    let other = agent.proxy(Faults {
        rewrite: Some(as_other_servers_list),
        ..Faults::default()
    });
    let (code, out, err) = agent.run(&other, "sync", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = agent.run(&other, "plan", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "No changes: `corp` is in step with the source.");

    // bob leaves the group: the member list read alone shows him, so he is removed.
    agent.slapd.modify(&format!(
        "dn: cn=staff,ou=groups,{BASE}\nchangetype: modify\ndelete: member\nmember: uid=bob,ou=people,{BASE}\n"
    ));
    let (code, out, err) = agent.run(&other, "sync", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(agent.staff(), ["ann"]);

    // A listing that ends before the count it gave is an error, not a smaller target.
    let short = agent.proxy(Faults {
        rewrite: Some(counting_more),
        ..Faults::default()
    });
    let (code, out, err) = agent.run(&short, "plan", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("the listing ended after"), "{err}");
    agent.server.stop();
}

/// A create the server made but whose answer was lost (a gateway's 504) is looked up by
/// its anchor before it is sent again: made once, never twice.
#[test]
fn a_create_whose_answer_is_lost_is_made_once() {
    let agent = Agent::start("cli-remote-lost", &["ann", "bob", "cid"], &["ann"], "");
    let proxy = agent.proxy(Faults {
        lost_post_answer_every: 2,
        ..Faults::default()
    });
    let (code, out, err) = agent.run(&proxy, "sync", &["--concurrency", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied 5 changes"), "{out}");
    assert!(proxy.faults() >= 2, "{} answers lost", proxy.faults());
    assert_eq!(
        proxy.posts(),
        4,
        "three users and a group, each posted once"
    );
    assert_eq!(by_anchor(&agent.server, &agent.token, "Users").len(), 3);
    assert_eq!(agent.staff(), ["ann"]);
    agent.server.stop();
}

/// A server's passing 500s, and answers cut off on the way after the server acted, are
/// retried: every change is made, each create once.
#[test]
fn server_errors_and_answers_cut_off_are_retried() {
    let agent = Agent::start(
        "cli-remote-cut",
        &["ann", "bob", "cid", "dee"],
        &["ann", "bob"],
        "",
    );
    // One request at a time, so that no request meets a 500 at each of its 3 attempts
    // (between two, at most a lookup is sent).
    let proxy = agent.proxy(Faults {
        server_error_every: 5,
        cut_answer_every: 4,
        ..Faults::default()
    });
    let (code, out, err) = agent.run(&proxy, "sync", &["--concurrency", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied 6 changes"), "{out}");
    assert!(proxy.faults() >= 3, "{} faults", proxy.faults());
    assert_eq!(by_anchor(&agent.server, &agent.token, "Users").len(), 4);
    assert_eq!(by_anchor(&agent.server, &agent.token, "Groups").len(), 1);
    assert_eq!(agent.staff(), ["ann", "bob"]);
    let (code, out, err) = agent.run(&proxy, "plan", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "No changes: `corp` is in step with the source.");
    agent.server.stop();
}

/// Waits (up to 60 s) until `done` holds.
fn wait_until(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "waited in vain");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn sigterm(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A daemon told to stop while it feeds a slow endpoint stops before its next request,
/// keeps what it made on record, and resumes at its next start; a second signal ends it
/// at once.
#[test]
fn a_daemon_stops_between_requests_and_at_once_on_a_second_signal() {
    let uids: Vec<String> = (0..30).map(|i| format!("u{i:02}")).collect();
    let uids: Vec<&str> = uids.iter().map(String::as_str).collect();
    let agent = Agent::start("cli-remote-daemon", &uids, &uids[..1], "");
    let slow = agent.proxy(Faults {
        delay: std::time::Duration::from_millis(300),
        ..Faults::default()
    });

    // Stopped once the creates are under way: it ends the request in flight, and no more.
    let daemon = agent.daemon(&slow);
    wait_until(|| slow.posts() >= 2);
    sigterm(&daemon);
    let out = daemon.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("the apply was stopped after"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("stopped"), "{stdout}");
    let made = by_anchor(&agent.server, &agent.token, "Users").len();
    assert!((2..30).contains(&made), "{made} made");
    let (code, text, _) = run(
        &agent.token,
        &["directory", "runs", "corp", "--db", &agent.db, "--json"],
    );
    assert_eq!(code, 0);
    let runs: Value = serde_json::from_str(&text).unwrap();
    let record = &runs[0]["report"];
    assert_eq!(record["cancelled"], true, "{record}");
    assert_eq!(
        record["partial_report"]["applied"]["create"], made,
        "{record}"
    );

    // Started again, it goes on at once (a stopped run is due now); a second signal does
    // not wait for the request in flight (held 2 s, well past the 50 ms between signals).
    let slower = agent.proxy(Faults {
        delay: std::time::Duration::from_secs(2),
        ..Faults::default()
    });
    let daemon = agent.daemon(&slower);
    wait_until(|| by_anchor(&agent.server, &agent.token, "Users").len() > made);
    sigterm(&daemon);
    std::thread::sleep(std::time::Duration::from_millis(50));
    sigterm(&daemon);
    let out = daemon.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped at once"));
    agent.server.stop();
}
