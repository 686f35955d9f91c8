//! LDAP syncs into the service's store: plan (see the changes), apply, or both in one run,
//! and when the next scheduled run is due. Every call here blocks while it reads LDAP and
//! writes the store: call it from a worker thread of the platform server.

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};

use usersync_core::ldap::apply::{ApplyError, ApplyOptions, LocalTarget, Progress};
use usersync_core::ldap::config::SyncConfig;
use usersync_core::ldap::run::{self, PlanError, Planned, Run, RunOutcome};
use usersync_core::ldap::schedule::{Outcome, next_run};
use usersync_core::scim::datetime::DateTime;
use usersync_core::store::{Store, SyncLock, system_clock};

use crate::service::{service, usersync_service};
use crate::{c_string, fail, guard, out, store_error, text, usersync_result, write};

/// Flag: apply a plan that crosses a deletion threshold.
pub const USERSYNC_SYNC_ALLOW_DELETES: u32 = 1;
/// Flag: read everything, even when an incremental run is possible.
pub const USERSYNC_SYNC_FULL: u32 = 2;

/// `outcome` of `usersync_sync_next_run`: the last run applied its plan.
pub const USERSYNC_OUTCOME_SUCCEEDED: u32 = 0;
/// `outcome`: the last run was blocked by a deletion threshold.
pub const USERSYNC_OUTCOME_BLOCKED: u32 = 1;
/// `outcome`: the last run failed.
pub const USERSYNC_OUTCOME_FAILED: u32 = 2;

/// Told how far an apply has come: `done` of `total` changes. Called on the thread that
/// called the apply, between writes; it must return quickly and must not call usersync but
/// `usersync_sync_cancel`.
pub type usersync_progress_callback =
    Option<extern "C" fn(userdata: *mut c_void, done: u64, total: u64)>;

/// A plan made by `usersync_sync_plan`: the changes a sync would make, not yet applied.
/// Released by `usersync_plan_free`. Use it from one thread at a time, and apply it with
/// the service it was made with.
pub struct usersync_plan {
    config: SyncConfig,
    /// The store it was planned against: its ids and versions are that store's.
    store: Arc<dyn Store>,
    /// Taken by the apply: a plan is applied once (a blocked one stays until applied).
    planned: Option<Planned>,
    /// The plan as JSON, kept after the apply too.
    json: String,
}

impl std::fmt::Debug for usersync_plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("usersync_plan")
            .field("directory", &self.config.directory)
            .field("applied", &self.planned.is_none())
            .finish_non_exhaustive()
    }
}

fn config(toml: *const c_char, toml_len: usize) -> Result<SyncConfig, usersync_result> {
    SyncConfig::from_toml(text(toml, toml_len, "config_toml")?)
        .map_err(|e| fail(usersync_result::SyncConfig, e.to_string()))
}

fn check_flags(flags: u32) -> Result<(), usersync_result> {
    if flags & !(USERSYNC_SYNC_ALLOW_DELETES | USERSYNC_SYNC_FULL) == 0 {
        Ok(())
    } else {
        Err(fail(
            usersync_result::InvalidArgument,
            format!("unknown flags {flags:#x}"),
        ))
    }
}

fn plan_error(e: &PlanError) -> usersync_result {
    match e {
        PlanError::Source(usersync_core::ldap::source::SourceError::Config(c)) => {
            fail(usersync_result::SyncConfig, c.to_string())
        }
        PlanError::Source(_) => fail(usersync_result::SyncSource, e.to_string()),
        PlanError::Target(ApplyError::Store(s)) => store_error(s),
        _ => fail(usersync_result::SyncTarget, e.to_string()),
    }
}

/// Reads the LDAP directory that `config_toml` (the sync configuration file's text, TOML,
/// as `examples/openldap.toml`) describes and plans against the service's store; writes the
/// plan to `plan_out`. Nothing is changed. `flags` may hold `USERSYNC_SYNC_FULL`.
///
/// Errors: `SYNC_CONFIG` (the message names the key), `SYNC_SOURCE` (no server answered, or
/// the bind was refused), `SYNC_TARGET`/`STORE_*` (the store cannot be read, or the
/// directory is not an LDAP directory), and the usual argument checks.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_sync_plan(
    service: *const usersync_service,
    config_toml: *const c_char,
    config_toml_len: usize,
    flags: u32,
    plan_out: *mut *mut usersync_plan,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(plan_out, "plan_out")?;
        check_flags(flags)?;
        let config = config(config_toml, config_toml_len)?;
        let store = &*service.store;
        let planned = run::plan_run(
            &config,
            store,
            &LocalTarget(store),
            flags & USERSYNC_SYNC_FULL != 0,
            &system_clock(),
        )
        .map_err(|e| plan_error(&e))?;
        let mut json = planned.plan.to_json();
        json["mode"] = serde_json::to_value(&planned.mode).unwrap_or_default();
        let plan = usersync_plan {
            config,
            store: Arc::clone(&service.store),
            planned: Some(planned),
            json: json.to_string(),
        };
        write(plan_out, Box::into_raw(Box::new(plan)));
        Ok(())
    })
}

