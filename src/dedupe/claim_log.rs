//! The memory store's record of the claims it granted, so that a claim
//! completed whole is completed by one write instead of one per key.
//!
//! A key a claim took holds the claim's number, not a state of its own: it
//! is in progress until the claim is completed, and completed after. The
//! pipeline completes the keys it claimed in the order it claimed them,
//! so `complete` usually names whole claims, and each one is found by
//! its first key and compared with its keys in one pass. A claim is
//! completed this way only while every key it took still holds its number
//! (none released, taken again or set since), so that the outcome is the
//! one of writing each key: keys completed any other way are written one
//! by one, as before.
//!
//! Completing 10,000 keys one by one meant 10,000 look-ups in tables the
//! rest of the batch had pushed out of the cache: the largest part of the
//! commit with payload keys on.

use hashbrown::HashTable;

/// Claims the log names before it is settled (every key given its own
/// state again, and the log emptied), whatever their size.
const MAX_CLAIMS: usize = 1 << 16;
/// Bytes of key text the open claims may hold before the log is settled.
const MAX_TEXT_BYTES: usize = 8 << 20;

/// A claim not completed yet: its keys, in the order claimed.
struct Open {
    number: u32,
    /// The keys one after the other; `ends[i]` is where key `i` ends.
    text: String,
    ends: Vec<u32>,
}

impl Open {
    fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| self.text.get(a as usize..b as usize).unwrap_or_default())
    }

    fn first(&self) -> &str {
        self.keys().next().unwrap_or_default()
    }
}

/// One claim of the log.
#[derive(Clone, Copy)]
struct Claimed {
    /// When it was completed whole: its keys' expiry (TTL, seconds).
    completed: Option<i64>,
    /// Its keys that still hold its number.
    intact: u32,
}

#[derive(Default)]
pub(super) struct ClaimLog {
    /// Per claim number.
    claims: Vec<Claimed>,
    /// Open claims, found by their first key's hash.
    open: HashTable<Open>,
    text_bytes: usize,
}

impl ClaimLog {
    /// The number the next claim gets.
    pub(super) fn next_number(&self) -> u32 {
        self.claims.len() as u32
    }

    /// When a claim number's keys expire, if it was completed whole.
    pub(super) fn completed(&self, number: u32) -> Option<i64> {
        self.claims.get(number as usize).and_then(|c| c.completed)
    }

    /// A key that held claim `number` was set to something else or
    /// removed: that claim can no longer be completed whole.
    pub(super) fn touched(&mut self, number: u32) {
        if let Some(c) = self.claims.get_mut(number as usize) {
            c.intact = c.intact.saturating_sub(1);
        }
    }

    /// Too many claims or too much key text: the store settles its keys
    /// and empties the log before the next claim.
    pub(super) fn is_full(&self) -> bool {
        self.claims.len() >= MAX_CLAIMS || self.text_bytes >= MAX_TEXT_BYTES
    }

    /// Forgets every claim; the keys no longer name any.
    pub(super) fn clear(&mut self) {
        self.claims.clear();
        self.open.clear();
        self.text_bytes = 0;
    }

    /// Records claim [`ClaimLog::next_number`], which took `keys` (in
    /// order, each set to hold its number; none: no claim is recorded).
    /// `hasher` hashes a key as the store's table does.
    pub(super) fn record<'k>(
        &mut self,
        keys: impl Iterator<Item = &'k str>,
        hasher: impl Fn(&str) -> u64,
    ) {
        let mut open = Open {
            number: self.next_number(),
            text: String::new(),
            ends: Vec::new(),
        };
        for k in keys {
            open.text.push_str(k);
            open.ends.push(open.text.len() as u32);
        }
        if open.ends.is_empty() {
            return;
        }
        self.claims.push(Claimed {
            completed: None,
            intact: open.ends.len() as u32,
        });
        let h = hasher(open.first());
        // One open claim per first key (a key claimed and released again
        // and again would otherwise pile up claims behind one hash): the
        // older one's keys are completed one by one if they ever are.
        if let Ok(older) = self.open.find_entry(h, |o| o.first() == open.first()) {
            self.text_bytes -= older.remove().0.text.len();
        }
        self.text_bytes += open.text.len();
        self.open.insert_unique(h, open, |o| hasher(o.first()));
    }

    /// If the keys `rest` starts with (the first of hash `h`) are exactly
    /// the keys of an open claim, all still holding its number, completes
    /// that claim, kept until `expires_at_s`, and returns how many keys it
    /// had.
    pub(super) fn complete_claim(
        &mut self,
        h: u64,
        rest: &[String],
        expires_at_s: i64,
    ) -> Option<usize> {
        let first = rest.first()?;
        let claims = &self.claims;
        let entry = self
            .open
            .find_entry(h, |o| {
                o.ends.len() <= rest.len()
                    && claims
                        .get(o.number as usize)
                        .is_some_and(|c| c.intact as usize == o.ends.len())
                    && o.first() == first.as_str()
                    && o.keys().zip(rest).all(|(a, b)| a == b.as_str())
            })
            .ok()?;
        let (open, _) = entry.remove();
        self.text_bytes -= open.text.len();
        if let Some(c) = self.claims.get_mut(open.number as usize) {
            c.completed = Some(expires_at_s);
        }
        Some(open.ends.len())
    }
}

