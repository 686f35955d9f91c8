//! Workloads shared by the usersync benchmarks, so that criterion, the peer comparison and
//! every peer see exactly the same filters and users.

use std::path::PathBuf;

use serde_json::{Value, json};

/// The repository's fixture directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// The shared filter corpus (`tests/fixtures/filters.json`).
///
/// # Panics
/// When the fixture is missing or malformed: benchmarks cannot run without it.
pub fn filter_corpus() -> Value {
    let path = fixtures_dir().join("filters.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The valid filters of the corpus that a user would type: every case but the ones that
/// probe the parser's limits (thousands of terms or dozens of parentheses), which would
/// dominate the byte count.
pub fn typical_filters() -> Vec<String> {
    filter_corpus()["valid"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["strict"] != true)
        .filter(|c| !c["note"].as_str().is_some_and(|n| n.contains("limit")))
        .filter_map(|c| c["filter"].as_str().map(str::to_owned))
        .collect()
}

/// Filters an identity provider or an admin runs against users, evaluated over
/// [`users`] by the evaluation benchmarks.
pub const EVAL_FILTERS: &[&str] = &[
    r#"userName eq "user00042@example.com""#,
    r#"externalId eq "ext-00042""#,
    r#"emails[type eq "work" and value co "@example.com"]"#,
    r#"title pr and userType eq "Employee""#,
    r#"meta.lastModified gt "2024-06-01T00:00:00Z""#,
    "active eq true",
    r#"name.familyName sw "Sm""#,
    r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
    r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Engineering""#,
    r#"not (phoneNumbers[type eq "mobile"])"#,
];

/// A small deterministic generator (xorshift64*), so every run and every language sees the
/// same users without a random-number dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// `n` realistic SCIM users with the Enterprise extension, the same for a given `n` on every
/// run.
pub fn users(n: usize) -> Vec<Value> {
    const GIVEN: &[&str] = &[
        "Barbara", "John", "Amira", "Chen", "Olga", "Kwame", "Lucía", "Henrik",
    ];
    const FAMILY: &[&str] = &[
        "Jensen",
        "Smith",
        "Smolder",
        "Okafor",
        "Novak",
        "García",
        "Lindqvist",
    ];
    const TITLES: &[&str] = &[
        "Tour Guide",
        "Engineer",
        "Accountant",
        "Director",
        "Analyst",
    ];
    const TYPES: &[&str] = &["Employee", "Employee", "Employee", "Contractor", "Intern"];
    const DEPARTMENTS: &[&str] = &["Engineering", "Sales", "Finance", "Operations", "Legal"];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|i| {
            let given = rng.pick(GIVEN);
            let family = rng.pick(FAMILY);
            let id = format!("{:016x}-{:04x}", rng.next(), i);
            let mut emails = vec![json!({
                "value": format!("user{i:05}@example.com"), "type": "work", "primary": true
            })];
            if rng.chance(40) {
                emails.push(json!({"value": format!("home{i:05}@example.org"), "type": "home"}));
            }
            let mut phones = vec![json!({"value": format!("+1 555 {:04}", i % 10_000), "type": "work"})];
            if rng.chance(50) {
                phones.push(json!({"value": format!("+1 555 9{:03}", i % 1000), "type": "mobile"}));
            }
            let day = rng.below(900);
            let modified = format!(
                "{}-{:02}-{:02}T{:02}:{:02}:00Z",
                2023 + day / 360,
                day % 360 / 30 + 1,
                day % 28 + 1,
                rng.below(24),
                rng.below(60)
            );
            let mut user = json!({
                "schemas": [
                    "urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
                ],
                "id": id,
                "externalId": format!("ext-{i:05}"),
                "userName": format!("user{i:05}@example.com"),
                "name": {"givenName": given, "familyName": family, "formatted": format!("{given} {family}")},
                "displayName": format!("{given} {family}"),
                "userType": rng.pick(TYPES),
                "active": rng.chance(85),
                "emails": emails,
                "phoneNumbers": phones,
                "meta": {
                    "resourceType": "User",
                    "created": "2023-01-01T00:00:00Z",
                    "lastModified": modified,
                    "version": format!("W/\"{:x}\"", rng.next() % 100_000)
                },
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "employeeNumber": format!("{}", 100_000 + i),
                    "department": rng.pick(DEPARTMENTS),
                    "manager": {"value": format!("{:016x}", rng.next())}
                }
            });
            if rng.chance(70) {
                user["title"] = json!(rng.pick(TITLES));
            }
            user
        })
        .collect()
}

/// Peak resident memory (VmHWM), and what is resident now split into mapped files (the
/// memory-mapped database, which the kernel drops at will) and the process's own memory.
pub fn memory_report() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| "unknown".into())
    };
    format!(
        "{} (now resident: {} mapped files such as the database, {} own memory)",
        field("VmHWM"),
        field("RssFile"),
        field("RssAnon")
    )
}

/// The users and groups an LDAP sync benchmark imports under `base`, and how users map to
/// SCIM: the part of the configuration `usersync-ldap-bench` and the plan benchmark share.
pub fn sync_selection(base: &str) -> String {
    format!(
        r#"[users]
base = "ou=people,{base}"
[users.attributes]
"name.givenName" = "givenName"
"name.familyName" = "sn"
'emails[type eq "work"].value' = {{ attribute = "mail", transform = "lowercase" }}
"title" = "title"
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" = "departmentNumber"
[groups]
base = "ou=groups,{base}"
"#
    )
}
