//! The SCIM 2.0 language (RFC 7643, RFC 7644): schemas, filters and PATCH paths.

pub mod datetime;
pub mod filter;
pub mod path;
pub mod schema;
#[cfg(feature = "service")]
pub mod service;
pub(crate) mod text;
