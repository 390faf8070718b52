//! The pipeline's tickerplant link over the kdb+ client: one long-lived
//! connection per process, reconnected with bounded backoff when broken.

use std::time::Instant;

use crate::kdb::client::{ClientConfig, ClientError, Credentials, Publisher, RetryPolicy, Target};
use crate::pipeline::{LinkError, TickerplantLink};

pub struct TpLink {
    publisher: Publisher,
}

impl TpLink {
    pub fn new(config: ClientConfig) -> TpLink {
        TpLink {
            publisher: Publisher::new(config, RetryPolicy::default()),
        }
    }

    /// From the bridge settings; the target is checked here so a typo fails
    /// init with the variable's name rather than every invocation.
    pub fn from_config(c: &crate::config::Config) -> Result<TpLink, crate::config::ConfigError> {
        let target = Target::parse(&c.tp)
            .map_err(|e| crate::config::ConfigError {
                var: "TICKBRIDGE_TP",
                reason: e.to_string(),
            })?
            .with_ca_file(c.tp_ca_file.clone());
        let mut cc = ClientConfig::new(target).with_credentials(c.tp_user.as_ref().map(|u| {
            Credentials::new(
                u.clone(),
                c.tp_password
                    .as_ref()
                    .map(|p| p.0.clone())
                    .unwrap_or_default(),
            )
        }));
        cc.connect_timeout = c.tp_connect_timeout;
        cc.handshake_timeout = c.tp_connect_timeout;
        cc.read_timeout = c.tp_read_timeout;
        Ok(TpLink::new(cc))
    }

    /// Opens the connection now (warm-up at init); failure is not fatal,
    /// the first batch retries.
    pub async fn warm_up(&mut self, until: Instant) -> Result<(), LinkError> {
        self.ensure_connected(until).await
    }

    pub fn publisher(&mut self) -> &mut Publisher {
        &mut self.publisher
    }
}

fn link_error(e: ClientError) -> LinkError {
    match e {
        ClientError::Remote(text) => LinkError::Remote(text),
        other => LinkError::Unavailable(other.to_string()),
    }
}

impl TickerplantLink for TpLink {
    async fn ensure_connected(&mut self, until: Instant) -> Result<(), LinkError> {
        self.publisher
            .set_deadline(Some(tokio::time::Instant::from_std(until)));
        self.publisher
            .connect()
            .await
            .map(|_| ())
            .map_err(link_error)
    }

    async fn send_async(&mut self, msg: &[u8]) -> Result<(), LinkError> {
        self.publisher.send_raw(msg).await.map_err(link_error)
    }

    async fn send_sync(&mut self, msg: &[u8]) -> Result<(), LinkError> {
        self.publisher
            .query_raw(msg)
            .await
            .map(|_| ())
            .map_err(link_error)
    }

    async fn chase(&mut self) -> Result<(), LinkError> {
        self.publisher.chase().await.map_err(link_error)
    }
}
