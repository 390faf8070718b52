//! Outcomes an operator can trust, through the real `tickbridge invoke`
//! binary: an update the tickerplant refuses is never reported done, a
//! value kdb+ cannot carry fails only its own record, and a hostile
//! tickerplant (a decompression bomb, a peer that chatters instead of
//! replying) cannot make the bridge allocate or wait past its bounds.

mod bridge_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bridge_support::common::hostile::{Hostile, Mode};
use bridge_support::*;
use serde_json::Value;

/// Runs `invoke` on `event` with the memory store; returns its output and
/// how long it took. `env` adds settings.
fn invoke(event: &Value, tp: &str, timeout_secs: u64, env: &[(&str, &str)]) -> (Output, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("event.json");
    std::fs::write(&file, serde_json::to_vec(event).unwrap()).unwrap();
    let mut cmd = command(&file, tp, timeout_secs, env);
    let started = Instant::now();
    let out = cmd.output().unwrap();
    (out, started.elapsed())
}

/// `invoke` with the memory store unless `env` names a DynamoDB table.
fn command(file: &Path, tp: &str, timeout_secs: u64, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(common::tickbridge_exe());
    let store = match env.iter().find(|(k, _)| *k == "TICKBRIDGE_DEDUPE_TABLE") {
        Some(_) => "dynamodb",
        None => "memory",
    };
    cmd.args(["--log-format", "json", "invoke", "--event"])
        .arg(file)
        .args(["--tp", tp, "--store", store])
        .args(["--timeout-secs", &timeout_secs.to_string()])
        .env("TICKBRIDGE_TP_CONNECT_TIMEOUT_MS", "500")
        .env("TICKBRIDGE_LOG", "info")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn response(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no response ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn failures(out: &Output) -> Vec<String> {
    response(out)["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect()
}

/// The JSON log lines of a run.
fn logs(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn log_with<'a>(logs: &'a [Value], level: &str, message: &str) -> Vec<&'a Value> {
    logs.iter()
        .filter(|l| {
            l["level"] == level && l["message"].as_str().is_some_and(|m| m.contains(message))
        })
        .collect()
}

fn five_trades(stream: &str) -> Value {
    let recs: Vec<(usize, String)> = (1..=5).map(|n| (n, trade(n as i64, "AAPL"))).collect();
    kinesis_shard0(stream, &recs)
}

#[tokio::test]
async fn an_update_the_tickerplant_refuses_is_reported_failed() {
    let tp = tp().await;
    let addr = tp.local_addr().to_string();
    let event = five_trades("refused");
    // The preflight would stop this at init; turned off, the refusal must
    // still be seen per update.
    let env = [
        ("TICKBRIDGE_UPD_FUNC", ".u.nope"),
        ("TICKBRIDGE_PREFLIGHT", "off"),
    ];
    let (out, _) = tokio::task::spawn_blocking({
        let (event, addr) = (event.clone(), addr.clone());
        move || invoke(&event, &addr, 20, &env)
    })
    .await
    .unwrap();
    assert_eq!(failures(&out), vec![seq(0, 1)], "every record is retried");
    assert_eq!(tp.row_count("trade"), Some(0));
    let logs = logs(&out);
    let refused = log_with(&logs, "ERROR", "tickerplant refused an update");
    assert_eq!(refused.len(), 1, "{logs:#?}");
    let line = refused[0];
    assert_eq!(line["table"], "trade");
    assert_eq!(line["lane"], shard_lane("refused", 0));
    assert_eq!(line["first_position"], seq(0, 1));
    assert_eq!(line["last_position"], seq(0, 5));
    // The stand-in answers as q does for an undefined name.
    assert_eq!(line["q_error"], ".u.nope", "{line}");

    // Async publishing proves receipt only: the same refusal goes unseen.
    // That is why it is not the default.
    let env = [
        ("TICKBRIDGE_UPD_FUNC", ".u.nope"),
        ("TICKBRIDGE_PREFLIGHT", "off"),
        ("TICKBRIDGE_PUBLISH", "async"),
    ];
    let (out, _) = tokio::task::spawn_blocking(move || invoke(&event, &addr, 20, &env))
        .await
        .unwrap();
    assert!(failures(&out).is_empty());
    assert_eq!(tp.row_count("trade"), Some(0));
}

#[tokio::test]
async fn an_unknown_table_cuts_only_its_own_lane() {
    let tp = tp().await;
    let addr = tp.local_addr().to_string();
    // The bridge knows a table `fill` the tickerplant does not.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(common::repo_root().join("schemas")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let fill = std::fs::read_to_string(dir.path().join("trade.json"))
        .unwrap()
        .replace("\"table\": \"trade\"", "\"table\": \"fill\"")
        .replace("\"equals\": \"trade\"", "\"equals\": \"fill\"");
    std::fs::write(dir.path().join("fill.json"), fill).unwrap();
    let fill_rec = |n: i64| trade(n, "MSFT").replace("\"type\":\"trade\"", "\"type\":\"fill\"");
    let event = kinesis(
        "unknown",
        &[
            (0, 1, trade(1, "AAPL")),
            (1, 1, fill_rec(2)),
            (0, 2, trade(3, "AAPL")),
            (1, 2, fill_rec(4)),
        ],
    );
    let schemas = dir.path().display().to_string();
    let env = [
        ("TICKBRIDGE_SCHEMAS", schemas.as_str()),
        ("TICKBRIDGE_PREFLIGHT", "warn"),
    ];
    let (out, _) = tokio::task::spawn_blocking({
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            invoke(&event, &addr, 20, &env)
        }
    })
    .await
    .unwrap();
    assert_eq!(failures(&out), vec![seq(1, 1)]);
    assert_eq!(sizes_of(&tp, "AAPL"), vec![1, 3]);
    let logs = logs(&out);
    let refused = log_with(&logs, "ERROR", "tickerplant refused an update");
    assert_eq!(refused.len(), 1, "{logs:#?}");
    assert_eq!(refused[0]["table"], "fill");
    assert_eq!(refused[0]["lane"], shard_lane("unknown", 1));
}

#[tokio::test]
async fn a_nul_in_a_symbol_fails_only_its_record() {
    let tp = tp().await;
    let addr = tp.local_addr().to_string();
    let mut recs: Vec<(usize, String)> = (1..=5).map(|n| (n, trade(n as i64, "AAPL"))).collect();
    recs[1].1 = trade(2, "a\u{0}b");
    let kin = kinesis_shard0("nul", &recs);
    let sq = sqs(
        "nul.fifo",
        &[
            msg("g1", "m1", trade(11, "IBM")),
            msg("g2", "m2", trade(12, "x\u{0}y")),
            msg("g2", "m3", trade(13, "IBM")),
            msg("g3", "m4", trade(14, "IBM")),
        ],
    );
    let (kin_out, sq_out) = tokio::task::spawn_blocking(move || {
        (
            invoke(&kin, &addr, 20, &[]).0,
            invoke(&sq, &addr, 20, &[]).0,
        )
    })
    .await
    .unwrap();
    assert!(failures(&kin_out).is_empty(), "{:?}", failures(&kin_out));
    assert!(failures(&sq_out).is_empty(), "{:?}", failures(&sq_out));
    assert_eq!(sizes_of(&tp, "AAPL"), vec![1, 3, 4, 5]);
    assert_eq!(sizes_of(&tp, "IBM"), vec![11, 13, 14]);
    for (out, position) in [(&kin_out, seq(0, 2)), (&sq_out, "m2".to_string())] {
        let logs = logs(out);
        let bad = log_with(&logs, "WARN", "bad record quarantined");
        assert_eq!(bad.len(), 1, "{logs:#?}");
        assert_eq!(bad[0]["position"], position);
        let reason = bad[0]["reason"].as_str().unwrap();
        assert!(reason.contains("NUL") && reason.contains("sym"), "{reason}");
    }
}

/// The peak resident size of a running process, polled until it exits.
fn run_measuring_peak(mut cmd: Command) -> (Output, u64, Duration) {
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak_kb = 0u64;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(text) = std::fs::read_to_string(&status) {
                    for field in ["VmHWM:", "VmRSS:"] {
                        if let Some(kb) = text
                            .lines()
                            .find_map(|l| l.strip_prefix(field))
                            .and_then(|v| v.split_whitespace().next())
                            .and_then(|v| v.parse::<u64>().ok())
                        {
                            peak_kb = peak_kb.max(kb);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peak_kb
        })
    };
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    (out, watcher.join().unwrap(), started.elapsed())
}

#[tokio::test]
async fn a_decompression_bomb_from_the_tickerplant_is_refused() {
    let hostile = Hostile::start(Mode::Bomb { claimed: 1 << 30 }).await;
    let addr = hostile.addr.to_string();
    for preflight in ["error", "off"] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("event.json");
        std::fs::write(&file, serde_json::to_vec(&five_trades("bomb")).unwrap()).unwrap();
        let cmd = command(&file, &addr, 20, &[("TICKBRIDGE_PREFLIGHT", preflight)]);
        let (out, peak_kb, took) = tokio::task::spawn_blocking(move || run_measuring_peak(cmd))
            .await
            .unwrap();
        // Nothing is reported done, the 1 GiB claim is refused by its
        // header, and the process stays small.
        assert_eq!(failures(&out), vec![seq(0, 1)], "preflight {preflight}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("1073741824"), "{stderr}");
        assert!(peak_kb < 100 * 1024, "peak RSS {peak_kb} kB");
        assert!(took < Duration::from_secs(15), "took {took:?}");
    }
}

#[tokio::test]
async fn a_tickerplant_that_chatters_instead_of_replying_is_cut_at_the_deadline() {
    for mode in [Mode::ChatterAsync, Mode::ChatterSync] {
        let hostile = Hostile::start(mode).await;
        let addr = hostile.addr.to_string();
        let event = five_trades("chatter");
        let env = [
            ("TICKBRIDGE_PREFLIGHT", "off"),
            // Every frame arrives at once; only the whole wait is bounded.
            ("TICKBRIDGE_TP_READ_TIMEOUT_MS", "60000"),
            ("TICKBRIDGE_DEADLINE_MARGIN_MS", "500"),
        ];
        let (out, took) = tokio::task::spawn_blocking(move || invoke(&event, &addr, 3, &env))
            .await
            .unwrap();
        assert_eq!(failures(&out), vec![seq(0, 1)], "{mode:?}");
        assert!(took < Duration::from_secs(6), "{mode:?} took {took:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("timed out during read"), "{stderr}");
    }
}

#[tokio::test]
async fn a_slow_dynamodb_cannot_hold_claims_or_releases_past_the_deadline() {
    use bridge_support::common::http_proxy::{spawn, Action};
    let tp = tp().await;
    // A moto of its own: moto copies every table it holds for each
    // transaction, so on the shared one a release would time out on moto.
    let moto = MotoServer::start();
    let ddb = tickbridge::aws::dynamodb_client(&moto.sdk_config().await);
    let table = unique_name("slow");
    tickbridge::dedupe::dynamodb::ensure_table(&ddb, &table)
        .await
        .unwrap();
    // Every DynamoDB call takes 100 ms: 1,000 payload-key claims at 4 in
    // flight would take 25 s, one release each as long again.
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], moto.port()));
    let slow = spawn(upstream, |_| Action::Delay(Duration::from_millis(100))).await;
    let recs: Vec<(usize, String)> = (1..=1000).map(|n| (n, trade(n as i64, "AAPL"))).collect();
    let event = kinesis_shard0("slow", &recs);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("event.json");
    std::fs::write(&file, serde_json::to_vec(&event).unwrap()).unwrap();
    let addr = tp.local_addr().to_string();
    // Claims stop 2.5 s before the 5 s deadline; releases may go on until
    // 250 ms before it (moto is slow at 100-item transactions).
    let mut cmd = command(
        &file,
        &addr,
        5,
        &[
            ("TICKBRIDGE_DEDUPE_TABLE", &table),
            ("TICKBRIDGE_DEADLINE_MARGIN_MS", "2500"),
            // Few claims before the margin, so the one release transaction
            // is quick even on moto.
            ("TICKBRIDGE_DYNAMODB_CONCURRENCY", "4"),
        ],
    );
    cmd.env("AWS_ENDPOINT_URL", &slow)
        .envs(common::EMULATOR_AWS_ENV)
        .env("TICKBRIDGE_BAD_RECORDS", "fail");
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let took = started.elapsed();
    // The claims stop at the margin, the batch is reported failed as a
    // whole (nothing was sent), and the process is done in time.
    assert_eq!(failures(&out), vec![seq(0, 1)]);
    assert!(took < Duration::from_millis(6500), "took {took:?}");
    assert_eq!(tp.row_count("trade"), Some(0));
    // Claims that were taken were given back, so the retry is not blocked
    // by them.
    let items = ddb.scan().table_name(&table).send().await.unwrap();
    let in_progress = items
        .items()
        .iter()
        .filter(|i| {
            i.get("status")
                .and_then(|s| s.as_s().ok())
                .map(String::as_str)
                == Some("INPROGRESS")
        })
        .count();
    assert_eq!(
        in_progress,
        0,
        "claims left behind: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = logs(&out);
    let summary = logs
        .iter()
        .find(|l| l.get("dynamodb_requests").is_some())
        .unwrap_or_else(|| panic!("no summary line: {logs:#?}"));
    let requests = summary["dynamodb_requests"].as_u64().unwrap();
    // One checkpoint read, the claims made before the margin (not all
    // 1,000), and one release request per 100 of them.
    assert!(requests < 200, "{requests} DynamoDB requests");
}
