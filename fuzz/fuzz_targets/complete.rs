//! Filter completion at any cursor of any text (what the browser asks on every keystroke):
//! never panics; the range it replaces lies within the text, on character boundaries, and
//! contains the cursor; every candidate is non-empty. Also checks the syntax tree as JSON
//! and the undefined-attribute walk on what parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usersync_core::scim::filter::{Filter, ParseOptions, complete};
use usersync_core::scim::schema::SchemaRegistry;

fuzz_target!(|data: &[u8]| {
    let Some((&cursor, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let registry = SchemaRegistry::core();
    let users = registry.resource_type("User").expect("built in");
    let cursor = usize::from(cursor).min(text.len());
    let found = complete(text, cursor, users, &ParseOptions::default());
    let r = found.replace;
    assert!(r.start <= r.end && r.end <= text.len());
    assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
    assert!(r.start <= cursor && (cursor <= r.end || !text.is_char_boundary(cursor)));
    assert!(found.items.iter().all(|i| !i.text.is_empty()));
    if let Ok(filter) = Filter::parse(text) {
        let tree = filter.to_json(&|byte| byte);
        assert!(tree["type"].is_string());
        for path in filter.undefined_attributes(users) {
            assert!(path.span().range().end <= text.len());
        }
    }
});
