//! S3 object ingestion end to end: objects in moto's S3 (over HTTP), named
//! by S3 notifications delivered directly, by EventBridge and through SQS,
//! streamed by the bridge (`App::handle`) into the tickerplant stand-in
//! over TCP, with checkpoints in moto's DynamoDB. Rows are counted at the
//! stand-in: exact, in order, none twice, none lost.

mod s3_support;

use std::time::Duration;

use s3_support::*;
use tickbridge::pipeline::{BatchContext, RecordState};

fn csv_rows(sym: &str, from: i64, to: i64) -> String {
    (from..=to)
        .map(|i| format!("{sym},{}.5,{i}\n", 100 + i % 50))
        .collect()
}

async fn handle(
    app: &tickbridge::app::App,
    event: &serde_json::Value,
    budget: Duration,
) -> Result<tickbridge::app::Invocation, String> {
    let ctx = BatchContext::with_budget(unique_name("req"), budget);
    app.handle(event.to_string().as_bytes(), &ctx)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn csv_json_lines_and_gzip_objects_arrive_exactly() {
    let s3 = s3().await;
    let b = bucket(&s3).await;
    let tp = tp().await;
    let table = dedupe_table().await;
    let app = bridge(&tp, &table, Opts::default()).await;

    // Columns in another order than the schema, a quoted field, CRLF.
    let csv = "size,sym,price\r\n1,\"CSV\",1.5\r\n2,CSV,2.5\r\n".to_string();
    let e1 = put(&s3, &b, "day 1/a.csv", csv.into_bytes()).await;
    let jsonl: String = (10..15)
        .map(|i| format!("{{\"sym\":\"JSN\",\"price\":{i}.0,\"size\":{i}}}\n"))
        .collect::<String>()
        + "\n"; // an empty line is skipped
    let e2 = put(&s3, &b, "b.jsonl", jsonl.into_bytes()).await;
    let gz = gzip(format!("sym,price,size\n{}", csv_rows("GZ", 20, 2019)).as_bytes());
    let e3 = put(&s3, &b, "c.csv.gz", gz).await;

    let event = notification(&[
        (&b, "day 1/a.csv", &e1),
        (&b, "b.jsonl", &e2),
        (&b, "c.csv.gz", &e3),
    ]);
    let inv = handle(&app, &event, Duration::from_secs(30)).await.unwrap();
    assert_eq!(inv.source, "s3");
    assert_eq!(inv.summary.forwarded, 3, "{:?}", inv.summary);
    let got = rows(&tp, "obj");
    let mut want: Vec<(String, i64)> = vec![("CSV".into(), 1), ("CSV".into(), 2)];
    want.extend((10..15).map(|i| ("JSN".to_string(), i)));
    want.extend((20..=2019).map(|i| ("GZ".to_string(), i)));
    assert_eq!(got, want);
    assert_eq!(inv.summary.rows_per_table.get("obj"), Some(&want.len()));
}

#[tokio::test]
async fn bad_lines_are_quarantined_by_number_and_the_rest_flows() {
    let s3 = s3().await;
    let b = bucket(&s3).await;
    let tp = tp().await;
    let table = dedupe_table().await;
    let (quarantine, url) = quarantine_queue().await;
    let app = bridge(
        &tp,
        &table,
        Opts {
            quarantine: Some(quarantine),
            flush_rows: 3,
            ..Opts::default()
        },
    )
    .await;
    let body = "sym,price,size\nA,1.0,1\nA,oops,2\nA,3.0,3\nA,4.0\nA,5.0,5\n\"A,6.0,6\nA,7.0,7\n";
    let etag = put(&s3, &b, "bad.csv", body.as_bytes().to_vec()).await;
    let inv = handle(
        &app,
        &notification(&[(&b, "bad.csv", &etag)]),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(inv.summary.quarantined, 3);
    assert_eq!(
        rows(&tp, "obj").iter().map(|r| r.1).collect::<Vec<_>>(),
        [1, 3, 5, 7]
    );
    let mut bad = drain(&url).await;
    bad.sort_by_key(|m| m["position"].as_str().unwrap().parse::<u64>().unwrap());
    let lines: Vec<&str> = bad
        .iter()
        .map(|m| m["position"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["3", "5", "7"]);
    for m in &bad {
        assert_eq!(m["source_arn"], format!("s3://{b}/bad.csv"));
        let reason = m["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("line {}", m["position"].as_str().unwrap())),
            "{reason}"
        );
    }
    assert!(
        bad[0]["reason"].as_str().unwrap().contains("price"),
        "{}",
        bad[0]
    );
    assert!(
        bad[1]["reason"]
            .as_str()
            .unwrap()
            .contains("expected 3 fields"),
        "{}",
        bad[1]
    );
}

/// A deadline mid-object: each delivery stops after its last confirmed
/// flush and reports the notification failed; the next one resumes after
/// the checkpoint. Plain objects resume with a ranged GET, gzip ones by
/// re-reading and skipping.
#[tokio::test]
async fn a_deadline_mid_object_resumes_with_nothing_twice_or_lost() {
    let s3 = s3().await;
    let b = bucket(&s3).await;
    let tp = tp().await;
    let table = dedupe_table().await;
    const N: i64 = 60_000;
    let text = format!("sym,price,size\n{}", csv_rows("P", 1, N));
    let e1 = put(&s3, &b, "big.csv", text.clone().into_bytes()).await;
    let text_gz = format!("sym,price,size\n{}", csv_rows("Z", 1, N));
    let e2 = put(&s3, &b, "big.csv.gz", gzip(text_gz.as_bytes())).await;
    let queue = "notes.fifo";
    let mut deliveries = 0;
    let mut failed_deliveries = 0;
    loop {
        deliveries += 1;
        assert!(deliveries < 200, "never finished");
        // A new execution environment each time (as after a timeout).
        let app = bridge(
            &tp,
            &table,
            Opts {
                flush_rows: 500,
                margin: Duration::from_millis(300),
                ..Opts::default()
            },
        )
        .await;
        let event = sqs_event(
            queue,
            &[
                (
                    "g",
                    "m-1",
                    notification(&[(&b, "big.csv", &e1)]).to_string(),
                ),
                (
                    "g",
                    "m-2",
                    notification(&[(&b, "big.csv.gz", &e2)]).to_string(),
                ),
            ],
        );
        let inv = handle(&app, &event, Duration::from_millis(900))
            .await
            .unwrap();
        let failures: Vec<&str> = inv
            .response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        if failures.is_empty() {
            assert!(inv
                .states
                .iter()
                .all(|s| !matches!(s, RecordState::Pending { .. })));
            break;
        }
        failed_deliveries += 1;
        // FIFO: a pending m-1 holds back m-2 as well.
        if failures.contains(&"m-1") {
            assert_eq!(failures, ["m-1", "m-2"]);
        }
    }
    assert!(
        failed_deliveries >= 2,
        "the deadline should have stopped the objects mid-way ({deliveries} deliveries)"
    );
    let got = rows(&tp, "obj");
    let p: Vec<i64> = got.iter().filter(|r| r.0 == "P").map(|r| r.1).collect();
    let z: Vec<i64> = got.iter().filter(|r| r.0 == "Z").map(|r| r.1).collect();
    assert_eq!(
        p,
        (1..=N).collect::<Vec<_>>(),
        "plain object: every row once, in order"
    );
    assert_eq!(
        z,
        (1..=N).collect::<Vec<_>>(),
        "gzip object: every row once, in order"
    );
}

/// The same notification delivered twice (and the same object named again
/// by EventBridge): the second delivery finds the object done and reads
/// nothing; it is not even fetched (it was deleted in between).
#[tokio::test]
async fn a_notification_delivered_twice_sends_nothing_twice() {
    let s3 = s3().await;
    let b = bucket(&s3).await;
    let tp = tp().await;
    let table = dedupe_table().await;
    let app = bridge(&tp, &table, Opts::default()).await;
    let etag = put(
        &s3,
        &b,
        "once.csv",
        format!("sym,price,size\n{}", csv_rows("O", 1, 100)).into_bytes(),
    )
    .await;
    let event = notification(&[(&b, "once.csv", &etag)]);
    let first = handle(&app, &event, Duration::from_secs(30)).await.unwrap();
    assert_eq!(first.summary.forwarded, 1);
    assert_eq!(rows(&tp, "obj").len(), 100);

    s3.delete_object()
        .bucket(&b)
        .key("once.csv")
        .send()
        .await
        .unwrap();
    let again = bridge(&tp, &table, Opts::default()).await;
    let second = handle(&again, &event, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        (second.summary.forwarded, second.summary.duplicates),
        (0, 1)
    );
    let third = handle(
        &again,
        &eventbridge(&b, "once.csv", &etag),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(third.summary.duplicates, 1);
    let via_sqs = sqs_event("n.fifo", &[("g", "m-9", event.to_string())]);
    let fourth = handle(&again, &via_sqs, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(fourth.states, vec![RecordState::Duplicate]);
    assert_eq!(rows(&tp, "obj").len(), 100, "nothing twice");
}

/// A missing object is a bad object (quarantined, the notification done);
/// S3's test event is nothing to do.
#[tokio::test]
async fn a_missing_object_is_quarantined_and_the_test_event_ignored() {
    let s3 = s3().await;
    let b = bucket(&s3).await;
    let tp = tp().await;
    let table = dedupe_table().await;
    let (quarantine, url) = quarantine_queue().await;
    let app = bridge(
        &tp,
        &table,
        Opts {
            quarantine: Some(quarantine),
            ..Opts::default()
        },
    )
    .await;
    let inv = handle(
        &app,
        &notification(&[(&b, "nope.csv", "0123")]),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(inv.summary.quarantined, 1);
    let q = drain(&url).await;
    assert_eq!(q.len(), 1);
    let reason = q[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("s3://{b}/nope.csv")) && reason.contains("not found"),
        "{reason}"
    );
    let test = serde_json::json!({"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2025-01-01T00:00:00Z","Bucket":b,"RequestId":"r","HostId":"h"});
    let inv = handle(&app, &test, Duration::from_secs(30)).await.unwrap();
    assert_eq!(inv.summary.records, 0);
}

/// The `tickbridge` command line against moto's S3 and DynamoDB at
/// `endpoint` and the stand-in: `ingest url` with checkpoints in `table`.
fn ingest_cmd(
    endpoint: &str,
    tp: &tickbridge::tp::RunningTp,
    (table, quarantine): (&str, &str),
    schemas: &std::path::Path,
    url: &str,
    stderr: std::fs::File,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(s3_support::common::tickbridge_exe());
    for k in s3_support::common::inherited_settings() {
        cmd.env_remove(k);
    }
    cmd.envs(s3_support::common::EMULATOR_AWS_ENV)
        .env("TICKBRIDGE_S3_FLUSH_ROWS", "1000")
        .env("TICKBRIDGE_LOG", "info")
        .args([
            "ingest",
            url,
            "--store",
            "dynamodb",
            "--dedupe-table",
            table,
        ])
        .args(["--quarantine-queue-url", quarantine])
        .args([
            "--tp",
            &tp.local_addr().to_string(),
            "--endpoint-url",
            endpoint,
        ])
        .arg("--schemas")
        .arg(schemas)
        .args(["--object-timeout-secs", "8"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true);
    cmd
}

/// A process killed (SIGKILL, no chance to clean up) mid-object, caught
/// with part of the object read and rows confirmed, then a retry: it waits
/// out the dead process's claim, resumes after the last saved checkpoint
/// with a ranged GET, and every row arrives once, in order. The kill
/// lands while the download is stalled, so every confirmed flush had its
/// checkpoint saved; a kill between the tickerplant's confirm and the
/// checkpoint write would resend that one flush (the README's guarantee).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_object_resumes_with_nothing_twice_or_lost() {
    use s3_support::common::http_proxy::{spawn, Action};

    let s3 = s3().await;
    let b = bucket(&s3).await;
    let tp = tp().await;
    let (_, table) = dedupe_table().await;
    let (_, quarantine) = quarantine_queue().await;
    let state = (table.as_str(), quarantine.as_str());
    const N: i64 = 40_000;
    let text = format!("sym,price,size\n{}", csv_rows("K", 1, N));
    let size = text.len();
    put(&s3, &b, "kill.csv", text.into_bytes()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("obj.json"), OBJ_SCHEMA).unwrap();
    let moto = MotoServer::shared();
    let upstream: std::net::SocketAddr = format!("127.0.0.1:{}", moto.port()).parse().unwrap();
    // The object's download passes on 60% of the body, then stalls.
    let proxy = spawn(upstream, |head| {
        let line = head.lines().next().unwrap_or_default();
        // `GET /bucket/kill.csv?x-id=GetObject`, not the listing.
        if line.starts_with("get ") && line.contains("/kill.csv?x-id=getobject") {
            Action::Truncate(KILL_AT)
        } else {
            Action::Forward
        }
    })
    .await;
    const KILL_AT: usize = 40_000 * 16 * 6 / 10;
    assert!(KILL_AT < size);
    let url = format!("s3://{b}/kill.csv");
    let log = dir.path().join("killed.log");
    let first_started = std::time::Instant::now();
    let mut first = ingest_cmd(
        &proxy,
        &tp,
        state,
        dir.path(),
        &url,
        std::fs::File::create(&log).unwrap(),
    )
    .spawn()
    .expect("tickbridge starts");

    // Rows arrive, then stop: the download has stalled and every flush
    // before it is confirmed.
    let started = std::time::Instant::now();
    let mut last = (0, std::time::Instant::now());
    let confirmed = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "rows never stopped arriving (the download did not stall?):\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(status) = first.try_wait().unwrap() {
            panic!(
                "the first process ended by itself ({status}) before the kill:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let n = rows(&tp, "obj").len();
        if n != last.0 {
            last = (n, std::time::Instant::now());
        } else if n > 0 && last.1.elapsed() > Duration::from_millis(1500) {
            break n;
        }
    };
    first.kill().await.unwrap();
    assert!(
        confirmed < N as usize,
        "the whole object arrived before the kill"
    );

    // Retries straight to moto: the dead process's claim holds the object
    // until its deadline (exit 1, "being read by another invocation"),
    // then one run resumes and finishes it.
    let mut outputs = Vec::new();
    let done = loop {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the retry never finished: {outputs:#?}"
        );
        let log = dir.path().join(format!("retry-{}.log", outputs.len()));
        let status = ingest_cmd(
            &moto.endpoint(),
            &tp,
            state,
            dir.path(),
            &url,
            std::fs::File::create(&log).unwrap(),
        )
        .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
        .status()
        .await
        .unwrap();
        let stdout = std::fs::read_to_string(log.with_extension("out")).unwrap_or_default();
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        if status.success() {
            break stdout;
        }
        assert!(
            stderr.contains("being read by another invocation"),
            "a retry failed for another reason:\n{stdout}\n{stderr}"
        );
        outputs.push(stdout);
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // The dead process's claim lasts to its deadline (8 s); a retry that
    // found it live must not have given it back for the next one.
    assert!(
        first_started.elapsed() >= Duration::from_secs(8),
        "a retry read the object before the killed process's claim expired \
         ({:?} in, {} retries held off)",
        first_started.elapsed(),
        outputs.len()
    );
    let resent = N as usize - confirmed;
    assert!(
        done.contains(&format!(
            "1 done, 0 already done, 0 bad, 0 pending; {resent} rows sent"
        )),
        "the retry sends only what the killed run had not confirmed ({resent} rows): {done}"
    );
    let got: Vec<i64> = rows(&tp, "obj").iter().map(|r| r.1).collect();
    assert_eq!(got.len(), N as usize, "rows twice or lost");
    assert_eq!(got, (1..=N).collect::<Vec<_>>(), "every row once, in order");
}

/// The real `bootstrap` behind a runtime API on loopback: an S3
/// notification delivered directly and one by EventBridge are read into
/// the tickerplant and answered with an empty batch response; the same
/// notification again sends nothing; an object that stops at its
/// checkpoint (tickerplant gone) is the invocation's error, which is what
/// makes Lambda retry an asynchronous invocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_binary_reads_direct_and_eventbridge_notifications() {
    use std::sync::Arc;
    use tickbridge_tools::bench::lambda_process::Function;
    use tickbridge_tools::bench::runtime_api::{Answer, RuntimeApi};

    let step = Duration::from_secs(30);
    let s3 = s3().await;
    let b = bucket(&s3).await;
    let tp = tp().await;
    let trades = |from: i64, to: i64| -> Vec<u8> {
        (from..=to)
            .map(|n| {
                format!(
                    "{{\"type\":\"trade\",\"id\":\"s3-{n}\",\"sym\":\"L\",\"price\":1.5,\"size\":{n},\"side\":\"B\"}}\n"
                )
            })
            .collect::<String>()
            .into_bytes()
    };
    let e1 = put(&s3, &b, "day/1.jsonl", trades(1, 300)).await;
    let e2 = put(&s3, &b, "day/2.jsonl", trades(301, 500)).await;
    let e3 = put(&s3, &b, "day/3.jsonl", trades(501, 510)).await;

    let mut api = RuntimeApi::bind().await.unwrap();
    let endpoint = MotoServer::shared().endpoint();
    let mut env = s3_support::common::EMULATOR_AWS_ENV.to_vec();
    env.extend([
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("TICKBRIDGE_LOG", "info"),
        ("TICKBRIDGE_TP_CONNECT_TIMEOUT_MS", "200"),
    ]);
    let mut function = Function::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_bootstrap")),
        api.addr,
        tp.local_addr(),
        &env,
        true,
    )
    .unwrap();
    api.wait_ready(step)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", function.tail()));

    let mut invoke = async |id: &str, event: serde_json::Value| {
        api.invoke(id, Arc::from(event.to_string().into_bytes()), step)
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"))
            .answer
    };
    let ok = |id: &str, answer: Answer| match answer {
        Answer::Response(body) => assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"batchItemFailures": []}),
            "{id}"
        ),
        Answer::Error(doc) => panic!("{id}: {}", String::from_utf8_lossy(&doc)),
    };
    let direct = notification(&[(&b, "day/1.jsonl", &e1)]);
    ok("direct", invoke("direct", direct.clone()).await);
    ok(
        "eventbridge",
        invoke("eventbridge", eventbridge(&b, "day/2.jsonl", &e2)).await,
    );
    ok("again", invoke("again", direct).await);
    let sizes: Vec<i64> = rows(&tp, "trade").iter().map(|r| r.1).collect();
    assert_eq!(
        sizes,
        (1..=500).collect::<Vec<_>>(),
        "every row once, in order"
    );

    // No tickerplant: the object stops at its checkpoint, and the
    // invocation fails naming it.
    tp.shutdown().await;
    let answer = invoke("pending", notification(&[(&b, "day/3.jsonl", &e3)])).await;
    let Answer::Error(doc) = answer else {
        panic!("a pending object was answered as done\n{}", function.tail());
    };
    let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
    let message = doc["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("s3://{b}/day/3.jsonl")),
        "the error names the object: {doc}"
    );
    assert!(function.running(), "bootstrap exited");

    // The object lines are flat JSON with a plain status. Stdout is
    // drained by a thread: wait (bounded) for the last line to be read.
    let statuses = |function: &Function| -> Vec<String> {
        function
            .stdout_lines()
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .unwrap_or_else(|_| panic!("not JSON on stdout: {l}"))
            })
            .filter(|l| l["object"].is_string() && l["status"].is_string())
            .map(|l| l["status"].as_str().unwrap().to_string())
            .collect()
    };
    let waited = std::time::Instant::now();
    while statuses(&function).len() < 4 && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        statuses(&function),
        ["done", "done", "already_done", "pending"]
    );
}
