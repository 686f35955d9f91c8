//! Reading and writing schemas in their RFC 7643 §7 JSON representation, with validation
//! that names the offending attribute.

use serde_json::{Map, Value, json};

use super::{Attribute, AttributeType, Mutability, Returned, Schema, Uniqueness};

pub(super) const COMMON_JSON: &str = include_str!("builtin/common.json");
pub(super) const USER_JSON: &str = include_str!("builtin/user.json");
pub(super) const GROUP_JSON: &str = include_str!("builtin/group.json");
pub(super) const ENTERPRISE_USER_JSON: &str = include_str!("builtin/enterprise_user.json");

/// A schema definition that is malformed or conflicts with the registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SchemaError {
    message: String,
}

impl SchemaError {
    pub(super) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    fn at(path: &str, message: impl std::fmt::Display) -> Self {
        Self::new(format!("attribute `{path}`: {message}"))
    }
}

/// A parsed JSON value, as the schema reader walks it: `serde_json`'s on the server; the
/// browser module walks the JavaScript engine's own objects, and so carries no JSON parser.
/// Object members keep their order; `null` counts as absent.
pub trait JsonTree: Sized {
    /// The text, when this is a string.
    fn string(&self) -> Option<String>;
    /// The value, when this is `true` or `false`.
    fn boolean(&self) -> Option<bool>;
    /// The elements, when this is an array.
    fn elements(&self) -> Option<Vec<Self>>;
    /// The members, when this is an object.
    fn members(&self) -> Option<Vec<(String, Self)>>;
    /// Whether this is `null`.
    fn is_null(&self) -> bool;
}

/// Elements and members are cloned: schemas are a few kilobytes, read once.
impl JsonTree for Value {
    fn string(&self) -> Option<String> {
        self.as_str().map(str::to_owned)
    }
    fn boolean(&self) -> Option<bool> {
        self.as_bool()
    }
    fn elements(&self) -> Option<Vec<Self>> {
        self.as_array().cloned()
    }
    fn members(&self) -> Option<Vec<(String, Self)>> {
        self.as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
    fn is_null(&self) -> bool {
        Value::is_null(self)
    }
}

/// A JSON object being read: members are taken by name, and any left over is an unknown
/// field (a misspelt characteristic must not silently take its default).
struct Object<T> {
    members: Vec<(String, T)>,
    /// What the object is, for errors: `schema`, ``attribute `emails.type` ``.
    what: String,
}

impl<T: JsonTree> Object<T> {
    fn read(json: &T, what: String) -> Result<Self, SchemaError> {
        match json.members() {
            Some(members) => Ok(Self { members, what }),
            None => Err(SchemaError::new(format!("{what}: not a JSON object"))),
        }
    }

    /// The member `key`, unless absent or `null`.
    fn take(&mut self, key: &str) -> Option<T> {
        let at = self.members.iter().position(|(k, _)| k == key)?;
        Some(self.members.remove(at).1).filter(|v| !v.is_null())
    }

    fn wrong_type(&self, key: &str, wanted: &str) -> SchemaError {
        SchemaError::new(format!("{}: `{key}` must be {wanted}", self.what))
    }

    fn string(&mut self, key: &str) -> Result<Option<String>, SchemaError> {
        self.take(key)
            .map(|v| v.string().ok_or_else(|| self.wrong_type(key, "a string")))
            .transpose()
    }

    fn boolean(&mut self, key: &str) -> Result<Option<bool>, SchemaError> {
        self.take(key)
            .map(|v| {
                v.boolean()
                    .ok_or_else(|| self.wrong_type(key, "`true` or `false`"))
            })
            .transpose()
    }

    fn array(&mut self, key: &str) -> Result<Option<Vec<T>>, SchemaError> {
        self.take(key)
            .map(|v| v.elements().ok_or_else(|| self.wrong_type(key, "an array")))
            .transpose()
    }

    fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>, SchemaError> {
        let Some(elements) = self.array(key)? else {
            return Ok(None);
        };
        elements
            .iter()
            .map(|e| {
                e.string()
                    .ok_or_else(|| self.wrong_type(key, "an array of strings"))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Fails on the first member not taken, in the order written.
    fn finish(self) -> Result<(), SchemaError> {
        match self.members.first() {
            None => Ok(()),
            Some((key, _)) => Err(SchemaError::new(format!(
                "{}: unknown field `{key}`",
                self.what
            ))),
        }
    }
}

/// An attribute definition as written, before its characteristics are checked.
struct RawAttribute {
    name: String,
    ty: Option<String>,
    multi_valued: Option<bool>,
    description: Option<String>,
    required: Option<bool>,
    canonical_values: Option<Vec<String>>,
    case_exact: Option<bool>,
    mutability: Option<String>,
    returned: Option<String>,
    uniqueness: Option<String>,
    reference_types: Option<Vec<String>>,
    sub_attributes: Option<Vec<RawAttribute>>,
}

impl RawAttribute {
    /// Reads the attribute at `index` of `parent`'s attributes (`None` at the top).
    fn read<T: JsonTree>(
        json: &T,
        parent: Option<&str>,
        index: usize,
    ) -> Result<Self, SchemaError> {
        let place = || match parent {
            Some(p) => format!("attribute `{p}`, sub-attribute {}", index + 1),
            None => format!("attribute {}", index + 1),
        };
        let mut o = Object::read(json, place())?;
        let name = match o.string("name")? {
            Some(name) => name,
            None => return Err(SchemaError::new(format!("{}: `name` is missing", place()))),
        };
        o.what = match parent {
            Some(p) => format!("attribute `{p}.{name}`"),
            None => format!("attribute `{name}`"),
        };
        let path = match parent {
            Some(p) => format!("{p}.{name}"),
            None => name.clone(),
        };
        let sub_attributes = match o.array("subAttributes")? {
            // A sub-attribute's own sub-attributes are refused whatever they hold (see
            // `convert`): they are not read, so that no nesting takes the reader deep.
            Some(_) if parent.is_some() => Some(Vec::new()),
            Some(subs) => Some(read_attributes(&subs, Some(&path))?),
            None => None,
        };
        let raw = Self {
            ty: o.string("type")?,
            multi_valued: o.boolean("multiValued")?,
            description: o.string("description")?,
            required: o.boolean("required")?,
            canonical_values: o.strings("canonicalValues")?,
            case_exact: o.boolean("caseExact")?,
            mutability: o.string("mutability")?,
            returned: o.string("returned")?,
            uniqueness: o.string("uniqueness")?,
            reference_types: o.strings("referenceTypes")?,
            sub_attributes,
            name,
        };
        o.finish()?;
        Ok(raw)
    }
}

fn read_attributes<T: JsonTree>(
    elements: &[T],
    parent: Option<&str>,
) -> Result<Vec<RawAttribute>, SchemaError> {
    elements
        .iter()
        .enumerate()
        .map(|(i, e)| RawAttribute::read(e, parent, i))
        .collect()
}

impl Schema {
    /// Reads a schema from its RFC 7643 §7 JSON representation. Characteristics left out
    /// take the RFC defaults (`string`, single-valued, not required, `caseExact: false`,
    /// `readWrite`, returned by default, no uniqueness).
    ///
    /// # Errors
    /// [`SchemaError`] naming the attribute and the problem: malformed JSON, an unknown
    /// characteristic or value, an invalid or duplicate name, a complex attribute without
    /// sub-attributes or with complex ones, `referenceTypes` on a non-reference.
    ///
    /// ```
    /// use usersync_core::scim::schema::Schema;
    /// let err = Schema::from_json(r#"{"id": "urn:x:y", "attributes": [
    ///     {"name": "level", "type": "float"}]}"#).unwrap_err();
    /// assert_eq!(err.to_string(), "attribute `level`: unknown type `float` (expected one of \
    ///     string, boolean, decimal, integer, dateTime, reference, binary, complex)");
    /// ```
    pub fn from_json(json: &str) -> Result<Self, SchemaError> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| SchemaError::new(format!("malformed schema JSON: {e}")))?;
        Self::from_tree(&value)
    }

    /// As [`Schema::from_json`], from parsed JSON.
    ///
    /// # Errors
    /// As for [`Schema::from_json`].
    ///
    /// ```
    /// use usersync_core::scim::schema::Schema;
    /// let json = serde_json::json!({"id": "urn:example:badge", "attributes": [{"name": "number"}]});
    /// let schema = Schema::from_value(&json)?;
    /// assert_eq!(schema.attributes[0].name, "number");
    /// assert_eq!(Schema::from_value(&schema.to_json())?, schema);
    /// # Ok::<(), usersync_core::scim::schema::SchemaError>(())
    /// ```
    pub fn from_value(json: &Value) -> Result<Self, SchemaError> {
        Self::from_tree(json)
    }

    /// As [`Schema::from_json`], from JSON parsed by anything that implements [`JsonTree`].
    ///
    /// # Errors
    /// As for [`Schema::from_json`].
    pub fn from_tree<T: JsonTree>(json: &T) -> Result<Self, SchemaError> {
        let mut o = Object::read(json, "schema".to_owned())?;
        let id = o
            .string("id")?
            .ok_or_else(|| SchemaError::new("schema: `id` is missing"))?;
        let name = o.string("name")?;
        let description = o.string("description")?;
        let attributes = o
            .array("attributes")?
            .ok_or_else(|| SchemaError::new("schema: `attributes` is missing"))?;
        // Present when the schema comes from a `/Schemas` response; not part of the definition.
        o.take("schemas");
        o.take("meta");
        o.finish()?;
        check_schema_id(&id)?;
        let attributes = convert_all(read_attributes(&attributes, None)?, None)?;
        Ok(Schema {
            id,
            name,
            description,
            attributes,
        })
    }

    /// The RFC 7643 §7 representation, every characteristic spelled out, as `/Schemas`
    /// returns it.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert(
            "schemas".into(),
            json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"]),
        );
        out.insert("id".into(), json!(self.id));
        if let Some(name) = &self.name {
            out.insert("name".into(), json!(name));
        }
        if let Some(d) = &self.description {
            out.insert("description".into(), json!(d));
        }
        out.insert("attributes".into(), attributes_json(&self.attributes));
        Value::Object(out)
    }
}

