//! What a replay did, record by record, and the summary table it ends with.

use std::fmt;

use crate::pipeline::RecordState;

/// Counts over a whole replay, with the reasons of what failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub dry_run: bool,
    /// Source messages (DLQ messages, on-failure records, event lines) read.
    pub messages: usize,
    pub records: usize,
    pub forwarded: usize,
    pub duplicates: usize,
    pub quarantined: usize,
    /// `(what, reason)` of every failed record or message.
    pub failed: Vec<(String, String)>,
    /// Reasons of quarantined (or in a dry run, undecodable) records.
    pub bad: Vec<(String, String)>,
    /// Source messages deleted (or moved, with redrive).
    pub deleted: usize,
    /// Source messages left in their queue.
    pub kept: usize,
    /// Messages moved to another queue (`--redrive-to`).
    pub redriven: usize,
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(dry_run: bool) -> Report {
        Report {
            dry_run,
            ..Report::default()
        }
    }

    /// Counts one replayed record by the state the pipeline left it in
    /// (in a dry run: the state a real run would leave it in). A pending
    /// record failed: its source message is kept for another replay.
    pub fn add(&mut self, what: &str, state: &RecordState) {
        self.records += 1;
        match state {
            RecordState::Forwarded => self.forwarded += 1,
            RecordState::Duplicate => self.duplicates += 1,
            RecordState::Quarantined { reason } => {
                self.quarantined += 1;
                self.bad.push((what.to_string(), reason.clone()));
            }
            RecordState::Pending { reason } => self.failed.push((what.to_string(), reason.clone())),
        }
    }

    /// A source message that could not be replayed at all.
    pub fn fail_message(&mut self, what: &str, reason: impl Into<String>) {
        self.failed.push((what.to_string(), reason.into()));
    }

    pub fn succeeded(&self) -> bool {
        self.failed.is_empty()
    }
}

/// At most this many reasons per list are printed; the counts are exact.
const SHOWN: usize = 20;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (fwd, quar, del) = if self.dry_run {
            ("would forward", "would quarantine", "would delete")
        } else {
            ("forwarded", "quarantined", "deleted")
        };
        let title = if self.dry_run {
            "replay summary (dry run: nothing forwarded, claimed or deleted)"
        } else {
            "replay summary"
        };
        writeln!(f, "{title}")?;
        let rows: [(&str, usize); 9] = [
            ("messages read", self.messages),
            ("records", self.records),
            (fwd, self.forwarded),
            ("duplicates skipped", self.duplicates),
            (quar, self.quarantined),
            ("failed", self.failed.len()),
            (del, self.deleted),
            ("redriven", self.redriven),
            ("messages kept", self.kept),
        ];
        for (name, n) in rows {
            writeln!(f, "  {name:<20} {n:>10}")?;
        }
        for (label, list) in [("failed", &self.failed), (quar, &self.bad)] {
            if list.is_empty() {
                continue;
            }
            writeln!(f, "{label}:")?;
            for (what, reason) in list.iter().take(SHOWN) {
                writeln!(f, "  {what}: {reason}")?;
            }
            if list.len() > SHOWN {
                writeln!(f, "  … and {} more", list.len() - SHOWN)?;
            }
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_table() {
        let mut r = Report::new(false);
        r.add("m1", &RecordState::Forwarded);
        r.add("m2", &RecordState::Duplicate);
        r.add(
            "m3",
            &RecordState::Quarantined {
                reason: "price: not a float".into(),
            },
        );
        r.add(
            "m4",
            &RecordState::Pending {
                reason: "tickerplant unavailable".into(),
            },
        );
        assert_eq!(
            (r.records, r.forwarded, r.duplicates, r.quarantined),
            (4, 1, 1, 1)
        );
        assert!(!r.succeeded());
        let text = r.to_string();
        assert!(text.contains("forwarded"), "{text}");
        assert!(text.contains("m4: tickerplant unavailable"), "{text}");
        assert!(text.contains("m3: price: not a float"), "{text}");
        let dry = Report::new(true).to_string();
        assert!(
            dry.contains("would forward") && dry.contains("dry run"),
            "{dry}"
        );
    }
}
