//! Every failure becomes one of the exceptions of `usersync/errors.py`, chosen by its kind in
//! one place ([`Failure::into_py`]). The classes live in Python so that each can also subclass
//! the built-in users already catch (`FilterError` is a `ValueError`, `LdapError` a
//! `ConnectionError`…).

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use usersync_core::ldap::apply::ApplyError;
use usersync_core::ldap::config::ConfigError;
use usersync_core::ldap::run::PlanError;
use usersync_core::ldap::source::SourceError;
use usersync_core::store::StoreError;

/// The stable kind of a failure, as `UsersyncError.kind` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    InvalidFilter,
    InvalidPath,
    InvalidSchema,
    InvalidLdapFilter,
    InvalidArgument,
    NotFound,
    Uniqueness,
    VersionMismatch,
    InvalidValue,
    StoreBackend,
    SyncConfig,
    Ldap,
    SyncBlocked,
    SyncConflict,
    SyncTarget,
    SyncBusy,
}

impl Kind {
    /// The kind's name and the exception class that carries it.
    const fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::InvalidFilter => ("invalidFilter", "FilterError"),
            Self::InvalidLdapFilter => ("invalidLdapFilter", "FilterError"),
            Self::InvalidPath => ("invalidPath", "PathError"),
            Self::InvalidSchema => ("invalidSchema", "SchemaError"),
            Self::InvalidArgument => ("invalidArgument", "ArgumentError"),
            Self::NotFound => ("notFound", "NotFoundError"),
            Self::Uniqueness => ("uniqueness", "UniquenessError"),
            Self::VersionMismatch => ("versionMismatch", "VersionMismatchError"),
            Self::InvalidValue => ("invalidValue", "ArgumentError"),
            Self::StoreBackend => ("storeBackend", "StoreError"),
            Self::SyncConfig => ("syncConfig", "ConfigError"),
            Self::Ldap => ("ldap", "LdapError"),
            Self::SyncBlocked => ("syncBlocked", "SyncBlockedError"),
            Self::SyncConflict => ("syncConflict", "SyncConflictError"),
            Self::SyncTarget => ("syncTarget", "SyncTargetError"),
            Self::SyncBusy => ("syncBusy", "SyncBusyError"),
        }
    }

    /// The SCIM `scimType` the service answers for the same problem (RFC 7644 §3.12).
    const fn scim_type(self) -> Option<&'static str> {
        match self {
            Self::InvalidFilter => Some("invalidFilter"),
            Self::InvalidPath => Some("invalidPath"),
            Self::InvalidValue => Some("invalidValue"),
            Self::Uniqueness => Some("uniqueness"),
            _ => None,
        }
    }
}

/// A failure on its way to Python: the kind, the message, and the details that apply.
#[derive(Debug)]
pub(crate) struct Failure {
    kind: Kind,
    message: String,
    /// Boxed: most failures have none, and a `Result` should stay small.
    details: Box<Details>,
}

#[derive(Debug, Default)]
struct Details {
    /// For filters and paths: where the problem is, as an index into the Python string
    /// (characters, not bytes), how many characters it spans, and what would have fitted.
    position: Option<(usize, usize)>,
    expected: Vec<&'static str>,
    /// For configurations: the key at fault.
    key: Option<String>,
    /// For a blocked plan: the thresholds it crosses.
    reasons: Vec<String>,
    /// For a run that applied something and then failed: the run as JSON.
    report: Option<String>,
}

pub(crate) type Result<T, E = Failure> = std::result::Result<T, E>;

