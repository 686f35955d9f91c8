//! The service driven the way an identity provider drives it, over the in-memory and the
//! SQLite store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::*;
use crate::store::memory::MemoryStore;
use crate::store::{DirectoryKind, NewDirectory, system_clock};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A service over `store` with ids `id1`, `id2`, … and directories `acme` and `other`.
fn service_over(store: Arc<dyn Store>) -> Service {
    store
        .create_directory(NewDirectory::new("acme", DirectoryKind::Scim))
        .unwrap();
    store
        .create_directory(NewDirectory::new("other", DirectoryKind::Scim))
        .unwrap();
    let n = Arc::new(AtomicU64::new(0));
    let ids: IdGenerator = Arc::new(move || format!("id{}", n.fetch_add(1, Ordering::SeqCst) + 1));
    // These tests are about the protocol; `tokens_guard_each_directory` checks tokens.
    let config = ServiceConfig {
        require_token: false,
        ..ServiceConfig::default()
    };
    Service::with(store, SchemaRegistry::core(), config, ids)
}

/// The service over each store: in memory, SQLite and PostgreSQL (a private server, which
/// the iterator stops when the test is done with it).
fn services() -> Services {
    let mut all = vec![service_over(Arc::new(MemoryStore::new(system_clock())))];
    #[cfg(feature = "sqlite")]
    all.push(service_over(Arc::new(
        crate::store::sqlite::SqliteStore::open_in_memory(system_clock()).unwrap(),
    )));
    #[cfg(feature = "postgres")]
    let server = {
        let server = usersync_testkit::postgres::Postgres::start("service");
        let url = server.create_database("service");
        all.push(service_over(Arc::new(
            crate::store::postgres::PostgresStore::open(&url, system_clock()).unwrap(),
        )));
        server
    };
    Services {
        all: all.into_iter(),
        #[cfg(feature = "postgres")]
        _server: server,
    }
}

/// [`services`], keeping the PostgreSQL server up while they are used.
struct Services {
    all: std::vec::IntoIter<Service>,
    #[cfg(feature = "postgres")]
    _server: usersync_testkit::postgres::Postgres,
}

impl Iterator for Services {
    type Item = Service;
    fn next(&mut self) -> Option<Service> {
        self.all.next()
    }
}

struct Reply {
    status: u16,
    body: Value,
    response: ScimResponse,
}

fn call(s: &Service, req: ScimRequest) -> Reply {
    let response = s.handle(&req);
    let body = if response.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&response.body).unwrap()
    };
    Reply {
        status: response.status,
        body,
        response,
    }
}

fn post(s: &Service, path: &str, body: Value) -> Reply {
    call(
        s,
        ScimRequest::new("POST", path).with_body(&body.to_string()),
    )
}

fn get(s: &Service, path: &str, query: &str) -> Reply {
    call(s, ScimRequest::new("GET", path).with_query(query))
}

fn bjensen() -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "userName": "bjensen",
        "externalId": "bjensen-ext",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "password": "t1meMa$heen",
        "id": "client-chosen",
        ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations"}
    })
}

/// Stores the user `legacy` of `acme` with `attributes` as they are, past the service's
/// checks: as a store written before a rule held.
fn stored_before(s: &Service, attributes: Value) {
    let d = s.store.directory("acme").unwrap().unwrap().id;
    s.store
        .create(crate::store::NewResource {
            directory: d,
            kind: Kind::User,
            id: "legacy".into(),
            external_id: None,
            name: attributes["userName"].as_str().unwrap().to_owned(),
            active: true,
            attributes,
            members: Vec::new(),
            password: None,
        })
        .unwrap();
}

