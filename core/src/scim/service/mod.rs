//! The SCIM 2.0 protocol (RFC 7644) behind one transport-agnostic call:
//! [`Service::handle`] takes a [`ScimRequest`] and returns a [`ScimResponse`], so the
//! platform's HTTP server (through the C ABI) and `usersync serve` run the same code.
//!
//! Routes, under `/scim/v2/<directory>`: `/Users`, `/Groups` (and `/<id>` below each),
//! `/Schemas`, `/ResourceTypes`, `/ServiceProviderConfig`; `/Me` answers 501.
//!
//! ```
//! use std::sync::Arc;
//! use usersync_core::scim::service::{ScimRequest, Service, issue_token};
//! use usersync_core::store::{DirectoryKind, NewDirectory, Store, memory::MemoryStore, system_clock};
//!
//! let store = Arc::new(MemoryStore::new(system_clock()));
//! let acme = store.create_directory(NewDirectory::new("acme", DirectoryKind::Scim))?;
//! let (token, _) = issue_token(&*store, &acme)?;
//! let bearer = format!("Bearer {token}");
//! let service = Service::new(store);
//! let created = service.handle(&ScimRequest::new("POST", "/scim/v2/acme/Users")
//!     .with_header("Authorization", &bearer)
//!     .with_body(r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bjensen"}"#));
//! assert_eq!(created.status, 201);
//! let found = service.handle(&ScimRequest::new("GET", "/scim/v2/acme/Users")
//!     .with_header("Authorization", &bearer)
//!     .with_query(r#"filter=userName eq "BJENSEN""#));
//! let body: serde_json::Value = serde_json::from_slice(&found.body)?;
//! assert_eq!(body["totalResults"], 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bulk;
mod cursor;
mod error;
mod list;
mod patch;
pub(crate) mod resource;
#[cfg(test)]
mod tests;
mod token;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::store::view::etag;
pub use error::ScimError;
use resource::{
    Edit, Projection, check_immutable, check_key_lengths, read_held, read_input, render,
    settle_primaries,
};
pub use token::{create_directory, issue_token};

use crate::password::{self, Password};
use crate::scim::filter::Compatibility;
use crate::scim::schema::{ResourceType, SchemaRegistry};
use crate::store::{
    Change, Content, Directory, Kind, Member, NewResource, PasswordChange, Replacement, Store,
    member_kind,
};

/// The media type of every response.
pub const SCIM_JSON: &str = "application/scim+json";

/// One request, as any HTTP server hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScimRequest {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// The path, percent-decoded or not: `/scim/v2/acme/Users/2819c223`.
    pub path: String,
    /// The raw query string without `?`, percent-encoded as sent.
    pub query: String,
    /// Header names and values; names are matched ignoring case.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl ScimRequest {
    /// A request without query, headers or body.
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            ..Self::default()
        }
    }

    /// With a query string (unencoded text is fine: `filter=userName eq "x"`).
    #[must_use]
    pub fn with_query(mut self, query: &str) -> Self {
        self.query = query.to_owned();
        self
    }

    /// With one more query parameter, its value percent-encoded so that a filter's own `&`,
    /// `=`, `+` and `%` stay part of it.
    ///
    /// ```
    /// use usersync_core::scim::service::ScimRequest;
    /// let r = ScimRequest::new("GET", "/scim/v2/acme/Users")
    ///     .with_param("filter", r#"title eq "R&D""#)
    ///     .with_param("count", "2");
    /// assert_eq!(r.query, "filter=title%20eq%20%22R%26D%22&count=2");
    /// ```
    #[must_use]
    pub fn with_param(mut self, name: &str, value: &str) -> Self {
        if !self.query.is_empty() {
            self.query.push('&');
        }
        self.query.push_str(name);
        self.query.push('=');
        for b in value.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                self.query.push(char::from(b));
            } else {
                self.query.push_str(&format!("%{b:02X}"));
            }
        }
        self
    }

    /// With a header.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// With a JSON body and its content type.
    #[must_use]
    pub fn with_body(mut self, body: &str) -> Self {
        self.body = body.as_bytes().to_vec();
        self.with_header("Content-Type", SCIM_JSON)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimResponse {
    /// The HTTP status.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body bytes (empty for 204 and 304).
    pub body: Vec<u8>,
    /// Why the server failed, for the operator's log (see [`ScimError::cause`]).
    pub cause: Option<String>,
}

impl ScimResponse {
    /// The value of header `name`, ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A response without a body (204, 304).
    pub(crate) fn empty(status: u16, headers: Vec<(String, String)>) -> Self {
        Self {
            status,
            headers,
            body: Vec::new(),
            cause: None,
        }
    }

    fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".to_owned(), SCIM_JSON.to_owned())],
            body: body.to_string().into_bytes(),
            cause: None,
        }
    }

    fn with_header(mut self, name: &str, value: String) -> Self {
        self.headers.push((name.to_owned(), value));
        self
    }
}

