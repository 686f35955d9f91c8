//! `usersync plan` and `usersync sync`: reconcile an LDAP directory into the store.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use usersync_core::client::{ClientOptions, ScimClient};
use usersync_core::ldap::apply::{self, ApplyOptions, LocalTarget, Target};
use usersync_core::ldap::config::SyncConfig;
use usersync_core::ldap::remote::RemoteTarget;
use usersync_core::ldap::run::{self, RunOptions, RunOutcome};
use usersync_core::ldap::schedule::{Outcome, counted_from, next_due, next_run};
use usersync_core::scim::datetime::DateTime;
use usersync_core::store::{Store, StoreError, SyncLock, name_hash, purge_expired, system_clock};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The sync configuration (TOML; see examples/).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The store: an SQLite database file, or a PostgreSQL URL (`postgres://…`) shared
    /// with other nodes.
    #[arg(long, env = "USERSYNC_DB", default_value = "usersync.db")]
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
        if client.in_clear() {
            eprintln!(
                "warning: --target is http:// to another host: the token and every user cross \
                 the network unencrypted; use https://"
            );
        }
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

/// Reads the configuration, the source and the target, and plans.
fn prepare(args: &Args) -> Result<(run::Mode, usersync_core::ldap::plan::Plan), String> {
    let config = SyncConfig::from_file(&args.config)
        .map_err(|e| format!("{}: {e}", args.config.display()))?;
    let store = crate::open_store(&args.db)?;
    let remote = args.remote(false)?;
    let local = LocalTarget(&*store);
    let target: &dyn Target = match &remote {
        Some(r) => r,
        None => &local,
    };
    run::plan_run(&config, &*store, target, args.full, &system_clock())
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
    let config = match SyncConfig::from_file(&args.common.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}: {e}", args.common.config.display());
            return ExitCode::FAILURE;
        }
    };
    let store = match crate::open_store(&args.common.db) {
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
    let local = LocalTarget(&*store);
    let target: &dyn Target = match &remote {
        Some(r) => r,
        None => &local,
    };
    if args.daemon {
        return daemon(args, &config, &*store, target);
    }
    // One sync per directory at a time, across every process on this store.
    let lock = match store.try_lock_sync(&config.directory) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            eprintln!(
                "error: another usersync sync of `{}` is running (on this or another node)",
                config.directory
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: cannot lock the sync of `{}`: {e}", config.directory);
            return ExitCode::FAILURE;
        }
    };
    sync_once(args, &config, &*store, target, &lock)
}

/// How often a daemon that found the directory's sync locked by another process looks
/// again.
const LOCKED_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// A next run further than this (a century) is no run: what a schedule that names no more
/// times gives.
const NEVER_SECONDS: i64 = 100 * 366 * 86_400;

