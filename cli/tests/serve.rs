//! `usersync serve` and `usersync directory` as real processes over real HTTP.
#![allow(clippy::unwrap_used)] // test support: a failed step should stop the test

mod common;

use common::{Server, http, temp_db, usersync, usersync_with_input};
use serde_json::{Value, json};

#[test]
fn first_start_creates_a_directory_and_a_token_that_works() {
    let db = temp_db("serve");
    let server = Server::start(&db);
    // Into a pipe no token is printed (the helper checks); one issued by `token rotate` works.
    let token = server
        .token
        .clone()
        .expect("a first start creates `default`");
    assert!(token.starts_with("usersync_"));
    let addr = server.addr.clone();
    let (status, body) = http(
        &addr,
        "POST",
        "/scim/v2/default/Users",
        Some(&token),
        Some(&json!({"userName": "bjensen"})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = http(
        &addr,
        "GET",
        "/scim/v2/default/Users?filter=userName%20eq%20%22BJENSEN%22",
        Some(&token),
        None,
    );
    assert_eq!((status, body["totalResults"].clone()), (200, json!(1)));
    assert_eq!(
        http(&addr, "GET", "/scim/v2/default/Users", None, None).0,
        401
    );
    assert_eq!(
        http(
            &addr,
            "GET",
            "/scim/v2/default/Users",
            Some("usersync_nope"),
            None
        )
        .0,
        401
    );
    // A body past the server's own limit is refused with a SCIM error too, not plain text.
    let big = json!({"userName": "big", "title": "x".repeat(3 << 20)});
    let (status, body) = http(
        &addr,
        "POST",
        "/scim/v2/default/Users",
        Some(&token),
        Some(&big),
    );
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("larger than"),
        "{body}"
    );
    assert_eq!(server.stop(), 0, "SIGTERM shuts down cleanly");

    // A second directory, made by the CLI, gets its own token, which the first refuses.
    let out = usersync(&[
        "directory",
        "create",
        "okta",
        "--json",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["endpoint"], "/scim/v2/okta");
    let okta_token = created["token"].as_str().unwrap().to_owned();

    let server = Server::start(&db);
    assert!(server.token.is_none(), "no new directory on a later start");
    let addr = server.addr.clone();
    let (status, body) = http(&addr, "GET", "/scim/v2/default/Users", Some(&token), None);
    assert_eq!(
        (status, body["totalResults"].clone()),
        (200, json!(1)),
        "data survives a restart"
    );
    assert_eq!(
        http(
            &addr,
            "GET",
            "/scim/v2/default/Users",
            Some(&okta_token),
            None
        )
        .0,
        401,
        "another directory's token"
    );
    assert_eq!(
        http(&addr, "GET", "/scim/v2/okta/Users", Some(&okta_token), None).0,
        200
    );
    assert_eq!(server.stop(), 0);

    let out = usersync(&["directory", "list", "--db", db.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("default\tscim\t/scim/v2/default\tactive 1\tinactive 0"),
        "{text}"
    );
    assert!(text.contains("okta\tscim"), "{text}");
    std::fs::remove_dir_all(db.parent().unwrap()).unwrap();
}

#[test]
fn tokens_rotate_and_revoke_from_the_command_line() {
    let db = temp_db("tokens");
    let db_arg = db.to_str().unwrap();
    let created: Value = serde_json::from_slice(
        &usersync(&["directory", "create", "entra", "--json", "--db", db_arg]).stdout,
    )
    .unwrap();
    let first = created["token"].as_str().unwrap().to_owned();
    // `USERSYNC_DB` stands for `--db` (a PostgreSQL URL's password then stays out of `ps`).
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_usersync"))
        .args(["directory", "list"])
        .env("USERSYNC_DB", db_arg)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("entra"),
        "{listed:?}"
    );
    let rotated: Value = serde_json::from_slice(
        &usersync(&[
            "directory",
            "token",
            "rotate",
            "entra",
            "--json",
            "--db",
            db_arg,
        ])
        .stdout,
    )
    .unwrap();
    let second = rotated["token"].as_str().unwrap().to_owned();
    let listed: Value = serde_json::from_slice(
        &usersync(&[
            "directory",
            "token",
            "list",
            "entra",
            "--json",
            "--db",
            db_arg,
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        !listed.to_string().contains(&first),
        "secrets are never listed"
    );
    let first_id = listed[0]["id"].to_string();
    assert!(
        usersync(&[
            "directory",
            "token",
            "revoke",
            "entra",
            &first_id,
            "--db",
            db_arg
        ])
        .status
        .success()
    );

    let server = Server::start(&db);
    assert_eq!(
        http(
            &server.addr,
            "GET",
            "/scim/v2/entra/Users",
            Some(&first),
            None
        )
        .0,
        401,
        "revoked"
    );
    assert_eq!(
        http(
            &server.addr,
            "GET",
            "/scim/v2/entra/Users",
            Some(&second),
            None
        )
        .0,
        200
    );
    server.stop();
    let out = usersync(&["directory", "create", "entra", "--db", db_arg]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`entra` is already taken"));
    let out = usersync(&["directory", "create", "bad/name", "--db", db_arg]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("directory name `bad/name`"));
    std::fs::remove_dir_all(db.parent().unwrap()).unwrap();
}

/// A deactivated user is kept for its directory's retention, then purged: by `serve` (at
/// start, then hourly) and by `directory purge`; users still within it stay.
#[test]
fn users_past_the_retention_are_purged() {
    let db = temp_db("purge");
    let db_arg = db.to_str().unwrap();
    let create = |name: &str, days: &str| {
        let out = usersync(&[
            "directory",
            "create",
            name,
            "--retention-days",
            days,
            "--json",
            "--db",
            db_arg,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let created: Value = serde_json::from_slice(&out.stdout).unwrap();
        created["token"].as_str().unwrap().to_owned()
    };
    let tokens = [
        ("now", create("now", "0")),
        ("later", create("later", "30")),
    ];
    let server = Server::start(&db);
    let deactivate = |addr: &str, directory: &str, token: &str, name: &str| {
        let (status, body) = http(
            addr,
            "POST",
            &format!("/scim/v2/{directory}/Users"),
            Some(token),
            Some(&json!({"userName": name, "active": false})),
        );
        assert_eq!(status, 201, "{body}");
    };
    for (directory, token) in &tokens {
        deactivate(&server.addr, directory, token, &format!("{directory}-1"));
    }
    let counts = || -> Vec<(String, u64)> {
        let out = usersync(&["directory", "list", "--json", "--db", db_arg]);
        let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap().to_owned(),
                    d["inactiveUsers"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert!(counts().contains(&("now".into(), 1)));
    assert_eq!(server.stop(), 0);
    // A restart purges what is past its retention.
    let server = Server::start(&db);
    let mut waited = 0;
    while counts().contains(&("now".into(), 1)) && waited < 100 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited += 1;
    }
    let now = counts();
    assert!(
        now.contains(&("now".into(), 0)) && now.contains(&("later".into(), 1)),
        "{now:?}"
    );
    deactivate(&server.addr, "now", &tokens[0].1, "now-2");
    assert_eq!(server.stop(), 0);
    // By hand.
    let out = usersync(&["directory", "purge", "now", "--json", "--db", db_arg]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"now":1}"#);
    let out = usersync(&["directory", "purge", "--db", db_arg]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no user is past its directory's retention"
    );
    let out = usersync(&["directory", "purge", "nowhere", "--db", db_arg]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("nowhere"));
    std::fs::remove_dir_all(db.parent().unwrap()).unwrap();
}

/// A directory created with its settings keeps the password Okta sends; the command line
/// checks a sign-in against it, reading the password from standard input.
#[test]
fn a_directory_that_keeps_password_hashes_checks_sign_ins() {
    let db = temp_db("passwords");
    let db_arg = db.to_str().unwrap();
    let out = usersync(&[
        "directory",
        "create",
        "okta",
        "--keep-password-hashes",
        "--strict",
        "--user-names",
        "directory",
        "--retention-days",
        "7",
        "--json",
        "--db",
        db_arg,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let listed: Value =
        serde_json::from_slice(&usersync(&["directory", "list", "--json", "--db", db_arg]).stdout)
            .unwrap();
    let okta = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "okta")
        .unwrap();
    assert_eq!(
        (
            &okta["keepPasswordHashes"],
            &okta["userNameScope"],
            &okta["retentionDays"],
            &okta["strict"]
        ),
        (&json!(true), &json!("directory"), &json!(7), &json!(true))
    );

    let server = Server::start(&db);
    let (status, body) = http(
        &server.addr,
        "POST",
        "/scim/v2/okta/Users",
        Some(&token),
        Some(&json!({"userName": "jdoe", "password": "s3cret Pa55"})),
    );
    assert_eq!(status, 201, "{body}");
    assert!(body.get("password").is_none());
    let id = body["id"].as_str().unwrap().to_owned();
    server.stop();

    let verify = |user: &str, input: &str| {
        usersync_with_input(
            &["directory", "verify-password", "okta", user, "--db", db_arg],
            input,
        )
    };
    let ok = verify("JDOE", "s3cret Pa55\n");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8(ok.stdout).unwrap().trim(), id);
    for (user, input) in [
        ("jdoe", "s3cret pa55\n"),
        ("nobody", "s3cret Pa55\n"),
        ("jdoe", ""),
    ] {
        let refused = verify(user, input);
        assert_eq!(refused.status.code(), Some(1), "{user} {input:?}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("do not match"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
    }
    let out = usersync(&[
        "directory",
        "create",
        "x",
        "--user-names",
        "world",
        "--db",
        db_arg,
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown --user-names `world`"));
    std::fs::remove_dir_all(db.parent().unwrap()).unwrap();
}

/// `--tls-cert`/`--tls-key`: the endpoint answers over HTTPS with the given certificate,
/// verified by curl against the CA that signed it; a bad key is an error before listening.
#[test]
fn serves_https_with_the_given_certificate() {
    let dir = temp_db("tls-certs").with_extension("d");
    let certs = usersync_testkit::certificates(&dir);
    let (cert, key) = (certs.cert, certs.key);

    let db = temp_db("tls");
    let server = Server::start_with(
        &db,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let token = server.token.clone().unwrap();
    let url = format!("https://{}/scim/v2/default/Users", server.addr);
    let curl = |extra: &[&str]| {
        std::process::Command::new("curl")
            .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .args(extra)
            .arg(&url)
            .output()
            .expect("curl runs")
    };
    let ok = curl(&["--cacert", certs.ca.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        text.ends_with("\n200"),
        "{text} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(text.contains("\"totalResults\":0"), "{text}");
    // Without the CA, the certificate is not trusted: TLS is real, not a plain socket.
    let untrusted = curl(&[]);
    assert!(!untrusted.status.success());
    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = std::net::TcpStream::connect(&server.addr).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    std::io::Write::write_all(
        &mut plain,
        b"GET /scim/v2/default/Users HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut answer);
    assert!(!answer.starts_with(b"HTTP/1.1 200"));
    assert_eq!(server.stop(), 0);

    // A key that does not belong to the certificate: a clear error, nothing served.
    let out = usersync(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        db.to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        certs.ca.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot use the certificate"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
}

/// Two `usersync serve` processes on one PostgreSQL database: what one node writes, the
/// other serves; the command line manages the same directories.
#[test]
fn two_nodes_serve_one_postgres_database() {
    let pg = usersync_testkit::postgres::Postgres::start("serve");
    let url = pg.create_database("serve");
    // Two nodes started at once on a new database: both serve, one made `default`.
    let starting: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || Server::start(std::path::Path::new(&url)))
        })
        .collect();
    let mut nodes: Vec<Server> = starting.into_iter().map(|s| s.join().unwrap()).collect();
    nodes.sort_by_key(|n| n.token.is_none());
    let (a, b) = (nodes.remove(0), nodes.remove(0));
    let token = a.token.clone().expect("one node creates `default`");
    assert!(b.token.is_none(), "the other finds it");
    let (status, user) = http(
        &a.addr,
        "POST",
        "/scim/v2/default/Users",
        Some(&token),
        Some(&json!({"userName": "bjensen"})),
    );
    assert_eq!(status, 201, "{user}");
    let (status, group) = http(
        &b.addr,
        "POST",
        "/scim/v2/default/Groups",
        Some(&token),
        Some(&json!({"displayName": "Staff"})),
    );
    assert_eq!(status, 201, "{group}");
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}]});
    let group_path = format!("/scim/v2/default/Groups/{}", group["id"].as_str().unwrap());
    assert_eq!(
        http(&a.addr, "PATCH", &group_path, Some(&token), Some(&patch)).0,
        204
    );
    let (status, read) = http(
        &b.addr,
        "GET",
        "/scim/v2/default/Users?filter=userName%20eq%20%22BJENSEN%22",
        Some(&token),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(read["totalResults"], 1, "{read}");
    assert_eq!(
        read["Resources"][0]["groups"][0]["value"], group["id"],
        "{read}"
    );
    assert_eq!(a.stop(), 0);
    assert_eq!(b.stop(), 0);

    let listed = usersync(&["directory", "list", "--json", "--db", &url]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let rows: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows[0]["name"], "default");
    assert_eq!(rows[0]["activeUsers"], 1);
    // A server that is not there: an error naming the database, without its password.
    let out = usersync(&[
        "directory",
        "list",
        "--db",
        "postgres://usersync:s3cret@127.0.0.1:1/none?password=s3cret",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("postgres://usersync:***@127.0.0.1:1/none?password=***"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

/// Clients that connect and send nothing, or send a body too slowly, are cut off after
/// `--request-timeout` instead of holding a connection for ever; raw requests on the same
/// server also check that a stranger's body is not waited for and that HEAD has no body.
#[test]
fn slow_and_silent_clients_are_cut_off() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    let db = temp_db("serve-timeouts");
    let server = Server::start_with(&db, &["--request-timeout", "1"]);
    let token = server.token.clone().unwrap();
    let connect = || {
        let s = std::net::TcpStream::connect(&server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    // Silent: closed by the server, well before the test's own 10 s.
    let started = Instant::now();
    let mut silent = connect();
    let mut answer = Vec::new();
    silent.read_to_end(&mut answer).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A body that stops half-way: 408, a SCIM error.
    let started = Instant::now();
    let mut slow = connect();
    write!(
        slow,
        "POST /scim/v2/default/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{{\"userName\":"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 1 s"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Without the token, a body is not waited for: 401 at once, not 408.
    let mut stranger = connect();
    write!(
        stranger,
        "PUT /scim/v2/default/Users/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n\
         Content-Length: 1000000\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stranger.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // HEAD answers as GET, without the body.
    let mut head = connect();
    write!(
        head,
        "HEAD /scim/v2/default/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = head.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "no body: {answer}");
    // A client that keeps its connection idle after a request is closed too.
    let mut idle = connect();
    write!(
        idle,
        "GET /scim/v2/default/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    idle.read_to_end(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    server.stop();
}

/// A store that fails answers 500 with a detail that names nothing of the server, and the
/// log says why: an operator can tell a broken database from a bug.
#[test]
fn a_failing_store_is_a_500_whose_cause_is_logged() {
    let db = temp_db("serve-failing-store");
    let server = Server::start(&db);
    let token = server.token.clone().unwrap();
    let (status, _) = http(
        &server.addr,
        "GET",
        "/scim/v2/default/Users",
        Some(&token),
        None,
    );
    assert_eq!(status, 200);
    // The database broken under the running server.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TABLE memberships; DROP TABLE resources;")
        .unwrap();
    let (status, body) = http(
        &server.addr,
        "GET",
        "/scim/v2/default/Users",
        Some(&token),
        None,
    );
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body["detail"],
        "the store failed; the request changed nothing"
    );
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        log.lines().any(|l| l.contains("ERROR")
            && l.contains("status=500")
            && l.contains("no such table")),
        "{log}"
    );
    server.stop();
}

/// On a terminal, a first start prints the token of `default` (into a pipe, where it may be
/// logged, it prints none: every other test's server checks that).
#[test]
fn a_first_start_prints_its_token_on_a_terminal() {
    use std::io::BufRead;
    let db = temp_db("serve-terminal");
    let command = format!(
        "{} serve --listen 127.0.0.1:0 --db {}",
        env!("CARGO_BIN_EXE_usersync"),
        db.display()
    );
    // `script` runs the server on a pseudo-terminal of its own.
    let mut script = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(script.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let ready = line.starts_with("serving ");
        printed.push(line);
        if ready {
            break;
        }
    }
    std::process::Command::new("kill")
        .args(["-TERM", &script.id().to_string()])
        .status()
        .unwrap();
    script.wait().unwrap();
    assert!(
        printed.iter().any(|l| l.starts_with("token:    usersync_")),
        "{printed:?}"
    );
}
