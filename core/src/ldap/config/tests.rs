use super::*;

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_examples_are_valid() {
    let files = examples();
    assert!(files.len() >= 2, "{files:?}");
    for f in files {
        SyncConfig::from_file(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    let c = SyncConfig::from_file(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/openldap.toml"),
    )
    .unwrap();
    assert_eq!(c.connection.tls, Tls::StartTls);
    assert_eq!(
        c.connection.bind_password,
        Some(Secret::Env("USERSYNC_LDAP_PASSWORD".into()))
    );
    assert_eq!(c.users.attributes.len(), 8);
    let display = c
        .users
        .attributes
        .iter()
        .find(|(p, _)| p.to_string() == "displayName")
        .unwrap();
    assert_eq!(
        display.1,
        Source::Template(vec![
            Piece::Attribute("givenName".into()),
            Piece::Text(" ".into()),
            Piece::Attribute("sn".into())
        ])
    );
    let ad = SyncConfig::from_file(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/active-directory.toml"),
    )
    .unwrap();
    assert_eq!(ad.connection.tls, Tls::Ldaps);
    assert_eq!(
        ad.users.active,
        Some(Source::Attribute {
            name: "userAccountControl".into(),
            transform: Transform::BitClear(2)
        })
    );
}

/// `kind = "active_directory"` gives AD's defaults; keys given still win; a simple bind
/// without transport security is refused before any connection.
#[test]
fn the_active_directory_preset() {
    let text = r#"
directory = "ad"
kind = "active_directory"
[connection]
urls = ["ldap://dc.example.test"]
bind_dn = "CN=usersync,DC=example,DC=test"
bind_password_env = "X"
[users]
base = "DC=example,DC=test"
[groups]
base = "DC=example,DC=test"
"#;
    let c = SyncConfig::from_toml(text).unwrap();
    assert_eq!(c.kind, ServerKind::ActiveDirectory);
    assert_eq!(c.connection.tls, Tls::StartTls);
    assert_eq!(
        c.users.filter.to_string(),
        "(&(objectCategory=person)(objectClass=user))"
    );
    assert_eq!(
        (c.users.anchor.as_str(), c.users.anchor_is_binary),
        ("objectGUID", true)
    );
    assert_eq!(c.users.user_name, "sAMAccountName");
    assert_eq!(
        c.users.active,
        Some(Source::Attribute {
            name: "userAccountControl".into(),
            transform: Transform::BitClear(2)
        })
    );
    let groups = c.groups.unwrap();
    assert_eq!(groups.filter.to_string(), "(objectClass=group)");
    assert_eq!(
        (groups.anchor.as_str(), groups.anchor_is_binary),
        ("objectGUID", true)
    );

    let upn = text.replace(
        "[users]\n",
        "[users]\nuser_name = \"userPrincipalName\"\nanchor = \"objectSid\"\n",
    );
    let c = SyncConfig::from_toml(&upn).unwrap();
    assert_eq!(c.users.user_name, "userPrincipalName");
    assert_eq!(
        (c.users.anchor.as_str(), c.users.anchor_is_binary),
        ("objectSid", false)
    );

    let plain = text.replace(
        "urls = [\"ldap://dc.example.test\"]",
        "urls = [\"ldap://dc.example.test\"]\ntls = \"none\"",
    );
    let err = SyncConfig::from_toml(&plain).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("connection.tls"), "{err}");
    assert!(err.to_string().contains("transport security"), "{err}");
    // The matching rule scopes users without reading groups, on AD only.
    let scoped = text.replace(
        "[users]\n",
        "[users]\nonly_members_of = [\"CN=Staff,DC=example,DC=test\"]\nonly_members_of_via = \"matching_rule\"\n",
    );
    let without_groups = &scoped[..scoped.find("[groups]").unwrap()];
    let c = SyncConfig::from_toml(without_groups).unwrap();
    assert_eq!(c.users.only_members_of_via, ScopeVia::MatchingRule);
    let err = SyncConfig::from_toml(&without_groups.replace("kind = \"active_directory\"\n", ""))
        .unwrap_err();
    assert_eq!(
        err.key.as_deref(),
        Some("users.only_members_of_via"),
        "{err}"
    );
    // Primary groups need member DNs (or memberOf).
    let err = SyncConfig::from_toml(&format!(
        "{text}membership = \"memberUid\"\nprimary_group = true\n"
    ))
    .unwrap_err();
    assert_eq!(err.key.as_deref(), Some("groups.primary_group"), "{err}");
    // Plain LDAP servers keep their defaults.
    let c = SyncConfig::from_toml(MINIMAL).unwrap();
    assert_eq!(c.kind, ServerKind::Ldap);
    assert!(!c.users.anchor_is_binary);
}

const MINIMAL: &str = r#"
directory = "corp"
[connection]
urls = ["ldap://127.0.0.1:389"]
[users]
base = "ou=people,dc=example,dc=com"
"#;

#[test]
fn defaults_fill_what_is_left_out() {
    let c = SyncConfig::from_toml(MINIMAL).unwrap();
    assert_eq!(c.users.anchor, "entryUUID");
    assert_eq!(c.users.user_name, "uid");
    assert_eq!(c.users.scope, Scope::Sub);
    assert_eq!(c.users.filter.to_string(), "(objectClass=inetOrgPerson)");
    assert_eq!(c.connection.page_size, 500);
    assert_eq!(c.connection.tls, Tls::StartTls);
    assert_eq!(c.policy.removal, Removal::Deactivate);
    assert_eq!(c.schedule.interval_seconds, 3600);
    assert_eq!(c.schedule.retry_seconds, 60);
    assert!(c.schedule.cron.is_none());
    assert!(c.groups.is_none());
    let nightly =
        SyncConfig::from_toml(&merge(MINIMAL, "[schedule]\ncron = \"30 2 * * *\"")).unwrap();
    assert_eq!(
        nightly.schedule.cron.map(|c| c.to_string()).as_deref(),
        Some("30 2 * * *")
    );
}

/// Mapped paths are kept as the schema spells them, whatever case the file uses: two keys
/// that differ in case write one attribute.
#[test]
fn mapped_paths_take_the_schemas_spelling() {
    let c = SyncConfig::from_toml(&merge(
        MINIMAL,
        r#"[users.attributes]
"NAME.familyname" = "sn"
"urn:ietf:params:scim:schemas:core:2.0:User:Title" = "title"
'EMAILS[type eq "work"].VALUE' = "mail"
"URN:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:User:employeenumber" = "employeeNumber"
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:Manager.Value" = "manager"
"#,
    ))
    .unwrap();
    let mut paths: Vec<String> = c
        .users
        .attributes
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "emails[type eq \"work\"].value",
            "name.familyName",
            "title",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        ]
    );
    let err = SyncConfig::from_toml(&merge(
        MINIMAL,
        "[users.attributes]\n'emails[type eq \"work\"].nope' = \"mail\"",
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("is not an attribute of SCIM users"),
        "{err}"
    );
    // Two keys for one attribute: which would win is not for the reader to guess.
    let err = SyncConfig::from_toml(&merge(
        MINIMAL,
        "[users.attributes]\ntitle = \"title\"\nTITLE = \"description\"",
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`users.attributes.\"title\"`: another key maps `title` too: keep one"
    );
}

/// Each broken configuration gets an error that names the key (or the line) and the fix.
#[test]
fn errors_name_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("", "connection", "missing field `directory`"),
        (
            r#"directory = "bad name""#,
            "",
            "`directory`: invalid directory name `bad name`",
        ),
        (
            "[connection]\nurls = []",
            "",
            "`connection.urls`: list at least one server URL",
        ),
        (
            "[connection]\nurls = [\"http://x\"]",
            "",
            "`connection.urls`: `http://x`: a server URL starts with ldap:// or ldaps://",
        ),
        (
            "[connection]\nurls = [\"ldap://dc1:ldap\"]",
            "",
            "`connection.urls`: `ldap://dc1:ldap` has no host, or a port that is not a number",
        ),
        (
            "[connection]\nurls = [\"ldaps://a\", \"ldap://b\"]",
            "",
            "mix of ldap:// and ldaps://",
        ),
        (
            "[connection]\ntls = \"ldaps\"",
            "",
            "`connection.tls`: `ldaps` needs ldaps:// URLs",
        ),
        ("[connection]\ntls = \"ssl\"", "", "unknown variant `ssl`"),
        (
            "[connection]\nbind_password_env = \"P\"",
            "",
            "`connection.bind_dn`: a bind password needs the DN to bind as",
        ),
        (
            "[connection]\npage_size = 0",
            "",
            "`connection.page_size`: must be from 1 to 2147483647",
        ),
        (
            "[connection]\npage_size = 3000000000",
            "",
            "`connection.page_size`: must be from 1 to 2147483647",
        ),
        (
            "[connection]\nurls = [\"ldap://2001:db8::1\"]",
            "",
            "`connection.urls`",
        ),
        (
            "[connection]\nbind_pasword_env = \"P\"",
            "",
            "unknown field `bind_pasword_env`",
        ),
        (
            "[users]\nfilter = \"objectClass=person\"",
            "",
            "`users.filter`: invalid LDAP filter: a filter starts with `(`: write `(objectClass=person)` at byte 0",
        ),
        (
            "[users]\nfilter = \"(cn=a\"",
            "",
            "`users.filter`: invalid LDAP filter: expected `)` to end the value",
        ),
        (
            "[users]\nbase = \"people\"",
            "",
            "`users.base`: `people` is not a DN",
        ),
        (
            "[users]\nuser_name = \"user name\"",
            "",
            "`users.user_name`: `user name` is not an LDAP attribute name",
        ),
        (
            "[users.attributes]\n\"nickname.x.y\" = \"cn\"",
            "",
            "`users.attributes.\"nickname.x.y\"`: invalid path",
        ),
        (
            "[users.attributes]\n\"shoeSize\" = \"cn\"",
            "",
            "`shoeSize` is not an attribute of SCIM users",
        ),
        (
            "[users.attributes]\n\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName\" = \"cn\"",
            "",
            "manager.displayName` is read-only in SCIM: the server sets it",
        ),
        (
            "[users.attributes]\n\"userName\" = \"cn\"",
            "",
            "userName comes from `users.user_name`",
        ),
        (
            "[users.attributes]\n\"title\" = { attribute = \"t\", transform = \"reverse\" }",
            "",
            "unknown transform `reverse`",
        ),
        (
            "[users.attributes]\n\"title\" = { attribute = \"t\", constant = \"x\" }",
            "",
            "give exactly one of `attribute`, `template` or `constant`",
        ),
        (
            "[users.attributes]\n\"title\" = \"{givenName\"",
            "",
            "`{` without `}`",
        ),
        (
            "[users]\nonly_members_of = [\"cn=x,dc=y\"]",
            "",
            "`users.only_members_of`: needs a [groups] section",
        ),
        (
            "[policy]\nmax_deletion_percent = 150",
            "",
            "`policy.max_deletion_percent`: 150 is not a percentage",
        ),
        (
            "[groups]\nbase = \"ou=g,dc=x\"\nmembership = \"members\"",
            "",
            "unknown variant `members`",
        ),
        ("[connection]\nurls = [\"ldap://a\"\n", "", "column"),
        (
            "[schedule]\ncron = \"0 2 * *\"",
            "",
            "`schedule.cron`: `0 2 * *` is not a cron expression",
        ),
        (
            "[schedule]\ncron = \"0 2 * * *\"\ninterval = \"1h\"",
            "",
            "`schedule.cron`: give either an interval or a cron expression, not both",
        ),
        (
            "[schedule]\ncron = \"0 0 30 2 *\"",
            "",
            "`schedule.cron`: `0 0 30 2 *` names no time from now on",
        ),
        (
            "[schedule]\ninterval = \"9999999999999999d\"",
            "",
            "`schedule.interval`: `9999999999999999d` is too long",
        ),
        (
            "[schedule]\ninterval = \"3651d\"",
            "",
            "`schedule.interval`: `3651d` is longer than 3650 days",
        ),
        (
            "[incremental]\nfull_every = \"99999999999999999999d\"",
            "",
            "`incremental.full_every`: `99999999999999999999d` is not a duration",
        ),
        (
            "[incremental]\nenabled = false\noverlap = \"banana\"",
            "",
            "`incremental.overlap`: `banana` is not a duration",
        ),
    ];
    for (patch, _, expected) in cases {
        let text = merge(MINIMAL, patch);
        let err = SyncConfig::from_toml(&text).expect_err(patch).to_string();
        assert!(
            err.contains(expected),
            "{patch:?}\n  got: {err}\n  want: {expected}"
        );
    }
}

