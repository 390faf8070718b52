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
    let mut msg = vec![0u8; header.len];
    msg[..HEADER_LEN].copy_from_slice(&head);
    r.read_exact(&mut msg[HEADER_LEN..]).await?;
    Ok((header, msg))
}

pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, msg: &[u8]) -> std::io::Result<()> {
    w.write_all(msg).await?;
    w.flush().await
}
