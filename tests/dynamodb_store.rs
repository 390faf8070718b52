//! The DynamoDB dedupe store against a real moto server: the memory store's
//! semantics, request costs, bounded concurrency, and failure mapping.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use common::moto::{unique_name, MotoServer};
use tickbridge::aws;
use tickbridge::dedupe::dynamodb::{ensure_table, DynamoStore};
use tickbridge::dedupe::memory::MemoryStore;
use tickbridge::dedupe::{Claim, DedupeStore, StoreError};
use tokio::net::{TcpListener, TcpStream};

fn keys(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| s.to_string()).collect()
}

async fn client_for(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws::dynamodb_client(&aws::local_config(endpoint).await)
}

/// A store on a fresh table of the shared moto server.
async fn store(concurrency: usize) -> DynamoStore {
    let client = client_for(&MotoServer::shared().endpoint()).await;
    let table = unique_name("dedupe");
    ensure_table(&client, &table).await.unwrap();
    DynamoStore::new(client, table, concurrency)
}

#[tokio::test]
async fn claim_complete_release_cycle() {
    let s = store(4).await;
    let k = keys(&["m1", "m2"]);
    assert_eq!(
        s.claim(&k, 0, 1000).await.unwrap(),
        vec![Claim::New, Claim::New]
    );
    // A second invocation while ours is live sees them in progress.
    assert_eq!(
        s.claim(&k, 10, 2000).await.unwrap(),
        vec![Claim::InProgress, Claim::InProgress]
    );
    s.complete(&k[..1], 100).await.unwrap();
    s.release(&k[1..], 1000).await.unwrap();
    assert_eq!(
        s.claim(&k, 20, 3000).await.unwrap(),
        vec![Claim::Completed, Claim::New]
    );
    // Live before its expiry, taken over at it (as in the memory store).
    assert_eq!(
        s.claim(&k[1..], 2999, 4000).await.unwrap(),
        vec![Claim::InProgress]
    );
    assert_eq!(
        s.claim(&k[1..], 3000, 4000).await.unwrap(),
        vec![Claim::New]
    );
    // Completed items count until their TTL second, whether or not
    // DynamoDB's sweeper has deleted them yet.
    assert_eq!(
        s.claim(&k[..1], 99_999, 200_000).await.unwrap(),
        vec![Claim::Completed]
    );
    assert_eq!(
        s.claim(&k[..1], 100_000, 200_000).await.unwrap(),
        vec![Claim::New]
    );
    // 2 + 2 + 1 + 1 + 2 + 1 + 1 + 1 + 1: no extra reads for duplicates.
    assert_eq!(s.requests(), 12);
}

#[tokio::test]
async fn release_gives_back_only_in_progress_claims() {
    let s = store(4).await;
    let k = keys(&["done", "held", "never-claimed"]);
    assert_eq!(s.claim(&k[..2], 0, 10_000).await.unwrap().len(), 2);
    s.complete(&k[..1], 1_000_000).await.unwrap();
    // A release under another claim's expiry is not ours: nothing moves.
    s.release(&k, 9_999).await.unwrap();
    assert_eq!(
        s.claim(&k[1..2], 1, 20_000).await.unwrap(),
        vec![Claim::InProgress]
    );
    // Releasing a completed key or an unknown one is not an error and
    // leaves a completed key completed.
    s.release(&k, 10_000).await.unwrap();
    assert_eq!(
        s.claim(&k, 1, 10_000).await.unwrap(),
        vec![Claim::Completed, Claim::New, Claim::New]
    );
}

#[tokio::test]
async fn checkpoint_moves_only_from_the_expected_value() {
    let s = store(4).await;
    assert_eq!(s.checkpoint("shard-1").await.unwrap(), None);
    s.advance_checkpoint("shard-1", None, "5").await.unwrap();
    assert!(matches!(
        s.advance_checkpoint("shard-1", None, "9").await,
        Err(StoreError::CheckpointConflict { .. })
    ));
    assert!(matches!(
        s.advance_checkpoint("shard-1", Some("4"), "9").await,
        Err(StoreError::CheckpointConflict { .. })
    ));
    s.advance_checkpoint("shard-1", Some("5"), "9")
        .await
        .unwrap();
    assert_eq!(s.checkpoint("shard-1").await.unwrap().as_deref(), Some("9"));
    // Lanes are independent, and a 56-digit sequence number is kept as text.
    let big = "49590338271490256608559692538361571095921575989136588898";
    assert_eq!(s.checkpoint("shard-2").await.unwrap(), None);
    s.advance_checkpoint("shard-2", None, big).await.unwrap();
    assert_eq!(s.checkpoint("shard-2").await.unwrap().as_deref(), Some(big));
    assert_eq!(s.requests(), 9);
}

