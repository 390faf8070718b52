//! Helpers shared by the integration tests: free ports, the Python (PyKX)
//! oracle, and waiting for servers.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released for the server under test).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The Python with PyKX that the test command installed
/// (`TICKBRIDGE_PYTHON`, else `python3`). PyKX runs unlicensed.
pub fn python() -> Command {
    let exe = std::env::var("TICKBRIDGE_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut c = Command::new(exe);
    c.env("PYKX_UNLICENSED", "true")
        .env("PYKX_NOQCE", "true")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(repo_root());
    c
}

/// Runs `tests/py/<script>` with args; panics with its stderr when it fails,
/// so a missing PyKX is a failure, never a silent skip.
pub fn run_python(script: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut cmd = python();
    cmd.arg(repo_root().join("tests/py").join(script))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("python starts (is TICKBRIDGE_PYTHON set?)");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input).expect("write to python");
    }
    let out = child.wait_with_output().expect("python finishes");
    assert!(
        out.status.success(),
        "tests/py/{script} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The captured kdb+ vectors: `TICKBRIDGE_KDB_VECTORS`, else
/// `../shared/kdb-vectors` beside the repository.
pub fn vectors_dir() -> PathBuf {
    std::env::var_os("TICKBRIDGE_KDB_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/kdb-vectors"))
}

/// Waits until something listens on `port`, up to `limit`.
pub fn wait_for_port(port: u16, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
pub mod hostile;
pub mod http_proxy;
pub mod kinesis_local;
pub mod moto;

/// The test's own `TICKBRIDGE_*` and `AWS_*` variables, which a child
/// `tickbridge` must not inherit: each test says what its child sees.
pub fn inherited_settings() -> Vec<String> {
    std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("TICKBRIDGE_") || k.starts_with("AWS_"))
        .collect()
}

/// Credentials and region an emulator accepts, and no instance metadata
/// lookups (they would wait for a host that is not there).
pub const EMULATOR_AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// The `tickbridge` command line. It is the tools package's binary, not
/// this package's, so cargo does not build it for these tests: the test
/// command (`scripts/test`) builds the whole workspace first. It sits in
/// the same target folder as the test executables (`target/<profile>/`).
pub fn tickbridge_exe() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("tickbridge"))
        .expect("test executables live in target/<profile>/deps");
    assert!(
        bin.is_file(),
        "{} is missing: build it first with `cargo build --workspace --bins` (scripts/test does)",
        bin.display()
    );
    bin
}
