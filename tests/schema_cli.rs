//! `tickbridge schema check` and `tickbridge schema q` as a user runs them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tickbridge(args: &[&str]) -> Output {
    Command::new(common::tickbridge_exe())
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
    // Without DIR: the embedded copies of ./schemas.
    for (args, name) in [
        (&["schema", "check"][..], "embedded schemas"),
        (&["schema", "check", "schemas"], "schemas"),
    ] {
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
            stdout.ends_with(&format!("\n{name}: 4 tables, no problems\n")),
            "{stdout}"
        );
    }
}

/// Without DIR, `schema q` and `schema check` need no ./schemas: they work
/// from any directory, like every other command.
#[test]
fn q_and_check_work_outside_the_repo() {
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(common::tickbridge_exe())
            .args(args)
            .current_dir(elsewhere.path())
            .env("TICKBRIDGE_LOG", "error")
            .output()
            .expect("run tickbridge")
    };
    let out = run(&["schema", "q"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), golden("schema_q.txt"));
    let out = run(&["schema", "check"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).ends_with("embedded schemas: 4 tables, no problems\n"));
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
    // 5 from the schema rules, 3 from tick.q's (target tick by default).
    assert_eq!(errors.len(), 8, "{stdout}");
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
    assert!(
        has(
            "good.json",
            "table z: tick.q needs the first two columns to be time and sym (it fails with 'timesym at start); columns are a"
        ),
        "{stdout}"
    );
    assert!(
        has(
            "bad_rules.json",
            "table y: tick.q needs the first two columns to be time and sym"
        ),
        "{stdout}"
    );
    assert!(
        has(
            "bad_rules.json",
            "table y: tick.q holds unkeyed tables only"
        ),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with(": 8 problem(s)"), "{stdout}");

    // Another target: tick.q's rules are warnings, the rest still errors.
    let out = tickbridge(&[
        "schema",
        "check",
        "--target",
        "other",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let count = |p: &str| stdout.lines().filter(|l| l.starts_with(p)).count();
    assert_eq!((count("error: "), count("warning: ")), (5, 3), "{stdout}");
    assert!(stdout.trim_end().ends_with(": 5 problem(s)"), "{stdout}");
}

/// A table without sym (the old `optinput`): refused for tick.q, a
/// warning for another target; the message says which rule and why.
#[test]
fn check_flags_what_tick_q_refuses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("opt.json"),
        r#"{"table":"optinput","route":{"source":"s"},"columns":[
            {"name":"time","type":"timespan","stamp":"tickerplant"},
            {"name":"spot","type":"float"},{"name":"vol","type":"float"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("stamp.json"),
        r#"{"table":"prices","route":{"source":"p"},"columns":[
            {"name":"time","type":"timestamp"},{"name":"sym","type":"string"}]}"#,
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let out = tickbridge(&["schema", "check", d]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let want = [
        "table optinput: tick.q needs the first two columns to be time and sym (it fails with 'timesym at start); columns are time, spot, vol",
        "table prices: column time: tick.q needs time to be a timespan (n), not timestamp",
        "table prices: column sym: tick.q needs sym to be a symbol (s), not string",
    ];
    for w in want {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("error: ") && l.contains(w)),
            "{w}\n{stdout}"
        );
    }
    assert!(!stdout.contains("ok: table"), "{stdout}");
    assert!(stdout.contains("3 problem(s) (target tick"), "{stdout}");

    let out = tickbridge(&["schema", "check", "--target", "other", d]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    for w in want {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("warning: ") && l.contains(w)),
            "{w}\n{stdout}"
        );
    }
    assert!(stdout.contains("ok: table optinput (3 columns"), "{stdout}");
    assert!(
        stdout.contains("2 tables, no problems, 3 warning(s)"),
        "{stdout}"
    );

    // The keyed golden schema prints keyed for `schema q`, which tick.q
    // would refuse: check says so.
    let out = tickbridge(&["schema", "check", "tests/golden/keyed"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("table book: tick.q holds unkeyed tables only"));
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
