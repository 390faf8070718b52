//! Listening, the handshake, and one task pair (reader, writer) per client.
//!
//! The reader decodes messages outside the state lock and answers sync ones
//! in order; the writer drains the connection's queue, which carries both
//! answers and publications so that their order is the order in which the
//! state produced them. What one client can make the stand-in hold is
//! bounded: its queue in bytes, the message being read by the maximum
//! message size (uncompressed too) and the read timeout, the number of
//! clients by the connection cap.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::kdb::compress::maybe_compress;
use crate::kdb::{decode_message_limited, encode_message, DecodeError, MsgType, K};

use super::frame::{read_message, ReadError};
use super::outbox::{outbox, Inbox};
use super::query::{classify, Request};
use super::state::{ConnLink, Now, Sending, State};
use super::users::Users;

/// Credentials longer than this are not a q handshake.
const MAX_HANDSHAKE: u64 = 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for connections to close.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Coalesces small messages into one read; larger bodies bypass it and are
/// read into a buffer that grows as they arrive (see `frame`). Small, since
/// every connection holds one for its life.
const READ_BUFFER: usize = 8 * 1024;
/// Coalesces a burst of queued messages into few writes; allocated per
/// burst, so an idle connection holds none.
const WRITE_BUFFER: usize = 64 * 1024;

/// What one client may cost.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest message a client may send, as sent and once decompressed.
    pub max_msg: usize,
    /// Bytes queued for one connection before it is dropped.
    pub queue_bytes: usize,
    /// Connections open at once (handshakes in progress included).
    pub max_connections: usize,
    /// Time for a message to arrive once its first byte has.
    pub read_timeout: Duration,
}

pub struct Shared {
    state: Mutex<State>,
    next_id: AtomicU64,
    /// Errors answered to sync calls or logged for async ones.
    pub errors: AtomicU64,
    pub users: Option<Users>,
    pub max_msg: usize,
    pub queue_bytes: usize,
    pub max_connections: usize,
    pub read_timeout: Duration,
    open: AtomicUsize,
    /// Connections refused at the cap since start.
    pub refused: AtomicU64,
}

impl Shared {
    pub fn new(state: State, users: Option<Users>, limits: Limits) -> Shared {
        Shared {
            state: Mutex::new(state),
            next_id: AtomicU64::new(1),
            errors: AtomicU64::new(0),
            users,
            max_msg: limits.max_msg,
            queue_bytes: limits.queue_bytes.max(1),
            max_connections: limits.max_connections.max(1),
            read_timeout: limits.read_timeout.max(Duration::from_millis(1)),
            open: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// The state; a panic elsewhere while holding the lock leaves the data
    /// as it was, which is still the best answer we have.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// A place for one more connection, or `None` at the cap (logged).
    fn admit(self: &Arc<Shared>, peer: &str) -> Option<Slot> {
        let max = self.max_connections;
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        match taken {
            Ok(_) => Some(Slot(self.clone())),
            Err(open) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    peer,
                    open,
                    max_connections = max,
                    "connection refused: already at --max-connections; closing it"
                );
                None
            }
        }
    }
}

/// One admitted connection; gives its place back when dropped.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
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
                    let name = peer.to_string();
                    // Refused by closing at once, before any handshake.
                    let Some(slot) = shared.admit(&name) else { continue };
                    let _ = stream.set_nodelay(true);
                    let local = peer.ip().is_loopback();
                    conns.spawn(serve(stream, local, name, slot, shutdown.clone()));
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
                    let Some(slot) = shared.admit("unix") else { continue };
                    conns.spawn(serve(stream, true, "unix".to_string(), slot, shutdown.clone()));
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

async fn serve<S>(stream: S, local: bool, peer: String, slot: Slot, shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = &*slot.0;
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
    let (out, inbox) = outbox(shared.queue_bytes);
    let (kill_tx, kill_rx) = watch::channel(false);
    let link = ConnLink {
        id,
        peer: peer.into(),
        out,
        kill: Arc::new(kill_tx),
        local,
    };
    let writer = tokio::spawn(write_loop(wr, inbox, link.kill.clone(), shutdown.clone()));
    read_loop(&mut rd, &link, shared, kill_rx, shutdown).await;
    shared.lock().drop_conn(id);
    drop(link);
    let _ = writer.await;
    tracing::info!(conn = id, "client disconnected");
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut inbox: Inbox,
    kill: Arc<watch::Sender<bool>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut killed = kill.subscribe();
    let result = {
        let work = async {
            while let Some(msg) = inbox.recv().await {
                let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, &mut wr);
                out.write_all(&msg).await?;
                inbox.written(&msg);
                drop(msg);
                // Batch whatever else is queued into as few writes as possible.
                while let Some(more) = inbox.try_recv() {
                    out.write_all(&more).await?;
                    inbox.written(&more);
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
    let _ = wr.shutdown().await;
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
            f = read_message(rd, shared.max_msg, shared.read_timeout) => f,
        };
        let (header, bytes) = match frame {
            Ok(f) => f,
            Err(ReadError::Closed) => return,
            Err(ReadError::Io(e)) => {
                tracing::debug!(conn = link.id, error = %e, "read failed");
                return;
            }
            Err(e @ ReadError::Unfinished { .. }) => {
                tracing::warn!(
                    conn = link.id,
                    peer = %link.peer,
                    error = %e,
                    "message not finished in time; closing the connection"
                );
                shared.errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e @ (ReadError::TooLarge { .. } | ReadError::BadHeader(_))) => {
                // The stream cannot be resynchronised after a bad header:
                // say why, then close.
                let name = if matches!(e, ReadError::TooLarge { .. }) {
                    "limit"
                } else {
                    "badmsg"
                };
                tracing::warn!(conn = link.id, peer = %link.peer, error = %e, "unreadable message; closing the connection");
                shared.errors.fetch_add(1, Ordering::Relaxed);
                reply(link, K::Error(name.into()));
                return;
            }
        };
        let sync = header.msg_type == MsgType::Sync;
        if header.msg_type == MsgType::Response {
            continue;
        }
        let decoded = decode_message_limited(&bytes, shared.max_msg);
        // The compressed bytes are not needed past this point.
        drop(bytes);
        let (answer, confirms) = match decoded {
            Ok((_, msg)) => {
                let request = classify(msg);
                let confirms = confirms_writes(&request);
                (handle(request, sync, link, shared), confirms)
            }
            Err(e @ DecodeError::TooLarge { .. }) => {
                // Refused before anything was allocated; the frame was read
                // whole, so the stream is intact and the client may go on.
                tracing::warn!(conn = link.id, peer = %link.peer, error = %e, "compressed message would pass --max-message-bytes once decompressed; refused");
                (Some(K::Error("limit".into())), false)
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
                if !reply(link, a) {
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
        Request::Chaser
            | Request::MsgCount
            | Request::Upd { .. }
            | Request::Undefined(_)
            | Request::Refuse(_)
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
        Request::Meta { table, keyed } => super::meta::meta(&shared.lock(), &table, keyed),
        Request::TypeOf(name) => super::meta::type_of(&shared.lock(), &name),
        Request::Undefined(name) => K::Error(name),
        Request::Refuse(e) => K::Error(e.into()),
    })
}

/// Queues a sync answer; false when the connection is being dropped (its
/// queue is over its bytes bound, or it is closing).
fn reply(link: &ConnLink, answer: K) -> bool {
    let msg = maybe_compress(encode_message(&answer, MsgType::Response), link.local);
    link.send(Arc::new(msg), Sending::Answer)
}
