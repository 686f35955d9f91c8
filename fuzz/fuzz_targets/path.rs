//! SCIM PATCH path parser: never panics; a path that parses prints a canonical form that
//! parses back and prints the same; an error points inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usersync_core::scim::path::PatchPath;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    match PatchPath::parse(input) {
        Ok(path) => {
            let printed = path.to_string();
            let again = PatchPath::parse(&printed).expect("the canonical form parses");
            assert_eq!(again.to_string(), printed, "printing is stable");
        }
        Err(e) => assert!(e.position().is_some_and(|p| p <= input.len())),
    }
});
