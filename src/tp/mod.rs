//! The tickerplant stand-in: a server that behaves like kdb+tick's `tick.q`
//! (`tickbridge tp`), also runnable in-process through [`spawn`].
//!
//! ```no_run
//! # async fn demo(schemas: Vec<tickbridge::schema::Schema>) -> Result<(), tickbridge::tp::TpError> {
//! let tp = tickbridge::tp::spawn(tickbridge::tp::TickerplantConfig::new(schemas)).await?;
//! let addr = tp.local_addr(); // port 0 in the config: a free port was picked
//! // … publish to `addr` …
//! assert_eq!(tp.row_count("trade"), Some(0));
//! tp.shutdown().await;
//! # Ok(()) }
//! ```

mod frame;
pub mod journal;
pub mod meta;
pub mod outbox;
pub mod query;
pub mod server;
pub mod state;
pub mod upd;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::kdb::Table;
use crate::schema::Schema;

pub use journal::LogScan;
pub use state::{Catalog, Now};
pub use users::Users;

/// Largest message a client may send, as sent and once decompressed; the
/// same default as the bridge's `TICKBRIDGE_TP_MAX_MESSAGE_BYTES`.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// Bytes queued for one connection (answers and publications) before it is
/// dropped.
pub const DEFAULT_QUEUE_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Time for a message to arrive once its first byte has.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything the stand-in needs to start.
#[derive(Clone, Debug)]
pub struct TickerplantConfig {
    /// TCP address; port 0 picks a free one (see [`RunningTp::local_addr`]).
    pub listen: SocketAddr,
    /// Also listen on this Unix socket path.
    pub unix: Option<PathBuf>,
    pub schemas: Vec<Schema>,
    /// Journal directory (one `tpYYYY.MM.DD` file per UTC day); none: no journal.
    pub journal_dir: Option<PathBuf>,
    /// Accept only these `user:password` pairs; none: anyone.
    pub users: Option<Users>,
    /// Largest message a client may send, as sent and once decompressed
    /// (checked before allocating).
    pub max_msg: usize,
    /// Bytes queued per connection (publications and answers not yet
    /// written); a subscriber that falls this far behind, or a client that
    /// does not read its answers, is dropped. One message larger than this
    /// still goes to a client whose queue is empty.
    pub queue_bytes: usize,
    /// Connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// A message whose first byte has arrived must be whole within this, or
    /// the connection is closed. Waiting between messages is not limited.
    pub read_timeout: Duration,
    /// How often buffered journal writes are handed to the OS.
    pub flush_every: Duration,
}

impl TickerplantConfig {
    /// Loopback, a free port, no journal, no users.
    pub fn new(schemas: Vec<Schema>) -> TickerplantConfig {
        TickerplantConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            unix: None,
            schemas,
            journal_dir: None,
            users: None,
            max_msg: DEFAULT_MAX_MESSAGE,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            read_timeout: DEFAULT_READ_TIMEOUT,
            flush_every: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TpError {
    #[error("schemas: {0}")]
    Schema(String),
    #[error("journal: {0}")]
    Journal(#[from] journal::JournalError),
    #[error("listen on {what}: {source}")]
    Listen {
        what: String,
        source: std::io::Error,
    },
}

/// A running stand-in. Dropping it stops the server too (without waiting);
/// [`RunningTp::shutdown`] waits for the journal to be synced.
pub struct RunningTp {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    unix: Option<PathBuf>,
    scan: Option<LogScan>,
}

/// Starts the stand-in on the current tokio runtime.
pub async fn spawn(config: TickerplantConfig) -> Result<RunningTp, TpError> {
    let catalog = Arc::new(Catalog::new(&config.schemas).map_err(TpError::Schema)?);
    let (state, scan) = state::State::open(catalog, config.journal_dir.clone(), Now::read())?;
    let shared = Arc::new(server::Shared::new(
        state,
        config.users.clone(),
        server::Limits {
            max_msg: config.max_msg,
            queue_bytes: config.queue_bytes,
            max_connections: config.max_connections,
            read_timeout: config.read_timeout,
        },
    ));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| TpError::Listen {
            what: config.listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| TpError::Listen {
        what: config.listen.to_string(),
        source,
    })?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(server::accept_tcp(
        listener,
        shared.clone(),
        stopped.clone(),
    ))];
    #[cfg(unix)]
    if let Some(path) = &config.unix {
        let unix = bind_unix(path)?;
        tasks.push(tokio::spawn(server::accept_unix(
            unix,
            shared.clone(),
            stopped.clone(),
        )));
    }
    tasks.push(tokio::spawn(flush_loop(
        shared.clone(),
        config.flush_every,
        stopped,
    )));
    tracing::info!(
        %addr,
        unix = ?config.unix,
        max_message_bytes = config.max_msg,
        queue_bytes = config.queue_bytes,
        max_connections = config.max_connections,
        read_timeout_ms = config.read_timeout.as_millis() as u64,
        "tickerplant stand-in listening"
    );
    Ok(RunningTp {
        addr,
        shared,
        stop,
        tasks,
        unix: config.unix,
        scan,
    })
}

#[cfg(unix)]
fn bind_unix(path: &std::path::Path) -> Result<tokio::net::UnixListener, TpError> {
    use std::os::unix::fs::FileTypeExt;
    // A socket file left by an earlier run would make bind fail; anything
    // else at that path is not ours to remove.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
    tokio::net::UnixListener::bind(path).map_err(|source| TpError::Listen {
        what: path.display().to_string(),
        source,
    })
}

async fn flush_loop(shared: Arc<server::Shared>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
    loop {
        tokio::select! {
            _ = tick.tick() => shared.lock().flush(),
            _ = server::raised(&mut stop) => break,
        }
    }
    shared.lock().sync();
}

impl RunningTp {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What reading today's journal at start found (none without a journal).
    pub fn journal_scan(&self) -> Option<&LogScan> {
        self.scan.as_ref()
    }

    /// `.u.i`
    pub fn msg_count(&self) -> i64 {
        self.shared.lock().i
    }

    /// Updates refused since start.
    pub fn rejected(&self) -> u64 {
        self.shared.lock().rejected
    }

    /// Errors answered or logged since start (refused updates included).
    pub fn errors(&self) -> u64 {
        self.shared.errors.load(Ordering::Relaxed)
    }

    pub fn row_count(&self, table: &str) -> Option<usize> {
        self.shared.lock().row_count(table)
    }

    /// The table so far.
    pub fn table(&self, table: &str) -> Option<Table> {
        self.shared.lock().table(table)
    }

    /// Client connections open now (handshakes in progress included).
    pub fn connections(&self) -> usize {
        self.shared.open_connections()
    }

    /// Connections refused at the `max_connections` cap since start.
    pub fn refused_connections(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }

    /// Connections subscribed to at least one table.
    pub fn subscribers(&self) -> usize {
        self.shared.lock().subscriber_count()
    }

    /// Stops listening, closes clients, syncs the journal.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
        self.shared.lock().sync();
        if let Some(path) = self.unix.take() {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!("tickerplant stand-in stopped");
    }
}

impl Drop for RunningTp {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
