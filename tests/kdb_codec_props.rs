//! Property tests of the kdb+ codec: every value round-trips through the
//! encoder and decoder (as a body, as a message, and compressed), and no
//! byte string makes the decoder panic.

mod kgen;

use proptest::prelude::*;
use tickbridge::kdb::compress::{compress, decompress, decompress_limited};
use tickbridge::kdb::{
    decode, decode_message, decode_message_limited, decode_prefix, encode, encode_message,
    DecodeError, MsgType,
};

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn decode_inverts_encode(v in kgen::value(false)) {
        let body = encode(&v);
        prop_assert_eq!(tickbridge::kdb::encode::encoded_len(&v), body.len());
        prop_assert_eq!(decode(&body).expect("our own bytes decode"), v.clone());
        let (value, used) = decode_prefix(&body).expect("prefix decodes");
        prop_assert_eq!(used, body.len());
        prop_assert_eq!(value, v.clone());
        let msg = encode_message(&v, MsgType::Sync);
        let (header, back) = decode_message(&msg).expect("message decodes");
        prop_assert_eq!(header.msg_type, MsgType::Sync);
        prop_assert_eq!(back, v);
    }

    #[test]
    fn compressed_messages_decompress_to_the_same_bytes(v in kgen::value(false), pad in 0usize..3000) {
        // Padding with a repetitive symbol vector makes most cases large
        // and compressible, as a real update batch is.
        let v = tickbridge::kdb::K::list(vec![
            v,
            tickbridge::kdb::K::vector(tickbridge::kdb::Vector::Symbol(vec!["AAPL".into(); pad])),
        ]);
        let msg = encode_message(&v, MsgType::Async);
        let compressed = compress(&msg);
        if pad >= 1000 {
            prop_assert!(compressed.is_some(), "{} repeated symbols did not compress", pad);
        }
        if let Some(small) = compressed {
            prop_assert!(small.len() < msg.len());
            prop_assert_eq!(decompress(&small).expect("decompresses"), msg.clone());
            prop_assert_eq!(decode_message(&small).expect("decodes").1, v);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
        let _ = decode_prefix(&bytes);
        let _ = decode_message(&bytes);
        let _ = decompress(&bytes);
    }

    #[test]
    fn corrupted_encodings_never_panic(
        v in kgen::value(false),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        // Start from valid bytes so the decoder gets deep before the lie.
        let mut msg = encode_message(&v, MsgType::Async);
        for (at, byte) in &edits {
            let i = at.index(msg.len());
            msg[i] = *byte;
        }
        let _ = decode_message(&msg);
        let _ = decode(&msg[8..]);
        let _ = decode_message(&msg[..cut.index(msg.len() + 1)]);
        if let Some(mut small) = compress(&encode_message(&v, MsgType::Async)) {
            for (at, byte) in &edits {
                let i = at.index(small.len());
                small[i] = *byte;
            }
            let _ = decode_message(&small);
            let _ = decompress(&small);
        }
    }

    /// A compressed message whose uncompressed-length field lies (a little
    /// or wildly, up or down), optionally with corrupted stream bytes: the
    /// decompressor never panics, never returns more than the claim, and
    /// refuses a claim over the caller's limit as `TooLarge`.
    #[test]
    fn lying_uncompressed_lengths_are_errors_or_exact(
        v in kgen::value(false),
        pad in 200usize..1500,
        lie in prop_oneof![
            (-64i64..64).prop_map(Lie::By),
            any::<u32>().prop_map(Lie::To),
        ],
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        limit in prop_oneof![Just(usize::MAX), 0usize..100_000],
    ) {
        let v = tickbridge::kdb::K::list(vec![
            v,
            tickbridge::kdb::K::vector(tickbridge::kdb::Vector::Symbol(vec!["AAPL".into(); pad])),
        ]);
        let Some(mut small) = compress(&encode_message(&v, MsgType::Async)) else {
            return Ok(());
        };
        let truth = u32::from_le_bytes([small[8], small[9], small[10], small[11]]);
        let claimed = match lie {
            Lie::By(d) => (i64::from(truth) + d).clamp(0, i64::from(u32::MAX)) as u32,
            Lie::To(x) => x,
        };
        small[8..12].copy_from_slice(&claimed.to_le_bytes());
        for (at, byte) in &edits {
            // Leave the header and the claim as set: lie only in the stream.
            let i = 12 + at.index(small.len() - 12);
            small[i] = *byte;
        }
        match decompress_limited(&small, limit) {
            Ok(plain) => {
                prop_assert_eq!(plain.len(), claimed as usize);
                prop_assert!(plain.len() <= limit);
            }
            Err(DecodeError::TooLarge { claimed: c, max }) => {
                prop_assert_eq!(c, claimed as usize);
                prop_assert_eq!(max, limit);
                prop_assert!(c > limit);
            }
            Err(_) => prop_assert!(claimed as usize <= limit || claimed as usize <= 8),
        }
        let _ = decode_message_limited(&small, limit);
    }
}

#[derive(Clone, Copy, Debug)]
enum Lie {
    /// The true length moved by this much.
    By(i64),
    /// Any length at all.
    To(u32),
}

/// Lengths and counts that claim more than the bytes hold, or more than
/// memory could, are errors before any allocation is tried.
#[test]
fn absurd_counts_are_errors_not_allocations() {
    // A long vector claiming 2^31-1 items, a general list claiming as many,
    // and a message header claiming 4 GB.
    for body in [
        vec![7u8, 0, 0xff, 0xff, 0xff, 0x7f],
        vec![0u8, 0, 0xff, 0xff, 0xff, 0x7f, 0xf9],
        vec![11u8, 0, 0xff, 0xff, 0xff, 0x7f, b'a', 0],
    ] {
        assert!(decode(&body).is_err(), "{body:?}");
    }
    let header = [1u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
    assert!(decode_message(&header).is_err());
    // Compressed, claiming a 2 GB result from a few bytes.
    let lie = [1u8, 0, 1, 0, 16, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0];
    assert!(decode_message(&lie).is_err());
}
