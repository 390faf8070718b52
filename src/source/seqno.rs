//! Kinesis sequence numbers: decimal strings of up to 128 digits (real ones
//! have 56, emulators may give "1"). They are compared as numbers without
//! ever being parsed into a fixed-width integer.

use std::cmp::Ordering;

/// Numeric order of two decimal strings; leading zeros are ignored.
pub fn cmp_seq(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// A sequence number is 1..=128 ASCII digits.
pub fn is_valid_seq(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && all_digits(s.as_bytes())
}

/// Every byte an ASCII digit, eight at a time: every record's 56-digit
/// sequence number is checked, and a byte at a time that was 2% of the
/// event reader.
fn all_digits(b: &[u8]) -> bool {
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const DIGIT_HIGH: u64 = 0x3030_3030_3030_3030;
    const SIXES: u64 = 0x0606_0606_0606_0606;
    let mut chunks = b.chunks_exact(8);
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // Each byte 0x30..=0x3F, and still 0x3_ after adding 6 (no byte
        // carries into the next: 0x3F + 6 = 0x45).
        if x & HIGH_NIBBLES != DIGIT_HIGH || x.wrapping_add(SIXES) & HIGH_NIBBLES != DIGIT_HIGH {
            return false;
        }
    }
    chunks.remainder().iter().all(u8::is_ascii_digit)
}

/// A position within a shard: a sequence number and, for a user record of
/// a KPL aggregate, its subsequence number. A plain record, or a whole
/// aggregate, has no subsequence and sorts after every sub-record of its
/// sequence number: a bare checkpoint `S` covers all of `S`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position<'a> {
    pub seq: &'a str,
    pub sub: SubPos,
}

/// The subsequence part of a [`Position`], in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SubPos {
    /// A checkpoint whose subsequence is not a number (never written by
    /// the bridge): read as "before every sub-record", so nothing of its
    /// sequence number is skipped (a duplicate rather than a loss).
    Unreadable,
    At(u32),
    /// No subsequence: the whole Kinesis record.
    Whole,
}

impl<'a> Position<'a> {
    pub fn new(seq: &'a str, sub: Option<u32>) -> Position<'a> {
        Position {
            seq,
            sub: sub.map_or(SubPos::Whole, SubPos::At),
        }
    }

    /// Reads a lane checkpoint: `seq` or `seq:sub`. Checkpoints written
    /// before KPL support are bare sequence numbers and stay valid.
    pub fn parse_checkpoint(s: &'a str) -> Position<'a> {
        match s.split_once(':') {
            None => Position::new(s, None),
            Some((seq, sub)) => Position {
                seq,
                sub: sub.parse().map_or(SubPos::Unreadable, SubPos::At),
            },
        }
    }

    /// The checkpoint text for this position (see `parse_checkpoint`).
    pub fn checkpoint_text(&self) -> String {
        match self.sub {
            SubPos::Whole => self.seq.to_string(),
            SubPos::At(k) => format!("{}:{k}", self.seq),
            // Only a parse of foreign text gives this; never written back.
            SubPos::Unreadable => format!("{}:?", self.seq),
        }
    }

    /// Sequence number numerically (as strings), then subsequence.
    pub fn order(&self, other: &Position<'_>) -> Ordering {
        cmp_seq(self.seq, other.seq).then(self.sub.cmp(&other.sub))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_checked_eight_at_a_time_as_one_by_one() {
        for c in 0..=255u8 {
            for at in 0..19 {
                let mut b = [b'7'; 19];
                b[at] = c;
                for len in [at + 1, 8, 16, 19] {
                    let b = &b[..len.max(at + 1)];
                    assert_eq!(
                        all_digits(b),
                        b.iter().all(u8::is_ascii_digit),
                        "{c} at {at} of {b:?}"
                    );
                }
            }
        }
    }

    use std::cmp::Ordering::*;

    #[test]
    fn checkpoints_order_by_sequence_then_subsequence_and_bare_ones_stay_valid() {
        let cp = Position::parse_checkpoint;
        let rec = Position::new;
        // A bare checkpoint (every checkpoint written before KPL support)
        // covers every sub-record of its sequence number and nothing after.
        assert_eq!(rec("10", Some(0)).order(&cp("10")), Less);
        assert_eq!(rec("10", Some(u32::MAX)).order(&cp("10")), Less);
        assert_eq!(rec("10", None).order(&cp("10")), Equal);
        assert_eq!(rec("11", Some(0)).order(&cp("10")), Greater);
        assert_eq!(rec("9", None).order(&cp("10")), Less);
        // Partway through an aggregate: sub-records up to k are behind it.
        assert_eq!(rec("10", Some(2)).order(&cp("10:3")), Less);
        assert_eq!(rec("10", Some(3)).order(&cp("10:3")), Equal);
        assert_eq!(rec("10", Some(4)).order(&cp("10:3")), Greater);
        assert_eq!(rec("10", None).order(&cp("10:3")), Greater);
        // The sequence number still compares numerically, not as text.
        assert_eq!(rec("9", Some(7)).order(&cp("10:0")), Less);
        assert_eq!(rec("100", Some(0)).order(&cp("99:5")), Greater);
        assert_eq!(cp("10:3").order(&cp("10")), Less);
        assert_eq!(cp("9").order(&cp("10:0")), Less);
        // A subsequence that is no number skips nothing of its sequence.
        assert_eq!(rec("10", Some(0)).order(&cp("10:x")), Greater);
        assert_eq!(rec("9", None).order(&cp("10:x")), Less);
    }

    #[test]
    fn checkpoint_text_round_trips() {
        for text in [
            "49590338271490256608559692538361571095921575989136588898",
            "7:0",
            "7:41",
        ] {
            assert_eq!(Position::parse_checkpoint(text).checkpoint_text(), text);
        }
        assert_eq!(Position::new("7", None).checkpoint_text(), "7");
        assert_eq!(Position::new("7", Some(3)).checkpoint_text(), "7:3");
    }

    #[test]
    fn compares_numerically_not_lexically() {
        assert_eq!(cmp_seq("9", "10"), Less);
        assert_eq!(cmp_seq("10", "9"), Greater);
        assert_eq!(cmp_seq("007", "7"), Equal);
        let a = "49590338271490256608559692538361571095921575989136588898";
        let b = "49590338271490256608559692540925702759324208523137515618";
        assert_eq!(cmp_seq(a, b), Less);
        assert_eq!(cmp_seq(b, a), Greater);
        assert_eq!(cmp_seq(a, a), Equal);
        assert_eq!(cmp_seq("0", ""), Equal);
    }

    #[test]
    fn validates_digits_and_length() {
        assert!(is_valid_seq("1"));
        assert!(is_valid_seq(&"9".repeat(128)));
        assert!(!is_valid_seq(&"9".repeat(129)));
        assert!(!is_valid_seq(""));
        assert!(!is_valid_seq("12a"));
    }
}
