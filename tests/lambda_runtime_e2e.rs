//! The real `bootstrap` binary end to end through the Lambda runtime API:
//! cargo-lambda's emulator (`cargo lambda watch --only-lambda-apis`, from
//! PyPI `cargo-lambda`) serves the runtime API, `bootstrap` polls it as it
//! would on `provided.al2023`, and `cargo lambda invoke` sends Kinesis and
//! SQS FIFO events. The bridge runs with the in-memory store against the
//! tickerplant stand-in over TCP; the test checks the exact batch responses,
//! what reached the stand-in, and that everything the binary wrote is JSON.

mod bridge_support;

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bridge_support::common::{free_port, repo_root, wait_for_port};
use bridge_support::{kinesis_shard0, msg, seq, sizes_of, sqs, trade};
use serde_json::{json, Value};
use tickbridge::tp::{spawn, RunningTp, TickerplantConfig};

/// How long any one step may take before the test gives up.
const STEP: Duration = Duration::from_secs(30);

/// A child process that is killed when the test ends, however it ends.
struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    fn start(name: &'static str, cmd: &mut Command) -> Proc {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name, child }
    }

    fn assert_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}):\n{}",
                self.name,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// cargo-lambda as pip installs it: next to the test Python
/// (`TICKBRIDGE_PYTHON`'s bin directory), else on PATH.
fn cargo_lambda() -> PathBuf {
    if let Ok(py) = std::env::var("TICKBRIDGE_PYTHON") {
        if let Some(dir) = Path::new(&py).parent() {
            let exe = dir.join("cargo-lambda");
            if exe.is_file() {
                return exe;
            }
        }
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("cargo-lambda"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "cargo-lambda not found next to TICKBRIDGE_PYTHON or on PATH \
             (pip install -r tests/requirements.txt)"
        )
    })
}

/// Runs a command to completion within `limit`, killing it past that.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("command starts");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait on command") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Waits until `file` holds a line containing `needle`.
fn wait_for_line(file: &Path, needle: &str, proc: &mut Proc, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if std::fs::read_to_string(file).is_ok_and(|t| t.lines().any(|l| l.contains(needle))) {
            return;
        }
        proc.assert_running(file);
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "no line with {needle:?} from {} within {limit:?}:\n{}",
        proc.name,
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

/// The emulator and the function, wired together.
struct Lambda {
    cargo_lambda: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    // Dropped in this order: the function first, then the emulator.
    bootstrap: Proc,
    _emulator: Proc,
}

impl Lambda {
    fn start(tp: SocketAddr) -> Lambda {
        let dir = tempfile::tempdir().expect("temp dir");
        let cargo_lambda = cargo_lambda();
        let port = free_port();
        let emulator_log = dir.path().join("emulator.log");
        let log = std::fs::File::create(&emulator_log).expect("emulator log");
        let mut emulator = Proc::start(
            "cargo lambda watch",
            Command::new(&cargo_lambda)
                .args(["lambda", "watch", "--only-lambda-apis"])
                .args(["--invoke-address", "127.0.0.1"])
                .args(["--invoke-port", &port.to_string()])
                .args(["--timeout", "30"])
                .current_dir(repo_root())
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log),
        );
        assert!(
            wait_for_port(port, STEP),
            "emulator not listening on {port}"
        );
        emulator.assert_running(&emulator_log);

        let out = dir.path().join("bootstrap.stdout");
        let err = dir.path().join("bootstrap.stderr");
        let mut bootstrap = Proc::start(
            "bootstrap",
            Command::new(env!("CARGO_BIN_EXE_bootstrap"))
                // The variables the emulator prints for --only-lambda-apis.
                .env(
                    "AWS_LAMBDA_RUNTIME_API",
                    format!("http://127.0.0.1:{port}/.rt"),
                )
                .env("AWS_LAMBDA_FUNCTION_NAME", "_")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
                .env("TICKBRIDGE_TP", tp.to_string())
                .env("TICKBRIDGE_STORE", "memory")
                .env("TICKBRIDGE_BAD_RECORDS", "fail")
                .env("TICKBRIDGE_LOG", "info")
                .env("TICKBRIDGE_METRICS_NAMESPACE", "tickbridge-e2e")
                .env_remove("TICKBRIDGE_SCHEMAS")
                .env_remove("TICKBRIDGE_DEDUPE_TABLE")
                .env_remove("TICKBRIDGE_QUARANTINE_QUEUE_URL")
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&out).expect("stdout file"))
                .stderr(std::fs::File::create(&err).expect("stderr file")),
        );
        wait_for_line(&out, "tickbridge ready", &mut bootstrap, STEP);
        Lambda {
            cargo_lambda,
            port,
            dir,
            bootstrap,
            _emulator: emulator,
        }
    }

    /// `cargo lambda invoke` with the event as a file; returns the
    /// function's response.
    fn invoke(&mut self, name: &str, event: &Value) -> Value {
        let file = self.dir.path().join(format!("{name}.json"));
        std::fs::write(&file, event.to_string()).expect("write event");
        let out = run_bounded(
            Command::new(&self.cargo_lambda)
                .args(["lambda", "invoke"])
                .args(["--invoke-address", "127.0.0.1"])
                .args(["--invoke-port", &self.port.to_string()])
                .arg("--data-file")
                .arg(&file)
                .args(["--output-format", "json"])
                .env("NO_COLOR", "1")
                .current_dir(repo_root()),
            STEP,
        );
        self.bootstrap
            .assert_running(&self.dir.path().join("bootstrap.stderr"));
        assert!(
            out.status.success(),
            "cargo lambda invoke {name} failed ({}):\n{}\n{}\nbootstrap:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.stdout()
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "cargo lambda invoke {name} printed no JSON ({e}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Asserts the response, showing the function's log when it differs.
    fn expect(&self, got: Value, want: Value) {
        assert_eq!(got, want, "bootstrap log:\n{}", self.stdout());
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bootstrap.stdout")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bootstrap.stderr")).unwrap_or_default()
    }
}

