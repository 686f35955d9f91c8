//! `usersync`: the command line of the usersync engine.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc, not glibc's malloc: a sync plans and applies by making and freeing millions of
/// small values, and serving does the same per request (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod check_filter;
mod directory;
mod serve;
mod sync;

use std::path::Path;
use std::sync::Arc;

use usersync_core::store::{Store, system_clock};

/// The store `--db` names: a PostgreSQL URL (`postgres://…`) or an SQLite file.
fn open_store(db: &Path) -> Result<Arc<dyn Store>, String> {
    let location = db
        .to_str()
        .ok_or_else(|| format!("{}: the path is not UTF-8", db.display()))?;
    usersync_core::store::open(location, system_clock()).map_err(|e| {
        let shown = usersync_core::store::shown_location(location);
        format!("cannot open {shown}: {e}")
    })
}

/// Whether `--db` names a database server (PostgreSQL) rather than an SQLite file.
fn is_remote(db: &Path) -> bool {
    db.to_str().is_some_and(usersync_core::store::is_server_url)
}

/// Keeps users and groups in step between identity systems and the platform.
#[derive(Debug, Parser)]
#[command(name = "usersync", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checks a SCIM filter (with --path, a PATCH path; with --ldap, an LDAP filter) and
    /// prints its canonical form.
    ///
    /// Exits 0 when valid, 1 when invalid, 2 on a usage error.
    CheckFilter(check_filter::Args),
    /// Serves the SCIM endpoint over HTTP (HTTPS with --tls-cert and --tls-key) on the
    /// embedded SQLite store, or on PostgreSQL with --db postgres://….
    ///
    /// On a new database it creates the directory `default` and prints its endpoint and
    /// token.
    Serve(serve::Args),
    /// Creates and lists directories, rotates and revokes their tokens, checks passwords,
    /// purges deactivated users and lists sync runs.
    Directory(directory::Args),
    /// Reads an LDAP directory and prints the changes a sync would make; changes nothing.
    Plan(sync::Args),
    /// Reads an LDAP directory and applies the changes to the store, or with --target to a
    /// remote SCIM endpoint (with --daemon, on the configuration's schedule until stopped).
    ///
    /// Exits 0 when done, 1 on failure, 3 when a deletion threshold blocks the plan
    /// (nothing applied; --allow-deletes applies it).
    Sync(sync::SyncArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckFilter(args) => check_filter::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Directory(args) => directory::run(&args),
        Command::Plan(args) => sync::plan(&args),
        Command::Sync(args) => sync::sync(&args),
    }
}
