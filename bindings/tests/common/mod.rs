//! What the Rust tests of the C ABI share: string arguments, and a service on a scratch
//! database.
#![allow(dead_code, unsafe_code, clippy::unwrap_used)] // not every test uses every helper

use std::ffi::{CStr, c_char};
use std::ptr::{null, null_mut};

use usersync::*;

/// A string as the pointer and length the C ABI takes.
pub(crate) fn s(text: &str) -> (*const c_char, usize) {
    (text.as_ptr().cast(), text.len())
}

/// A service on a new SQLite database with the SCIM directory `acme` (in a scratch
/// directory that goes when the service is freed); its token.
pub(crate) struct Opened {
    pub(crate) service: *mut usersync_service,
    pub(crate) token: String,
    dir: std::path::PathBuf,
}

impl Opened {
    /// The SQLite database it serves.
    pub(crate) fn db(&self) -> std::path::PathBuf {
        self.dir.join("test.db")
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        usersync_service_free(self.service);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn open(name: &str) -> Opened {
    let dir = std::env::temp_dir().join(format!("usersync-ffi-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("test.db");
    let path = path.to_str().unwrap().to_owned();
    let mut service = null_mut();
    let (p, n) = s(&path);
    assert_eq!(
        usersync_service_open(p, n, null(), 0, &raw mut service),
        usersync_result::Ok
    );
    let mut json = null_mut();
    let (acme, acme_len) = s("acme");
    let (kind, kind_len) = s("scim");
    assert_eq!(
        usersync_directory_create(service, acme, acme_len, kind, kind_len, &raw mut json),
        usersync_result::Ok
    );
    // SAFETY: a NUL-terminated string usersync made.
    let created: serde_json::Value =
        serde_json::from_str(unsafe { CStr::from_ptr(json) }.to_str().unwrap()).unwrap();
    usersync_string_free(json);
    Opened {
        service,
        token: created["token"].as_str().unwrap().to_owned(),
        dir,
    }
}
