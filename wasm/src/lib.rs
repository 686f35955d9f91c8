//! usersync's filter engine in the browser: SCIM (RFC 7644) and LDAP (RFC 4515) filters
//! validated as an administrator types, with the same parser and schema the server runs, so
//! the browser never accepts what the server rejects.
//!
//! Every position crossing into JavaScript is a UTF-16 index into the JavaScript string (what
//! `input.setSelectionRange` takes), not a byte offset. Invalid input is an answer, never an
//! exception; misuse (a wrong argument type, an unknown resource type, a bad extension
//! schema) throws an `Error` whose `name` is `UsersyncError` and whose `code` says which.
//! Results are plain objects, built in place from interned keys.
//!
//! The module is kept small (see `BENCHMARKS.md`): it carries no JSON parser and no float
//! parser or printer. Schemas arrive through `JSON.parse` and are walked as JavaScript
//! values ([`usersync_core::scim::schema::JsonTree`]); decimal literals are kept as canonical
//! text ([`usersync_core::scim::filter::Decimal`]), whose digits the engine reads
//! (`Number.parseFloat`) for a syntax tree.

mod convert;
mod offsets;

use std::cell::RefCell;

use js_sys::JsString;
use usersync_core::Error;
use usersync_core::ldap::filter::LdapFilter;
use usersync_core::scim::filter::{Compatibility, Filter, ParseOptions, complete};
use usersync_core::scim::schema::{Schema, SchemaRegistry};
use wasm_bindgen::prelude::*;

use convert::{Js, JsBuilder, interned, misuse, named_error, object, string_argument};
use offsets::Offsets;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** A token class a parser would have accepted where it stopped. */
export type Expected =
  | "attribute" | "subAttribute" | "operator" | "value" | "not" | "and" | "or"
  | "(" | ")" | "[" | "]" | "." | "end";

/** Why a filter is invalid. Positions are UTF-16 indices into the text. */
export interface ValidationError {
  message: string;
  kind: "invalidFilter" | "invalidLdapFilter";
  position: number;
  length: number;
  /** What would have been accepted at `position`; empty when the error is not about a token. */
  expected: Expected[];
}

/** An attribute the resource type does not define: allowed (it matches nothing), but likely a typo. */
export interface FilterWarning {
  message: string;
  attribute: string;
  position: number;
  length: number;
}

export interface ValidationResult {
  valid: boolean;
  error?: ValidationError;
  warnings: FilterWarning[];
}

export interface ScimFilterOptions {
  /** Check attributes, operators and literals against this resource type (`User`, `Group`). */
  resourceType?: string;
  /** RFC 7644 only: no Microsoft Entra ID forms (`"False"` for false, `emails[…].value`). */
  strict?: boolean;
}

export interface AttributePath {
  text: string;
  schema?: string;
  attribute: string;
  subAttribute?: string;
}

export type FilterNode =
  | { type: "and" | "or"; filters: FilterNode[] }
  | { type: "not"; filter: FilterNode }
  | { type: "compare"; path: AttributePath; op: "eq" | "ne" | "co" | "sw" | "ew" | "gt" | "ge" | "lt" | "le";
      value: string | number | boolean | null; start: number; end: number }
  | { type: "present"; path: AttributePath; start: number; end: number }
  | { type: "valuePath"; path: AttributePath; filter: FilterNode; start: number; end: number };

export interface Completion {
  /** The text that replaces `from`..`to`. */
  text: string;
  kind: "attribute" | "operator" | "value" | "keyword";
  detail: string;
  documentation?: string;
}

export interface Completions {
  from: number;
  to: number;
  items: Completion[];
}

/** Thrown by the parse and format functions for an invalid filter. */
export interface FilterError extends Error, ValidationError {
  name: "FilterError";
  code: "invalidFilter" | "invalidLdapFilter";
}
"#;

/// The version of usersync this module was built from.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Checks a SCIM filter. With `options.resourceType`, also checks that every operator and
/// literal suits its attribute, and warns about attributes the type does not define.
/// Never throws for an invalid filter.
#[wasm_bindgen(js_name = validateScimFilter, unchecked_return_type = "ValidationResult")]
pub fn validate_scim_filter(
    #[wasm_bindgen(unchecked_param_type = "string")] text: JsValue,
    #[wasm_bindgen(unchecked_param_type = "ScimFilterOptions")] options: Option<JsValue>,
) -> Result<JsValue, JsValue> {
    CORE.with(|registry| validate_scim(&registry.borrow(), &text, options.as_ref()))
}

