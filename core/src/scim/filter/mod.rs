//! The SCIM filter language (RFC 7644 §3.4.2.2): parse, print, and evaluate against resources.
//!
//! ```
//! use usersync_core::scim::filter::Filter;
//!
//! let f: Filter = r#"userName Eq "bjensen" AND not(emails co "example.org")"#.parse()?;
//! assert_eq!(f.to_string(), r#"userName eq "bjensen" and not (emails co "example.org")"#);
//!
//! let err = r#"userName "bjensen""#.parse::<Filter>().unwrap_err();
//! assert_eq!(err.position(), Some(9));
//! assert_eq!(
//!     err.to_string(),
//!     "invalid filter: expected a comparison operator after `userName`, found `\"bjensen\"` at byte 9"
//! );
//! # Ok::<(), usersync_core::Error>(())
//! ```
//!
//! # Semantics
//!
//! Evaluation ([`CompiledFilter`]) follows RFC 7644 and fixes what it leaves open:
//! - a multi-valued attribute matches when any of its values matches; one without a named
//!   sub-attribute is compared through its `value` sub-attribute;
//! - `attr[filter]` matches only when a single value satisfies the whole inner filter, while
//!   `emails.type eq "work" and emails.value co "x"` may be satisfied by two different emails;
//! - an attribute with no value (absent, `null`, `""`, `[]`, `{}`) fails `pr` and every
//!   operator except `ne`: `title ne "x"` holds for a user without a title. `eq null` holds
//!   exactly when `pr` does not, `ne null` when it does;
//! - strings compare exactly when the attribute is `caseExact`, otherwise by their case fold
//!   (lowercase, then Unicode NFC);
//! - `gt`/`ge`/`lt`/`le` order dateTimes chronologically, numbers numerically and strings
//!   lexicographically, and are an `invalidFilter` error on booleans, binaries and complex
//!   attributes; `co`/`sw`/`ew` apply to strings (and to dateTimes as text), never to
//!   booleans or numbers;
//! - a literal of the wrong type for its attribute (`active eq 1`) is an `invalidFilter`
//!   error, except boolean strings (`"True"`) under [`Compatibility::string_booleans`];
//! - an attribute the resource type does not define matches nothing.

mod ast;
mod complete;
mod decimal;
mod display;
pub(crate) mod eval;
mod lexer;
pub(crate) mod parser;
#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

pub use ast::{
    AttrPath, CompareOp, Comparison, Filter, Present, Span, TreeBuilder, Value, ValuePath,
};
pub use complete::{Completion, CompletionKind, Completions, complete};
pub use decimal::{Decimal, DecimalError};
pub use eval::CompiledFilter;

use crate::Error;
use crate::scim::schema::ResourceType;

/// A parse or type error in a filter or path, with where it is and what was expected.
///
/// Displays as `"<message> at byte <position>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    start: usize,
    end: usize,
    message: String,
    expected: Expected,
}

impl SyntaxError {
    pub(crate) fn new(start: usize, end: usize, message: impl Into<String>) -> Self {
        Self {
            start,
            end: end.max(start),
            message: message.into(),
            expected: Expected::NOTHING,
        }
    }

    /// The same error, saying what the grammar would have accepted where it stopped.
    #[must_use]
    pub(crate) fn expecting(mut self, expected: Expected) -> Self {
        self.expected = expected;
        self
    }

    /// What the grammar would have accepted at [`SyntaxError::position`]; empty for errors
    /// that are not about a missing or unexpected token (a limit, a bad attribute name).
    pub fn expected(&self) -> Expected {
        self.expected
    }

    /// Byte offset in the input where the problem is.
    pub fn position(&self) -> usize {
        self.start
    }

    /// The bytes of the input the problem covers (empty at the end of the input).
    pub fn span(&self) -> Range<usize> {
        self.start..self.end
    }

    /// The message without its position.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.start)
    }
}

impl std::error::Error for SyntaxError {}

