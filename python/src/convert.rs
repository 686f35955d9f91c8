//! JSON values between Rust and Python: SCIM resources are plain dicts and lists on the Python
//! side, as `json.loads` would make them.

use std::ops::RangeInclusive;

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple, PyType};
use serde_json::{Map, Number, Value};

use crate::errors::{Failure, Kind, Result};

/// A JSON value as the Python object `json.loads` would give.
pub(crate) fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(fields) => {
            let dict = PyDict::new(py);
            for (k, v) in fields {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// How deep a value may nest, as in `serde_json`: deeper (or a dict that holds itself) is a
/// `ValueError`, not a stack overflow.
const MAX_DEPTH: usize = 128;

/// A Python object as JSON: dicts (and other mappings) with string keys, lists and tuples,
/// strings, integers, finite floats, booleans and `None`; a path (`os.PathLike`) as the string
/// `os.fspath` gives. Anything else is a `TypeError` naming where it is.
pub(crate) fn from_py(object: &Bound<'_, PyAny>) -> PyResult<Value> {
    from_py_at(object, "", 0)
}

fn from_py_at(object: &Bound<'_, PyAny>, at: &str, depth: usize) -> PyResult<Value> {
    let here = || shown(at);
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "{} nests more than {MAX_DEPTH} levels deep (does a dict or list hold itself?)",
            here()
        )));
    }
    if object.is_none() {
        Ok(Value::Null)
    } else if let Ok(b) = object.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if object.is_instance_of::<PyInt>() {
        if let Ok(i) = object.extract::<i64>() {
            Ok(Value::from(i))
        } else if let Ok(u) = object.extract::<u64>() {
            Ok(Value::from(u))
        } else {
            Err(PyValueError::new_err(format!(
                "{} is an integer too large for JSON",
                here()
            )))
        }
    } else if let Ok(f) = object.cast::<PyFloat>() {
        Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| {
                PyValueError::new_err(format!("{} is {}: JSON has no such number", here(), f))
            })
    } else if let Ok(s) = object.cast::<PyString>() {
        Ok(Value::String(s.to_cow()?.into_owned()))
    } else if let Ok(d) = object.cast::<PyDict>() {
        object_from(d.iter(), at, depth)
    } else if object.is_instance_of::<PyList>() || object.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in object.try_iter()?.enumerate() {
            items.push(from_py_at(&item?, &format!("{at}[{i}]"), depth + 1)?);
        }
        Ok(Value::Array(items))
    } else if let Ok(m) = object.cast::<PyMapping>() {
        // A `MappingProxyType`, a `ChainMap`…: its items, as a dict's.
        let pairs = m
            .items()?
            .iter()
            .map(|pair| pair.extract())
            .collect::<PyResult<Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)>>>()?;
        object_from(pairs, at, depth)
    } else if is_path(object)? {
        path_text(object, at)
    } else {
        Err(PyTypeError::new_err(format!(
            "{} is a {}, which JSON cannot hold",
            here(),
            object.get_type().name()?
        )))
    }
}

/// Where a value is, for a message: `["emails"][0]`, or "the value" at the top.
fn shown(at: &str) -> &str {
    if at.is_empty() { "the value" } else { at }
}

/// A JSON object of `(key, value)` pairs; a key that is not a string is a `TypeError`.
fn object_from<'py>(
    pairs: impl IntoIterator<Item = (Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    at: &str,
    depth: usize,
) -> PyResult<Value> {
    let mut fields = Map::new();
    for (k, v) in pairs {
        let key = k.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!("{} has a key that is not a string: {k}", shown(at)))
        })?;
        let key = key.to_cow()?.into_owned();
        let value = from_py_at(&v, &format!("{at}[{key:?}]"), depth + 1)?;
        fields.insert(key, value);
    }
    Ok(Value::Object(fields))
}

/// Whether `object` is an `os.PathLike` (a `pathlib.Path`…).
fn is_path(object: &Bound<'_, PyAny>) -> PyResult<bool> {
    static PATH_LIKE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let path_like = PATH_LIKE.import(object.py(), "os", "PathLike")?;
    object.is_instance(path_like.as_any())
}

/// A path as the text `os.fspath` gives; a path of bytes has no JSON string.
fn path_text(object: &Bound<'_, PyAny>, at: &str) -> PyResult<Value> {
    let text = object
        .py()
        .import("os")?
        .call_method1("fspath", (object,))?;
    let text = text.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{} is a path of bytes, which JSON cannot hold: give it as a str path",
            shown(at)
        ))
    })?;
    Ok(Value::String(text.to_cow()?.into_owned()))
}

/// The largest `usize`, for the ranges of [`int_arg`] (lossless: `usize` has at most 64 bits
/// on every target Python runs on).
pub(crate) const USIZE_MAX: i128 = usize::MAX as i128;

/// A Python int as an `i128`; one beyond `i128` becomes its nearest end, which every range
/// of [`int_arg`] leaves out, so that the error names the parameter (pyo3 would raise a bare
/// `OverflowError`). For `#[pyo3(from_py_with = …)]`; a non-int is a `TypeError`.
pub(crate) fn saturating_int(value: &Bound<'_, PyAny>) -> PyResult<i128> {
    // An int, or what stands for one (`operator.index`): pyo3's 128-bit conversion under
    // the stable ABI would take a float's `__int__` on Python 3.9.
    let int = if value.is_instance_of::<PyInt>() {
        value.clone()
    } else {
        value
            .py()
            .import("operator")?
            .call_method1("index", (value,))?
    };
    match int.extract::<i128>() {
        Ok(n) => Ok(n),
        Err(e) if e.is_instance_of::<PyOverflowError>(int.py()) => {
            Ok(if int.lt(0)? { i128::MIN } else { i128::MAX })
        }
        Err(e) => Err(e),
    }
}

/// The integer argument `name` as `T`, or an `ArgumentError` naming it and `range`.
pub(crate) fn int_arg<T: TryFrom<i128>>(
    value: i128,
    name: &str,
    range: RangeInclusive<i128>,
) -> Result<T> {
    let out_of_range = || {
        Failure::new(
            Kind::InvalidArgument,
            format!(
                "`{name}` must be an integer from {} to {}",
                range.start(),
                range.end()
            ),
        )
    };
    if !range.contains(&value) {
        return Err(out_of_range());
    }
    T::try_from(value).map_err(|_| out_of_range())
}
