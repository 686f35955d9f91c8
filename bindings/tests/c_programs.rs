//! The C programs of `tests/c/`, compiled with gcc (`-std=c11 -Wall -Wextra -Werror`) against
//! the committed header, linked dynamically and statically against this crate's
//! `libusersync`, and run — each of them also under valgrind, which must report no error and
//! no leak (`tests/c/valgrind.supp` names the two allocations kept for the process's life).
#![allow(clippy::unwrap_used)] // test support: a failed step should stop the test

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use usersync::USERSYNC_ABI_VERSION;

/// The directory cargo put `libusersync.so` and `libusersync.a` in (beside `deps/`).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh directory of its own for each call, under this test process's own directory
/// (`usersync-c-<pid>` in the temporary directory). The programs, a static build and an
/// installed prefix take hundreds of megabytes a run: the first call removes what runs that
/// have ended left behind, and keeps this run's for a look after a failure.
fn scratch(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(|| usersync_testkit::remove_ended_runs("usersync-c-"));
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir()
        .join(format!("usersync-c-{}", std::process::id()))
        .join(format!("{name}-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// How a program is linked.
#[derive(Clone, Copy, Debug)]
enum Link {
    Dynamic,
    Static,
}

/// Builds `libusersync.so` and `libusersync.a` from the code as it is now: `cargo test`
/// builds only the crate's rlib, and libraries left by an earlier build could be stale.
fn build_libraries() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--locked", "-p", "usersync-ffi", "--lib"])
            .arg("--target-dir")
            .arg(lib_dir().parent().unwrap())
            .current_dir(repo())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build -p usersync-ffi failed");
        // The name the library's SONAME gives the loader, as an install makes it.
        let soname = lib_dir().join(format!("libusersync.so.{USERSYNC_ABI_VERSION}"));
        let _ = std::fs::remove_file(&soname);
        std::os::unix::fs::symlink("libusersync.so", &soname).unwrap();
    });
}

/// Compiles `tests/c/<name>.c` and returns the executable.
fn compile(name: &str, link: Link) -> PathBuf {
    build_libraries();
    let lib = lib_dir();
    let out = scratch(&format!("build-{name}-{link:?}")).join(name);
    let mut gcc = Command::new("gcc");
    gcc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-pthread"])
        .arg("-I")
        .arg(repo().join("include"))
        .arg(repo().join(format!("tests/c/{name}.c")))
        .arg("-o")
        .arg(&out);
    match link {
        Link::Dynamic => {
            gcc.arg(format!("-L{}", lib.display()))
                .arg(format!("-Wl,-rpath,{}", lib.display()))
                .arg("-lusersync");
        }
        // The system libraries `cargo rustc -- --print native-static-libs` names.
        Link::Static => {
            gcc.arg(lib.join("libusersync.a")).args([
                "-lgcc_s",
                "-lutil",
                "-lrt",
                "-lpthread",
                "-lm",
                "-ldl",
                "-lc",
            ]);
        }
    }
    let status = gcc.status().expect("gcc runs");
    assert!(status.success(), "gcc failed on {name}.c ({link:?})");
    out
}

/// The command that runs `exe`, under valgrind (any error or leak fails it) or not.
fn command(exe: &Path, valgrind: bool) -> Command {
    if !valgrind {
        return Command::new(exe);
    }
    let mut v = Command::new("valgrind");
    v.args([
        "--error-exitcode=99",
        "--leak-check=full",
        "--show-leak-kinds=definite,indirect,possible",
        "--errors-for-leak-kinds=definite,indirect,possible",
        "--quiet",
    ])
    .arg(format!(
        "--suppressions={}",
        repo().join("tests/c/valgrind.supp").display()
    ))
    .arg(exe);
    v
}

/// Runs a compiled program with a fresh database path and `args`; `valgrind` wraps it.
fn run(exe: &Path, valgrind: bool, args: &[&str]) -> String {
    let db = scratch("db").join("c.db");
    let output = command(exe, valgrind)
        .arg(&db)
        .args(args)
        .output()
        .expect("the program runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} failed ({:?}){}:\n{stdout}\n{stderr}",
        exe.display(),
        output.status,
        if valgrind { " under valgrind" } else { "" },
    );
    stdout
}

/// Builds each program once per linking.
fn program(name: &'static str, link: Link) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let key = format!("{name}-{link:?}");
    let mut built = built
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, path)) = built.iter().find(|(k, _)| *k == key) {
        return path.clone();
    }
    let path = compile(name, link);
    built.push((key, path.clone()));
    path
}

#[test]
fn lifecycle_and_every_error_path_dynamic_and_static() {
    for link in [Link::Dynamic, Link::Static] {
        let out = run(&program("lifecycle", link), false, &[]);
        assert!(out.contains("lifecycle: ok"), "{out}");
    }
}

