//! Shared by the runner_* tests: the emulators (kinesis-local for Kinesis,
//! moto for SQS and DynamoDB), a producer that puts records on chosen
//! shards, the `tickbridge run` binary as a child process (so SIGKILL and
//! SIGTERM are real), and readers for queues.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;

#[path = "../bridge_support/mod.rs"]
pub mod bridge;

pub use bridge::common::kinesis_local::{create_stream, KinesisLocal};
pub use bridge::{bad_trade, common, sizes_of, trade, unique_name, MotoServer};

/// Both emulators, started once per test binary.
pub struct Emulators {
    pub kinesis: aws_sdk_kinesis::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub kinesis_endpoint: String,
    pub moto_endpoint: String,
}

pub async fn emulators() -> Emulators {
    let kl = KinesisLocal::shared();
    let moto = MotoServer::shared();
    let msdk = moto.sdk_config().await;
    Emulators {
        kinesis: kl.client().await,
        sqs: tickbridge::aws::sqs_client(&msdk),
        ddb: tickbridge::aws::dynamodb_client(&msdk),
        kinesis_endpoint: kl.endpoint(),
        moto_endpoint: moto.endpoint(),
    }
}

/// The starting hash key of each shard, in shard order: a record put with
/// it as `ExplicitHashKey` lands on that shard.
pub async fn shard_hash_keys(k: &aws_sdk_kinesis::Client, stream: &str) -> Vec<(String, String)> {
    let out = k.list_shards().stream_name(stream).send().await.unwrap();
    let mut shards: Vec<(String, String)> = out
        .shards()
        .iter()
        .map(|s| {
            (
                s.shard_id().to_string(),
                s.hash_key_range()
                    .map(|h| h.starting_hash_key().to_string())
                    .unwrap(),
            )
        })
        .collect();
    shards.sort();
    shards
}

/// Puts `(shard index, payload)` records in order, 500 per request, each
/// on the shard named; a failed entry is put again so none is lost.
pub async fn put(k: &aws_sdk_kinesis::Client, stream: &str, recs: &[(usize, String)]) {
    let keys = shard_hash_keys(k, stream).await;
    for chunk in recs.chunks(500) {
        let mut entries: Vec<PutRecordsRequestEntry> = chunk
            .iter()
            .enumerate()
            .map(|(i, (shard, payload))| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(payload.as_bytes()))
                    .partition_key(format!("p{i}"))
                    .explicit_hash_key(&keys[*shard].1)
                    .build()
                    .unwrap()
            })
            .collect();
        // Within one shard, PutRecords keeps request order; retry the
        // whole remainder from the first failure so order holds.
        for _ in 0..10 {
            let out = k
                .put_records()
                .stream_name(stream)
                .set_records(Some(entries.clone()))
                .send()
                .await
                .unwrap();
            let first_failed = out.records().iter().position(|r| r.error_code().is_some());
            match first_failed {
                None => break,
                Some(i) => {
                    entries = entries.split_off(i);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// A queue (`.fifo` names make FIFO queues) with the given attributes.
pub async fn queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attrs: &[(aws_sdk_sqs::types::QueueAttributeName, String)],
) -> String {
    let mut req = sqs.create_queue().queue_name(name);
    if name.ends_with(".fifo") {
        req = req.attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true");
    }
    for (k, v) in attrs {
        req = req.attributes(k.clone(), v);
    }
    req.send().await.unwrap().queue_url.unwrap()
}

pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&A::QueueArn).cloned())
        .unwrap()
}

/// Receives (and deletes) until `n` messages arrived or `limit` passed.
pub async fn drain(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    n: usize,
    limit: Duration,
) -> Vec<aws_sdk_sqs::types::Message> {
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < n && start.elapsed() < limit {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            got.push(m);
        }
    }
    got
}

/// `tickbridge run …` as a child process, wired to the emulators and the
/// stand-in. Logs go to a file so a failing test can show them.
pub struct Runner {
    pub child: Child,
    pub log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub fn runner(
    emu: &Emulators,
    tp: std::net::SocketAddr,
    env: &[(&str, &str)],
    args: &[&str],
) -> Runner {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runner.log");
    let mut cmd = Command::new(common::tickbridge_exe());
    for k in common::inherited_settings() {
        cmd.env_remove(k);
    }
    cmd.envs(common::EMULATOR_AWS_ENV)
        .env("AWS_ENDPOINT_URL_KINESIS", &emu.kinesis_endpoint)
        .env("AWS_ENDPOINT_URL_SQS", &emu.moto_endpoint)
        .env("AWS_ENDPOINT_URL_DYNAMODB", &emu.moto_endpoint)
        .env("TICKBRIDGE_TP", tp.to_string())
        .env("TICKBRIDGE_TP_CONNECT_TIMEOUT_MS", "200")
        .env("TICKBRIDGE_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("tickbridge binary starts");
    Runner {
        child,
        log,
        _dir: dir,
    }
}

impl Runner {
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status and the summary line from stdout.
    pub fn terminate(self) -> (std::process::ExitStatus, serde_json::Value, String) {
        let (status, summary, logs, _) = self.terminate_with_stdout();
        (status, summary, logs)
    }

    /// As [`Runner::terminate`], with the whole of stdout (EMF lines with
    /// `--metrics emf`); keep such runs short, stdout is read at the end.
    pub fn terminate_with_stdout(
        mut self,
    ) -> (std::process::ExitStatus, serde_json::Value, String, String) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!(
                    "runner did not stop within 30 s of SIGTERM:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            s.read_to_string(&mut out).unwrap();
        }
        let summary = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v.get("summary").is_some())
            .unwrap_or_else(|| panic!("no summary line in {out:?}\n{}", self.logs()));
        let logs = self.logs();
        (status, summary, logs, out)
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.logs()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `f` holds, up to `limit`; false on timeout.
pub async fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f()
}

/// Rows of the stand-in's trade table per sym, in arrival order.
pub fn sizes_by_sym(tp: &tickbridge::tp::RunningTp) -> HashMap<String, Vec<i64>> {
    let mut out: HashMap<String, Vec<i64>> = HashMap::new();
    for (sym, n) in bridge::trades(tp) {
        out.entry(sym).or_default().push(n);
    }
    out
}

/// A summary field as a number.
pub fn total(summary: &serde_json::Value, field: &str) -> u64 {
    summary["totals"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("summary has no totals.{field}: {summary}"))
}
