//! The schema registry (RFC 7643): the core `User` and `Group` schemas, the Enterprise User
//! extension, and custom extensions loaded from their RFC 7643 §7 JSON representation.
//!
//! Attribute lookup ignores case and accepts schema-qualified paths:
//!
//! ```
//! use usersync_core::scim::schema::SchemaRegistry;
//! let registry = SchemaRegistry::core();
//! let users = registry.resource_type("user").expect("built in");
//! let a = users.resolve("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value")
//!     .expect("defined");
//! assert_eq!(a.attribute.name, "manager");
//! assert_eq!(a.sub_attribute.map(|s| s.name.as_str()), Some("value"));
//! assert!(users.resolve("USERNAME").is_some());
//! assert!(users.resolve("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName").is_some());
//! ```

mod load;

use std::sync::{Arc, LazyLock};

pub use load::{JsonTree, SchemaError};

use crate::scim::filter::AttrPath;
use crate::scim::filter::parser::attr_path;

/// URN of the core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// URN of the core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// URN of the Enterprise User extension.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The data type of an attribute (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttributeType {
    /// `string`
    String,
    /// `boolean`
    Boolean,
    /// `decimal`
    Decimal,
    /// `integer`
    Integer,
    /// `dateTime`
    DateTime,
    /// `reference`
    Reference,
    /// `binary` (base64 text)
    Binary,
    /// `complex`
    Complex,
}

impl AttributeType {
    /// The name used in schema JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Decimal => "decimal",
            Self::Integer => "integer",
            Self::DateTime => "dateTime",
            Self::Reference => "reference",
            Self::Binary => "binary",
            Self::Complex => "complex",
        }
    }
}

/// When an attribute may be written (RFC 7643 §7 `mutability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutability {
    /// Set by the service provider only.
    ReadOnly,
    /// Freely writable (the default).
    ReadWrite,
    /// Written once, on creation or when still unset.
    Immutable,
    /// Writable but never returned (passwords).
    WriteOnly,
}

/// When an attribute appears in responses (RFC 7643 §7 `returned`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Returned {
    /// Always, even when excluded.
    Always,
    /// Never.
    Never,
    /// Unless excluded (the default).
    Default,
    /// Only when asked for in `attributes`.
    Request,
}

/// How unique an attribute's value must be (RFC 7643 §7 `uniqueness`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Uniqueness {
    /// No constraint (the default).
    None,
    /// Unique within the service provider.
    Server,
    /// Globally unique.
    Global,
}

/// One attribute definition with every characteristic of RFC 7643 §2.2.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Attribute {
    /// The attribute name, as defined (lookups ignore case).
    pub name: String,
    /// The data type.
    pub ty: AttributeType,
    /// Whether the attribute holds a list of values.
    pub multi_valued: bool,
    /// Human-readable description.
    pub description: Option<String>,
    /// Whether a value must be present.
    pub required: bool,
    /// Whether string comparison is exact rather than case-insensitive.
    pub case_exact: bool,
    /// When the attribute may be written.
    pub mutability: Mutability,
    /// When the attribute is returned.
    pub returned: Returned,
    /// How unique values must be.
    pub uniqueness: Uniqueness,
    /// Suggested values (`work`, `home`, …).
    pub canonical_values: Vec<String>,
    /// For references: what they may point at (`User`, `Group`, `external`, `uri`, …).
    pub reference_types: Vec<String>,
    /// For complex attributes: the sub-attributes.
    pub sub_attributes: Vec<Attribute>,
}

impl Attribute {
    /// The sub-attribute called `name`, ignoring case.
    pub fn sub_attribute(&self, name: &str) -> Option<&Attribute> {
        find(&self.sub_attributes, name)
    }
}

fn find<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

/// A schema: a URN and its attributes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Schema {
    /// The schema URN.
    pub id: String,
    /// Human-readable name.
    pub name: Option<String>,
    /// Human-readable description.
    pub description: Option<String>,
    /// The top-level attributes.
    pub attributes: Vec<Attribute>,
}

impl Schema {
    /// The top-level attribute called `name`, ignoring case.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        find(&self.attributes, name)
    }
}

/// A schema extension attached to a resource type.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaExtension {
    /// The extension schema.
    pub schema: Arc<Schema>,
    /// Whether resources of the type must carry the extension.
    pub required: bool,
}

