//! Listening, the handshake, and one task pair (reader, writer) per client.
//!
//! The reader decodes messages outside the state lock and answers sync ones
//! in order; the writer drains the connection's bounded queue, which carries
//! both answers and publications so that their order is the order in which
//! the state produced them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::kdb::compress::maybe_compress;
use crate::kdb::io::{read_frame, FrameError};
use crate::kdb::{decode_message, encode_message, MsgType, K};

use super::query::{classify, Request};
use super::state::{ConnLink, Now, Outbound, State};
use super::users::Users;

/// Credentials longer than this are not a q handshake.
const MAX_HANDSHAKE: u64 = 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for connections to close.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
const READ_BUFFER: usize = 256 * 1024;
const WRITE_BUFFER: usize = 256 * 1024;

pub struct Shared {
    state: Mutex<State>,
    next_id: AtomicU64,
    /// Errors answered to sync calls or logged for async ones.
    pub errors: AtomicU64,
    pub users: Option<Users>,
    pub max_msg: usize,
    pub queue: usize,
}

impl Shared {
    pub fn new(state: State, users: Option<Users>, max_msg: usize, queue: usize) -> Shared {
        Shared {
            state: Mutex::new(state),
            next_id: AtomicU64::new(1),
            errors: AtomicU64::new(0),
            users,
            max_msg,
            queue: queue.max(1),
        }
    }

    /// The state; a panic elsewhere while holding the lock leaves the data
    /// as it was, which is still the best answer we have.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Resolves once the flag is set (or its sender is gone). The guard that
/// `wait_for` returns is dropped here, so callers stay `Send`.
pub async fn raised(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}

pub async fn accept_tcp(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            _ = raised(&mut stop) => break,
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let local = peer.ip().is_loopback();
                    conns.spawn(serve(stream, local, peer.to_string(), shared.clone(), shutdown.clone()));
                }
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    finish(conns).await;
}

