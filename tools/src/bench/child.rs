//! Child processes the benchmarks start (moto, the stand-in), killed when
//! dropped so a failed bench leaves nothing running.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// moto on a free loopback port (the program prints the port it bound);
/// the endpoint URL with it.
pub fn start_moto() -> anyhow::Result<(Reaped, String)> {
    let python = std::env::var("TICKBRIDGE_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(python)
        .args(["-c", super::MOTO_SERVER_PY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start python for moto: {e}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("moto: no stdout"))?;
    let moto = Reaped(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let port: u16 = line
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("moto did not start (is moto[server] installed?)"))?;
    Ok((moto, format!("http://127.0.0.1:{port}")))
}