/// A set of token classes a parser would have accepted, so that an editor can offer them
/// and a binding can report them without reading message text. Shared by the SCIM grammars
/// and the LDAP one, whose `&`, `|` and `!` are [`Expected::AND`], [`Expected::OR`] and
/// [`Expected::NOT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Expected(u16);

impl Expected {
    /// Nothing in particular.
    pub const NOTHING: Self = Self(0);
    /// An attribute name or path.
    pub const ATTRIBUTE: Self = Self(1);
    /// A sub-attribute name (after `].`).
    pub const SUB_ATTRIBUTE: Self = Self(1 << 1);
    /// A comparison operator (`eq`, `pr`, …; LDAP `=`, `>=`, …).
    pub const OPERATOR: Self = Self(1 << 2);
    /// A comparison value.
    pub const VALUE: Self = Self(1 << 3);
    /// `not` (LDAP `!`).
    pub const NOT: Self = Self(1 << 4);
    /// `and` (LDAP `&`).
    pub const AND: Self = Self(1 << 5);
    /// `or` (LDAP `|`).
    pub const OR: Self = Self(1 << 6);
    /// `(`.
    pub const OPEN_PAREN: Self = Self(1 << 7);
    /// `)`.
    pub const CLOSE_PAREN: Self = Self(1 << 8);
    /// `[`.
    pub const OPEN_BRACKET: Self = Self(1 << 9);
    /// `]`.
    pub const CLOSE_BRACKET: Self = Self(1 << 10);
    /// `.` before a sub-attribute.
    pub const DOT: Self = Self(1 << 11);
    /// The end of the input.
    pub const END: Self = Self(1 << 12);

    const NAMES: [&'static str; 13] = [
        "attribute",
        "subAttribute",
        "operator",
        "value",
        "not",
        "and",
        "or",
        "(",
        ")",
        "[",
        "]",
        ".",
        "end",
    ];

    /// Both sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every class of `other` is in this set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The stable names of the classes in the set, in a fixed order: `attribute`,
    /// `subAttribute`, `operator`, `value`, `not`, `and`, `or`, `(`, `)`, `[`, `]`, `.`, `end`.
    ///
    /// ```
    /// use usersync_core::scim::filter::Filter;
    /// let err = Filter::parse("userName eq \"a\" and").unwrap_err();
    /// let expected = err.syntax().expect("a syntax error").expected();
    /// assert_eq!(expected.names().collect::<Vec<_>>(), ["attribute", "not", "("]);
    /// ```
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .iter()
            .enumerate()
            .filter(move |(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, name)| *name)
    }
}

impl std::ops::BitOr for Expected {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        self.union(other)
    }
}

/// Tolerances for what identity providers actually send. All are on by default; turn them
/// off with [`Compatibility::strict`] for RFC behaviour only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Compatibility {
    /// Accept Microsoft Entra ID's `emails[type eq "work"].value eq "x"`, which is not in the
    /// RFC grammar, as `emails[type eq "work" and value eq "x"]`: one email must satisfy both.
    pub value_path_sub_attribute: bool,
    /// Compare a boolean attribute with the strings `"true"`/`"false"` in any case, as Entra
    /// ID sends them (`active eq "False"`).
    pub string_booleans: bool,
}

impl Compatibility {
    /// RFC 7644 as written, no tolerances.
    pub const fn strict() -> Self {
        Self {
            value_path_sub_attribute: false,
            string_booleans: false,
        }
    }
}

impl Default for Compatibility {
    fn default() -> Self {
        Self {
            value_path_sub_attribute: true,
            string_booleans: true,
        }
    }
}

/// Limits that keep hostile input from costing more than a clear error, and the
/// compatibility switches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseOptions {
    /// Longest input accepted, in bytes (default 16 KiB).
    pub max_length: usize,
    /// Deepest nesting of parentheses, `not` and value filters (default 32).
    pub max_depth: usize,
    /// Most comparisons and presence tests in one filter (default 500).
    pub max_terms: usize,
    /// Tolerated deviations from the RFC.
    pub compat: Compatibility,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            max_length: 16 * 1024,
            max_depth: 32,
            max_terms: 500,
            compat: Compatibility::default(),
        }
    }
}

