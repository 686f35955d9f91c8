//! When the next sync runs: a pure function of the schedule, the last run and how it ended,
//! so that the daemon, the C ABI and tests agree without waiting for clocks.

use super::config::Schedule;
use crate::scim::datetime::DateTime;

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
/// `outcome`. A failure is retried after the schedule's retry delay, doubled for each further
/// failure up to the interval, and moved by up to a tenth either way (from `jitter_seed`) so
/// that many directories do not retry in step. A time in the past means "now".
pub fn next_run(
    schedule: &Schedule,
    last_start: DateTime,
    outcome: Outcome,
    jitter_seed: u64,
) -> DateTime {
    let delay = match outcome {
        Outcome::Succeeded | Outcome::Blocked => schedule.interval_seconds,
        Outcome::Failed { failures } => {
            let doublings = failures.saturating_sub(1).min(32);
            let backoff = schedule
                .retry_seconds
                .saturating_mul(1u64 << doublings)
                .min(schedule.interval_seconds);
            // Up to ±10%, from a cheap deterministic hash of the seed and the attempt.
            let spread = backoff / 10;
            if spread == 0 {
                backoff
            } else {
                let h = (jitter_seed ^ u64::from(failures))
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .rotate_left(29);
                backoff - spread + h % (2 * spread + 1)
            }
        }
    };
    DateTime::from_unix(
        last_start
            .unix_seconds()
            .saturating_add(i64::try_from(delay).unwrap_or(i64::MAX)),
        0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime {
        DateTime::from_unix(seconds, 0)
    }

    #[test]
    fn success_and_blocked_wait_the_interval_failures_back_off_with_jitter() {
        let s = Schedule {
            interval_seconds: 3600,
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
}
