//! The README's Commands section against the built binary: every
//! subcommand a row names exists (`tickbridge <path> --help` succeeds),
//! every flag in the row's command column is in that command's `--help`,
//! and every flag the description column names is in the `--help` of one
//! of the row's commands. Hidden aliases do not count: the README should
//! show what `--help` shows.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

/// One command a row names: its subcommand path and the flags shown with it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    path: Vec<String>,
    flags: Vec<String>,
}

/// The rows of the table under `## Commands`: (command column, description).
fn command_rows(readme: &str) -> Vec<(String, String)> {
    let section = readme
        .split("\n## Commands")
        .nth(1)
        .expect("README has a Commands section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            // `\|` is a literal bar inside a cell.
            let l = l.replace("\\|", "\u{1}");
            let cells: Vec<String> = l
                .split('|')
                .map(|c| c.trim().replace('\u{1}', "|"))
                .collect();
            (cells[1].clone(), cells.get(2).cloned().unwrap_or_default())
        })
        .collect()
}

fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn is_word(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_lowercase())
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// `--flag`, without brackets, `=value` or trailing punctuation.
fn flag(token: &str) -> Option<String> {
    let t = token.trim_start_matches('[');
    let t = t.strip_prefix("--")?;
    let name: String = t
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (!name.is_empty()).then(|| format!("--{name}"))
}

/// The commands one code span names: `a b|c --x V [--y]` is `a b --x --y`
/// and `a c --x --y`.
fn commands_of(span: &str) -> Vec<Named> {
    let mut paths: Vec<Vec<String>> = vec![Vec::new()];
    let mut flags = Vec::new();
    let mut in_path = true;
    for token in span.split_whitespace() {
        let parts: Vec<&str> = token.split('|').collect();
        if in_path && parts.iter().all(|p| is_word(p)) {
            paths = paths
                .iter()
                .flat_map(|p| {
                    parts.iter().map(move |w| {
                        let mut q = p.clone();
                        q.push(w.to_string());
                        q
                    })
                })
                .collect();
            continue;
        }
        in_path = false;
        flags.extend(parts.iter().filter_map(|p| flag(p)));
    }
    paths
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|path| Named {
            path,
            flags: flags.clone(),
        })
        .collect()
}

fn help(path: &[String]) -> Option<String> {
    let out = Command::new(common::tickbridge_exe())
        .args(path)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .expect("tickbridge runs");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn has_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        let before = help[..i].chars().next_back();
        let after = help[i + flag.len()..].chars().next();
        before.is_none_or(|c| c.is_whitespace() || c == ',')
            && after.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'))
    })
}

#[test]
fn the_parser_reads_the_forms_the_table_uses() {
    assert_eq!(
        commands_of("kdb decode HEX|--file F [--hex-out]"),
        [Named {
            path: vec!["kdb".into(), "decode".into()],
            flags: vec!["--file".into(), "--hex-out".into()],
        }]
    );
    let c = commands_of("ctl status|pause|resume|concurrency N");
    assert_eq!(c.len(), 4);
    assert_eq!(c[3].path, ["ctl", "concurrency"]);
    let c = commands_of("schema check [DIR] [--target tick|other]");
    assert_eq!(c[0].path, ["schema", "check"]);
    assert_eq!(c[0].flags, ["--target"]);
    assert_eq!(commands_of("tp --port 5010")[0].flags, ["--port"]);
    assert_eq!(commands_of("ingest s3://bucket/prefix")[0].path, ["ingest"]);
    assert!(has_flag("  --tp <TP>\n", "--tp"));
    assert!(!has_flag("  --tp-x <TP>\n", "--tp"));
}

#[test]
fn every_command_and_flag_in_the_readme_is_in_help() {
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    let rows = command_rows(&readme);
    assert!(rows.len() >= 10, "the table was not found: {rows:?}");
    let mut problems = BTreeSet::new();
    let mut checked = 0;
    for (command_cell, description) in &rows {
        let named: Vec<Named> = code_spans(command_cell)
            .into_iter()
            .flat_map(commands_of)
            .collect();
        assert!(!named.is_empty(), "no command in {command_cell:?}");
        let mut helps = Vec::new();
        for n in &named {
            let Some(h) = help(&n.path) else {
                problems.insert(format!(
                    "`tickbridge {}`: no such command",
                    n.path.join(" ")
                ));
                continue;
            };
            for f in &n.flags {
                checked += 1;
                if !has_flag(&h, f) {
                    problems.insert(format!(
                        "`tickbridge {}`: {f} is not in its --help",
                        n.path.join(" ")
                    ));
                }
            }
            helps.push(h);
        }
        // Flags the description names: in one of the row's commands.
        for f in code_spans(description).into_iter().filter_map(flag) {
            checked += 1;
            if !helps.iter().any(|h| has_flag(h, &f)) {
                let paths: Vec<String> = named.iter().map(|n| n.path.join(" ")).collect();
                problems.insert(format!(
                    "{f} (described for `{}`) is not in their --help",
                    paths.join("`, `")
                ));
            }
        }
    }
    assert!(checked > 10, "too few flags found to mean anything");
    assert!(
        problems.is_empty(),
        "README.md Commands section vs --help:\n{}",
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
}
