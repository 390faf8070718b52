//! Command-line conventions of issue 16 checked on the built binary:
//! `--version` names the commit it was built from (and the build script
//! falls back to "unknown" outside git instead of failing), floats print
//! as q's console prints them, with `--precision` as q's `\P`; replay's
//! progress on a stderr that is not a terminal is log lines, no bar.

mod bridge_support;

use bridge_support::common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn tickbridge(args: &[&str]) -> Output {
    Command::new(common::tickbridge_exe())
        .args(args)
        .env("TICKBRIDGE_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .expect("tickbridge runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_names_the_crate_version_and_a_commit_of_this_repository() {
    let out = tickbridge(&["--version"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    let rest = line
        .trim()
        .strip_prefix(&format!(
            "tickbridge {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not `tickbridge VERSION (commit X)`: {line:?}"));
    // Built from this checkout: the commit is one git knows here (others
    // may have committed since, so not necessarily HEAD).
    assert!(
        rest.len() >= 7 && rest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{rest:?}"
    );
    let known = Command::new("git")
        .args(["cat-file", "-e", &format!("{rest}^{{commit}}")])
        .current_dir(common::repo_root())
        .status()
        .expect("git runs");
    assert!(known.success(), "commit {rest} is not in this repository");
}

/// The build script itself, compiled and run where git cannot answer: it
/// says "unknown" and succeeds.
#[test]
fn the_build_script_says_unknown_outside_git() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("build-script");
    let built = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--edition", "2021", "-O", "-o"])
        .arg(&exe)
        .arg(common::repo_root().join("tools/build.rs"))
        .output()
        .expect("rustc runs");
    assert!(built.status.success(), "{}", text(&built.stderr));
    let run = |cmd: &mut Command| {
        let out = cmd.current_dir(dir.path()).output().expect("runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    // Not a repository (GIT_DIR pointing nowhere).
    let out = run(Command::new(&exe).env("GIT_DIR", dir.path().join("nope")));
    assert!(
        out.contains("cargo:rustc-env=TICKBRIDGE_GIT_COMMIT=unknown\n"),
        "{out}"
    );
    // No git at all.
    let out = run(Command::new(&exe).env("PATH", Path::new("/nonexistent")));
    assert!(
        out.contains("cargo:rustc-env=TICKBRIDGE_GIT_COMMIT=unknown\n"),
        "{out}"
    );
}

/// A float vector as a kdb+ IPC body: type 9, no attribute, count, values.
fn floats_hex(xs: &[f64]) -> String {
    let mut b = vec![9u8, 0];
    b.extend_from_slice(&(xs.len() as i32).to_le_bytes());
    for x in xs {
        b.extend_from_slice(&x.to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn floats_print_as_q_prints_them_and_precision_is_q_s_p() {
    let hex = floats_hex(&[
        153.42000000000002,
        1.0 / 3.0,
        1e10,
        f64::NAN,
        -f64::INFINITY,
    ]);
    let out = tickbridge(&["kdb", "decode", &hex]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // q 4.x under the default \P 7.
    assert_eq!(text(&out.stdout), "153.42 0.3333333 1e+10 0n -0w\n");
    let out = tickbridge(&["kdb", "decode", "--precision", "0", &hex]);
    assert_eq!(
        text(&out.stdout),
        "153.42000000000002 0.33333333333333331 10000000000 0n -0w\n"
    );
    let out = tickbridge(&[
        "kdb",
        "decode",
        "--precision",
        "3",
        &floats_hex(&[2.0, 1.0 / 3.0]),
    ]);
    assert_eq!(text(&out.stdout), "2 0.333\n");
    let out = tickbridge(&["kdb", "decode", &floats_hex(&[1.0, 2.0])]);
    assert_eq!(text(&out.stdout), "1 2f\n");

    let out = tickbridge(&["kdb", "decode", "--precision", "18", &hex]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("'18' for '--precision <PRECISION>': 18 is not in 0..=17"),
        "{err}"
    );
}

#[test]
fn replay_progress_is_log_lines_when_stderr_is_not_a_terminal() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tp = rt.block_on(bridge_support::tp());
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let lines: Vec<String> = (0..3)
        .map(|k| {
            let recs: Vec<(usize, String)> = (1..=4)
                .map(|n| (k * 10 + n, bridge_support::trade((k * 10 + n) as i64, "R")))
                .collect();
            bridge_support::kinesis_shard0("progress", &recs).to_string()
        })
        .collect();
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();
    let out = Command::new(common::tickbridge_exe())
        .args(["replay", "file"])
        .arg(&events)
        .args(["--store", "memory", "--yes", "--tp"])
        .arg(tp.local_addr().to_string())
        .env("TICKBRIDGE_LOG", "info")
        .env_remove("TICKBRIDGE_TP")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}\n{}", text(&out.stdout));
    assert_eq!(tp.row_count("trade"), Some(12), "{err}");
    let progress: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("replay progress"))
        .collect();
    assert!(!progress.is_empty(), "no progress line:\n{err}");
    // It counts source messages (event lines), as --max does.
    assert!(progress.last().unwrap().contains("done=3 total=3"), "{err}");
    assert!(!err.contains('\x1b'), "escape codes:\n{err}");
    assert!(!err.contains('\r'), "a redrawn bar:\n{err}");
}