fn assert_error(r: &Reply, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(
        r.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(r.body["status"], status.to_string(), "status is a string");
    assert_eq!(r.body["scimType"].as_str(), scim_type, "{}", r.body);
    assert!(r.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(r.response.header("Content-Type"), Some(SCIM_JSON));
}

#[test]
fn create_read_replace_delete_a_user() {
    for s in services() {
        let created = post(&s, "/scim/v2/acme/Users", bjensen());
        assert_eq!(created.status, 201, "{}", created.body);
        let body = &created.body;
        assert_eq!(body["id"], "id1", "the server chooses the id");
        assert_eq!(
            created.response.header("Location"),
            Some("/scim/v2/acme/Users/id1")
        );
        assert_eq!(created.response.header("ETag"), Some("W/\"1\""));
        assert_eq!(body["meta"]["version"], "W/\"1\"");
        assert_eq!(body["meta"]["resourceType"], "User");
        assert_eq!(body["schemas"], json!([USER, ENTERPRISE]));
        assert_eq!(body[ENTERPRISE]["department"], "Tour Operations");
        assert_eq!(body["active"], true);
        assert!(body.get("password").is_none(), "never returned");

        let read = get(&s, "/scim/v2/acme/Users/id1", "");
        assert_eq!(read.status, 200);
        assert_eq!(read.body, created.body);
        // Without `groups`, which a user's version does not follow (see
        // `a_user_shown_with_its_groups_is_not_answered_304`).
        let not_modified = call(
            &s,
            ScimRequest::new("GET", "/scim/v2/acme/Users/id1")
                .with_query("excludedAttributes=groups")
                .with_header("If-None-Match", "W/\"1\""),
        );
        assert_eq!(not_modified.status, 304);
        assert!(not_modified.response.body.is_empty());

        // PUT replaces: what is left out is cleared.
        let put = call(
            &s,
            ScimRequest::new("PUT", "/scim/v2/acme/Users/id1")
                .with_header("If-Match", "W/\"1\"")
                .with_body(&json!({"schemas": [USER], "userName": "bjensen", "active": false, "title": "Guide"}).to_string()),
        );
        assert_eq!(put.status, 200, "{}", put.body);
        assert_eq!(put.body["meta"]["version"], "W/\"2\"");
        assert_eq!(put.body["active"], false);
        assert!(put.body.get("name").is_none() && put.body.get(ENTERPRISE).is_none());
        let stale = call(
            &s,
            ScimRequest::new("PUT", "/scim/v2/acme/Users/id1")
                .with_header("If-Match", "W/\"1\"")
                .with_body(&json!({"userName": "x"}).to_string()),
        );
        assert_error(&stale, 412, None);
        assert_eq!(
            get(&s, "/scim/v2/acme/Users/id1", "").body["userName"],
            "bjensen",
            "a failed PUT changes nothing"
        );

        assert_error(
            &call(
                &s,
                ScimRequest::new("DELETE", "/scim/v2/acme/Users/id1")
                    .with_header("If-Match", "W/\"1\""),
            ),
            412,
            None,
        );
        assert_eq!(
            call(&s, ScimRequest::new("DELETE", "/scim/v2/acme/Users/id1")).status,
            204
        );
        assert_error(&get(&s, "/scim/v2/acme/Users/id1", ""), 404, None);
        assert_error(
            &call(&s, ScimRequest::new("DELETE", "/scim/v2/acme/Users/id1")),
            404,
            None,
        );
    }
}

#[test]
fn uniqueness_and_bad_bodies() {
    for s in services() {
        assert_eq!(
            post(&s, "/scim/v2/acme/Users", json!({"userName": "bjensen"})).status,
            201
        );
        assert_error(
            &post(&s, "/scim/v2/acme/Users", json!({"userName": "BJensen"})),
            409,
            Some("uniqueness"),
        );
        assert_error(
            &post(&s, "/scim/v2/other/Users", json!({"userName": "bjensen"})),
            409,
            Some("uniqueness"),
        );
        assert_error(
            &post(&s, "/scim/v2/acme/Users", json!({"displayName": "no name"})),
            400,
            Some("invalidValue"),
        );
        assert_error(
            &post(
                &s,
                "/scim/v2/acme/Users",
                json!({"userName": "x", "nickname2": "y"}),
            ),
            400,
            Some("invalidValue"),
        );
        assert_error(
            &post(
                &s,
                "/scim/v2/acme/Users",
                json!({"userName": "x", "active": "yes"}),
            ),
            400,
            Some("invalidValue"),
        );
        assert_error(
            &post(
                &s,
                "/scim/v2/acme/Users",
                json!({"userName": "x", "emails": {"value": "a"}}),
            ),
            400,
            Some("invalidValue"),
        );
        assert_error(
            &post(&s, "/scim/v2/acme/Users", json!(["userName"])),
            400,
            Some("invalidSyntax"),
        );
        let not_json = call(
            &s,
            ScimRequest::new("POST", "/scim/v2/acme/Users").with_body("{\"userName\": "),
        );
        assert_error(&not_json, 400, Some("invalidSyntax"));
        let mut form = ScimRequest::new("POST", "/scim/v2/acme/Users");
        form.headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        form.body = b"userName=x".to_vec();
        assert_error(&call(&s, form), 415, None);
        let mut plain_json = ScimRequest::new("POST", "/scim/v2/acme/Users");
        plain_json.headers.push((
            "content-type".into(),
            "application/json; charset=utf-8".into(),
        ));
        plain_json.body = br#"{"userName": "viajson", "active": "False"}"#.to_vec();
        let r = call(&s, plain_json);
        assert_eq!(r.status, 201, "application/json is accepted");
        assert_eq!(r.body["active"], false, "Entra's string booleans");
        // Nothing of the failed requests was stored.
        assert_eq!(get(&s, "/scim/v2/acme/Users", "").body["totalResults"], 2);
    }
}

#[test]
fn lists_filter_sort_page_and_project() {
    for s in services() {
        for (name, title) in [
            ("carol", "Engineer"),
            ("alice", "Director"),
            ("bob", "Engineer"),
            ("dave", ""),
        ] {
            let mut u = json!({"userName": name, "emails": [{"value": format!("{name}@example.com"), "type": "work"}]});
            if !title.is_empty() {
                u["title"] = json!(title);
            }
            assert_eq!(post(&s, "/scim/v2/acme/Users", u).status, 201);
        }
        let names = |r: &Reply| -> Vec<String> {
            r.body["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["userName"].as_str().unwrap().to_owned())
                .collect()
        };
        let r = get(
            &s,
            "/scim/v2/acme/Users",
            "filter=userName%20eq%20%22ALICE%22",
        );
        assert_eq!((r.status, names(&r)), (200, vec!["alice".to_owned()]));
        let r = get(
            &s,
            "/scim/v2/acme/Users",
            r#"filter=title eq "Engineer"&sortBy=userName"#,
        );
        assert_eq!(names(&r), ["bob", "carol"]);
        assert_eq!(r.body["totalResults"], 2);
        let r = get(
            &s,
            "/scim/v2/acme/Users",
            "sortBy=title&sortOrder=descending",
        );
        assert_eq!(
            names(&r),
            ["carol", "bob", "alice", "dave"],
            "descending, missing values last, ties in id order"
        );
        let r = get(
            &s,
            "/scim/v2/acme/Users",
            "sortBy=userName&startIndex=2&count=2",
        );
        assert_eq!(
            (
                names(&r),
                r.body["startIndex"].clone(),
                r.body["itemsPerPage"].clone(),
                r.body["totalResults"].clone()
            ),
            (
                vec!["bob".to_owned(), "carol".to_owned()],
                json!(2),
                json!(2),
                json!(4)
            )
        );
        let r = get(
            &s,
            "/scim/v2/acme/Users",
            "sortBy=userName&startIndex=0&count=-5",
        );
        assert_eq!(
            (r.body["startIndex"].clone(), r.body["itemsPerPage"].clone()),
            (json!(1), json!(0)),
            "RFC rules for bad values"
        );
        assert_error(
            &get(&s, "/scim/v2/acme/Users", "count=ten"),
            400,
            Some("invalidValue"),
        );
        assert_error(
            &get(&s, "/scim/v2/acme/Users", "filter=userName%20eq"),
            400,
            Some("invalidFilter"),
        );
        assert_error(
            &get(&s, "/scim/v2/acme/Users", "filter=active gt true"),
            400,
            Some("invalidFilter"),
        );
        // Entra's test-connection probe: a random userName finds nothing, and that is a 200.
        let r = get(
            &s,
            "/scim/v2/acme/Users",
            r#"filter=userName eq "4b0e2c3a-8f0e-4c1d-9d59-7e1d4d6f0a11""#,
        );
        assert_eq!((r.status, r.body["totalResults"].clone()), (200, json!(0)));
        // Projection: returned "always" survives, "never" never appears.
        let r = get(
            &s,
            "/scim/v2/acme/Users",
            r#"filter=userName eq "bob"&attributes=emails.value"#,
        );
        let bob = &r.body["Resources"][0];
        assert_eq!(bob["emails"], json!([{"value": "bob@example.com"}]));
        assert!(
            bob.get("id").is_some() && bob.get("userName").is_none() && bob.get("meta").is_none()
        );
        let r = get(
            &s,
            "/scim/v2/acme/Users/id3",
            "excludedAttributes=emails,meta",
        );
        assert!(
            r.body.get("emails").is_none()
                && r.body.get("meta").is_none()
                && r.body["userName"] == "bob"
        );
        assert_error(
            &get(
                &s,
                "/scim/v2/acme/Users",
                "attributes=emails[type eq \"work\"]",
            ),
            400,
            Some("invalidPath"),
        );
        // Another directory sees none of it.
        assert_eq!(get(&s, "/scim/v2/other/Users", "").body["totalResults"], 0);
        assert_error(&get(&s, "/scim/v2/other/Users/id1", ""), 404, None);
    }
}

#[test]
fn groups_and_memberships() {
    for s in services() {
        post(&s, "/scim/v2/acme/Users", json!({"userName": "u1"}));
        post(&s, "/scim/v2/acme/Users", json!({"userName": "u2"}));
        let g = post(
            &s,
            "/scim/v2/acme/Groups",
            json!({"displayName": "Tour Guides", "members": [{"value": "id1"}, {"value": "id2", "type": "User"}]}),
        );
        assert_eq!(g.status, 201, "{}", g.body);
        assert_eq!(g.body["members"].as_array().unwrap().len(), 2);
        assert_eq!(
            g.body["members"][0],
            json!({"value": "id1", "type": "User", "$ref": "/scim/v2/acme/Users/id1"})
        );
        assert_error(
            &post(
                &s,
                "/scim/v2/acme/Groups",
                json!({"displayName": "tour guides"}),
            ),
            409,
            Some("uniqueness"),
        );
        assert_error(
            &post(
                &s,
                "/scim/v2/acme/Groups",
                json!({"displayName": "Ghosts", "members": [{"value": "nobody"}]}),
            ),
            400,
            Some("invalidValue"),
        );
        assert_eq!(
            post(
                &s,
                "/scim/v2/other/Groups",
                json!({"displayName": "Tour Guides"})
            )
            .status,
            201,
            "group names are per directory"
        );
        let r = get(&s, "/scim/v2/acme/Groups/id3", "excludedAttributes=members");
        assert!(r.body.get("members").is_none() && r.body["displayName"] == "Tour Guides");
        let r = get(&s, "/scim/v2/acme/Users/id1", "");
        assert_eq!(
            r.body["groups"],
            json!([{"value": "id3", "type": "direct", "$ref": "/scim/v2/acme/Groups/id3"}])
        );
        // Entra's membership check.
        let r = get(
            &s,
            "/scim/v2/acme/Groups",
            r#"filter=id eq "id3" and members[value eq "id2"]&excludedAttributes=members"#,
        );
        assert_eq!(r.body["totalResults"], 1, "{}", r.body);
        let r = get(
            &s,
            "/scim/v2/acme/Groups",
            r#"filter=id eq "id3" and members[value eq "id9"]"#,
        );
        assert_eq!(r.body["totalResults"], 0);
        let r = get(
            &s,
            "/scim/v2/acme/Groups",
            r#"filter=displayName eq "TOUR GUIDES"&excludedAttributes=members"#,
        );
        assert_eq!(r.body["Resources"][0]["id"], "id3");
        // PUT without members empties the group.
        let r = call(
            &s,
            ScimRequest::new("PUT", "/scim/v2/acme/Groups/id3")
                .with_body(&json!({"displayName": "Guides"}).to_string()),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.body["members"], json!([]));
    }
}

#[test]
fn discovery_routing_and_errors() {
    for s in services() {
        let r = get(&s, "/scim/v2/acme/Schemas", "");
        assert_eq!(r.body["totalResults"], 3);
        let r = get(&s, &format!("/scim/v2/acme/Schemas/{ENTERPRISE}"), "");
        assert_eq!(r.body["attributes"].as_array().unwrap().len(), 6);
        let r = get(&s, "/scim/v2/acme/ResourceTypes/User", "");
        assert_eq!(r.body["schemaExtensions"][0]["schema"], ENTERPRISE);
        let r = get(&s, "/scim/v2/acme/ServiceProviderConfig", "");
        assert_eq!(r.body["patch"]["supported"], true);
        assert_eq!(r.body["bulk"]["maxOperations"], 1000);
        assert_eq!(
            r.body["changePassword"]["supported"], false,
            "truthful about what is missing"
        );
        assert_eq!(r.body["etag"]["supported"], true);
        assert_error(&get(&s, "/scim/v2/acme/Me", ""), 501, None);
        assert_error(&get(&s, "/scim/v2/nope/Users", ""), 404, None);
        assert_error(&get(&s, "/scim/v2/acme/Devices", ""), 404, None);
        assert_error(&get(&s, "/other/path", ""), 404, None);
        let refused = call(&s, ScimRequest::new("DELETE", "/scim/v2/acme/Users"));
        assert_error(&refused, 405, None);
        assert_eq!(refused.response.header("Allow"), Some("GET, HEAD, POST"));
        // HEAD answers as GET (the HTTP server leaves the body out).
        let head = call(&s, ScimRequest::new("HEAD", "/scim/v2/acme/Users"));
        assert_eq!(head.status, 200);
        assert_eq!(head.body, get(&s, "/scim/v2/acme/Users", "").body);
        assert_error(
            &call(&s, ScimRequest::new("PATCH", "/scim/v2/acme/Users/x")),
            404,
            None,
        );
        let huge = format!("{{\"userName\": \"{}\"}}", "x".repeat(2 << 20));
        assert_error(
            &call(
                &s,
                ScimRequest::new("POST", "/scim/v2/acme/Users").with_body(&huge),
            ),
            413,
            None,
        );
    }
}

/// An LDAP directory's users come from its server: SCIM reads them, and its writes are
/// refused (the next sync would undo them).
#[test]
fn an_ldap_directory_is_read_only_over_scim() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(system_clock()));
    let corp = store
        .create_directory(NewDirectory::new("corp", DirectoryKind::Ldap))
        .unwrap();
    let (token, _) = issue_token(&*store, &corp).unwrap();
    let s = Service::new(store.clone());
    let bearer = format!("Bearer {token}");
    let ask = |method: &str, path: &str, body: Option<Value>| {
        let mut r = ScimRequest::new(method, path).with_header("Authorization", &bearer);
        if let Some(b) = body {
            r = r.with_body(&b.to_string());
        }
        call(&s, r)
    };
    let create = ask(
        "POST",
        "/scim/v2/corp/Users",
        Some(json!({"schemas": [USER], "userName": "x"})),
    );
    assert_error(&create, 403, None);
    assert!(
        create.body["detail"]
            .as_str()
            .unwrap()
            .contains("synced from LDAP")
    );
    assert_error(&ask("DELETE", "/scim/v2/corp/Users/x", None), 403, None);
    assert_error(
        &ask(
            "POST",
            "/scim/v2/corp/Bulk",
            Some(json!({"schemas": [], "Operations": []})),
        ),
        403,
        None,
    );
    assert_eq!(ask("GET", "/scim/v2/corp/Users", None).status, 200);
    let search = ask(
        "POST",
        "/scim/v2/corp/Users/.search",
        Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]})),
    );
    assert_eq!(search.status, 200, "{:?}", search.body);
    assert_eq!(store.count(corp.id, Kind::User).unwrap(), 0);
}

