//! The failure cut and the partial-batch response (DESIGN §5).
//!
//! Each lane is processed in order and stops at its first record that is not
//! done. What Lambda must be told differs by source:
//! - Kinesis retries from the lowest sequence number returned, so one entry
//!   per cut lane (its first unfinished record) is exact; records after it in
//!   other lanes come back as duplicates and their lane checkpoints skip them.
//! - SQS deletes every message the response leaves out, so the first
//!   unfinished message of a lane and every later one of that lane are listed.

use serde::Serialize;

use super::{lanes, Record, SourceKind};

/// What happened to one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Confirmed by the tickerplant, skipped as a duplicate, or quarantined:
    /// nothing more to do.
    Done,
    /// Not done (failed, cut, or never started): must be redelivered.
    Pending,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// The `{"batchItemFailures": [...]}` body both sources accept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

impl BatchResponse {
    pub fn is_complete_success(&self) -> bool {
        self.batch_item_failures.is_empty()
    }
}

/// Applies the lane cut to per-record outcomes: within a lane, everything
/// from the first pending record on is pending, even if a later record was
/// processed (it cannot be kept without breaking order on the retry).
pub fn apply_cut(records: &[Record], outcomes: &mut [Outcome]) {
    for lane in lanes(records) {
        let mut cut = false;
        for &i in &lane.records {
            match outcomes.get_mut(i) {
                Some(o) if cut => *o = Outcome::Pending,
                Some(o) if *o == Outcome::Pending => cut = true,
                _ => {}
            }
        }
    }
}

/// A pending record with no identifier to report it by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {index} of lane {lane} is pending but has no identifier to report; the whole batch must be retried")]
pub struct Unnameable {
    pub lane: String,
    pub index: usize,
}

/// Builds the response for a batch after `apply_cut`. An empty identifier
/// would make Lambda fail the whole batch in a way we do not control, and
/// skipping the record would lose it; so a pending record without one is an
/// error, which the handler turns into a function error (whole batch
/// retried, nothing lost). Sources reject such records before processing.
pub fn batch_response(
    records: &[Record],
    outcomes: &[Outcome],
) -> Result<BatchResponse, Unnameable> {
    let mut failures = Vec::new();
    for lane in lanes(records) {
        let pending: Vec<usize> = lane
            .records
            .iter()
            .copied()
            .filter(|&i| outcomes.get(i) != Some(&Outcome::Done))
            .collect();
        let mut ids = Vec::with_capacity(pending.len());
        for &index in &pending {
            match records.get(index) {
                Some(r) if !r.failure_id.is_empty() => ids.push(r.failure_id.clone()),
                _ => {
                    return Err(Unnameable {
                        lane: lane.id,
                        index,
                    })
                }
            }
        }
        match records.get(lane.records[0]).map(|r| r.kind) {
            Some(SourceKind::Kinesis) => failures.extend(ids.into_iter().take(1)),
            Some(SourceKind::SqsFifo) => failures.extend(ids),
            None => {}
        }
    }
    Ok(BatchResponse {
        batch_item_failures: failures
            .into_iter()
            .map(|item_identifier| ItemFailure { item_identifier })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::*;

    fn rec(kind: SourceKind, lane: &str, id: &str) -> Record {
        Record {
            kind,
            source_arn: "arn".into(),
            lane: lane.into(),
            position: id.into(),
            failure_id: id.into(),
            message_key: None,
            payload: vec![],
            arrival_ms: 0,
            defect: None,
        }
    }

    fn ids(r: &BatchResponse) -> Vec<&str> {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[test]
    fn sqs_reports_failed_message_and_every_later_one_of_its_group() {
        let k = SourceKind::SqsFifo;
        let recs = vec![
            rec(k, "A", "a1"),
            rec(k, "B", "b1"),
            rec(k, "C", "c1"),
            rec(k, "B", "b2"),
            rec(k, "A", "a2"),
            rec(k, "B", "b3"),
            rec(k, "C", "c2"),
        ];
        // b2 failed; b3 happened to succeed but must be redelivered after b2.
        let mut out = vec![Done, Done, Done, Pending, Done, Done, Done];
        apply_cut(&recs, &mut out);
        assert_eq!(out, vec![Done, Done, Done, Pending, Done, Pending, Done]);
        assert_eq!(ids(&batch_response(&recs, &out).unwrap()), vec!["b2", "b3"]);
    }

    #[test]
    fn kinesis_reports_first_pending_sequence_per_lane() {
        let k = SourceKind::Kinesis;
        let recs = vec![
            rec(k, "s1", "100"),
            rec(k, "s1", "101"),
            rec(k, "s1", "102"),
        ];
        let mut out = vec![Done, Pending, Done];
        apply_cut(&recs, &mut out);
        assert_eq!(ids(&batch_response(&recs, &out).unwrap()), vec!["101"]);
        let all_done = vec![Done; 3];
        assert!(batch_response(&recs, &all_done)
            .unwrap()
            .is_complete_success());
    }

    #[test]
    fn response_never_holds_an_empty_identifier() {
        let k = SourceKind::Kinesis;
        let recs = vec![rec(k, "s1", "6"), rec(k, "s1", ""), rec(k, "s1", "7")];
        // A pending record that cannot be named fails the batch, never skipped.
        let err = batch_response(&recs, &[Done, Pending, Pending]).unwrap_err();
        assert_eq!(err.index, 1);
        // Done records need no identifier.
        let resp = batch_response(&recs, &[Done, Done, Pending]).unwrap();
        assert_eq!(ids(&resp), vec!["7"]);
        let json = serde_json::to_string(&resp).expect("json");
        assert_eq!(json, r#"{"batchItemFailures":[{"itemIdentifier":"7"}]}"#);
    }
}
