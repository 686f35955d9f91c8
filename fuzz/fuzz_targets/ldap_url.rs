//! LDAP URLs, as a configuration or a server's continuation reference gives them: reading one
//! never panics, and a URL that names a server names a host and a usable port.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usersync_core::ldap::url::{host_and_port, names_a_naming_context};

fuzz_target!(|data: &[u8]| {
    let url = String::from_utf8_lossy(data);
    if let Some((host, port, _)) = host_and_port(&url) {
        assert!(!host.is_empty() && !host.contains('/') && port != 0, "{url}");
    }
    let _ = names_a_naming_context(&url);
});