/// Limits and policies of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// Largest page a list returns, whatever `count` asks (default 1000).
    pub max_results: usize,
    /// Largest request body accepted, in bytes (default 1 MiB).
    pub max_payload: usize,
    /// Tolerances for identity providers (on by default), in every directory that is not
    /// strict ([`Directory::strict`](crate::store::Directory::strict)).
    pub compat: Compatibility,
    /// Whether requests need the directory's token (default true). Turn it off only where
    /// the caller has authenticated the request itself.
    pub require_token: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            max_results: 1000,
            max_payload: 1 << 20,
            compat: Compatibility::default(),
            require_token: true,
        }
    }
}

impl ServiceConfig {
    /// With a different [`ServiceConfig::max_results`].
    #[must_use]
    pub fn with_max_results(mut self, max: usize) -> Self {
        self.max_results = max;
        self
    }

    /// With a different [`ServiceConfig::max_payload`].
    #[must_use]
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// With different [`Compatibility`] switches.
    #[must_use]
    pub fn with_compat(mut self, compat: Compatibility) -> Self {
        self.compat = compat;
        self
    }

    /// With tokens required or not (see [`ServiceConfig::require_token`]).
    #[must_use]
    pub fn with_require_token(mut self, required: bool) -> Self {
        self.require_token = required;
        self
    }
}

/// Makes a new resource `id`.
pub type IdGenerator = Arc<dyn Fn() -> String + Send + Sync>;

/// A time-ordered UUID (version 7: milliseconds, then 74 random bits), the default resource
/// `id`. Ids made one after another sort together, so the store's index of ids grows at
/// its end instead of at random pages: bulk imports write a fraction of the pages.
pub fn new_ids() -> IdGenerator {
    Arc::new(|| uuid::Uuid::now_v7().to_string())
}

