//! `usersync check-filter` run as a real process, the way an operator runs it.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn usersync(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_usersync"))
        .args(args)
        .output()
        .expect("usersync runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

#[test]
fn valid_filter_prints_its_canonical_form() {
    let out = usersync(&["check-filter", r#"userName Eq "bjensen" AND not(title pr)"#]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "userName eq \"bjensen\" and not (title pr)\n"
    );
}

#[test]
fn invalid_filter_shows_a_caret_under_the_problem() {
    let out = usersync(&["check-filter", r#"userName "bjensen""#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        "error: expected a comparison operator after `userName`, found `\"bjensen\"` at byte 9\n\
         \x20 userName \"bjensen\"\n\
         \x20          ^^^^^^^^^\n"
    );
}

#[test]
fn caret_counts_characters_not_bytes() {
    let out = usersync(&["check-filter", "displayName eq \"Zoë\" oops"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines[1], "  displayName eq \"Zoë\" oops");
    assert_eq!(lines[2], format!("  {}^^^^", " ".repeat(21)));
}

#[test]
fn resource_type_catches_type_errors() {
    let out = usersync(&["check-filter", "--resource-type", "User", "active gt true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: `gt` cannot order booleans (`active`) at byte 0")
    );
    let out = usersync(&["check-filter", "active gt true"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "without a resource type only syntax is checked"
    );
    let out = usersync(&["check-filter", "--resource-type", "Device", "a pr"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no resource type `Device` (known: User, Group)"));
}

#[test]
fn paths_and_strict_mode() {
    let out = usersync(&["check-filter", "--path", r#"EMAILS[type EQ "work"].value"#]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "EMAILS[type eq \"work\"].value\n");
    let entra = r#"emails[type eq "work"].value eq "a@example.com""#;
    assert_eq!(usersync(&["check-filter", entra]).status.code(), Some(0));
    let out = usersync(&["check-filter", "--strict", "--json", entra]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["position"], 22);
    assert_eq!(v["error"]["kind"], "invalidFilter");
    let out = usersync(&["check-filter", "--path", "--json", "name.givenName.x"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "invalidPath");
    assert_eq!(v["error"]["position"], 14);
}

#[test]
fn ldap_filters_are_checked_with_a_caret() {
    let out = usersync(&[
        "check-filter",
        "--ldap",
        "(&(objectClass=person)(CN=Jane*))",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "(&(objectClass=person)(CN=Jane*))\n");
    let out = usersync(&["check-filter", "--ldap", "(cn=a(b)"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: `(` in a value must be escaped as `\\28` (and `)` as `\\29`) at byte 5\n\
         \x20 (cn=a(b)\n\
         \x20      ^\n"
    );
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ldap_filters.json");
    let corpus: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for case in corpus["valid"].as_array().unwrap() {
        let out = usersync(&[
            "check-filter",
            "--ldap",
            "--json",
            case["filter"].as_str().unwrap(),
        ]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["canonical"], case["canonical"], "{case}");
    }
    for case in corpus["invalid"].as_array().unwrap() {
        let out = usersync(&[
            "check-filter",
            "--ldap",
            "--json",
            case["filter"].as_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["error"]["position"], case["position"], "{case}");
        assert_eq!(v["error"]["kind"], "invalidLdapFilter");
    }
}

/// Every case of the shared corpus gives the same verdict through the command line.
#[test]
fn json_output_agrees_with_the_fixture_corpus() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/filters.json");
    let corpus: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // A command-line argument cannot carry a NUL byte; those cases are for the library only.
    let passable = |case: &&Value| !case["filter"].as_str().unwrap().contains('\0');
    let run = |case: &Value| -> Value {
        let filter = case["filter"].as_str().unwrap();
        let mut args = vec!["check-filter", "--json"];
        if case["strict"] == true {
            args.push("--strict");
        }
        args.extend(["--", filter]);
        let out = usersync(&args);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            out.status.code(),
            Some(if v["valid"] == true { 0 } else { 1 })
        );
        v
    };
    for case in corpus["valid"].as_array().unwrap().iter().filter(passable) {
        let v = run(case);
        assert_eq!(v["valid"], true, "{case}");
        assert_eq!(v["canonical"], case["canonical"], "{case}");
    }
    for case in corpus["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .filter(passable)
    {
        let v = run(case);
        assert_eq!(v["valid"], false, "{case}");
        assert_eq!(v["error"]["position"], case["error"]["position"], "{case}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(case["error"]["contains"].as_str().unwrap()),
            "{case}: {message}"
        );
        assert_eq!(v["error"]["kind"], "invalidFilter");
    }
}

/// The README's command-line transcript, replayed: each `$ usersync …` line is run and its
/// output compared with the lines under it.
#[test]
fn readme_transcript_is_true() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let block = readme
        .split("```console\n")
        .nth(1)
        .expect("a console block")
        .split("```")
        .next()
        .unwrap();
    let mut commands = 0;
    let mut lines = block.lines().peekable();
    while let Some(line) = lines.next() {
        let command = line.strip_prefix("$ usersync ").expect("a command line");
        let args = shell_words(command);
        let mut expected = String::new();
        while let Some(next) = lines.peek().filter(|l| !l.starts_with("$ ")) {
            expected.push_str(next);
            expected.push('\n');
            lines.next();
        }
        let out = usersync(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(shown, expected, "README: {line}");
        commands += 1;
    }
    assert!(commands >= 3);
}

/// Splits a command line on spaces, keeping single-quoted words whole (enough for the README).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('\'') {
            let end = quoted.find('\'').expect("closing quote");
            words.push(quoted[..end].to_owned());
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            words.push(rest[..end].to_owned());
            rest = rest[end..].trim_start();
        }
    }
    words
}
