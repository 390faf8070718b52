//! Benchmarks shared by `tickbridge bench` and `cargo bench`: each prints figures.

pub mod bridge;
mod child;
pub mod decode;
pub mod encode;
pub mod events;
pub mod lambda_process;
pub mod latency;
pub mod replay;
pub mod run;
pub mod runtime_api;
pub mod s3;
pub mod tp;

/// A moto server (AWS emulator) for benchmarks and tests, as a Python
/// program: it binds a free loopback port (no race for a "free" port),
/// prints the port, and exits when its stdin closes, so it goes away with
/// the process that started it however that process ends.
pub const MOTO_SERVER_PY: &str = include_str!("../../../tests/py/moto_server.py");
