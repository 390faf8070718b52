//! The partial-batch response (DESIGN §5), built from the records' states.
//!
//! The pipeline processes each lane in order and stops it at its first
//! record that is not done (`Slots::settle_cuts`), so every record after a
//! pending one of its lane is pending too. What Lambda must be told then
//! differs by source:
//! - Kinesis retries from the lowest sequence number returned, so one entry
//!   per cut lane (its first unfinished record) is exact; records after it in
//!   other lanes come back as duplicates and their lane checkpoints skip them.
//! - SQS deletes every message the response leaves out, so the first
//!   unfinished message of a lane and every later one of that lane are listed.

use serde::Serialize;

use super::RecordState;
use crate::source::{lanes, Record, SourceKind};

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

/// A pending record with no identifier to report it by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {index} of lane {lane} is pending but has no identifier to report; the whole batch must be retried")]
pub struct Unnameable {
    pub lane: String,
    pub index: usize,
}

/// Builds the response for a batch from its records' states. An empty identifier
/// would make Lambda fail the whole batch in a way we do not control, and
/// skipping the record would lose it; so a pending record without one is an
/// error, which the handler turns into a function error (whole batch
/// retried, nothing lost). Sources reject such records before processing.
pub fn batch_response(
    records: &[Record],
    states: &[RecordState],
) -> Result<BatchResponse, Unnameable> {
    // The common batch: everything done, nothing to name, and no lanes to
    // form again (the pipeline formed them already).
    if states.len() >= records.len() && states.iter().all(RecordState::is_done) {
        return Ok(BatchResponse::default());
    }
    let mut failures = Vec::new();
    for lane in lanes(records) {
        let pending: Vec<usize> = lane
            .records
            .iter()
            .copied()
            .filter(|&i| !states.get(i).is_some_and(RecordState::is_done))
            .collect();
        let mut ids = Vec::with_capacity(pending.len());
        for &index in &pending {
            match records.get(index) {
                Some(r) if !r.failure_id.is_empty() => ids.push(r.failure_id.to_string()),
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

    const DONE: RecordState = RecordState::Forwarded;

    fn pending() -> RecordState {
        RecordState::Pending {
            reason: "test".into(),
        }
    }

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
            pointer_attribute: None,
            sub: None,
            kpl_note: None,
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
        // b2 failed, so the pipeline left b3 pending behind it.
        let out = vec![DONE, DONE, DONE, pending(), DONE, pending(), DONE];
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
        let out = vec![DONE, pending(), pending()];
        assert_eq!(ids(&batch_response(&recs, &out).unwrap()), vec!["101"]);
        let all_done = vec![DONE; 3];
        assert!(batch_response(&recs, &all_done)
            .unwrap()
            .is_complete_success());
    }

    #[test]
    fn response_never_holds_an_empty_identifier() {
        let k = SourceKind::Kinesis;
        let recs = vec![rec(k, "s1", "6"), rec(k, "s1", ""), rec(k, "s1", "7")];
        // A pending record that cannot be named fails the batch, never skipped.
        let err = batch_response(&recs, &[DONE, pending(), pending()]).unwrap_err();
        assert_eq!(err.index, 1);
        // Done records need no identifier.
        let resp = batch_response(&recs, &[DONE, DONE, pending()]).unwrap();
        assert_eq!(ids(&resp), vec!["7"]);
        let json = serde_json::to_string(&resp).expect("json");
        assert_eq!(json, r#"{"batchItemFailures":[{"itemIdentifier":"7"}]}"#);
    }
}