/// A resource type (RFC 7643 §6): a core schema, its extensions and its endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// Its name, `User` or `Group` for the core types.
    pub name: String,
    /// Its endpoint relative to the base URL, `/Users`.
    pub endpoint: String,
    /// Human-readable description.
    pub description: Option<String>,
    /// The core schema.
    pub schema: Arc<Schema>,
    /// The extensions, in the order they were attached.
    pub extensions: Vec<SchemaExtension>,
    common: Arc<[Attribute]>,
}

/// Where an attribute path lands in a resource type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved<'a> {
    /// The schema defining the attribute. For the common attributes (`id`, `externalId`,
    /// `meta`, `schemas`) this is the core schema.
    pub schema: &'a Schema,
    /// Whether the attribute is defined by an extension, so it lives under the extension's
    /// URN in resource JSON.
    pub in_extension: bool,
    /// The attribute.
    pub attribute: &'a Attribute,
    /// The sub-attribute, when the path names one.
    pub sub_attribute: Option<&'a Attribute>,
}

impl ResourceType {
    /// Resolves an attribute path written as text (see [`ResourceType::resolve_path`]).
    /// Returns `None` for text that is not an attribute path.
    pub fn resolve(&self, path: &str) -> Option<Resolved<'_>> {
        let parsed = attr_path(path, 0).ok()?;
        (parsed.as_str().len() == path.len()).then_some(())?;
        self.resolve_path(&parsed)
    }

    /// Finds the attribute a path names: by URN when qualified; otherwise among the common
    /// attributes, then the core schema, then the extensions in order. Names ignore case.
    pub fn resolve_path(&self, path: &AttrPath) -> Option<Resolved<'_>> {
        let (schema, in_extension, attribute) = match path.urn() {
            Some(urn) if urn.eq_ignore_ascii_case(&self.schema.id) => {
                let a = find(&self.common, path.name())
                    .or_else(|| self.schema.attribute(path.name()))?;
                (&*self.schema, false, a)
            }
            Some(urn) => {
                let ext = self
                    .extensions
                    .iter()
                    .find(|e| e.schema.id.eq_ignore_ascii_case(urn))?;
                (&*ext.schema, true, ext.schema.attribute(path.name())?)
            }
            None => {
                if let Some(a) =
                    find(&self.common, path.name()).or_else(|| self.schema.attribute(path.name()))
                {
                    (&*self.schema, false, a)
                } else {
                    self.extensions.iter().find_map(|e| {
                        e.schema
                            .attribute(path.name())
                            .map(|a| (&*e.schema, true, a))
                    })?
                }
            }
        };
        let sub_attribute = match path.sub_attr() {
            Some(sub) => Some(attribute.sub_attribute(sub)?),
            None => None,
        };
        Some(Resolved {
            schema,
            in_extension,
            attribute,
            sub_attribute,
        })
    }

    /// The common attributes every resource carries (`id`, `externalId`, `meta`, `schemas`).
    pub fn common_attributes(&self) -> &[Attribute] {
        &self.common
    }
}

/// Parsed once; [`SchemaRegistry::core`] hands out clones (shared `Arc`s).
static CORE: LazyLock<SchemaRegistry> = LazyLock::new(|| {
    // The built-in texts are part of the crate and checked by tests.
    SchemaRegistry::core_parsed_by(|text| {
        serde_json::from_str::<serde_json::Value>(text).unwrap_or_default()
    })
});

/// The schemas and resource types a service knows.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaRegistry {
    schemas: Vec<Arc<Schema>>,
    resource_types: Vec<ResourceType>,
}

impl SchemaRegistry {
    /// The RFC 7643 registry: the `User` resource type (core User schema with the Enterprise
    /// User extension) and the `Group` resource type.
    pub fn core() -> Self {
        CORE.clone()
    }