/// The stand-in on its own runtime, so the test itself can block on
/// processes.
fn stand_in(rt: &tokio::runtime::Runtime) -> RunningTp {
    rt.block_on(spawn(TickerplantConfig::new(bridge_support::schemas())))
        .expect("stand-in starts")
}

/// Every line parsed as a JSON object; panics naming the first that is not.
fn json_lines(what: &str, text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v) if v.is_object() => v,
            _ => panic!("{what} has a line that is not a JSON object: {l:?}\n{text}"),
        })
        .collect()
}

fn failures(ids: &[&str]) -> Value {
    let items: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "itemIdentifier": id }))
        .collect();
    json!({ "batchItemFailures": items })
}

#[test]
fn bootstrap_serves_kinesis_and_sqs_fifo_through_the_runtime_api() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let tp = stand_in(&rt);
    let mut lambda = Lambda::start(tp.local_addr());

    // Kinesis, one shard: a producer duplicate (t-1 again under a new
    // sequence number) is skipped; the bad record cuts the lane (bad
    // records = fail), so the response names it and Lambda retries from it.
    let bad = r#"{"type":"trade","id":"t-4","sym":"K","price":"n/a","size":4,"side":"B"}"#;
    let kin = kinesis_shard0(
        "e2e-trades",
        &[
            (1, trade(1, "K")),
            (2, trade(2, "K")),
            (3, trade(1, "K")),
            (4, bad.to_string()),
            (5, trade(5, "K")),
        ],
    );
    let response = lambda.invoke("kinesis", &kin);
    lambda.expect(response, failures(&[&seq(0, 4)]));
    assert_eq!(sizes_of(&tp, "K"), vec![1, 2]);

    // The same batch redelivered: nothing reaches the stand-in twice, and
    // the response is the same.
    let response = lambda.invoke("kinesis-again", &kin);
    lambda.expect(response, failures(&[&seq(0, 4)]));
    assert_eq!(sizes_of(&tp, "K"), vec![1, 2]);

    // SQS FIFO, two groups: A completes (its last message repeats a1's
    // business id: a duplicate); B stops at its bad message, which is
    // reported with every later message of B.
    let bad_b = r#"{"type":"trade","id":"t-21","sym":"B","price":1.0,"size":"many","side":"S"}"#;
    let fifo = sqs(
        "e2e-trades.fifo",
        &[
            msg("A", "a1", trade(10, "A")),
            msg("B", "b1", trade(20, "B")),
            msg("A", "a2", trade(11, "A")),
            msg("B", "b2", bad_b.to_string()),
            msg("B", "b3", trade(22, "B")),
            msg("A", "a3", trade(10, "A")),
        ],
    );
    let response = lambda.invoke("sqs", &fifo);
    lambda.expect(response, failures(&["b2", "b3"]));
    assert_eq!(sizes_of(&tp, "A"), vec![10, 11]);
    assert_eq!(sizes_of(&tp, "B"), vec![20]);

    // Redelivered: the message keys make a1, a2, b1 duplicates.
    let response = lambda.invoke("sqs-again", &fifo);
    lambda.expect(response, failures(&["b2", "b3"]));
    assert_eq!(sizes_of(&tp, "A"), vec![10, 11]);
    assert_eq!(sizes_of(&tp, "B"), vec![20]);
    assert_eq!(tp.rejected(), 0, "the stand-in refused an update");

    // Everything the binary wrote is JSON lines: tracing events and EMF.
    let stdout = lambda.stdout();
    let lines = json_lines("bootstrap stdout", &stdout);
    json_lines("bootstrap stderr", &lambda.stderr());
    let message = |v: &Value| v.get("message").and_then(Value::as_str).map(str::to_string);
    assert!(
        lines
            .iter()
            .any(|v| message(v).as_deref() == Some("tickbridge ready")),
        "no ready line:\n{stdout}"
    );
    let summaries: Vec<&Value> = lines
        .iter()
        .filter(|v| message(v).as_deref() == Some("batch done"))
        .collect();
    assert_eq!(summaries.len(), 4, "one summary per invocation:\n{stdout}");
    let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let counts: Vec<(Value, Value, Value, Value)> = summaries
        .iter()
        .map(|v| {
            (
                field(v, "source"),
                field(v, "forwarded"),
                field(v, "duplicates"),
                field(v, "failed"),
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            (json!("kinesis"), json!(2), json!(1), json!(2)),
            (json!("kinesis"), json!(0), json!(3), json!(2)),
            (json!("sqs"), json!(3), json!(1), json!(2)),
            (json!("sqs"), json!(0), json!(4), json!(2)),
        ]
    );
    let emf = lines.iter().filter(|v| v.get("_aws").is_some()).count();
    assert!(emf >= 4, "EMF metric lines for each invocation:\n{stdout}");

    drop(lambda);
    rt.block_on(tp.shutdown());
}
