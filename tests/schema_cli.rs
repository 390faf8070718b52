//! `tickbridge schema check` and `tickbridge schema q` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tickbridge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tickbridge"))
        .args(args)
        .current_dir(root())
        .env("TICKBRIDGE_LOG", "error")
        .output()
        .expect("run tickbridge")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_passes_on_the_repo_schemas() {
    // DIR defaults to ./schemas.
    for args in [&["schema", "check"][..], &["schema", "check", "schemas"]] {
        let out = tickbridge(args);
        assert!(
            out.status.success(),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        for t in ["alltypes", "optinput", "quote", "trade"] {
            assert!(stdout.contains(&format!("ok: table {t} (")), "{stdout}");
        }
        assert!(stdout.contains("ok: table trade (5 columns, time stamped by the tickerplant)"));
        assert!(
            stdout.ends_with("schemas: 4 tables, no problems\n"),
            "{stdout}"
        );
    }
}

fn bad_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, body: &str| std::fs::write(dir.path().join(name), body).unwrap();
    w("bad_json.json", "{\"table\": ");
    w(
        "bad_type.json",
        r#"{"table":"x","route":{"default":true},"columns":[{"name":"a","type":"decimal"}]}"#,
    );
    w(
        "bad_rules.json",
        r#"{"table":"y","route":{"field":"/t","equals":"y"},"key":["nope"],
            "columns":[{"name":"a","type":"long","time_format":"epoch_ms"},{"name":"flag","type":"boolean","nullable":true}]}"#,
    );
    w(
        "good.json",
        r#"{"table":"z","route":{"source":"s"},"columns":[{"name":"a","type":"long"}]}"#,
    );
    dir
}

#[test]
fn check_lists_every_problem_and_fails() {
    let dir = bad_dir();
    let out = tickbridge(&["schema", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 5, "{stdout}");
    let has = |file: &str, msg: &str| {
        errors
            .iter()
            .any(|l| l.contains(&format!("{file}: ")) && l.contains(msg))
    };
    assert!(has("bad_json.json", "EOF while parsing"), "{stdout}");
    assert!(
        has("bad_type.json", "unknown variant `decimal`"),
        "{stdout}"
    );
    assert!(
        has(
            "bad_rules.json",
            "table y: column a: time_format is only for temporal columns"
        ),
        "{stdout}"
    );
    assert!(
        has(
            "bad_rules.json",
            "table y: column flag: boolean has no null in q"
        ),
        "{stdout}"
    );
    assert!(
        has(
            "bad_rules.json",
            "table y: key column \"nope\" is not a column"
        ),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with(": 5 problem(s)"), "{stdout}");
}

#[test]
fn check_fails_on_a_missing_dir() {
    let out = tickbridge(&["schema", "check", "/nonexistent/tickbridge-schemas"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("/nonexistent/tickbridge-schemas"));
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/golden").join(name)).unwrap()
}

#[test]
fn q_matches_golden() {
    let out = tickbridge(&["schema", "q"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), golden("schema_q.txt"));
    assert!(text(&out.stdout)
        .contains("trade:([]time:`timespan$();sym:`g#`symbol$();price:`float$();size:`long$();side:`char$())\n"));

    let keyed = root().join("tests/golden/keyed");
    let out = tickbridge(&["schema", "q", keyed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), golden("schema_q_keyed.txt"));
}

#[test]
fn q_refuses_bad_schemas() {
    let dir = bad_dir();
    let out = tickbridge(&["schema", "q", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad_type.json: unknown variant `decimal`"),
        "{stderr}"
    );
    assert!(stderr.contains("tickbridge schema check"), "{stderr}");
}

#[test]
fn q_output_is_what_the_library_prints() {
    let c =
        tickbridge::schema::Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas"))
            .unwrap();
    assert_eq!(c.q_script(), golden("schema_q.txt"));
}
