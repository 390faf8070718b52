//! Progress on stderr: a redrawn bar with rate and ETA on a terminal, a
//! plain log line every few seconds otherwise (CI, pipes, files).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const LOG_EVERY: Duration = Duration::from_secs(5);
const DRAW_EVERY: Duration = Duration::from_millis(100);
const WIDTH: usize = 30;

use crate::telemetry::ReplayProgress;

pub struct Progress {
    label: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_shown: Instant,
    terminal: bool,
}

impl Progress {
    /// `total` is what is expected, when known (a queue's depth).
    pub fn new(label: impl Into<String>, total: Option<u64>) -> Progress {
        let now = Instant::now();
        Progress {
            label: label.into(),
            total,
            done: 0,
            started: now,
            last_shown: now,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    pub fn advance(&mut self, n: u64) {
        self.done += n;
        let every = if self.terminal { DRAW_EVERY } else { LOG_EVERY };
        if self.last_shown.elapsed() >= every {
            self.last_shown = Instant::now();
            self.show();
        }
    }

    pub fn done(&self) -> u64 {
        self.done
    }

    fn show(&self) {
        let event = ReplayProgress {
            what: &self.label,
            done: self.done,
            total: self.total,
            elapsed: self.started.elapsed(),
        };
        if !self.terminal {
            event.emit();
            return;
        }
        let (rate, eta) = event.figures();
        let eta = eta.map_or_else(|| "-".to_string(), |s| format!("{s:.0}s"));
        let bar = match self.total {
            Some(t) if t > 0 => {
                let filled = ((self.done.min(t) as f64 / t as f64) * WIDTH as f64) as usize;
                format!("[{}{}]", "#".repeat(filled), ".".repeat(WIDTH - filled))
            }
            _ => String::new(),
        };
        let of = self.total.map(|t| format!("/{t}")).unwrap_or_default();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{} {bar} {}{of}  {rate}/s  ETA {eta}   ",
            self.label, self.done
        );
        let _ = err.flush();
    }

    /// Ends the bar's line (terminal) or logs the final count.
    pub fn finish(&mut self) {
        self.show();
        if self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// Paces work to at most `per_second` items, measured from the start.
pub struct RateLimit {
    per_second: Option<f64>,
    started: Instant,
    taken: f64,
}

impl RateLimit {
    pub fn new(per_second: Option<f64>) -> RateLimit {
        RateLimit {
            per_second: per_second.filter(|r| *r > 0.0),
            started: Instant::now(),
            taken: 0.0,
        }
    }

    /// Waits until `n` more items fit in the rate.
    pub async fn take(&mut self, n: usize) {
        let Some(rate) = self.per_second else {
            return;
        };
        let due = Duration::from_secs_f64(self.taken / rate);
        self.taken += n as f64;
        let elapsed = self.started.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

/// Why a `--rate` value is not a rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("rate {value:?}: unit {unit:?} is not s or m (e.g. 200/s, 120/m)")]
    Unit { value: String, unit: String },
    #[error("rate {0:?}: not a number of records per second or minute (e.g. 200/s)")]
    NotANumber(String),
    #[error("rate {0:?}: must be above zero")]
    NotPositive(String),
}

/// Parses `--rate`: `200`, `200/s` or `200/m`, as records per second.
pub fn parse_rate(s: &str) -> Result<f64, RateError> {
    let s = s.trim();
    let (num, per) = match s.split_once('/') {
        Some((n, "s")) => (n, 1.0),
        Some((n, "m")) => (n, 60.0),
        Some((_, unit)) => {
            return Err(RateError::Unit {
                value: s.to_string(),
                unit: unit.to_string(),
            })
        }
        None => (s, 1.0),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| RateError::NotANumber(s.to_string()))?;
    if !(n > 0.0 && n.is_finite()) {
        return Err(RateError::NotPositive(s.to_string()));
    }
    Ok(n / per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("200"), Ok(200.0));
        assert_eq!(parse_rate("200/s"), Ok(200.0));
        assert_eq!(parse_rate("120/m"), Ok(2.0));
        assert_eq!(parse_rate("0/s"), Err(RateError::NotPositive("0/s".into())));
        assert_eq!(
            parse_rate("fast").unwrap_err().to_string(),
            "rate \"fast\": not a number of records per second or minute (e.g. 200/s)"
        );
        assert_eq!(
            parse_rate("3/h").unwrap_err().to_string(),
            "rate \"3/h\": unit \"h\" is not s or m (e.g. 200/s, 120/m)"
        );
    }

    #[tokio::test]
    async fn rate_limit_paces() {
        let mut r = RateLimit::new(Some(100.0));
        let t = Instant::now();
        for _ in 0..5 {
            r.take(10).await;
        }
        // 40 items were due before the fifth take: 0.4 s at 100/s.
        assert!(
            t.elapsed() >= Duration::from_millis(390),
            "{:?}",
            t.elapsed()
        );
    }
}
