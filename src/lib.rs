//! tickbridge: AWS Kinesis and SQS FIFO records into a kdb+ tickerplant,
//! typed, deduplicated and in order.

pub mod kdb;
