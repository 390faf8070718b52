//! A minimal Lambda runtime API on loopback (the calls a runtime makes:
//! `GET /next`, `POST .../response`, `POST .../error`), for `bench bridge`
//! and the adapter's tests to drive the real `bootstrap` binary.
//!
//! Built so that it costs the function under test as little as it can: each
//! event is handed out from bytes built before it was queued, with a
//! `Content-Length` (no chunking, no per-request serialization), over a
//! keep-alive connection with Nagle off. The time of an invocation is taken
//! here, from the moment `GET /next` starts to hand out the event to the
//! moment the response's body has been read: what Lambda would see.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

/// The function's answer to one event.
#[derive(Debug)]
pub enum Answer {
    /// `POST /runtime/invocation/{id}/response`.
    Response(Vec<u8>),
    /// `POST /runtime/invocation/{id}/error`: the error document.
    Error(Vec<u8>),
}

/// One invocation as the runtime API saw it.
#[derive(Debug)]
pub struct Invoked {
    pub answer: Answer,
    /// From handing out the event to having read the answer.
    pub elapsed: Duration,
}

/// The runtime API server; stops when dropped.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    shared: Arc<ApiState>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct ApiState {
    queue: Mutex<VecDeque<Queued>>,
    queued: Notify,
    /// Set by the first `GET /next`: the function is ready.
    ready: AtomicBool,
    /// When the event of each request id in flight was handed out.
    served: Mutex<Vec<(String, Instant)>>,
}

struct Queued {
    id: String,
    event: Arc<[u8]>,
    deadline_ms: i64,
}

enum Outcome {
    /// The first `GET /next` of the process.
    Ready,
    Answered {
        id: String,
        answer: Answer,
        elapsed: Option<Duration>,
    },
    /// `POST /runtime/init/error` or an unknown path.
    Other(String),
}