fn attributes_json(attributes: &[Attribute]) -> Value {
    Value::Array(attributes.iter().map(attribute_json).collect())
}

fn attribute_json(a: &Attribute) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(a.name));
    out.insert("type".into(), json!(a.ty.as_str()));
    out.insert("multiValued".into(), json!(a.multi_valued));
    if let Some(d) = &a.description {
        out.insert("description".into(), json!(d));
    }
    out.insert("required".into(), json!(a.required));
    if a.ty == AttributeType::Complex {
        out.insert("subAttributes".into(), attributes_json(&a.sub_attributes));
    }
    out.insert("caseExact".into(), json!(a.case_exact));
    if !a.canonical_values.is_empty() {
        out.insert("canonicalValues".into(), json!(a.canonical_values));
    }
    if a.ty == AttributeType::Reference {
        out.insert("referenceTypes".into(), json!(a.reference_types));
    }
    let mutability = match a.mutability {
        Mutability::ReadOnly => "readOnly",
        Mutability::ReadWrite => "readWrite",
        Mutability::Immutable => "immutable",
        Mutability::WriteOnly => "writeOnly",
    };
    let returned = match a.returned {
        Returned::Always => "always",
        Returned::Never => "never",
        Returned::Default => "default",
        Returned::Request => "request",
    };
    let uniqueness = match a.uniqueness {
        Uniqueness::None => "none",
        Uniqueness::Server => "server",
        Uniqueness::Global => "global",
    };
    out.insert("mutability".into(), json!(mutability));
    out.insert("returned".into(), json!(returned));
    out.insert("uniqueness".into(), json!(uniqueness));
    Value::Object(out)
}

/// A schema URN must be usable as the prefix of a filter path: `urn:` and then letters,
/// digits and `-._:`, never two colons in a row or a trailing one.
fn check_schema_id(id: &str) -> Result<(), SchemaError> {
    let ok = id.len() > 4
        && id.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'))
        && !id.contains("::")
        && !id.ends_with(':');
    if ok {
        Ok(())
    } else {
        Err(SchemaError::new(format!(
            "schema id `{id}` is not a URN that filters can name (`urn:` followed by letters, \
             digits, `-`, `.`, `_` and single colons)"
        )))
    }
}

fn convert_all(
    raw: Vec<RawAttribute>,
    parent: Option<&str>,
) -> Result<Vec<Attribute>, SchemaError> {
    let mut out: Vec<Attribute> = Vec::with_capacity(raw.len());
    for r in raw {
        let path = match parent {
            Some(p) => format!("{p}.{}", r.name),
            None => r.name.clone(),
        };
        if out.iter().any(|a| a.name.eq_ignore_ascii_case(&r.name)) {
            return Err(SchemaError::at(&path, "defined twice (names ignore case)"));
        }
        out.push(convert(r, &path, parent.is_some())?);
    }
    Ok(out)
}

