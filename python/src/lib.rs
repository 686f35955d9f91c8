//! `usersync._native`: the compiled half of the Python package `usersync`. The pure-Python
//! package re-exports it with the exceptions of `usersync/errors.py`; users never import
//! this module themselves.
//!
//! Every call that reads LDAP, the database or plans a sync runs with the GIL released
//! (`Python::detach`), so other Python threads keep running meanwhile.

use pyo3::prelude::*;

mod convert;
mod errors;
mod filters;
mod service;
mod store;
mod sync;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    filters::register(m)?;
    store::register(m)?;
    service::register(m)?;
    sync::register(m)?;
    Ok(())
}
