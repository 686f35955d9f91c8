//! When the next sync runs: a pure function of the schedule, the last run and how it ended,
//! so that the daemon, the C ABI and tests agree without waiting for clocks.

use std::cmp::Ordering;

use croner::errors::CronError;
use croner::{CivilDate, CivilDateTime, CivilTime, Cron, CronDateTime, Resolution, Weekday};

use super::config::{Schedule, SyncConfig};
use crate::scim::datetime::{DateTime, civil_from_days, days_from_civil};
use crate::store::{Store, StoreError, SyncRun, name_hash};

/// A cron expression (five fields, or six with seconds first; `@daily` and the like;
/// `MON`…`SUN`, `JAN`…`DEC`), read in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpression {
    text: String,
    cron: Cron,
}

impl CronExpression {
    /// Reads an expression that names a time after now.
    ///
    /// # Errors
    /// What is wrong with it, for a person: also an expression that names no time from now
    /// on (the 30th of February, a year gone by), under which a daemon would never run.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expression = text
            .parse::<Cron>()
            .map(|cron| Self {
                text: text.trim().to_owned(),
                cron,
            })
            .map_err(|e| format!("`{text}` is not a cron expression: {e}"))?;
        let now = crate::store::system_clock()();
        match expression.next_after(now) {
            Some(_) => Ok(expression),
            None => Err(format!(
                "`{text}` names no time from now on (such as the 30th of February, or a year gone by)"
            )),
        }
    }

    /// The first time strictly after `after` that the expression names (`None` when it
    /// names no time, such as the 30th of February).
    pub fn next_after(&self, after: DateTime) -> Option<DateTime> {
        self.cron
            .find_next_occurrence(&Utc(after.unix_seconds()), false)
            .ok()
            .map(|t| DateTime::from_unix(t.0, 0))
    }
}

impl std::fmt::Display for CronExpression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whole seconds since the epoch, UTC: the clock croner searches over.
#[derive(Debug, Clone, Copy)]
struct Utc(i64);

impl CronDateTime for Utc {
    fn to_civil(&self) -> CivilDateTime {
        let (days, seconds) = (self.0.div_euclid(86_400), self.0.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        let s = u32::try_from(seconds).unwrap_or(0);
        CivilDateTime::new(
            CivilDate::from_parts_unchecked(i32::try_from(y).unwrap_or(i32::MAX), m, d),
            CivilTime::from_parts_unchecked(s / 3600, s / 60 % 60, s % 60),
        )
    }

    fn civil_weekday(&self) -> Weekday {
        // 1970-01-01 was a Thursday.
        let days = self.0.div_euclid(86_400);
        Weekday::from_days_from_sunday(u32::try_from((days + 4).rem_euclid(7)).unwrap_or(0))
    }

    fn resolve_civil(&self, civil: CivilDateTime) -> Result<Resolution<Self>, CronError> {
        let days = days_from_civil(i64::from(civil.year()), civil.month(), civil.day());
        let seconds = i64::from(civil.hour() * 3600 + civil.minute() * 60 + civil.second());
        Ok(Resolution::Single(Utc(days * 86_400 + seconds)))
    }

    fn checked_add_seconds(&self, seconds: i64) -> Option<Self> {
        self.0.checked_add(seconds).map(Utc)
    }

    fn cmp_instant(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

/// How far a run on record may be dated after this node's clock (nodes' clocks differ)
/// before it counts as dated wrong.
const SKEW_SECONDS: i64 = 60;

/// How the last run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (or nothing to do).
    Succeeded,
    /// Blocked by a threshold: waiting for a person, not for a retry.
    Blocked,
    /// Failed; `failures` runs in a row have failed, this one included.
    Failed {
        /// Consecutive failures, at least 1.
        failures: u32,
    },
}

/// The start of the next run, after a run that started at `last_start` and ended as
/// `outcome`: one interval later, or the cron expression's next time. A failure is retried
/// after the schedule's retry delay, doubled for each further failure and moved by up to a
/// tenth either way (from `jitter_seed`) so that many directories do not retry in step, but
/// never later than the next regular run. A time in the past means "now". After a failure,
/// pass the time the run ended as `last_start` ([`counted_from`] gives it): a run that
/// failed after a long read is then not retried at once.
pub fn next_run(
    schedule: &Schedule,
    last_start: DateTime,
    outcome: Outcome,
    jitter_seed: u64,
) -> DateTime {
    let start = last_start.unix_seconds();
    let regular = match &schedule.cron {
        Some(cron) => cron
            .next_after(last_start)
            .map_or(i64::MAX, |t| t.unix_seconds()),
        None => start.saturating_add(i64::try_from(schedule.interval_seconds).unwrap_or(i64::MAX)),
    };
    let Outcome::Failed { failures } = outcome else {
        return DateTime::from_unix(regular, 0);
    };
    let doublings = failures.saturating_sub(1).min(32);
    let until_regular = u64::try_from(regular.saturating_sub(start)).unwrap_or(0);
    let backoff = schedule
        .retry_seconds
        .saturating_mul(1u64 << doublings)
        .min(until_regular);
    // Up to ±10%, from a cheap deterministic hash of the seed and the attempt; the cap
    // comes after, so that a retry never passes the next regular run.
    let spread = backoff / 10;
    let jittered = if spread == 0 {
        backoff
    } else {
        let h = (jitter_seed ^ u64::from(failures))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
        backoff - spread + h % (2 * spread + 1)
    };
    let delay = jittered.min(until_regular);
    DateTime::from_unix(
        start.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX)),
        0,
    )
}

