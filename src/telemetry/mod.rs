//! Logs and metrics as typed events (DESIGN §1, §11): one struct per thing
//! that happens, whose `emit` writes one log line with fixed field names
//! and, where the thing is counted, adds it to the batch's
//! [`Metrics`](crate::metrics::Metrics). The Lambda, the polling runner and
//! replay emit the same events, so an operator reads one vocabulary
//! whichever of them ran.
//!
//! Conventions every event keeps (the JSON logs are flat, one object per
//! line):
//! - field values are plain values, never Rust `Debug` text: an optional
//!   value is left out when absent, lists are joined into one string;
//! - durations are milliseconds rounded to 3 decimals (`*_ms`), rates
//!   have 3 significant digits (`*_per_s`);
//! - no field is named `message`, `level`, `target` or `timestamp`: the
//!   JSON formatter writes those keys itself and a second one would be a
//!   duplicate key (the tickerplant address is `tp`);
//! - `source` is `kinesis` or `sqs`, `source_arn` the stream or queue,
//!   `position` what the batch response names (a Kinesis sequence number,
//!   an SQS message id).

mod batch;
mod link;
mod replay;
mod runner;
mod s3;

pub use batch::{
    failed_as_bad, position, BadRecord, BadRecordOutcome, BatchDone, CommitIncomplete,
    PipelinedRefusal, RecordsLeft, RefusedRun, FAILED_AS_BAD,
};
pub use link::{TpConnected, TpDiffers, TpUnavailable, TpUnavailableNext};
pub use replay::{ReplayDone, ReplayProgress, ReplayStarted};
pub use runner::{
    AwsRetry, DeleteFailed, FunctionError, OnFailureSent, PollDone, PollStarted, RunnerProgress,
    RunnerSummary, ShardFinished, ShardStarted,
};
pub use s3::{
    ClaimCheckNotDeleted, ObjectClaimUnsettled, ObjectQuarantined, ObjectRead, ObjectUpdateRefused,
};

#[cfg(test)]
mod app_events;
#[cfg(test)]
mod capture;

/// How many bytes of a payload a log line shows.
pub const PREVIEW_BYTES: usize = 256;

/// Milliseconds rounded to 3 decimals (a microsecond): `0.022862999999999994`
/// says nothing `0.023` does not.
pub fn ms3(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// `x` to three significant digits (a rate of 0.0123/s or 12300/s alike:
/// small runs are not rounded to 0 or 1).
pub fn significant(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return 0.0;
    }
    let scale = 10f64.powi(2 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// Items per second over `secs`, to three significant digits.
pub fn per_second(items: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        significant(items as f64 / secs)
    } else {
        0.0
    }
}

/// The first [`PREVIEW_BYTES`] bytes of a payload as text: invalid UTF-8
/// replaced, control characters escaped (one line stays one line), and `…`
/// when there is more. A 10 MB record must not make a 10 MB log line; the
/// whole length goes in its own field.
pub fn payload_preview(payload: &[u8]) -> String {
    let cut = payload.len().min(PREVIEW_BYTES);
    let mut head = &payload[..cut];
    // A character split by the cut is dropped rather than shown as U+FFFD.
    if let Err(e) = std::str::from_utf8(head) {
        if e.error_len().is_none() && cut < payload.len() {
            head = &head[..e.valid_up_to()];
        }
    }
    let mut text = String::with_capacity(head.len() + 3);
    for c in String::from_utf8_lossy(head).chars() {
        if c.is_control() {
            text.extend(c.escape_default());
        } else {
            text.push(c);
        }
    }
    if cut < payload.len() {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates_are_rounded_for_people() {
        assert_eq!(ms3(0.022_862_999_999_999_994), 0.023);
        assert_eq!(ms3(12.0), 12.0);
        assert_eq!(significant(0.123_456), 0.123);
        assert_eq!(significant(12_345.6), 12_300.0);
        assert_eq!(per_second(6, 0.024), 250.0);
        assert_eq!(per_second(1, 3.0), 0.333);
        assert_eq!(per_second(5, 0.0), 0.0);
    }

    #[test]
    fn previews_are_bounded_single_lines() {
        let big = vec![b'x'; 10 << 20];
        let p = payload_preview(&big);
        assert_eq!(p, format!("{}…", "x".repeat(PREVIEW_BYTES)));
        assert_eq!(payload_preview(b"{\"a\":1}\n"), "{\"a\":1}\\n");
        assert_eq!(payload_preview(b"\xff\x00"), "\u{fffd}\\u{0}");
        // 255 bytes of ASCII then a 3-byte character cut after its first
        // byte: the partial character is dropped, not garbled.
        let mut split = vec![b'a'; PREVIEW_BYTES - 1];
        split.extend("€€".as_bytes());
        let p = payload_preview(&split);
        assert_eq!(p, format!("{}…", "a".repeat(PREVIEW_BYTES - 1)));
        assert_eq!(payload_preview(b""), "");
    }
}
