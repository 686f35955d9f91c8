//! A private PostgreSQL server for the tests: `initdb` into a temporary directory, `pg_ctl`
//! on a free loopback port, trust authentication for the role `usersync`, stopped by PID.
//!
//! PostgreSQL refuses to run as root: as root, the server's files belong to the `postgres`
//! account Debian's package creates, and its programs run as that account (`runuser`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::free_port;

/// A private PostgreSQL server. Stopped (and its files removed) when dropped.
#[derive(Debug)]
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    pid: Option<u32>,
    as_postgres: bool,
    /// The loopback port it listens on.
    pub port: u16,
    /// Server settings (`name=value`).
    settings: Vec<String>,
}

/// The tests need speed, not crash safety of the test server.
const TEST_SETTINGS: &[&str] = &[
    "fsync=off",
    "full_page_writes=off",
    "synchronous_commit=off",
];

impl Postgres {
    /// Initialises a cluster and starts it. Durability is off (`fsync`, full page writes):
    /// the tests need speed, not crash safety of the test server.
    ///
    /// # Panics
    /// When PostgreSQL is not installed (`apt-get install postgresql`) or does not start.
    pub fn start(name: &str) -> Self {
        Self::start_with(name, TEST_SETTINGS)
    }

    /// As [`Postgres::start`], with these server settings (`name=value`) instead: a
    /// benchmark runs with durability on.
    ///
    /// # Panics
    /// As [`Postgres::start`].
    pub fn start_with(name: &str, settings: &[&str]) -> Self {
        Self::start_in(name, settings, false).0
    }

    /// As [`Postgres::start`], serving TLS only, as managed databases do: a certificate for
    /// `127.0.0.1` from a CA made for it (returned, for clients to trust), and connections
    /// without TLS refused.
    ///
    /// # Panics
    /// As [`Postgres::start`], and when openssl fails.
    pub fn start_tls(name: &str) -> (Self, crate::Certificates) {
        let (pg, certificates) = Self::start_in(name, TEST_SETTINGS, true);
        (pg, certificates.expect("certificates made"))
    }

    fn start_in(name: &str, settings: &[&str], tls: bool) -> (Self, Option<crate::Certificates>) {
        let bin = bindir();
        // Several servers may run in one test process: each gets a directory of its own.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("usersync-pg-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("postgres dir");
        // Made before the files change hands: the server must own its key.
        let certificates = tls.then(|| {
            let made = crate::certificates(&dir.join("tls"));
            let private = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(&made.key, private).expect("key file mode");
            made
        });
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown of {}", dir.display());
        }
        let mut settings: Vec<String> = settings.iter().map(|s| (*s).to_owned()).collect();
        if let Some(c) = &certificates {
            settings.push("ssl=on".into());
            settings.push(format!("ssl_cert_file={}", c.cert.display()));
            settings.push(format!("ssl_key_file={}", c.key.display()));
        }
        let mut pg = Self {
            dir,
            bin,
            pid: None,
            as_postgres,
            port: free_port(),
            settings,
        };
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "usersync",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        if certificates.is_some() {
            // Over TCP, TLS or nothing (the file keeps its owner: only its text changes).
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
            )
            .expect("pg_hba.conf");
        }
        pg.launch();
        (pg, certificates)
    }

    /// Starts the server on this instance's data directory and port.
    fn launch(&mut self) {
        let data = self.dir.join("data");
        let mut options = format!("-h 127.0.0.1 -p {} -k {}", self.port, self.dir.display());
        for setting in &self.settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        self.run(
            "pg_ctl",
            &[
                "-D",
                &data.display().to_string(),
                "-l",
                &self.dir.join("server.log").display().to_string(),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
        let pid_file =
            std::fs::read_to_string(data.join("postmaster.pid")).expect("postmaster.pid");
        self.pid = pid_file.lines().next().and_then(|l| l.trim().parse().ok());
        assert!(self.pid.is_some(), "no PID in postmaster.pid");
    }

    /// `postgres://usersync@127.0.0.1:PORT/database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://usersync@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database and returns its URL.
    ///
    /// # Panics
    /// When `createdb` fails (a taken name, say).
    pub fn create_database(&self, name: &str) -> String {
        self.create_database_with(name, &[])
    }

    /// Creates an empty database with more `createdb` options (say, an ICU collation
    /// other than the cluster's C) and returns its URL.
    ///
    /// # Panics
    /// When `createdb` fails.
    pub fn create_database_with(&self, name: &str, options: &[&str]) -> String {
        let port = self.port.to_string();
        let mut args = vec!["-h", "127.0.0.1", "-p", &port, "-U", "usersync"];
        args.extend_from_slice(options);
        args.push(name);
        self.run("createdb", &args);
        self.url(name)
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = command
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("{} runs: {e} (apt-get install postgresql)", path.display())
            });
        assert!(
            out.status.success(),
            "{program}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            // SIGINT: PostgreSQL's fast shutdown (sessions are ended, not waited for).
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
            let started = Instant::now();
            while Path::new(&format!("/proc/{pid}")).exists()
                && started.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where the server's programs are: Debian keeps them out of `PATH`, under
/// `/usr/lib/postgresql/<major>/bin` (the newest installed major version is taken).
fn bindir() -> PathBuf {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .max_by_key(|(major, _)| *major);
    match newest {
        Some((_, bin)) => bin,
        // Elsewhere, trust PATH.
        None => PathBuf::new(),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
