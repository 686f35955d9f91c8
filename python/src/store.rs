//! `usersync.open(path)`: the embedded store of directories, users, groups and the change
//! feed. Users and groups come out as the SCIM JSON a GET of them answers, as dicts.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use serde_json::{Value, json};
use usersync_core::scim::service::{
    ScimRequest, Service, ServiceConfig, create_directory, issue_token, new_ids,
};
use usersync_core::store::{
    Directory, DirectoryKind, Kind as ResourceKind, NewDirectory, Store as CoreStore, SyncRun,
    UserNameScope, directory_summaries, event_feed, system_clock,
};

use crate::convert::{USIZE_MAX, int_arg, saturating_int, to_py};
use crate::errors::{Failure, Kind, Result};
use crate::filters::registry;

/// The database and the SCIM service over it that answers the store's reads.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn CoreStore>,
    /// Reads go through the service, so that a dict here is what a SCIM client would get;
    /// no token: the script is the administrator.
    reads: Service,
    /// The SQLite file's path or the PostgreSQL URL, as given.
    location: String,
}

impl Shared {
    fn open(path: PathBuf) -> Result<Self> {
        if path.as_os_str().is_empty() {
            return Err(Failure::new(
                Kind::InvalidArgument,
                "the database path is empty",
            ));
        }
        let location = path
            .into_os_string()
            .into_string()
            .map_err(|_| Failure::new(Kind::InvalidArgument, "the database path is not UTF-8"))?;
        let store: Arc<dyn CoreStore> = usersync_core::store::open(&location, system_clock())
            .map_err(|e| Failure::store(&e))?;
        let reads = Service::with(
            store.clone(),
            registry().clone(),
            ServiceConfig::default().with_require_token(false),
            new_ids(),
        );
        Ok(Self {
            store,
            reads,
            location,
        })
    }

    /// The location for a `repr`: a PostgreSQL URL's password left out, since reprs end
    /// up in logs and tracebacks.
    pub(crate) fn shown(&self) -> String {
        usersync_core::store::shown_location(&self.location)
    }

    fn directory(&self, name: &str) -> Result<Directory> {
        self.store
            .directory(name)
            .map_err(|e| Failure::store(&e))?
            .ok_or_else(|| Failure::new(Kind::NotFound, format!("no directory `{name}`")))
    }

    /// A GET through the service: the JSON body of a 200, `None` for a 404 of a resource,
    /// a failure otherwise: a request the service refuses (4xx) is the caller's argument at
    /// fault, and only a 5xx is the database failing.
    fn get(&self, request: &ScimRequest) -> Result<Option<Value>> {
        let response = self.reads.handle(request);
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        match response.status {
            200 => Ok(Some(body)),
            404 => Ok(None),
            status => {
                let detail = body["detail"].as_str().unwrap_or("no detail");
                let kind = match body["scimType"].as_str() {
                    Some("invalidFilter") => Kind::InvalidFilter,
                    _ if (400..500).contains(&status) => Kind::InvalidArgument,
                    _ => Kind::StoreBackend,
                };
                Err(Failure::new(kind, detail))
            }
        }
    }
}

/// A usersync database (SQLite, or PostgreSQL), opened by `usersync.open(path)`. Thread-safe.
#[pyclass(frozen, module = "usersync")]
pub(crate) struct Store {
    pub(crate) shared: Arc<Shared>,
}

/// Opens (or creates) the SQLite database at `path`, or connects to the PostgreSQL database
/// a `postgres://` URL names.
#[pyfunction]
pub(crate) fn open(py: Python<'_>, path: PathBuf) -> Result<Store> {
    let shared = py.detach(|| Shared::open(path))?;
    Ok(Store {
        shared: Arc::new(shared),
    })
}

#[pymethods]
impl Store {
    fn __repr__(&self) -> String {
        format!("usersync.Store({:?})", self.shared.shown())
    }

    /// The database file, or the PostgreSQL URL, as given to `open` (`usersync.open(store.path)`
    /// opens it again).
    #[getter]
    fn path(&self) -> &str {
        &self.shared.location
    }

