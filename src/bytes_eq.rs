//! Equality of short byte strings without a call to `memcmp`.
//!
//! The per-record loops compare many short texts that mostly agree: a
//! record's stream ARN, shard and partition key against the previous
//! record's, a route field against each table's value. As calls to glibc's
//! `memcmp` those comparisons were about 4% of the Lambda function's
//! samples; compared here, eight bytes at a time, they are inlined.

/// `a == b`, inlined.
#[inline]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut wa, mut wb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in wa.by_ref().zip(wb.by_ref()) {
        if word(x) != word(y) {
            return false;
        }
    }
    wa.remainder()
        .iter()
        .zip(wb.remainder())
        .all(|(x, y)| x == y)
}

/// Whether `rest` (a JSON text just after an opening quote) holds
/// `seen` and then the closing quote. When `seen` was read before as a
/// whole string without escapes or control characters, such a `rest`
/// holds that same plain string again: the event reader and the JSON tape
/// compare a record's strings with the previous record's this way rather
/// than scan them.
#[inline]
pub(crate) fn repeats_string(rest: &[u8], seen: &[u8]) -> bool {
    let n = seen.len();
    rest.get(n) == Some(&b'"') && rest.get(..n).is_some_and(|r| bytes_eq(r, seen))
}

/// `a == b` for texts, inlined.
#[inline]
pub(crate) fn str_eq(a: &str, b: &str) -> bool {
    bytes_eq(a.as_bytes(), b.as_bytes())
}

#[inline]
fn word(chunk: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(chunk);
    u64::from_ne_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_slice_equality() {
        let base: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for len in 0..base.len() {
            let a = &base[..len];
            assert!(bytes_eq(a, a));
            assert!(!bytes_eq(a, &base[..len + 1]));
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 0x20;
                assert_eq!(bytes_eq(a, &b), a == b.as_slice(), "{len} {at}");
                assert!(!bytes_eq(a, &b));
            }
        }
        assert!(str_eq(
            "arn:aws:kinesis:us-east-1:1:stream/s",
            "arn:aws:kinesis:us-east-1:1:stream/s"
        ));
        assert!(!str_eq("trade", "quote"));
    }

    #[test]
    fn a_string_repeats_only_with_its_closing_quote_right_after() {
        assert!(repeats_string(br#"type":1"#, b"type"));
        assert!(repeats_string(br#"":1"#, b""));
        assert!(!repeats_string(br#"types":1"#, b"type"));
        assert!(!repeats_string(br#"typ":1"#, b"type"));
        assert!(!repeats_string(br#"tipe":1"#, b"type"));
        assert!(!repeats_string(b"type", b"type"));
    }
}
