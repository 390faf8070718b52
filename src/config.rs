//! Settings, parsed once at init from `TICKBRIDGE_*` environment variables
//! (DESIGN §11). Every error names the variable and what it accepts.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::pipeline::{BadRecords, PipelineConfig, PublishMode};
use crate::source::event::SourceOptions;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

/// A value that must never reach a log: `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a tickerplant that does not match the schemas does to start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreflightMode {
    /// Refuse to publish to it: init fails, and so does every batch while
    /// the mismatch lasts (nothing is lost; records are retried).
    Error,
    /// Log each difference as a warning and publish anyway.
    Warn,
    /// Do not ask.
    Off,
}

/// Where idempotency state lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    DynamoDb,
    /// Process memory: for local runs only; state is lost with the process.
    Memory,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// `host:port`, `tls://host:port` or `unix:///path`.
    pub tp: String,
    pub tp_user: Option<String>,
    pub tp_password: Option<Secret>,
    /// ARN (or name) of a Secrets Manager secret holding the password, read
    /// once at init (`App::init`) so the password never sits in plain
    /// environment text. Either this or `tp_password`, not both.
    pub tp_password_secret: Option<String>,
    pub tp_ca_file: Option<PathBuf>,
    pub tp_connect_timeout: Duration,
    pub tp_read_timeout: Duration,
    /// Largest message accepted from the tickerplant, as sent and once
    /// decompressed (checked before allocating).
    pub tp_max_message_bytes: usize,
    pub preflight: PreflightMode,
    pub store: StoreKind,
    pub dedupe_table: Option<String>,
    pub dynamodb_concurrency: usize,
    pub quarantine_queue_url: Option<String>,
    pub schemas_dir: Option<PathBuf>,
    pub metrics_namespace: String,
    pub pipeline: PipelineConfig,
    pub source: SourceOptions,
    pub s3: S3Settings,
}

/// S3 claim checks and object ingestion (DESIGN §2, §7a).
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// Larger claim-checked objects are bad records, refused before reading.
    pub claim_check_max_bytes: u64,
    pub claim_check_delete: crate::s3::claim_check::DeleteMode,
    /// Claim-checked objects fetched at once: memory is bounded by this
    /// many times `claim_check_max_bytes`.
    pub claim_check_concurrency: usize,
    /// Object ingestion confirms and checkpoints at least every this many
    /// rows and every this many bytes read.
    pub flush_rows: usize,
    pub flush_bytes: u64,
    /// Longer lines of an object are bad lines.
    pub max_line_bytes: usize,
}

fn s3_settings(vars: &Vars) -> Result<S3Settings, ConfigError> {
    use crate::s3::claim_check::DeleteMode;
    let positive = |var: &'static str, v: u64| {
        if v == 0 {
            Err(ConfigError {
                var,
                reason: "must be above 0".into(),
            })
        } else {
            Ok(v)
        }
    };
    let bytes = |var: &'static str| -> Result<u64, ConfigError> {
        positive(var, vars.parse(var, "a number of bytes")?)
    };
    Ok(S3Settings {
        claim_check_max_bytes: bytes("TICKBRIDGE_CLAIM_CHECK_MAX_BYTES")?,
        claim_check_concurrency: positive(
            "TICKBRIDGE_CLAIM_CHECK_CONCURRENCY",
            vars.parse("TICKBRIDGE_CLAIM_CHECK_CONCURRENCY", "a number of fetches")?,
        )? as usize,
        claim_check_delete: vars.choice(
            "TICKBRIDGE_CLAIM_CHECK_DELETE",
            &[
                ("never", DeleteMode::Never),
                ("after-commit", DeleteMode::AfterCommit),
            ],
        )?,
        flush_rows: positive(
            "TICKBRIDGE_S3_FLUSH_ROWS",
            vars.parse("TICKBRIDGE_S3_FLUSH_ROWS", "a number of rows")?,
        )? as usize,
        flush_bytes: bytes("TICKBRIDGE_S3_FLUSH_BYTES")?,
        max_line_bytes: bytes("TICKBRIDGE_S3_MAX_LINE_BYTES")? as usize,
    })
}