#[test]
fn tokens_guard_each_directory() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(system_clock()));
    let acme = store
        .create_directory(NewDirectory::new("acme", DirectoryKind::Scim))
        .unwrap();
    let other = store
        .create_directory(NewDirectory::new("other", DirectoryKind::Scim))
        .unwrap();
    let (old, old_stored) = issue_token(&*store, &acme).unwrap();
    let (new, _) = issue_token(&*store, &acme).unwrap();
    let (foreign, _) = issue_token(&*store, &other).unwrap();
    assert!(old.starts_with("usersync_") && old.len() == 9 + 64 && old != new);
    assert!(
        store
            .tokens(acme.id)
            .unwrap()
            .iter()
            .all(|t| t.hash != *old.as_bytes().first_chunk::<32>().unwrap())
    );
    let s = Service::new(store.clone());
    let with = |token: &str| {
        call(
            &s,
            ScimRequest::new("GET", "/scim/v2/acme/Users")
                .with_header("Authorization", &format!("Bearer {token}")),
        )
    };
    assert_eq!(with(&old).status, 200);
    assert_eq!(with(&new).status, 200, "two tokens valid during rotation");
    // Another directory's token is refused as any wrong token is; an unknown directory
    // answers the same, so that its name cannot be probed.
    let refused = with(&foreign);
    assert_error(&refused, 401, None);
    let r = with("usersync_0000");
    assert_error(&r, 401, None);
    assert_eq!(r.body, refused.body);
    let unknown = call(
        &s,
        ScimRequest::new("GET", "/scim/v2/nope/Users")
            .with_header("Authorization", &format!("Bearer {foreign}")),
    );
    assert_error(&unknown, 401, None);
    assert_eq!(unknown.body, refused.body);
    assert_error(&get(&s, "/scim/v2/nope/Users", ""), 401, None);
    assert_eq!(
        r.response.header("WWW-Authenticate"),
        Some("Bearer realm=\"usersync\"")
    );
    assert_error(&get(&s, "/scim/v2/acme/Users", ""), 401, None);
    let basic = call(
        &s,
        ScimRequest::new("GET", "/scim/v2/acme/Users")
            .with_header("Authorization", "Basic dXNlcjpwYXNz"),
    );
    assert_error(&basic, 401, None);
    store.revoke_token(acme.id, old_stored.id).unwrap();
    assert_error(&with(&old), 401, None);
    assert_eq!(with(&new).status, 200);
}

fn patch(s: &Service, path: &str, ops: Value) -> Reply {
    let body =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    call(
        s,
        ScimRequest::new("PATCH", path).with_body(&body.to_string()),
    )
}

#[test]
fn patch_users_as_identity_providers_send_it() {
    for s in services() {
        assert_eq!(
            post(&s, "/scim/v2/acme/Users", json!({"userName": "mgr"})).status,
            201
        );
        let u = post(
            &s,
            "/scim/v2/acme/Users",
            json!({"userName": "bjensen", "title": "Guide",
            "emails": [{"value": "babs@home.example", "type": "home"}]}),
        );
        let path = "/scim/v2/acme/Users/id2";
        assert_eq!(u.status, 201);
        // Entra ID, default mode: capitalised ops, booleans as strings, a value path on an
        // email that does not exist yet, the manager as a bare id.
        let r = patch(
            &s,
            path,
            json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "bjensen@example.com"},
                {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": "id1"},
            ]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["active"], false);
        assert_eq!(
            r.body["emails"],
            json!([{"value": "babs@home.example", "type": "home"}, {"type": "work", "value": "bjensen@example.com"}])
        );
        assert_eq!(r.body[ENTERPRISE]["manager"], json!({"value": "id1"}));
        assert_eq!(
            r.body["meta"]["version"], "W/\"2\"",
            "one version for the whole PATCH"
        );
        // The same path again replaces in place.
        let r = patch(
            &s,
            path,
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@example.com"}]),
        );
        assert_eq!(
            r.body["emails"][1],
            json!({"type": "work", "value": "b@example.com"})
        );
        assert_eq!(r.body["emails"].as_array().unwrap().len(), 2);
        // Entra with aadOptscim062020 and Okta: pathless replace with dotted and URN keys.
        let r = patch(
            &s,
            path,
            json!([
                {"op": "replace", "value": {"name.givenName": "Barbara", format!("{ENTERPRISE}:department"): "Tours", "displayName": "Babs"}},
                {"op": "replace", "value": {"active": true}},
            ]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            (
                r.body["name"]["givenName"].clone(),
                r.body[ENTERPRISE]["department"].clone(),
                r.body["active"].clone()
            ),
            (json!("Barbara"), json!("Tours"), json!(true))
        );
        assert_eq!(
            r.body[ENTERPRISE]["manager"]["value"], "id1",
            "pathless replace keeps what it does not name"
        );
        // remove: an attribute, a filtered value, a sub-attribute.
        let r = patch(
            &s,
            path,
            json!([
                {"op": "remove", "path": "title"},
                {"op": "remove", "path": "emails[type eq \"home\"]"},
                {"op": "remove", "path": "name.givenName"},
            ]),
        );
        assert!(r.body.get("title").is_none() && r.body.get("name").is_none());
        assert_eq!(
            r.body["emails"],
            json!([{"type": "work", "value": "b@example.com"}])
        );
        let version = r.body["meta"]["version"].clone();

        // All or nothing: a bad operation anywhere leaves the user untouched.
        let r = patch(
            &s,
            path,
            json!([{"op": "replace", "path": "title", "value": "Boss"}, {"op": "add", "path": "shoeSize", "value": 42}]),
        );
        assert_error(&r, 400, Some("invalidPath"));
        let now = get(&s, path, "");
        assert_eq!(
            (now.body.get("title"), &now.body["meta"]["version"]),
            (None, &version)
        );
        assert_error(
            &patch(&s, path, json!([{"op": "remove"}])),
            400,
            Some("noTarget"),
        );
        assert_error(
            &patch(
                &s,
                path,
                json!([{"op": "merge", "path": "title", "value": "x"}]),
            ),
            400,
            Some("invalidSyntax"),
        );
        assert_error(
            &patch(
                &s,
                path,
                json!([{"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}]),
            ),
            400,
            Some("mutability"),
        );
        assert_error(
            &patch(
                &s,
                path,
                json!([{"op": "replace", "path": "active", "value": 5}]),
            ),
            400,
            Some("invalidValue"),
        );
        assert_error(
            &patch(
                &s,
                path,
                json!([{"op": "replace", "path": "emails[type eq ]", "value": "x"}]),
            ),
            400,
            Some("invalidPath"),
        );
        assert_error(
            &patch(
                &s,
                path,
                json!([{"op": "replace", "path": "userName", "value": "MGR"}]),
            ),
            409,
            Some("uniqueness"),
        );
        assert_error(
            &patch(&s, path, json!([{"op": "remove", "path": "userName"}])),
            400,
            Some("invalidValue"),
        );
        assert_error(&patch(&s, path, json!([])), 400, Some("invalidValue"));
        let stale = call(&s, ScimRequest::new("PATCH", path).with_header("If-Match", "W/\"1\"")
            .with_body(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "remove", "path": "title"}]}).to_string()));
        assert_error(&stale, 412, None);
        assert_eq!(get(&s, path, "").body["meta"]["version"], version);
    }
}

