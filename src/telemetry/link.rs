//! The tickerplant connection coming and going.

/// A connection to the tickerplant is open (after the handshake).
pub struct TpConnected<'a> {
    pub tp: &'a dyn std::fmt::Display,
}

impl TpConnected<'_> {
    pub fn emit(&self) {
        tracing::info!(tp = %self.tp, "kdb+ connection open");
    }
}

/// What happens after a failed connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TpUnavailableNext {
    /// The publisher tries again after this many milliseconds.
    RetryInMs(u64),
    /// At start-up: the first batch tries again.
    FirstBatch,
}

/// The tickerplant could not be reached: `WARN`.
pub struct TpUnavailable<'a> {
    pub tp: &'a dyn std::fmt::Display,
    pub error: &'a dyn std::fmt::Display,
    pub next: TpUnavailableNext,
}

impl TpUnavailable<'_> {
    pub fn emit(&self) {
        match self.next {
            TpUnavailableNext::RetryInMs(retry_in_ms) => tracing::warn!(
                tp = %self.tp, error = %self.error, retry_in_ms,
                "kdb+ connect failed; retrying"
            ),
            TpUnavailableNext::FirstBatch => tracing::warn!(
                tp = %self.tp, error = %self.error,
                "tickerplant not reachable at init; the first batch will retry"
            ),
        }
    }
}

/// A new connection's tickerplant differs from the schemas (DESIGN §4).
/// `TICKBRIDGE_PREFLIGHT=warn`: one `WARN` per finding and publishing goes
/// on; `error`: one `ERROR` with every finding, and nothing is sent.
pub struct TpDiffers<'a> {
    pub tp: &'a dyn std::fmt::Display,
    pub findings: &'a [String],
    pub publishing: bool,
}

impl TpDiffers<'_> {
    pub fn emit(&self) {
        if self.publishing {
            for finding in self.findings {
                tracing::warn!(
                    tp = %self.tp, finding = %finding,
                    "tickerplant differs from the schemas (TICKBRIDGE_PREFLIGHT=warn: publishing anyway)"
                );
            }
        } else {
            tracing::error!(
                tp = %self.tp, findings = %self.findings.join("; "),
                "tickerplant does not match the schemas; nothing is sent to it (TICKBRIDGE_PREFLIGHT=error)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::capture::lines;

    #[test]
    fn the_address_is_tp_and_target_stays_the_module() {
        let logs = lines(|| {
            TpConnected {
                tp: &"127.0.0.1:5010",
            }
            .emit();
            TpUnavailable {
                tp: &"127.0.0.1:5010",
                error: &"connection refused",
                next: TpUnavailableNext::RetryInMs(200),
            }
            .emit();
        });
        assert_eq!(logs.len(), 2);
        for l in &logs {
            assert_eq!(l["tp"], "127.0.0.1:5010");
            assert!(l["target"].as_str().unwrap().starts_with("tickbridge::"));
        }
        assert_eq!(logs[1]["retry_in_ms"], 200);
        assert_eq!(logs[1]["level"], "WARN");
    }
}