/// The time the next run counts from, what [`next_run`] takes as `last_start`: the last
/// run's start, or its end after a failure (its backoff runs from there).
pub fn counted_from(started: DateTime, ended: DateTime, outcome: Outcome) -> DateTime {
    match outcome {
        Outcome::Failed { .. } => ended,
        Outcome::Succeeded | Outcome::Blocked => started,
    }
}

/// When the directory's next sync is due, from its runs on record — which every node
/// sharing the store reads, so that the nodes keep one schedule: the newest run's start
/// (its end, after a failure) and how it ended, and how many runs in a row failed without
/// applying. `None` (due now) before the first run. Due `now` after a run on record dated
/// after `now` (a clock that was ahead, a restored snapshot; past a minute of skew between
/// nodes), which would otherwise hold every node's schedule back until the clocks caught
/// up, and after a run stopped on request (a daemon restarted mid-import): it goes on.
///
/// # Errors
/// [`StoreError`] when the runs cannot be read.
pub fn next_due(
    config: &SyncConfig,
    records: &dyn Store,
    now: DateTime,
) -> Result<Option<DateTime>, StoreError> {
    let Some(d) = records.directory(&config.directory)? else {
        return Ok(None);
    };
    let runs = records.runs(d.id, 64)?;
    let Some(last) = runs.first() else {
        return Ok(None);
    };
    if last.started.unix_seconds() > now.unix_seconds().saturating_add(SKEW_SECONDS)
        || last.report.get("cancelled") == Some(&serde_json::Value::Bool(true))
    {
        return Ok(Some(now));
    }
    // A run that applied counts as done even when some objects failed (they are retried
    // by the next regular run); one that did not apply is retried with backoff.
    let unapplied = |r: &SyncRun| r.outcome == "failed" && r.report.get("report").is_none();
    let outcome = if last.outcome == "blocked" {
        Outcome::Blocked
    } else if unapplied(last) {
        let failures = runs.iter().take_while(|r| unapplied(r)).count();
        Outcome::Failed {
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
        }
    } else {
        Outcome::Succeeded
    };
    Ok(Some(next_run(
        &config.schedule,
        counted_from(last.started, last.finished, outcome),
        outcome,
        name_hash(&config.directory),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime {
        DateTime::from_unix(seconds, 0)
    }

    /// Every node reads the same runs, so they agree on when the next one is due.
    #[test]
    fn the_next_run_is_due_from_the_runs_on_record() {
        use crate::store::memory::MemoryStore;
        use crate::store::{DirectoryKind, NewDirectory};
        let config = SyncConfig::from_toml(
            "directory = \"corp\"\n[connection]\nurls = [\"ldap://127.0.0.1:389\"]\n\
             [users]\nbase = \"dc=example\"\n[schedule]\ninterval = \"1h\"\nretry = \"1m\"\n",
        )
        .unwrap();
        let store = MemoryStore::new(std::sync::Arc::new(|| at(0)));
        assert_eq!(
            next_due(&config, &store, at(20_000)).unwrap(),
            None,
            "no directory yet"
        );
        let d = store
            .create_directory(NewDirectory::new("corp", DirectoryKind::Ldap))
            .unwrap()
            .id;
        assert_eq!(
            next_due(&config, &store, at(20_000)).unwrap(),
            None,
            "no run yet"
        );
        let add = |started: i64, outcome: &str, report: serde_json::Value| {
            store
                .add_run(SyncRun {
                    id: 0,
                    directory: d,
                    started: at(started),
                    finished: at(started + 1),
                    outcome: outcome.into(),
                    report,
                })
                .unwrap();
        };
        add(1000, "succeeded", serde_json::json!({"report": {}}));
        assert_eq!(
            next_due(&config, &store, at(20_000)).unwrap(),
            Some(at(4600))
        );
        // Applied with some objects failing: the next regular run retries them.
        add(
            4600,
            "failed",
            serde_json::json!({"report": {"failures": ["x"]}}),
        );
        assert_eq!(
            next_due(&config, &store, at(20_000)).unwrap(),
            Some(at(8200))
        );
        // Not applied, twice in a row: about two minutes of backoff.
        add(
            8200,
            "failed",
            serde_json::json!({"error": "no LDAP server answered"}),
        );
        add(
            8260,
            "failed",
            serde_json::json!({"error": "no LDAP server answered"}),
        );
        // Counted from the end of the last failed run (8261).
        let due = next_due(&config, &store, at(20_000))
            .unwrap()
            .unwrap()
            .unix_seconds()
            - 8261;
        assert!((108..=132).contains(&due), "{due} s");
        add(8400, "blocked", serde_json::json!({"error": "threshold"}));
        assert_eq!(
            next_due(&config, &store, at(20_000)).unwrap(),
            Some(at(12000))
        );
        // A run that failed after a long read is retried a backoff after it ended.
        store
            .add_run(SyncRun {
                id: 0,
                directory: d,
                started: at(12_000),
                finished: at(12_600),
                outcome: "failed".into(),
                report: serde_json::json!({"error": "the store failed"}),
            })
            .unwrap();
        let due = next_due(&config, &store, at(20_000)).unwrap().unwrap();
        assert!(due.unix_seconds() >= 12_654, "{due}");
        // A run stopped on request goes on at once (a daemon restarted mid-import).
        add(
            20_000,
            "failed",
            serde_json::json!({"error": "the apply was stopped", "cancelled": true}),
        );
        assert_eq!(
            next_due(&config, &store, at(20_100)).unwrap(),
            Some(at(20_100))
        );
        // A run dated after this machine's clock is due now, and stays due as the daemon
        // asks again later (due "an interval from now" would move away with the clock).
        add(900_000, "succeeded", serde_json::json!({"report": {}}));
        for now in [20_000, 20_200, 30_000] {
            assert_eq!(next_due(&config, &store, at(now)).unwrap(), Some(at(now)));
        }
        // Within the skew between nodes' clocks, it counts as it is.
        add(30_030, "succeeded", serde_json::json!({"report": {}}));
        assert_eq!(
            next_due(&config, &store, at(30_000)).unwrap(),
            Some(at(33_630))
        );
    }

    #[test]
    fn success_and_blocked_wait_the_interval_failures_back_off_with_jitter() {
        let s = Schedule {
            interval_seconds: 3600,
            cron: None,
            retry_seconds: 60,
        };
        assert_eq!(next_run(&s, at(1000), Outcome::Succeeded, 7), at(4600));
        assert_eq!(next_run(&s, at(1000), Outcome::Blocked, 7), at(4600));
        let delays: Vec<i64> = (1..=8)
            .map(|failures| next_run(&s, at(0), Outcome::Failed { failures }, 7).unix_seconds())
            .collect();
        for (i, d) in delays.iter().enumerate() {
            let nominal = (60i64 << i).min(3600);
            assert!(
                (*d - nominal).abs() <= nominal / 10,
                "failure {}: {d} s, nominal {nominal} s",
                i + 1
            );
        }
        assert!(delays.windows(2).take(5).all(|w| w[0] < w[1]), "{delays:?}");
        // Two directories with different seeds do not retry at the same second.
        let a = next_run(&s, at(0), Outcome::Failed { failures: 3 }, 1);
        let b = next_run(&s, at(0), Outcome::Failed { failures: 3 }, 2);
        assert_ne!(a, b);
        // The same inputs give the same answer.
        assert_eq!(a, next_run(&s, at(0), Outcome::Failed { failures: 3 }, 1));
    }

    fn cron(text: &str) -> Schedule {
        Schedule {
            interval_seconds: 3600,
            cron: Some(CronExpression::parse(text).unwrap_or_else(|e| unreachable!("{e}"))),
            retry_seconds: 60,
        }
    }

    fn utc(text: &str) -> DateTime {
        DateTime::parse(text).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn cron_schedules_run_at_the_named_times_in_utc() {
        let nightly = cron("30 2 * * *");
        let start = utc("2026-11-28T02:30:00Z");
        assert_eq!(
            next_run(&nightly, start, Outcome::Succeeded, 1),
            utc("2026-11-29T02:30:00Z"),
            "strictly after the run that just started"
        );
        assert_eq!(
            next_run(&nightly, utc("2026-11-28T01:00:00Z"), Outcome::Blocked, 1),
            utc("2026-11-28T02:30:00Z")
        );
        // Weekdays and month ends, across a leap day.
        let weekdays = cron("0 9 * * MON-FRI");
        assert_eq!(
            next_run(
                &weekdays,
                utc("2026-11-27T09:00:00Z"),
                Outcome::Succeeded,
                1
            ),
            utc("2026-11-30T09:00:00Z"),
            "Friday's run is followed by Monday's"
        );
        let leap = cron("0 0 29 2 *");
        assert_eq!(
            next_run(&leap, utc("2026-03-01T00:00:00Z"), Outcome::Succeeded, 1),
            utc("2028-02-29T00:00:00Z")
        );
        assert_eq!(
            next_run(
                &cron("@hourly"),
                utc("1969-12-31T23:59:59Z"),
                Outcome::Succeeded,
                1
            ),
            utc("1970-01-01T00:00:00Z"),
            "before the epoch too"
        );
        // A failure retries soon, but never after the next regular run.
        let every_5m = cron("*/5 * * * *");
        let failed = next_run(
            &every_5m,
            utc("2026-11-28T10:00:00Z"),
            Outcome::Failed { failures: 1 },
            3,
        );
        let after = failed.unix_seconds() - utc("2026-11-28T10:00:00Z").unix_seconds();
        assert!((54..=66).contains(&after), "{after} s");
        let failed = next_run(
            &every_5m,
            utc("2026-11-28T10:00:00Z"),
            Outcome::Failed { failures: 9 },
            3,
        );
        assert!(
            failed <= utc("2026-11-28T10:05:00Z") && failed >= utc("2026-11-28T10:04:30Z"),
            "never after the next regular run: {failed}"
        );
        for seed in 0..200 {
            let failed = next_run(
                &every_5m,
                utc("2026-11-28T10:00:00Z"),
                Outcome::Failed { failures: 9 },
                seed,
            );
            assert!(
                failed <= utc("2026-11-28T10:05:00Z"),
                "seed {seed}: {failed}"
            );
        }
    }

    #[test]
    fn bad_cron_expressions_say_why() {
        for bad in ["", "* * *", "61 * * * *", "* * * * * * * *", "0 0 31 FOO *"] {
            let e = CronExpression::parse(bad).err().unwrap_or_default();
            assert!(e.contains("is not a cron expression"), "{bad}: {e}");
        }
        // Expressions that never fire again: a daemon on them would sleep forever.
        for never in ["0 0 30 2 *", "0 0 31 4 *", "0 0 0 1 1 * 2020"] {
            let e = CronExpression::parse(never).err().unwrap_or_default();
            assert!(e.contains("names no time from now on"), "{never}: {e}");
        }
    }
}