/// Checks an LDAP search filter (RFC 4515). Never throws for an invalid filter.
#[wasm_bindgen(js_name = validateLdapFilter, unchecked_return_type = "ValidationResult")]
pub fn validate_ldap_filter(
    #[wasm_bindgen(unchecked_param_type = "string")] text: JsValue,
) -> Result<JsValue, JsValue> {
    let text = string_argument(&text, "text")?;
    let error = LdapFilter::parse(&text).err();
    Ok(validation(
        error.as_ref(),
        &Offsets::new(&text),
        js_sys::Array::new(),
    ))
}

/// The syntax tree of a SCIM filter as plain objects.
///
/// Throws a `FilterError` (with `position`, `length`, `expected`) for an invalid filter.
#[wasm_bindgen(js_name = parseScimFilter, unchecked_return_type = "FilterNode")]
pub fn parse_scim_filter(
    #[wasm_bindgen(unchecked_param_type = "string")] text: JsValue,
    #[wasm_bindgen(unchecked_param_type = "ScimFilterOptions")] options: Option<JsValue>,
) -> Result<JsValue, JsValue> {
    let text = string_argument(&text, "text")?;
    let options = Options::read(options.as_ref())?;
    let offsets = Offsets::new(&text);
    let filter =
        Filter::parse_with(&text, &options.parse).map_err(|e| filter_error(&e, &offsets))?;
    Ok(filter.to_tree(&mut JsBuilder, &|byte| offsets.utf16(byte)))
}

/// The canonical form of a SCIM filter: lowercase keywords, single spaces, the fewest
/// parentheses. Throws a `FilterError` for an invalid filter.
#[wasm_bindgen(js_name = formatScimFilter)]
pub fn format_scim_filter(
    #[wasm_bindgen(unchecked_param_type = "string")] text: JsValue,
    #[wasm_bindgen(unchecked_param_type = "ScimFilterOptions")] options: Option<JsValue>,
) -> Result<String, JsValue> {
    let text = string_argument(&text, "text")?;
    let options = Options::read(options.as_ref())?;
    Filter::parse_with(&text, &options.parse)
        .map(|f| f.to_string())
        .map_err(|e| filter_error(&e, &Offsets::new(&text)))
}

/// The canonical form of an LDAP filter. Throws a `FilterError` for an invalid filter.
#[wasm_bindgen(js_name = formatLdapFilter)]
pub fn format_ldap_filter(
    #[wasm_bindgen(unchecked_param_type = "string")] text: JsValue,
) -> Result<String, JsValue> {
    let text = string_argument(&text, "text")?;
    LdapFilter::parse(&text)
        .map(|f| f.to_string())
        .map_err(|e| filter_error(&e, &Offsets::new(&text)))
}

/// What may be typed at `cursor` (a UTF-16 index) of a SCIM filter over `resourceType`:
/// attribute names and sub-attributes, operators that suit the attribute, booleans and
/// canonical values, keywords. `from`..`to` is the part of the text a completion replaces.
#[wasm_bindgen(js_name = completeScimFilter, unchecked_return_type = "Completions")]
pub fn complete_scim_filter(
    #[wasm_bindgen(unchecked_param_type = "string")] text: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] cursor: JsValue,
    #[wasm_bindgen(js_name = resourceType, unchecked_param_type = "string")] resource_type: JsValue,
    #[wasm_bindgen(unchecked_param_type = "ScimFilterOptions")] options: Option<JsValue>,
) -> Result<JsValue, JsValue> {
    CORE.with(|registry| {
        complete_scim(
            &registry.borrow(),
            &text,
            &cursor,
            &resource_type,
            options.as_ref(),
        )
    })
}

thread_local! {
    /// The RFC 7643 schemas, for the functions that take no [`ScimSchemas`].
    static CORE: RefCell<SchemaRegistry> = RefCell::new(SchemaRegistry::core_parsed_by(|text| {
        // The built-in texts are JSON, checked by the core's tests.
        Js(js_sys::JSON::parse(text).unwrap_or(JsValue::NULL))
    }));
}

/// The SCIM schemas filters are checked and completed against: RFC 7643's `User` (with the
/// Enterprise User extension) and `Group`, plus the extension schemas a deployment adds.
#[wasm_bindgen]
#[derive(Debug)]
pub struct ScimSchemas {
    registry: SchemaRegistry,
}

#[wasm_bindgen]
impl ScimSchemas {
    /// The RFC 7643 schemas.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)] // a JavaScript constructor
    pub fn new() -> ScimSchemas {
        Self {
            registry: CORE.with(|core| core.borrow().clone()),
        }
    }

