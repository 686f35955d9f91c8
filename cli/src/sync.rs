//! `usersync plan` and `usersync sync`: reconcile an LDAP directory into the store.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use usersync_core::client::{ClientOptions, ScimClient};
use usersync_core::ldap::apply::{self, ApplyOptions, LocalTarget, Target};
use usersync_core::ldap::config::SyncConfig;
use usersync_core::ldap::remote::RemoteTarget;
use usersync_core::ldap::run::{self, RunOptions, RunOutcome};
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
    /// Sync into a remote SCIM 2.0 endpoint (`https://host/scim/v2/<tenant>`) instead of
    /// the local store; the database then only keeps the lock and the runs' records.
    #[arg(long, value_name = "URL", requires = "token_env")]
    target: Option<String>,
    /// The environment variable that holds the target's bearer token.
    #[arg(long, value_name = "VAR", requires = "target")]
    token_env: Option<String>,
    /// The CA certificates (PEM) of an https:// target; the system's roots by default.
    #[arg(long, value_name = "FILE", requires = "target")]
    target_ca: Option<PathBuf>,
    /// Requests in flight at once to the target.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256), requires = "target")]
    concurrency: u16,
    /// Read everything, even when [incremental] runs are configured and one is possible.
    #[arg(long)]
    full: bool,
}