/// The strict policy, for a whole service or for one directory (the others still accept
/// what identity providers send).
#[test]
fn strict_policy_refuses_what_only_entra_sends() {
    let strict_service = || {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(system_clock()));
        store
            .create_directory(NewDirectory::new("acme", DirectoryKind::Scim))
            .unwrap();
        let config = ServiceConfig {
            require_token: false,
            compat: Compatibility::strict(),
            ..ServiceConfig::default()
        };
        Service::with(store, SchemaRegistry::core(), config, new_ids())
    };
    let strict_directory = || {
        let s = service_over(Arc::new(MemoryStore::new(system_clock())));
        s.store
            .create_directory(NewDirectory {
                strict: true,
                ..NewDirectory::new("rfc", DirectoryKind::Scim)
            })
            .unwrap();
        s
    };
    for (s, directory) in [(strict_service(), "acme"), (strict_directory(), "rfc")] {
        let u = post(
            &s,
            &format!("/scim/v2/{directory}/Users"),
            json!({"userName": "x"}),
        );
        let path = format!(
            "/scim/v2/{directory}/Users/{}",
            u.body["id"].as_str().unwrap()
        );
        let r = patch(
            &s,
            &path,
            json!([{"op": "add", "path": "emails[type eq \"work\"].value", "value": "x@example.com"}]),
        );
        assert_error(&r, 400, Some("noTarget"));
        assert_error(
            &patch(
                &s,
                &path,
                json!([{"op": "replace", "path": "active", "value": "False"}]),
            ),
            400,
            Some("invalidValue"),
        );
        let no_schema = call(
            &s,
            ScimRequest::new("PATCH", &path)
                .with_body(&json!({"Operations": [{"op": "remove", "path": "title"}]}).to_string()),
        );
        assert_error(&no_schema, 400, Some("invalidSyntax"));
        let string_boolean = get(
            &s,
            &format!("/scim/v2/{directory}/Users"),
            "filter=active eq \"True\"",
        );
        assert_error(&string_boolean, 400, Some("invalidFilter"));
    }
    // Beside a strict directory, the others take Entra's ways.
    let s = strict_directory();
    let u = post(&s, "/scim/v2/acme/Users", json!({"userName": "y"}));
    let path = format!("/scim/v2/acme/Users/{}", u.body["id"].as_str().unwrap());
    let r = patch(
        &s,
        &path,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    );
    assert_eq!(
        (r.status, &r.body["active"]),
        (200, &json!(false)),
        "{}",
        r.body
    );
    let listed = get(&s, "/scim/v2/acme/Users", "filter=active eq \"False\"");
    assert_eq!(listed.body["totalResults"], 1, "{}", listed.body);
}

/// A member is added or removed whole: a PATCH of one of its parts is refused and changes
/// nothing, where it used to drop the member (`…].display`) or be taken without effect
/// (`members.value`).
#[test]
fn a_members_parts_are_not_patched_one_by_one() {
    for s in services() {
        let u = post(&s, "/scim/v2/acme/Users", json!({"userName": "u1"}));
        let id = u.body["id"].as_str().unwrap().to_owned();
        let g = post(
            &s,
            "/scim/v2/acme/Groups",
            json!({"displayName": "Staff", "members": [{"value": id}]}),
        );
        let path = format!("/scim/v2/acme/Groups/{}", g.body["id"].as_str().unwrap());
        let version = g.body["meta"]["version"].clone();
        for (op, target, value) in [
            (
                "remove",
                format!("members[value eq \"{id}\"].display"),
                None,
            ),
            (
                "replace",
                format!("members[value eq \"{id}\"].type"),
                Some(json!("Group")),
            ),
            ("add", "members.value".to_owned(), Some(json!(id))),
            ("remove", "members.display".to_owned(), None),
        ] {
            let mut operation = json!({"op": op, "path": target});
            if let Some(v) = value {
                operation["value"] = v;
            }
            let r = patch(&s, &path, json!([operation]));
            assert_error(&r, 400, Some("mutability"));
            let group = get(&s, &path, "");
            assert_eq!(group.body["members"][0]["value"], id.as_str(), "{target}");
            assert_eq!(group.body["meta"]["version"], version, "{target}");
        }
    }
}

