//! An async kdb+ IPC client: connect (TCP, TLS or Unix socket), handshake,
//! async sends, sync queries and the chaser that confirms what came before.
//!
//! A `Connection` is one socket. Once any I/O on it fails or times out it is
//! marked broken and refuses further use: after a timeout the peer may still
//! answer, and a late reply would be taken for the answer to the next query.
//! `Publisher` owns a connection and opens a new one when it breaks.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};
use tracing::{debug, warn};

use super::compress::{self, MIN_COMPRESS_LEN};
use super::decode::DecodeError;
use super::encode::{encode_into, encoded_len};
use super::io::{read_frame, FrameError, DEFAULT_MAX_FRAME};
use super::message::{decode_message_limited, parse_header, push_header, MsgType, HEADER_LEN};
use super::value::K;

mod publisher;
mod target;
mod tls;

pub use publisher::{Publisher, RetryPolicy};
pub use target::Target;

/// The IPC capability we ask for: 3 allows compression and messages up to
/// 2 GB, which is all this codec speaks.
pub const CAPABILITY: u8 = 3;

/// The step that was under way when a timeout struck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Handshake,
    Read,
    Write,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Handshake => "handshake",
            Stage::Read => "read",
            Stage::Write => "write",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out during {stage}")]
    Timeout { stage: Stage },
    #[error("access denied by {target} (bad user:password?)")]
    AccessDenied { target: String },
    /// An error the kdb+ process returned, e.g. `type` for `'type`.
    #[error("remote error: '{0}")]
    Remote(String),
    #[error("undecodable message: {0}")]
    Decode(#[from] DecodeError),
    #[error("bad frame: {0}")]
    Frame(FrameError),
    #[error("connection closed")]
    Closed,
    #[error("bad target {0}")]
    BadTarget(String),
    /// A call that makes no sense in the connection's state (no reply is
    /// awaited, an async message where a sync one is needed), refused
    /// before any I/O: the connection is unaffected.
    #[error("not sent: {0}")]
    Misuse(&'static str),
    /// The TLS server's certificate was refused: retrying cannot help.
    #[error("tls: certificate of {target} refused: {reason} (check TICKBRIDGE_TP_CA_FILE and the host name)")]
    Certificate { target: String, reason: String },
}

impl ClientError {
    /// Whether the connection can still be used after this error. Only a
    /// remote error leaves the stream in a known state.
    pub fn breaks_connection(&self) -> bool {
        !matches!(self, ClientError::Remote(_) | ClientError::Misuse(_))
    }

    /// Whether trying to connect again may help.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            ClientError::AccessDenied { .. }
                | ClientError::BadTarget(_)
                | ClientError::Certificate { .. }
                | ClientError::Misuse(_)
        )
    }
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> ClientError {
        match e {
            FrameError::Closed => ClientError::Closed,
            FrameError::Io(e) => ClientError::Io(e),
            other => ClientError::Frame(other),
        }
    }
}

/// `user:password` for the handshake. Debug output hides the password, and
/// nothing in this module logs or formats either field.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub target: Target,
    pub credentials: Option<Credentials>,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    /// Bounds the whole wait for one reply (every frame read meanwhile
    /// included), and every write.
    pub read_timeout: Duration,
    /// Largest incoming message accepted, header included, both as sent
    /// and once decompressed: a peer's claimed uncompressed size is checked
    /// against it before anything is allocated.
    pub max_frame: usize,
}

impl ClientConfig {
    pub fn new(target: Target) -> ClientConfig {
        ClientConfig {
            target,
            credentials: None,
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            max_frame: DEFAULT_MAX_FRAME,
        }
    }

    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> ClientConfig {
        self.credentials = credentials;
        self
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// One open, handshaken IPC connection.
pub struct Connection {
    io: Box<dyn Io>,
    target: String,
    local: bool,
    capability: u8,
    read_timeout: Duration,
    max_frame: usize,
    /// No wait of any kind goes past this instant (the invocation deadline),
    /// whatever `read_timeout` allows.
    deadline: Option<Instant>,
    /// Sync messages written whose replies have not been read yet.
    awaiting: usize,
    /// Reused for every encoded outgoing message.
    out: Vec<u8>,
    broken: bool,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.target)
            .field("capability", &self.capability)
            .field("broken", &self.broken)
            .finish()
    }
}

