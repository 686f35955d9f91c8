//! The crate's one error type. Every surface (SCIM responses, the C ABI, Python, WASM) maps an
//! error through [`Error::kind`], never through its message.

use crate::scim::filter::SyntaxError;
use crate::scim::schema::SchemaError;

/// Anything that can go wrong in usersync-core.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A SCIM filter that does not parse, or that cannot apply to the attributes it names.
    #[error("invalid filter: {0}")]
    Filter(SyntaxError),
    /// A SCIM PATCH path that does not parse.
    #[error("invalid path: {0}")]
    Path(SyntaxError),
    /// A schema definition that is malformed or conflicts with the registry.
    #[error("invalid schema: {0}")]
    Schema(#[from] SchemaError),
    /// An LDAP search filter (RFC 4515) that does not parse.
    #[error("invalid LDAP filter: {0}")]
    LdapFilter(SyntaxError),
}

/// The stable classification of an [`Error`]. New kinds may be added; existing ones never
/// change meaning or name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Error::Filter`]; SCIM `scimType` `invalidFilter`.
    InvalidFilter,
    /// See [`Error::Path`]; SCIM `scimType` `invalidPath`.
    InvalidPath,
    /// See [`Error::Schema`].
    InvalidSchema,
    /// See [`Error::LdapFilter`].
    InvalidLdapFilter,
}

impl ErrorKind {
    /// The stable identifier of this kind, as the bindings expose it (`invalidFilter`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::InvalidPath => "invalidPath",
            Self::InvalidSchema => "invalidSchema",
            Self::InvalidLdapFilter => "invalidLdapFilter",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The stable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Filter(_) => ErrorKind::InvalidFilter,
            Self::Path(_) => ErrorKind::InvalidPath,
            Self::Schema(_) => ErrorKind::InvalidSchema,
            Self::LdapFilter(_) => ErrorKind::InvalidLdapFilter,
        }
    }

    /// The syntax error behind a filter or path error: its byte position, span and message.
    pub fn syntax(&self) -> Option<&SyntaxError> {
        match self {
            Self::Filter(e) | Self::Path(e) | Self::LdapFilter(e) => Some(e),
            Self::Schema(_) => None,
        }
    }

    /// The byte offset in the input where the problem was found, where there is one.
    pub fn position(&self) -> Option<usize> {
        self.syntax().map(SyntaxError::position)
    }
}
