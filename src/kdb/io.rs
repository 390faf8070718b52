//! Reading and writing whole IPC frames on async streams, shared by the
//! client and the tickerplant stand-in.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::decode::DecodeError;
use super::message::{parse_header, Header, HEADER_LEN};

/// Frames larger than this are refused unless a caller allows more: a lying
/// length must not make us allocate gigabytes.
pub const DEFAULT_MAX_FRAME: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
}

/// Reads one whole message (header included, still compressed if it was).
/// A clean end of stream before the first byte is `Closed`.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<(Header, Vec<u8>), FrameError> {
    let mut head = [0u8; HEADER_LEN];
    let first = r.read(&mut head).await?;
    if first == 0 {
        return Err(FrameError::Closed);
    }
    r.read_exact(&mut head[first..]).await?;
    let header = parse_header(&head)?;
    if header.len > max {
        return Err(FrameError::TooLarge {
            len: header.len,
            max,
        });
    }
    // Grown as bytes arrive, not sized from the header: a peer that claims
    // a large message and sends little costs only what it sent.
    let mut msg = Vec::with_capacity(header.len.min(FIRST_READ));
    msg.extend_from_slice(&head);
    while msg.len() < header.len {
        let start = msg.len();
        // At most doubling, never past the claimed length.
        let want = (header.len - start).min(start.max(FIRST_READ));
        msg.reserve_exact(want);
        msg.resize(start + want, 0);
        r.read_exact(&mut msg[start..]).await?;
    }
    Ok((header, msg))
}

/// The buffer a frame starts with before it has shown its bytes.
const FIRST_READ: usize = 64 * 1024;

pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, msg: &[u8]) -> std::io::Result<()> {
    w.write_all(msg).await?;
    w.flush().await
}