async fn open(target: &Target) -> Result<Box<dyn Io>, ClientError> {
    match target {
        Target::Tcp { host, port } => {
            let tcp = TcpStream::connect((host.as_str(), *port)).await?;
            tcp.set_nodelay(true)?;
            Ok(Box::new(tcp))
        }
        Target::Tls {
            host,
            port,
            ca_file,
        } => {
            let tcp = TcpStream::connect((host.as_str(), *port)).await?;
            tcp.set_nodelay(true)?;
            Ok(Box::new(tls::wrap(tcp, host, ca_file.as_deref()).await?))
        }
        #[cfg(unix)]
        Target::Unix(path) => Ok(Box::new(tokio::net::UnixStream::connect(path).await?)),
        #[cfg(not(unix))]
        Target::Unix(_) => Err(ClientError::BadTarget(
            "unix sockets are not available on this platform".into(),
        )),
    }
}

/// Sends `user:password`, the capability byte and a NUL; returns the
/// capability the server agreed to. kdb+ rejects by closing the socket.
async fn handshake(
    io: &mut Box<dyn Io>,
    credentials: Option<&Credentials>,
    target: &str,
) -> Result<u8, ClientError> {
    let mut hello = Vec::with_capacity(64);
    if let Some(c) = credentials {
        hello.extend_from_slice(c.user.as_bytes());
        hello.push(b':');
        hello.extend_from_slice(c.password.as_bytes());
    }
    hello.extend_from_slice(&[CAPABILITY, 0]);
    let written = async {
        io.write_all(&hello).await?;
        io.flush().await
    }
    .await;
    // The buffer held the password; do not leave it in freed memory.
    hello.fill(0);
    written?;
    let denied = || ClientError::AccessDenied {
        target: target.to_string(),
    };
    let mut reply = [0u8; 1];
    match io.read(&mut reply).await {
        Ok(0) => Err(denied()),
        Ok(_) => Ok(reply[0]),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            Err(denied())
        }
        Err(e) => Err(e.into()),
    }
}

/// The compressed form of a whole outgoing message when the peer is remote,
/// the message is over kdb+'s threshold and compression halves it.
pub fn compress_for_peer(msg: &[u8], peer_is_local: bool) -> Option<Vec<u8>> {
    if peer_is_local || msg.len() <= MIN_COMPRESS_LEN {
        return None;
    }
    compress::compress(msg)
}

/// Checks that `msg` is one whole uncompressed message, as `send_raw`
/// needs: a wrong length would desynchronise the peer's framing.
pub fn check_raw(msg: &[u8]) -> Result<(), ClientError> {
    let header = parse_header(msg)?;
    if header.len != msg.len() || header.compressed {
        return Err(ClientError::Decode(DecodeError::BadHeader(format!(
            "a raw message must be whole and uncompressed: header says {} bytes{}, got {}",
            header.len,
            if header.compressed { " compressed" } else { "" },
            msg.len()
        ))));
    }
    Ok(())
}

impl Connection {
    /// Connects and handshakes, each step bounded by its timeout.
    pub async fn connect(config: &ClientConfig) -> Result<Connection, ClientError> {
        let target = config.target.to_string();
        debug!(peer = %target, "connecting to kdb+");
        let mut io = timeout(config.connect_timeout, open(&config.target))
            .await
            .map_err(|_| ClientError::Timeout {
                stage: Stage::Connect,
            })??;
        let capability = timeout(
            config.handshake_timeout,
            handshake(&mut io, config.credentials.as_ref(), &target),
        )
        .await
        .map_err(|_| ClientError::Timeout {
            stage: Stage::Handshake,
        })??;
        debug!(peer = %target, capability, "connected to kdb+");
        Ok(Connection {
            io,
            local: config.target.is_local(),
            target,
            capability,
            read_timeout: config.read_timeout,
            max_frame: config.max_frame,
            deadline: None,
            awaiting: 0,
            out: Vec::with_capacity(4096),
            broken: false,
        })
    }

    /// Bounds every later wait by `deadline` as a whole (`None`: only the
    /// per-reply timeout).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// When a wait that starts now must end: the reply timeout, cut short
    /// by the deadline.
    fn wait_limit(&self) -> Instant {
        let limit = Instant::now() + self.read_timeout;
        match self.deadline {
            Some(d) if d < limit => d,
            _ => limit,
        }
    }