#[cfg(unix)]
pub async fn accept_unix(
    listener: tokio::net::UnixListener,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            _ = raised(&mut stop) => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    conns.spawn(serve(stream, true, "unix".to_string(), shared.clone(), shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    finish(conns).await;
}

async fn finish(mut conns: JoinSet<()>) {
    let drained = tokio::time::timeout(CLOSE_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = conns.len(),
            "connections still open at shutdown; aborting them"
        );
        conns.abort_all();
    }
}

/// Reads `user:password`, an optional capability byte, and the 0 that ends
/// a q handshake.
async fn read_handshake<R: AsyncRead + Unpin>(rd: &mut BufReader<R>) -> Option<(Vec<u8>, u8)> {
    let mut buf = Vec::new();
    (&mut *rd)
        .take(MAX_HANDSHAKE)
        .read_until(0, &mut buf)
        .await
        .ok()?;
    if buf.pop() != Some(0) {
        return None;
    }
    // Clients since kdb+ 2.6 put their protocol version before the 0; text
    // credentials never contain control bytes.
    let cap = match buf.last() {
        Some(&b) if b < 0x20 => {
            buf.pop();
            b
        }
        _ => 0,
    };
    Some((buf, cap))
}

async fn serve<S>(
    stream: S,
    local: bool,
    peer: String,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (rd, mut wr) = tokio::io::split(stream);
    let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
    let Ok(Some((credentials, cap))) =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, read_handshake(&mut rd)).await
    else {
        tracing::warn!(peer, "no valid handshake; closing");
        return;
    };
    let user = String::from_utf8_lossy(credentials.split(|&b| b == b':').next().unwrap_or(&[]))
        .into_owned();
    if let Some(users) = &shared.users {
        if !users.allows(&credentials) {
            // q answers a refused login by closing the socket.
            tracing::warn!(peer, user, "access refused");
            return;
        }
    }
    if wr.write_all(&[cap.min(3)]).await.is_err() {
        return;
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    tracing::info!(conn = id, peer, user, "client connected");
    let (tx, rx) = mpsc::channel(shared.queue);
    let (kill_tx, kill_rx) = watch::channel(false);
    let link = ConnLink {
        id,
        tx,
        kill: Arc::new(kill_tx),
        local,
    };
    let writer = tokio::spawn(write_loop(wr, rx, link.kill.clone(), shutdown.clone()));
    read_loop(&mut rd, &link, &shared, kill_rx, shutdown).await;
    shared.lock().drop_conn(id);
    drop(link);
    let _ = writer.await;
    tracing::info!(conn = id, "client disconnected");
}

async fn write_loop<W: AsyncWrite + Unpin>(
    wr: W,
    mut rx: mpsc::Receiver<Outbound>,
    kill: Arc<watch::Sender<bool>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, wr);
    let mut killed = kill.subscribe();
    let result = {
        let work = async {
            while let Some(msg) = rx.recv().await {
                out.write_all(&msg).await?;
                // Batch whatever else is queued into as few writes as possible.
                while let Ok(more) = rx.try_recv() {
                    out.write_all(&more).await?;
                }
                out.flush().await?;
            }
            Ok::<(), std::io::Error>(())
        };
        tokio::select! {
            r = work => r,
            _ = raised(&mut killed) => Ok(()),
            _ = raised(&mut shutdown) => Ok(()),
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "write failed; closing the connection");
        let _ = kill.send(true);
    }
    let _ = out.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    rd: &mut BufReader<R>,
    link: &ConnLink,
    shared: &Shared,
    mut kill: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let frame = tokio::select! {
            biased;
            _ = raised(&mut kill) => return,
            _ = raised(&mut shutdown) => return,
            f = read_frame(rd, shared.max_msg) => f,
        };
        let (header, bytes) = match frame {
            Ok(f) => f,
            Err(FrameError::Closed) => return,
            Err(FrameError::Io(e)) => {
                tracing::debug!(conn = link.id, error = %e, "read failed");
                return;
            }
            Err(e @ (FrameError::TooLarge { .. } | FrameError::Decode(_))) => {
                // The stream cannot be resynchronised after a bad header:
                // say why, then close.
                let name = if matches!(e, FrameError::TooLarge { .. }) {
                    "limit"
                } else {
                    "badmsg"
                };
                tracing::warn!(conn = link.id, error = %e, "unreadable message; closing the connection");
                shared.errors.fetch_add(1, Ordering::Relaxed);
                reply(link, K::Error(name.into())).await;
                return;
            }
        };
        let sync = header.msg_type == MsgType::Sync;
        if header.msg_type == MsgType::Response {
            continue;
        }
        let (answer, confirms) = match decode_message(&bytes) {
            Ok((_, msg)) => {
                let request = classify(msg);
                let confirms = confirms_writes(&request);
                (handle(request, sync, link, shared), confirms)
            }
            Err(e) => {
                tracing::warn!(conn = link.id, error = %e, "malformed message");
                (Some(K::Error("badmsg".into())), false)
            }
        };
        if let Some(K::Error(e)) = &answer {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            if !sync {
                tracing::warn!(conn = link.id, error = %e, "async message refused");
            }
        }
        if sync {
            if confirms {
                // The answer promises that everything before it is journaled.
                shared.lock().flush();
            }
            if let Some(a) = answer {
                if !reply(link, a).await {
                    return;
                }
            }
        }
    }
}

/// Sync requests that publishers use as confirmations: the chaser, `.u.i`,
/// `.u.upd` itself. Reads of the tables (`count t`, `t`, `tables[]`) say
/// nothing about durability and do not force a journal write.
fn confirms_writes(r: &Request) -> bool {
    matches!(
        r,
        Request::Chaser | Request::MsgCount | Request::Upd { .. } | Request::Refuse(_)
    )
}

/// Carries out one request; the answer for a sync caller, if it still needs
/// one (`.u.sub` queues its own).
fn handle(request: Request, sync: bool, link: &ConnLink, shared: &Shared) -> Option<K> {
    Some(match request {
        Request::Upd { table, x } => {
            let mut state = shared.lock();
            // Read under the lock, so stamps follow the order of `.u.i`.
            let now = Now::read();
            match state.upd(&table, x, now) {
                Ok(()) => K::Identity,
                Err(e) => K::Error(e),
            }
        }
        Request::Sub { table, syms } => match shared.lock().subscribe(link, &table, &syms, sync) {
            Ok(()) => return None,
            Err(e) => K::Error(e),
        },
        Request::Chaser => K::Identity,
        Request::MsgCount => K::Long(shared.lock().i),
        Request::Count(t) => match shared.lock().row_count(&t) {
            Some(n) => K::Long(n as i64),
            None => K::Error(t),
        },
        Request::Table(t) => match shared.lock().table(&t) {
            Some(table) => K::Table(table),
            None => K::Error(t),
        },
        Request::Tables => shared.lock().table_names(),
        Request::Refuse(e) => K::Error(e.into()),
    })
}

async fn reply(link: &ConnLink, answer: K) -> bool {
    let msg = maybe_compress(encode_message(&answer, MsgType::Response), link.local);
    link.tx.send(Arc::new(msg)).await.is_ok()
}
