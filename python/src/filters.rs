//! SCIM filters and PATCH paths, LDAP filters: parsed by the engine the server uses, so a
//! script never accepts what the server would reject.

use std::sync::{OnceLock, RwLock};

use pyo3::prelude::*;
use usersync_core::ldap::filter::LdapFilter;
use usersync_core::scim::filter::{Compatibility, Filter as CoreFilter, ParseOptions};
use usersync_core::scim::path::PatchPath;
use usersync_core::scim::schema::{ResourceType, Schema, SchemaRegistry};

use crate::convert;
use crate::errors::{Failure, Kind, Result, chars};

/// The built-in User and Group schemas, made once.
pub(crate) fn registry() -> &'static SchemaRegistry {
    static REGISTRY: OnceLock<SchemaRegistry> = OnceLock::new();
    REGISTRY.get_or_init(SchemaRegistry::core)
}

fn resource_type<'r>(registry: &'r SchemaRegistry, name: &str) -> Result<&'r ResourceType> {
    registry.resource_type(name).ok_or_else(|| {
        Failure::new(
            Kind::InvalidArgument,
            format!("unknown resource type `{name}` (User or Group)"),
        )
    })
}

/// RFC 7644 as written when `strict`, the identity providers' forms too otherwise.
fn compat(strict: bool) -> Compatibility {
    if strict {
        Compatibility::strict()
    } else {
        Compatibility::default()
    }
}

fn options(strict: bool) -> ParseOptions {
    ParseOptions::default().with_compat(compat(strict))
}

/// A parsed SCIM filter (RFC 7644 §3.4.2.2).
#[pyclass(frozen, module = "usersync.scim")]
pub(crate) struct Filter {
    text: String,
    filter: CoreFilter,
    strict: bool,
}

#[pymethods]
impl Filter {
    /// The canonical text of the filter, as the server prints it.
    fn __str__(&self) -> String {
        self.filter.to_string()
    }

    fn __repr__(&self) -> String {
        format!("Filter({:?})", self.filter.to_string())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Self>()
            .is_ok_and(|o| o.get().filter.to_string() == self.filter.to_string())
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.filter.to_string().hash(&mut h);
        h.finish()
    }

    /// The syntax tree as plain dicts; `start`/`end` are indexes into the parsed string.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.filter.to_json(&|byte| chars(&self.text, byte)))
    }

    /// Whether `resource` (a SCIM resource as a dict) is selected by the filter. `schemas`
    /// (a `Schemas`) brings extension attributes; the built-in schemas otherwise.
    #[pyo3(signature = (resource, resource_type = "User", *, schemas = None))]
    fn matches(
        &self,
        resource: &Bound<'_, PyAny>,
        resource_type: &str,
        schemas: Option<PyRef<'_, Schemas>>,
    ) -> PyResult<bool> {
        let compiled = with_type(resource_type, schemas.as_deref(), |ty| self.compile(ty))?;
        let resource = convert::from_py(resource)?;
        Ok(compiled.matches(&resource))
    }

    /// Checks the filter against a resource type: raises `FilterError` where an operator or a
    /// literal cannot apply to its attribute (`active gt true`); returns the attributes the
    /// type does not define (legal, but they never match).
    #[pyo3(signature = (resource_type = "User", *, schemas = None))]
    fn check(
        &self,
        resource_type: &str,
        schemas: Option<PyRef<'_, Schemas>>,
    ) -> PyResult<Vec<String>> {
        Ok(with_type(resource_type, schemas.as_deref(), |ty| {
            self.compile(ty)?;
            Ok(self
                .filter
                .undefined_attributes(ty)
                .iter()
                .map(ToString::to_string)
                .collect())
        })?)
    }
}

impl Filter {
    fn compile(&self, ty: &ResourceType) -> Result<usersync_core::scim::filter::CompiledFilter> {
        self.filter
            .compile_with(ty, compat(self.strict))
            .map_err(|e| Failure::core(&e, &self.text))
    }
}

/// Runs `f` on the resource type `name` of `schemas`, or of the built-in schemas.
fn with_type<T>(
    name: &str,
    schemas: Option<&Schemas>,
    f: impl FnOnce(&ResourceType) -> Result<T>,
) -> Result<T> {
    match schemas {
        None => f(resource_type(registry(), name)?),
        Some(s) => f(resource_type(&s.read(), name)?),
    }
}

/// A schema registry for filters over custom attributes: the built-in User and Group
/// schemas (with the enterprise extension) plus the extension schemas added to it.
#[pyclass(frozen, module = "usersync.scim")]
pub(crate) struct Schemas {
    registry: RwLock<SchemaRegistry>,
}

impl Schemas {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, SchemaRegistry> {
        self.registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[pymethods]
impl Schemas {
    #[new]
    fn new() -> Self {
        Self {
            registry: RwLock::new(registry().clone()),
        }
    }

    /// Adds an extension schema (RFC 7643 §7, as JSON text or a dict) to `resource_type`
    /// (`User` or `Group`); raises `SchemaError` for a malformed or clashing schema.
    #[pyo3(signature = (resource_type, schema, *, required = false))]
    fn add_extension(
        &self,
        resource_type: &str,
        schema: &Bound<'_, PyAny>,
        required: bool,
    ) -> PyResult<()> {
        let schema = match schema.extract::<String>() {
            Ok(text) => Schema::from_json(&text),
            Err(_) => Schema::from_value(&convert::from_py(schema)?),
        }
        .map_err(|e| Failure::core(&e.into(), ""))?;
        self.registry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .add_extension(resource_type, schema, required)
            .map_err(|e| Failure::core(&e, ""))?;
        Ok(())
    }

    fn __repr__(&self) -> String {
        let registry = self.read();
        let names: Vec<&str> = registry.schemas().map(|s| s.id.as_str()).collect();
        format!("usersync.scim.Schemas({names:?})")
    }
}

/// Parses a SCIM filter; raises `FilterError` with the position of the mistake.
#[pyfunction]
#[pyo3(signature = (text, *, strict = false))]
fn parse_filter(text: String, strict: bool) -> Result<Filter> {
    let filter =
        CoreFilter::parse_with(&text, &options(strict)).map_err(|e| Failure::core(&e, &text))?;
    Ok(Filter {
        text,
        filter,
        strict,
    })
}

/// Parses a SCIM PATCH path and returns its canonical text; raises `PathError`.
#[pyfunction]
#[pyo3(signature = (text, *, strict = false))]
fn parse_path(text: &str, strict: bool) -> Result<String> {
    PatchPath::parse_with(text, &options(strict))
        .map(|p| p.to_string())
        .map_err(|e| Failure::core(&e, text))
}

/// Checks an LDAP search filter (RFC 4515) and returns its canonical text; raises
/// `FilterError` (kind `invalidLdapFilter`).
#[pyfunction]
fn validate_ldap_filter(text: &str) -> Result<String> {
    LdapFilter::parse(text)
        .map(|f| f.to_string())
        .map_err(|e| Failure::core(&e, text))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Filter>()?;
    m.add_class::<Schemas>()?;
    m.add_function(wrap_pyfunction!(parse_filter, m)?)?;
    m.add_function(wrap_pyfunction!(parse_path, m)?)?;
    m.add_function(wrap_pyfunction!(validate_ldap_filter, m)?)?;
    Ok(())
}
