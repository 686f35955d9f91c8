//! LDAP responses (RFC 4511 in BER), as a server's bytes arrive: framing and decoding never
//! panic; a message framed from the input decodes or is refused, and one that decodes has
//! the id the cheap look at its header finds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usersync_core::ldap::protocol::{decode, message_id, message_length};

fuzz_target!(|data: &[u8]| {
    match message_length(data) {
        Ok(Some(n)) if n <= data.len() => {
            let message = &data[..n];
            if let Ok(m) = decode(message) {
                assert_eq!(message_id(message), Some(m.id));
            }
        }
        _ => {
            let _ = decode(data);
        }
    }
});
