//! One sync run from start to record, the same for the command line, the daemon and the
//! bindings: full or incremental, read, plan, apply, and the run's record — which carries
//! the watermark the next incremental run reads changes from.
//!
//! A run is incremental when the configuration asks for it, an earlier run left a
//! watermark, the mapping has not changed since, and the last full run is recent enough;
//! otherwise it is full. The watermark is the start of the last run that applied cleanly,
//! and is kept only then: a run that failed, was blocked or left objects failing is read
//! again from the same point next time.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::apply::{ApplyError, ApplyOptions, Report, Target};
use super::config::ServerKind;
use super::config::SyncConfig;
use super::plan::{Current, Plan, Settled, Settler, plan_settled};
use super::source::{self, Changes, Known, UsnMark};
use crate::scim::datetime::DateTime;
use crate::store::{Clock, DirectoryKind, NewDirectory, Store, StoreError, SyncRun};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Applied, every change included.
    Succeeded,
    /// A deletion threshold blocked the plan: nothing was applied.
    Blocked,
    /// Not read, not applied, or applied with some changes failing.
    Failed,
}

impl RunOutcome {
    /// As recorded with the run.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Blocked => "blocked",
            Self::Failed => "failed",
        }
    }
}

/// A full or an incremental read, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mode {
    /// The watermark an incremental run read changes from; `None` for a full run.
    pub since: Option<String>,
    /// Why this mode.
    pub reason: String,
    /// For an incremental run, the start of the last full run, as the watermark it read
    /// from says: carried into this run's watermark.
    #[serde(skip)]
    last_full: Option<String>,
    /// AD, for an incremental run: where the last clean read left the domain controller.
    #[serde(skip)]
    usn: Option<UsnMark>,
    /// AD: where this read found the domain controller: the next watermark.
    #[serde(skip)]
    next_usn: Option<UsnMark>,
}

impl Mode {
    fn full(reason: impl Into<String>) -> Self {
        Self {
            since: None,
            reason: reason.into(),
            last_full: None,
            usn: None,
            next_usn: None,
        }
    }
}

/// How to run.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct RunOptions<'a> {
    /// Applying: the override, the progress callback.
    pub apply: ApplyOptions<'a>,
    /// Read everything, even when an incremental run is possible.
    pub full: bool,
}

impl<'a> RunOptions<'a> {
    /// Options for a run.
    pub fn new(apply: ApplyOptions<'a>, full: bool) -> Self {
        Self { apply, full }
    }
}

/// What a run did.
#[derive(Debug)]
#[non_exhaustive]
pub struct Run {
    /// When it started.
    pub started: DateTime,
    /// Full or incremental.
    pub mode: Mode,
    /// The plan, when the source and the target could be read.
    pub plan: Option<Plan>,
    /// What the apply did, when it ran to its end.
    pub report: Option<Report>,
    /// What an apply that stopped part-way (a lost lock, a store failing, a stop asked
    /// for) had done until then: the changes before it stay.
    pub partial_report: Option<Report>,
    /// Why it failed or was blocked.
    pub error: Option<String>,
    /// Why the apply stopped or did not start, when it did (what `error` says, as a value
    /// the bindings map to their own errors).
    pub failure: Option<ApplyError>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Milliseconds spent in each step that ran: `target` (reading what the target
    /// holds), `source` (reading LDAP), `plan`, `apply`.
    pub milliseconds: Vec<(&'static str, u64)>,
}

impl Run {
    /// The run as JSON, as its record keeps it: outcome, mode, the plan's summary, the
    /// report, the error and the time per step.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "outcome": self.outcome.as_str(),
            "mode": self.mode,
            "milliseconds": self.milliseconds.iter().copied().collect::<std::collections::BTreeMap<_, _>>(),
        });
        if let Some(plan) = &self.plan {
            out["plan"] = json!({
                "summary": plan.summary().counts,
                "incomplete": plan.incomplete,
                "blocked": plan.blocked,
                "warnings": plan.warnings,
            });
        }
        if let Some(r) = &self.report {
            out["report"] = serde_json::to_value(r).unwrap_or(Value::Null);
        }
        if let Some(r) = &self.partial_report {
            out["partial_report"] = serde_json::to_value(r).unwrap_or(Value::Null);
        }
        if matches!(self.failure, Some(ApplyError::Cancelled { .. })) {
            // Stopped on request, not failed: the schedule goes on at once (`next_due`).
            out["cancelled"] = Value::Bool(true);
        }
        if let Some(e) = &self.error {
            out["error"] = Value::String(e.clone());
        }
        out
    }
}

