//! usersync-core: the engine behind every usersync surface.
//!
//! - the SCIM 2.0 language: the schema registry ([`scim::schema`]), the filter language with
//!   its evaluator ([`scim::filter`]) and PATCH paths ([`scim::path`]);
//! - the store of directories, users, groups, memberships and the change feed ([`store`]):
//!   in memory, or in SQLite (feature `sqlite`, default);
//! - LDAP search filters (RFC 4515) with positions ([`ldap::filter`]);
//! - the SCIM protocol behind one transport-agnostic call (`scim::service`, feature
//!   `service`, default);
//! - kept password hashes and sign-in checks ([`password`], feature `service`);
//! - a SCIM client with retries (`client`, feature `client`, default), the remote target an
//!   LDAP sync can feed.
//!
//! Every failure of the language is an [`Error`] whose [`ErrorKind`] is stable, so each
//! binding maps errors in one place without reading message text.
//!
//! ```
//! use usersync_core::scim::filter::Filter;
//! use usersync_core::scim::schema::SchemaRegistry;
//!
//! let filter: Filter = r#"emails[type eq "work" and value co "@example.com"]"#.parse()?;
//! let registry = SchemaRegistry::core();
//! let users = registry.resource_type("User").expect("built in");
//! let compiled = filter.compile(users)?;
//! let alice = serde_json::json!({
//!     "userName": "alice",
//!     "emails": [{"type": "work", "value": "alice@EXAMPLE.com"}]
//! });
//! assert!(compiled.matches(&alice));
//! # Ok::<(), usersync_core::Error>(())
//! ```
#![forbid(unsafe_code)]

#[cfg(feature = "client")]
pub mod client;
mod error;
pub mod ldap;
#[cfg(feature = "service")]
pub mod password;
mod percent;
pub mod scim;
pub mod store;
#[cfg(any(feature = "client", feature = "postgres"))]
mod tls;

pub use error::{Error, ErrorKind};

/// The README's Rust example, run as a doctest so that it stays true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