/// The SCIM service over a [`Store`].
pub struct Service {
    store: Arc<dyn Store>,
    registry: SchemaRegistry,
    config: ServiceConfig,
    ids: IdGenerator,
    cursor_key: cursor::CursorKey,
    /// When cursors are issued and expire.
    clock: crate::store::Clock,
    /// Directories found so far, by name. A directory is never changed or removed once
    /// created (the store has no call for it), so a found one stays true; one not found is
    /// asked again, as it may be created meanwhile. Saves a read on every request.
    directories: std::sync::RwLock<std::collections::HashMap<String, Directory>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a path names, below `/scim/v2/<directory>`.
enum Route<'a> {
    Collection(Kind),
    Resource(Kind, &'a str),
    Schemas(Option<&'a str>),
    ResourceTypes(Option<&'a str>),
    ServiceProviderConfig,
    Me,
    Bulk,
    Search(Option<Kind>),
}

impl Route<'_> {
    /// The methods the endpoint answers, for a 405's `Allow` (HEAD as GET).
    const fn allowed(&self) -> &'static str {
        match self {
            Self::Collection(_) => "GET, HEAD, POST",
            Self::Resource(..) => "GET, HEAD, PUT, PATCH, DELETE",
            Self::Schemas(_) | Self::ResourceTypes(_) | Self::ServiceProviderConfig => "GET, HEAD",
            Self::Me => "",
            Self::Bulk | Self::Search(_) => "POST",
        }
    }
}

impl Service {
    /// A service with the core schemas, default limits and random UUIDs.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with(
            store,
            SchemaRegistry::core(),
            ServiceConfig::default(),
            new_ids(),
        )
    }

    /// A service with the given schemas, limits and `id` generator.
    pub fn with(
        store: Arc<dyn Store>,
        registry: SchemaRegistry,
        config: ServiceConfig,
        ids: IdGenerator,
    ) -> Self {
        Self {
            store,
            registry,
            config,
            ids,
            cursor_key: cursor::CursorKey::random(),
            clock: crate::store::system_clock(),
            directories: std::sync::RwLock::default(),
        }
    }

    /// With `clock` for issuing and expiring cursors (tests move time by hand).
    #[must_use]
    pub fn with_clock(mut self, clock: crate::store::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Answers one request. Never panics on any input, and never answers 500 for a bad
    /// request: only a failing store does.
    pub fn handle(&self, request: &ScimRequest) -> ScimResponse {
        match self.dispatch(request) {
            Ok(r) => r,
            Err(e) => e.to_response(),
        }
    }

    /// `None` when a request to `path` with this `Authorization` header passes the token
    /// check as [`Service::handle`] makes it, else the answer: for a server to refuse a
    /// request before it reads the body, which a client without the token could otherwise
    /// make it take in.
    pub fn refuse_unauthorized(
        &self,
        path: &str,
        authorization: Option<&str>,
    ) -> Option<ScimResponse> {
        self.authorized(path, authorization)
            .err()
            .map(|e| e.to_response())
    }

    /// The directory a request to `path` is for, and the rest of the path, once its token
    /// passes. Without a valid token, an unknown directory answers as a known one does
    /// (401), so that a client cannot probe which names exist.
    fn authorized<'p>(
        &self,
        path: &'p str,
        authorization: Option<&str>,
    ) -> Result<(Directory, &'p str, &'p str), ScimError> {
        let path = path.split('?').next().unwrap_or("");
        let rest = path.strip_prefix("/scim/v2/").ok_or_else(|| {
            ScimError::not_found("SCIM endpoints are under /scim/v2/<directory>/")
        })?;
        let (dir_name, rest) = rest.split_once('/').unwrap_or((rest, ""));
        let directory = match self.directory(dir_name) {
            Err(e) if e.status == 404 && self.config.require_token => {
                return Err(token::refused(authorization));
            }
            found => found?,
        };
        if self.config.require_token {
            token::authorize(&*self.store, &directory, authorization)?;
        }
        Ok((directory, dir_name, rest))
    }

    /// The directory `name`, from the cache when it was found before.
    fn directory(&self, name: &str) -> Result<Directory, ScimError> {
        let cached = self
            .directories
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned();
        if let Some(d) = cached {
            return Ok(d);
        }
        let d = self
            .store
            .directory(name)?
            .ok_or_else(|| ScimError::not_found(format!("no directory `{name}`")))?;
        self.directories
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), d.clone());
        Ok(d)
    }

    fn dispatch(&self, req: &ScimRequest) -> Result<ScimResponse, ScimError> {
        let (directory, dir_name, rest) =
            self.authorized(&req.path, req.header("Authorization"))?;
        let base = format!("/scim/v2/{dir_name}");
        let route = route(rest.trim_end_matches('/'))
            .ok_or_else(|| ScimError::not_found(format!("no endpoint `/{rest}`")))?;
        // HEAD is answered as GET (RFC 9110 §9.3.2); the HTTP server leaves the body out.
        let method = match req.method.to_ascii_uppercase() {
            m if m == "HEAD" => "GET".to_owned(),
            m => m,
        };
        let allow = route.allowed();
        // An LDAP directory's users come from its server: a write here would be undone by
        // the next sync (and could block it at a deletion threshold). Reads stay open.
        let writes =
            method != "GET" && !matches!((method.as_str(), &route), ("POST", Route::Search(_)));
        if writes && directory.kind == crate::store::DirectoryKind::Ldap {
            return Err(ScimError::new(
                403,
                None,
                format!(
                    "directory `{dir_name}` is synced from LDAP: change its users and groups there"
                ),
            ));
        }
        match (method.as_str(), route) {
            ("GET", Route::Collection(kind)) => {
                self.list(&directory, &[kind], &list::query_params(&req.query), &base)
            }
            ("POST", Route::Search(Some(kind))) => self.search(&directory, &[kind], req, &base),
            // At the root: users, then groups (sortBy orders within each type).
            ("POST", Route::Search(None)) => {
                self.search(&directory, &[Kind::User, Kind::Group], req, &base)
            }
            ("POST", Route::Collection(kind)) => self.create(&directory, kind, req, &base),
            ("GET", Route::Resource(kind, id)) => self.get(&directory, kind, id, req, &base),
            ("PUT", Route::Resource(kind, id)) => self.replace(&directory, kind, id, req, &base),
            ("DELETE", Route::Resource(kind, id)) => self.delete(&directory, kind, id, req),
            ("GET", Route::Schemas(id)) => self.schemas(id, &base),
            ("GET", Route::ResourceTypes(name)) => self.resource_types(name, &base),
            ("GET", Route::ServiceProviderConfig) => {
                Ok(self.service_provider_config(&directory, &base))
            }
            (_, Route::Me) => Err(ScimError::new(
                501,
                None,
                "/Me is not supported: tokens belong to directories, not users",
            )),
            ("POST", Route::Bulk) => self.bulk(&directory, req),
            ("PATCH", Route::Resource(kind, id)) => self.patch(&directory, kind, id, req, &base),
            (m, _) => {
                let mut refused =
                    ScimError::new(405, None, format!("method {m} is not allowed here"))
                        .to_response();
                refused.headers.push(("Allow".to_owned(), allow.to_owned()));
                Ok(refused)
            }
        }
    }

    /// The tolerances for identity providers in directory `d`: none where it is strict.
    fn compat(&self, d: &Directory) -> Compatibility {
        if d.strict {
            Compatibility::strict()
        } else {
            self.config.compat
        }
    }

    /// The resource type of `kind`; a registry without it serves no such resources.
    fn resource_type(&self, kind: Kind) -> Result<&ResourceType, ScimError> {
        self.registry.resource_type(kind.as_str()).ok_or_else(|| {
            ScimError::not_found(format!(
                "this service has no {} resource type",
                kind.as_str()
            ))
        })
    }

    fn body(&self, req: &ScimRequest) -> Result<Value, ScimError> {
        if req.body.len() > self.config.max_payload {
            return Err(ScimError::new(
                413,
                None,
                format!("the body is larger than {} bytes", self.config.max_payload),
            ));
        }
        let json_type = req.header("Content-Type").is_some_and(|t| {
            let t = t.split(';').next().unwrap_or("").trim();
            t.eq_ignore_ascii_case(SCIM_JSON) || t.eq_ignore_ascii_case("application/json")
        });
        if !json_type {
            return Err(ScimError::new(
                415,
                None,
                "send the body as application/scim+json or application/json",
            ));
        }
        serde_json::from_slice(&req.body).map_err(|e| {
            ScimError::bad_request("invalidSyntax", format!("the body is not valid JSON: {e}"))
        })
    }

    /// Resolves member ids to users or groups of `directory`.
    fn members(&self, directory: i64, ids: &[String]) -> Result<Vec<Member>, ScimError> {
        ids.iter()
            .map(|id| match member_kind(&*self.store, directory, id)? {
                Some(kind) => Ok(Member {
                    id: id.clone(),
                    kind,
                }),
                None => Err(ScimError::bad_request(
                    "invalidValue",
                    format!("member `{id}` is no user or group of this directory"),
                )),
            })
            .collect()
    }

    /// Renders `r` with its members or groups when the projection wants them.
    fn render(
        &self,
        r: &crate::store::Resource,
        base: &str,
        projection: &Projection,
    ) -> Result<Value, ScimError> {
        let rt = self.resource_type(r.kind)?;
        let (members, groups) = match r.kind {
            Kind::Group if projection.wants(rt, "members") => {
                (Some(self.store.members(r.directory, &r.id)?), None)
            }
            Kind::User if projection.wants(rt, "groups") => {
                (None, Some(self.store.groups_of(r.directory, &r.id)?))
            }
            _ => (None, None),
        };
        Ok(render(
            rt,
            r,
            members.as_deref(),
            groups.as_deref(),
            base,
            projection,
        ))
    }

    fn projection(req: &ScimRequest) -> Result<Projection, ScimError> {
        let params = list::query_params(&req.query);
        Projection::parse(
            list::param(&params, "attributes"),
            list::param(&params, "excludedAttributes"),
        )
    }

    fn create(
        &self,
        d: &Directory,
        kind: Kind,
        req: &ScimRequest,
        base: &str,
    ) -> Result<ScimResponse, ScimError> {
        // Read before anything is written: a 400 must mean nothing changed.
        let projection = Self::projection(req)?;
        let body = self.body(req)?;
        let mut input = read_input(self.resource_type(kind)?, kind, &body, self.compat(d))?;
        settle_primaries(&Map::new(), &mut input.attributes, Edit::Whole)?;
        let members = self.members(d.id, input.members.as_deref().unwrap_or_default())?;
        let created = self.store.create(NewResource {
            directory: d.id,
            kind,
            id: (self.ids)(),
            external_id: input.external_id,
            name: input.name,
            active: input.active,
            attributes: Value::Object(input.attributes),
            members,
            password: match password_change(d, input.password.as_ref())? {
                Some(PasswordChange::Set(hash)) => Some(hash),
                _ => None,
            },
        })?;
        let rendered = self.render(&created, base, &projection)?;
        let location = rendered["meta"]["location"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(ScimResponse::json(201, &rendered)
            .with_header("Location", location)
            .with_header("ETag", etag(created.version)))
    }

    fn get(
        &self,
        d: &Directory,
        kind: Kind,
        id: &str,
        req: &ScimRequest,
        base: &str,
    ) -> Result<ScimResponse, ScimError> {
        let projection = Self::projection(req)?;
        let rt = self.resource_type(kind)?;
        // A user's groups are read with it, in one read, when the answer shows them.
        let (r, groups) = if kind == Kind::User && projection.wants(rt, "groups") {
            let (r, groups) = self
                .store
                .get_user_with_groups(d.id, id)?
                .ok_or_else(|| ScimError::not_found(format!("User `{id}` not found")))?;
            (r, Some(groups))
        } else {
            (self.existing(d, kind, id)?, None)
        };
        // A user's version does not move when a group it is in changes: with `groups`
        // shown, the same version may be another representation, so no 304.
        if groups.is_none()
            && let Some(tags) = req.header("If-None-Match")
            && etag_matches(tags, r.version)
        {
            return Ok(ScimResponse::empty(
                304,
                vec![("ETag".into(), etag(r.version))],
            ));
        }
        let rendered = match groups {
            Some(groups) => render(rt, &r, None, Some(&groups), base, &projection),
            None => self.render(&r, base, &projection)?,
        };
        Ok(ScimResponse::json(200, &rendered).with_header("ETag", etag(r.version)))
    }

    fn existing(
        &self,
        d: &Directory,
        kind: Kind,
        id: &str,
    ) -> Result<crate::store::Resource, ScimError> {
        self.store
            .get(d.id, kind, id)?
            .ok_or_else(|| ScimError::not_found(format!("{} `{id}` not found", kind.as_str())))
    }

    /// The version `If-Match` requires, after checking it against the current one.
    fn if_match(req: &ScimRequest, current: u64) -> Result<Option<u64>, ScimError> {
        match req.header("If-Match") {
            None => Ok(None),
            Some(tags) if etag_matches(tags, current) => Ok(Some(current)),
            Some(_) => Err(ScimError::new(
                412,
                None,
                format!(
                    "If-Match does not match the current version {}",
                    etag(current)
                ),
            )),
        }
    }

    /// Runs `attempt` again when a concurrent change slipped in between its read and its
    /// write, unless the client pinned a version with `If-Match` (then the 412 is its answer).
    fn retrying(
        &self,
        req: &ScimRequest,
        mut attempt: impl FnMut() -> Result<ScimResponse, ScimError>,
    ) -> Result<ScimResponse, ScimError> {
        let pinned = req.header("If-Match").is_some();
        for _ in 0..16 {
            match attempt() {
                Err(e) if e.status == 412 && !pinned => continue,
                other => return other,
            }
        }
        attempt()
    }

    fn replace(
        &self,
        d: &Directory,
        kind: Kind,
        id: &str,
        req: &ScimRequest,
        base: &str,
    ) -> Result<ScimResponse, ScimError> {
        self.retrying(req, || self.replace_once(d, kind, id, req, base))
    }

    fn replace_once(
        &self,
        d: &Directory,
        kind: Kind,
        id: &str,
        req: &ScimRequest,
        base: &str,
    ) -> Result<ScimResponse, ScimError> {
        let projection = Self::projection(req)?;
        let current = self.existing(d, kind, id)?;
        let expected = Self::if_match(req, current.version)?;
        let body = self.body(req)?;
        let rt = self.resource_type(kind)?;
        let mut input = read_held(rt, kind, &body, self.compat(d))?;
        check_key_lengths(kind, &input, Some(&current))?;
        // A body without `active` keeps a disabled user disabled: RFC 7644 §3.5.1 lets an
        // omitted attribute be cleared or defaulted, and re-enabling a deprovisioned account
        // is what no client means (a PATCH refuses to remove `active` for the same reason).
        if kind == Kind::User && !current.active && !input.attributes.contains_key("active") {
            input.active = false;
            input.attributes.insert("active".into(), Value::Bool(false));
        }
        let held = current.attributes.as_object().cloned().unwrap_or_default();
        settle_primaries(&held, &mut input.attributes, Edit::Whole)?;
        check_immutable(rt, &current.attributes, &input.attributes)?;
        let members = match &input.members {
            Some(ids) => Some(self.members(d.id, ids)?),
            None => None,
        };
        // A PUT without `password` keeps the one kept: no client can send back a password it
        // is never shown.
        let change = Change {
            password: password_change(d, input.password.as_ref())?,
            replacement: Some(Replacement {
                external_id: input.external_id,
                name: input.name,
                active: input.active,
                attributes: Value::Object(input.attributes),
                members: members.or_else(|| (kind == Kind::Group).then(Vec::new)),
            }),
            // Immutability was checked against the content read: write only over that one
            // (or, with If-Match, over that version).
            unless_changed: Some(Content::of(&current)),
            ..Change::default()
        };
        let replaced = self.store.update(d.id, kind, id, expected, change)?;
        let rendered = self.render(&replaced, base, &projection)?;
        Ok(ScimResponse::json(200, &rendered).with_header("ETag", etag(replaced.version)))
    }

    fn delete(
        &self,
        d: &Directory,
        kind: Kind,
        id: &str,
        req: &ScimRequest,
    ) -> Result<ScimResponse, ScimError> {
        let current = self.existing(d, kind, id)?;
        let expected = Self::if_match(req, current.version)?;
        self.store.delete(d.id, kind, id, expected)?;
        Ok(ScimResponse::empty(204, Vec::new()))
    }

    fn schemas(&self, id: Option<&str>, base: &str) -> Result<ScimResponse, ScimError> {
        let with_meta = |s: &crate::scim::schema::Schema| {
            let mut v = s.to_json();
            v["meta"] =
                json!({"resourceType": "Schema", "location": format!("{base}/Schemas/{}", s.id)});
            v
        };
        match id {
            Some(id) => {
                let s = self
                    .registry
                    .schema(id)
                    .ok_or_else(|| ScimError::not_found(format!("no schema `{id}`")))?;
                Ok(ScimResponse::json(200, &with_meta(s)))
            }
            None => Ok(ScimResponse::json(
                200,
                &whole_list(self.registry.schemas().map(with_meta).collect()),
            )),
        }
    }

    fn resource_types(&self, name: Option<&str>, base: &str) -> Result<ScimResponse, ScimError> {
        let render = |rt: &ResourceType| {
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                "id": rt.name,
                "name": rt.name,
                "endpoint": rt.endpoint,
                "description": rt.description,
                "schema": rt.schema.id,
                "schemaExtensions": rt.extensions.iter()
                    .map(|e| json!({"schema": e.schema.id, "required": e.required}))
                    .collect::<Vec<_>>(),
                "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", rt.name)},
            })
        };
        match name {
            Some(n) => {
                let rt = self
                    .registry
                    .resource_type(n)
                    .ok_or_else(|| ScimError::not_found(format!("no resource type `{n}`")))?;
                Ok(ScimResponse::json(200, &render(rt)))
            }
            None => Ok(ScimResponse::json(
                200,
                &whole_list(self.registry.resource_types().iter().map(render).collect()),
            )),
        }
    }

    /// What this service supports, truthfully: a password change means something only where
    /// the directory keeps password hashes.
    fn service_provider_config(&self, d: &Directory, base: &str) -> ScimResponse {
        ScimResponse::json(
            200,
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                "patch": {"supported": true},
                "bulk": {"supported": true, "maxOperations": bulk::MAX_OPERATIONS, "maxPayloadSize": self.config.max_payload},
                "filter": {"supported": true, "maxResults": self.config.max_results},
                "pagination": {
                    "cursor": true,
                    "index": true,
                    "defaultPaginationMethod": "index",
                    "defaultPageSize": self.config.max_results,
                    "maxPageSize": self.config.max_results,
                    "cursorTimeout": cursor::CURSOR_TIMEOUT_SECONDS,
                },
                "changePassword": {"supported": d.keep_password_hashes},
                "sort": {"supported": true},
                "etag": {"supported": true},
                "authenticationSchemes": [{
                    "type": "oauthbearertoken",
                    "name": "Directory token",
                    "description": "The directory's secret token, sent as `Authorization: Bearer <token>`",
                    "primary": true
                }],
                "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
            }),
        )
    }
}