    /// Creates the directory `name` of `kind` (`scim`, `ldap` or `local`) with its settings,
    /// chosen once: days a deactivated user is kept, whom a `userName` must be unique among
    /// (`platform` or `directory`), whether passwords sent by identity providers are kept
    /// as Argon2id hashes (for `verify_password`), and whether the endpoint holds clients to
    /// RFC 7644 to the letter (`strict`). Returns `{"name", "kind", "endpoint", "token"}`; a
    /// `scim` directory's token is shown this once.
    #[pyo3(signature = (
        name,
        kind = "scim",
        *,
        retention_days = 30,
        user_name_scope = "platform",
        keep_password_hashes = false,
        strict = false,
    ))]
    #[allow(clippy::too_many_arguments)] // one per Python keyword argument
    fn create_directory<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        kind: &str,
        #[pyo3(from_py_with = saturating_int)] retention_days: i128,
        user_name_scope: &str,
        keep_password_hashes: bool,
        strict: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let retention_days: u32 =
            int_arg(retention_days, "retention_days", 0..=i128::from(u32::MAX))?;
        let kind = DirectoryKind::parse(kind).ok_or_else(|| {
            Failure::new(
                Kind::InvalidArgument,
                format!("unknown directory kind `{kind}` (scim, ldap or local)"),
            )
        })?;
        let scope = UserNameScope::parse(user_name_scope).ok_or_else(|| {
            Failure::new(
                Kind::InvalidArgument,
                format!("unknown user_name_scope `{user_name_scope}` (platform or directory)"),
            )
        })?;
        let new = NewDirectory {
            retention_days,
            user_name_scope: scope,
            keep_password_hashes,
            strict,
            ..NewDirectory::new(name, kind)
        };
        let store = &*self.shared.store;
        let created = py
            .detach(|| create_directory(store, new))
            .map_err(|e| Failure::store(&e))?;
        to_py(py, &created)
    }

    /// Checks a sign-in against a directory that keeps password hashes: the `id` of the
    /// active user `user_name` (case ignored) whose password this is, or `None` — for an
    /// unknown user, an inactive one, one without a kept password or a wrong password alike,
    /// after the same work. Runs without the GIL (an Argon2id check takes ~30 ms).
    fn verify_password(
        &self,
        py: Python<'_>,
        directory: &str,
        user_name: &str,
        password: &str,
    ) -> PyResult<Option<String>> {
        let store = &*self.shared.store;
        let user = py
            .detach(|| usersync_core::password::verify(store, directory, user_name, password))
            .map_err(|e| Failure::store(&e))?;
        Ok(user.map(|u| u.id))
    }

    /// Every directory: `[{"name", "kind", "endpoint", "activeUsers", "inactiveUsers",
    /// "retentionDays", "userNameScope", "keepPasswordHashes", "strict"}]`.
    fn directories<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rows = py
            .detach(|| directory_summaries(&*self.shared.store))
            .map_err(|e| Failure::store(&e))?;
        to_py(py, &Value::Array(rows))
    }

    /// Issues a new token for the directory, leaving the others valid so that clients can
    /// switch without downtime. Returns `{"id", "token"}`; the token is shown this once.
    fn rotate_token<'py>(&self, py: Python<'py>, directory: &str) -> PyResult<Bound<'py, PyAny>> {
        let issued = py.detach(|| -> Result<Value> {
            let d = self.shared.directory(directory)?;
            let (token, stored) =
                issue_token(&*self.shared.store, &d).map_err(|e| Failure::store(&e))?;
            Ok(json!({"id": stored.id, "token": token}))
        })?;
        to_py(py, &issued)
    }

    /// The directory's tokens: `[{"id", "created"}]` (only hashes are kept: never the token).
    fn tokens<'py>(&self, py: Python<'py>, directory: &str) -> PyResult<Bound<'py, PyAny>> {
        let list = py.detach(|| -> Result<Value> {
            let d = self.shared.directory(directory)?;
            let tokens = self
                .shared
                .store
                .tokens(d.id)
                .map_err(|e| Failure::store(&e))?;
            Ok(tokens
                .iter()
                .map(|t| json!({"id": t.id, "created": t.created.to_string()}))
                .collect())
        })?;
        to_py(py, &list)
    }

    /// Revokes a token: requests carrying it are refused from now on.
    fn revoke_token(
        &self,
        py: Python<'_>,
        directory: &str,
        #[pyo3(from_py_with = saturating_int)] token_id: i128,
    ) -> Result<()> {
        let token_id: i64 = int_arg(
            token_id,
            "token_id",
            i128::from(i64::MIN)..=i128::from(i64::MAX),
        )?;
        py.detach(|| {
            let d = self.shared.directory(directory)?;
            self.shared
                .store
                .revoke_token(d.id, token_id)
                .map_err(|e| Failure::store(&e))
        })
    }

    /// The user `id` of `directory` as SCIM JSON, or `None` when there is no such user.
    fn get_user<'py>(
        &self,
        py: Python<'py>,
        directory: &str,
        id: &str,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.get(py, directory, ResourceKind::User, id)
    }

    /// The group `id` of `directory` as SCIM JSON, or `None` when there is no such group.
    fn get_group<'py>(
        &self,
        py: Python<'py>,
        directory: &str,
        id: &str,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.get(py, directory, ResourceKind::Group, id)
    }

    /// The users of `directory` that `filter` (a SCIM filter) selects, all of them when it
    /// is `None`, read lazily `page_size` at a time in a stable order.
    #[pyo3(signature = (directory, filter = None, *, page_size = 100))]
    fn users(
        &self,
        py: Python<'_>,
        directory: &str,
        filter: Option<&str>,
        #[pyo3(from_py_with = saturating_int)] page_size: i128,
    ) -> PyResult<Pages> {
        Pages::start(
            py,
            &self.shared,
            directory,
            ResourceKind::User,
            filter,
            page_size,
        )
    }

    /// The groups of `directory` that `filter` selects, as `users` does.
    #[pyo3(signature = (directory, filter = None, *, page_size = 100))]
    fn groups(
        &self,
        py: Python<'_>,
        directory: &str,
        filter: Option<&str>,
        #[pyo3(from_py_with = saturating_int)] page_size: i128,
    ) -> PyResult<Pages> {
        Pages::start(
            py,
            &self.shared,
            directory,
            ResourceKind::Group,
            filter,
            page_size,
        )
    }

    /// `{"active": n, "inactive": m}`: the directory's licensed and deactivated users.
    fn user_counts<'py>(&self, py: Python<'py>, directory: &str) -> PyResult<Bound<'py, PyAny>> {
        let counts = py.detach(|| -> Result<Value> {
            let d = self.shared.directory(directory)?;
            let c = self
                .shared
                .store
                .user_counts(d.id)
                .map_err(|e| Failure::store(&e))?;
            Ok(json!({"active": c.active, "inactive": c.inactive}))
        })?;
        to_py(py, &counts)
    }

    /// Up to `limit` change-feed events after sequence number `seq` (0: from the start), in
    /// order: `[{"seq", "directory", "type", "id", "event", "version", "time"}]`. Pass the last
    /// event's `seq` next time; an event committed late is never skipped.
    ///
    /// With `wait` (seconds), when there is no event yet, waits up to that long for one
    /// instead of returning `[]` at once: a follower needs no polling loop. On PostgreSQL
    /// the wait ends as the writing transaction commits, on any node (LISTEN/NOTIFY).
    #[pyo3(signature = (seq = 0, limit = 1000, *, wait = 0.0))]
    fn events_after<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = saturating_int)] seq: i128,
        #[pyo3(from_py_with = saturating_int)] limit: i128,
        wait: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let seq: u64 = int_arg(seq, "seq", 0..=i128::from(u64::MAX))?;
        let limit: usize = int_arg(limit, "limit", 1..=USIZE_MAX)?;
        if !(wait.is_finite() && (0.0..=86_400.0).contains(&wait)) {
            return Err(Failure::new(
                Kind::InvalidArgument,
                "`wait` must be between 0 and 86400 seconds",
            )
            .into());
        }
        // In slices of at most a second, so that Ctrl-C interrupts a long wait.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(wait);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let slice = left.min(std::time::Duration::from_secs(1));
            let available = py
                .detach(|| self.shared.store.wait_for_events(seq, slice))
                .map_err(|e| Failure::store(&e))?;
            if available {
                break;
            }
            py.check_signals()?;
        }
        let events = py
            .detach(|| event_feed(&*self.shared.store, seq, limit.min(10_000)))
            .map_err(|e| Failure::store(&e))?;
        to_py(py, &Value::Array(events))
    }

    /// Deletes the users inactive for longer than their directory's retention, in
    /// `directory` or in every directory; returns `{directory: users purged}` for those that
    /// purged any. Run it on a timer if no `usersync serve` does (it purges hourly).
    #[pyo3(signature = (directory = None))]
    fn purge_inactive<'py>(
        &self,
        py: Python<'py>,
        directory: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let purged = py.detach(|| {
            usersync_core::store::purge_expired(&*self.shared.store, system_clock()(), directory)
                .map_err(|e| Failure::store(&e))
        })?;
        let counts: serde_json::Map<String, Value> =
            purged.into_iter().map(|(d, n)| (d, json!(n))).collect();
        to_py(py, &Value::Object(counts))
    }

    /// The last `limit` sync runs of the directory, newest first: `[{"id", "started",
    /// "finished", "outcome", "report"}]`.
    #[pyo3(signature = (directory, limit = 20))]
    fn runs<'py>(
        &self,
        py: Python<'py>,
        directory: &str,
        #[pyo3(from_py_with = saturating_int)] limit: i128,
    ) -> PyResult<Bound<'py, PyAny>> {
        let limit: usize = int_arg(limit, "limit", 1..=USIZE_MAX)?;
        let runs = py.detach(|| -> Result<Value> {
            let d = self.shared.directory(directory)?;
            let runs = self
                .shared
                .store
                .runs(d.id, limit)
                .map_err(|e| Failure::store(&e))?;
            Ok(runs.iter().map(SyncRun::to_json).collect())
        })?;
        to_py(py, &runs)
    }
}