/// The plan as JSON (`{"changes": […], "summary": {…}, "incomplete": […], "blocked": […],
/// "warnings": […], "mode": {…}}`), written to `json_out`; free it with
/// `usersync_string_free`.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_plan_json(
    plan: *const usersync_plan,
    json_out: *mut *mut c_char,
) -> usersync_result {
    guard(|| {
        // SAFETY: NULL or made by `usersync_sync_plan` and not yet freed.
        let plan = unsafe { plan.as_ref() }
            .ok_or_else(|| fail(usersync_result::NullParameter, "`plan` is NULL"))?;
        out(json_out, "json_out")?;
        write(json_out, c_string(plan.json.clone())?);
        Ok(())
    })
}

/// Frees a plan. NULL does nothing.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_plan_free(plan: *mut usersync_plan) {
    crate::free_box(plan);
}

/// Calls the C progress callback.
struct Reporter {
    callback: usersync_progress_callback,
    userdata: *mut c_void,
}

// SAFETY: the local store's apply calls progress on the calling thread only; the callback
// and its userdata are the caller's, documented as such.
unsafe impl Sync for Reporter {}

impl Reporter {
    fn tell(&self, p: Progress) {
        if let Some(callback) = self.callback {
            callback(self.userdata, p.done as u64, p.total as u64);
        }
    }
}

/// The stop flag of a sync running on a service, listed there while the sync runs.
struct Running<'a> {
    service: &'a usersync_service,
    directory: String,
    stop: Arc<AtomicBool>,
}

impl<'a> Running<'a> {
    /// Lists the sync of `directory`, which holds its sync lock: one per directory at a time.
    fn start(service: &'a usersync_service, directory: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        service
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(directory.to_owned(), Arc::clone(&stop));
        Self {
            service,
            directory: directory.to_owned(),
            stop,
        }
    }

    fn asked_to_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut running = self
            .service
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if running
            .get(&self.directory)
            .is_some_and(|s| Arc::ptr_eq(s, &self.stop))
        {
            running.remove(&self.directory);
        }
    }
}

/// Asks the sync of `directory` (UTF-8, `directory_len` bytes) running on `service` to stop
/// before its next batch of writes; call it from any thread, or from the sync's progress
/// callback. What was applied stays: the sync's call (`usersync_plan_apply` or
/// `usersync_sync_run`) returns `SYNC_CANCELLED` with its report, whose `partial_report` says
/// what it applied, and the next run converges. A sync still reading LDAP stops before its
/// first write. `NOT_FOUND` when no sync of `directory` runs on this service handle (a sync
/// on another handle or process is not this one's to stop).
#[unsafe(no_mangle)]
pub extern "C" fn usersync_sync_cancel(
    service: *const usersync_service,
    directory: *const c_char,
    directory_len: usize,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        let directory = text(directory, directory_len, "directory")?;
        let running = service
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let stop = running.get(directory).ok_or_else(|| {
            fail(
                usersync_result::NotFound,
                format!("no sync of `{directory}` runs on this service"),
            )
        })?;
        stop.store(true, Ordering::Relaxed);
        Ok(())
    })
}