    /// Adds an extension schema (its RFC 7643 JSON, as text or as an object) to a resource
    /// type. Throws a `UsersyncError` with code `invalidSchema` when the schema is malformed,
    /// already added, or the resource type does not exist.
    #[wasm_bindgen(js_name = addExtension)]
    pub fn add_extension(
        &mut self,
        #[wasm_bindgen(js_name = resourceType, unchecked_param_type = "string")]
        resource_type: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | object")] schema: JsValue,
        required: Option<bool>,
    ) -> Result<(), JsValue> {
        let resource_type = string_argument(&resource_type, "resourceType")?;
        // An object goes through its JSON text, as `JSON.stringify` sees it (`toJSON`,
        // dates as text, functions left out): the schema reader then sees only JSON values.
        let text = match schema.as_string() {
            Some(text) => text,
            None if schema.is_object() => js_sys::JSON::stringify(&schema)
                .map(String::from)
                .map_err(|_| misuse("invalidArgument", "`schema` cannot be turned into JSON"))?,
            None => {
                return Err(misuse(
                    "invalidArgument",
                    "`schema` must be a JSON string or an object",
                ));
            }
        };
        let json = js_sys::JSON::parse(&text).map_err(|e| {
            let reason = e
                .dyn_ref::<js_sys::Error>()
                .map_or_else(|| "not JSON".to_owned(), |e| String::from(e.message()));
            misuse("invalidSchema", &format!("malformed schema JSON: {reason}"))
        })?;
        let schema = Schema::from_tree(&Js(json))
            .map_err(|e| misuse("invalidSchema", &Error::from(e).to_string()))?;
        self.registry
            .add_extension(&resource_type, schema, required.unwrap_or(false))
            .map_err(|e| misuse("invalidSchema", &e.to_string()))
    }

    /// The names of the resource types (`User`, `Group`).
    #[wasm_bindgen(js_name = resourceTypes)]
    pub fn resource_types(&self) -> Vec<JsString> {
        self.registry
            .resource_types()
            .iter()
            .map(|rt| JsString::from(rt.name.as_str()))
            .collect()
    }

    /// [`validate_scim_filter`] against these schemas.
    #[wasm_bindgen(js_name = validateScimFilter, unchecked_return_type = "ValidationResult")]
    pub fn validate_scim_filter(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] text: JsValue,
        #[wasm_bindgen(unchecked_param_type = "ScimFilterOptions")] options: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        validate_scim(&self.registry, &text, options.as_ref())
    }

    /// [`complete_scim_filter`] against these schemas.
    #[wasm_bindgen(js_name = completeScimFilter, unchecked_return_type = "Completions")]
    pub fn complete_scim_filter(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] text: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] cursor: JsValue,
        #[wasm_bindgen(js_name = resourceType, unchecked_param_type = "string")]
        resource_type: JsValue,
        #[wasm_bindgen(unchecked_param_type = "ScimFilterOptions")] options: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        complete_scim(
            &self.registry,
            &text,
            &cursor,
            &resource_type,
            options.as_ref(),
        )
    }
}

/// `ScimFilterOptions`, read and checked.
struct Options {
    resource_type: Option<String>,
    parse: ParseOptions,
    compat: Compatibility,
}

impl Options {
    fn read(options: Option<&JsValue>) -> Result<Self, JsValue> {
        let mut read = Self {
            resource_type: None,
            parse: ParseOptions::default(),
            compat: Compatibility::default(),
        };
        let Some(options) = options.filter(|o| !o.is_undefined() && !o.is_null()) else {
            return Ok(read);
        };
        if !options.is_object() {
            return Err(misuse("invalidArgument", "`options` must be an object"));
        }
        let field = |name: &'static str| js_sys::Reflect::get(options, &interned(name));
        let resource_type = field("resourceType")?;
        if !resource_type.is_undefined() {
            read.resource_type = Some(string_argument(&resource_type, "options.resourceType")?);
        }
        let strict = field("strict")?;
        if !strict.is_undefined() {
            let strict = strict
                .as_bool()
                .ok_or_else(|| misuse("invalidArgument", "`options.strict` must be a boolean"))?;
            if strict {
                read.compat = Compatibility::strict();
                read.parse = ParseOptions::default().with_compat(read.compat);
            }
        }
        Ok(read)
    }
}

