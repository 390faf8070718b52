//! The pipeline's tickerplant link over the kdb+ client: one long-lived
//! connection per process, reconnected with bounded backoff when broken.

use std::time::Instant;

use crate::config::PreflightMode;
use crate::kdb::client::{
    check_raw, ClientConfig, ClientError, Credentials, Publisher, RetryPolicy, Target,
};
use crate::pipeline::{LinkError, TickerplantLink};
use crate::preflight;
use crate::schema::Schema;
use crate::telemetry::TpDiffers;

pub struct TpLink {
    publisher: Publisher,
    preflight: Option<Preflight>,
}

/// What every new connection is checked against before anything is sent
/// on it (DESIGN §4): a drifted tickerplant fails loudly, once per
/// connection, instead of refusing (or worse, silently taking) every update.
pub struct Preflight {
    pub schemas: Vec<Schema>,
    pub upd_func: String,
    pub mode: PreflightMode,
}

impl TpLink {
    pub fn new(config: ClientConfig) -> TpLink {
        TpLink {
            publisher: Publisher::new(config, RetryPolicy::default()),
            preflight: None,
        }
    }

    /// Checks each new connection against the schemas first.
    pub fn set_preflight(&mut self, preflight: Preflight) {
        self.preflight = Some(preflight).filter(|p| p.mode != PreflightMode::Off);
    }

    /// Asks the tickerplant and compares. In `Error` mode a difference drops
    /// the connection and is returned; in `Warn` mode it is logged.
    async fn check(&mut self) -> Result<(), LinkError> {
        let Some(p) = &self.preflight else {
            return Ok(());
        };
        let tables: Vec<&str> = p.schemas.iter().map(|s| s.table.as_str()).collect();
        let shape = match preflight::fetch(&mut self.publisher, &tables, &p.upd_func).await {
            Ok(shape) => shape,
            Err(e) => {
                self.publisher.disconnect();
                return Err(LinkError::unavailable(e));
            }
        };
        let findings = preflight::compare(&p.schemas, &shape, &p.upd_func);
        if findings.is_empty() {
            tracing::debug!(tables = tables.len(), "tickerplant matches the schemas");
            return Ok(());
        }
        let findings: Vec<String> = findings.iter().map(ToString::to_string).collect();
        let publishing = p.mode == PreflightMode::Warn;
        TpDiffers {
            tp: &self.publisher.config().target,
            findings: &findings,
            publishing,
        }
        .emit();
        if publishing {
            return Ok(());
        }
        self.publisher.disconnect();
        Err(LinkError::Mismatch(findings.join("; ")))
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
        cc.max_frame = c.tp_max_message_bytes;
        if cc.credentials.is_some() && !cc.target.is_local() && !cc.target.is_tls() {
            tracing::warn!(
                tp = %cc.target,
                "TICKBRIDGE_TP_USER/PASSWORD go to a remote tickerplant over plain TCP: anyone on the path can read them; use tls://host:port"
            );
        }
        Ok(TpLink::new(cc))
    }

    /// Opens the connection now (warm-up at init); failure is not fatal,
    /// the first batch retries.
    pub async fn warm_up(&mut self, until: Instant) -> Result<(), LinkError> {
        self.ensure_connected(until).await
    }

    /// The tickerplant's address, for log lines.
    pub fn target(&self) -> &Target {
        &self.publisher.config().target
    }

    pub fn publisher(&mut self) -> &mut Publisher {
        &mut self.publisher
    }
}

fn link_error(e: ClientError) -> LinkError {
    match e {
        ClientError::Remote(text) => LinkError::Remote(text),
        other => LinkError::unavailable(other),
    }
}

/// A message this process built wrong is refused before any I/O, and
/// named as ours: it says nothing about the tickerplant.
fn check_local(msg: &[u8]) -> Result<(), LinkError> {
    check_raw(msg).map_err(LinkError::local)
}

impl TickerplantLink for TpLink {
    async fn ensure_connected(&mut self, until: Instant) -> Result<(), LinkError> {
        self.publisher
            .set_deadline(Some(tokio::time::Instant::from_std(until)));
        let fresh = !self.publisher.is_connected();
        self.publisher.connect().await.map_err(link_error)?;
        if fresh {
            self.check().await?;
        }
        Ok(())
    }

    async fn send_async(&mut self, msg: &[u8]) -> Result<(), LinkError> {
        check_local(msg)?;
        self.publisher.send_raw(msg).await.map_err(link_error)
    }

    async fn send_sync(&mut self, msg: &[u8]) -> Result<(), LinkError> {
        check_local(msg)?;
        self.publisher
            .query_raw(msg)
            .await
            .map(|_| ())
            .map_err(link_error)
    }

    async fn send_sync_all(&mut self, msgs: &[&[u8]]) -> Vec<Result<(), LinkError>> {
        let mut out: Vec<Result<(), LinkError>> = Vec::with_capacity(msgs.len());
        let mut written = Vec::with_capacity(msgs.len());
        let mut down: Option<LinkError> = None;
        for (i, msg) in msgs.iter().enumerate() {
            if let Err(e) = check_local(msg) {
                out.push(Err(e));
                continue;
            }
            match self.publisher.write_sync_raw(msg).await {
                Ok(()) => {
                    written.push(i);
                    out.push(Ok(()));
                }
                Err(e) => {
                    down = Some(link_error(e));
                    break;
                }
            }
        }
        for i in written {
            if let Some(e) = &down {
                out[i] = Err(e.clone());
                continue;
            }
            match self.publisher.next_reply().await {
                Ok(_) => {}
                Err(e @ ClientError::Remote(_)) => out[i] = Err(link_error(e)),
                Err(e) => {
                    let e = link_error(e);
                    out[i] = Err(e.clone());
                    down = Some(e);
                }
            }
        }
        if let Some(e) = down {
            out.resize(msgs.len(), Err(e));
        }
        out
    }

    async fn chase(&mut self) -> Result<(), LinkError> {
        self.publisher.chase().await.map_err(link_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Log lines written while `f` runs.
    fn logs_of(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    fn config(tp: &str, user: Option<&str>) -> crate::config::Config {
        let mut vars = vec![
            ("TICKBRIDGE_STORE".to_string(), "memory".to_string()),
            ("TICKBRIDGE_TP".to_string(), tp.to_string()),
        ];
        if let Some(u) = user {
            vars.push(("TICKBRIDGE_TP_USER".into(), u.into()));
            vars.push(("TICKBRIDGE_TP_PASSWORD".into(), "pw-never-logged".into()));
        }
        crate::config::Config::from_vars(vars).unwrap()
    }

    #[test]
    fn credentials_in_clear_to_a_remote_host_are_warned_about_once() {
        // No I/O happens here: the link only parses its settings.
        let logs = logs_of(|| {
            TpLink::from_config(&config("tp.example.com:5010", Some("feed"))).unwrap();
        });
        assert_eq!(logs.matches("WARN").count(), 1, "{logs}");
        assert!(
            logs.contains("plain TCP") && logs.contains("tls://"),
            "{logs}"
        );
        assert!(!logs.contains("pw-never-logged"), "{logs}");
        for quiet in [
            config("127.0.0.1:5010", Some("feed")),
            config("tls://tp.example.com:5010", Some("feed")),
            config("tp.example.com:5010", None),
        ] {
            let logs = logs_of(|| {
                TpLink::from_config(&quiet).unwrap();
            });
            assert!(logs.is_empty(), "{}: {logs}", quiet.tp);
        }
    }
}