fn route(rest: &str) -> Option<Route<'_>> {
    let mut parts = rest.splitn(2, '/');
    let first = parts.next().unwrap_or("");
    let second = parts.next();
    let kind = match first {
        "Users" => Some(Kind::User),
        "Groups" => Some(Kind::Group),
        _ => None,
    };
    Some(match (first, second) {
        (_, Some(".search")) if kind.is_some() => Route::Search(kind),
        (_, None) if kind.is_some() => Route::Collection(kind?),
        // No id holds U+0000 (PostgreSQL text cannot): such a path names nothing.
        (_, Some(id)) if kind.is_some() && !id.is_empty() && !id.contains(['/', '\0']) => {
            Route::Resource(kind?, id)
        }
        ("Schemas", id) => Route::Schemas(id),
        ("ResourceTypes", name) => Route::ResourceTypes(name),
        ("ServiceProviderConfig", None) => Route::ServiceProviderConfig,
        ("Me", _) => Route::Me,
        ("Bulk", None) => Route::Bulk,
        (".search", None) => Route::Search(None),
        _ => return None,
    })
}

/// The change to the kept password hash that a request's `password` asks for: its hash where
/// `d` keeps hashes; nothing otherwise (the password was checked, and is dropped).
fn password_change(
    d: &Directory,
    password: Option<&Password>,
) -> Result<Option<PasswordChange>, ScimError> {
    match password {
        Some(p) if d.keep_password_hashes => Ok(Some(PasswordChange::Set(password::hash(&p.0)?))),
        _ => Ok(None),
    }
}

/// Whether a request body's `schemas` names `urn`.
fn declares(body: &Value, urn: &str) -> bool {
    crate::scim::filter::eval::get(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|u| u.as_str() == Some(urn)))
}

/// Whether an `If-Match` / `If-None-Match` value names `version` (or is `*`).
fn etag_matches(header: &str, version: u64) -> bool {
    header.split(',').map(str::trim).any(|tag| {
        tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == version.to_string()
    })
}

/// A ListResponse holding one page of `total` results; `start` is the 1-based index of the
/// page (absent under cursor paging).
fn list_response(page: Vec<Value>, total: usize, start: Option<usize>) -> Value {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "itemsPerPage": page.len(),
        "Resources": page,
    });
    if let Some(start) = start {
        body["startIndex"] = json!(start);
    }
    body
}

/// A ListResponse with everything in one page.
fn whole_list(resources: Vec<Value>) -> Value {
    let total = resources.len();
    list_response(resources, total, Some(1))
}