impl RuntimeApi {
    /// Listens on a free loopback port.
    pub async fn bind() -> anyhow::Result<RuntimeApi> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(ApiState::default());
        let (tx, outcomes) = mpsc::unbounded_channel();
        let state = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, tx) = (state.clone(), tx.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, state, tx).await;
                });
            }
        });
        Ok(RuntimeApi {
            addr,
            shared,
            outcomes,
            task,
        })
    }

    /// `AWS_LAMBDA_RUNTIME_API` for the function.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    async fn next_outcome(&mut self, limit: Duration) -> anyhow::Result<Outcome> {
        match tokio::time::timeout(limit, self.outcomes.recv()).await {
            Ok(Some(o)) => Ok(o),
            Ok(None) => anyhow::bail!("runtime API stopped"),
            Err(_) => anyhow::bail!("the function said nothing within {limit:?}"),
        }
    }

    /// Waits for the function's first `GET /next`.
    pub async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        match self.next_outcome(limit).await? {
            Outcome::Ready => Ok(()),
            Outcome::Other(e) => anyhow::bail!("the function reported: {e}"),
            Outcome::Answered { id, .. } => anyhow::bail!("an answer for {id} before any event"),
        }
    }

    /// Hands `event` to the function under request id `id` and waits for
    /// its answer. The deadline it is given is `limit` from now.
    pub async fn invoke(
        &mut self,
        id: &str,
        event: Arc<[u8]>,
        limit: Duration,
    ) -> anyhow::Result<Invoked> {
        let deadline_ms = tickbridge::pipeline::now_ms() + limit.as_millis() as i64;
        if let Ok(mut q) = self.shared.queue.lock() {
            q.push_back(Queued {
                id: id.to_string(),
                event,
                deadline_ms,
            });
        }
        self.shared.queued.notify_one();
        loop {
            match self.next_outcome(limit).await? {
                Outcome::Ready => continue,
                Outcome::Answered {
                    id: got,
                    answer,
                    elapsed,
                } => {
                    anyhow::ensure!(got == id, "an answer for {got}, not {id}");
                    let elapsed = elapsed
                        .ok_or_else(|| anyhow::anyhow!("an answer for {id}, never handed out"))?;
                    return Ok(Invoked { answer, elapsed });
                }
                Outcome::Other(e) => anyhow::bail!("the function reported: {e}"),
            }
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const PREFIX: &str = "/2018-06-01/runtime/";

/// One connection of the runtime client (keep-alive: many requests).
async fn serve(
    stream: TcpStream,
    state: Arc<ApiState>,
    tx: mpsc::UnboundedSender<Outcome>,
) -> anyhow::Result<()> {
    // Small heads and the tail of a body must not wait for an ACK.
    stream.set_nodelay(true)?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    loop {
        let Some((method, path, body)) = read_request(&mut rd).await? else {
            return Ok(());
        };
        let call = path.strip_prefix(PREFIX).unwrap_or(&path);
        if method == "GET" && call == "invocation/next" {
            if !state.ready.swap(true, Ordering::SeqCst) {
                let _ = tx.send(Outcome::Ready);
            }
            let next = loop {
                // Registered before looking, so a push in between still wakes us.
                let notified = state.queued.notified();
                let item = state.queue.lock().ok().and_then(|mut q| q.pop_front());
                match item {
                    Some(item) => break item,
                    None => notified.await,
                }
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                 Lambda-Runtime-Aws-Request-Id: {}\r\n\
                 Lambda-Runtime-Deadline-Ms: {}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:tickbridge-bench\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\
                 Content-Length: {}\r\n\r\n",
                next.id,
                next.deadline_ms,
                next.event.len()
            );
            if let Ok(mut s) = state.served.lock() {
                s.push((next.id.clone(), Instant::now()));
            }
            wr.write_all(head.as_bytes()).await?;
            wr.write_all(&next.event).await?;
        } else if method == "POST" {
            let answered = Instant::now();
            let parts: Vec<&str> = call.split('/').collect();
            let outcome = match parts.as_slice() {
                ["invocation", id, kind @ ("response" | "error")] => {
                    let served = state.served.lock().ok().and_then(|mut s| {
                        let at = s.iter().position(|(sid, _)| sid == id)?;
                        Some(s.swap_remove(at).1)
                    });
                    Outcome::Answered {
                        id: id.to_string(),
                        answer: if *kind == "response" {
                            Answer::Response(body)
                        } else {
                            Answer::Error(body)
                        },
                        elapsed: served.map(|at| answered.duration_since(at)),
                    }
                }
                _ => Outcome::Other(format!("{path}: {}", String::from_utf8_lossy(&body))),
            };
            let _ = tx.send(outcome);
            wr.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .await?;
        } else {
            wr.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await?;
        }
    }
}

/// Reads one HTTP/1.1 request: method, path, body (plain or chunked).
/// `None` when the client closed the connection.
async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(
    rd: &mut R,
) -> anyhow::Result<Option<(String, String, Vec<u8>)>> {
    let mut line = String::new();
    if rd.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let path = words.next().unwrap_or_default().to_string();
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        line.clear();
        if rd.read_line(&mut line).await? == 0 {
            anyhow::bail!("connection closed inside a request");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse()?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            rd.read_line(&mut line).await?;
            let size_text = line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size_text, 16)?;
            if size == 0 {
                // Trailers, then the blank line.
                loop {
                    line.clear();
                    if rd.read_line(&mut line).await? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size + 2, 0);
            rd.read_exact(&mut body[start..]).await?;
            body.truncate(start + size);
        }
    } else {
        body.resize(length, 0);
        rd.read_exact(&mut body).await?;
    }
    Ok(Some((method, path, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_plain_and_chunked_requests() {
        let raw: &[u8] = b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\n\
            content-length: 5\r\n\r\nhello\
            POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let mut rd = BufReader::new(raw);
        let (m, p, b) = read_request(&mut rd).await.unwrap().unwrap();
        assert_eq!(
            (m.as_str(), p.as_str(), b.as_slice()),
            (
                "POST",
                "/2018-06-01/runtime/invocation/r1/response",
                &b"hello"[..]
            )
        );
        let (_, p, b) = read_request(&mut rd).await.unwrap().unwrap();
        assert_eq!((p.as_str(), b.as_slice()), ("/x", &b"abcde"[..]));
        assert!(read_request(&mut rd).await.unwrap().is_none());
    }

    /// A client that speaks the protocol by hand: the event arrives with its
    /// headers and exact bytes, and the answer is timed and returned.
    #[tokio::test]
    async fn hands_out_an_event_and_collects_its_answer() {
        let mut api = RuntimeApi::bind().await.unwrap();
        let addr = api.addr;
        let client = tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            let (rd, mut wr) = stream.into_split();
            let mut rd = BufReader::new(rd);
            wr.write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n")
                .await
                .unwrap();
            let mut head = String::new();
            let mut length = 0;
            let mut id = String::new();
            loop {
                head.clear();
                rd.read_line(&mut head).await.unwrap();
                let h = head.trim_end().to_ascii_lowercase();
                if h.is_empty() {
                    break;
                }
                if let Some(v) = h.strip_prefix("content-length: ") {
                    length = v.parse().unwrap();
                }
                if let Some(v) = h.strip_prefix("lambda-runtime-aws-request-id: ") {
                    id = v.to_string();
                }
            }
            let mut body = vec![0; length];
            rd.read_exact(&mut body).await.unwrap();
            let answer = format!(
                "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            );
            wr.write_all(answer.as_bytes()).await.unwrap();
            wr.write_all(&body).await.unwrap();
            let mut ack = String::new();
            rd.read_line(&mut ack).await.unwrap();
            ack
        });
        api.wait_ready(Duration::from_secs(5)).await.unwrap();
        let event: Arc<[u8]> = Arc::from(&br#"{"Records":["caf\u00e9"]}"#[..]);
        let got = api
            .invoke("r-1", event.clone(), Duration::from_secs(5))
            .await
            .unwrap();
        match got.answer {
            Answer::Response(body) => assert_eq!(body, &event[..]),
            Answer::Error(e) => panic!("error: {}", String::from_utf8_lossy(&e)),
        }
        assert!(got.elapsed > Duration::ZERO);
        assert!(client.await.unwrap().starts_with("HTTP/1.1 202"));
    }
}