/// What a successful run leaves for the next.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Watermark {
    /// The start of the run, as an LDAP GeneralizedTime.
    since: String,
    /// The start of the last full run (RFC 3339).
    last_full: String,
    /// A fingerprint of the configuration's searches and mappings.
    config: String,
    /// AD: the domain controller and its highest committed USN when the run's read began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    usn: Option<UsnMark>,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// LDAP could not be read: no server answered, the bind failed, or a secret is missing.
    #[error(transparent)]
    Source(#[from] source::SourceError),
    /// The target could not be read (or is not a directory a sync may write to).
    #[error(transparent)]
    Target(#[from] ApplyError),
}

/// A plan ready to apply, and how it was made. Cloned only to apply a blocked plan
/// without using it up: refused, it may be applied again with the override.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Planned {
    /// When the run started.
    pub started: DateTime,
    /// Full or incremental.
    pub mode: Mode,
    /// The changes.
    pub plan: Plan,
    /// Milliseconds per step so far.
    pub milliseconds: Vec<(&'static str, u64)>,
}

/// Reads the source (full or incremental, as the records allow) and plans against `target`;
/// nothing is written. Apply the plan with [`apply_run`], or see it and drop it.
///
/// # Errors
/// Why the source, the target or the records could not be read.
pub fn plan_run(
    config: &SyncConfig,
    records: &dyn Store,
    target: &dyn Target,
    full: bool,
    clock: &Clock,
) -> Result<Planned, PlanError> {
    let started = clock();
    let mut milliseconds = Vec::new();
    let (mode, plan) = plan_timed(config, records, target, full, started, &mut milliseconds)?;
    Ok(Planned {
        started,
        mode,
        plan,
        milliseconds,
    })
}

/// [`plan_run`], noting how long each step took.
fn plan_timed(
    config: &SyncConfig,
    records: &dyn Store,
    target: &dyn Target,
    full: bool,
    now: DateTime,
    milliseconds: &mut Vec<(&'static str, u64)>,
) -> Result<(Mode, Plan), PlanError> {
    let mut mode = mode(config, records, full, now)?;
    // Both reads run at once. An incremental read needs the target's active users (and
    // groups) only after its first searches: the target's thread hands them over when it
    // has them, and the read waits for them only when it gets there. A full read maps the
    // users it has read against the target's, once the target is read, while it waits for
    // the server's next page.
    let incremental = mode.since.is_some();
    let holds_member_lists = target.holds_member_lists();
    // What the target holds, for the full read's settler as soon as it is read.
    let shared: OnceLock<Arc<Current>> = OnceLock::new();
    let (current, snapshot, settled) = std::thread::scope(|s| {
        let (handing_over, handed_over) = std::sync::mpsc::sync_channel(1);
        let sharing = &shared;
        let reading = s.spawn(move || {
            let step = Instant::now();
            let current = target.current(config).map(Arc::new);
            let target_ms = elapsed(step);
            if incremental {
                let known = current.as_ref().ok().map(|c| known(c, holds_member_lists));
                // The read may have ended before it asked.
                let _ = handing_over.send(known);
            }
            if let Ok(current) = &current {
                let _ = sharing.set(Arc::clone(current));
            }
            (current, target_ms)
        });
        // A second call, or one after the thread failed, finds the channel closed.
        let known = || handed_over.recv().ok().flatten();
        let step = Instant::now();
        let (snapshot, settled) = match &mode.since {
            None => {
                let read_target = || shared.get().map(|c| &**c);
                let mut settler = Settler::new(config, &read_target);
                let snapshot = source::read_while(config, &mut |users| settler.settle(users));
                (snapshot, settler.finish())
            }
            Some(since) => {
                let changes = Changes {
                    since,
                    usn: mode.usn.as_ref(),
                    holds_member_lists,
                    known: &known,
                };
                (source::read_changes(config, changes), Settled::default())
            }
        };
        let source_ms = elapsed(step);
        let (current, target_ms) = reading
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        milliseconds.push(("target", target_ms));
        milliseconds.push(("source", source_ms));
        (current, snapshot, settled)
    });
    // Only `current` holds the target's objects now: they are freed where it says.
    drop(shared);
    let current = current?;
    let snapshot = snapshot?;
    if let Some(reason) = &snapshot.full_because {
        mode = Mode::full(format!("{reason}: everything was read"));
    }
    mode.next_usn = next_usn(&snapshot);
    let step = Instant::now();
    let plan = plan_settled(config, &snapshot, &current, settled);
    milliseconds.push(("plan", elapsed(step)));
    // A full read's entries and the target's objects, a hundred thousand of each: freeing
    // them took a tenth of a no-change run, so a plan with little to apply has them freed
    // on a thread of their own. A large apply (a first import) allocates as much again
    // and reuses the memory freed here: after a free on another thread, a first import's
    // apply measured slower (2.5–3.4 s, mean 3.0 s, against 2.5–2.9 s, mean 2.7 s).
    let read = snapshot.users.len() + current.users.len();
    if plan.changes.len() * 10 < read {
        drop_aside((snapshot, current));
    }
    Ok((mode, plan))
}

/// Drops `value` on a new thread; here, when no thread can be started (the closure that
/// owns it is dropped then).
fn drop_aside<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("usersync-free".into())
        .spawn(move || drop(value));
}

/// What an incremental read needs of what the target holds.
fn known(current: &Current, holds_member_lists: bool) -> Known {
    fn anchors<A>(
        resources: &[crate::store::Resource<A>],
        active_only: bool,
    ) -> foldhash::HashSet<String> {
        resources
            .iter()
            .filter(|r| r.active || !active_only)
            .filter_map(|r| r.external_id.clone())
            .collect()
    }
    Known {
        active: anchors(&current.users, true),
        groups: holds_member_lists.then(|| anchors(&current.groups, false)),
    }
}

/// AD: where the next incremental run starts, if this one applies cleanly. A group whose
/// members could not be read whole lost none of them in this run: the next run must read it
/// again, and an incremental one would take it as unchanged, so it is full.
fn next_usn(snapshot: &source::Snapshot) -> Option<UsnMark> {
    snapshot
        .usn
        .clone()
        .filter(|_| snapshot.partial_groups.is_empty())
}

fn elapsed(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One run: plan, apply to `target`, and keep the record (with the watermark of a clean
/// run) in `records`' directory of the same name, created as kind `ldap` when missing.
pub fn sync(
    config: &SyncConfig,
    records: &dyn Store,
    target: &dyn Target,
    options: &RunOptions<'_>,
    clock: &Clock,
) -> Run {
    match plan_run(config, records, target, options.full, clock) {
        Ok(planned) => apply_run(config, records, target, planned, &options.apply, clock),
        Err(e) => failed_read(config, records, &e, clock),
    }
}

/// The run of a plan that could not be made (the source or the target could not be read),
/// recorded as [`sync`] records it: the schedule backs off after it, and the runs show it.
pub fn failed_read(
    config: &SyncConfig,
    records: &dyn Store,
    error: &PlanError,
    clock: &Clock,
) -> Run {
    let mut run = Run {
        started: clock(),
        mode: Mode::full(String::new()),
        plan: None,
        report: None,
        partial_report: None,
        error: Some(error.to_string()),
        failure: None,
        outcome: RunOutcome::Failed,
        milliseconds: Vec::new(),
    };
    keep_record(config, records, &mut run, None, clock);
    run
}

/// Applies a plan made by [`plan_run`] and keeps the run's record, as [`sync`] does.
pub fn apply_run(
    config: &SyncConfig,
    records: &dyn Store,
    target: &dyn Target,
    planned: Planned,
    options: &ApplyOptions<'_>,
    clock: &Clock,
) -> Run {
    let Planned {
        started,
        mode,
        plan,
        mut milliseconds,
    } = planned;
    let step = Instant::now();
    let partial = std::sync::Mutex::new(None);
    let applied = target.apply(config, &plan, &options.clone().with_partial(&partial));
    let partial_report = partial.into_inner().ok().flatten();
    milliseconds.push(("apply", elapsed(step)));
    let (report, failure, outcome) = match applied {
        Ok(r) if r.failures.is_empty() => (Some(r), None, RunOutcome::Succeeded),
        Ok(r) => (Some(r), None, RunOutcome::Failed),
        Err(e @ ApplyError::Blocked(_)) => (None, Some(e), RunOutcome::Blocked),
        Err(e) => (None, Some(e), RunOutcome::Failed),
    };
    let error = failure.as_ref().map(ToString::to_string);
    // A plan of an incomplete read applied cleanly still leaves changes unread.
    let clean = outcome == RunOutcome::Succeeded && plan.incomplete.is_empty();
    let watermark = clean.then(|| {
        Watermark {
            since: generalized_time(started),
            // A full run is the last full run; an incremental one carries it on.
            last_full: mode
                .last_full
                .clone()
                .unwrap_or_else(|| started.to_string()),
            config: fingerprint(config),
            usn: mode.next_usn.clone(),
        }
    });
    let mut run = Run {
        started,
        mode,
        plan: Some(plan),
        report,
        partial_report,
        error,
        failure,
        outcome,
        milliseconds,
    };
    keep_record(config, records, &mut run, watermark, clock);
    run
}

/// Records the run; a record that cannot be kept is said in the run's error.
fn keep_record(
    config: &SyncConfig,
    records: &dyn Store,
    run: &mut Run,
    watermark: Option<Watermark>,
    clock: &Clock,
) {
    if let Err(e) = record(config, records, run, watermark, clock) {
        run.error
            .get_or_insert_with(String::new)
            .push_str(&format!(" (the run was not recorded: {e})"));
    }
}

/// Full or incremental, and why, from the configuration and the last clean run's record.
fn mode(
    config: &SyncConfig,
    records: &dyn Store,
    full: bool,
    now: DateTime,
) -> Result<Mode, PlanError> {
    let full_because = |reason: &str| Ok(Mode::full(reason));
    let Some(incremental) = &config.incremental else {
        return full_because("incremental runs are not configured");
    };
    if full {
        return full_because("a full run was asked for");
    }
    let Some(last) = previous(config, records)? else {
        return full_because("no earlier run left a watermark");
    };
    if last.config != fingerprint(config) {
        return full_because(
            "the searches, mappings, URLs or change attribute differ from the last clean run's",
        );
    }
    let last_full = DateTime::parse(&last.last_full).map_or(i64::MIN, |d| d.unix_seconds());
    let due = i64::try_from(incremental.full_every_seconds).unwrap_or(i64::MAX);
    if now.unix_seconds().saturating_sub(last_full) >= due {
        return full_because("the last full run is older than incremental.full_every");
    }
    // A record from a clock that was ahead would hold back the full runs, and read changes
    // since a time that has not come: nothing.
    let since = parse_generalized(&last.since);
    if last_full > now.unix_seconds() || since.is_some_and(|t| t > now.unix_seconds()) {
        return full_because("the last clean run is dated after this machine's clock");
    }
    if config.kind == ServerKind::ActiveDirectory {
        // AD: by update sequence number, on the controller that answered last time.
        let Some(usn) = last.usn else {
            return full_because(
                "the last clean run left no USN watermark of the domain controller (incremental runs were off, or a group's members could not be read whole)",
            );
        };
        return Ok(Mode {
            since: Some(format!("USN {}", usn.highest)),
            reason: format!(
                "changes since USN {} of {} (the last clean run)",
                usn.highest, usn.server
            ),
            last_full: Some(last.last_full),
            usn: Some(usn),
            next_usn: None,
        });
    }
    let Some(since) = since else {
        return full_because("the last watermark cannot be read");
    };
    let overlap = i64::try_from(incremental.overlap_seconds).unwrap_or(i64::MAX);
    let from = generalized_time(DateTime::from_unix(since.saturating_sub(overlap), 0));
    Ok(Mode {
        since: Some(from),
        reason: format!(
            "changes since the last clean run ({}), less incremental.overlap",
            last.since
        ),
        last_full: Some(last.last_full),
        usn: None,
        next_usn: None,
    })
}

/// The watermark of the last clean run, among the last hundred.
fn previous(config: &SyncConfig, records: &dyn Store) -> Result<Option<Watermark>, ApplyError> {
    let Some(d) = records.directory(&config.directory)? else {
        return Ok(None);
    };
    Ok(records
        .runs(d.id, 100)?
        .into_iter()
        .find_map(|r| serde_json::from_value(r.report.get("watermark")?.clone()).ok()))
}

/// Keeps the run's record with its directory.
fn record(
    config: &SyncConfig,
    records: &dyn Store,
    run: &Run,
    watermark: Option<Watermark>,
    clock: &Clock,
) -> Result<(), ApplyError> {
    let d = match records.directory(&config.directory)? {
        Some(d) if d.kind == DirectoryKind::Ldap => d,
        // Not an LDAP directory (a SCIM one of the same name in the records' store, with a
        // remote target): its records are not ours to add to, and the caller must know.
        Some(d) => {
            return Err(ApplyError::Store(StoreError::Invalid(format!(
                "the store's directory `{}` is a {} directory, not an LDAP one",
                d.name,
                d.kind.as_str()
            ))));
        }
        None => {
            records.create_directory(NewDirectory::new(&config.directory, DirectoryKind::Ldap))?
        }
    };
    let mut report = run.to_json();
    if let Some(w) = watermark {
        report["watermark"] = serde_json::to_value(w).unwrap_or(Value::Null);
    }
    keep_first_reasons(&mut report);
    records.add_run(SyncRun {
        id: 0,
        directory: d.id,
        started: run.started,
        finished: clock(),
        outcome: run.outcome.as_str().into(),
        report,
    })?;
    Ok(())
}

/// How many per-object reasons (failures, conflicts) a run's record keeps of each list.
pub const KEPT_REASONS: usize = 1000;

/// The record's lists of per-object reasons cut to their first [`KEPT_REASONS`], with how
/// many were left out (`failures_omitted`…): a run where every one of 100,000 users failed
/// would otherwise keep megabytes that every schedule check and plan reads back.
fn keep_first_reasons(record: &mut Value) {
    for report in ["report", "partial_report"] {
        for list in ["failures", "conflicts"] {
            let Some(Value::Array(items)) = record.get_mut(report).and_then(|r| r.get_mut(list))
            else {
                continue;
            };
            if items.len() > KEPT_REASONS {
                let omitted = items.len() - KEPT_REASONS;
                items.truncate(KEPT_REASONS);
                record[report][format!("{list}_omitted")] = Value::from(omitted);
            }
        }
    }
}

/// What decides which entries a run reads and how they map, and where and by which
/// attribute it reads changes: a change to it makes the next run full. (A watermark of
/// one server, or of one change attribute, says nothing of another's.)
fn fingerprint(config: &SyncConfig) -> String {
    let text = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}",
        config.kind,
        config.users,
        config.groups,
        config.connection.urls,
        config.incremental.as_ref().map(|i| &i.attribute)
    );
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// An LDAP GeneralizedTime in UTC, to the second: `20261128164200Z`.
fn generalized_time(at: DateTime) -> String {
    let seconds = at.unix_seconds();
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (y, m, d) = crate::scim::datetime::civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Seconds since the epoch of a GeneralizedTime this module wrote.
fn parse_generalized(text: &str) -> Option<i64> {
    let digits = text.strip_suffix('Z')?;
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &digits[0..4],
        &digits[4..6],
        &digits[6..8],
        &digits[8..10],
        &digits[10..12],
        &digits[12..14]
    );
    DateTime::parse(&rfc3339).ok().map(|d| d.unix_seconds())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_not_read_whole_leaves_no_usn_watermark() {
        let mut snapshot = source::Snapshot {
            usn: Some(UsnMark {
                server: "CN=NTDS Settings,CN=DC1".into(),
                invocation_id: "00000000-0000-0000-0000-000000000001".into(),
                highest: 42,
            }),
            ..source::Snapshot::default()
        };
        assert_eq!(next_usn(&snapshot), snapshot.usn);
        snapshot.partial_groups = vec![("CN=Big".into(), "timed out".into())];
        assert_eq!(next_usn(&snapshot), None);
    }

    /// A record keeps the first reasons of each list, and how many it left out.
    #[test]
    fn a_record_keeps_the_first_reasons() {
        let failures: Vec<String> = (0..KEPT_REASONS + 5).map(|i| format!("user {i}")).collect();
        let mut record = json!({
            "report": {"failures": failures, "conflicts": ["one"]},
            "partial_report": {"failures": failures},
        });
        keep_first_reasons(&mut record);
        for report in ["report", "partial_report"] {
            let kept = record[report]["failures"].as_array().map(Vec::len);
            assert_eq!(kept, Some(KEPT_REASONS));
            assert_eq!(record[report]["failures_omitted"], 5);
            assert_eq!(record[report]["failures"][0], "user 0");
        }
        assert_eq!(record["report"]["conflicts"], json!(["one"]));
        assert!(record["report"].get("conflicts_omitted").is_none());
    }

    #[test]
    fn generalized_times_round_trip() {
        for text in [
            "2026-11-28T16:42:08Z",
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59Z",
        ] {
            let at = DateTime::parse(text).unwrap_or_else(|e| unreachable!("{e}"));
            let g = generalized_time(at);
            assert_eq!(g.len(), 15, "{g}");
            assert_eq!(parse_generalized(&g), Some(at.unix_seconds()), "{g}");
        }
        assert_eq!(
            generalized_time(DateTime::from_unix(1_795_884_128, 0)),
            "20261128164208Z"
        );
        for bad in [
            "",
            "2026112816420Z",
            "20261128164208",
            "2026-11-28T16:42:08Z",
        ] {
            assert_eq!(parse_generalized(bad), None, "{bad}");
        }
    }
}
