//! LDAP filter parser (RFC 4515): never panics; a filter that parses prints a canonical form
//! that parses back to the same filter; an error's span lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usersync_core::ldap::filter::LdapFilter;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    match LdapFilter::parse(input) {
        Ok(filter) => {
            let printed = filter.to_string();
            let again = LdapFilter::parse(&printed).expect("the canonical form parses");
            assert_eq!(again, filter, "printing keeps the filter");
        }
        Err(e) => {
            let span = e.syntax().expect("a syntax error").span();
            assert!(span.start <= span.end && span.end <= input.len());
        }
    }
});
