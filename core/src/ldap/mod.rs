//! LDAP and Active Directory: the filter language (here, without I/O, so that the browser
//! validates filters with the same code), and the reconciliation that reads directories.

pub mod filter;
#[cfg(feature = "ldap")]
pub mod config;
