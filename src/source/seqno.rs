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
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

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
