//! `usersync.Service`: the SCIM endpoint without HTTP, for tests and scripts. Every answer is
//! a `Response`, errors included, exactly as `usersync serve` would send it.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use usersync_core::scim::service::{
    ScimRequest, ScimResponse, Service as CoreService, ServiceConfig, new_ids,
};

use crate::convert::{self, USIZE_MAX, int_arg, saturating_int};
use crate::errors::{Failure, Kind};
use crate::filters::registry;
use crate::store::{Shared, Store};

/// A SCIM 2.0 service over a usersync database: `handle()` answers one request.
///
/// `require_token=False` lets requests in without a directory's bearer token (scripts run
/// as the administrator); by default a request needs one, as over HTTP.
#[pyclass(frozen, module = "usersync")]
pub(crate) struct Service {
    service: CoreService,
    shared: Arc<Shared>,
}

#[pymethods]
impl Service {
    #[new]
    #[pyo3(signature = (database, *, require_token = true, max_results = None, max_payload = None))]
    fn new(
        py: Python<'_>,
        database: &Bound<'_, PyAny>,
        require_token: bool,
        max_results: Option<&Bound<'_, PyAny>>,
        max_payload: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let shared = if let Ok(store) = database.cast::<Store>() {
            store.get().shared.clone()
        } else {
            let path: PathBuf = database.extract()?;
            crate::store::open(py, path)?.shared
        };
        let mut config = ServiceConfig::default().with_require_token(require_token);
        if let Some(value) = max_results {
            let max: usize = int_arg(saturating_int(value)?, "max_results", 1..=USIZE_MAX)?;
            config = config.with_max_results(max);
        }
        if let Some(value) = max_payload {
            let max: usize = int_arg(saturating_int(value)?, "max_payload", 1..=USIZE_MAX)?;
            config = config.with_max_payload(max);
        }
        let service =
            CoreService::with(shared.store.clone(), registry().clone(), config, new_ids());
        Ok(Self { service, shared })
    }

    fn __repr__(&self) -> String {
        format!("usersync.Service({:?})", self.shared.shown())
    }

    /// Answers one request: `method` (`GET`, `POST`…), `path` (`/scim/v2/<directory>/Users`),
    /// `query` (the raw query string, without `?`), `headers` (a dict), `body` (bytes, str,
    /// or a dict/list sent as JSON with `Content-Type: application/scim+json`).
    #[pyo3(signature = (method, path, *, query = "", headers = None, body = None))]
    fn handle(
        &self,
        py: Python<'_>,
        method: &str,
        path: &str,
        query: &str,
        headers: Option<&Bound<'_, PyDict>>,
        body: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Response> {
        let mut request = ScimRequest::new(method, path).with_query(query);
        let mut has_content_type = false;
        for (name, value) in headers.into_iter().flat_map(|h| h.iter()) {
            let name: String = name.extract()?;
            let value: String = value.extract()?;
            has_content_type |= name.eq_ignore_ascii_case("content-type");
            request = request.with_header(&name, &value);
        }
        if let Some(body) = body {
            if let Ok(bytes) = body.cast::<PyBytes>() {
                request.body = bytes.as_bytes().to_vec();
            } else if let Ok(text) = body.cast::<PyString>() {
                request.body = text.to_cow()?.as_bytes().to_vec();
            } else {
                request.body = convert::from_py(body)?.to_string().into_bytes();
                if !has_content_type {
                    request = request.with_header("Content-Type", "application/scim+json");
                }
            }
        }
        let response = py.detach(|| self.service.handle(&request));
        Ok(Response { inner: response })
    }
}

/// A SCIM response: `status`, `headers` (a dict, names as sent), `body` (bytes); `json()`
/// decodes the body (`None` when it is empty).
#[pyclass(frozen, module = "usersync")]
pub(crate) struct Response {
    inner: ScimResponse,
}

#[pymethods]
impl Response {
    #[getter]
    fn status(&self) -> u16 {
        self.inner.status
    }

    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (name, value) in &self.inner.headers {
            dict.set_item(name, value)?;
        }
        Ok(dict)
    }

    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.body)
    }

    /// Why the service failed, for a 500 whose cause is known (a store that cannot be read
    /// or written): for the server's log only, since a backend's text may name files or
    /// hosts; `None` otherwise.
    #[getter]
    fn cause(&self) -> Option<&str> {
        self.inner.cause.as_deref()
    }

    /// The header `name`, matched ignoring case, or `None`.
    fn header(&self, name: &str) -> Option<String> {
        self.inner.header(name).map(str::to_owned)
    }

    /// The body decoded from JSON, `None` when there is none.
    fn json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.inner.body.is_empty() {
            return Ok(py.None().into_bound(py));
        }
        let value: serde_json::Value = serde_json::from_slice(&self.inner.body)
            .map_err(|e| Failure::new(Kind::InvalidValue, format!("the body is not JSON: {e}")))?;
        convert::to_py(py, &value)
    }

    fn __repr__(&self) -> String {
        format!(
            "<usersync.Response {} ({} bytes)>",
            self.inner.status,
            self.inner.body.len()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Service>()?;
    m.add_class::<Response>()?;
    Ok(())
}