#[test]
fn eight_threads_on_one_handle_lose_nothing() {
    let out = run(&program("threads", Link::Dynamic), false, &[]);
    assert!(
        out.contains("threads: ok (200 users, 200 members, 201 creations"),
        "{out}"
    );
}

#[test]
fn valgrind_finds_no_error_and_no_leak() {
    // Valgrind runs threads one at a time and some fifty times slower: fewer users.
    for (name, args) in [("lifecycle", &[][..]), ("threads", &["3"][..])] {
        run(&program(name, Link::Dynamic), true, args);
    }
}

/// The C transport of the transcripts: a running `replay` program.
struct Replayer {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Replayer {
    /// Starts the program, under valgrind: the transports also show that a long session
    /// of calls leaves no error and no leak.
    fn start(exe: &Path) -> Self {
        let db = scratch("replay").join("c.db");
        let mut child = command(exe, true)
            .arg(&db)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        Self { child, stdout }
    }

    fn send(&mut self, head: &str, payload: &[&[u8]]) -> (String, Vec<u8>) {
        use std::io::{BufRead, Read, Write};
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(head.as_bytes()).unwrap();
        for p in payload {
            stdin.write_all(p).unwrap();
        }
        stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let len: usize = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
        let mut body = vec![0; len];
        self.stdout.read_exact(&mut body).unwrap();
        (line, body)
    }

    fn finish(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "{status:?} (99: valgrind found an error or a leak)"
        );
    }
}

#[test]
fn identity_provider_transcripts_replay_through_the_c_api() {
    use serde_json::Value;
    use usersync_testkit::transcripts;
    let mut c = Replayer::start(&program("replay", Link::Static));
    let names = transcripts::names();
    assert!(names.len() >= 3, "{names:?}");
    for name in &names {
        let (_, created) = c.send(&format!("D {}\n", name.len()), &[name.as_bytes()]);
        let created: Value = serde_json::from_slice(&created).unwrap();
        let token = created["token"].as_str().unwrap().to_owned();
        transcripts::replay(name, name, &mut |request| {
            let body = request
                .body
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default();
            let parts: [&[u8]; 5] = [
                request.method.as_bytes(),
                request.path.as_bytes(),
                request.query.as_bytes(),
                token.as_bytes(),
                body.as_bytes(),
            ];
            let head = format!(
                "R {} {} {} {} {}\n",
                parts[0].len(),
                parts[1].len(),
                parts[2].len(),
                parts[3].len(),
                parts[4].len()
            );
            let (line, body) = c.send(&head, &parts);
            let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
            let json = if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&body).unwrap()
            };
            (status, json)
        });
    }
    c.finish();
}

/// The README's C example, built the way it says (installed with `scripts/install-lib.sh`,
/// flags from pkg-config), run.
#[test]
fn the_readme_c_example_builds_with_pkg_config_and_runs() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let example = readme
        .split("```c\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let dir = scratch("readme");
    std::fs::write(dir.join("app.c"), example).unwrap();
    let prefix = dir.join("prefix");
    let status = Command::new(repo().join("scripts/install-lib.sh"))
        .args(["--debug", "--no-build"])
        .arg(&prefix)
        .env("CARGO_TARGET_DIR", lib_dir().parent().unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let pkg_config = |args: &[&str]| {
        let out = Command::new("pkg-config")
            .args(args)
            .arg("usersync")
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        pkg_config(&["--modversion"]).trim(),
        env!("CARGO_PKG_VERSION")
    );
    for (name, flags) in [
        ("dynamic", pkg_config(&["--cflags", "--libs"])),
        (
            "static",
            format!(
                "{} -static-libgcc",
                pkg_config(&["--cflags", "--libs", "--static"])
            ),
        ),
    ] {
        let exe = dir.join(format!("app-{name}"));
        let mut gcc = Command::new("gcc");
        gcc.args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
            .arg(dir.join("app.c"))
            .arg("-o")
            .arg(&exe);
        if name == "static" {
            // The static library first, so the linker prefers it to the shared one.
            gcc.arg(prefix.join("lib/libusersync.a"));
        }
        gcc.args(flags.split_whitespace());
        assert!(
            gcc.status().unwrap().success(),
            "the README example ({name}) does not build"
        );
        if name == "dynamic" {
            // Linked against the SONAME, not the file: another ABI is never loaded for it.
            let out = Command::new("readelf")
                .arg("-d")
                .arg(&exe)
                .output()
                .unwrap();
            let dynamic = String::from_utf8_lossy(&out.stdout);
            let needed = format!("[libusersync.so.{USERSYNC_ABI_VERSION}]");
            assert!(dynamic.contains(&needed), "{dynamic}");
        }
        let work = scratch(&format!("readme-run-{name}"));
        let out = Command::new(&exe).current_dir(&work).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("\"endpoint\":\"/scim/v2/acme\""),
            "{stdout}"
        );
        assert!(stdout.contains("status 401"), "{stdout}");
        assert!(stdout.contains("\"totalResults\":0"), "{stdout}");
    }
    // The installed prefix and the static program are half a gigabyte.
    let _ = std::fs::remove_dir_all(&dir);
}

