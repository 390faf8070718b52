//! Progress: on a terminal, a bar drawn by whoever installed one
//! ([`set_terminal_bars`]: the `tickbridge` command line's indicatif bars);
//! otherwise (CI, pipes, files, or no bars installed) a `replay progress`
//! log line every few seconds and one at the end.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::telemetry::ReplayProgress;

const LOG_EVERY: Duration = Duration::from_secs(5);

/// A progress bar drawn on a terminal.
pub trait Bar: Send {
    /// `done` items so far.
    fn set(&mut self, done: u64);
    /// The work is over; leave the final state on screen.
    fn finish(&mut self);
}

/// Makes a bar for a label and the expected total, when known.
pub type MakeBar = Box<dyn Fn(&str, Option<u64>) -> Box<dyn Bar> + Send + Sync>;

static MAKE_BAR: OnceLock<MakeBar> = OnceLock::new();

/// Installs the bars used when stderr is a terminal (once per process;
/// later calls are ignored). The library draws none itself: bars are a
/// command-line concern, and the Lambda has no terminal.
pub fn set_terminal_bars(make: MakeBar) {
    let _ = MAKE_BAR.set(make);
}

pub struct Progress {
    label: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_shown: Instant,
    bar: Option<Box<dyn Bar>>,
}

impl Progress {
    /// `total` is what is expected, when known (a queue's depth).
    pub fn new(label: impl Into<String>, total: Option<u64>) -> Progress {
        let label = label.into();
        let now = Instant::now();
        let bar = match MAKE_BAR.get() {
            Some(make) if std::io::stderr().is_terminal() => Some(make(&label, total)),
            _ => None,
        };
        Progress {
            label,
            total,
            done: 0,
            started: now,
            last_shown: now,
            bar,
        }
    }

    pub fn advance(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &mut self.bar {
            bar.set(self.done);
        } else if self.last_shown.elapsed() >= LOG_EVERY {
            self.last_shown = Instant::now();
            self.log();
        }
    }

    pub fn done(&self) -> u64 {
        self.done
    }

    fn log(&self) {
        ReplayProgress {
            what: &self.label,
            done: self.done,
            total: self.total,
            elapsed: self.started.elapsed(),
        }
        .emit();
    }

    /// Leaves the bar's final state (terminal) or logs the final count.
    pub fn finish(&mut self) {
        match &mut self.bar {
            Some(bar) => {
                bar.set(self.done);
                bar.finish();
            }
            None => self.log(),
        }
    }
}

/// Paces work to at most `per_second` items, measured from the start.
///
/// Item k (counting from 0) may go k/rate seconds after the start. A
/// batch goes all at once, so it waits for its last item's turn: at 10/s
/// a first batch of 20 waits 1.9 s, not nothing (the first batch used to
/// go at once whatever its size, as the wait was computed before counting
/// it).
pub struct RateLimit {
    per_second: Option<f64>,
    // tokio's clock, so a test with paused time sees exact waits.
    started: tokio::time::Instant,
    taken: f64,
}

impl RateLimit {
    pub fn new(per_second: Option<f64>) -> RateLimit {
        RateLimit {
            per_second: per_second.filter(|r| *r > 0.0),
            started: tokio::time::Instant::now(),
            taken: 0.0,
        }
    }

    /// Waits until `n` more items fit in the rate.
    pub async fn take(&mut self, n: usize) {
        let wait = self.wait_for(n, self.started.elapsed());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Counts `n` more items and returns how long, `elapsed` after the
    /// start, they must wait.
    fn wait_for(&mut self, n: usize, elapsed: Duration) -> Duration {
        let Some(rate) = self.per_second else {
            return Duration::ZERO;
        };
        if n == 0 {
            return Duration::ZERO;
        }
        self.taken += n as f64;
        let due = Duration::from_secs_f64((self.taken - 1.0) / rate);
        due.saturating_sub(elapsed)
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

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

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

    #[test]
    fn a_batch_waits_for_its_last_record_s_turn() {
        // The report: --rate 10/s, one event line of 20 records.
        let mut r = RateLimit::new(Some(10.0));
        assert_eq!(r.wait_for(20, ms(0)), ms(1900));
        // The next 20 go 2 s later: 10 a second on average.
        assert_eq!(r.wait_for(20, ms(1900)), ms(2000));
        // A single record at the start goes at once; the next one 1/rate later.
        let mut r = RateLimit::new(Some(10.0));
        assert_eq!(r.wait_for(1, ms(0)), Duration::ZERO);
        assert_eq!(r.wait_for(1, ms(30)), ms(70));
        // Time already spent counts: nothing to wait when behind the rate.
        assert_eq!(r.wait_for(5, ms(5000)), Duration::ZERO);
        // Nothing taken, no limit: no wait.
        assert_eq!(r.wait_for(0, ms(0)), Duration::ZERO);
        assert_eq!(RateLimit::new(None).wait_for(1000, ms(0)), Duration::ZERO);
    }

    /// On tokio's paused clock: the waits `take` sleeps are exactly the
    /// schedule (`--rate 100/s`: record n at n/100 s), from the first batch on.
    #[tokio::test(start_paused = true)]
    async fn the_first_batch_is_limited_too() {
        let mut r = RateLimit::new(Some(100.0));
        let t = tokio::time::Instant::now();
        r.take(20).await;
        // Records 0..=19 at 100/s: the last one's turn is 0.19 s in.
        assert_eq!(t.elapsed(), ms(190));
        r.take(10).await;
        assert_eq!(t.elapsed(), ms(290));
        // Time spent elsewhere counts: no wait once the schedule is behind.
        tokio::time::advance(ms(1000)).await;
        r.take(5).await;
        assert_eq!(t.elapsed(), ms(1290));
        // `--rate 10/s --max 1`: one record goes at once.
        let mut one = RateLimit::new(Some(10.0));
        let t = tokio::time::Instant::now();
        one.take(1).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }
}
