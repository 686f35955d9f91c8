//! `include/usersync.h` is generated from this crate: the committed header must be what
//! cbindgen makes of the code now, version macros included. `USERSYNC_BLESS=1 cargo test -p
//! usersync-ffi --test header` rewrites it after an intended change.
#![allow(clippy::unwrap_used)] // test support

use std::path::PathBuf;

fn generate() -> String {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    config.after_includes = Some(format!(
        "\n#define USERSYNC_VERSION_MAJOR {}\n#define USERSYNC_VERSION_MINOR {}\n#define USERSYNC_VERSION_PATCH {}\n#define USERSYNC_VERSION \"{}\"",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION"),
    ));
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .unwrap()
        .write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn the_committed_header_is_fresh() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../include/usersync.h");
    let fresh = generate();
    if std::env::var_os("USERSYNC_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/usersync.h is stale: run `USERSYNC_BLESS=1 cargo test -p usersync-ffi --test header` and commit it"
    );
}

#[test]
fn the_version_macros_match_cargo_toml() {
    let header = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../include/usersync.h"),
    )
    .unwrap();
    let manifest =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap();
    let mut parts = version.split('.');
    for name in ["MAJOR", "MINOR", "PATCH"] {
        let line = format!("#define USERSYNC_VERSION_{name} {}", parts.next().unwrap());
        assert!(header.contains(&line), "the header lacks `{line}`");
    }
    assert!(header.contains(&format!("#define USERSYNC_VERSION \"{version}\"")));
}
