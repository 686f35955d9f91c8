//! DN keys, of whatever text a server sends as a DN or a `member` value: keying never
//! panics, and a key is its own key (two DNs that key alike stay alike when keyed again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use usersync_core::ldap::dn::dn_key;

fuzz_target!(|data: &[u8]| {
    let dn = String::from_utf8_lossy(data);
    let key = dn_key(&dn);
    assert_eq!(dn_key(&key), key);
});