#[tokio::test]
async fn checkpoints_and_keys_live_side_by_side() {
    // A key that looks like a lane must not be read as that lane's checkpoint.
    let s = store(4).await;
    s.advance_checkpoint("x", None, "7").await.unwrap();
    assert_eq!(
        s.claim(&keys(&["x"]), 0, 1000).await.unwrap(),
        vec![Claim::New]
    );
    s.complete(&keys(&["x"]), 1_000_000).await.unwrap();
    assert_eq!(s.checkpoint("x").await.unwrap().as_deref(), Some("7"));
}

#[tokio::test]
async fn request_costs_match_the_design() {
    let s = store(8).await;
    let ten: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    s.claim(&ten, 0, 60_000).await.unwrap();
    assert_eq!(s.requests(), 10, "one conditional put per claimed key");

    let sixty: Vec<String> = (0..60).map(|i| format!("c{i}")).collect();
    s.complete(&sixty, 1_000_000).await.unwrap();
    assert_eq!(s.requests(), 10 + 3, "60 completions in 3 batches of <= 25");

    // A single-shard Kinesis batch of any size: read + move the checkpoint.
    let cp = s.checkpoint("shardId-000").await.unwrap();
    s.advance_checkpoint("shardId-000", cp.as_deref(), "1000")
        .await
        .unwrap();
    assert_eq!(s.requests(), 13 + 2);

    s.release(&ten[..4], 60_000).await.unwrap();
    assert_eq!(
        s.requests(),
        15 + 1,
        "one transaction per 100 released keys"
    );
    let many: Vec<String> = (0..250).map(|i| format!("r{i}")).collect();
    s.claim(&many, 0, 60_000).await.unwrap();
    s.release(&many, 60_000).await.unwrap();
    assert_eq!(s.requests(), 16 + 250 + 3);
    // All given back: they can be claimed again at once.
    assert!(s
        .claim(&many, 1, 60_000)
        .await
        .unwrap()
        .iter()
        .all(|c| *c == Claim::New));
}

#[tokio::test]
async fn duplicates_cost_no_extra_read() {
    // moto returns the blocking item with ALL_OLD, as DynamoDB does, so a
    // duplicate is one failed conditional put and nothing more.
    let s = store(8).await;
    let done: Vec<String> = (0..5).map(|i| format!("done{i}")).collect();
    let held: Vec<String> = (0..5).map(|i| format!("held{i}")).collect();
    s.claim(&done, 0, 60_000).await.unwrap();
    s.complete(&done, 1_000_000).await.unwrap();
    s.claim(&held, 0, 60_000).await.unwrap();
    let before = s.requests();
    let mut both = done.clone();
    both.extend(held.iter().cloned());
    let claims = s.claim(&both, 1000, 60_000).await.unwrap();
    assert_eq!(s.requests() - before, 10);
    assert_eq!(claims[..5], vec![Claim::Completed; 5]);
    assert_eq!(claims[5..], vec![Claim::InProgress; 5]);
}

#[tokio::test]
async fn many_keys_claimed_concurrently_come_back_in_order() {
    let s = store(16).await;
    let all: Vec<String> = (0..200).map(|i| format!("key-{i:03}")).collect();
    let completed: Vec<String> = all.iter().step_by(3).cloned().collect();
    let held: Vec<String> = all.iter().skip(1).step_by(5).cloned().collect();
    s.claim(&completed, 0, 1000).await.unwrap();
    s.complete(&completed, 1_000_000).await.unwrap();
    s.claim(&held, 0, 1_000_000).await.unwrap();

    let claims = s.claim(&all, 5000, 60_000).await.unwrap();
    assert_eq!(claims.len(), all.len());
    for (i, (key, claim)) in all.iter().zip(&claims).enumerate() {
        let want = if i % 3 == 0 {
            Claim::Completed
        } else if i % 5 == 1 {
            Claim::InProgress
        } else {
            Claim::New
        };
        assert_eq!(claim, &want, "{key}");
    }
}