/// Every variable the bridge reads, with its default (empty: none). The
/// deployment template is checked against this list.
pub const VARS: &[(&str, &str)] = &[
    ("TICKBRIDGE_TP", "127.0.0.1:5010"),
    ("TICKBRIDGE_TP_USER", ""),
    ("TICKBRIDGE_TP_PASSWORD", ""),
    ("TICKBRIDGE_TP_PASSWORD_SECRET_ARN", ""),
    ("TICKBRIDGE_TP_CA_FILE", ""),
    ("TICKBRIDGE_TP_CONNECT_TIMEOUT_MS", "1000"),
    ("TICKBRIDGE_TP_READ_TIMEOUT_MS", "5000"),
    ("TICKBRIDGE_TP_MAX_MESSAGE_BYTES", "67108864"),
    ("TICKBRIDGE_UPD_FUNC", ".u.upd"),
    ("TICKBRIDGE_PUBLISH", "sync"),
    ("TICKBRIDGE_PREFLIGHT", "error"),
    ("TICKBRIDGE_CHASE_BYTES", "4194304"),
    ("TICKBRIDGE_BAD_RECORDS", "quarantine"),
    ("TICKBRIDGE_QUARANTINE_QUEUE_URL", ""),
    ("TICKBRIDGE_STORE", "dynamodb"),
    ("TICKBRIDGE_DEDUPE_TABLE", ""),
    ("TICKBRIDGE_TRANSPORT_DEDUPE", "true"),
    ("TICKBRIDGE_KEY_TTL_SECONDS", "604800"),
    ("TICKBRIDGE_DYNAMODB_CONCURRENCY", "16"),
    ("TICKBRIDGE_DEADLINE_MARGIN_MS", "1500"),
    ("TICKBRIDGE_SCHEMAS", ""),
    ("TICKBRIDGE_LANES_BY_PARTITION_KEY", "false"),
    ("TICKBRIDGE_SQS_BODY_BASE64", "false"),
    ("TICKBRIDGE_METRICS_NAMESPACE", "tickbridge"),
    ("TICKBRIDGE_LOG", "info"),
    ("TICKBRIDGE_CLAIM_CHECK_MAX_BYTES", "16777216"),
    ("TICKBRIDGE_CLAIM_CHECK_DELETE", "never"),
    ("TICKBRIDGE_CLAIM_CHECK_CONCURRENCY", "4"),
    ("TICKBRIDGE_S3_FLUSH_ROWS", "100000"),
    ("TICKBRIDGE_S3_FLUSH_BYTES", "8388608"),
    ("TICKBRIDGE_S3_MAX_LINE_BYTES", "1048576"),
];

/// Variables of the same prefix that belong to the tools, not the bridge.
const TOOL_VARS: &[&str] = &[
    "TICKBRIDGE_PYTHON",
    "TICKBRIDGE_KDB_VECTORS",
    "TICKBRIDGE_KINESIS_LOCAL",
];

struct Vars(HashMap<String, String>);

impl Vars {
    fn get(&self, var: &'static str) -> Option<&str> {
        self.0
            .get(var)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn or_default(&self, var: &'static str) -> &str {
        self.get(var)
            .unwrap_or_else(|| VARS.iter().find(|(n, _)| *n == var).map_or("", |(_, d)| d))
    }

    fn parse<T: std::str::FromStr>(&self, var: &'static str, what: &str) -> Result<T, ConfigError> {
        let raw = self.or_default(var);
        raw.trim().parse().map_err(|_| ConfigError {
            var,
            reason: format!("{raw:?} is not {what}"),
        })
    }

    fn flag(&self, var: &'static str) -> Result<bool, ConfigError> {
        match self.or_default(var).trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            other => Err(ConfigError {
                var,
                reason: format!("{other:?} is not true or false"),
            }),
        }
    }