fn convert(r: RawAttribute, path: &str, is_sub: bool) -> Result<Attribute, SchemaError> {
    let name_ok = {
        let b = r.name.as_bytes();
        (is_sub && r.name == "$ref")
            || (b.first().is_some_and(u8::is_ascii_alphabetic)
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
    };
    if !name_ok {
        return Err(SchemaError::at(
            path,
            "not a valid attribute name (a letter, then letters, digits, `-` or `_`)",
        ));
    }
    let ty = match r.ty.as_deref().unwrap_or("string") {
        t if t.eq_ignore_ascii_case("string") => AttributeType::String,
        t if t.eq_ignore_ascii_case("boolean") => AttributeType::Boolean,
        t if t.eq_ignore_ascii_case("decimal") => AttributeType::Decimal,
        t if t.eq_ignore_ascii_case("integer") => AttributeType::Integer,
        t if t.eq_ignore_ascii_case("dateTime") => AttributeType::DateTime,
        t if t.eq_ignore_ascii_case("reference") => AttributeType::Reference,
        t if t.eq_ignore_ascii_case("binary") => AttributeType::Binary,
        t if t.eq_ignore_ascii_case("complex") => AttributeType::Complex,
        other => {
            return Err(SchemaError::at(
                path,
                format!(
                    "unknown type `{other}` (expected one of string, boolean, decimal, integer, \
                     dateTime, reference, binary, complex)"
                ),
            ));
        }
    };
    let mutability = match r.mutability.as_deref().unwrap_or("readWrite") {
        m if m.eq_ignore_ascii_case("readOnly") => Mutability::ReadOnly,
        m if m.eq_ignore_ascii_case("readWrite") => Mutability::ReadWrite,
        m if m.eq_ignore_ascii_case("immutable") => Mutability::Immutable,
        m if m.eq_ignore_ascii_case("writeOnly") => Mutability::WriteOnly,
        other => {
            return Err(SchemaError::at(
                path,
                format!(
                    "unknown mutability `{other}` (expected one of readOnly, readWrite, \
                     immutable, writeOnly)"
                ),
            ));
        }
    };
    let returned = match r.returned.as_deref().unwrap_or("default") {
        m if m.eq_ignore_ascii_case("always") => Returned::Always,
        m if m.eq_ignore_ascii_case("never") => Returned::Never,
        m if m.eq_ignore_ascii_case("default") => Returned::Default,
        m if m.eq_ignore_ascii_case("request") => Returned::Request,
        other => {
            return Err(SchemaError::at(
                path,
                format!(
                    "unknown returned `{other}` (expected one of always, never, default, request)"
                ),
            ));
        }
    };
    let uniqueness = match r.uniqueness.as_deref().unwrap_or("none") {
        m if m.eq_ignore_ascii_case("none") => Uniqueness::None,
        m if m.eq_ignore_ascii_case("server") => Uniqueness::Server,
        m if m.eq_ignore_ascii_case("global") => Uniqueness::Global,
        other => {
            return Err(SchemaError::at(
                path,
                format!("unknown uniqueness `{other}` (expected one of none, server, global)"),
            ));
        }
    };
    let sub_attributes = match (ty, r.sub_attributes) {
        (AttributeType::Complex, Some(subs)) if !subs.is_empty() => {
            if is_sub {
                return Err(SchemaError::at(path, "a sub-attribute cannot be complex"));
            }
            convert_all(subs, Some(path))?
        }
        (AttributeType::Complex, _) if is_sub => {
            return Err(SchemaError::at(path, "a sub-attribute cannot be complex"));
        }
        (AttributeType::Complex, _) => {
            return Err(SchemaError::at(
                path,
                "a complex attribute needs `subAttributes`",
            ));
        }
        (_, Some(_)) => {
            return Err(SchemaError::at(
                path,
                "only a complex attribute has `subAttributes`",
            ));
        }
        (_, None) => Vec::new(),
    };
    if ty != AttributeType::Reference && r.reference_types.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(SchemaError::at(
            path,
            "only a reference attribute has `referenceTypes`",
        ));
    }
    Ok(Attribute {
        name: r.name,
        ty,
        multi_valued: r.multi_valued.unwrap_or(false),
        description: r.description,
        required: r.required.unwrap_or(false),
        // Binary values are base64 text, whose case matters (RFC 7643 §2.3.6).
        case_exact: r.case_exact.unwrap_or(ty == AttributeType::Binary),
        mutability,
        returned,
        uniqueness,
        canonical_values: r.canonical_values.unwrap_or_default(),
        reference_types: r.reference_types.unwrap_or_default(),
        sub_attributes,
    })
}

/// A built-in schema; they are part of the crate and checked by tests, so failing here is a
/// build defect, not an input error.
pub(super) fn builtin_schema<T: JsonTree>(json: &T) -> Schema {
    match Schema::from_tree(json) {
        Ok(s) => s,
        Err(e) => panic!("built-in schema is invalid: {e}"),
    }
}

pub(super) fn builtin_attributes<T: JsonTree>(json: &T) -> Vec<Attribute> {
    let read = match json.elements() {
        Some(elements) => read_attributes(&elements, None),
        None => Err(SchemaError::new("not a JSON array")),
    };
    match read.and_then(|raw| convert_all(raw, None)) {
        Ok(a) => a,
        Err(e) => panic!("built-in attributes are invalid: {e}"),
    }
}