/// A TCP relay to moto that counts the requests in flight at once: a
/// request starts with its first bytes towards the server and ends with the
/// first bytes of its response (HTTP/1.1: one request at a time per
/// connection, so the client cannot start another on it before that).
async fn counting_relay(target: u16) -> (u16, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let peak_out = peak.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
                continue;
            };
            let (mut c_rd, mut c_wr) = inbound.into_split();
            let (mut s_rd, mut s_wr) = outbound.into_split();
            let busy = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (busy2, in_flight2, peak2) = (busy.clone(), in_flight.clone(), peak.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = c_rd.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if !busy2.swap(true, Ordering::SeqCst) {
                        let now = in_flight2.fetch_add(1, Ordering::SeqCst) + 1;
                        peak2.fetch_max(now, Ordering::SeqCst);
                    }
                    if s_wr.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = s_wr.shutdown().await;
            });
            let in_flight = in_flight.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = s_rd.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if busy.swap(false, Ordering::SeqCst) {
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                    }
                    if c_wr.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = c_wr.shutdown().await;
            });
        }
    });
    (port, peak_out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded() {
    let moto = MotoServer::shared();
    let (relay, peak) = counting_relay(moto.port()).await;
    let client = client_for(&format!("http://127.0.0.1:{relay}")).await;
    let table = unique_name("bounded");
    ensure_table(&client, &table).await.unwrap();
    let s = DynamoStore::new(client, table, 6);
    let all: Vec<String> = (0..120).map(|i| format!("b{i}")).collect();
    let claims = s.claim(&all, 0, 60_000).await.unwrap();
    assert!(claims.iter().all(|c| *c == Claim::New));
    s.release(&all, 60_000).await.unwrap();
    let peak = peak.load(Ordering::SeqCst);
    eprintln!("peak requests in flight: {peak}");
    assert!(peak <= 6, "{peak} requests in flight at once, bound is 6");
    assert!(peak >= 2, "requests ran one at a time ({peak})");
}

#[tokio::test]
async fn long_keys_are_stored_and_found_again() {
    let s = store(4).await;
    let long_a = "a".repeat(5000);
    let long_b = format!("{}b", "a".repeat(4999));
    let k = vec![long_a, long_b];
    assert_eq!(
        s.claim(&k, 0, 1000).await.unwrap(),
        vec![Claim::New, Claim::New]
    );
    s.complete(&k[..1], 1_000_000).await.unwrap();
    assert_eq!(
        s.claim(&k, 10, 1000).await.unwrap(),
        vec![Claim::Completed, Claim::InProgress]
    );
}

#[tokio::test]
async fn same_answers_and_costs_as_the_memory_store() {
    // A fixed pseudo-random script of claims, completions and releases on a
    // few keys with a moving clock, run on both stores.
    let dynamo = store(4).await;
    let memory = MemoryStore::new();
    let pool: Vec<String> = (0..6).map(|i| format!("p{i}")).collect();
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m
    };
    let mut now_ms: i64 = 0;
    // Releases name the expiry of a claim made earlier (ours) or one
    // that no claim had (another invocation's).
    let mut untils: Vec<i64> = vec![1];
    for step in 0..60 {
        now_ms += 200 * next(10) as i64;
        // What a dry run sees: the same on both stores, and nothing taken.
        let m = memory.peek(&pool, now_ms).await.unwrap();
        let d = dynamo.peek(&pool, now_ms).await.unwrap();
        assert_eq!(d, m, "step {step}: peek at {now_ms}");
        let picked: Vec<String> = pool.iter().filter(|_| next(2) == 0).cloned().collect();
        if picked.is_empty() {
            continue;
        }
        match next(3) {
            0 => {
                let until = now_ms + 500 * next(6) as i64;
                untils.push(until);
                let m = memory.claim(&picked, now_ms, until).await.unwrap();
                let d = dynamo.claim(&picked, now_ms, until).await.unwrap();
                assert_eq!(d, m, "step {step}: claim {picked:?} at {now_ms}");
            }
            1 => {
                let exp_s = now_ms / 1000 + next(4) as i64;
                memory.complete(&picked, exp_s).await.unwrap();
                dynamo.complete(&picked, exp_s).await.unwrap();
            }
            _ => {
                let until = untils[next(untils.len() as u64) as usize];
                memory.release(&picked, until).await.unwrap();
                dynamo.release(&picked, until).await.unwrap();
            }
        }
    }
    let m = memory.claim(&pool, now_ms, now_ms + 1).await.unwrap();
    let d = dynamo.claim(&pool, now_ms, now_ms + 1).await.unwrap();
    assert_eq!(d, m);
    assert_eq!(dynamo.requests(), memory.requests());
    assert!(dynamo.requests() > 60);
}

#[tokio::test]
async fn peek_answers_as_claims_would_across_chunks_and_takes_nothing() {
    let s = store(4).await;
    // More than one BatchGetItem (100 keys), a key named twice, a long key.
    let mut k: Vec<String> = (0..250).map(|i| format!("k{i}")).collect();
    k.push("k7".into());
    k.push("é".repeat(1500));
    s.claim(&k[..100], 0, 5000).await.unwrap();
    s.complete(&k[..50], 100).await.unwrap();
    s.claim(&k[240..], 0, 5000).await.unwrap();
    let before = s.requests();
    let peeked = s.peek(&k, 1000).await.unwrap();
    assert_eq!(
        s.requests() - before,
        3,
        "250 distinct keys, 100 to a request"
    );
    assert_eq!(peeked.len(), k.len());
    assert!(peeked[..50].iter().all(|c| *c == Claim::Completed));
    assert!(peeked[50..100].iter().all(|c| *c == Claim::InProgress));
    assert!(peeked[100..240].iter().all(|c| *c == Claim::New));
    assert_eq!(peeked[250], Claim::Completed, "k7 again");
    assert_eq!(peeked[251], Claim::InProgress, "the long key");
    // Nothing was claimed by peeking; a claim now finds the same.
    assert_eq!(s.claim(&k[..251], 1000, 9000).await.unwrap(), peeked[..251]);
    // Past the claims' expiry they read as free, as a claim would take them.
    assert_eq!(
        s.peek(&k[240..242], 10_000).await.unwrap(),
        vec![Claim::New; 2]
    );
}