    /// [`SchemaRegistry::core`], its built-in JSON texts parsed by `parse`: the browser module
    /// has the JavaScript engine parse them, and carries no JSON parser of its own.
    ///
    /// # Panics
    /// When `parse` does not give back the JSON of the texts it is handed.
    pub fn core_parsed_by<T: JsonTree>(parse: impl Fn(&'static str) -> T) -> Self {
        let common: Arc<[Attribute]> = load::builtin_attributes(&parse(load::COMMON_JSON)).into();
        let user = Arc::new(load::builtin_schema(&parse(load::USER_JSON)));
        let group = Arc::new(load::builtin_schema(&parse(load::GROUP_JSON)));
        let enterprise = Arc::new(load::builtin_schema(&parse(load::ENTERPRISE_USER_JSON)));
        Self {
            schemas: vec![user.clone(), group.clone(), enterprise.clone()],
            resource_types: vec![
                ResourceType {
                    name: "User".into(),
                    endpoint: "/Users".into(),
                    description: Some("User Account".into()),
                    schema: user,
                    extensions: vec![SchemaExtension {
                        schema: enterprise,
                        required: false,
                    }],
                    common: common.clone(),
                },
                ResourceType {
                    name: "Group".into(),
                    endpoint: "/Groups".into(),
                    description: Some("Group".into()),
                    schema: group,
                    extensions: Vec::new(),
                    common,
                },
            ],
        }
    }

    /// Every schema, core ones first.
    pub fn schemas(&self) -> impl Iterator<Item = &Schema> {
        self.schemas.iter().map(|s| &**s)
    }

    /// The schema with this URN, ignoring case.
    pub fn schema(&self, id: &str) -> Option<&Schema> {
        self.schemas
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(id))
            .map(|s| &**s)
    }

    /// Every resource type.
    pub fn resource_types(&self) -> &[ResourceType] {
        &self.resource_types
    }

    /// The resource type called `name`, ignoring case.
    pub fn resource_type(&self, name: &str) -> Option<&ResourceType> {
        self.resource_types
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
    }

    /// Adds a custom schema loaded from its JSON representation and attaches it as an
    /// extension to the resource type `resource_type`.
    ///
    /// # Errors
    /// [`crate::Error::Schema`] when the JSON is not a valid schema, the schema's URN is
    /// already registered, or no resource type has that name.
    ///
    /// ```
    /// use usersync_core::scim::schema::SchemaRegistry;
    /// let mut registry = SchemaRegistry::core();
    /// registry.add_extension_json("User", r#"{
    ///     "id": "urn:example:params:scim:schemas:extension:badge:2.0:User",
    ///     "name": "Badge",
    ///     "attributes": [{"name": "badgeNumber", "type": "integer", "multiValued": false}]
    /// }"#, false)?;
    /// let users = registry.resource_type("User").expect("built in");
    /// assert!(users.resolve("badgeNumber").is_some());
    ///
    /// let err = registry.add_extension_json("User", r#"{"id": "urn:x:y", "attributes": [
    ///     {"name": "a", "type": "complex", "multiValued": false}]}"#, false).unwrap_err();
    /// assert_eq!(err.to_string(),
    ///     "invalid schema: attribute `a`: a complex attribute needs `subAttributes`");
    /// # Ok::<(), usersync_core::Error>(())
    /// ```
    pub fn add_extension_json(
        &mut self,
        resource_type: &str,
        json: &str,
        required: bool,
    ) -> Result<(), crate::Error> {
        let schema = Schema::from_json(json)?;
        self.add_extension(resource_type, schema, required)
    }

