//! Values and errors across the boundary.

use std::cell::RefCell;

use js_sys::{Array, Object, Reflect};
use usersync_core::scim::filter::{Decimal, TreeBuilder};
use usersync_core::scim::schema::JsonTree;
use wasm_bindgen::prelude::*;

thread_local! {
    /// JavaScript strings for the fixed keys and names of the answers, made once: decoding
    /// a string from WebAssembly memory costs more than the rest of a validation.
    static INTERNED: RefCell<Vec<(&'static str, JsValue)>> = const { RefCell::new(Vec::new()) };
}

/// The JavaScript string `s`, made once per module instance.
pub(crate) fn interned(s: &'static str) -> JsValue {
    INTERNED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, v)) = cache.iter().find(|(k, _)| *k == s) {
            return v.clone();
        }
        let v = JsValue::from_str(s);
        cache.push((s, v.clone()));
        v
    })
}

/// A plain object with these fields, built in place (no JSON text to decode).
pub(crate) fn object(fields: &[(&'static str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (key, value) in fields {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&o, &interned(key), value);
    }
    o.into()
}

/// Builds a syntax tree as plain JavaScript values.
pub(crate) struct JsBuilder;

impl TreeBuilder for JsBuilder {
    type Node = JsValue;
    fn object(&mut self, members: Vec<(&'static str, JsValue)>) -> JsValue {
        object(&members)
    }
    fn array(&mut self, items: Vec<JsValue>) -> JsValue {
        items.into_iter().collect::<Array>().into()
    }
    fn string(&mut self, s: &str) -> JsValue {
        s.into()
    }
    // Integers beyond 2^53 round, as any JavaScript number does.
    #[allow(clippy::cast_precision_loss)]
    fn integer(&mut self, n: i64) -> JsValue {
        (n as f64).into()
    }
    fn decimal(&mut self, d: &Decimal) -> JsValue {
        // The engine reads the digits: the module carries no float parser of its own.
        js_sys::Number::parse_float(d.as_str()).into()
    }
    fn boolean(&mut self, b: bool) -> JsValue {
        b.into()
    }
    fn null(&mut self) -> JsValue {
        JsValue::NULL
    }
}

/// A value made by `JSON.parse`, as the schema reader walks it: plain objects, arrays,
/// strings, numbers, booleans and `null` only.
pub(crate) struct Js(pub(crate) JsValue);

impl JsonTree for Js {
    fn string(&self) -> Option<String> {
        self.0.as_string()
    }
    fn boolean(&self) -> Option<bool> {
        self.0.as_bool()
    }
    fn elements(&self) -> Option<Vec<Self>> {
        let array = self.0.dyn_ref::<Array>()?;
        Some(array.iter().map(Js).collect())
    }
    fn members(&self) -> Option<Vec<(String, Self)>> {
        if !self.0.is_object() || Array::is_array(&self.0) {
            return None;
        }
        let members = Object::entries(self.0.unchecked_ref())
            .iter()
            .filter_map(|entry| {
                let entry: Array = entry.unchecked_into();
                Some((entry.get(0).as_string()?, Js(entry.get(1))))
            })
            .collect();
        Some(members)
    }
    fn is_null(&self) -> bool {
        self.0.is_null()
    }
}

/// A string argument, or a `UsersyncError` naming the parameter.
pub(crate) fn string_argument(value: &JsValue, name: &str) -> Result<String, JsValue> {
    value
        .as_string()
        .ok_or_else(|| misuse("invalidArgument", &format!("`{name}` must be a string")))
}

/// An `Error` named `UsersyncError` with a stable `code`, for a call the module cannot
/// answer (wrong argument types, unknown resource type, invalid schema).
pub(crate) fn misuse(code: &str, message: &str) -> JsValue {
    named_error("UsersyncError", code, message, &[])
}

/// An `Error` named `name` with a stable `code`, `message`, and the extra `fields`.
pub(crate) fn named_error(
    name: &str,
    code: &str,
    message: &str,
    fields: &[(&'static str, JsValue)],
) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name(name);
    let code = [("code", JsValue::from_str(code))];
    for (key, value) in code.iter().chain(fields) {
        // Setting a property on a fresh Error cannot fail.
        let _ = js_sys::Reflect::set(&error, &interned(key), value);
    }
    error.into()
}