fn validate_scim(
    registry: &SchemaRegistry,
    text: &JsValue,
    options: Option<&JsValue>,
) -> Result<JsValue, JsValue> {
    let text = string_argument(text, "text")?;
    let options = Options::read(options)?;
    let resource_type = match &options.resource_type {
        Some(name) => Some(find_resource_type(registry, name)?),
        None => None,
    };
    let offsets = Offsets::new(&text);
    let warnings = js_sys::Array::new();
    let error = match (Filter::parse_with(&text, &options.parse), resource_type) {
        (Err(e), _) => Some(e),
        (Ok(_), None) => None,
        (Ok(filter), Some(rt)) => {
            for path in filter.undefined_attributes(rt) {
                let (position, length) = offsets.span(path.span().range());
                warnings.push(&object(&[
                    (
                        "message",
                        format!("`{path}` is not an attribute of {}", rt.name).into(),
                    ),
                    ("attribute", path.as_str().into()),
                    ("position", position.into()),
                    ("length", length.into()),
                ]));
            }
            filter.check(rt, options.compat).err()
        }
    };
    Ok(validation(error.as_ref(), &offsets, warnings))
}

/// A `ValidationResult`.
fn validation(error: Option<&Error>, offsets: &Offsets<'_>, warnings: js_sys::Array) -> JsValue {
    let Some(e) = error else {
        return object(&[("valid", JsValue::TRUE), ("warnings", warnings.into())]);
    };
    let (message, fields) = error_fields(e, offsets);
    let mut error = vec![("message", JsValue::from(message))];
    error.extend(fields);
    object(&[
        ("valid", JsValue::FALSE),
        ("error", object(&error)),
        ("warnings", warnings.into()),
    ])
}

fn complete_scim(
    registry: &SchemaRegistry,
    text: &JsValue,
    cursor: &JsValue,
    resource_type: &JsValue,
    options: Option<&JsValue>,
) -> Result<JsValue, JsValue> {
    let text = string_argument(text, "text")?;
    let offsets = Offsets::new(&text);
    let cursor = cursor
        .as_f64()
        .filter(|c| c.fract() == 0.0 && *c >= 0.0 && *c <= offsets.utf16_len() as f64)
        .ok_or_else(|| {
            misuse(
                "invalidArgument",
                "`cursor` must be an integer index into the text (0 to its length)",
            )
        })?;
    let resource_type = string_argument(resource_type, "resourceType")?;
    let rt = find_resource_type(registry, &resource_type)?;
    let options = Options::read(options)?;
    // The cursor is an integer in range, checked above.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let byte = offsets.byte(cursor as usize);
    let found = complete(&text, byte, rt, &options.parse);
    let items: js_sys::Array = found
        .items
        .iter()
        .map(|item| {
            let mut fields = vec![
                ("text", JsValue::from(&item.text)),
                ("kind", interned(item.kind.as_str())),
                ("detail", JsValue::from(&item.detail)),
            ];
            if let Some(doc) = &item.documentation {
                fields.push(("documentation", JsValue::from(doc)));
            }
            object(&fields)
        })
        .collect();
    Ok(object(&[
        ("from", offsets.utf16(found.replace.start).into()),
        ("to", offsets.utf16(found.replace.end).into()),
        ("items", items.into()),
    ]))
}

fn find_resource_type<'r>(
    registry: &'r SchemaRegistry,
    name: &str,
) -> Result<&'r usersync_core::scim::schema::ResourceType, JsValue> {
    registry.resource_type(name).ok_or_else(|| {
        let known: Vec<&str> = registry
            .resource_types()
            .iter()
            .map(|rt| rt.name.as_str())
            .collect();
        misuse(
            "unknownResourceType",
            &format!("no resource type `{name}` (known: {})", known.join(", ")),
        )
    })
}

/// A filter error as a `ValidationError`: its message (without the byte position), and its
/// `kind`, UTF-16 `position` and `length`, and `expected` classes.
fn error_fields(e: &Error, offsets: &Offsets<'_>) -> (String, [(&'static str, JsValue); 4]) {
    let (message, (position, length), expected) = match e.syntax() {
        Some(s) => (
            s.message().to_owned(),
            offsets.span(s.span()),
            s.expected().names().map(interned).collect(),
        ),
        None => (e.to_string(), (0, 0), js_sys::Array::new()),
    };
    let fields = [
        ("kind", interned(e.kind().as_str())),
        ("position", position.into()),
        ("length", length.into()),
        ("expected", expected.into()),
    ];
    (message, fields)
}

/// The `FilterError` the parse and format functions throw: an `Error` with the fields of a
/// `ValidationError`, and the error's kind as its `code`.
fn filter_error(e: &Error, offsets: &Offsets<'_>) -> JsValue {
    let (message, fields) = error_fields(e, offsets);
    named_error("FilterError", e.kind().as_str(), &message, &fields)
}

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
