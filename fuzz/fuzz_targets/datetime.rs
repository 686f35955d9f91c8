//! dateTime parser: never panics; a parsed instant prints as text that parses back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usersync_core::scim::datetime::DateTime;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    if let Ok(t) = DateTime::parse(input) {
        assert_eq!(DateTime::parse(&t.to_string()), Ok(t));
    }
});