/// The hasher the log's tests use in place of the store's.
#[cfg(test)]
fn test_hash(k: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(7).hash_one(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_claim_is_completed_when_its_keys_come_whole_and_in_order() {
        let mut log = ClaimLog::default();
        assert_eq!(log.next_number(), 0);
        log.record(["a", "b", "c"].into_iter(), test_hash);
        log.record(["d", ""].into_iter(), test_hash);
        // A claim of no key is no claim.
        log.record(std::iter::empty(), test_hash);
        assert_eq!(log.next_number(), 2);

        // Not whole, not in order, or more than the claim: not completed.
        for rest in [keys(&["a", "b"]), keys(&["a", "c", "b"]), keys(&["b", "c"])] {
            assert_eq!(log.complete_claim(test_hash(&rest[0]), &rest, 9), None);
        }
        assert_eq!(log.completed(0), None);
        // Whole, with keys after it: the claim's three are taken.
        let rest = keys(&["a", "b", "c", "d", ""]);
        assert_eq!(log.complete_claim(test_hash("a"), &rest, 9), Some(3));
        assert_eq!(log.completed(0), Some(9));
        assert_eq!(log.completed(1), None);
        // Once completed it is not open: the same keys again find nothing.
        assert_eq!(log.complete_claim(test_hash("a"), &rest, 10), None);
        assert_eq!(log.complete_claim(test_hash("d"), &rest[3..], 11), Some(2));
        assert_eq!(log.completed(1), Some(11));
        assert_eq!(log.text_bytes, 0);
        log.clear();
        assert_eq!(log.next_number(), 0);
        assert_eq!(log.completed(0), None);
    }

    #[test]
    fn a_claim_with_a_key_set_since_is_not_completed_whole() {
        let mut log = ClaimLog::default();
        log.record(["a", "b"].into_iter(), test_hash);
        log.touched(0);
        let rest = keys(&["a", "b"]);
        assert_eq!(log.complete_claim(test_hash("a"), &rest, 9), None);
        assert_eq!(log.completed(0), None);
        // A number the log does not have changes nothing.
        log.touched(7);
    }

    #[test]
    fn a_newer_claim_with_the_same_first_key_replaces_the_older() {
        let mut log = ClaimLog::default();
        log.record(["x", "y"].into_iter(), test_hash);
        log.record(["x", "z"].into_iter(), test_hash);
        assert_eq!(log.open.len(), 1);
        assert_eq!(
            log.complete_claim(test_hash("x"), &keys(&["x", "y"]), 5),
            None
        );
        assert_eq!(
            log.complete_claim(test_hash("x"), &keys(&["x", "z"]), 5),
            Some(2)
        );
        assert_eq!((log.completed(0), log.completed(1)), (None, Some(5)));
        assert_eq!(log.text_bytes, 0);
    }

    #[test]
    fn the_log_fills_by_claims_and_by_text() {
        let mut log = ClaimLog::default();
        let long = "k".repeat(MAX_TEXT_BYTES);
        log.record(std::iter::once(long.as_str()), test_hash);
        assert!(log.is_full());
        log.clear();
        for n in 0..MAX_CLAIMS {
            assert!(!log.is_full(), "full at {n}");
            log.record(std::iter::once("k"), test_hash);
        }
        assert!(log.is_full());
    }
}
