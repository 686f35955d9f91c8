//! JSON values between Rust and Python: SCIM resources are plain dicts and lists on the Python
//! side, as `json.loads` would make them.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

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

/// A Python object as JSON: dicts with string keys, lists and tuples, strings, integers,
/// finite floats, booleans and `None`. Anything else is a `TypeError` naming where it is.
pub(crate) fn from_py(object: &Bound<'_, PyAny>) -> PyResult<Value> {
    from_py_at(object, "", 0)
}

fn from_py_at(object: &Bound<'_, PyAny>, at: &str, depth: usize) -> PyResult<Value> {
    let here = || if at.is_empty() { "the value" } else { at };
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
        let mut fields = Map::new();
        for (k, v) in d.iter() {
            let key = k.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!("{} has a key that is not a string: {k}", here()))
            })?;
            let key = key.to_cow()?.into_owned();
            let value = from_py_at(&v, &format!("{at}[{key:?}]"), depth + 1)?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    } else if object.is_instance_of::<PyList>() || object.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in object.try_iter()?.enumerate() {
            items.push(from_py_at(&item?, &format!("{at}[{i}]"), depth + 1)?);
        }
        Ok(Value::Array(items))
    } else {
        Err(PyTypeError::new_err(format!(
            "{} is a {}, which JSON cannot hold",
            here(),
            object.get_type().name()?
        )))
    }
}
