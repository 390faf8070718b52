//! Benchmarks shared by `tickbridge bench` and `cargo bench`: each prints figures.

pub mod bridge;
pub mod decode;
pub mod encode;
pub mod events;
pub mod latency;
pub mod replay;
pub mod run;
pub mod tp;
