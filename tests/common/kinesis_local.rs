//! kinesis-local (npm): a Kinesis emulator with real 56-digit sequence
//! numbers, started on free loopback ports for integration tests.
//!
//! It runs from its own package folder (it reads its TLS certificate from
//! there) under a shell that kills it when its stdin reaches end of file.
//! The test process holds that pipe, so the emulator goes away with the
//! test process however it ends; `Drop` also kills it at once.
//!
//! The package is installed by `scripts/test` into `tests/node/`;
//! `TICKBRIDGE_KINESIS_LOCAL` may name another `main.js`.

use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::StreamStatus;

const START_LIMIT: Duration = Duration::from_secs(30);

pub struct KinesisLocal {
    child: Child,
    // Held open: the wrapper kills the emulator when this closes.
    _stdin: ChildStdin,
    port: u16,
}

fn main_js() -> PathBuf {
    std::env::var_os("TICKBRIDGE_KINESIS_LOCAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::repo_root().join("tests/node/node_modules/kinesis-local/main.js"))
}

impl KinesisLocal {
    /// Starts a fresh emulator; panics (failing the test) when it is not
    /// installed or does not listen within 30 s.
    pub fn start() -> KinesisLocal {
        let script = main_js();
        assert!(
            script.is_file(),
            "kinesis-local is not installed at {} (run scripts/test, or set TICKBRIDGE_KINESIS_LOCAL)",
            script.display()
        );
        // The ports are chosen free and then handed over, so another process
        // may take one in between: try a few times before giving up.
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(&script) {
                Ok(k) => return k,
                Err(e) => last = e,
            }
        }
        panic!("kinesis-local did not start: {last}");
    }

    fn try_start(script: &std::path::Path) -> Result<KinesisLocal, String> {
        let port = super::free_port();
        let tls_port = super::free_port();
        let dir = script.parent().ok_or("main.js has no folder")?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("node \"$0\" & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid 2>/dev/null")
            .arg(script)
            .current_dir(dir)
            .env("KINESIS_MOCK_PLAIN_PORT", port.to_string())
            .env("KINESIS_MOCK_TLS_PORT", tls_port.to_string())
            .env("LOG_LEVEL", "ERROR")
            .env("CREATE_STREAM_DURATION", "50ms")
            .env("UPDATE_SHARD_COUNT_DURATION", "50ms")
            .env("SPLIT_SHARD_DURATION", "50ms")
            .env("MERGE_SHARDS_DURATION", "50ms")
            .env("SHOULD_PERSIST_DATA", "false")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run node: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let started = Instant::now();
        while started.elapsed() < START_LIMIT {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited early with {status}"));
            }
            if super::wait_for_port(port, Duration::from_millis(200)) {
                return Ok(KinesisLocal {
                    child,
                    _stdin: stdin,
                    port,
                });
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("not listening on {port} within {START_LIMIT:?}"))
    }

    /// One emulator for the whole test binary, started on first use. Tests
    /// sharing it use unique stream names.
    pub fn shared() -> &'static KinesisLocal {
        static SHARED: OnceLock<KinesisLocal> = OnceLock::new();
        SHARED.get_or_init(KinesisLocal::start)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` (plain HTTP).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SDK configuration for this emulator: dummy credentials, us-east-1.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        tickbridge::aws::local_config(&self.endpoint()).await
    }

    pub async fn client(&self) -> aws_sdk_kinesis::Client {
        aws_sdk_kinesis::Client::new(&self.sdk_config().await)
    }
}

impl Drop for KinesisLocal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a stream with `shards` shards and waits until it is ACTIVE;
/// returns its ARN.
pub async fn create_stream(client: &aws_sdk_kinesis::Client, name: &str, shards: i32) -> String {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create stream {name}: {e:?}"));
    let started = Instant::now();
    loop {
        let d = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describe stream {name}: {e:?}"));
        let summary = d.stream_description_summary().expect("a stream summary");
        if summary.stream_status() == &StreamStatus::Active {
            return summary.stream_arn().to_string();
        }
        assert!(
            started.elapsed() < START_LIMIT,
            "stream {name} not ACTIVE within {START_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