/// The result code and the report of a run that happened.
fn finish(run: &Run, report_json_out: *mut *mut c_char) -> Result<(), usersync_result> {
    write(report_json_out, c_string(run.to_json().to_string())?);
    let error = run.error.clone().unwrap_or_default();
    match (run.outcome, &run.failure) {
        (RunOutcome::Failed, Some(ApplyError::Cancelled { .. })) => {
            Err(fail(usersync_result::SyncCancelled, error))
        }
        // Applied, but its record could not be kept (the run's error says why).
        (RunOutcome::Succeeded, _) if run.error.is_some() => {
            Err(fail(usersync_result::SyncTarget, error))
        }
        (RunOutcome::Succeeded, _) => Ok(()),
        (RunOutcome::Blocked, _) => Err(fail(usersync_result::SyncBlocked, error)),
        (RunOutcome::Failed, _) if run.report.is_some() => Err(fail(
            usersync_result::SyncPartial,
            "some changes failed; the report lists them",
        )),
        (RunOutcome::Failed, Some(ApplyError::Conflict(_))) => {
            Err(fail(usersync_result::SyncConflict, error))
        }
        (RunOutcome::Failed, _) => Err(fail(usersync_result::SyncTarget, error)),
    }
}

/// Applies `plan` to the service's store and writes the run's report as JSON to
/// `report_json_out` (free it with `usersync_string_free`): `{"outcome", "mode", "plan":
/// {summary…}, "report": {"applied", "conflicts", "failures", …}, "error",
/// "partial_report" (an apply stopped part-way: what it applied until then),
/// "milliseconds"}`. The run is recorded with its directory. A plan is applied once; one
/// refused as `SYNC_BLOCKED` stays, to be applied with the override once reviewed.
///
/// `flags` may hold `USERSYNC_SYNC_ALLOW_DELETES`; `progress` (may be NULL) is called with
/// `userdata` as changes are applied.
///
/// The report is written whenever the apply ran, also when the result is
/// `SYNC_BLOCKED` (nothing applied: the plan crosses a threshold), `SYNC_PARTIAL` (some
/// changes failed), `SYNC_CONFLICT` or `SYNC_TARGET` (the store failed part-way, or after
/// the apply when the run could not be recorded; what was applied stays and the next run
/// converges). Otherwise `*report_json_out` is set to NULL: free it whatever the
/// result (`usersync_string_free` takes NULL). `INVALID_ARGUMENT` for a plan already applied
/// or made with another service; `SYNC_BUSY` while another sync of the directory runs, in
/// any process using the same store (the plan stays unapplied: apply it later or make a
/// new one).
#[unsafe(no_mangle)]
pub extern "C" fn usersync_plan_apply(
    service: *const usersync_service,
    plan: *mut usersync_plan,
    flags: u32,
    progress: usersync_progress_callback,
    userdata: *mut c_void,
    report_json_out: *mut *mut c_char,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        // SAFETY: NULL or made by `usersync_sync_plan`, not yet freed, and used by one thread
        // at a time (the caller's promise).
        let plan = unsafe { plan.as_mut() }
            .ok_or_else(|| fail(usersync_result::NullParameter, "`plan` is NULL"))?;
        out(report_json_out, "report_json_out")?;
        write(report_json_out, std::ptr::null_mut());
        check_flags(flags)?;
        if !Arc::ptr_eq(&plan.store, &service.store) {
            return Err(fail(
                usersync_result::InvalidArgument,
                "this plan was made with another service: apply it with that one",
            ));
        }
        let lock = lock_sync(&*service.store, &plan.config.directory)?;
        let running = Running::start(service, &plan.config.directory);
        let allow_deletes = flags & USERSYNC_SYNC_ALLOW_DELETES != 0;
        let refused = plan
            .planned
            .as_ref()
            .is_some_and(|p| !p.plan.blocked.is_empty() && !allow_deletes);
        let planned = if refused {
            plan.planned.clone()
        } else {
            plan.planned.take()
        }
        .ok_or_else(|| {
            fail(
                usersync_result::InvalidArgument,
                "this plan was applied already: make a new one",
            )
        })?;
        apply_planned(
            &running,
            &plan.config,
            planned,
            &lock,
            flags,
            Reporter {
                callback: progress,
                userdata,
            },
            report_json_out,
        )
    })
}

/// Holds the directory's sync lock, or says another sync holds it.
fn lock_sync(store: &dyn Store, directory: &str) -> Result<SyncLock, usersync_result> {
    store
        .try_lock_sync(directory)
        .map_err(|e| store_error(&e))?
        .ok_or_else(|| {
            fail(
                usersync_result::SyncBusy,
                format!("another sync of `{directory}` is running; nothing was applied"),
            )
        })
}

