//! `usersync plan` and `usersync sync`: reconcile an LDAP directory into the store.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use usersync_core::client::{ClientOptions, ScimClient};
use usersync_core::ldap::apply::{ApplyOptions, LocalTarget, Target};
use usersync_core::ldap::config::SyncConfig;
use usersync_core::ldap::remote::RemoteTarget;
use usersync_core::ldap::{apply, plan, source};
use usersync_core::scim::datetime::DateTime;
use usersync_core::store::sqlite::SqliteStore;
use usersync_core::store::{DirectoryKind, NewDirectory, Store, SyncRun, system_clock};

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
}

impl Args {
    /// The remote target, when one is given: connected and checked (URL, token) before
    /// anything is read from LDAP.
    fn remote(&self) -> Result<Option<RemoteTarget>, String> {
        let (Some(url), Some(var)) = (&self.target, &self.token_env) else {
            return Ok(None);
        };
        let token = std::env::var(var)
            .map_err(|_| format!("--token-env: the environment variable `{var}` is not set"))?;
        let mut options = ClientOptions::default();
        options.ca_file.clone_from(&self.target_ca);
        options.concurrency = usize::from(self.concurrency);
        let client = ScimClient::new(url, &token, options).map_err(|e| e.to_string())?;
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

/// Reads the configuration, the source and the target: everything a plan needs.
fn prepare(args: &Args) -> Result<plan::Plan, String> {
    let config = SyncConfig::from_file(&args.config)
        .map_err(|e| format!("{}: {e}", args.config.display()))?;
    match args.remote()? {
        Some(remote) => plan_for(&config, &remote),
        None => plan_for(&config, &LocalTarget(&open_store(&args.db)?)),
    }
}

fn open_store(db: &std::path::Path) -> Result<SqliteStore, String> {
    SqliteStore::open(db, system_clock()).map_err(|e| format!("cannot open {}: {e}", db.display()))
}

/// Reads the source and plans against the target.
fn plan_for(config: &SyncConfig, target: &dyn Target) -> Result<plan::Plan, String> {
    let snapshot = source::read(config).map_err(|e| e.to_string())?;
    let current = target
        .current(&config.directory)
        .map_err(|e| e.to_string())?;
    Ok(plan::plan(config, &snapshot, &current))
}

/// How a run ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ended {
    Succeeded,
    Blocked,
    Failed,
}

impl Ended {
    /// As recorded with the run.
    fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Blocked => "blocked",
            Self::Failed => "failed",
        }
    }
}

/// How a run ended, and its report, as recorded.
struct RunRecord {
    outcome: Ended,
    report: serde_json::Value,
}

/// One sync: plan, apply, and the record of what happened.
fn run_once(
    config: &SyncConfig,
    target: &dyn Target,
    options: &ApplyOptions<'_>,
) -> (Option<plan::Plan>, Result<apply::Report, String>, RunRecord) {
    let plan = match plan_for(config, target) {
        Ok(p) => p,
        Err(e) => {
            let record = RunRecord {
                outcome: Ended::Failed,
                report: json!({"error": e}),
            };
            return (None, Err(e), record);
        }
    };
    let planned = json!({
        "summary": plan.summary().counts,
        "incomplete": plan.incomplete,
        "blocked": plan.blocked,
        "warnings": plan.warnings,
    });
    match target.apply(config, &plan, options) {
        Ok(report) => {
            let record = RunRecord {
                outcome: if report.failures.is_empty() {
                    Ended::Succeeded
                } else {
                    Ended::Failed
                },
                report: json!({"plan": planned, "report": report}),
            };
            (Some(plan), Ok(report), record)
        }
        Err(e) => {
            let outcome = if matches!(e, apply::ApplyError::Blocked(_)) {
                Ended::Blocked
            } else {
                Ended::Failed
            };
            let record = RunRecord {
                outcome,
                report: json!({"plan": planned, "error": e.to_string()}),
            };
            (Some(plan), Err(e.to_string()), record)
        }
    }
}

/// Keeps the record of a run with its directory (created, kind ldap, when a first run
/// fails before it exists, so that the failure is on record).
fn record(store: &SqliteStore, directory: &str, started: DateTime, run: RunRecord) {
    let d = match store.directory(directory) {
        Ok(Some(d)) if d.kind == DirectoryKind::Ldap => d,
        Ok(None) => match store.create_directory(NewDirectory::new(directory, DirectoryKind::Ldap))
        {
            Ok(d) => d,
            Err(_) => return,
        },
        _ => return,
    };
    let stored = store.add_run(SyncRun {
        id: 0,
        directory: d.id,
        started,
        finished: system_clock()(),
        outcome: run.outcome.as_str().into(),
        report: run.report,
    });
    if let Err(e) = stored {
        eprintln!("warning: the run was not recorded: {e}");
    }
}

pub(crate) fn plan(args: &Args) -> ExitCode {
    match prepare(args) {
        Ok(plan) => {
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
    let remote = match args.common.remote() {
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
        let started = system_clock()();
        let options = ApplyOptions::new(args.allow_deletes);
        let (_, result, run) = run_once(config, target, &options);
        let ended = run.outcome;
        record(store, &config.directory, started, run);
        // The schedule follows the run as a whole: applied (even with some objects
        // failing), blocked, or not done at all.
        let (line, state) = match result {
            Ok(report) => {
                failures = 0;
                let line = format!(
                    "applied {} changes in {} ms",
                    report.applied.values().sum::<usize>(),
                    report.milliseconds
                );
                (line, Outcome::Succeeded)
            }
            Err(e) if ended == Ended::Blocked => (format!("blocked: {e}"), Outcome::Blocked),
            Err(e) => {
                failures += 1;
                (format!("failed: {e}"), Outcome::Failed { failures })
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
    let started = system_clock()();
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
    let (plan, result, run) = run_once(config, target, &options);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let blocked = run.outcome == Ended::Blocked;
    record(store, &config.directory, started, run);
    let Some(plan) = plan else {
        if let Err(e) = &result {
            eprintln!("error: {e}");
        }
        return ExitCode::FAILURE;
    };
    if !args.common.json {
        print!("{plan}");
    }
    match result {
        Ok(report) => {
            if args.common.json {
                println!("{}", json!({"plan": plan.to_json(), "report": report}));
            } else {
                let applied: usize = report.applied.values().sum();
                println!(
                    "applied {applied} changes in {} ms{}{}{}",
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
        Err(e) => {
            if args.common.json {
                println!("{}", json!({"plan": plan.to_json(), "error": e}));
            }
            eprintln!("error: {e}");
            if blocked {
                ExitCode::from(BLOCKED)
            } else {
                ExitCode::FAILURE
            }
        }
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
