//! LDAP syncs: a configuration, the plan of changes it would make (to review), and the apply.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::exceptions::{PyException, PyIndexError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;
use usersync_core::ldap::apply::{ApplyOptions, LocalTarget, Progress};
use usersync_core::ldap::config::SyncConfig as CoreConfig;
use usersync_core::ldap::plan::{Change as CoreChange, Plan as CorePlan};
use usersync_core::ldap::run::{self, Planned, Run, RunOutcome};
use usersync_core::store::{SyncLock, system_clock};

use crate::convert::{from_py, saturating_int, to_py};
use crate::errors::{Failure, Kind, Result};
use crate::store::{Shared, Store};

/// A checked LDAP sync configuration (the TOML file `examples/openldap.toml` shows).
#[pyclass(frozen, module = "usersync")]
pub(crate) struct SyncConfig {
    config: CoreConfig,
}

#[pymethods]
impl SyncConfig {
    /// Reads and checks a configuration file; raises `ConfigError` naming the key at fault.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> Result<Self> {
        let config = py
            .detach(|| CoreConfig::from_file(&path))
            .map_err(|e| Failure::config(&e))?;
        Ok(Self { config })
    }

    /// Checks a configuration given as TOML text.
    #[staticmethod]
    fn from_toml(text: &str) -> Result<Self> {
        let config = CoreConfig::from_toml(text).map_err(|e| Failure::config(&e))?;
        Ok(Self { config })
    }

    /// Checks a configuration given as a dict with the file's keys and tables; a path may be
    /// given as a `pathlib.Path` (any `os.PathLike`).
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyDict>) -> PyResult<Self> {
        let config =
            CoreConfig::from_json(from_py(data.as_any())?).map_err(|e| Failure::config(&e))?;
        Ok(Self { config })
    }

    /// The usersync directory the sync writes to.
    #[getter]
    fn directory(&self) -> String {
        self.config.directory.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "<usersync.SyncConfig directory={:?} urls={:?}>",
            self.config.directory, self.config.connection.urls
        )
    }
}

/// One attribute's old and new value in an update.
#[pyclass(frozen, module = "usersync", get_all)]
pub(crate) struct AttributeChange {
    /// The SCIM attribute (top level: `name`, `emails`, an extension URN).
    attribute: String,
    /// Before (`None` when absent).
    old: Py<PyAny>,
    /// After (`None` when removed).
    new: Py<PyAny>,
}

#[pymethods]
impl AttributeChange {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "AttributeChange({:?}, {} -> {})",
            self.attribute,
            self.old.bind(py).repr()?,
            self.new.bind(py).repr()?
        ))
    }
}

/// One planned change: `action` (`release_name`, `create`, `update`, `reactivate`, `add_members`,
/// `remove_members`, `deactivate`, `delete`), `kind` (`User`/`Group`), the LDAP `anchor`, the
/// `name`, the usersync `id` (None for a creation), why (`reason`), the attribute `diff`, and
/// the `members` that join or leave a group.
#[pyclass(frozen, module = "usersync", get_all)]
pub(crate) struct Change {
    action: String,
    kind: String,
    anchor: String,
    name: String,
    id: Option<String>,
    reason: String,
    diff: Vec<Py<AttributeChange>>,
    /// `[{"kind", "anchor", "name"}]`.
    members: Py<PyAny>,
}

#[pymethods]
impl Change {
    /// Whether the change takes something away (deactivate, delete, remove members).
    #[getter]
    fn destructive(&self) -> bool {
        matches!(
            self.action.as_str(),
            "deactivate" | "delete" | "remove_members"
        )
    }

    fn __repr__(&self) -> String {
        format!("<Change {} {} {:?}>", self.action, self.kind, self.name)
    }
}

fn change(py: Python<'_>, c: &CoreChange) -> PyResult<Change> {
    let diff = c
        .diff()
        .iter()
        .map(|d| {
            Py::new(
                py,
                AttributeChange {
                    attribute: d.attribute.clone(),
                    old: to_py(py, &d.old)?.unbind(),
                    new: to_py(py, &d.new)?.unbind(),
                },
            )
        })
        .collect::<PyResult<_>>()?;
    let action = serde_json::to_value(c.action).unwrap_or_default();
    Ok(Change {
        action: action.as_str().unwrap_or_default().to_owned(),
        kind: c.kind.as_str().to_owned(),
        anchor: c.anchor.clone(),
        name: c.name.clone(),
        id: c.id.clone(),
        reason: c.reason.clone(),
        diff,
        members: to_py(py, &serde_json::to_value(&c.members).unwrap_or_default())?.unbind(),
    })
}