    fn choice<T: Copy>(&self, var: &'static str, options: &[(&str, T)]) -> Result<T, ConfigError> {
        let raw = self.or_default(var).trim().to_ascii_lowercase();
        options
            .iter()
            .find(|(name, _)| *name == raw)
            .map(|(_, v)| *v)
            .ok_or_else(|| ConfigError {
                var,
                reason: format!(
                    "{raw:?} is not one of {}",
                    options
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    fn millis(&self, var: &'static str) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(
            self.parse(var, "a number of milliseconds")?,
        ))
    }
}

/// `TICKBRIDGE_LOG` must parse as a tracing filter: a typo would
/// otherwise silently fall back to the default level.
fn log_filter(vars: &Vars) -> Result<(), ConfigError> {
    match vars.get("TICKBRIDGE_LOG") {
        Some(raw) => tracing_subscriber::EnvFilter::builder()
            .parse(raw.trim())
            .map(|_| ())
            .map_err(|e| ConfigError {
                var: "TICKBRIDGE_LOG",
                reason: format!(
                    "{raw:?} is not a log filter like `info` or `tickbridge=debug,warn` ({e})"
                ),
            }),
        None => Ok(()),
    }
}

/// `TICKBRIDGE_SCHEMAS`, when set, must be a directory that exists.
fn schemas_dir(vars: &Vars) -> Result<Option<PathBuf>, ConfigError> {
    let Some(raw) = vars.get("TICKBRIDGE_SCHEMAS") else {
        return Ok(None);
    };
    let dir = PathBuf::from(raw.trim());
    if dir.is_dir() {
        Ok(Some(dir))
    } else {
        Err(ConfigError {
            var: "TICKBRIDGE_SCHEMAS",
            reason: format!(
                "{} is not a directory (unset it for the embedded schemas)",
                dir.display()
            ),
        })
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(std::env::vars())
    }

    /// Reads the given variables (tests and `invoke` pass their own).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let vars = Vars(vars.into_iter().collect());
        let unknown: Vec<&String> = vars
            .0
            .keys()
            .filter(|k| k.starts_with("TICKBRIDGE_"))
            .filter(|k| !VARS.iter().any(|(n, _)| n == k) && !TOOL_VARS.contains(&k.as_str()))
            .collect();
        if !unknown.is_empty() {
            tracing::warn!(?unknown, "ignoring unknown TICKBRIDGE_ variables (typo?)");
        }
        let store = vars.choice(
            "TICKBRIDGE_STORE",
            &[
                ("dynamodb", StoreKind::DynamoDb),
                ("memory", StoreKind::Memory),
            ],
        )?;
        let dedupe_table = vars.get("TICKBRIDGE_DEDUPE_TABLE").map(str::to_string);
        if store == StoreKind::DynamoDb && dedupe_table.is_none() {
            return Err(ConfigError {
                var: "TICKBRIDGE_DEDUPE_TABLE",
                reason: "required when TICKBRIDGE_STORE is dynamodb".into(),
            });
        }
        let tp_user = vars.get("TICKBRIDGE_TP_USER").map(str::to_string);
        let tp_password = vars
            .get("TICKBRIDGE_TP_PASSWORD")
            .map(|p| Secret(p.to_string()));
        if tp_password.is_some() && tp_user.is_none() {
            return Err(ConfigError {
                var: "TICKBRIDGE_TP_USER",
                reason: "required when TICKBRIDGE_TP_PASSWORD is set".into(),
            });
        }
        let tp_password_secret = vars
            .get("TICKBRIDGE_TP_PASSWORD_SECRET_ARN")
            .map(|s| s.trim().to_string());
        if tp_password_secret.is_some() && tp_password.is_some() {
            return Err(ConfigError {
                var: "TICKBRIDGE_TP_PASSWORD_SECRET_ARN",
                reason: "set either this or TICKBRIDGE_TP_PASSWORD, not both".into(),
            });
        }
        if tp_password_secret.is_some() && tp_user.is_none() {
            return Err(ConfigError {
                var: "TICKBRIDGE_TP_USER",
                reason: "required when TICKBRIDGE_TP_PASSWORD_SECRET_ARN is set".into(),
            });
        }
        let upd_func = vars.or_default("TICKBRIDGE_UPD_FUNC").trim().to_string();
        if upd_func.contains(['\0', ' ']) {
            return Err(ConfigError {
                var: "TICKBRIDGE_UPD_FUNC",
                reason: format!("{upd_func:?} is not a q function name"),
            });
        }
        let chase_every_bytes: usize = vars.parse("TICKBRIDGE_CHASE_BYTES", "a number of bytes")?;
        let tp_max_message_bytes: usize =
            vars.parse("TICKBRIDGE_TP_MAX_MESSAGE_BYTES", "a number of bytes")?;
        if !(1024..=(2usize << 30)).contains(&tp_max_message_bytes) {
            return Err(ConfigError {
                var: "TICKBRIDGE_TP_MAX_MESSAGE_BYTES",
                reason: format!("{tp_max_message_bytes} is not between 1024 and 2 GiB"),
            });
        }
        log_filter(&vars)?;
        let dynamodb_concurrency: usize =
            vars.parse("TICKBRIDGE_DYNAMODB_CONCURRENCY", "a whole number")?;
        if dynamodb_concurrency == 0 {
            return Err(ConfigError {
                var: "TICKBRIDGE_DYNAMODB_CONCURRENCY",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Config {
            tp: vars.or_default("TICKBRIDGE_TP").trim().to_string(),
            tp_user,
            tp_password,
            tp_password_secret,
            tp_ca_file: vars.get("TICKBRIDGE_TP_CA_FILE").map(PathBuf::from),
            tp_connect_timeout: vars.millis("TICKBRIDGE_TP_CONNECT_TIMEOUT_MS")?,
            tp_read_timeout: vars.millis("TICKBRIDGE_TP_READ_TIMEOUT_MS")?,
            tp_max_message_bytes,
            preflight: vars.choice(
                "TICKBRIDGE_PREFLIGHT",
                &[
                    ("error", PreflightMode::Error),
                    ("warn", PreflightMode::Warn),
                    ("off", PreflightMode::Off),
                ],
            )?,
            store,
            dedupe_table,
            dynamodb_concurrency,
            quarantine_queue_url: vars
                .get("TICKBRIDGE_QUARANTINE_QUEUE_URL")
                .map(str::to_string),
            schemas_dir: schemas_dir(&vars)?,
            metrics_namespace: vars.or_default("TICKBRIDGE_METRICS_NAMESPACE").to_string(),
            pipeline: PipelineConfig {
                upd_func,
                publish: vars.choice(
                    "TICKBRIDGE_PUBLISH",
                    &[
                        ("sync", PublishMode::Sync),
                        ("pipelined", PublishMode::Pipelined),
                        ("async", PublishMode::Async),
                    ],
                )?,
                bad_records: vars.choice(
                    "TICKBRIDGE_BAD_RECORDS",
                    &[
                        ("quarantine", BadRecords::Quarantine),
                        ("fail", BadRecords::Fail),
                    ],
                )?,
                transport_dedupe: vars.flag("TICKBRIDGE_TRANSPORT_DEDUPE")?,
                replay: false,
                key_ttl: Duration::from_secs(
                    vars.parse("TICKBRIDGE_KEY_TTL_SECONDS", "a number of seconds")?,
                ),
                deadline_margin: vars.millis("TICKBRIDGE_DEADLINE_MARGIN_MS")?,
                chase_every_bytes,
                claim_chunk: 4 * dynamodb_concurrency,
            },
            source: SourceOptions {
                lanes_by_partition_key: vars.flag("TICKBRIDGE_LANES_BY_PARTITION_KEY")?,
                sqs_body_base64: vars.flag("TICKBRIDGE_SQS_BODY_BASE64")?,
            },
            s3: s3_settings(&vars)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_cheap_and_safe() {
        let c = Config::from_vars(vars(&[("TICKBRIDGE_DEDUPE_TABLE", "dedupe")])).unwrap();
        assert_eq!(c.tp, "127.0.0.1:5010");
        assert_eq!(c.store, StoreKind::DynamoDb);
        assert_eq!(c.pipeline.publish, PublishMode::Sync);
        assert_eq!(c.preflight, PreflightMode::Error);
        assert_eq!(c.tp_max_message_bytes, 64 << 20);
        assert_eq!(c.pipeline.bad_records, BadRecords::Quarantine);
        assert_eq!(c.pipeline.key_ttl, Duration::from_secs(604_800));
        assert_eq!(c.pipeline.upd_func, ".u.upd");
        assert!(c.pipeline.transport_dedupe);
        assert_eq!(c.s3.claim_check_concurrency, 4);
    }

    #[test]
    fn errors_name_the_variable() {
        let err = Config::from_vars(vars(&[])).unwrap_err();
        assert_eq!(err.var, "TICKBRIDGE_DEDUPE_TABLE");
        let err = Config::from_vars(vars(&[
            ("TICKBRIDGE_STORE", "memory"),
            ("TICKBRIDGE_PUBLISH", "fast"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "TICKBRIDGE_PUBLISH");
        assert!(err.to_string().contains("sync, pipelined, async"), "{err}");
        let err = Config::from_vars(vars(&[
            ("TICKBRIDGE_STORE", "memory"),
            ("TICKBRIDGE_DEADLINE_MARGIN_MS", "soon"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "TICKBRIDGE_DEADLINE_MARGIN_MS");
        for (var, value) in [
            ("TICKBRIDGE_PREFLIGHT", "maybe"),
            ("TICKBRIDGE_TP_MAX_MESSAGE_BYTES", "12"),
            ("TICKBRIDGE_CLAIM_CHECK_CONCURRENCY", "0"),
            ("TICKBRIDGE_S3_FLUSH_ROWS", "0"),
        ] {
            let err = Config::from_vars(vars(&[("TICKBRIDGE_STORE", "memory"), (var, value)]))
                .unwrap_err();
            assert_eq!(err.var, var);
        }
        let err = Config::from_vars(vars(&[
            ("TICKBRIDGE_STORE", "memory"),
            ("TICKBRIDGE_TP_PASSWORD", "secret"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "TICKBRIDGE_TP_USER");
        assert!(!err.to_string().contains("secret"));
        let c = Config::from_vars(vars(&[
            ("TICKBRIDGE_STORE", "memory"),
            ("TICKBRIDGE_TP_USER", "feed"),
            ("TICKBRIDGE_TP_PASSWORD", "hunter2"),
        ]))
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn log_filter_and_schema_dir_are_checked() {
        let memory = ("TICKBRIDGE_STORE", "memory");
        let err = Config::from_vars(vars(&[memory, ("TICKBRIDGE_LOG", "garbage[[")])).unwrap_err();
        assert_eq!(err.var, "TICKBRIDGE_LOG");
        assert!(err.to_string().contains("garbage[["), "{err}");
        for ok in ["info", "tickbridge=debug,warn", "off"] {
            Config::from_vars(vars(&[memory, ("TICKBRIDGE_LOG", ok)])).unwrap();
        }
        let err = Config::from_vars(vars(&[memory, ("TICKBRIDGE_SCHEMAS", "/nope")])).unwrap_err();
        assert_eq!(err.var, "TICKBRIDGE_SCHEMAS");
        assert!(err.to_string().contains("/nope"), "{err}");
        let dir = env!("CARGO_MANIFEST_DIR").to_string() + "/schemas";
        let c = Config::from_vars(vars(&[memory, ("TICKBRIDGE_SCHEMAS", &dir)])).unwrap();
        assert_eq!(c.schemas_dir, Some(PathBuf::from(dir)));
    }

    #[test]
    fn password_secret_is_an_alternative_to_the_plain_password() {
        let c = Config::from_vars(vars(&[
            ("TICKBRIDGE_STORE", "memory"),
            ("TICKBRIDGE_TP_USER", "feed"),
            (
                "TICKBRIDGE_TP_PASSWORD_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:tp",
            ),
        ]))
        .unwrap();
        assert_eq!(
            c.tp_password_secret.as_deref(),
            Some("arn:aws:secretsmanager:eu-west-1:1:secret:tp")
        );
        assert!(c.tp_password.is_none());
        let err = Config::from_vars(vars(&[
            ("TICKBRIDGE_STORE", "memory"),
            ("TICKBRIDGE_TP_USER", "feed"),
            ("TICKBRIDGE_TP_PASSWORD", "hunter2"),
            ("TICKBRIDGE_TP_PASSWORD_SECRET_ARN", "tp"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "TICKBRIDGE_TP_PASSWORD_SECRET_ARN");
        let err = Config::from_vars(vars(&[
            ("TICKBRIDGE_STORE", "memory"),
            ("TICKBRIDGE_TP_PASSWORD_SECRET_ARN", "tp"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "TICKBRIDGE_TP_USER");
    }
}