/// `MINIMAL` with the keys of `patch` replacing or adding to its sections.
fn merge(base: &str, patch: &str) -> String {
    if patch.is_empty() {
        return String::new();
    }
    if !patch.starts_with('[') {
        // A top-level key replaces the directory line.
        return base.replacen("directory = \"corp\"", patch, 1);
    }
    let section = patch.lines().next().unwrap();
    let body: Vec<&str> = patch.lines().skip(1).collect();
    if base.contains(section) {
        let mut out = Vec::new();
        let mut skipping = false;
        for line in base.lines() {
            if line == section {
                out.push(line.to_owned());
                out.extend(body.iter().map(|l| (*l).to_owned()));
                skipping = true;
                continue;
            }
            if skipping && line.starts_with('[') {
                skipping = false;
            }
            let key = line.split('=').next().unwrap_or("").trim();
            if skipping
                && body
                    .iter()
                    .any(|b| b.split('=').next().unwrap_or("").trim() == key)
            {
                continue;
            }
            out.push(line.to_owned());
        }
        out.join("\n")
    } else {
        format!("{base}\n{patch}\n")
    }
}

#[test]
fn secrets_are_read_only_when_needed() {
    let text = MINIMAL.replace(
        "urls = [\"ldap://127.0.0.1:389\"]",
        "urls = [\"ldap://127.0.0.1:389\"]\nbind_dn = \"cn=admin,dc=example,dc=com\"\nbind_password_env = \"USERSYNC_TEST_SURELY_UNSET\"",
    );
    let c = SyncConfig::from_toml(&text).unwrap();
    let err = c.connection.bind_password.unwrap().read().unwrap_err();
    assert_eq!(
        err.to_string(),
        "`connection.bind_password_env`: the environment variable `USERSYNC_TEST_SURELY_UNSET` is not set"
    );
}
