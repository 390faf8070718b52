//! kdb+ IPC compression.
//!
//! The format is a byte-oriented LZ scheme: a flag byte announces the next
//! eight items; a clear bit is one literal byte, a set bit is a pair
//! `(slot, extra)`: copy 2 + `extra` bytes from the position remembered in
//! hash slot `slot`. Both sides keep a 256-slot table indexed by the XOR of
//! two adjacent bytes and update it identically, so the compressor must
//! mirror exactly when the decompressor inserts positions: after each item,
//! every position up to two before the write cursor; positions inside the
//! tail of a copied run are never inserted.
//!
//! The compressed body starts with the uncompressed message length (header
//! included); the header's byte 2 is 1.

use super::decode::DecodeError;
use super::io::DEFAULT_MAX_FRAME;
use super::types::HEADER_LEN;

/// kdb+ compresses only messages larger than this, and only for remote peers.
pub const MIN_COMPRESS_LEN: usize = 2000;

/// The widest expansion the format allows (about 121x); a claimed
/// uncompressed size beyond it is a lie and is refused before allocating.
const MAX_RATIO: usize = 128;

fn bad(msg: impl Into<String>) -> DecodeError {
    DecodeError::Compression(msg.into())
}

/// Decompresses a whole compressed message; returns the whole uncompressed
/// message, header rewritten (compressed flag cleared, true length).
/// The claimed uncompressed size is bounded by [`DEFAULT_MAX_FRAME`]; use
/// [`decompress_limited`] to choose the bound.
pub fn decompress(msg: &[u8]) -> Result<Vec<u8>, DecodeError> {
    decompress_limited(msg, DEFAULT_MAX_FRAME)
}

/// Like [`decompress`], refusing with [`DecodeError::TooLarge`] a message
/// whose claimed uncompressed length (header included) exceeds
/// `max_uncompressed`, before anything is allocated: the claim is the
/// sender's word, and a few megabytes may claim a gigabyte.
pub fn decompress_limited(msg: &[u8], max_uncompressed: usize) -> Result<Vec<u8>, DecodeError> {
    if msg.len() < HEADER_LEN + 4 {
        return Err(bad("shorter than a header and a length"));
    }
    let total = u32::from_le_bytes([msg[8], msg[9], msg[10], msg[11]]) as usize;
    let src = &msg[HEADER_LEN + 4..];
    if total <= HEADER_LEN {
        return Err(bad(format!("uncompressed length {total} is too small")));
    }
    if total > max_uncompressed {
        return Err(DecodeError::TooLarge {
            claimed: total,
            max: max_uncompressed,
        });
    }
    if total - HEADER_LEN > src.len().saturating_mul(MAX_RATIO) {
        return Err(bad(format!(
            "uncompressed length {total} is impossible for {} compressed bytes",
            src.len()
        )));
    }
    let mut dst = vec![0u8; total];
    dst[..4].copy_from_slice(&[msg[0], msg[1], 0, msg[3]]);
    dst[4..8].copy_from_slice(&(total as u32).to_le_bytes());

    let mut slots = [0usize; 256];
    let (mut s, mut p, mut d) = (HEADER_LEN, HEADER_LEN, 0usize);
    let (mut flags, mut bit) = (0u8, 0u16);
    let next = |d: &mut usize| -> Result<u8, DecodeError> {
        let b = *src
            .get(*d)
            .ok_or_else(|| bad("compressed stream ends early"))?;
        *d += 1;
        Ok(b)
    };
    while s < total {
        if bit == 0 {
            flags = next(&mut d)?;
            bit = 1;
        }
        let run_extra = if flags as u16 & bit != 0 {
            let r = slots[next(&mut d)? as usize];
            let extra = next(&mut d)? as usize;
            if r < HEADER_LEN || r + 2 > s {
                return Err(bad(format!("back-reference to an empty slot at {s}")));
            }
            if s + 2 + extra > total {
                return Err(bad(format!("run at {s} overflows the message")));
            }
            // Byte by byte: runs may overlap their own output.
            for m in 0..2 + extra {
                dst[s + m] = dst[r + m];
            }
            s += 2;
            Some(extra)
        } else {
            dst[s] = next(&mut d)?;
            s += 1;
            None
        };
        while p + 1 < s {
            slots[(dst[p] ^ dst[p + 1]) as usize] = p;
            p += 1;
        }
        if let Some(extra) = run_extra {
            s += extra;
            p = s;
        }
        bit = if bit == 128 { 0 } else { bit << 1 };
    }
    Ok(dst)
}

/// Compresses a whole uncompressed message (header included). Returns `None`
/// when the result would not be under half the original, as kdb+ does.
pub fn compress(msg: &[u8]) -> Option<Vec<u8>> {
    let total = msg.len();
    if total <= HEADER_LEN + 4 {
        return None;
    }
    let limit = total / 2;
    let mut out = Vec::with_capacity(limit + 16);
    out.extend_from_slice(&[msg[0], msg[1], 1, msg[3], 0, 0, 0, 0]);
    out.extend_from_slice(&(total as u32).to_le_bytes());

    let mut slots = [0usize; 256];
    let (mut s, mut p) = (HEADER_LEN, HEADER_LEN);
    let (mut flag_at, mut bit) = (0usize, 0u16);
    while s < total {
        if bit == 0 {
            if out.len() >= limit {
                return None;
            }
            flag_at = out.len();
            out.push(0);
            bit = 1;
        }
        let mut run_extra = None;
        if s + 1 < total {
            let h = msg[s] ^ msg[s + 1];
            let r = slots[h as usize];
            if r != 0 && msg[r] == msg[s] && msg[r + 1] == msg[s + 1] {
                let max = (total - s - 2).min(255);
                let mut extra = 0;
                while extra < max && msg[r + 2 + extra] == msg[s + 2 + extra] {
                    extra += 1;
                }
                out[flag_at] |= bit as u8;
                out.push(h);
                out.push(extra as u8);
                s += 2;
                run_extra = Some(extra);
            }
        }
        if run_extra.is_none() {
            out.push(msg[s]);
            s += 1;
        }
        while p + 1 < s {
            slots[(msg[p] ^ msg[p + 1]) as usize] = p;
            p += 1;
        }
        if let Some(extra) = run_extra {
            s += extra;
            p = s;
        }
        bit = if bit == 128 { 0 } else { bit << 1 };
    }
    if out.len() >= limit {
        return None;
    }
    let len = out.len() as u32;
    out[4..8].copy_from_slice(&len.to_le_bytes());
    Some(out)
}

/// What a sender does with its own message: compress when the peer is not
/// local and the message is large and shrinks to under half.
pub fn maybe_compress(msg: Vec<u8>, peer_is_local: bool) -> Vec<u8> {
    if peer_is_local || msg.len() <= MIN_COMPRESS_LEN {
        return msg;
    }
    compress(&msg).unwrap_or(msg)
}
