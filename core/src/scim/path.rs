//! SCIM PATCH paths (RFC 7644 §3.5.2): `attrPath`, or `valuePath` optionally followed by a
//! sub-attribute, as in `emails[type eq "work"].value`. Parsed by the filter parser, with the
//! same error model.
//!
//! ```
//! use usersync_core::scim::path::PatchPath;
//! let p: PatchPath = r#"members[value eq "2819c223"]"#.parse()?;
//! assert_eq!(p.attr.name(), "members");
//! assert!(p.filter.is_some());
//! let p: PatchPath = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value".parse()?;
//! assert_eq!(p.attr.urn(), Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
//! assert_eq!(p.attr.sub_attr(), Some("value"));
//! # Ok::<(), usersync_core::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::Error;
use crate::scim::filter::{AttrPath, Filter, ParseOptions, parser};

/// A parsed PATCH `path`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute, possibly URN-qualified, possibly with a sub-attribute (then there is no
    /// filter).
    pub attr: AttrPath,
    /// The value filter of `attr[filter]`; its paths name sub-attributes of `attr`.
    pub filter: Option<Filter>,
    /// The sub-attribute after `]`, as in `emails[type eq "work"].value`.
    pub sub_attr: Option<String>,
}

impl PatchPath {
    /// Parses a path with the default [`ParseOptions`].
    ///
    /// # Errors
    /// [`Error::Path`] with the byte position and what was expected.
    ///
    /// ```
    /// use usersync_core::scim::path::PatchPath;
    /// let err = PatchPath::parse("name.givenName.x").unwrap_err();
    /// assert_eq!(err.to_string(), "invalid path: an attribute path has at most one sub-attribute at byte 14");
    /// ```
    pub fn parse(input: &str) -> Result<Self, Error> {
        Self::parse_with(input, &ParseOptions::default())
    }

    /// Parses a path with the given limits.
    ///
    /// # Errors
    /// As for [`PatchPath::parse`], also when a limit of `options` is passed.
    ///
    /// ```
    /// use usersync_core::scim::filter::ParseOptions;
    /// use usersync_core::scim::path::PatchPath;
    /// let tight = ParseOptions::default().with_max_length(8);
    /// assert!(PatchPath::parse_with("members", &tight).is_ok());
    /// assert!(PatchPath::parse_with("phoneNumbers", &tight).is_err());
    /// ```
    pub fn parse_with(input: &str, options: &ParseOptions) -> Result<Self, Error> {
        parser::patch_path(input, options).map_err(Error::Path)
    }

    /// The sub-attribute the path names, before a filter (`emails.value`) or after one
    /// (`emails[type eq "work"].value`).
    ///
    /// ```
    /// use usersync_core::scim::path::PatchPath;
    /// assert_eq!(PatchPath::parse("members.value").unwrap().sub_attribute(), Some("value"));
    /// let after = PatchPath::parse(r#"members[value eq "u1"].display"#).unwrap();
    /// assert_eq!(after.sub_attribute(), Some("display"));
    /// assert_eq!(PatchPath::parse("members").unwrap().sub_attribute(), None);
    /// ```
    #[must_use]
    pub fn sub_attribute(&self) -> Option<&str> {
        self.attr.sub_attr().or(self.sub_attr.as_deref())
    }
}

impl FromStr for PatchPath {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for PatchPath {
    /// The canonical form, which parses back to the same path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}
