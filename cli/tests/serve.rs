//! `usersync serve` and `usersync directory` as real processes over real HTTP.
#![allow(clippy::unwrap_used)] // test support: a failed step should stop the test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

struct Server {
    child: Child,
    addr: String,
    /// The token printed on first start, if this start printed one.
    token: Option<String>,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(db: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_usersync"))
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("usersync serve starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .expect("prints its address")
            .to_owned();
        // A first start prints the new directory and its token, then every start prints
        // `serving N: names` once it is ready.
        let mut token = None;
        loop {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "serve exited early"
            );
            if let Some(t) = line.trim().strip_prefix("token:") {
                token = Some(t.trim().to_owned());
            }
            if line.starts_with("serving ") {
                break;
            }
        }
        Self {
            child,
            addr,
            token,
            _stdout: stdout,
        }
    }

    fn stop(mut self) -> i32 {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

fn usersync(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_usersync"))
        .args(args)
        .output()
        .unwrap()
}

/// One HTTP/1.1 request; returns the status and the JSON body (null when empty).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    let body_text = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if body.is_some() {
        req.push_str(&format!(
            "Content-Type: application/scim+json\r\nContent-Length: {}\r\n",
            body_text.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body_text);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status: u16 = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status,
        if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap()
        },
    )
}

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("usersync-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("usersync.db")
}

#[test]
fn first_start_creates_a_directory_and_a_token_that_works() {
    let db = temp_db("serve");
    let server = Server::start(&db);
    let token = server.token.clone().expect("a first start prints a token");
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
        403
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
