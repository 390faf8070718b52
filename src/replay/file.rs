//! Replay of captured Lambda events, one JSON event per line.

use std::io::BufRead;
use std::path::Path;

use super::Replayer;

pub async fn run(rep: &mut Replayer, path: &Path) -> Result<(), String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
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
        match rep.run_event(line.as_bytes()).await {
            Ok(records) => {
                for (r, fate) in &records {
                    rep.report.add(&format!("{what} {}", r.failure_id), fate);
                }
            }
            Err(e) => rep.report.fail_message(&what, e),
        }
        rep.advance(1);
    }
    Ok(())
}
