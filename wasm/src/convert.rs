//! Values and errors across the boundary.

use std::cell::RefCell;

use serde_json::Value as Json;
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
    let o = js_sys::Object::new();
    for (key, value) in fields {
        // Setting a property on a fresh plain object cannot fail.
        let _ = js_sys::Reflect::set(&o, &interned(key), value);
    }
    o.into()
}

/// A JSON value as the plain JavaScript value it spells, parsed by the engine in one call.
pub(crate) fn to_js(value: &Json) -> Result<JsValue, JsValue> {
    js_sys::JSON::parse(&value.to_string())
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