impl Store {
    fn get<'py>(
        &self,
        py: Python<'py>,
        directory: &str,
        kind: ResourceKind,
        id: &str,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let found = py.detach(|| {
            self.shared.directory(directory)?;
            if !could_be_id(id) {
                return Ok(None);
            }
            self.shared.get(&ScimRequest::new(
                "GET",
                &format!("/scim/v2/{directory}/{}/{id}", kind.collection()),
            ))
        })?;
        found.map(|v| to_py(py, &v)).transpose()
    }
}

/// Whether `id` could name a resource: one path segment of its own. The empty id would read
/// the collection, `.search` the search endpoint, `.` and `..` a path that a server may
/// resolve to another; `?` and `#` would end the path, and no id holds U+0000.
fn could_be_id(id: &str) -> bool {
    !matches!(id, "" | "." | ".." | ".search") && !id.contains(['/', '?', '#', '\0'])
}

/// A lazy iterator over the users or groups a search selects, one page per read (RFC 9865
/// cursors: a change between pages neither repeats nor skips what is left).
#[pyclass(module = "usersync")]
pub(crate) struct Pages {
    shared: Arc<Shared>,
    path: String,
    page_size: usize,
    filter: Option<String>,
    state: Mutex<PageState>,
}

struct PageState {
    buffered: VecDeque<Value>,
    /// `None` once the last page was read.
    cursor: Option<String>,
    total: Option<u64>,
}

