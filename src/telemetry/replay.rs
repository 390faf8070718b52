//! `tickbridge replay`: where it starts, how far it is, what it did.

use std::time::Duration;

use crate::replay::Report;

use super::{ms3, per_second};

/// Replay found messages to work through in a queue.
pub struct ReplayStarted<'a> {
    pub queue: &'a str,
    /// Visible messages, as SQS approximates them.
    pub messages: u64,
}

impl ReplayStarted<'_> {
    pub fn emit(&self) {
        tracing::info!(queue = %self.queue, messages = self.messages, "replay started");
    }
}

/// Progress when stderr is not a terminal (a terminal gets a bar).
pub struct ReplayProgress<'a> {
    pub what: &'a str,
    pub done: u64,
    pub total: Option<u64>,
    pub elapsed: Duration,
}

impl ReplayProgress<'_> {
    /// Items per second so far, and the seconds left when the total is known.
    pub fn figures(&self) -> (f64, Option<f64>) {
        let secs = self.elapsed.as_secs_f64();
        let rate = per_second(self.done, secs);
        let eta = match self.total {
            Some(t) if rate > 0.0 && t > self.done => Some(((t - self.done) as f64 / rate).ceil()),
            _ => None,
        };
        (rate, eta)
    }

    pub fn emit(&self) {
        let (rate, eta_s) = self.figures();
        tracing::info!(
            what = %self.what,
            done = self.done,
            total = self.total,
            elapsed_s = ms3(self.elapsed.as_secs_f64()),
            rate_per_s = rate,
            eta_s,
            "replay progress"
        );
    }
}

/// The replay's counts as one log line (the report itself goes to stdout).
/// `WARN` when something failed.
pub struct ReplayDone<'a> {
    pub report: &'a Report,
    pub elapsed: Duration,
}

impl ReplayDone<'_> {
    pub fn emit(&self) {
        let r = self.report;
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    dry_run = r.dry_run,
                    messages = r.messages,
                    records = r.records,
                    forwarded = r.forwarded,
                    duplicates = r.duplicates,
                    quarantined = r.quarantined,
                    failed = r.failed.len(),
                    deleted = r.deleted,
                    redriven = r.redriven,
                    kept = r.kept,
                    elapsed_s = ms3(self.elapsed.as_secs_f64()),
                    records_per_s = per_second(r.records as u64, self.elapsed.as_secs_f64()),
                    "replay done"
                )
            };
        }
        if r.succeeded() {
            line!(info);
        } else {
            line!(warn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::capture::{assert_no_debug, lines};

    #[test]
    fn progress_writes_the_total_only_when_known() {
        let logs = lines(|| {
            ReplayProgress {
                what: "dlq",
                done: 20,
                total: Some(100),
                elapsed: Duration::from_secs(4),
            }
            .emit();
            ReplayProgress {
                what: "file",
                done: 7,
                total: None,
                elapsed: Duration::from_millis(2_500),
            }
            .emit();
        });
        assert_eq!(logs[0]["total"], 100);
        assert_eq!(logs[0]["rate_per_s"], 5.0);
        assert_eq!(logs[0]["eta_s"], 16.0);
        assert!(logs[1].get("total").is_none() && logs[1].get("eta_s").is_none());
        assert_eq!(logs[1]["rate_per_s"], 2.8);
        for l in &logs {
            assert_no_debug(l);
        }
    }

    #[test]
    fn a_replay_with_failures_warns() {
        let mut r = Report::new(true);
        r.fail_message("m1", "gone");
        let logs = lines(|| {
            ReplayDone {
                report: &r,
                elapsed: Duration::from_secs(1),
            }
            .emit()
        });
        assert_eq!(logs[0]["level"], "WARN");
        assert_eq!(logs[0]["failed"], 1);
        assert_eq!(logs[0]["dry_run"], true);
    }
}
