//! LDAP and Active Directory: the filter language and the protocol's messages (always built,
//! without I/O, so that the browser validates filters with the same code and the decoder is
//! fuzzed alone), and, with the `ldap` feature, the reconciliation: configuration, the
//! connection, reading the source, the plan, applying it.
//!
//! ```no_run
//! use usersync_core::ldap::{apply, config::SyncConfig, plan, source};
//! use usersync_core::store::{sqlite::SqliteStore, system_clock};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = SyncConfig::from_file("examples/openldap.toml".as_ref())?;
//! let store = SqliteStore::open("usersync.db".as_ref(), system_clock())?;
//! let snapshot = source::read(&config)?;
//! let plan = plan::plan(&config, &snapshot, &apply::current(&store, &config.directory)?);
//! println!("{plan}");
//! let report = apply::apply(&store, &config, &plan, false)?;
//! # Ok(()) }
//! ```

pub mod dn;
pub mod filter;
pub mod protocol;
pub mod url;

#[cfg(feature = "ldap")]
pub mod apply;
#[cfg(feature = "ldap")]
pub mod config;
#[cfg(feature = "ldap")]
pub mod connection;
#[cfg(feature = "ldap")]
pub mod plan;
#[cfg(feature = "ldap")]
pub mod remote;
#[cfg(feature = "ldap")]
pub mod run;
#[cfg(feature = "ldap")]
pub mod schedule;
#[cfg(feature = "ldap")]
pub mod source;