impl Pages {
    fn start(
        py: Python<'_>,
        shared: &Arc<Shared>,
        directory: &str,
        kind: ResourceKind,
        filter: Option<&str>,
        page_size: i128,
    ) -> PyResult<Self> {
        let page_size: usize = int_arg(page_size, "page_size", 1..=USIZE_MAX)?;
        py.detach(|| shared.directory(directory))?;
        if let Some(filter) = filter {
            // Checked now, so that a bad filter fails where it is written, not at the first
            // `next()`.
            let parsed = usersync_core::scim::filter::Filter::parse(filter)
                .map_err(|e| Failure::core(&e, filter))?;
            let ty = registry()
                .resource_type(kind.as_str())
                .ok_or_else(|| Failure::new(Kind::InvalidSchema, "no built-in type"))?;
            parsed.compile(ty).map_err(|e| Failure::core(&e, filter))?;
        }
        Ok(Self {
            shared: shared.clone(),
            path: format!("/scim/v2/{directory}/{}", kind.collection()),
            page_size,
            filter: filter.map(str::to_owned),
            state: Mutex::new(PageState {
                buffered: VecDeque::new(),
                cursor: Some(String::new()),
                total: None,
            }),
        })
    }

    /// Reads the next page into the buffer.
    fn fetch(&self, state: &mut PageState) -> Result<()> {
        // Kept until the page is read: after a failed read (a busy database), the next
        // `next()` reads the same page again instead of ending the iteration.
        let Some(cursor) = state.cursor.clone() else {
            return Ok(());
        };
        let mut request = ScimRequest::new("GET", &self.path)
            .with_param("count", &self.page_size.to_string())
            .with_param("cursor", &cursor);
        if let Some(filter) = &self.filter {
            request = request.with_param("filter", filter);
        }
        let page = self
            .shared
            .get(&request)?
            .ok_or_else(|| Failure::new(Kind::NotFound, "the directory was deleted"))?;
        state.total = page["totalResults"].as_u64();
        state.cursor = page["nextCursor"].as_str().map(str::to_owned);
        if let Some(Value::Array(resources)) = page.get("Resources") {
            state.buffered.extend(resources.iter().cloned());
        }
        Ok(())
    }
}

#[pymethods]
impl Pages {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let next = py.detach(|| -> Result<Option<Value>> {
            let mut state = self
                .state
                .lock()
                .map_err(|_| Failure::new(Kind::StoreBackend, "a page read failed"))?;
            while state.buffered.is_empty() && state.cursor.is_some() {
                self.fetch(&mut state)?;
            }
            Ok(state.buffered.pop_front())
        })?;
        next.map(|v| to_py(py, &v)).transpose()
    }

    /// How many resources the search selects (read with the first page).
    fn total(&self, py: Python<'_>) -> Result<u64> {
        py.detach(|| {
            let mut state = self
                .state
                .lock()
                .map_err(|_| Failure::new(Kind::StoreBackend, "a page read failed"))?;
            if state.total.is_none() {
                self.fetch(&mut state)?;
            }
            Ok(state.total.unwrap_or(0))
        })
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Store>()?;
    m.add_class::<Pages>()?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    Ok(())
}
