//! A long-lived link to the tickerplant that reopens itself when broken.
//!
//! Reconnecting is automatic; resending is not. After a failed send nobody
//! knows whether the tickerplant got the message, so the error goes back to
//! the caller, who decides (the pipeline cuts the lane and lets the source
//! redeliver, dedupe catching what did arrive).

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::time::Instant;

use super::{ClientConfig, ClientError, Connection, Stage};
use crate::kdb::value::K;
use crate::telemetry::{TpConnected, TpUnavailable, TpUnavailableNext};

/// How hard to try when (re)connecting.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Attempts after the first one.
    pub max_retries: usize,
    /// Total sleeping allowed per reconnect, further capped by the deadline.
    pub max_total_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            max_retries: 8,
            max_total_delay: Duration::from_secs(10),
        }
    }
}

#[derive(Debug)]
pub struct Publisher {
    config: ClientConfig,
    policy: RetryPolicy,
    deadline: Option<Instant>,
    conn: Option<Connection>,
    /// Async sends on the current connection not yet confirmed by a reply.
    pending: bool,
    /// A connection with unconfirmed sends was dropped: the next chase must
    /// fail rather than confirm them on a new connection.
    lost: bool,
}

impl Publisher {
    /// No I/O yet: the first call (or `connect`) opens the connection.
    pub fn new(config: ClientConfig, policy: RetryPolicy) -> Publisher {
        Publisher {
            config,
            policy,
            deadline: None,
            conn: None,
            pending: false,
            lost: false,
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Reconnect attempts stop at this instant (e.g. the Lambda deadline
    /// less a margin). `None` leaves only the retry policy's bounds.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
        if let Some(conn) = self.conn.as_mut() {
            conn.set_deadline(deadline);
        }
    }

    pub fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(Connection::is_usable)
    }

    /// Drops the connection; the next call opens a new one.
    pub fn disconnect(&mut self) {
        self.drop_conn();
    }

    fn drop_conn(&mut self) {
        if self.pending {
            self.lost = true;
            self.pending = false;
        }
        self.conn = None;
    }

    /// The open connection, opening one (with bounded backoff) if needed.
    pub async fn connect(&mut self) -> Result<&mut Connection, ClientError> {
        if !self.is_connected() {
            self.drop_conn();
            let mut conn = self.open_with_backoff().await?;
            conn.set_deadline(self.deadline);
            self.conn = Some(conn);
        }
        self.conn.as_mut().ok_or(ClientError::Closed)
    }

    async fn open_with_backoff(&self) -> Result<Connection, ClientError> {
        let mut total = self.policy.max_total_delay;
        let mut remaining = None;
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout {
                    stage: Stage::Connect,
                });
            }
            total = total.min(left);
            remaining = Some(left);
        }
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.policy.min_delay)
            .with_max_delay(self.policy.max_delay)
            .with_max_times(self.policy.max_retries)
            .with_total_delay(Some(total));
        let config = &self.config;
        let target = &config.target;
        let attempts = (|| Connection::connect(config))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(ClientError::is_transient)
            .notify(|e: &ClientError, delay: Duration| {
                TpUnavailable {
                    tp: target,
                    error: e,
                    next: TpUnavailableNext::RetryInMs(delay.as_millis() as u64),
                }
                .emit()
            });
        let conn =
            match remaining {
                Some(left) => tokio::time::timeout(left, attempts).await.map_err(|_| {
                    ClientError::Timeout {
                        stage: Stage::Connect,
                    }
                })??,
                None => attempts.await?,
            };
        TpConnected { tp: target }.emit();
        Ok(conn)
    }

    /// Drops the connection after any error that broke it; a sync reply
    /// (even a remote error) confirms every earlier send on the connection.
    ///
    /// The error returned here tells the caller that unconfirmed sends are
    /// in doubt, so no later chase owes a failure for them: failing the
    /// caller's next, fully confirmed batch would make it resend data the
    /// tickerplant already has.
    fn settle<T>(&mut self, r: Result<T, ClientError>, sync: bool) -> Result<T, ClientError> {
        match &r {
            Err(e) if e.breaks_connection() => {
                self.drop_conn();
                self.lost = false;
            }
            _ if sync => self.pending = false,
            _ => self.pending = true,
        }
        r
    }

    pub async fn send_async(&mut self, v: &K) -> Result<(), ClientError> {
        let r = self.connect().await?.send_async(v).await;
        self.settle(r, false)
    }

    pub async fn send_raw(&mut self, msg: &[u8]) -> Result<(), ClientError> {
        // A malformed message is the caller's bug, not a broken link.
        super::check_raw(msg)?;
        let r = self.connect().await?.send_raw(msg).await;
        self.settle(r, false)
    }

    pub async fn query(&mut self, v: &K) -> Result<K, ClientError> {
        let r = self.connect().await?.query(v).await;
        self.settle(r, true)
    }

    pub async fn query_raw(&mut self, msg: &[u8]) -> Result<K, ClientError> {
        let r = self.connect().await?.query_raw(msg).await;
        self.settle(r, true)
    }

    /// Writes a sync message whose reply `next_reply` reads later, so that
    /// several share one round trip.
    pub async fn write_sync_raw(&mut self, msg: &[u8]) -> Result<(), ClientError> {
        super::check_raw(msg)?;
        let r = self.connect().await?.write_sync_raw(msg).await;
        self.settle(r, false)
    }

    /// The reply to the oldest unanswered sync message on the connection.
    /// Fails with `Closed` when the connection that carried it is gone: a
    /// reply can never come from a new one.
    pub async fn next_reply(&mut self) -> Result<K, ClientError> {
        let conn = match self.conn.as_mut() {
            Some(c) if c.is_usable() => c,
            _ => return Err(ClientError::Closed),
        };
        let r = conn.next_reply().await;
        let all_answered = conn.awaiting_replies() == 0;
        self.settle(r, all_answered)
    }

    pub async fn query_str(&mut self, expr: &str) -> Result<K, ClientError> {
        let r = self.connect().await?.query_str(expr).await;
        self.settle(r, true)
    }

    /// Confirms every async send since the last confirmation. If the
    /// connection that carried some of them was dropped, this fails once
    /// with `Closed` instead of confirming them on a new connection.
    pub async fn chase(&mut self) -> Result<(), ClientError> {
        if self.lost {
            self.lost = false;
            return Err(ClientError::Closed);
        }
        let r = self.connect().await?.chase().await;
        self.settle(r, true)
    }
}
