//! S3 objects (DESIGN §7a) and claim-check payloads: how each object read
//! ended, an object quarantined whole, an update the tickerplant refused,
//! and the clean-ups that did not happen. The Lambda's notifications and
//! `tickbridge ingest` write the same lines.

use super::ms3;
use crate::s3::ingest::{ObjectReport, ObjectStatus};

/// One delivery's read of one object: `INFO` when it ended (done, already
/// done, bad), `WARN` when it stopped at its checkpoint for a retry.
pub struct ObjectRead<'a> {
    pub report: &'a ObjectReport,
    pub ms: f64,
}

impl ObjectRead<'_> {
    /// `status` as it is logged.
    pub fn status(&self) -> &'static str {
        match self.report.status {
            ObjectStatus::Done => "done",
            ObjectStatus::AlreadyDone => "already_done",
            ObjectStatus::Bad { .. } => "bad",
            ObjectStatus::Pending { .. } => "pending",
        }
    }

    pub fn emit(&self) {
        let r = self.report;
        let status = self.status();
        let object_ms = ms3(self.ms);
        match &r.status {
            ObjectStatus::Pending { reason } => tracing::warn!(
                object = %r.object, status, resumed_after = r.resumed_after, rows = r.rows,
                bytes = r.bytes, quarantined = r.quarantined, object_ms, reason = %reason,
                "S3 object stopped at its checkpoint; the notification is retried"
            ),
            ObjectStatus::Bad { reason } => tracing::info!(
                object = %r.object, status, resumed_after = r.resumed_after, rows = r.rows,
                bytes = r.bytes, quarantined = r.quarantined, object_ms, reason = %reason,
                "S3 object ended as a bad object"
            ),
            ObjectStatus::Done | ObjectStatus::AlreadyDone => tracing::info!(
                object = %r.object, status, resumed_after = r.resumed_after, rows = r.rows,
                bytes = r.bytes, quarantined = r.quarantined, object_ms,
                "S3 object ingested"
            ),
        }
    }
}

/// The whole object went to the quarantine (missing, changed, a header
/// the schemas cannot map, broken gzip): `WARN`.
pub struct ObjectQuarantined<'a> {
    pub object: &'a dyn std::fmt::Display,
    pub reason: &'a str,
}

impl ObjectQuarantined<'_> {
    pub fn emit(&self) {
        tracing::warn!(object = %self.object, reason = self.reason, "S3 object quarantined");
    }
}

/// The tickerplant refused a run of an object's rows: `ERROR`; the object
/// stops at its checkpoint.
pub struct ObjectUpdateRefused<'a> {
    pub object: &'a dyn std::fmt::Display,
    pub table: &'a str,
    pub rows: usize,
    pub q_error: &'a str,
}

impl ObjectUpdateRefused<'_> {
    pub fn emit(&self) {
        tracing::error!(
            object = %self.object, table = self.table, rows = self.rows, q_error = self.q_error,
            "tickerplant refused an update; the object stops at its checkpoint"
        );
    }
}

/// The object's claim could not be completed or given back: `WARN`; it
/// expires at the invocation deadline.
pub struct ObjectClaimUnsettled<'a> {
    pub object: &'a dyn std::fmt::Display,
    pub error: &'a dyn std::fmt::Display,
}

impl ObjectClaimUnsettled<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            object = %self.object, error = %self.error,
            "object claim not settled; it expires at the invocation deadline"
        );
    }
}

/// `TICKBRIDGE_CLAIM_CHECK_DELETE=after-commit` could not delete a
/// committed record's payload object: `WARN` (the bucket's lifecycle rule
/// is the backstop).
pub struct ClaimCheckNotDeleted<'a> {
    pub object: &'a dyn std::fmt::Display,
    pub error: &'a dyn std::fmt::Display,
}

impl ClaimCheckNotDeleted<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            object = %self.object, error = %self.error,
            "claim-check object not deleted after commit"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::s3::ObjectRef;
    use crate::telemetry::capture::{assert_no_debug, lines};

    fn report(status: ObjectStatus) -> ObjectReport {
        ObjectReport {
            object: ObjectRef {
                bucket: "b".into(),
                key: "k/x.csv".into(),
                version_id: None,
                etag: Some("e".into()),
            },
            status,
            resumed_after: 40,
            rows: 7,
            rows_per_table: BTreeMap::new(),
            quarantined: 1,
            bytes: 900,
            messages_sent: 2,
        }
    }

    /// Plain values only: the status a word, not `Bad { reason: … }`.
    #[test]
    fn object_lines_are_flat_with_a_plain_status() {
        let statuses = [
            ObjectStatus::Done,
            ObjectStatus::AlreadyDone,
            ObjectStatus::Bad {
                reason: "no header line".into(),
            },
            ObjectStatus::Pending {
                reason: "deadline".into(),
            },
        ];
        let logged = lines(|| {
            for s in statuses {
                ObjectRead {
                    report: &report(s),
                    ms: 12.345_678,
                }
                .emit();
            }
        });
        assert_eq!(logged.len(), 4);
        let got: Vec<(&str, &str)> = logged
            .iter()
            .map(|l| (l["level"].as_str().unwrap(), l["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("INFO", "done"),
                ("INFO", "already_done"),
                ("INFO", "bad"),
                ("WARN", "pending")
            ]
        );
        for l in &logged {
            assert_no_debug(l);
            assert_eq!(l["object"], "s3://b/k/x.csv");
            assert_eq!(l["object_ms"], 12.346);
            assert_eq!(l["resumed_after"], 40);
        }
        assert_eq!(logged[2]["reason"], "no header line");
        assert_eq!(logged[3]["reason"], "deadline");
    }

    #[test]
    fn refusals_and_clean_ups_name_the_object() {
        let logged = lines(|| {
            ObjectUpdateRefused {
                object: &"s3://b/k",
                table: "trade",
                rows: 3,
                q_error: "type",
            }
            .emit();
            ObjectQuarantined {
                object: &"s3://b/k",
                reason: "broken gzip",
            }
            .emit();
            ObjectClaimUnsettled {
                object: &"s3://b/k",
                error: &"throttled",
            }
            .emit();
            ClaimCheckNotDeleted {
                object: &"s3://b/p",
                error: &"access denied",
            }
            .emit();
        });
        let levels: Vec<&str> = logged
            .iter()
            .map(|l| l["level"].as_str().unwrap())
            .collect();
        assert_eq!(levels, ["ERROR", "WARN", "WARN", "WARN"]);
        assert_eq!(logged[0]["q_error"], "type");
        assert_eq!(logged[1]["reason"], "broken gzip");
        for l in &logged {
            assert_no_debug(l);
            assert!(l["object"].as_str().unwrap().starts_with("s3://b/"));
        }
    }
}
