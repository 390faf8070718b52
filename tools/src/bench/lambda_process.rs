//! The real `bootstrap` binary as a child process pointed at a
//! [`RuntimeApi`](super::runtime_api::RuntimeApi), and what `/proc` says
//! about it (peak RSS, CPU time).

use std::collections::VecDeque;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// Lines of output kept for an error message.
const TAIL_LINES: usize = 20;

/// The bootstrap process; killed when dropped. Its stdout and stderr go to
/// pipes drained by a thread each (never a terminal, never left to fill),
/// keeping the last lines for the error message when it misbehaves, and
/// every line when asked to (tests check that stdout is JSON only).
pub struct Function {
    child: Child,
    tail: Arc<Mutex<VecDeque<String>>>,
    stdout: Option<Arc<Mutex<Vec<String>>>>,
}

impl Function {
    /// Starts `path` with the Lambda environment for runtime API `api`,
    /// the tickerplant `tp`, the in-memory store, and `extra` settings.
    pub fn start(
        path: &Path,
        api: SocketAddr,
        tp: SocketAddr,
        extra: &[(&str, &str)],
        keep_stdout: bool,
    ) -> anyhow::Result<Function> {
        let mut cmd = Command::new(path);
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://{api}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "tickbridge-bench")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("TICKBRIDGE_TP", tp.to_string())
            .env("TICKBRIDGE_STORE", "memory")
            .env("TICKBRIDGE_LOG", "warn");
        // The allocator's own settings pass through, so they can be
        // compared without a rebuild.
        for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("MIMALLOC_")) {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", path.display()))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let stdout = keep_stdout.then(|| Arc::new(Mutex::new(Vec::new())));
        let out = child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>);
        let err = child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>);
        for (pipe, keep) in [(out, stdout.clone()), (err, None)] {
            let Some(pipe) = pipe else { continue };
            let tail = tail.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(all) = &keep {
                        if let Ok(mut all) = all.lock() {
                            all.push(line.clone());
                        }
                    }
                    if let Ok(mut t) = tail.lock() {
                        if t.len() == TAIL_LINES {
                            t.pop_front();
                        }
                        t.push_back(line);
                    }
                }
            });
        }
        Ok(Function {
            child,
            tail,
            stdout,
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The last lines it wrote (stdout and stderr), for error messages.
    pub fn tail(&self) -> String {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Every stdout line so far (when started with `keep_stdout`).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout
            .as_ref()
            .and_then(|s| s.lock().ok().map(|s| s.clone()))
            .unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Peak resident memory (VmHWM), in kB.
    pub fn peak_rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// CPU time of all its threads so far, in ns (Linux schedstat: the
    /// time on a CPU, not the time waiting for one).
    pub fn cpu_ns(&self) -> Option<u64> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.id())).ok()?;
        let mut total = 0u64;
        for task in tasks.flatten() {
            // A thread may end between listing and reading.
            let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            total += text.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(total)
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
