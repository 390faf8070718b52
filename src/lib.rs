//! tickbridge: AWS Kinesis and SQS FIFO records into a kdb+ tickerplant,
//! typed, deduplicated and in order.

pub mod allocator;
pub mod app;
pub mod aws;
mod bytes_eq;
pub mod clock;
pub mod config;
pub mod ctl;
pub mod dedupe;
pub mod kdb;
pub mod lambda;
pub mod metrics;
pub mod pipeline;
pub mod preflight;
pub mod quarantine;
pub mod replay;
pub mod runner;
pub mod s3;
pub mod schema;
pub mod source;
pub mod telemetry;
pub mod tp;
pub mod tplink;
pub mod xray;
