//! Progress on stderr: a redrawn bar with rate and ETA on a terminal, a
//! plain log line every few seconds otherwise (CI, pipes, files).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const LOG_EVERY: Duration = Duration::from_secs(5);
const DRAW_EVERY: Duration = Duration::from_millis(100);
const WIDTH: usize = 30;

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

    fn rate(&self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        }
    }

    fn show(&self) {
        let rate = self.rate();
        let eta = match self.total {
            Some(t) if rate > 0.0 && t > self.done => {
                format!("{:.0}s", (t - self.done) as f64 / rate)
            }
            _ => "-".into(),
        };
        if self.terminal {
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
                "\r{} {bar} {}{of}  {rate:.0}/s  ETA {eta}   ",
                self.label, self.done
            );
            let _ = err.flush();
        } else {
            tracing::info!(
                what = %self.label, done = self.done, total = ?self.total,
                rate_per_s = format!("{rate:.0}"), eta = %eta, "replay progress"
            );
        }
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

/// Parses `--rate`: `200`, `200/s` or `200/m`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (num, per) = match s.split_once('/') {
        Some((n, "s")) => (n, 1.0),
        Some((n, "m")) => (n, 60.0),
        Some((_, unit)) => return Err(format!("rate unit {unit:?} is not s or m")),
        None => (s, 1.0),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a rate like 200/s"))?;
    if !(n > 0.0 && n.is_finite()) {
        return Err(format!("{s:?}: the rate must be above zero"));
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
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("3/h").is_err());
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