/// A hang guard, not a speed claim.
async fn bounded<T>(what: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), what)
        .await
        .expect("the store gave up in time")
}

#[tokio::test]
async fn unreachable_dynamodb_is_a_transient_error() {
    // Nothing listens on a port just released.
    let closed = common::free_port();
    let config = aws::local_config(&format!("http://127.0.0.1:{closed}"))
        .await
        .into_builder()
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_timeout(Duration::from_secs(2))
                .build(),
        )
        .build();
    let s = DynamoStore::new(aws::dynamodb_client(&config), "dedupe-down", 4);
    let transient = |r: Result<(), StoreError>, op: &str| match r {
        Err(StoreError::Transient(msg)) => {
            assert!(msg.contains(op) && msg.contains("dedupe-down"), "{msg}");
        }
        other => panic!("{op}: {other:?}"),
    };
    transient(
        bounded(s.checkpoint("shard-1")).await.map(|_| ()),
        "GetItem",
    );
    transient(
        bounded(s.advance_checkpoint("shard-1", None, "1")).await,
        "PutItem",
    );
    transient(
        bounded(s.claim(&keys(&["a", "b"]), 0, 1000))
            .await
            .map(|_| ()),
        "PutItem",
    );
    transient(
        bounded(s.complete(&keys(&["a"]), 1000)).await,
        "BatchWriteItem",
    );
    transient(
        bounded(s.release(&keys(&["a"]), 1000)).await,
        "TransactWriteItems",
    );
}

#[tokio::test]
async fn ensure_table_is_idempotent_and_sets_ttl() {
    let client = client_for(&MotoServer::shared().endpoint()).await;
    let table = unique_name("ensure");
    ensure_table(&client, &table).await.unwrap();
    ensure_table(&client, &table).await.unwrap();
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let desc = ttl.time_to_live_description().unwrap();
    assert_eq!(desc.attribute_name(), Some("expiration"));
    assert_eq!(
        desc.time_to_live_status(),
        Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled)
    );
}

/// The child half of `endpoint_comes_from_aws_endpoint_url`: run in a
/// process of its own with the environment the parent sets, since changing
/// the environment here would leak into concurrent tests.
#[tokio::test]
#[ignore = "run by endpoint_comes_from_aws_endpoint_url in a child process"]
async fn child_uses_the_environment_endpoint() {
    let Ok(table) = std::env::var("TICKBRIDGE_TEST_TABLE") else {
        eprintln!("not started by endpoint_comes_from_aws_endpoint_url; nothing to check");
        return;
    };
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let config = aws::sdk_config(None).await;
    assert_eq!(config.endpoint_url(), Some(endpoint.as_str()));
    assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
    let tables = aws::dynamodb_client(&config)
        .list_tables()
        .send()
        .await
        .unwrap();
    assert!(tables.table_names().contains(&table), "{tables:?}");
}

#[test]
fn endpoint_comes_from_aws_endpoint_url() {
    // With default-features = false the SDK must still honour
    // AWS_ENDPOINT_URL and the environment's credentials and region.
    let moto = MotoServer::shared();
    let table = unique_name("from-env");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // moto keeps tables per region: make it where the child will look.
        let config = aws::local_config(&moto.endpoint())
            .await
            .into_builder()
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        ensure_table(&aws::dynamodb_client(&config), &table)
            .await
            .unwrap();
    });
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_uses_the_environment_endpoint",
            "--ignored",
            "--nocapture",
        ])
        .env("TICKBRIDGE_TEST_TABLE", &table)
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_failed_tls_handshake_is_a_transient_error() {
    // moto speaks plain HTTP: an https:// endpoint drives the rustls (ring)
    // stack into a failed handshake, which must surface as an error.
    let moto = MotoServer::shared();
    let config = aws::local_config(&format!("https://127.0.0.1:{}", moto.port()))
        .await
        .into_builder()
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build();
    let s = DynamoStore::new(aws::dynamodb_client(&config), "dedupe-tls", 4);
    match bounded(s.checkpoint("shard-1")).await {
        Err(StoreError::Transient(msg)) => {
            eprintln!("{msg}");
            assert!(msg.contains("dedupe-tls") && msg.contains("TLS"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
}