impl Args {
    /// The remote target, when one is given, checked (URL, token) before anything is read
    /// from LDAP — unless `checked_later`: a daemon checks it in each run, so that an
    /// endpoint down at start is a failed run, retried on the schedule.
    fn remote(&self, checked_later: bool) -> Result<Option<RemoteTarget>, String> {
        let (Some(url), Some(var)) = (&self.target, &self.token_env) else {
            return Ok(None);
        };
        let token = std::env::var(var)
            .map_err(|_| format!("--token-env: the environment variable `{var}` is not set"))?;
        let mut options = ClientOptions::default();
        options.ca_file.clone_from(&self.target_ca);
        options.concurrency = usize::from(self.concurrency);
        let client = ScimClient::new(url, &token, options).map_err(|e| e.to_string())?;
        if checked_later {
            return Ok(Some(RemoteTarget::new(client)));
        }
        RemoteTarget::connect(client)
            .map(Some)
            .map_err(|e| format!("the target cannot be used: {e}"))
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    common: Args,
    /// Apply a plan that crosses a deletion threshold.
    #[arg(long)]
    allow_deletes: bool,
    /// Keep running: sync on the configuration's [schedule] until stopped (SIGTERM, Ctrl-C).
    #[arg(long, conflicts_with = "json")]
    daemon: bool,
}

/// Exit codes: 0 done, 1 failed, 3 blocked by a threshold (nothing applied).
const BLOCKED: u8 = 3;

fn open_store(db: &std::path::Path) -> Result<SqliteStore, String> {
    SqliteStore::open(db, system_clock()).map_err(|e| format!("cannot open {}: {e}", db.display()))
}

/// Reads the configuration, the source and the target, and plans.
fn prepare(args: &Args) -> Result<(run::Mode, usersync_core::ldap::plan::Plan), String> {
    let config = SyncConfig::from_file(&args.config)
        .map_err(|e| format!("{}: {e}", args.config.display()))?;
    let store = open_store(&args.db)?;
    let remote = args.remote(false)?;
    let local = LocalTarget(&store);
    let target: &dyn Target = match &remote {
        Some(r) => r,
        None => &local,
    };
    run::plan_run(&config, &store, target, args.full, &system_clock())
        .map(|p| (p.mode, p.plan))
        .map_err(|e| e.to_string())
}

pub(crate) fn plan(args: &Args) -> ExitCode {
    match prepare(args) {
        Ok((mode, plan)) => {
            if args.json {
                let mut out = plan.to_json();
                out["mode"] = json!(mode);
                println!("{out}");
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
    // One sync per directory at a time, daemon or not.
    let config = match SyncConfig::from_file(&args.common.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}: {e}", args.common.config.display());
            return ExitCode::FAILURE;
        }
    };
    let _lock = match lock(&args.common.db, &config.directory) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = match open_store(&args.common.db) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let remote = match args.common.remote(args.daemon) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = LocalTarget(&store);
    let target: &dyn Target = match &remote {
        Some(r) => r,
        None => &local,
    };
    if args.daemon {
        return daemon(args, &config, &store, target);
    }
    sync_once(args, &config, &store, target)
}

/// Holds the lock file `<db>.sync-<directory>.lock` while a sync of that directory runs.
fn lock(db: &std::path::Path, directory: &str) -> Result<std::fs::File, String> {
    let mut name = db.as_os_str().to_owned();
    name.push(format!(".sync-{directory}.lock"));
    let path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "another usersync sync of `{directory}` is running (it holds {})",
            path.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

/// Syncs on the schedule until SIGTERM or Ctrl-C; each run prints one line. The
/// configuration is the one read (and locked for) at start: restart to change it.
fn daemon(
    args: &SyncArgs,
    config: &SyncConfig,
    store: &SqliteStore,
    target: &dyn Target,
) -> ExitCode {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use usersync_core::ldap::schedule::{Outcome, next_run};

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(crate::serve::shutdown());
            stop.store(true, Ordering::SeqCst);
        });
    }
    // A per-directory seed spreads retries of many directories apart.
    let seed = config
        .directory
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let mut failures = 0u32;
    let when = match &config.schedule.cron {
        Some(cron) => format!("at `{cron}` (UTC)"),
        None => format!("every {} s", config.schedule.interval_seconds),
    };
    println!(
        "syncing `{}` {when}; stop with SIGTERM or Ctrl-C",
        config.directory
    );
    while !stop.load(Ordering::SeqCst) {
        let clock = system_clock();
        let options = RunOptions::new(ApplyOptions::new(args.allow_deletes), args.common.full);
        let run = run::sync(config, store, target, &options, &clock);
        let started = run.started;
        // The schedule follows the run as a whole: applied (even with some objects
        // failing), blocked, or not done at all.
        let (line, state) = match (&run.report, run.outcome) {
            (Some(report), _) => {
                failures = 0;
                let line = format!(
                    "applied {} changes in {} ms ({})",
                    report.applied.values().sum::<usize>(),
                    report.milliseconds,
                    mode_name(&run.mode)
                );
                (line, Outcome::Succeeded)
            }
            (None, RunOutcome::Blocked) => (
                format!("blocked: {}", run.error.unwrap_or_default()),
                Outcome::Blocked,
            ),
            (None, _) => {
                failures += 1;
                (
                    format!("failed: {}", run.error.unwrap_or_default()),
                    Outcome::Failed { failures },
                )
            }
        };
        let next = next_run(&config.schedule, started, state, seed);
        println!(
            "{started} sync `{}`: {line}; next run {next}",
            config.directory
        );
        // Sleep until the next run, a little at a time so that a stop is prompt.
        while !stop.load(Ordering::SeqCst) && system_clock()() < next {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    println!("stopped");
    ExitCode::SUCCESS
}

fn sync_once(
    args: &SyncArgs,
    config: &SyncConfig,
    store: &SqliteStore,
    target: &dyn Target,
) -> ExitCode {
    let bar = (!args.common.json).then(progress_bar).flatten();
    let show = |p: apply::Progress| {
        if let Some(bar) = &bar {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
        }
    };
    let mut options = ApplyOptions::new(args.allow_deletes);
    if bar.is_some() {
        options = options.with_progress(&show);
    }
    let run = run::sync(
        config,
        store,
        target,
        &RunOptions::new(options, args.common.full),
        &system_clock(),
    );
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let Some(plan) = &run.plan else {
        eprintln!("error: {}", run.error.unwrap_or_default());
        return ExitCode::FAILURE;
    };
    if !args.common.json {
        print!("{plan}");
    }
    match (&run.report, &run.error) {
        (Some(report), _) => {
            if args.common.json {
                println!(
                    "{}",
                    json!({"mode": run.mode, "plan": plan.to_json(), "report": report})
                );
            } else {
                let applied: usize = report.applied.values().sum();
                println!(
                    "applied {applied} changes in {} ms ({}){}{}{}",
                    report.milliseconds,
                    mode_name(&run.mode),
                    if report.conflicts.is_empty() {
                        String::new()
                    } else {
                        format!(", {} skipped for conflicts", report.conflicts.len())
                    },
                    if report.failures.is_empty() {
                        String::new()
                    } else {
                        format!(", {} failed", report.failures.len())
                    },
                    if report.retries == 0 {
                        String::new()
                    } else {
                        format!(", {} requests retried", report.retries)
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
        (None, e) => {
            let e = e.clone().unwrap_or_default();
            if args.common.json {
                println!(
                    "{}",
                    json!({"mode": run.mode, "plan": plan.to_json(), "error": e})
                );
            }
            eprintln!("error: {e}");
            if run.outcome == RunOutcome::Blocked {
                ExitCode::from(BLOCKED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// `full` or `incremental`, for the summary line.
fn mode_name(mode: &run::Mode) -> &'static str {
    if mode.since.is_some() {
        "incremental"
    } else {
        "full"
    }
}

/// A progress bar on standard error, when it is a terminal (not in scripts or logs).
fn progress_bar() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "applying {bar:40} {pos}/{len} changes ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}