    /// Adds `schema` and attaches it as an extension to `resource_type`.
    ///
    /// # Errors
    /// As for [`SchemaRegistry::add_extension_json`].
    ///
    /// ```
    /// use usersync_core::scim::schema::{Schema, SchemaRegistry};
    /// let mut registry = SchemaRegistry::core();
    /// let schema = Schema::from_json(r#"{"id": "urn:example:team", "attributes": [{"name": "costCode"}]}"#)?;
    /// registry.add_extension("Group", schema, true)?;
    /// let groups = registry.resource_type("Group").expect("built in");
    /// assert!(groups.extensions[0].required);
    /// assert!(groups.resolve("urn:example:team:costCode").is_some());
    /// # Ok::<(), usersync_core::Error>(())
    /// ```
    pub fn add_extension(
        &mut self,
        resource_type: &str,
        schema: Schema,
        required: bool,
    ) -> Result<(), crate::Error> {
        if self.schema(&schema.id).is_some() {
            return Err(
                SchemaError::new(format!("schema `{}` is already registered", schema.id)).into(),
            );
        }
        let Some(rt) = self
            .resource_types
            .iter_mut()
            .find(|r| r.name.eq_ignore_ascii_case(resource_type))
        else {
            return Err(SchemaError::new(format!("no resource type `{resource_type}`")).into());
        };
        let schema = Arc::new(schema);
        rt.extensions.push(SchemaExtension {
            schema: schema.clone(),
            required,
        });
        self.schemas.push(schema);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_registry_has_the_rfc_resource_types() {
        let r = SchemaRegistry::core();
        let names: Vec<&str> = r.resource_types().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["User", "Group"]);
        let ids: Vec<&str> = r.schemas().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA]);
        let user = r.schema(USER_SCHEMA).unwrap();
        let password = user.attribute("PASSWORD").unwrap();
        assert_eq!(password.mutability, Mutability::WriteOnly);
        assert_eq!(password.returned, Returned::Never);
        let emails = user.attribute("emails").unwrap();
        assert!(emails.multi_valued);
        assert_eq!(
            emails.sub_attribute("type").unwrap().canonical_values,
            ["work", "home", "other"]
        );
        let cert = user
            .attribute("x509Certificates")
            .unwrap()
            .sub_attribute("value")
            .unwrap();
        assert_eq!(cert.ty, AttributeType::Binary);
        assert!(cert.case_exact, "binary values are case-exact by default");
        let members = r
            .schema(GROUP_SCHEMA)
            .unwrap()
            .attribute("members")
            .unwrap();
        assert_eq!(
            members.sub_attribute("$ref").unwrap().reference_types,
            ["User", "Group"]
        );
        assert_eq!(
            members.sub_attribute("value").unwrap().mutability,
            Mutability::Immutable
        );
    }

    #[test]
    fn resolution_rules() {
        let r = SchemaRegistry::core();
        let users = r.resource_type("User").unwrap();
        let id = users.resolve("id").unwrap();
        assert_eq!(id.attribute.uniqueness, Uniqueness::Server);
        assert!(id.attribute.case_exact);
        assert!(
            users.resolve(&format!("{USER_SCHEMA}:id")).is_some(),
            "common attributes under the core URN"
        );
        let dept = users.resolve("department").unwrap();
        assert!(
            dept.in_extension,
            "unqualified names fall back to extensions"
        );
        assert_eq!(dept.schema.id, ENTERPRISE_USER_SCHEMA);
        assert!(
            users
                .resolve(&format!("{GROUP_SCHEMA}:displayName"))
                .is_none()
        );
        assert!(users.resolve("name.nope").is_none());
        assert!(
            users.resolve("userName.x").is_none(),
            "a simple attribute has no sub-attributes"
        );
        assert!(
            users.resolve("userName ").is_none(),
            "not an attribute path"
        );
        assert!(
            r.resource_type("Group")
                .unwrap()
                .resolve("members.value")
                .is_some()
        );
    }

    #[test]
    fn every_schema_round_trips_through_its_json() {
        for schema in SchemaRegistry::core().schemas() {
            let json = schema.to_json();
            assert_eq!(
                json["schemas"][0],
                "urn:ietf:params:scim:schemas:core:2.0:Schema"
            );
            assert_eq!(&Schema::from_value(&json).unwrap(), schema);
        }
        let complex_exact = r#"{"id": "urn:x:y", "attributes": [{"name": "a", "type": "complex",
            "caseExact": true, "subAttributes": [{"name": "b"}]}]}"#;
        let s = Schema::from_json(complex_exact).unwrap();
        assert_eq!(Schema::from_value(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn invalid_schemas_are_rejected_with_the_attribute_named() {
        let cases = [
            (
                r#"{"id": "urn:x:y", "attributes": [{"name": "a", "multivalued": true}]}"#,
                "unknown field `multivalued`",
            ),
            (
                r#"{"id": "x", "attributes": []}"#,
                "schema id `x` is not a URN",
            ),
            (r#"{"id": "urn:x:", "attributes": []}"#, "is not a URN"),
            (
                r#"{"id": "urn:x:y", "attributes": [{"name": "1a"}]}"#,
                "attribute `1a`: not a valid attribute name",
            ),
            (
                r#"{"id": "urn:x:y", "attributes": [{"name": "a"}, {"name": "A"}]}"#,
                "attribute `A`: defined twice",
            ),
            (
                r#"{"id": "urn:x:y", "attributes": [{"name": "a", "type": "complex", "subAttributes": [
                {"name": "b", "type": "complex", "subAttributes": [{"name": "c"}]}]}]}"#,
                "attribute `a.b`: a sub-attribute cannot be complex",
            ),
            (
                r#"{"id": "urn:x:y", "attributes": [{"name": "a", "subAttributes": [{"name": "b"}]}]}"#,
                "only a complex attribute has `subAttributes`",
            ),
            (
                r#"{"id": "urn:x:y", "attributes": [{"name": "a", "referenceTypes": ["User"]}]}"#,
                "only a reference attribute has `referenceTypes`",
            ),
            (
                r#"{"id": "urn:x:y", "attributes": [{"name": "a", "mutability": "sometimes"}]}"#,
                "unknown mutability `sometimes`",
            ),
            (
                r#"{"id": "urn:x:y", "attributes": [{"name": "a", "returned": "maybe"}]}"#,
                "unknown returned `maybe`",
            ),
            (
                r#"{"id": "urn:x:y", "attributes": [{"name": "a", "uniqueness": "local"}]}"#,
                "unknown uniqueness `local`",
            ),
            (
                r#"{"id": "urn:x:y", "attributes": [{"name": "$ref"}]}"#,
                "not a valid attribute name",
            ),
            (
                r#"{"id": "urn:x:y", "attributes": [{"name": "a", "required": "yes"}]}"#,
                "attribute `a`: `required` must be `true` or `false`",
            ),
            (
                r#"{"id": "urn:x:y", "attributes": [{"name": "a", "canonicalValues": ["x", 1]}]}"#,
                "attribute `a`: `canonicalValues` must be an array of strings",
            ),
            (
                r#"{"id": "urn:x:y", "attributes": [{"name": "a", "type": "complex",
                "subAttributes": [{"name": "b"}, {"type": "string"}]}]}"#,
                "attribute `a`, sub-attribute 2: `name` is missing",
            ),
            (
                r#"{"id": "urn:x:y", "attributes": [[]]}"#,
                "attribute 1: not a JSON object",
            ),
            (
                r#"{"id": "urn:x:y", "attributes": {}}"#,
                "schema: `attributes` must be an array",
            ),
            (r#"{"attributes": []}"#, "schema: `id` is missing"),
            (
                r#"{"id": "urn:x:y", "attributes": [], "Name": "x"}"#,
                "schema: unknown field `Name`",
            ),
            (r#"[]"#, "schema: not a JSON object"),
            (r#"{"id": "urn:x:y", "attributes": [], "name": null}"#, ""),
            ("not json", "malformed schema JSON"),
            // Found by the `schema` fuzz target: a multi-byte character across byte 4.
            (r#"{"id": "urnơ:x", "attributes": []}"#, "is not a URN"),
        ];
        // Nested deep: refused at the second level (the browser's reader has no depth limit).
        let deep = format!(
            r#"{{"id": "urn:x:y", "attributes": [{}{}]}}"#,
            r#"{"name": "a", "type": "complex", "subAttributes": ["#.repeat(60),
            "]}".repeat(60)
        );
        let cases = cases.into_iter().chain([(
            deep.as_str(),
            "attribute `a.a`: a sub-attribute cannot be complex",
        )]);
        for (json, expected) in cases {
            match Schema::from_json(json) {
                Err(e) => assert!(
                    !expected.is_empty() && e.to_string().contains(expected),
                    "{json}: {e}"
                ),
                // `null` is as good as absent.
                Ok(_) => assert!(expected.is_empty(), "{json} was accepted"),
            }
        }
        let mut r = SchemaRegistry::core();
        let err = r
            .add_extension_json(
                "User",
                &format!(r#"{{"id": "{ENTERPRISE_USER_SCHEMA}", "attributes": []}}"#),
                false,
            )
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidSchema);
        assert!(err.to_string().contains("already registered"));
        let err = r
            .add_extension_json("Device", r#"{"id": "urn:x:y", "attributes": []}"#, false)
            .unwrap_err();
        assert!(err.to_string().contains("no resource type `Device`"));
    }
}