impl Failure {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            details: Box::default(),
        }
    }

    /// A filter, path or schema error of the core; `text` is the input it was found in, so
    /// that byte offsets become character indexes.
    pub(crate) fn core(e: &usersync_core::Error, text: &str) -> Self {
        use usersync_core::ErrorKind;
        let kind = match e.kind() {
            ErrorKind::InvalidFilter => Kind::InvalidFilter,
            ErrorKind::InvalidPath => Kind::InvalidPath,
            ErrorKind::InvalidLdapFilter => Kind::InvalidLdapFilter,
            _ => Kind::InvalidSchema,
        };
        let mut failure = Self::new(kind, e.to_string());
        if let Some(syntax) = e.syntax() {
            let span = syntax.span();
            let at = chars(text, span.start);
            failure.message = syntax.message().to_owned();
            failure.details.position = Some((at, chars(text, span.end).saturating_sub(at)));
            failure.details.expected = syntax.expected().names().collect();
        }
        failure
    }

    pub(crate) fn store(e: &StoreError) -> Self {
        let kind = match e {
            StoreError::NotFound { .. } => Kind::NotFound,
            StoreError::Uniqueness { .. } => Kind::Uniqueness,
            StoreError::VersionMismatch { .. } => Kind::VersionMismatch,
            StoreError::Invalid(_) => Kind::InvalidValue,
            _ => Kind::StoreBackend,
        };
        Self::new(kind, e.to_string())
    }

    pub(crate) fn config(e: &ConfigError) -> Self {
        let mut failure = Self::new(Kind::SyncConfig, e.to_string());
        failure.details.key.clone_from(&e.key);
        failure
    }

    /// A plan that could not be made. Planning writes nothing, so none of these says that
    /// what was applied stays, as [`Failure::apply`] does.
    pub(crate) fn plan(e: &PlanError) -> Self {
        match e {
            PlanError::Source(SourceError::Config(c)) => Self::config(c),
            PlanError::Source(_) => Self::new(Kind::Ldap, e.to_string()),
            // What the store refuses to plan against is the directory the configuration
            // names (one that is not an LDAP directory).
            PlanError::Target(ApplyError::Store(StoreError::Invalid(why))) => {
                let mut failure = Self::new(Kind::SyncConfig, why.clone());
                failure.details.key = Some("directory".to_owned());
                failure
            }
            PlanError::Target(ApplyError::Store(s)) => Self::store(s),
            _ => Self::new(Kind::SyncTarget, e.to_string()),
        }
    }

    pub(crate) fn apply(e: &ApplyError) -> Self {
        match e {
            ApplyError::Blocked(reasons) => {
                let mut failure = Self::new(Kind::SyncBlocked, e.to_string());
                failure.details.reasons.clone_from(reasons);
                failure
            }
            ApplyError::Conflict(_) => Self::new(Kind::SyncConflict, e.to_string()),
            // Part-way through an apply: what was committed stays, which a `StoreError`
            // ("nothing was changed") would deny.
            ApplyError::Store(s) => Self::new(
                Kind::SyncTarget,
                format!(
                    "the store failed part-way; what was applied stays, and the next run converges: {s}"
                ),
            ),
            _ => Self::new(Kind::SyncTarget, e.to_string()),
        }
    }

    /// With `run`, a run that applied something, as JSON: its exception says what stays.
    pub(crate) fn with_run(mut self, run: &serde_json::Value) -> Self {
        self.details.report = Some(run.to_string());
        self
    }

    /// The one mapping from a failure to its Python exception.
    pub(crate) fn into_py(self, py: Python<'_>) -> PyErr {
        let (kind, class) = self.kind.names();
        let scim_type = self.kind.scim_type();
        let Self {
            message, details, ..
        } = self;
        let raise = || -> PyResult<PyErr> {
            let class = py.import("usersync.errors")?.getattr(class)?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("kind", kind)?;
            kwargs.set_item("scim_type", scim_type)?;
            if let Some((position, length)) = details.position {
                kwargs.set_item("position", position)?;
                kwargs.set_item("length", length)?;
                kwargs.set_item("expected", &details.expected)?;
            }
            if let Some(key) = &details.key {
                kwargs.set_item("key", key)?;
            }
            if !details.reasons.is_empty() {
                kwargs.set_item("reasons", &details.reasons)?;
            }
            if let Some(report) = &details.report {
                kwargs.set_item("report_json", report)?;
            }
            let error = class.call((message,), Some(&kwargs))?;
            Ok(PyErr::from_value(error))
        };
        raise().unwrap_or_else(|e| PyRuntimeError::new_err(format!("usersync.errors: {e}")))
    }
}

impl From<Failure> for PyErr {
    fn from(failure: Failure) -> Self {
        Python::attach(|py| failure.into_py(py))
    }
}

/// The character index of byte offset `byte` in `text`: an offset inside a character counts
/// as its start, and one past the end as the end.
pub(crate) fn chars(text: &str, byte: usize) -> usize {
    let mut byte = byte.min(text.len());
    while !text.is_char_boundary(byte) {
        byte -= 1;
    }
    text[..byte].chars().count()
}