/// `remove` with a value on a multi-valued attribute removes the values it lists, as for
/// `members`, not every value of the attribute.
#[test]
fn a_remove_with_a_value_removes_only_the_values_listed() {
    for s in services() {
        let u = post(
            &s,
            "/scim/v2/acme/Users",
            json!({"userName": "u1", "emails": [
                {"value": "a@example.com", "type": "work"},
                {"value": "b@example.com", "type": "home"}
            ], "roles": [{"value": "admin"}, {"value": "reader"}]}),
        );
        let path = format!("/scim/v2/acme/Users/{}", u.body["id"].as_str().unwrap());
        let r = patch(
            &s,
            &path,
            json!([
                {"op": "Remove", "path": "emails", "value": [{"value": "a@example.com"}]},
                {"op": "Remove", "path": "roles", "value": {"value": "reader"}},
            ]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.body["emails"],
            json!([{"value": "b@example.com", "type": "home"}])
        );
        assert_eq!(r.body["roles"], json!([{"value": "admin"}]));
        // A value that names none of them removes nothing; the last one removed takes
        // the attribute with it.
        let r = patch(
            &s,
            &path,
            json!([
                {"op": "Remove", "path": "emails", "value": [{"value": "nobody@example.com"}]},
                {"op": "Remove", "path": "roles", "value": [{"value": "admin"}]},
            ]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["emails"].as_array().map(Vec::len), Some(1));
        assert!(r.body.get("roles").is_none(), "{}", r.body);
    }
}

/// One value of a multi-valued attribute is primary at most (RFC 7643 §2.4): a create or
/// replace with two is refused, and a PATCH that makes a value primary takes that from the
/// value that was (RFC 7644 §3.5.2).
#[test]
fn one_value_is_primary_at_most() {
    let two = json!([
        {"value": "a@example.com", "type": "work", "primary": true},
        {"value": "b@example.com", "type": "home", "primary": true}
    ]);
    for s in services() {
        let r = post(
            &s,
            "/scim/v2/acme/Users",
            json!({"userName": "u1", "emails": two}),
        );
        assert_error(&r, 400, Some("invalidValue"));
        assert!(
            r.body["detail"].as_str().unwrap().contains("emails"),
            "{}",
            r.body
        );
        let u = post(
            &s,
            "/scim/v2/acme/Users",
            json!({"userName": "u1", "emails": [
                {"value": "a@example.com", "type": "work", "primary": true},
                {"value": "b@example.com", "type": "home"}
            ]}),
        );
        assert_eq!(u.status, 201, "{}", u.body);
        let path = format!("/scim/v2/acme/Users/{}", u.body["id"].as_str().unwrap());
        let put = call(
            &s,
            ScimRequest::new("PUT", &path)
                .with_body(&json!({"userName": "u1", "emails": two}).to_string()),
        );
        assert_error(&put, 400, Some("invalidValue"));

        // The home address made primary: the work one is not any more.
        let r = patch(
            &s,
            &path,
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.body["emails"],
            json!([
                {"value": "a@example.com", "type": "work", "primary": false},
                {"value": "b@example.com", "type": "home", "primary": true}
            ])
        );
        // A new primary value added: the home one steps down.
        let r = patch(
            &s,
            &path,
            json!([{"op": "add", "path": "emails", "value": [{"value": "c@example.com", "type": "other", "primary": "True"}]}]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let primaries: Vec<&Value> = r.body["emails"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["primary"] == true)
            .map(|e| &e["value"])
            .collect();
        assert_eq!(primaries, [&json!("c@example.com")]);
        // The primary address edited and another made primary in one PATCH: the other
        // wins. A second address of the primary's type made primary: it wins.
        let r = patch(
            &s,
            &path,
            json!([
                {"op": "replace", "path": "emails[type eq \"other\"].value", "value": "d@example.com"},
                {"op": "replace", "path": "emails[type eq \"work\"].primary", "value": true},
            ]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let primary = |r: &Reply| -> Vec<Value> {
            r.body["emails"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["primary"] == true)
                .map(|e| e["value"].clone())
                .collect()
        };
        assert_eq!(primary(&r), [json!("a@example.com")]);
        let r = patch(
            &s,
            &path,
            json!([{"op": "add", "path": "emails", "value": [{"value": "e@example.com", "type": "work", "primary": true}]}]),
        );
        assert_eq!(primary(&r), [json!("e@example.com")], "{}", r.body);
        // Two made primary by one PATCH: refused, nothing written.
        let version = r.response.header("ETag").unwrap().to_owned();
        let r = patch(
            &s,
            &path,
            json!([{"op": "replace", "path": "emails", "value": two}]),
        );
        assert_error(&r, 400, Some("invalidValue"));
        assert_eq!(
            get(&s, &path, "").response.header("ETag"),
            Some(version.as_str())
        );

        // Several primaries stored before this rule existed do not fail a PATCH of
        // something else.
        stored_before(&s, json!({"userName": "legacy", "emails": two}));
        let r = patch(
            &s,
            "/scim/v2/acme/Users/legacy",
            json!([{"op": "add", "path": "title", "value": "Guide"}]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["emails"], two);
        // ... nor a PUT that sends them back.
        let put = call(
            &s,
            ScimRequest::new("PUT", "/scim/v2/acme/Users/legacy").with_body(
                &json!({"userName": "legacy", "emails": two, "title": "Lead"}).to_string(),
            ),
        );
        assert_eq!(put.status, 200, "{}", put.body);
    }
}

/// What a PATCH may not mean: enabling a user by removing `active`, or a part of
/// `externalId`, which has none. Both are refused and change nothing.
#[test]
fn a_patch_cannot_enable_a_user_by_removing_active() {
    for s in services() {
        let u = post(
            &s,
            "/scim/v2/acme/Users",
            json!({"userName": "u1", "active": false, "externalId": "x1"}),
        );
        let path = format!("/scim/v2/acme/Users/{}", u.body["id"].as_str().unwrap());
        for path_text in ["active", "ACTIVE", &format!("{USER}:active")] {
            let r = patch(&s, &path, json!([{"op": "remove", "path": path_text}]));
            assert_error(&r, 400, Some("invalidValue"));
            let r = patch(
                &s,
                &path,
                json!([{"op": "replace", "path": path_text, "value": null}]),
            );
            assert_error(&r, 400, Some("invalidValue"));
        }
        let r = patch(
            &s,
            &path,
            json!([{"op": "replace", "value": {"active": null}}]),
        );
        assert_error(&r, 400, Some("invalidValue"));
        for path_text in ["externalId.foo", "externalId[value eq \"x1\"]"] {
            let r = patch(
                &s,
                &path,
                json!([{"op": "replace", "path": path_text, "value": "y"}]),
            );
            assert_error(&r, 400, Some("invalidPath"));
        }
        let held = get(&s, &path, "");
        assert_eq!(held.body["active"], false);
        assert_eq!(held.body["externalId"], "x1");
        assert_eq!(held.response.header("ETag"), Some("W/\"1\""));
    }
}

/// `manager.displayName` is the server's to fill in (read-only): a client's value is
/// ignored, as for a read-only attribute, not stored.
#[test]
fn a_read_only_sub_attribute_is_not_stored() {
    for s in services() {
        let r = post(
            &s,
            "/scim/v2/acme/Users",
            json!({"schemas": [USER, ENTERPRISE], "userName": "u1",
                   ENTERPRISE: {"manager": {"value": "m1", "displayName": "Made Up"}}}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body[ENTERPRISE]["manager"], json!({"value": "m1"}));
    }
}

#[test]
fn patch_group_members_row_by_row() {
    for s in services() {
        for name in ["u1", "u2", "u3"] {
            post(&s, "/scim/v2/acme/Users", json!({"userName": name}));
        }
        let g = post(&s, "/scim/v2/acme/Groups", json!({"displayName": "Staff"}));
        let path = format!("/scim/v2/acme/Groups/{}", g.body["id"].as_str().unwrap());
        let ids = |_after: &Reply| -> Vec<String> {
            let r = get(&s, &path, "");
            let mut v: Vec<String> = r.body["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect();
            v.sort();
            v
        };
        let r = patch(
            &s,
            &path,
            json!([{"op": "Add", "path": "members", "value": [{"value": "id1"}, {"value": "id2"}]}]),
        );
        // A group PATCH answers 204 with the new ETag: no member list to render.
        assert_eq!(r.status, 204, "{}", r.body);
        assert_eq!(r.response.header("ETag"), Some("W/\"2\""));
        assert_eq!(ids(&r), ["id1", "id2"]);
        // Entra removes exactly the listed members, never all.
        let r = patch(
            &s,
            &path,
            json!([{"op": "Remove", "path": "members", "value": [{"value": "id1"}]}]),
        );
        assert_eq!(ids(&r), ["id2"]);
        // aadOptscim062020 form, and Okta's replace.
        let r = patch(
            &s,
            &path,
            json!([{"op": "remove", "path": "members[value eq \"id2\"]"}]),
        );
        assert_eq!(ids(&r), Vec::<String>::new());
        let r = patch(
            &s,
            &path,
            json!([{"op": "replace", "path": "members", "value": [{"value": "id3"}, {"value": "id1"}]}]),
        );
        assert_eq!(ids(&r), ["id1", "id3"]);
        // Okta renames with the read-only id in the value; add and remove in one PATCH.
        let r = patch(
            &s,
            &path,
            json!([
                {"op": "replace", "value": {"id": "ignored", "displayName": "Staff 2"}},
                {"op": "add", "path": "members", "value": [{"value": "id2"}]},
                {"op": "remove", "path": "members", "value": [{"value": "id3"}]},
            ]),
        );
        assert_eq!(r.status, 204, "{}", r.body);
        assert_eq!(
            (get(&s, &path, "").body["displayName"].clone(), ids(&r)),
            (json!("Staff 2"), vec!["id1".to_owned(), "id2".to_owned()])
        );
        let version = json!(r.response.header("ETag").unwrap());
        // A member that does not exist fails the whole PATCH.
        let r = patch(
            &s,
            &path,
            json!([{"op": "remove", "path": "members", "value": [{"value": "id1"}]}, {"op": "add", "path": "members", "value": [{"value": "ghost"}]}]),
        );
        assert_error(&r, 400, Some("invalidValue"));
        assert_eq!(ids(&r), ["id1", "id2"]);
        assert_eq!(get(&s, &path, "").body["meta"]["version"], version);
        // Re-adding a present member and removing an absent one change nothing.
        let r = patch(
            &s,
            &path,
            json!([{"op": "add", "path": "members", "value": [{"value": "id1"}]}, {"op": "remove", "path": "members", "value": [{"value": "id3"}]}]),
        );
        assert_eq!(json!(r.response.header("ETag").unwrap()), version);
        // Removing all members, then filtering by type.
        let r = patch(&s, &path, json!([{"op": "remove", "path": "members"}]));
        assert_eq!(ids(&r), Vec::<String>::new());
        patch(
            &s,
            &path,
            json!([{"op": "add", "path": "members", "value": [{"value": "id1"}, {"value": "id2"}]}]),
        );
        let r = patch(
            &s,
            &path,
            json!([{"op": "remove", "path": "members[type eq \"User\" and value ew \"1\"]"}]),
        );
        assert_eq!(r.status, 204, "{}", r.body);
        assert_eq!(ids(&r), ["id2"]);
        // Members of a group that does not exist: 404, as for any PATCH of it.
        let r = patch(
            &s,
            "/scim/v2/acme/Groups/nope",
            json!([{"op": "add", "path": "members", "value": [{"value": "id1"}]}]),
        );
        assert_error(&r, 404, None);
        // A member change pinned to an old version is refused, not applied.
        let stale = call(
            &s,
            ScimRequest::new("PATCH", &path)
                .with_header("If-Match", "W/\"1\"")
                .with_body(
                    &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                            "Operations": [{"op": "add", "path": "members", "value": [{"value": "id3"}]}]})
                    .to_string(),
                ),
        );
        assert_error(&stale, 412, None);
        assert_eq!(ids(&stale), ["id2"]);
        // Asking for attributes brings the resource back.
        let with = call(
            &s,
            ScimRequest::new("PATCH", &path)
                .with_query("attributes=displayName")
                .with_body(
                    &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Staff 3"}]})
                    .to_string(),
                ),
        );
        assert_eq!(
            (with.status, with.body["displayName"].clone()),
            (200, json!("Staff 3"))
        );
        assert!(with.body.get("members").is_none());
    }
}

#[test]
fn search_with_a_post_body() {
    for s in services() {
        for name in ["carol", "alice", "bob"] {
            post(
                &s,
                "/scim/v2/acme/Users",
                json!({"userName": name, "title": "Engineer"}),
            );
        }
        post(
            &s,
            "/scim/v2/acme/Groups",
            json!({"displayName": "Engineers"}),
        );
        let search = |path: &str, body: Value| {
            call(
                &s,
                ScimRequest::new("POST", path).with_body(&body.to_string()),
            )
        };
        let r = search(
            "/scim/v2/acme/Users/.search",
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "title eq \"engineer\"", "sortBy": "userName", "sortOrder": "descending",
                "startIndex": 2, "count": 1, "attributes": ["userName"],
            }),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            (
                r.body["totalResults"].clone(),
                r.body["Resources"][0]["userName"].clone()
            ),
            (json!(3), json!("bob"))
        );
        assert!(
            r.body["Resources"][0].get("title").is_none(),
            "attributes honoured"
        );
        // At the root: users and groups together.
        let r = search(
            "/scim/v2/acme/.search",
            json!({"filter": "userName sw \"a\" or displayName sw \"Eng\""}),
        );
        let kinds: Vec<&str> = r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["meta"]["resourceType"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["User", "Group"]);
        assert_error(
            &search("/scim/v2/acme/Users/.search", json!({"filter": 5})),
            400,
            Some("invalidValue"),
        );
        assert_error(
            &search("/scim/v2/acme/Users/.search", json!({"filter": "title eq"})),
            400,
            Some("invalidFilter"),
        );
        assert_error(
            &search(
                "/scim/v2/acme/Users/.search",
                json!({"sortby": "userName", "count": "2"}),
            ),
            400,
            Some("invalidValue"),
        );
        assert_error(&get(&s, "/scim/v2/acme/Users/.search", ""), 405, None);
    }
}

#[test]
fn immutable_attributes_are_set_once() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(system_clock()));
    store
        .create_directory(NewDirectory::new("acme", DirectoryKind::Scim))
        .unwrap();
    let mut registry = SchemaRegistry::core();
    let badge = "urn:example:params:scim:schemas:extension:badge:2.0:User";
    registry
        .add_extension_json(
            "User",
            &json!({"id": badge, "attributes": [{"name": "number", "mutability": "immutable"}]})
                .to_string(),
            false,
        )
        .unwrap();
    let s = Service::with(
        store,
        registry,
        ServiceConfig::default().with_require_token(false),
        new_ids(),
    );
    let put = |path: &str, body: Value| {
        call(
            &s,
            ScimRequest::new("PUT", path).with_body(&body.to_string()),
        )
    };
    let u = post(
        &s,
        "/scim/v2/acme/Users",
        json!({"userName": "a", badge: {"number": "7"}}),
    );
    let path = format!("/scim/v2/acme/Users/{}", u.body["id"].as_str().unwrap());
    assert_eq!(
        put(&path, json!({"userName": "a2", badge: {"number": "7"}})).status,
        200,
        "same value is fine"
    );
    assert_error(
        &put(&path, json!({"userName": "a", badge: {"number": "8"}})),
        400,
        Some("mutability"),
    );
    assert_error(
        &put(&path, json!({"userName": "a"})),
        400,
        Some("mutability"),
    );
    assert_error(
        &patch(
            &s,
            &path,
            json!([{"op": "replace", "path": format!("{badge}:number"), "value": "9"}]),
        ),
        400,
        Some("mutability"),
    );
    let v = post(&s, "/scim/v2/acme/Users", json!({"userName": "b"}));
    let path = format!("/scim/v2/acme/Users/{}", v.body["id"].as_str().unwrap());
    let r = patch(
        &s,
        &path,
        json!([{"op": "add", "path": format!("{badge}:number"), "value": "1"}]),
    );
    assert_eq!(
        (r.status, r.body[badge]["number"].clone()),
        (200, json!("1")),
        "set later, once"
    );
}

#[test]
fn bulk_resolves_references_in_any_order() {
    for s in services() {
        let bulk = |ops: Value, extra: Value| {
            let mut body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
            if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
                b.extend(e);
            }
            call(
                &s,
                ScimRequest::new("POST", "/scim/v2/acme/Bulk").with_body(&body.to_string()),
            )
        };
        // The group comes first and names a user created after it.
        let r = bulk(
            json!([
                {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "Tour Guides", "members": [{"value": "bulkId:u"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "bjensen"}},
                {"method": "PATCH", "path": "/Users/bulkId:u", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "title", "value": "Guide"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"userName": "BJENSEN"}},
                {"method": "POST", "path": "/Groups", "bulkId": "x", "data": {"displayName": "X", "members": [{"value": "bulkId:nope"}]}},
            ]),
            json!({}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
        );
        let ops = r.body["Operations"].as_array().unwrap();
        let by_id = |id: &str| ops.iter().find(|o| o["bulkId"] == id).unwrap();
        assert_eq!(by_id("u")["status"], "201");
        assert_eq!(by_id("g")["status"], "201", "{}", r.body);
        let group = get(&s, by_id("g")["location"].as_str().unwrap(), "");
        let user = get(&s, by_id("u")["location"].as_str().unwrap(), "");
        assert_eq!(group.body["members"][0]["value"], user.body["id"]);
        assert_eq!(user.body["title"], "Guide");
        assert_eq!(by_id("dup")["status"], "409");
        assert_eq!(by_id("dup")["response"]["scimType"], "uniqueness");
        assert_eq!(by_id("x")["status"], "409");
        assert_eq!(ops.len(), 5);

        // Circular references fail; failOnErrors stops early.
        let r = bulk(
            json!([
                {"method": "POST", "path": "/Groups", "bulkId": "a", "data": {"displayName": "A", "members": [{"value": "bulkId:b"}]}},
                {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"displayName": "B", "members": [{"value": "bulkId:a"}]}},
            ]),
            json!({}),
        );
        let statuses: Vec<&str> = r.body["Operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["409", "409"]);
        let r = bulk(
            json!([
                {"method": "DELETE", "path": "/Users/missing"},
                {"method": "POST", "path": "/Users", "bulkId": "late", "data": {"userName": "late"}},
            ]),
            json!({"failOnErrors": 1}),
        );
        assert_eq!(
            r.body["Operations"].as_array().unwrap().len(),
            1,
            "{}",
            r.body
        );
        assert_eq!(r.body["Operations"][0]["status"], "404");
        assert_eq!(
            get(&s, "/scim/v2/acme/Users", "filter=userName eq \"late\"").body["totalResults"],
            0
        );

        let too_many: Vec<Value> = (0..1001)
            .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
            .collect();
        assert_error(&bulk(Value::Array(too_many), json!({})), 413, None);
        assert_error(
            &call(
                &s,
                ScimRequest::new("POST", "/scim/v2/acme/Bulk").with_body(r#"{"Operations": []}"#),
            ),
            400,
            Some("invalidSyntax"),
        );
        assert_error(
            &bulk(
                json!([{"method": "POST", "path": "/Users", "data": {"userName": "x"}}]),
                json!({}),
            ),
            400,
            Some("invalidValue"),
        );
        // A limit that is no positive integer is refused, not read as "no limit": every
        // write after the first error would otherwise go ahead.
        for limit in [json!(0), json!(-1), json!(1.5), json!("1")] {
            let r = bulk(
                json!([{"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "unlimited"}}]),
                json!({"failOnErrors": limit}),
            );
            assert_error(&r, 400, Some("invalidValue"));
        }
        assert_eq!(
            get(
                &s,
                "/scim/v2/acme/Users",
                "filter=userName eq \"unlimited\""
            )
            .body["totalResults"],
            0
        );
        // Two operations with one bulkId: a reference to it would name either. Nothing
        // runs.
        let r = bulk(
            json!([
                {"method": "POST", "path": "/Users", "bulkId": "twin", "data": {"userName": "twin1"}},
                {"method": "POST", "path": "/Users", "bulkId": "twin", "data": {"userName": "twin2"}},
                {"method": "POST", "path": "/Groups", "bulkId": "g2", "data": {"displayName": "Twins", "members": [{"value": "bulkId:twin"}]}},
            ]),
            json!({}),
        );
        assert_error(&r, 400, Some("invalidValue"));
        assert!(
            r.body["detail"].as_str().unwrap().contains("`twin`"),
            "{}",
            r.body
        );
        assert_eq!(
            get(&s, "/scim/v2/acme/Users", "filter=userName sw \"twin\"").body["totalResults"],
            0
        );
    }
}

#[test]
fn cursor_paging_is_stable_and_sealed() {
    for s in services() {
        for i in 1..=7 {
            post(
                &s,
                "/scim/v2/acme/Users",
                json!({"userName": format!("user{i}")}),
            );
        }
        let page = |query: &str| get(&s, "/scim/v2/acme/Users", query);
        let ids = |r: &Reply| -> Vec<String> {
            r.body["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let first = page("cursor=&count=3");
        assert_eq!(
            (first.status, ids(&first)),
            (
                200,
                vec!["id1".to_owned(), "id2".to_owned(), "id3".to_owned()]
            ),
            "{}",
            first.body
        );
        assert_eq!(first.body["totalResults"], 7);
        let next = first.body["nextCursor"].as_str().unwrap().to_owned();
        // Changes between pages neither repeat nor skip what is left.
        call(&s, ScimRequest::new("DELETE", "/scim/v2/acme/Users/id2"));
        post(&s, "/scim/v2/acme/Users", json!({"userName": "user8"}));
        let second = page(&format!("cursor={next}&count=3"));
        assert_eq!(ids(&second), ["id4", "id5", "id6"]);
        let third = page(&format!(
            "cursor={}&count=3",
            second.body["nextCursor"].as_str().unwrap()
        ));
        assert_eq!(ids(&third), ["id7", "id8"]);
        assert!(
            third.body.get("nextCursor").is_none(),
            "the last page has no next cursor"
        );

        let mut forged = next.clone().into_bytes();
        forged[2] = if forged[2] == b'0' { b'1' } else { b'0' };
        assert_error(
            &page(&format!(
                "cursor={}&count=3",
                String::from_utf8(forged).unwrap()
            )),
            400,
            Some("invalidCursor"),
        );
        assert_error(
            &page(&format!("cursor={next}&count=3&filter=userName pr")),
            400,
            Some("invalidCursor"),
        );
        assert_error(&page("cursor=not-a-cursor"), 400, Some("invalidCursor"));
        assert_error(&page("cursor=&startIndex=2"), 400, Some("invalidValue"));
        let config = get(&s, "/scim/v2/acme/ServiceProviderConfig", "");
        assert_eq!(config.body["pagination"]["cursor"], true);
    }
}

/// A cursor works for an hour (RFC 9865 lets the provider choose), then answers
/// `expiredCursor`; the test moves the service's clock instead of waiting.
#[test]
fn cursors_expire_after_an_hour() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let now = Arc::new(AtomicI64::new(1_700_000_000));
    let clock: crate::store::Clock = {
        let now = now.clone();
        Arc::new(move || crate::scim::datetime::DateTime::from_unix(now.load(Ordering::SeqCst), 0))
    };
    for s in services() {
        let s = s.with_clock(clock.clone());
        for i in 1..=3 {
            post(
                &s,
                "/scim/v2/acme/Users",
                json!({"userName": format!("user{i}")}),
            );
        }
        let first = get(&s, "/scim/v2/acme/Users", "cursor=&count=1");
        let next = first.body["nextCursor"].as_str().unwrap().to_owned();
        now.fetch_add(3600, Ordering::SeqCst);
        let within = get(&s, "/scim/v2/acme/Users", &format!("cursor={next}&count=1"));
        assert_eq!(within.status, 200, "{}", within.body);
        now.fetch_add(1, Ordering::SeqCst);
        let late = get(&s, "/scim/v2/acme/Users", &format!("cursor={next}&count=1"));
        assert_error(&late, 400, Some("expiredCursor"));
        now.store(1_700_000_000, Ordering::SeqCst);
    }
}

/// U+0000 ends text in C and in SQLite's text functions: refused at the door, with the
/// attribute named, so stored text reads the same in every backend and binding.
#[test]
fn text_with_a_nul_character_is_refused() {
    for s in services() {
        let r = post(
            &s,
            "/scim/v2/acme/Users",
            json!({"userName": "nul", "displayName": "a\u{0}b"}),
        );
        assert_error(&r, 400, Some("invalidValue"));
        assert!(r.body["detail"].as_str().unwrap().contains("displayName"));
        let r = post(
            &s,
            "/scim/v2/acme/Users",
            json!({"userName": "nul", "externalId": "x\u{0}"}),
        );
        assert_error(&r, 400, Some("invalidValue"));
    }
}

/// Cursor pages in a sort order: together they list every resource once, in that order, while
/// resources are created and deleted between pages; a cursor of one order does not open
/// pages of another.
#[test]
fn cursor_pages_follow_sort_by() {
    for s in services() {
        // userNames whose order differs from the ids' (`id1`, `id2`, …).
        for (i, name) in ["mia", "bob", "zoe", "amy", "kai", "eve", "lea"]
            .iter()
            .enumerate()
        {
            post(
                &s,
                "/scim/v2/acme/Users",
                json!({"userName": name, "title": if i % 2 == 0 { "a" } else { "b" }}),
            );
        }
        let page = |query: &str| get(&s, "/scim/v2/acme/Users", query);
        let names = |r: &Reply| -> Vec<String> {
            r.body["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["userName"].as_str().unwrap().to_owned())
                .collect()
        };
        let first = page("cursor=&count=3&sortBy=userName&sortOrder=descending");
        assert_eq!(names(&first), ["zoe", "mia", "lea"], "{}", first.body);
        let next = first.body["nextCursor"].as_str().unwrap().to_owned();
        // Changes between pages: one before the cursor, one after, one deleted after.
        post(&s, "/scim/v2/acme/Users", json!({"userName": "nia"}));
        post(&s, "/scim/v2/acme/Users", json!({"userName": "fay"}));
        let kai = get(&s, "/scim/v2/acme/Users", "filter=userName eq \"kai\"");
        let kai_id = kai.body["Resources"][0]["id"].as_str().unwrap().to_owned();
        call(
            &s,
            ScimRequest::new("DELETE", &format!("/scim/v2/acme/Users/{kai_id}")),
        );
        let second = page(&format!(
            "cursor={next}&count=3&sortBy=userName&sortOrder=descending"
        ));
        assert_eq!(names(&second), ["fay", "eve", "bob"], "{}", second.body);
        let last = second.body["nextCursor"].as_str().unwrap().to_owned();
        let third = page(&format!(
            "cursor={last}&count=3&sortBy=userName&sortOrder=descending"
        ));
        assert_eq!(names(&third), ["amy"]);
        assert!(third.body.get("nextCursor").is_none());
        // Resources without a value sort last; ties keep id order.
        let by_title = page("cursor=&count=10&sortBy=title");
        assert_eq!(by_title.body["totalResults"], 8);
        // The cursor belongs to its order.
        assert_error(
            &page(&format!("cursor={next}&count=3&sortBy=userName")),
            400,
            Some("invalidCursor"),
        );
        assert_error(
            &page("cursor=&sortBy=members.value"),
            400,
            Some("invalidValue"),
        );
    }
}

/// Okta sends a `password` on create and PATCHes it; only a directory configured to keep
/// password hashes keeps one, and nothing ever returns it.
#[test]
fn passwords_are_kept_hashed_only_where_the_directory_asks() {
    for s in services() {
        s.store
            .create_directory(NewDirectory {
                keep_password_hashes: true,
                ..NewDirectory::new("okta", DirectoryKind::Scim)
            })
            .unwrap();
        let signs_in = |user: &str, password: &str| {
            crate::password::verify(&*s.store, "okta", user, password)
                .unwrap()
                .is_some()
        };
        let spc = |dir: &str| get(&s, &format!("/scim/v2/{dir}/ServiceProviderConfig"), "");
        assert_eq!(spc("okta").body["changePassword"]["supported"], true);
        assert_eq!(spc("acme").body["changePassword"]["supported"], false);

        // A directory that keeps none checks the password and drops it.
        let mut elsewhere = bjensen();
        elsewhere["userName"] = json!("bjensen-acme");
        let dropped = post(&s, "/scim/v2/acme/Users", elsewhere);
        assert_eq!(dropped.status, 201, "{}", dropped.body);
        let acme = s.store.directory("acme").unwrap().unwrap();
        let id = dropped.body["id"].as_str().unwrap();
        assert_eq!(s.store.password_hash(acme.id, id).unwrap(), None);
        let wrong_type = post(
            &s,
            "/scim/v2/acme/Users",
            json!({"userName": "x", "password": 42}),
        );
        assert_error(&wrong_type, 400, Some("invalidValue"));

        let created = post(&s, "/scim/v2/okta/Users", bjensen());
        assert_eq!(created.status, 201, "{}", created.body);
        assert!(created.body.get("password").is_none(), "never returned");
        let user = format!(
            "/scim/v2/okta/Users/{}",
            created.body["id"].as_str().unwrap()
        );
        assert!(signs_in("bjensen", "t1meMa$heen"));
        assert!(!signs_in("bjensen", "t1meMa$heen!"));
        let asked = get(&s, &user, "attributes=password,userName");
        assert_eq!(asked.body.get("password"), None, "not even when asked for");

        // A PUT cannot send back what it was never shown: it keeps the password.
        let mut body = bjensen();
        body.as_object_mut().unwrap().remove("password");
        body["displayName"] = json!("Babs");
        let put = call(
            &s,
            ScimRequest::new("PUT", &user).with_body(&body.to_string()),
        );
        assert_eq!(put.status, 200, "{}", put.body);
        assert!(signs_in("bjensen", "t1meMa$heen"));

        let replaced = patch(
            &s,
            &user,
            json!([{"op": "Replace", "path": "password", "value": "n3w-Pa55"}]),
        );
        assert_eq!(replaced.status, 200, "{}", replaced.body);
        assert_eq!(replaced.body["meta"]["version"], "W/\"3\"", "a change");
        assert!(replaced.body.get("password").is_none());
        assert!(signs_in("bjensen", "n3w-Pa55") && !signs_in("bjensen", "t1meMa$heen"));

        let pathless = patch(
            &s,
            &user,
            json!([{"op": "replace", "value": {"password": "th1rd", "active": true}}]),
        );
        assert_eq!(pathless.status, 200, "{}", pathless.body);
        assert!(signs_in("bjensen", "th1rd"));

        let empty = patch(
            &s,
            &user,
            json!([{"op": "replace", "path": "password", "value": ""}]),
        );
        assert_error(&empty, 400, Some("invalidValue"));
        assert!(
            signs_in("bjensen", "th1rd"),
            "a refused PATCH changes nothing"
        );

        let removed = patch(
            &s,
            &user,
            json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:core:2.0:User:password"}]),
        );
        assert_eq!(removed.status, 200, "{}", removed.body);
        assert_eq!(removed.body["meta"]["version"], "W/\"5\"");
        assert!(!signs_in("bjensen", "th1rd"));

        // Deactivated users cannot sign in, whatever their password.
        let again = patch(
            &s,
            &user,
            json!([{"op": "add", "path": "password", "value": "fourth"}]),
        );
        assert_eq!(again.status, 200, "{}", again.body);
        assert!(signs_in("bjensen", "fourth"));
        let off = patch(
            &s,
            &user,
            json!([{"op": "replace", "value": {"active": false}}]),
        );
        assert_eq!(off.status, 200, "{}", off.body);
        assert!(!signs_in("bjensen", "fourth"));

        // A group has no password.
        let group = post(
            &s,
            "/scim/v2/okta/Groups",
            json!({"displayName": "Staff", "password": "x"}),
        );
        assert_error(&group, 400, Some("invalidValue"));
    }
}

/// An `attributes` parameter the server refuses is refused before anything is written: a
/// 400 means nothing changed, so a client's retry is no 409.
#[test]
fn a_refused_projection_writes_nothing() {
    let bad = "attributes=emails%5Btype%20eq%20%22work%22%5D";
    for s in services() {
        let with_bad = |method: &str, path: &str, body: Value| {
            call(
                &s,
                ScimRequest::new(method, path)
                    .with_query(bad)
                    .with_body(&body.to_string()),
            )
        };
        let r = with_bad("POST", "/scim/v2/acme/Users", json!({"userName": "ann"}));
        assert_error(&r, 400, Some("invalidPath"));
        let listed = get(&s, "/scim/v2/acme/Users", "");
        assert_eq!(listed.body["totalResults"], 0, "not created");
        let u = post(&s, "/scim/v2/acme/Users", json!({"userName": "ann"}));
        let user = format!("/scim/v2/acme/Users/{}", u.body["id"].as_str().unwrap());
        let r = with_bad("PUT", &user, json!({"userName": "bob"}));
        assert_error(&r, 400, Some("invalidPath"));
        let g = post(&s, "/scim/v2/acme/Groups", json!({"displayName": "Staff"}));
        let group = format!("/scim/v2/acme/Groups/{}", g.body["id"].as_str().unwrap());
        let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": u.body["id"]}]}]});
        let r = with_bad("PATCH", &group, ops);
        assert_error(&r, 400, Some("invalidPath"));
        assert_eq!(get(&s, &user, "").body["userName"], "ann", "not replaced");
        let read = get(&s, &group, "");
        assert_eq!(read.body["members"], json!([]), "no member added");
        assert_eq!(read.response.header("ETag"), Some("W/\"1\""));
    }
}

/// Ids with U+0000 (which no id holds, and PostgreSQL text cannot) and names too long for
/// the stores' indexes are bad requests, never a store failure (500).
#[test]
fn ids_with_nul_and_overlong_names_are_bad_requests() {
    for s in services() {
        let g = post(&s, "/scim/v2/acme/Groups", json!({"displayName": "Staff"}));
        let group = format!("/scim/v2/acme/Groups/{}", g.body["id"].as_str().unwrap());
        let r = patch(
            &s,
            &group,
            json!([{"op": "add", "path": "members", "value": [{"value": "a\u{0}"}]}]),
        );
        assert_error(&r, 400, Some("invalidValue"));
        let r = patch(
            &s,
            &group,
            json!([{"op": "remove", "path": "members[value eq \"a\\u0000\"]"}]),
        );
        assert!(
            matches!(r.status, 200 | 204),
            "nothing to remove: {}",
            r.body
        );
        assert_error(&get(&s, "/scim/v2/acme/Users/a\u{0}", ""), 404, None);
        let bulk = call(
            &s,
            ScimRequest::new("POST", "/scim/v2/acme/Bulk").with_body(
                &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                    "Operations": [{"method": "DELETE", "path": "/Users/\u{0}"}]})
                .to_string(),
            ),
        );
        assert_eq!(bulk.status, 200, "{}", bulk.body);
        assert_eq!(bulk.body["Operations"][0]["status"], "404", "{}", bulk.body);

        let longest = "a".repeat(1024);
        assert_eq!(
            post(&s, "/scim/v2/acme/Users", json!({"userName": longest})).status,
            201
        );
        for body in [
            json!({"userName": "a".repeat(1025)}),
            // 513 characters, 1,026 bytes.
            json!({"userName": "é".repeat(513)}),
            json!({"userName": "x", "externalId": "e".repeat(1025)}),
        ] {
            let r = post(&s, "/scim/v2/acme/Users", body);
            assert_error(&r, 400, Some("invalidValue"));
            assert!(
                r.body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("longer than 1024 bytes"),
                "{}",
                r.body
            );
        }
        let r = post(
            &s,
            "/scim/v2/acme/Groups",
            json!({"displayName": "g".repeat(1025)}),
        );
        assert_error(&r, 400, Some("invalidValue"));

        // A name stored before the limit stays writable; a new one is held to it.
        stored_before(&s, json!({"userName": "o".repeat(1100)}));
        let legacy = "/scim/v2/acme/Users/legacy";
        let r = patch(
            &s,
            legacy,
            json!([{"op": "replace", "path": "active", "value": false}]),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let r = patch(
            &s,
            legacy,
            json!([{"op": "replace", "path": "userName", "value": "p".repeat(1100)}]),
        );
        assert_error(&r, 400, Some("invalidValue"));
    }
}

/// `emails.value` without a filter, on a user with no email: a first email with that value
/// (it was answered 200 and dropped).
#[test]
fn a_sub_attribute_of_a_multi_valued_attribute_with_no_value_yet() {
    for s in services() {
        let u = post(&s, "/scim/v2/acme/Users", json!({"userName": "ann"}));
        let user = format!("/scim/v2/acme/Users/{}", u.body["id"].as_str().unwrap());
        for op in ["add", "replace"] {
            let r = patch(
                &s,
                &user,
                json!([{"op": "remove", "path": "emails"}, {"op": op, "path": "emails.value", "value": "a@x"}]),
            );
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.body["emails"], json!([{"value": "a@x"}]), "{op}");
        }
    }
}

/// A user's version does not move when a group it is in changes: shown with its groups, it
/// is answered whole, not 304 with the old groups.
#[test]
fn a_user_shown_with_its_groups_is_not_answered_304() {
    for s in services() {
        let u = post(&s, "/scim/v2/acme/Users", json!({"userName": "ann"}));
        let id = u.body["id"].as_str().unwrap().to_owned();
        let user = format!("/scim/v2/acme/Users/{id}");
        let g = post(
            &s,
            "/scim/v2/acme/Groups",
            json!({"displayName": "Staff", "members": [{"value": id}]}),
        );
        let if_none_match = |query: &str| {
            call(
                &s,
                ScimRequest::new("GET", &user)
                    .with_query(query)
                    .with_header("If-None-Match", "W/\"1\""),
            )
        };
        let whole = if_none_match("");
        assert_eq!(whole.status, 200);
        assert_eq!(
            whole.body["groups"][0]["value"], g.body["id"],
            "{}",
            whole.body
        );
        assert_eq!(if_none_match("excludedAttributes=groups").status, 304);
    }
}

/// `POST /.search` takes `cursor` (RFC 9865), and parameter names in any case.
#[test]
fn search_with_a_post_body_pages_by_cursor() {
    for s in services() {
        for name in ["ann", "bob", "cid"] {
            post(&s, "/scim/v2/acme/Users", json!({"userName": name}));
        }
        let search = |body: Value| {
            call(
                &s,
                ScimRequest::new("POST", "/scim/v2/acme/Users/.search")
                    .with_body(&body.to_string()),
            )
        };
        let first = search(json!({"cursor": "", "Count": 2, "sortBy": "userName"}));
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(first.body["Resources"].as_array().unwrap().len(), 2);
        let next = first.body["nextCursor"].as_str().unwrap().to_owned();
        let second = search(json!({"cursor": next, "count": 2, "sortBy": "userName"}));
        assert_eq!(second.status, 200, "{}", second.body);
        assert_eq!(second.body["Resources"][0]["userName"], "cid");
        let r = search(json!({"cursor": 1}));
        assert_error(&r, 400, Some("invalidValue"));
    }
}

/// A PUT without `active` keeps a disabled user disabled; one that says `true` enables it.
#[test]
fn a_put_without_active_keeps_a_disabled_user_disabled() {
    for s in services() {
        let u = post(
            &s,
            "/scim/v2/acme/Users",
            json!({"userName": "ann", "active": false}),
        );
        let user = format!("/scim/v2/acme/Users/{}", u.body["id"].as_str().unwrap());
        let put = |body: Value| {
            call(
                &s,
                ScimRequest::new("PUT", &user).with_body(&body.to_string()),
            )
        };
        let r = put(json!({"userName": "ann", "title": "Ex"}));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["active"], false);
        assert_eq!(r.body["title"], "Ex");
        let r = put(json!({"userName": "ann", "active": true}));
        assert_eq!(r.body["active"], true);
    }
}