impl ParseOptions {
    /// With a different [`ParseOptions::max_length`].
    #[must_use]
    pub fn with_max_length(mut self, bytes: usize) -> Self {
        self.max_length = bytes;
        self
    }

    /// With a different [`ParseOptions::max_depth`].
    #[must_use]
    pub fn with_max_depth(mut self, levels: usize) -> Self {
        self.max_depth = levels;
        self
    }

    /// With a different [`ParseOptions::max_terms`].
    #[must_use]
    pub fn with_max_terms(mut self, terms: usize) -> Self {
        self.max_terms = terms;
        self
    }

    /// With different [`Compatibility`] switches.
    #[must_use]
    pub fn with_compat(mut self, compat: Compatibility) -> Self {
        self.compat = compat;
        self
    }
}

impl Filter {
    /// Parses a filter with the default [`ParseOptions`].
    ///
    /// # Errors
    /// [`Error::Filter`] with the byte position, the offending token and what was expected.
    ///
    /// ```
    /// use usersync_core::scim::filter::Filter;
    /// let f = Filter::parse(r#"emails[type eq "work"].value eq "bjensen@example.com""#)?;
    /// assert_eq!(f.to_string(), r#"emails[type eq "work" and value eq "bjensen@example.com"]"#);
    /// # Ok::<(), usersync_core::Error>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, Error> {
        Self::parse_with(input, &ParseOptions::default())
    }

    /// Parses a filter with the given options.
    ///
    /// # Errors
    /// [`Error::Filter`], as for [`Filter::parse`], also when a limit of `options` is passed.
    ///
    /// ```
    /// use usersync_core::scim::filter::{Compatibility, Filter, ParseOptions};
    /// let strict = ParseOptions::default().with_compat(Compatibility::strict());
    /// assert!(Filter::parse_with(r#"emails[type eq "work"].value pr"#, &strict).is_err());
    /// ```
    pub fn parse_with(input: &str, options: &ParseOptions) -> Result<Self, Error> {
        parser::filter(input, options).map_err(Error::Filter)
    }

    /// Binds this filter to a resource type, resolving its attributes and checking that every
    /// literal suits its attribute, with the default [`Compatibility`].
    ///
    /// # Errors
    /// [`Error::Filter`] for an operator or literal that cannot apply to its attribute
    /// (`active gt true`, `userName eq 5`, `meta.created gt "yesterday"`).
    ///
    /// ```
    /// use usersync_core::scim::filter::Filter;
    /// use usersync_core::scim::schema::SchemaRegistry;
    /// let registry = SchemaRegistry::core();
    /// let users = registry.resource_type("User").expect("built in");
    /// let err = Filter::parse("active gt true")?.compile(users).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid filter: `gt` cannot order booleans (`active`) at byte 0");
    /// # Ok::<(), usersync_core::Error>(())
    /// ```
    pub fn compile(&self, resource_type: &ResourceType) -> Result<CompiledFilter, Error> {
        CompiledFilter::new(self, resource_type, Compatibility::default())
    }

    /// As [`Filter::compile`], with the given compatibility switches.
    ///
    /// # Errors
    /// As for [`Filter::compile`].
    ///
    /// ```
    /// use usersync_core::scim::filter::{Compatibility, Filter};
    /// use usersync_core::scim::schema::SchemaRegistry;
    /// let registry = SchemaRegistry::core();
    /// let users = registry.resource_type("User").expect("built in");
    /// let entra = Filter::parse(r#"active eq "False""#)?;
    /// assert!(entra.compile(users)?.matches(&serde_json::json!({"active": false})));
    /// assert!(entra.compile_with(users, Compatibility::strict()).is_err());
    /// # Ok::<(), usersync_core::Error>(())
    /// ```
    pub fn compile_with(
        &self,
        resource_type: &ResourceType,
        compat: Compatibility,
    ) -> Result<CompiledFilter, Error> {
        CompiledFilter::new(self, resource_type, compat)
    }
}

impl FromStr for Filter {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
