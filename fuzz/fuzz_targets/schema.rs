//! Schema loader: never panics; a schema that loads writes out JSON that loads back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usersync_core::scim::schema::Schema;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    if let Ok(schema) = Schema::from_json(input) {
        let again = Schema::from_value(&schema.to_json()).expect("written schema loads");
        assert_eq!(again, schema);
    }
});