/// Syncs on the schedule until SIGTERM or Ctrl-C; each run prints one line. The
/// configuration is the one read at start: restart to change it.
///
/// The schedule is kept in the store, not in the process: the next run is due from the
/// runs on record ([`next_due`]), and each run takes the directory's sync lock. Daemons on
/// several nodes sharing one PostgreSQL database therefore run each due sync once between
/// them; when the node running it dies, its lock goes with it and another node runs the
/// sync that is still due.
fn daemon(
    args: &SyncArgs,
    config: &SyncConfig,
    store: &dyn Store,
    target: &dyn Target,
) -> ExitCode {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

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
            // The handlers stay installed: a second signal would be swallowed. It ends the
            // process at once instead (a batch in flight rolls back whole).
            rt.block_on(crate::serve::shutdown());
            eprintln!(
                "stopped at once: a local batch in flight rolls back (requests in flight to \
                 a remote target may land); the next run converges"
            );
            std::process::exit(130);
        });
    }
    let stopped = || stop.load(Ordering::SeqCst);
    // Sleeps a little at a time, so that a stop is prompt.
    let step = std::time::Duration::from_millis(200);
    let sleep_until = |until: DateTime| {
        while !stopped() && system_clock()() < until {
            std::thread::sleep(step);
        }
    };
    let pause = |wait: std::time::Duration| {
        let end = std::time::Instant::now() + wait;
        while !stopped() && std::time::Instant::now() < end {
            std::thread::sleep(step);
        }
    };
    let when = match &config.schedule.cron {
        Some(cron) => format!("at `{cron}` (UTC)"),
        None => format!("every {} s", config.schedule.interval_seconds),
    };
    println!(
        "syncing `{}` {when}; stop with SIGTERM or Ctrl-C",
        config.directory
    );
    let mut waiting = false;
    // This process's own schedule after its last run, which holds too: a run that could
    // not be recorded (a directory that is not an LDAP one) is not retried at once.
    let mut not_before: Option<DateTime> = None;
    let mut failures = 0u32;
    while !stopped() {
        let due = match next_due(config, store, system_clock()()) {
            Ok(due) => due.max(not_before),
            Err(e) => {
                println!("cannot read the runs of `{}`: {e}", config.directory);
                pause(LOCKED_RETRY * 5);
                continue;
            }
        };
        if let Some(due) = due {
            // A cron expression with a year can stop naming times while the daemon runs.
            if due.unix_seconds() - system_clock()().unix_seconds() > NEVER_SECONDS {
                println!(
                    "the schedule of `{}` names no time from now on: stopping",
                    config.directory
                );
                return ExitCode::FAILURE;
            }
            sleep_until(due);
        }
        if stopped() {
            break;
        }
        let lock = match store.try_lock_sync(&config.directory) {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                if !waiting {
                    println!(
                        "another usersync sync of `{}` is running; waiting for it",
                        config.directory
                    );
                    waiting = true;
                }
                pause(LOCKED_RETRY);
                continue;
            }
            Err(e) => {
                println!("cannot lock the sync of `{}`: {e}", config.directory);
                pause(LOCKED_RETRY * 5);
                continue;
            }
        };
        waiting = false;
        // Another node may have run it while this one waited for the lock.
        let now = system_clock()();
        if matches!(next_due(config, store, now), Ok(Some(due)) if due > now) {
            continue;
        }
        // A stop asked for during a long apply takes effect before its next batch.
        let options = RunOptions::new(
            ApplyOptions::new(args.allow_deletes)
                .with_lock(&lock)
                .with_cancel(&stopped),
            args.common.full,
        );
        let run = run::sync(config, store, target, &options, &system_clock());
        let purged = purge(args, config, store);
        drop(lock);
        // As `next_due` reads it from the record.
        let (line, outcome) = match (&run.report, run.outcome) {
            (Some(report), _) => {
                failures = 0;
                let line = format!(
                    "applied {} changes in {} ms ({}){}",
                    report.applied.values().sum::<usize>(),
                    report.milliseconds,
                    mode_name(&run.mode),
                    report_tail(report, run.error.as_deref())
                );
                (line, Outcome::Succeeded)
            }
            (None, RunOutcome::Blocked) => {
                failures = 0;
                (
                    format!("blocked: {}", run.error.unwrap_or_default()),
                    Outcome::Blocked,
                )
            }
            (None, _) => {
                failures += 1;
                (
                    format!(
                        "failed: {}{}",
                        run.error.as_deref().unwrap_or_default(),
                        applied_before(&run)
                    ),
                    Outcome::Failed { failures },
                )
            }
        };
        not_before = Some(next_run(
            &config.schedule,
            counted_from(run.started, system_clock()(), outcome),
            outcome,
            name_hash(&config.directory),
        ));
        let next = match next_due(config, store, system_clock()()) {
            Ok(due) => due
                .max(not_before)
                .map_or_else(String::new, |d| d.to_string()),
            Err(_) => "unknown".to_owned(),
        };
        println!(
            "{} sync `{}`: {line}; next run {next}",
            run.started, config.directory
        );
        if let Some(said) = purged {
            println!("{} sync `{}`: {said}", run.started, config.directory);
        }
    }
    println!("stopped");
    ExitCode::SUCCESS
}