/// The changes a sync would make, made by `usersync.plan()`; nothing is
/// changed until `apply()`. Iterate it for the `Change`s.
#[pyclass(frozen, module = "usersync")]
pub(crate) struct Plan {
    shared: Arc<Shared>,
    config: CoreConfig,
    /// Taken by the apply: a plan is applied once.
    planned: Mutex<Option<Planned>>,
    /// The plan as made, kept after the apply: its changes become `Change` objects only as
    /// they are read, and its JSON is written only when asked for.
    plan: CorePlan,
    /// Full or incremental, and why.
    mode: Value,
}

impl Plan {
    fn make(py: Python<'_>, shared: Arc<Shared>, config: CoreConfig, full: bool) -> PyResult<Self> {
        let (planned, plan, mode) = py.detach(|| {
            let store = &*shared.store;
            let planned = run::plan_run(&config, store, &LocalTarget(store), full, &system_clock())
                .map_err(|e| Failure::plan(&e))?;
            let plan = planned.plan.clone();
            let mode = serde_json::to_value(&planned.mode).unwrap_or_default();
            Ok::<_, Failure>((planned, plan, mode))
        })?;
        Ok(Self {
            shared,
            config,
            planned: Mutex::new(Some(planned)),
            plan,
            mode,
        })
    }
}

#[pymethods]
impl Plan {
    fn __len__(&self) -> usize {
        self.plan.changes.len()
    }

    fn __iter__(slf: Py<Self>) -> Changes {
        Changes { plan: slf, next: 0 }
    }

    /// The change at `index` (negative counts from the end); past the plan, even past 64
    /// bits, an `IndexError` as a list raises.
    fn __getitem__(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = saturating_int)] index: i128,
    ) -> PyResult<Change> {
        let len = i128::try_from(self.plan.changes.len()).unwrap_or(i128::MAX);
        let at = if index < 0 { index + len } else { index };
        let found = usize::try_from(at)
            .ok()
            .and_then(|at| self.plan.changes.get(at));
        match found {
            Some(c) => change(py, c),
            None => Err(PyIndexError::new_err("plan index out of range")),
        }
    }

    fn __bool__(&self) -> bool {
        !self.plan.changes.is_empty()
    }

    fn __repr__(&self) -> String {
        format!(
            "<usersync.Plan {:?}: {} changes>",
            self.config.directory,
            self.plan.changes.len()
        )
    }

    /// The readable table of changes an administrator reviews (as `usersync plan` prints).
    fn __str__(&self) -> String {
        self.plan.to_string()
    }

    /// How many changes of each action: `{"create": 3, "add_members": 1}`.
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(
            py,
            &serde_json::to_value(self.plan.summary().counts).unwrap_or_default(),
        )
    }

    /// The plan as JSON text (what `usersync plan --json` prints).
    fn to_json(&self) -> String {
        let mut json = self.plan.to_json();
        json["mode"] = self.mode.clone();
        json.to_string()
    }

    /// The thresholds the plan crosses: `apply()` refuses it unless `allow_deletes=True`.
    #[getter]
    fn blocked(&self) -> Vec<String> {
        self.plan.blocked.clone()
    }

    /// What could not be read completely: nothing is removed on its account.
    #[getter]
    fn incomplete(&self) -> Vec<String> {
        self.plan.incomplete.clone()
    }

    /// Things worth knowing that do not stop the sync.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.plan.warnings.clone()
    }

    /// `{"since": None | watermark, "reason": …}`: a full or an incremental read, and why.
    #[getter]
    fn mode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.mode)
    }

    /// Applies the plan and records the run; returns a `Report`. Raises `SyncBlockedError`
    /// when the plan crosses a deletion threshold and `allow_deletes` is false (nothing is
    /// applied; the plan may then be applied with `allow_deletes=True`),
    /// `SyncConflictError` for a `userName` another directory owns under policy `fail`,
    /// `SyncBusyError` while another sync of the directory runs in any process using the
    /// store (nothing applied; the plan can be applied later). Changes that fail one by one
    /// do not raise: `Report.failures` lists them. `progress(done, total)` is called as
    /// changes are applied; an exception it raises is reported as unraisable, except a
    /// `KeyboardInterrupt` (Ctrl-C) or `SystemExit`: the apply stops before its next batch
    /// and that one is raised in place of the report (the run is on record).
    #[pyo3(signature = (*, allow_deletes = false, progress = None))]
    fn apply(
        &self,
        py: Python<'_>,
        allow_deletes: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Report> {
        let lock = lock_sync(py, &self.shared, &self.config.directory)?;
        // A plan refused for crossing a threshold stays, to be applied with the override.
        let refused = !self.plan.blocked.is_empty() && !allow_deletes;
        let planned = self
            .planned
            .lock()
            .ok()
            .and_then(|mut p| if refused { p.clone() } else { p.take() })
            .ok_or_else(|| {
                Failure::new(
                    Kind::InvalidArgument,
                    "this plan was applied already: make a new one",
                )
            })?;
        let run = apply(
            py,
            &self.shared,
            &self.config,
            planned,
            &lock,
            allow_deletes,
            progress,
        )?;
        Report::from_run(py, &run)
    }
}

