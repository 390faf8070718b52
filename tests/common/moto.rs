//! A moto server (DynamoDB, SQS, Kinesis… emulated) for integration tests.
//!
//! The server runs in a small Python wrapper that binds port 0 (so there is
//! no race for a "free" port), prints the port it got, and exits when its
//! stdin reaches end of file. The test process holds that pipe, so the
//! server goes away with the test process however it ends (including a
//! shared server in a `static`, which is never dropped); `Drop` also kills
//! it at once.
//!
//! Nothing global is set: callers build their SDK configuration from
//! [`MotoServer::endpoint`], e.g. with [`MotoServer::sdk_config`].

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

const START_LIMIT: Duration = Duration::from_secs(20);

pub struct MotoServer {
    child: Child,
    // Held open: the wrapper exits when this closes.
    _stdin: ChildStdin,
    port: u16,
}

impl MotoServer {
    /// Starts a fresh server; panics (failing the test) when moto is
    /// missing or does not come up within 20 s.
    pub fn start() -> MotoServer {
        let mut child = super::python()
            .arg(super::repo_root().join("tests/py/moto_server.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python starts (is TICKBRIDGE_PYTHON set?)");
        let stdin = child.stdin.take().expect("moto stdin");
        let stdout = child.stdout.take().expect("moto stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let port = match rx.recv_timeout(START_LIMIT) {
            Ok(line) => line.trim().parse::<u16>().ok(),
            Err(_) => None,
        };
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("moto server did not start within {START_LIMIT:?} (is moto[server] installed?)");
        };
        assert!(
            super::wait_for_port(port, START_LIMIT),
            "moto server not listening on {port}"
        );
        MotoServer {
            child,
            _stdin: stdin,
            port,
        }
    }

    /// One server for the whole test binary, started on first use. Tests
    /// sharing it use unique table and queue names.
    pub fn shared() -> &'static MotoServer {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        SHARED.get_or_init(MotoServer::start)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SDK configuration for this server: dummy static credentials,
    /// us-east-1, whatever the environment says.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        tickbridge::aws::local_config(&self.endpoint()).await
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A name no other test in this run uses: `prefix-<pid>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
