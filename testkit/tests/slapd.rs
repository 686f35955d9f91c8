//! The harness itself: slapd starts, takes entries, enforces its paging limit, and stops.

use std::process::Command;

use usersync_testkit::{BASE, Slapd};

#[test]
fn slapd_starts_takes_entries_and_stops() {
    let slapd = Slapd::start("harness");
    slapd.add(&format!(
        "dn: uid=jdoe,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: jdoe\ncn: Jane Doe\nsn: Doe\n"
    ));
    let out = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            &slapd.url,
            "-b",
            BASE,
            "(uid=jdoe)",
            "entryUUID",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("entryUUID: "), "{text}");
    // The test CA verifies the ldaps port.
    let out = Command::new("ldapsearch")
        .env("LDAPTLS_CACERT", &slapd.certificates.ca)
        .args([
            "-x",
            "-LLL",
            "-H",
            &slapd.ldaps_url,
            "-b",
            BASE,
            "(uid=jdoe)",
            "dn",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = slapd.pid().unwrap();
    drop(slapd);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}
