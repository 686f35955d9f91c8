//! The SCIM service: any method, path, query, headers and body. Never a panic, never a 500
//! (the in-memory store cannot fail, so a 500 would be a bug).
//!
//! Input: method, path, query and one header (`Name: value`) on the first four lines; the
//! rest is the body.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use usersync_core::scim::service::{ScimRequest, Service, ServiceConfig, new_ids};
use usersync_core::scim::schema::SchemaRegistry;
use usersync_core::store::memory::MemoryStore;
use usersync_core::store::{DirectoryKind, Kind, NewDirectory, NewResource, Store, system_clock};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(5, '\n');
    let method = lines.next().unwrap_or("").to_owned();
    let path = lines.next().unwrap_or("").to_owned();
    let query = lines.next().unwrap_or("").to_owned();
    let header = lines.next().unwrap_or("");
    let body = lines.next().unwrap_or("").as_bytes().to_vec();
    let mut headers = vec![("Content-Type".to_owned(), "application/scim+json".to_owned())];
    if let Some((name, value)) = header.split_once(':') {
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }

    let store = Arc::new(MemoryStore::new(system_clock()));
    let acme = store.create_directory(NewDirectory::new("acme", DirectoryKind::Scim)).expect("fresh store");
    for (kind, id, name) in [(Kind::User, "u1", "bjensen"), (Kind::Group, "g1", "Staff")] {
        let attributes = match kind {
            Kind::User => serde_json::json!({"userName": name, "emails": [{"value": "b@example.com", "type": "work"}]}),
            Kind::Group => serde_json::json!({"displayName": name}),
        };
        store
            .create(NewResource {
                directory: acme.id,
                kind,
                id: id.into(),
                external_id: None,
                name: name.into(),
                active: true,
                attributes,
                members: Vec::new(),
                password: None,
            })
            .expect("fresh store");
    }
    // A directory that keeps password hashes: passwords are hashed and checked there.
    store
        .create_directory(NewDirectory {
            keep_password_hashes: true,
            ..NewDirectory::new("okta", DirectoryKind::Scim)
        })
        .expect("fresh store");
    let config = ServiceConfig::default().with_require_token(false);
    let service = Service::with(store, SchemaRegistry::core(), config, new_ids());
    let response = service.handle(&ScimRequest { method, path, query, headers, body });
    assert_ne!(response.status, 500, "a bad request must not be a server error");
    assert!((200..600).contains(&response.status));
});