/// Holds the directory's sync lock: one sync per directory at a time, across every process
/// using the store.
fn lock_sync(py: Python<'_>, shared: &Shared, directory: &str) -> PyResult<SyncLock> {
    py.detach(|| shared.store.try_lock_sync(directory))
        .map_err(|e| Failure::store(&e))?
        .ok_or_else(|| {
            Failure::new(
                Kind::SyncBusy,
                format!("another sync of `{directory}` is running; nothing was applied"),
            )
            .into()
        })
}

/// An iterator over a plan's changes.
#[pyclass(module = "usersync")]
pub(crate) struct Changes {
    plan: Py<Plan>,
    next: usize,
}

#[pymethods]
impl Changes {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Change>> {
        let plan = self.plan.get();
        let Some(c) = plan.plan.changes.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        change(py, c).map(Some)
    }
}

/// Applies with the GIL released; the progress callback takes it back for each call.
///
/// An `Exception` the callback raises is a bug of the callback: reported as unraisable, and
/// the apply goes on (its report must not be lost to it). A `KeyboardInterrupt` or
/// `SystemExit` (a `BaseException` that is no `Exception`), or what a signal handler raises
/// meanwhile, is the user stopping: the callback is not called again, the apply stops before
/// its next batch (`ApplyOptions::with_cancel`), and the exception is raised in place of
/// its report (the run is on record, with what it applied).
fn apply(
    py: Python<'_>,
    shared: &Shared,
    config: &CoreConfig,
    planned: Planned,
    lock: &SyncLock,
    allow_deletes: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Run> {
    // Locked only to look and to store, never across a call into Python: a callback told
    // from two threads would otherwise wait for the lock while holding the GIL.
    let stopped: Mutex<Option<PyErr>> = Mutex::new(None);
    let is_stopped = || {
        stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    };
    let keep = |e: PyErr| {
        // The first is raised: a later one is the same request to stop.
        let mut kept = stopped.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.is_none() {
            *kept = Some(e);
        }
    };
    let tell = |p: Progress| {
        let Some(callback) = &progress else {
            return;
        };
        if is_stopped() {
            return;
        }
        Python::attach(|py| {
            let stop = match callback.call1(py, (p.done, p.total)) {
                Err(e) if e.is_instance_of::<PyException>(py) => {
                    e.write_unraisable(py, Some(callback.bind(py)));
                    None
                }
                Err(e) => Some(e),
                // A builtin callback (`list.append`) runs no bytecode, so Python has not run
                // the handler of a Ctrl-C that came meanwhile: run it now.
                Ok(_) => py.check_signals().err(),
            };
            if let Some(e) = stop {
                keep(e);
            }
        });
    };
    // Asked before each batch: a callback that raised, or a Ctrl-C that came while no
    // callback ran (Python runs its handler only when asked, on the main thread), stops
    // the apply there; what was applied stays.
    let cancel = || {
        if is_stopped() {
            return true;
        }
        match Python::attach(|py| py.check_signals()) {
            Ok(()) => false,
            Err(e) => {
                keep(e);
                true
            }
        }
    };
    let run = py.detach(|| {
        let mut options = ApplyOptions::new(allow_deletes)
            .with_lock(lock)
            .with_cancel(&cancel);
        if progress.is_some() {
            options = options.with_progress(&tell);
        }
        let store = &*shared.store;
        run::apply_run(
            config,
            store,
            &LocalTarget(store),
            planned,
            &options,
            &system_clock(),
        )
    });
    match stopped.into_inner().unwrap_or_else(PoisonError::into_inner) {
        Some(e) => Err(e),
        None => Ok(run),
    }
}

/// What an apply did: `outcome` (`succeeded` or `failed`), `applied` (action → count),
/// `conflicts` (userNames another directory owns, skipped), `failures` (changes that failed;
/// the next run retries them), `milliseconds` per step.
#[pyclass(frozen, module = "usersync")]
pub(crate) struct Report {
    #[pyo3(get)]
    outcome: String,
    #[pyo3(get)]
    applied: Py<PyAny>,
    #[pyo3(get)]
    conflicts: Vec<String>,
    #[pyo3(get)]
    failures: Vec<String>,
    #[pyo3(get)]
    milliseconds: Py<PyAny>,
    json: String,
}

impl Report {
    /// The report of a run, or the exception of a run that did not apply.
    fn from_run(py: Python<'_>, run: &Run) -> PyResult<Self> {
        let error = run.error.clone().unwrap_or_default();
        match (&run.report, &run.failure) {
            // Applied, but its record could not be kept: a failure, as in C and the CLI
            // (the schedule would not know of the run).
            (Some(_), _) if run.outcome == RunOutcome::Succeeded && run.error.is_some() => {
                Err(Failure::new(Kind::SyncTarget, error)
                    .with_run(&run.to_json())
                    .into_py(py))
            }
            (Some(report), _) => {
                let json = run.to_json();
                Ok(Self {
                    outcome: run.outcome.as_str().to_owned(),
                    applied: to_py(py, &json["report"]["applied"])?.unbind(),
                    conflicts: report.conflicts.clone(),
                    failures: report.failures.clone(),
                    milliseconds: to_py(py, &json["milliseconds"])?.unbind(),
                    json: json.to_string(),
                })
            }
            (None, Some(failure)) if run.partial_report.is_some() => {
                Err(Failure::apply(failure).with_run(&run.to_json()).into_py(py))
            }
            (None, Some(failure)) => Err(Failure::apply(failure).into_py(py)),
            (None, None) => Err(Failure::new(Kind::SyncTarget, error).into_py(py)),
        }
    }
}

#[pymethods]
impl Report {
    /// Whether every change was applied.
    #[getter]
    fn ok(&self) -> bool {
        self.failures.is_empty() && self.outcome == "succeeded"
    }

    /// The run as JSON text, as its record keeps it.
    fn to_json(&self) -> String {
        self.json.clone()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<usersync.Report {} applied={} failures={}>",
            self.outcome,
            self.applied.bind(py).repr()?,
            self.failures.len()
        ))
    }
}