/// An LDAP sync driven from C against a real slapd: plan, apply with progress, a no-change
/// run, a blocked removal and its override, the runs' records, an unreachable server.
#[test]
fn a_sync_against_slapd_driven_from_c() {
    use usersync_testkit::{ADMIN_DN, ADMIN_PASSWORD, BASE, SERVICE_DN, SERVICE_PASSWORD, Slapd};
    let slapd = Slapd::start("c-sync");
    let mut ldif = String::new();
    for uid in ["ann", "bob", "cid", "dee", "eve"] {
        ldif.push_str(&format!(
            "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\n"
        ));
    }
    ldif.push_str(&format!(
        "dn: cn=staff,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: staff\nmember: uid=ann,ou=people,{BASE}\nmember: uid=bob,ou=people,{BASE}\n"
    ));
    slapd.add(&ldif);
    let dir = scratch("c-sync-config");
    let config = dir.join("corp.toml");
    std::fs::write(
        &config,
        format!(
            "directory = \"corp\"\n[connection]\nurls = [\"{}\"]\ntls = \"none\"\nbind_dn = \"{SERVICE_DN}\"\n\
             bind_password_file = \"{}\"\n[users]\nbase = \"ou=people,{BASE}\"\n[groups]\nbase = \"ou=groups,{BASE}\"\n",
            slapd.url,
            dir.join("password").display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("password"), SERVICE_PASSWORD).unwrap();
    let remove = format!(
        "ldapdelete -x -H {} -D '{ADMIN_DN}' -w '{ADMIN_PASSWORD}' 'uid=dee,ou=people,{BASE}' 'uid=eve,ou=people,{BASE}'",
        slapd.url
    );
    // Under valgrind: LDAP, TLS-free here, the store and the callbacks leave no error and
    // no leak.
    let out = run(
        &program("sync", Link::Dynamic),
        true,
        &[config.to_str().unwrap(), &remove],
    );
    assert!(out.contains("sync: ok"), "{out}");
}

/// The shared filter corpora (`tests/fixtures/filters.json`, `ldap_filters.json`) checked
/// through the C API: the same canonical forms, error codes, positions and messages as the
/// core's own corpus tests, cases marked `strict` in the strict RFC mode.
#[test]
fn the_filter_corpora_through_the_c_api() {
    use serde_json::Value;
    let mut c = Replayer::start(&program("filters", Link::Dynamic));
    let load = |name: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(repo().join("tests/fixtures").join(name)).unwrap(),
        )
        .unwrap()
    };
    let mut checked = 0;
    let mut failures = Vec::new();
    for (file, kind, code) in [
        ("filters.json", 'S', 1000),
        ("ldap_filters.json", 'L', 1003),
    ] {
        let corpus = load(file);
        for (valid, case) in corpus["valid"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (true, c))
            .chain(
                corpus["invalid"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| (false, c)),
            )
        {
            let kind = if case["strict"] == true { 'T' } else { kind };
            let filter = case["filter"].as_str().unwrap();
            let (line, text) = c.send(&format!("{kind} {}\n", filter.len()), &[filter.as_bytes()]);
            let text = String::from_utf8(text).unwrap();
            let mut fields = line.split_whitespace();
            let result: u32 = fields.next().unwrap().parse().unwrap();
            let position: u64 = fields.next().unwrap().parse().unwrap();
            checked += 1;
            let problem = if valid {
                let canonical = case["canonical"].as_str().unwrap();
                (result != 0 || text != canonical)
                    .then(|| format!("got {result} {text:?}, want {canonical:?}"))
            } else {
                let (want_position, want_text) = if kind != 'L' {
                    (&case["error"]["position"], &case["error"]["contains"])
                } else {
                    (&case["position"], &case["message"])
                };
                (result != code
                    || Some(position) != want_position.as_u64()
                    || !text.contains(want_text.as_str().unwrap()))
                .then(|| format!("got {result} at {position}: {text}; want {code} at {want_position}: {want_text}"))
            };
            if let Some(p) = problem {
                failures.push(format!("{file} {filter:?}: {p}"));
            }
        }
    }
    c.finish();
    assert!(checked >= 250, "{checked} cases");
    assert!(
        failures.is_empty(),
        "{} of {checked} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
