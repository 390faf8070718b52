//! A loopback HTTP/1.1 proxy in front of an emulator (moto) that can delay
//! or answer requests itself, for faults the emulator cannot make: a slow
//! DynamoDB, a write refused between confirm and commit, an S3 download
//! that stalls mid-object.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// What the proxy does with one request, decided from its head.
#[derive(Clone, Copy)]
pub enum Action {
    Forward,
    /// Forward after this long.
    Delay(Duration),
    /// Answer `400` with this JSON body, as DynamoDB answers an error.
    Refuse(&'static str),
    /// Forward, but pass on only this many bytes of the response body,
    /// then hold the connection open sending nothing: a download stalled
    /// mid-way, so the client is caught with part of it read.
    Truncate(usize),
}

/// Reads one HTTP/1.1 message: the head (through the blank line) and a
/// `Content-Length` body. None at end of stream.
pub async fn read_http<R: AsyncRead + Unpin>(r: &mut R) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if r.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).ok()?;
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.ok()?;
    Some((head, body))
}

/// Starts the proxy; returns its `http://` URL. It runs until the test's
/// runtime ends.
pub async fn spawn(
    upstream: SocketAddr,
    decide: impl Fn(&str) -> Action + Send + Sync + Copy + 'static,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                while let Some((head, body)) = read_http(&mut client).await {
                    let action = decide(&head.to_ascii_lowercase());
                    match action {
                        Action::Refuse(err) => {
                            let reply = format!(
                                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n",
                                err.len()
                            );
                            if client.write_all(reply.as_bytes()).await.is_err()
                                || client.write_all(err.as_bytes()).await.is_err()
                            {
                                return;
                            }
                            continue;
                        }
                        Action::Delay(d) => tokio::time::sleep(d).await,
                        Action::Forward | Action::Truncate(_) => {}
                    }
                    let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    if up.write_all(head.as_bytes()).await.is_err()
                        || up.write_all(&body).await.is_err()
                    {
                        return;
                    }
                    let Some((rhead, rbody)) = read_http(&mut up).await else {
                        return;
                    };
                    let pass = match action {
                        Action::Truncate(n) => n.min(rbody.len()),
                        _ => rbody.len(),
                    };
                    if client.write_all(rhead.as_bytes()).await.is_err()
                        || client.write_all(&rbody[..pass]).await.is_err()
                    {
                        return;
                    }
                    if pass < rbody.len() {
                        // Until the client gives up or the test ends.
                        tokio::time::sleep(Duration::from_secs(600)).await;
                        return;
                    }
                }
            });
        }
    });
    url
}
