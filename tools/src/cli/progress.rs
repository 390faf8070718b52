//! Progress bars (indicatif) on stderr when it is a terminal, for `run`,
//! `replay` and `ingest`; log lines take their place otherwise (the commands'
//! `progress` / `replay progress` lines), so CI logs and files get no
//! escape codes.
//!
//! Log lines and bars share stderr: the logger writes through
//! [`LogWriter`], which lifts the bars, prints the line and draws them
//! again, so a line never lands in the middle of a bar.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether bars are drawn: stderr is a terminal.
pub fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Every bar of the process, drawn together on stderr (hidden when stderr
/// is not a terminal).
pub fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(|| {
        let target = if on_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        MultiProgress::with_draw_target(target)
    })
}

/// stderr for the logger, printing above the bars.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The fmt layer writes each event whole with one write_all.
        bars().suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A bar over a known total, or a spinner with a count when it is not.
pub fn bar(label: &str, total: Option<u64>) -> ProgressBar {
    let (pb, template) = match total {
        Some(t) => (
            ProgressBar::new(t),
            "{prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}",
        ),
        None => (
            ProgressBar::no_length(),
            "{prefix} {spinner} {pos} {per_sec} {msg}",
        ),
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>.");
    let pb = bars().add(pb.with_style(style).with_prefix(label.to_string()));
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// A bar over bytes (`ingest`).
pub fn bytes_bar(label: &str, total: u64) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("#>.");
    let pb = bars().add(
        ProgressBar::new(total)
            .with_style(style)
            .with_prefix(label.to_string()),
    );
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// The library's replay progress drawn as indicatif bars on a terminal.
struct ReplayBar(ProgressBar);

impl tickbridge::replay::progress::Bar for ReplayBar {
    fn set(&mut self, done: u64) {
        self.0.set_position(done);
    }
    fn finish(&mut self) {
        // The summary follows on stdout; a bar left drawn would share its line.
        self.0.finish_and_clear();
    }
}

/// Installs the replay bars (a no-op where stderr is not a terminal: the
/// library logs instead).
pub fn install_replay_bars() {
    tickbridge::replay::progress::set_terminal_bars(Box::new(|label, total| {
        Box::new(ReplayBar(bar(label, total)))
    }));
}
