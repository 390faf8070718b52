//! The `tickbridge` command line as an operator meets it when something is
//! wrong (issue 16): one short line naming what the user typed and AWS's
//! reason, no Rust Debug, no repeated text, honest exit statuses (2 for a
//! usage or settings error, 1 for failed records), commands that work
//! outside the repository, and shell completions.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::moto::{unique_name, MotoServer};

fn tickbridge(args: &[&str]) -> Command {
    let mut cmd = Command::new(common::tickbridge_exe());
    cmd.args(args)
        .env("TICKBRIDGE_LOG", "error")
        .envs(common::EMULATOR_AWS_ENV)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("TICKBRIDGE_TP")
        .env_remove("TICKBRIDGE_STORE")
        .env_remove("TICKBRIDGE_DEDUPE_TABLE")
        .env_remove("TICKBRIDGE_QUARANTINE_QUEUE_URL")
        .stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    tickbridge(args).output().expect("tickbridge runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one `tickbridge: …` line a failing command prints.
fn error_line(out: &Output) -> String {
    let text = stderr(out);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tickbridge: "))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{text}");
    lines[0].to_string()
}

/// No Rust Debug and no segment said twice in a row.
fn assert_readable(line: &str) {
    for debug in [
        "ServiceError {",
        "SdkBody",
        "Extensions",
        "Some(",
        "Response {",
    ] {
        assert!(!line.contains(debug), "Debug output in: {line}");
    }
    let parts: Vec<&str> = line.split(": ").collect();
    for w in parts.windows(2) {
        assert_ne!(w[0], w[1], "repeated text in: {line}");
    }
    assert!(line.len() < 300, "{} chars: {line}", line.len());
}

fn moto() -> String {
    MotoServer::shared().endpoint()
}

#[test]
fn a_missing_queue_stream_or_table_is_one_short_line_at_start() {
    let endpoint = moto();
    let queue = format!("{endpoint}/123456789012/{}", unique_name("nosuch"));
    let cases: Vec<(Vec<String>, &str, String)> = vec![
        (
            vec!["run", "sqs", "--queue", &queue, "--store", "memory"]
                .into_iter()
                .map(String::from)
                .collect(),
            "--queue",
            format!("--queue {queue}: SQS GetQueueAttributes failed: QueueDoesNotExist"),
        ),
        (
            vec!["run", "kinesis", "--stream", "nosuch-stream", "--store", "memory"]
                .into_iter()
                .map(String::from)
                .collect(),
            "--stream",
            "--stream nosuch-stream: Kinesis DescribeStreamSummary failed: ResourceNotFoundException"
                .to_string(),
        ),
        (
            vec![
                "run",
                "sqs",
                "--queue",
                &queue,
                "--store",
                "dynamodb",
                "--dedupe-table",
                "nosuch-table",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "--dedupe-table",
            "--dedupe-table nosuch-table: DynamoDB DescribeTable failed: ResourceNotFoundException"
                .to_string(),
        ),
        (
            vec!["replay", "sqs", "--dlq", &queue, "--store", "memory", "--yes"]
                .into_iter()
                .map(String::from)
                .collect(),
            "--dlq",
            format!("--dlq {queue}: SQS GetQueueAttributes failed: QueueDoesNotExist"),
        ),
    ];
    for (args, flag, want) in cases {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["--endpoint-url", &endpoint]);
        let out = run(&args);
        let line = error_line(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {line}");
        assert!(
            line.starts_with(&format!("tickbridge: {want}")),
            "{args:?}\n{line}"
        );
        assert!(line.contains(flag), "{line}");
        assert_readable(&line);
    }
}

#[test]
fn a_missing_function_names_it_without_debug() {
    let endpoint = moto();
    let out = run(&[
        "ctl",
        "--function",
        "nope:live",
        "--endpoint-url",
        &endpoint,
        "status",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let line = error_line(&out);
    assert!(
        line.starts_with("tickbridge: GetFunction for function nope:live: ResourceNotFoundException: Function not found"),
        "{line}"
    );
    assert_readable(&line);
}

#[test]
fn the_old_flag_spellings_still_parse() {
    let endpoint = moto();
    let queue = format!("{endpoint}/123456789012/{}", unique_name("nosuch"));
    // --endpoint (replay's old name) and --quarantine-queue (run's).
    let out = run(&[
        "run",
        "sqs",
        "--queue",
        &queue,
        "--store",
        "memory",
        "--quarantine-queue",
        &queue,
        "--endpoint",
        &endpoint,
    ]);
    let line = error_line(&out);
    assert!(line.contains("--quarantine-queue-url"), "{line}");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn errors_name_the_flag_the_user_typed_once() {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, "{\"Records\": []}").unwrap();
    let event = event.to_str().unwrap();

    let out = run(&["invoke", "--event", event, "--tp", "5010"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        error_line(&out),
        "tickbridge: --tp 5010: bad target 5010: expected host:port"
    );

    // Set in the environment, the variable is what is named.
    let out = tickbridge(&["invoke", "--event", event])
        .env("TICKBRIDGE_TP", "notaport")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert_eq!(
        line,
        "tickbridge: TICKBRIDGE_TP: bad target notaport: expected host:port"
    );
    assert_readable(&line);

    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, "").unwrap();
    let out = run(&["replay", "file", events.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert!(line.contains("--dedupe-table"), "{line}");
    assert!(line.contains("--store memory"), "{line}");
    assert!(!line.contains("TICKBRIDGE_DEDUPE_TABLE"), "{line}");
}

#[test]
fn invoke_exits_1_when_records_failed() {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    let out = run(&[
        "bench",
        "events",
        "--records",
        "5",
        "-o",
        event.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Nothing listens there: every record stays pending.
    let port = common::free_port();
    let out = tickbridge(&[
        "invoke",
        "--event",
        event.to_str().unwrap(),
        "--tp",
        &format!("127.0.0.1:{port}"),
        "--timeout-secs",
        "3",
    ])
    .env("TICKBRIDGE_TP_CONNECT_TIMEOUT_MS", "200")
    .env("TICKBRIDGE_DEADLINE_MARGIN_MS", "500")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failures = response["batchItemFailures"].as_array().map_or(0, Vec::len);
    assert!(failures >= 1, "{response}");
}

#[test]
fn tp_serves_the_embedded_schemas_from_any_directory() {
    let elsewhere = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut child = tickbridge(&["tp", "--port", &port.to_string()])
        .current_dir(elsewhere.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = common::wait_for_port(port, Duration::from_secs(20));
    let tables = run(&["kdb", "query", &format!("127.0.0.1:{port}"), "tables[]"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "tickbridge tp did not listen outside the repo");
    let text = String::from_utf8_lossy(&tables.stdout);
    assert!(text.contains("trade") && text.contains("quote"), "{text}");

    let out = tickbridge(&["tp", "--port", "0", "--schemas", "/nonexistent/schemas"])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let line = error_line(&out);
    assert!(
        line.starts_with("tickbridge: --schemas: /nonexistent/schemas"),
        "{line}"
    );
    assert_readable(&line);
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef tickbridge"),
        ("fish", "complete -c tickbridge"),
    ] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell} script lacks {marker}");
        // Subcommands and renamed flags are offered.
        for word in ["replay", "quarantine-queue-url", "endpoint-url"] {
            assert!(text.contains(word), "{shell} script lacks {word}");
        }
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_documents_the_exit_statuses() {
    let out = run(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Exit status: 0"), "{text}");
    assert!(Path::new(&common::tickbridge_exe()).is_file());
}

#[test]
fn a_busy_port_is_said_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let out = run(&["tp", "--port", &port]);
    drop(listener);
    assert_eq!(out.status.code(), Some(1));
    let line = error_line(&out);
    assert!(line.contains("Address already in use"), "{line}");
    assert_eq!(line.matches("Address already in use").count(), 1, "{line}");
    assert_readable(&line);
}

#[test]
fn bad_settings_name_their_variable() {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, "{\"Records\": []}").unwrap();
    let event = event.to_str().unwrap();
    let out = tickbridge(&["invoke", "--event", event])
        .env("TICKBRIDGE_LOG", "garbage[[")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert!(
        line.starts_with("tickbridge: TICKBRIDGE_LOG: \"garbage[[\""),
        "{line}"
    );

    let out = tickbridge(&["invoke", "--event", event])
        .env("TICKBRIDGE_SCHEMAS", "/nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        error_line(&out),
        "tickbridge: TICKBRIDGE_SCHEMAS: /nope is not a directory (unset it for the embedded schemas)"
    );
    // Given as a flag, the flag is named.
    let out = run(&["invoke", "--event", event, "--schemas", "/nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(error_line(&out).starts_with("tickbridge: --schemas /nope: /nope is not a directory"));
}

#[test]
fn logs_to_a_file_have_no_colours() {
    let out = tickbridge(&["schema", "check", "/nonexistent/dir"])
        .env("TICKBRIDGE_LOG", "debug")
        .output()
        .unwrap();
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, "{\"Records\": []}").unwrap();
    // The tickerplant is down: init logs WARN lines, stderr is a pipe.
    let invoke = tickbridge(&[
        "invoke",
        "--event",
        event.to_str().unwrap(),
        "--tp",
        &format!("127.0.0.1:{port}"),
    ])
    .env("TICKBRIDGE_LOG", "info")
    .output()
    .unwrap();
    let logs = stderr(&invoke);
    assert!(logs.contains("WARN"), "{logs}");
    for text in [stderr(&out), logs] {
        assert!(!text.contains('\u{1b}'), "ANSI escape in: {text}");
    }
}