/// The store a sync function was given: a `Store`, or a database path to open.
fn shared(py: Python<'_>, database: &Bound<'_, PyAny>) -> PyResult<Arc<Shared>> {
    if let Ok(store) = database.cast::<Store>() {
        return Ok(store.get().shared.clone());
    }
    let path: PathBuf = database.extract()?;
    Ok(crate::store::open(py, path)?.shared)
}

/// Reads LDAP as `config` says and plans against `database` (a `Store` or a path); nothing
/// is changed. `full=True` reads everything even when an incremental run is possible.
#[pyfunction]
#[pyo3(signature = (config, database, *, full = false))]
fn plan(
    py: Python<'_>,
    config: &SyncConfig,
    database: &Bound<'_, PyAny>,
    full: bool,
) -> PyResult<Plan> {
    Plan::make(py, shared(py, database)?, config.config.clone(), full)
}

/// Plans and applies in one call, as `usersync sync` does; see `Plan.apply`. The sync lock
/// is held from before LDAP is read (`SyncBusyError` first), and a run that could not read
/// is recorded too (the schedule backs off after it) before its error is raised.
#[pyfunction]
#[pyo3(signature = (config, database, *, allow_deletes = false, full = false, progress = None))]
fn sync(
    py: Python<'_>,
    config: &SyncConfig,
    database: &Bound<'_, PyAny>,
    allow_deletes: bool,
    full: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Report> {
    let shared = shared(py, database)?;
    let config = &config.config;
    let lock = lock_sync(py, &shared, &config.directory)?;
    let planned = py.detach(|| {
        let store = &*shared.store;
        let clock = system_clock();
        run::plan_run(config, store, &LocalTarget(store), full, &clock).map_err(|e| {
            run::failed_read(config, store, &e, &clock);
            Failure::plan(&e)
        })
    })?;
    let run = apply(py, &shared, config, planned, &lock, allow_deletes, progress)?;
    Report::from_run(py, &run)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SyncConfig>()?;
    m.add_class::<Plan>()?;
    m.add_class::<Changes>()?;
    m.add_class::<Change>()?;
    m.add_class::<AttributeChange>()?;
    m.add_class::<Report>()?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(sync, m)?)?;
    Ok(())
}
