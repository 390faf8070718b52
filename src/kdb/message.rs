//! The 8-byte IPC message header and whole-message framing.
//!
//! Header: `endian msgtype compressed reserved len:u32`, where `len` counts
//! the header itself. We speak little-endian only; every platform kdb+ runs
//! on today is little-endian.

use super::compress;
use super::decode::{decode, DecodeError};
use super::io::DEFAULT_MAX_FRAME;
use super::value::K;

pub use super::types::HEADER_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgType {
    Async = 0,
    Sync = 1,
    Response = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub msg_type: MsgType,
    pub compressed: bool,
    /// Total message length including the header.
    pub len: usize,
}

pub fn push_header(out: &mut Vec<u8>, msg_type: MsgType, compressed: bool, len: usize) {
    out.extend_from_slice(&[1, msg_type as u8, compressed as u8, 0]);
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

/// Reads and checks a header. Unsupported headers are errors, never panics.
pub fn parse_header(b: &[u8]) -> Result<Header, DecodeError> {
    let h: &[u8; HEADER_LEN] =
        b.get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::Truncated {
                at: 0,
                need: HEADER_LEN,
            })?;
    if h[0] != 1 {
        return Err(DecodeError::BadHeader(format!(
            "endianness byte {} (only little-endian, 1, is supported)",
            h[0]
        )));
    }
    let msg_type = match h[1] {
        0 => MsgType::Async,
        1 => MsgType::Sync,
        2 => MsgType::Response,
        t => return Err(DecodeError::BadHeader(format!("message type {t}"))),
    };
    let compressed = match h[2] {
        0 => false,
        1 => true,
        c => {
            return Err(DecodeError::BadHeader(format!(
                "compression flag {c} (messages over 2 GB are not supported)"
            )))
        }
    };
    let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
    if len < HEADER_LEN + 1 {
        return Err(DecodeError::BadHeader(format!(
            "length {len} is shorter than a header and one byte"
        )));
    }
    Ok(Header {
        msg_type,
        compressed,
        len,
    })
}

/// Decodes one whole message (header included), decompressing if needed.
/// A compressed message may claim at most [`DEFAULT_MAX_FRAME`] bytes
/// uncompressed; [`decode_message_limited`] chooses the bound.
pub fn decode_message(b: &[u8]) -> Result<(Header, K), DecodeError> {
    decode_message_limited(b, DEFAULT_MAX_FRAME)
}

/// Decodes one whole message, refusing with [`DecodeError::TooLarge`] a
/// compressed one whose claimed uncompressed length (header included)
/// exceeds `max_uncompressed`, checked before allocating.
pub fn decode_message_limited(
    b: &[u8],
    max_uncompressed: usize,
) -> Result<(Header, K), DecodeError> {
    let header = parse_header(b)?;
    if b.len() < header.len {
        return Err(DecodeError::Truncated {
            at: b.len(),
            need: header.len - b.len(),
        });
    }
    let msg = &b[..header.len];
    let value = if header.compressed {
        let plain = compress::decompress_limited(msg, max_uncompressed)?;
        decode(&plain[HEADER_LEN..])?
    } else {
        decode(&msg[HEADER_LEN..])?
    };
    Ok((header, value))
}
