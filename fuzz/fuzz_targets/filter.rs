//! SCIM filter parser: never panics; a filter that parses prints a canonical form that
//! parses back and prints the same; an error points inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usersync_core::scim::filter::Filter;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    match Filter::parse(input) {
        Ok(filter) => {
            let printed = filter.to_string();
            let again = Filter::parse(&printed).expect("the canonical form parses");
            assert_eq!(again.to_string(), printed, "printing is stable");
        }
        Err(e) => assert!(e.position().is_some_and(|p| p <= input.len())),
    }
});
