//! Filter evaluation: the first line is a filter, the rest a JSON resource. Binding to the
//! User and Group types and matching never panic, whatever the filter and the JSON hold.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use usersync_core::scim::filter::Filter;
use usersync_core::scim::schema::SchemaRegistry;

static REGISTRY: LazyLock<SchemaRegistry> = LazyLock::new(SchemaRegistry::core);

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let (filter, json) = input.split_once('\n').unwrap_or((input, "{}"));
    let Ok(filter) = Filter::parse(filter) else { return };
    let Ok(resource) = serde_json::from_str::<serde_json::Value>(json) else { return };
    for rt in REGISTRY.resource_types() {
        if let Ok(compiled) = filter.compile(rt) {
            let hit = compiled.matches(&resource);
            // `not` must invert exactly, whatever the data.
            let negated = Filter::parse(&format!("not ({filter})")).expect("negation parses");
            assert_eq!(negated.compile(rt).expect("binds").matches(&resource), !hit);
        }
    }
});