/// Applies `planned` under the directory's sync `lock` (checked before each batch) until
/// it is done or `running` is cancelled, records the run and writes its report.
fn apply_planned(
    running: &Running<'_>,
    config: &SyncConfig,
    planned: Planned,
    lock: &SyncLock,
    flags: u32,
    reporter: Reporter,
    report_json_out: *mut *mut c_char,
) -> Result<(), usersync_result> {
    let store = &*running.service.store;
    let tell = |p: Progress| reporter.tell(p);
    let cancel = || running.asked_to_stop();
    let mut options = ApplyOptions::new(flags & USERSYNC_SYNC_ALLOW_DELETES != 0)
        .with_lock(lock)
        .with_cancel(&cancel);
    if reporter.callback.is_some() {
        options = options.with_progress(&tell);
    }
    let run = run::apply_run(
        config,
        store,
        &LocalTarget(store),
        planned,
        &options,
        &system_clock(),
    );
    finish(&run, report_json_out)
}

/// Plans and applies in one call, as `usersync sync` does: holds the directory's sync lock
/// (`SYNC_BUSY` before anything is read when another sync runs), reads LDAP (incrementally
/// when the configuration allows and `USERSYNC_SYNC_FULL` is not in `flags`), applies,
/// records the run, and writes its report as `usersync_plan_apply` does. A run that could
/// not read is recorded too (the schedule backs off after it), its report written, and its
/// error is that of `usersync_sync_plan`.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_sync_run(
    service: *const usersync_service,
    config_toml: *const c_char,
    config_toml_len: usize,
    flags: u32,
    progress: usersync_progress_callback,
    userdata: *mut c_void,
    report_json_out: *mut *mut c_char,
) -> usersync_result {
    guard(|| {
        let service = self::service(service)?;
        out(report_json_out, "report_json_out")?;
        write(report_json_out, std::ptr::null_mut());
        check_flags(flags)?;
        let config = config(config_toml, config_toml_len)?;
        let store = &*service.store;
        let lock = lock_sync(store, &config.directory)?;
        // Listed from before the read: a cancel during it stops the run before any write.
        let running = Running::start(service, &config.directory);
        let clock = system_clock();
        let full = flags & USERSYNC_SYNC_FULL != 0;
        let planned = match run::plan_run(&config, store, &LocalTarget(store), full, &clock) {
            Ok(planned) => planned,
            Err(e) => {
                let run = run::failed_read(&config, store, &e, &clock);
                write(report_json_out, c_string(run.to_json().to_string())?);
                return Err(plan_error(&e));
            }
        };
        apply_planned(
            &running,
            &config,
            planned,
            &lock,
            flags,
            Reporter {
                callback: progress,
                userdata,
            },
            report_json_out,
        )
    })
}

/// When the next scheduled run of the configuration `config_toml` is due, in seconds since
/// the Unix epoch (UTC), written to `next_out`: after a run that started at
/// `last_start_unix` and ended as `outcome` (`USERSYNC_OUTCOME_*`), with `failures` failed
/// runs in a row (this one included; 0 unless failed). After a failure, pass the time the
/// run ended instead, so that a run that failed after a long read is not retried at once.
/// `jitter_seed` spreads the retries of many directories apart (use something stable per
/// directory). No I/O; the configuration's cron expression is checked, when it has one, to
/// name a time after the clock's now.
///
/// Errors: `SYNC_CONFIG`, `INVALID_ARGUMENT` (an unknown outcome), the usual checks.
#[unsafe(no_mangle)]
pub extern "C" fn usersync_sync_next_run(
    config_toml: *const c_char,
    config_toml_len: usize,
    last_start_unix: i64,
    outcome: u32,
    failures: u32,
    jitter_seed: u64,
    next_out: *mut i64,
) -> usersync_result {
    guard(|| {
        out(next_out, "next_out")?;
        let config = config(config_toml, config_toml_len)?;
        let outcome = match outcome {
            USERSYNC_OUTCOME_SUCCEEDED => Outcome::Succeeded,
            USERSYNC_OUTCOME_BLOCKED => Outcome::Blocked,
            USERSYNC_OUTCOME_FAILED => Outcome::Failed {
                failures: failures.max(1),
            },
            other => {
                return Err(fail(
                    usersync_result::InvalidArgument,
                    format!("`outcome` {other} is not a USERSYNC_OUTCOME_* value"),
                ));
            }
        };
        let next = next_run(
            &config.schedule,
            DateTime::from_unix(last_start_unix, 0),
            outcome,
            jitter_seed,
        );
        write(next_out, next.unix_seconds());
        Ok(())
    })
}
