//! Shared by the tp_* integration tests: start `tickbridge tp` as a child
//! process on a free port, and a small blocking kdb+ IPC client.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use tickbridge::kdb::{decode_message, encode_message, MsgType, K};

#[path = "../common/mod.rs"]
pub mod common;

pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub fn tickbridge() -> Command {
    Command::new(common::tickbridge_exe())
}

/// A `tickbridge tp` child, killed when dropped.
pub struct Tp {
    child: Child,
    pub port: u16,
    /// Where its stderr goes, when kept.
    log: Option<(tempfile::TempDir, PathBuf)>,
}

impl Tp {
    pub fn start(journal: Option<&Path>, extra: &[&str]) -> Tp {
        Tp::spawn(journal, extra, false)
    }

    /// Like [`Tp::start`], keeping its log for [`Tp::log`].
    pub fn start_logged(extra: &[&str]) -> Tp {
        Tp::spawn(None, extra, true)
    }

    fn spawn(journal: Option<&Path>, extra: &[&str], keep_log: bool) -> Tp {
        let port = common::free_port();
        let mut cmd = tickbridge();
        let schemas = extra.contains(&"--schemas");
        cmd.args(["tp", "--port", &port.to_string()]);
        if !schemas {
            cmd.arg("--schemas")
                .arg(common::repo_root().join("schemas"));
        }
        cmd.args(extra)
            .env("TICKBRIDGE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(j) = journal {
            cmd.arg("--journal").arg(j);
        }
        let log = keep_log.then(|| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let path = dir.path().join("tp.log");
            (dir, path)
        });
        if let Some((_, path)) = &log {
            cmd.stderr(std::fs::File::create(path).expect("log file"));
        }
        let child = cmd.spawn().expect("tickbridge tp starts");
        let tp = Tp { child, port, log };
        assert!(
            common::wait_for_port(port, Duration::from_secs(20)),
            "tickbridge tp did not listen on {port}"
        );
        tp
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "tickbridge tp did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }

    /// Its log so far (started with [`Tp::start_logged`]).
    pub fn log(&self) -> String {
        let (_, path) = self.log.as_ref().expect("started with start_logged");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// Waits (bounded) until its log has `n` lines containing `text`.
    pub fn wait_for_log(&self, text: &str, n: usize, limit: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.log().lines().filter(|l| l.contains(text)).count() >= n {
                return true;
            }
            if start.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A field of its `/proc/<pid>/status` in kB (`VmRSS`, `VmHWM`).
    pub fn status_kb(&self, field: &str) -> u64 {
        let path = format!("/proc/{}/status", self.child.id());
        let text = std::fs::read_to_string(&path).expect("/proc status readable");
        text.lines()
            .find_map(|l| {
                let rest = l.strip_prefix(field)?.strip_prefix(':')?;
                rest.trim().trim_end_matches("kB").trim().parse().ok()
            })
            .unwrap_or_else(|| panic!("no {field} in {path}"))
    }

    /// Resident memory now, in MB.
    pub fn rss_mb(&self) -> f64 {
        self.status_kb("VmRSS") as f64 / 1024.0
    }

    /// Peak resident memory so far, in MB.
    pub fn peak_mb(&self) -> f64 {
        self.status_kb("VmHWM") as f64 / 1024.0
    }
}

impl Drop for Tp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking q client over our own codec.
pub struct Client {
    pub stream: TcpStream,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        Client::login(port, "test:").expect("handshake accepted")
    }

    /// Handshake with `credentials`; `None` when the server closes the
    /// socket instead of answering.
    pub fn login(port: u16, credentials: &str) -> Option<Client> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut hs = credentials.as_bytes().to_vec();
        hs.extend_from_slice(&[3, 0]);
        // A server that closes at once (refused) may fail the write too.
        stream.write_all(&hs).ok()?;
        let mut cap = [0u8; 1];
        match stream.read(&mut cap) {
            Ok(1) => {
                assert_eq!(cap[0], 3, "capability answered");
                Some(Client { stream })
            }
            _ => None,
        }
    }

    pub fn send(&mut self, msg: &K, t: MsgType) {
        self.stream.write_all(&encode_message(msg, t)).unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads one message; `None` at end of stream.
    pub fn read(&mut self) -> Option<(MsgType, K)> {
        let mut head = [0u8; 8];
        if self.stream.read_exact(&mut head).is_err() {
            return None;
        }
        let len = u32::from_le_bytes(head[4..8].try_into().unwrap()) as usize;
        let mut msg = head.to_vec();
        msg.resize(len, 0);
        self.stream.read_exact(&mut msg[8..]).ok()?;
        let (h, k) = decode_message(&msg).expect("server sends valid messages");
        Some((h.msg_type, k))
    }

    pub fn sync(&mut self, msg: &K) -> K {
        self.send(msg, MsgType::Sync);
        let (t, k) = self.read().expect("an answer");
        assert_eq!(t, MsgType::Response);
        k
    }

    pub fn query(&mut self, q: &str) -> K {
        self.sync(&K::string(q))
    }

    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0) | Err(_))
    }
}

pub fn upd(f: K, table: &str, x: K) -> K {
    K::list(vec![f, K::sym(table), x])
}

pub fn replay(file: &Path, count: bool) -> Output {
    let mut cmd = tickbridge();
    cmd.args(["tp", "replay"]).arg(file);
    if count {
        cmd.arg("--count");
    }
    cmd.output().expect("tickbridge tp replay runs")
}

/// The single journal file in `dir`.
pub fn journal_file(dir: &Path) -> PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("tp"))
        .collect();
    assert_eq!(files.len(), 1, "one journal file: {files:?}");
    files[0].clone()
}
