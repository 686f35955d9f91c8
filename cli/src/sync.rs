//! `usersync plan` and `usersync sync`: reconcile an LDAP directory into the store.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use usersync_core::ldap::config::SyncConfig;
use usersync_core::ldap::{apply, plan, source};
use usersync_core::store::sqlite::SqliteStore;
use usersync_core::store::system_clock;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The sync configuration (TOML; see examples/).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The SQLite database.
    #[arg(long, default_value = "usersync.db")]
    db: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    common: Args,
    /// Apply a plan that crosses a deletion threshold.
    #[arg(long)]
    allow_deletes: bool,
}

/// Exit codes: 0 done, 1 failed, 3 blocked by a threshold (nothing applied).
const BLOCKED: u8 = 3;

/// Reads the configuration, the source and the store: everything a plan needs.
fn prepare(args: &Args) -> Result<(SyncConfig, SqliteStore, plan::Plan), String> {
    let config = SyncConfig::from_file(&args.config)
        .map_err(|e| format!("{}: {e}", args.config.display()))?;
    let store = SqliteStore::open(&args.db, system_clock())
        .map_err(|e| format!("cannot open {}: {e}", args.db.display()))?;
    let snapshot = source::read(&config).map_err(|e| e.to_string())?;
    let current = apply::current(&store, &config.directory).map_err(|e| e.to_string())?;
    let plan = plan::plan(&config, &snapshot, &current);
    Ok((config, store, plan))
}

pub(crate) fn plan(args: &Args) -> ExitCode {
    match prepare(args) {
        Ok((_, _, plan)) => {
            if args.json {
                println!("{}", plan.to_json());
            } else {
                print!("{plan}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn sync(args: &SyncArgs) -> ExitCode {
    let (config, store, plan) = match prepare(&args.common) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !args.common.json {
        print!("{plan}");
    }
    match apply::apply(&store, &config, &plan, args.allow_deletes) {
        Ok(report) => {
            if args.common.json {
                println!("{}", json!({"plan": plan.to_json(), "report": report}));
            } else {
                let applied: usize = report.applied.values().sum();
                println!(
                    "applied {applied} changes in {} ms{}{}",
                    report.milliseconds,
                    if report.conflicts.is_empty() {
                        String::new()
                    } else {
                        format!(", {} skipped for conflicts", report.conflicts.len())
                    },
                    if report.failures.is_empty() {
                        String::new()
                    } else {
                        format!(", {} failed", report.failures.len())
                    }
                );
                for c in &report.conflicts {
                    println!("conflict: {c}");
                }
                for f in &report.failures {
                    println!("failed: {f}");
                }
            }
            if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e @ apply::ApplyError::Blocked(_)) => {
            if args.common.json {
                println!(
                    "{}",
                    json!({"plan": plan.to_json(), "error": e.to_string()})
                );
            }
            eprintln!("error: {e}");
            ExitCode::from(BLOCKED)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
