//! Decompression bombs: a compressed message's claimed uncompressed size is
//! checked against a maximum before anything is allocated, and decoding
//! hostile counts reserves no more than the bytes can back.
//!
//! A counting global allocator (this test binary only) measures the peak of
//! live heap bytes while each decode runs, so "before allocating" is a
//! measured fact, not a reading of the code. Tests run one at a time under
//! a lock so one's allocations do not count in another's peak.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tickbridge::kdb::compress::{compress, decompress_limited};
use tickbridge::kdb::io::{read_frame, FrameError, DEFAULT_MAX_FRAME};
use tickbridge::kdb::{
    decode, decode_message, decode_message_limited, encode_message, DecodeError, MsgType, Vector, K,
};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `f` and returns its result and the most heap it held above what
/// was live when it started.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst).saturating_sub(base))
}

const MIB: usize = 1024 * 1024;

/// A compressed message of `body` bytes of noise claiming `claimed` bytes
/// uncompressed (header included), as a hostile peer would send.
fn bomb(body: usize, claimed: u32) -> Vec<u8> {
    let len = 12 + body;
    let mut msg = vec![1u8, 2, 1, 0];
    msg.extend_from_slice(&(len as u32).to_le_bytes());
    msg.extend_from_slice(&claimed.to_le_bytes());
    // Flag bytes of zero: all literals, the cheapest stream to "expand".
    msg.resize(len, 0);
    msg
}

#[test]
fn a_claimed_gigabyte_is_refused_before_it_is_allocated() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The case: about 8.9 MB claiming 1 GiB (within the format's
    // widest ratio, so only the size limit stops it).
    let msg = bomb(9 * MIB - 12, 1 << 30);
    let (got, peak) = peak_during(|| decode_message(&msg));
    assert_eq!(
        got.err(),
        Some(DecodeError::TooLarge {
            claimed: 1 << 30,
            max: DEFAULT_MAX_FRAME
        })
    );
    assert!(peak < MIB, "held {peak} bytes refusing a bomb");

    // A caller's own, smaller limit.
    let (got, peak) = peak_during(|| decode_message_limited(&msg, 64 * MIB));
    let err = got.expect_err("over the limit");
    assert_eq!(
        err,
        DecodeError::TooLarge {
            claimed: 1 << 30,
            max: 64 * MIB
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "compressed message claims {} uncompressed bytes, over the limit of {}",
            1u64 << 30,
            64 * MIB
        )
    );
    assert!(peak < MIB, "held {peak} bytes refusing a bomb");
}

#[test]
fn the_limit_is_exact_and_counts_the_header() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let v = K::vector(Vector::Symbol(vec!["AAPL".into(); 100_000]));
    let plain = encode_message(&v, MsgType::Async);
    let packed = compress(&plain).expect("compressible");
    let true_len = plain.len();
    assert_eq!(
        decode_message_limited(&packed, true_len - 1).err(),
        Some(DecodeError::TooLarge {
            claimed: true_len,
            max: true_len - 1
        })
    );
    assert_eq!(
        decompress_limited(&packed, true_len - 1).err(),
        Some(DecodeError::TooLarge {
            claimed: true_len,
            max: true_len - 1
        })
    );
    let (got, peak) = peak_during(|| decode_message_limited(&packed, true_len));
    assert_eq!(got.expect("at the limit decodes").1, v);
    // The uncompressed bytes plus 100k decoded strings, no more than a
    // small multiple of the message itself.
    assert!(
        peak < 16 * true_len,
        "held {peak} for a {true_len}-byte message"
    );
}

#[test]
fn hostile_counts_reserve_no_more_than_the_bytes_back() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A general list and a symbol vector whose counts fit the bytes that
    // follow (2 and 1 bytes per item) but whose items are not there as
    // values: each decodes to an error, having reserved little.
    let n: usize = 4 * MIB;
    let mut list = vec![0u8, 0];
    list.extend_from_slice(&(n as u32).to_le_bytes());
    list.resize(6 + 2 * n, 20); // 20 (an enum) is a type we refuse
    let mut syms = vec![11u8, 0];
    syms.extend_from_slice(&(n as u32).to_le_bytes());
    syms.resize(6 + n, b'a'); // never terminated
    for body in [list, syms] {
        let (got, peak) = peak_during(|| decode(&body));
        assert!(got.is_err());
        assert!(
            peak < 8 * MIB,
            "reserved {peak} bytes for a {}-byte body",
            body.len()
        );
    }
}

/// A frame header claiming far more than is sent costs only what is sent,
/// and a whole frame arrives byte-exact as the buffer grows.
#[test]
fn a_lying_frame_length_costs_only_the_bytes_sent() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // 200 MB claimed, 1 KB sent, then the end of the stream.
    let mut lie = vec![1u8, 0, 0, 0];
    lie.extend_from_slice(&(200 * MIB as u32).to_le_bytes());
    lie.resize(8 + 1024, 7);
    let (got, peak) =
        peak_during(|| rt.block_on(read_frame(&mut lie.as_slice(), DEFAULT_MAX_FRAME)));
    assert!(
        matches!(got, Err(FrameError::Io(ref e)) if e.kind() == std::io::ErrorKind::UnexpectedEof)
    );
    assert!(peak < MIB, "held {peak} bytes for a 1 KB lie");

    // A real 3 MB message, read in growing pieces, is the same bytes.
    let v = K::vector(Vector::Long((0..400_000).collect()));
    let msg = encode_message(&v, MsgType::Async);
    let (got, peak) =
        peak_during(|| rt.block_on(read_frame(&mut msg.as_slice(), DEFAULT_MAX_FRAME)));
    let (header, bytes) = got.expect("a whole frame");
    assert_eq!(header.len, msg.len());
    assert_eq!(bytes, msg);
    assert!(
        peak < 2 * msg.len(),
        "held {peak} for a {}-byte frame",
        msg.len()
    );
}