fn sync_once(
    args: &SyncArgs,
    config: &SyncConfig,
    store: &dyn Store,
    target: &dyn Target,
    lock: &SyncLock,
) -> ExitCode {
    let bar = (!args.common.json).then(progress_bar).flatten();
    let show = |p: apply::Progress| {
        if let Some(bar) = &bar {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
        }
    };
    let mut options = ApplyOptions::new(args.allow_deletes).with_lock(lock);
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
    if let Some(said) = purge(args, config, store) {
        eprintln!("{said}");
    }
    let Some(plan) = &run.plan else {
        eprintln!("error: {}", run.error.unwrap_or_default());
        return ExitCode::FAILURE;
    };
    if !args.common.json {
        print!("{plan}");
    }
    match (&run.report, &run.error) {
        (Some(report), error) => {
            if args.common.json {
                let mut out = json!({"mode": run.mode, "plan": plan.to_json(), "report": report});
                if let Some(e) = error {
                    out["error"] = json!(e.trim());
                }
                println!("{out}");
            } else {
                let applied: usize = report.applied.values().sum();
                println!(
                    "applied {applied} changes in {} ms ({}){}",
                    report.milliseconds,
                    mode_name(&run.mode),
                    report_tail(report, None),
                );
                for c in &report.conflicts {
                    println!("conflict: {c}");
                }
                for f in &report.failures {
                    println!("failed: {f}");
                }
            }
            // Applied, but not on record: the next run cannot start from this one's
            // watermark, and the runs do not show it.
            if let Some(e) = error {
                eprintln!("error: {}", e.trim());
            }
            if report.failures.is_empty() && error.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        (None, e) => {
            let e = e.clone().unwrap_or_default();
            if args.common.json {
                let mut out = json!({"mode": run.mode, "plan": plan.to_json(), "error": e});
                if let Some(partial) = &run.partial_report {
                    out["partial_report"] = json!(partial);
                }
                println!("{out}");
            }
            eprintln!("error: {e}{}", applied_before(&run));
            if run.outcome == RunOutcome::Blocked {
                ExitCode::from(BLOCKED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// After a run into the local store, its users inactive for longer than the directory's
/// retention go (a remote target purges its own): what to say about it, if anything.
fn purge(args: &SyncArgs, config: &SyncConfig, store: &dyn Store) -> Option<String> {
    if args.common.target.is_some() {
        return None;
    }
    match purge_expired(store, system_clock()(), Some(&config.directory)) {
        Ok(purged) => purged.first().map(|(_, n)| {
            format!("purged {n} users inactive for longer than the directory's retention")
        }),
        // A first run that failed made no directory.
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => Some(format!("could not purge users past the retention: {e}")),
    }
}

/// What a summary line adds after the count of changes applied: conflicts, failures,
/// retried requests and, when given, the run's error (a record that could not be kept).
fn report_tail(report: &apply::Report, error: Option<&str>) -> String {
    let mut tail = String::new();
    if !report.conflicts.is_empty() {
        tail.push_str(&format!(
            ", {} skipped for conflicts",
            report.conflicts.len()
        ));
    }
    if !report.failures.is_empty() {
        tail.push_str(&format!(", {} failed", report.failures.len()));
    }
    if report.retries != 0 {
        tail.push_str(&format!(", {} requests retried", report.retries));
    }
    if let Some(e) = error {
        tail.push_str(&format!("; {}", e.trim()));
    }
    tail
}

/// What an apply that stopped part-way had applied, for the line that says why it stopped.
fn applied_before(run: &run::Run) -> String {
    run.partial_report.as_ref().map_or_else(String::new, |r| {
        format!(
            " ({} changes applied before{})",
            r.applied.values().sum::<usize>(),
            report_tail(r, None)
        )
    })
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
