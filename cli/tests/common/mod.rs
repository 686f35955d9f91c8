//! Helpers shared by the command-line tests: a `usersync serve` process and a minimal
//! HTTP/1.1 client.
#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part; a failed step stops the test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::Value;

pub(crate) struct Server {
    child: Child,
    pub(crate) addr: String,
    /// A token of `default`, if this start created it (issued as its output says: the
    /// output is not a terminal, so none is printed).
    pub(crate) token: Option<String>,
    /// The database it serves.
    pub(crate) db: PathBuf,
    /// Where its log (standard error) goes.
    pub(crate) log: PathBuf,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    pub(crate) fn start(db: &Path) -> Self {
        Self::start_with(db, &[])
    }

    /// Starts `usersync serve` with `extra` arguments; `addr` is `host:port`, whatever the
    /// scheme.
    pub(crate) fn start_with(db: &Path, extra: &[&str]) -> Self {
        // Beside a database file; a PostgreSQL URL has no directory of its own.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let log = match db.parent().filter(|p| p.is_dir()) {
            Some(_) => db.with_extension("log"),
            None => {
                let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                temp_db(&format!("serve-log-{n}")).with_extension("log")
            }
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_usersync"))
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("usersync serve starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.split_once("://"))
            .expect("prints its address")
            .1
            .to_owned();
        // A first start prints the new directory (with no token, into a pipe), then every
        // start prints `serving N: names` once it is ready.
        let mut created = false;
        loop {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "serve exited early"
            );
            assert!(!line.starts_with("token:"), "a token printed into a pipe");
            created |= line.starts_with("created directory `default`");
            if line.starts_with("serving ") {
                break;
            }
        }
        let token = created.then(|| {
            let out = Command::new(env!("CARGO_BIN_EXE_usersync"))
                .args(["directory", "token", "rotate", "default", "--db"])
                .arg(db)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let token = text.lines().next().and_then(|l| l.split_once(": "));
            token.expect("`token rotate` prints the token").1.to_owned()
        });
        Self {
            child,
            addr,
            token,
            db: db.to_path_buf(),
            log,
            _stdout: stdout,
        }
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server with SIGKILL (`kill -9`): no shutdown of any kind.
    pub(crate) fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub(crate) fn stop(mut self) -> i32 {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

/// A test that fails before `stop` leaves no server behind (they outlived failed runs).
impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn usersync(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_usersync"))
        .args(args)
        .output()
        .unwrap()
}

/// `usersync` with `input` on its standard input.
#[allow(dead_code)] // not every test binary reads from a pipe
pub(crate) fn usersync_with_input(args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_usersync"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// One HTTP/1.1 request; returns the status and the JSON body (null when empty).
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    try_http(addr, method, path, token, body, &[]).unwrap()
}

/// As [`http`], with extra headers, and an error instead of a panic when the server cannot
/// be reached or hangs up without answering (a killed node).
pub(crate) fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, Value)> {
    let mut s = TcpStream::connect(addr)?;
    let body_text = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!(
        "{method} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n",
        encode(path)
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if body.is_some() {
        req.push_str(&format!(
            "Content-Type: application/scim+json\r\nContent-Length: {}\r\n",
            body_text.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body_text);
    s.write_all(req.as_bytes())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status: u16 = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP answer"))?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((
        status,
        if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap()
        },
    ))
}

/// A fresh `usersync.db` path in a scratch directory of this process; those of earlier runs
/// that ended go first.
pub(crate) fn temp_db(name: &str) -> PathBuf {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(|| usersync_testkit::remove_ended_runs("usersync-cli-"));
    let dir = std::env::temp_dir().join(format!("usersync-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("usersync.db")
}

/// Percent-encodes what may not stand in a request target (spaces, quotes, `#`, non-ASCII…),
/// keeping `/ ? & =` and already-encoded `%XX`.
fn encode(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    for b in target.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/?&=:@!$'()*+,;%[]".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
