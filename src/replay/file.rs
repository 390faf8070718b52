//! Replay of captured Lambda events, one JSON event per line. Each event
//! is parsed once, into the records the pipeline takes.

use std::io::BufRead;
use std::path::Path;

use super::{ReplayError, Replayer};
use crate::source::event::parse_event;

pub async fn run(rep: &mut Replayer, path: &Path) -> Result<(), ReplayError> {
    let file_error = |action, error| ReplayError::File {
        action,
        path: path.to_path_buf(),
        error,
    };
    let file = std::fs::File::open(path).map_err(|e| file_error("open", e))?;
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|e| file_error("read", e))?;
    let events = lines.iter().filter(|l| !l.trim().is_empty()).count();
    let expected = rep.options().max.map_or(events, |m| m.min(events));
    rep.expect("replay file (events)", Some(expected as u64));
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if rep.at_max() {
            break;
        }
        rep.report.messages += 1;
        let what = format!("{}:{}", path.display(), n + 1);
        match parse_event(line.as_bytes(), &rep.app().config.source) {
            Ok(records) => {
                let states = rep.run_records(&records).await;
                for (r, state) in records.iter().zip(&states) {
                    rep.report.add(&format!("{what} {}", r.failure_id), state);
                }
            }
            Err(e) => rep
                .report
                .fail_message(&what, ReplayError::from(e).to_string()),
        }
        rep.advance(1);
    }
    Ok(())
}
