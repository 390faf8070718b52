//! Reading one client message for the stand-in, with the bounds a server
//! open to many clients needs:
//!
//! - waiting for a message to start is not limited (subscribers are idle by
//!   nature), but once its first byte has arrived the whole message must
//!   arrive within the read timeout, or the connection is closed;
//! - the length in the header is checked against the maximum message size;
//! - the body buffer grows as bytes arrive, so a header claiming 60 MB that
//!   is followed by nothing costs nothing.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::kdb::message::{parse_header, Header, HEADER_LEN};
use crate::kdb::DecodeError;

/// The first allocation for a body; it doubles from here as bytes arrive.
const FIRST_CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("connection closed")]
    Closed,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    BadHeader(#[from] DecodeError),
    #[error("message of {len} bytes exceeds the limit of {max} (--max-message-bytes)")]
    TooLarge { len: usize, max: usize },
    #[error("{}", unfinished(*.got, *.len, *.timeout))]
    Unfinished {
        got: usize,
        len: Option<usize>,
        timeout: Duration,
    },
}

/// Reads one whole message (header included, still compressed if it was).
/// A clean end of stream before its first byte is `Closed`.
pub async fn read_message<R: AsyncRead + Unpin>(
    rd: &mut R,
    max: usize,
    timeout: Duration,
) -> Result<(Header, Vec<u8>), ReadError> {
    let mut head = [0u8; HEADER_LEN];
    let first = rd.read(&mut head).await?;
    if first == 0 {
        return Err(ReadError::Closed);
    }
    let mut got = first;
    let mut len = None;
    let rest = read_rest(rd, head, &mut got, &mut len, max);
    match tokio::time::timeout(timeout, rest).await {
        Ok(r) => r,
        Err(_) => Err(ReadError::Unfinished { got, len, timeout }),
    }
}

/// The rest of a started message; `got` and `len` tell a timeout how far
/// it came.
async fn read_rest<R: AsyncRead + Unpin>(
    rd: &mut R,
    mut head: [u8; HEADER_LEN],
    got: &mut usize,
    len: &mut Option<usize>,
    max: usize,
) -> Result<(Header, Vec<u8>), ReadError> {
    while *got < HEADER_LEN {
        let n = rd.read(&mut head[*got..]).await?;
        if n == 0 {
            return Err(eof());
        }
        *got += n;
    }
    let header = parse_header(&head)?;
    if header.len > max {
        return Err(ReadError::TooLarge {
            len: header.len,
            max,
        });
    }
    *len = Some(header.len);
    let mut msg = Vec::with_capacity(header.len.min(FIRST_CHUNK));
    msg.extend_from_slice(&head);
    while msg.len() < header.len {
        if msg.len() == msg.capacity() {
            // Double, but never past the announced length.
            let more = msg.capacity().min(header.len - msg.len());
            msg.reserve_exact(more);
        }
        let room = (msg.capacity() - msg.len()).min(header.len - msg.len());
        let n = (&mut *rd).take(room as u64).read_buf(&mut msg).await?;
        if n == 0 {
            return Err(eof());
        }
        *got += n;
    }
    Ok((header, msg))
}

fn unfinished(got: usize, len: Option<usize>, timeout: Duration) -> String {
    let ms = timeout.as_millis();
    match len {
        Some(len) => {
            format!("{got} of a {len}-byte message arrived within {ms} ms (--read-timeout-ms)")
        }
        None => format!(
            "{got} of an {HEADER_LEN}-byte header arrived within {ms} ms (--read-timeout-ms)"
        ),
    }
}

fn eof() -> ReadError {
    ReadError::Io(std::io::ErrorKind::UnexpectedEof.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn message(body: usize) -> Vec<u8> {
        let len = HEADER_LEN + body;
        let mut m = vec![1, 0, 0, 0];
        m.extend_from_slice(&(len as u32).to_le_bytes());
        m.extend((0..body).map(|i| i as u8));
        m
    }

    #[tokio::test]
    async fn whole_messages_in_small_pieces() {
        let want = message(300_000);
        let (mut a, mut b) = tokio::io::duplex(1000);
        let sent = want.clone();
        tokio::spawn(async move {
            for piece in sent.chunks(777) {
                a.write_all(piece).await.unwrap();
            }
        });
        let (h, got) = read_message(&mut b, 1 << 20, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(h.len, want.len());
        assert_eq!(got, want);
        assert!(got.capacity() <= want.len(), "no growth past the length");
        assert!(matches!(
            read_message(&mut b, 1 << 20, Duration::from_secs(5)).await,
            Err(ReadError::Closed)
        ));
    }

    #[tokio::test]
    async fn a_started_message_must_finish_in_time() {
        let (mut a, mut b) = tokio::io::duplex(1000);
        let m = message(100);
        a.write_all(&m[..50]).await.unwrap();
        let r = read_message(&mut b, 1 << 20, Duration::from_millis(50)).await;
        match r {
            Err(e @ ReadError::Unfinished { got, len, .. }) => {
                assert_eq!(got, 50);
                assert_eq!(len, Some(108));
                assert_eq!(
                    e.to_string(),
                    "50 of a 108-byte message arrived within 50 ms (--read-timeout-ms)"
                );
            }
            other => panic!("{other:?}"),
        }
        // a header cut short
        let (mut a, mut b) = tokio::io::duplex(1000);
        a.write_all(&m[..3]).await.unwrap();
        let r = read_message(&mut b, 1 << 20, Duration::from_millis(50)).await;
        assert!(
            matches!(
                r,
                Err(ReadError::Unfinished {
                    got: 3,
                    len: None,
                    ..
                })
            ),
            "{r:?}"
        );
        drop(a);
    }

    #[tokio::test]
    async fn an_idle_connection_does_not_time_out() {
        let (mut a, mut b) = tokio::io::duplex(1000);
        let m = message(10);
        let sent = m.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            a.write_all(&sent).await.unwrap();
        });
        let (_, got) = read_message(&mut b, 1 << 20, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(got, m);
    }

    #[tokio::test]
    async fn lengths_over_the_limit_are_refused_before_reading_on() {
        let (mut a, mut b) = tokio::io::duplex(1000);
        a.write_all(&message(0)[..4]).await.unwrap();
        a.write_all(&(1u32 << 30).to_le_bytes()).await.unwrap();
        let r = read_message(&mut b, 1 << 20, Duration::from_secs(5)).await;
        assert!(
            matches!(r, Err(ReadError::TooLarge { len, max }) if len == 1 << 30 && max == 1 << 20),
            "{r:?}"
        );
    }
}