    /// The capability byte the server agreed to in the handshake.
    pub fn capability(&self) -> u8 {
        self.capability
    }

    /// The target as given, for messages (never holds credentials).
    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn is_local(&self) -> bool {
        self.local
    }

    /// False once an I/O error or timeout has made the stream unusable.
    pub fn is_usable(&self) -> bool {
        !self.broken
    }

    fn check(&self) -> Result<(), ClientError> {
        if self.broken {
            Err(ClientError::Closed)
        } else {
            Ok(())
        }
    }

    /// Marks the connection broken on any error that leaves the stream in an
    /// unknown state.
    fn note<T>(&mut self, r: Result<T, ClientError>) -> Result<T, ClientError> {
        if let Err(e) = &r {
            if e.breaks_connection() && !self.broken {
                warn!(peer = %self.target, error = %e, "kdb+ connection broken");
                self.broken = true;
            }
        }
        r
    }

    /// Encodes `v` as a whole message into the reused buffer.
    fn encode_out(&mut self, v: &K, msg_type: MsgType) {
        self.out.clear();
        let len = HEADER_LEN + encoded_len(v);
        self.out.reserve(len);
        push_header(&mut self.out, msg_type, false, len);
        encode_into(v, &mut self.out);
    }

    async fn write_msg(&mut self, msg: &[u8]) -> Result<(), ClientError> {
        let limit = self.wait_limit();
        let io = &mut self.io;
        let packed = compress_for_peer(msg, self.local);
        let bytes = packed.as_deref().unwrap_or(msg);
        timeout_at(limit, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        .map_err(|_| ClientError::Timeout {
            stage: Stage::Write,
        })??;
        Ok(())
    }

    async fn write_out(&mut self) -> Result<(), ClientError> {
        let msg = std::mem::take(&mut self.out);
        let r = self.write_msg(&msg).await;
        self.out = msg;
        r
    }

    /// Sends `v` as an async message (no reply).
    pub async fn send_async(&mut self, v: &K) -> Result<(), ClientError> {
        self.check()?;
        self.encode_out(v, MsgType::Async);
        let r = self.write_out().await;
        self.note(r)
    }

    /// Sends a whole pre-encoded message (header included), e.g. from
    /// `upd::encode_upd`. Its header must announce exactly its length.
    pub async fn send_raw(&mut self, msg: &[u8]) -> Result<(), ClientError> {
        self.check()?;
        check_raw(msg)?;
        let r = self.write_msg(msg).await;
        self.note(r)
    }

    /// Sends `v` synchronously and waits for the reply. Async messages that
    /// arrive meanwhile are skipped; an error reply is `Remote`.
    pub async fn query(&mut self, v: &K) -> Result<K, ClientError> {
        self.check()?;
        self.encode_out(v, MsgType::Sync);
        let r = match self.write_out().await {
            Ok(()) => {
                self.awaiting += 1;
                self.read_reply().await
            }
            Err(e) => Err(e),
        };
        self.note(r)
    }

    /// Sends a whole pre-encoded sync message (header type 1) and waits for
    /// its reply, for publishing runs synchronously from the fast path.
    pub async fn query_raw(&mut self, msg: &[u8]) -> Result<K, ClientError> {
        self.write_sync_raw(msg).await?;
        self.next_reply().await
    }

    /// Writes a whole pre-encoded sync message without waiting for its
    /// reply, so several can share one round trip; `next_reply` reads the
    /// replies back in the order the messages went out (kdb+ answers one
    /// connection's requests in order).
    pub async fn write_sync_raw(&mut self, msg: &[u8]) -> Result<(), ClientError> {
        self.check()?;
        check_raw(msg)?;
        if parse_header(msg)?.msg_type != MsgType::Sync {
            return Err(ClientError::Misuse("write_sync_raw needs a sync message"));
        }
        let r = self.write_msg(msg).await;
        if r.is_ok() {
            self.awaiting += 1;
        }
        self.note(r)
    }

    /// The reply to the oldest sync message still unanswered.
    pub async fn next_reply(&mut self) -> Result<K, ClientError> {
        self.check()?;
        if self.awaiting == 0 {
            return Err(ClientError::Misuse(
                "no sync message is waiting for a reply",
            ));
        }
        let r = self.read_reply().await;
        self.note(r)
    }

    /// Sends `expr` as a char vector, as q clients do, and returns the reply.
    pub async fn query_str(&mut self, expr: &str) -> Result<K, ClientError> {
        self.query(&K::string(expr)).await
    }

    /// A sync empty query: kdb+ handles one connection's messages in order,
    /// so its reply confirms that everything sent before it was processed.
    pub async fn chase(&mut self) -> Result<(), ClientError> {
        self.query_str("").await.map(|_| ())
    }

    /// Reads frames until a reply comes. The whole wait, however many
    /// async messages or sync requests the peer sends instead of the reply,
    /// ends at `wait_limit`: a chattering peer cannot hold us past it.
    async fn read_reply(&mut self) -> Result<K, ClientError> {
        let limit = self.wait_limit();
        let r = timeout_at(limit, self.read_reply_frames())
            .await
            .map_err(|_| ClientError::Timeout { stage: Stage::Read })?;
        // A q error is a reply too: that request is answered.
        if matches!(r, Ok(_) | Err(ClientError::Remote(_))) {
            self.awaiting = self.awaiting.saturating_sub(1);
        }
        r
    }

    /// Sync messages written whose replies are still to be read.
    pub fn awaiting_replies(&self) -> usize {
        self.awaiting
    }

    async fn read_reply_frames(&mut self) -> Result<K, ClientError> {
        loop {
            let (header, msg) = read_frame(&mut self.io, self.max_frame).await?;
            match header.msg_type {
                MsgType::Async => {
                    debug!(peer = %self.target, len = header.len, "skipping an async message while waiting for a reply");
                }
                MsgType::Sync => {
                    // The peer waits for an answer; refusing keeps both sides moving.
                    debug!(peer = %self.target, "refusing a sync request from the server");
                    self.encode_out(&K::Error("nyi".into()), MsgType::Response);
                    self.write_out().await?;
                }
                MsgType::Response => {
                    let (_, value) = decode_message_limited(&msg, self.max_frame)?;
                    return match value {
                        K::Error(text) => Err(ClientError::Remote(text)),
                        other => Ok(other),
                    };
                }
            }
        }
    }

    /// Closes the write side politely; errors are ignored, the socket is
    /// dropped either way.
    pub async fn close(mut self) {
        let _ = self.io.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kdb::encode::encode_message;
    use crate::kdb::message::decode_message;
    use crate::kdb::value::Vector;

    #[test]
    fn credentials_debug_hides_the_password() {
        let c = Credentials::new("alice", "s3cret-pw");
        let text = format!("{c:?}");
        assert!(text.contains("alice"));
        assert!(!text.contains("s3cret-pw"));
        let cfg = ClientConfig::new(Target::parse("h:1").unwrap()).with_credentials(Some(c));
        assert!(!format!("{cfg:?}").contains("s3cret-pw"));
    }

    #[test]
    fn compresses_only_large_messages_to_remote_peers() {
        let big = K::vector(Vector::Long(vec![7; 1000]));
        let msg = encode_message(&big, MsgType::Async);
        assert!(msg.len() > MIN_COMPRESS_LEN);
        assert!(compress_for_peer(&msg, true).is_none());
        let packed = compress_for_peer(&msg, false).expect("compressible");
        assert!(packed.len() < msg.len() / 2);
        let (h, back) = decode_message(&packed).unwrap();
        assert!(h.compressed);
        assert_eq!(back, big);

        let small = encode_message(&K::vector(Vector::Long(vec![7; 100])), MsgType::Async);
        assert!(compress_for_peer(&small, false).is_none());
    }

    #[test]
    fn incompressible_large_messages_go_plain() {
        let noise: Vec<u8> = (0..4000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let msg = encode_message(&K::vector(Vector::Byte(noise)), MsgType::Async);
        assert!(compress_for_peer(&msg, false).is_none());
    }

    #[test]
    fn only_remote_errors_keep_the_connection() {
        assert!(!ClientError::Remote("type".into()).breaks_connection());
        assert!(ClientError::Closed.breaks_connection());
        assert!(ClientError::Timeout { stage: Stage::Read }.breaks_connection());
        assert!(!ClientError::AccessDenied {
            target: "h:1".into()
        }
        .is_transient());
        assert!(ClientError::Closed.is_transient());
    }
}
