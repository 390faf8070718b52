//! The SQS quarantine sink against a real moto server.

mod common;

use std::collections::HashMap;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use base64::Engine;
use common::moto::{unique_name, MotoServer};
use tickbridge::aws;
use tickbridge::pipeline::{QuarantineError, QuarantineItem, QuarantineSink};
use tickbridge::quarantine::{LogQuarantine, SqsQuarantine};

async fn sqs() -> aws_sdk_sqs::Client {
    aws::sqs_client(&MotoServer::shared().sdk_config().await)
}

async fn queue(
    client: &aws_sdk_sqs::Client,
    fifo: bool,
    attrs: &[(QueueAttributeName, &str)],
) -> String {
    let name = if fifo {
        format!("{}.fifo", unique_name("quarantine"))
    } else {
        unique_name("quarantine")
    };
    let mut req = client.create_queue().queue_name(name);
    if fifo {
        req = req.attributes(QueueAttributeName::FifoQueue, "true");
    }
    for (k, v) in attrs {
        req = req.attributes(k.clone(), *v);
    }
    req.send().await.unwrap().queue_url().unwrap().to_string()
}

fn item(lane: &str, position: u32, payload: &[u8], reason: &str) -> QuarantineItem {
    QuarantineItem {
        source_arn: "arn:aws:kinesis:us-east-1:123456789012:stream/ticks".into(),
        lane: lane.into(),
        position: position.to_string(),
        failure_id: format!("f{position}"),
        reason: reason.into(),
        payload: base64::engine::general_purpose::STANDARD.encode(payload),
    }
}

/// Receives until `want` messages arrived (bounded tries), then checks that
/// no more are waiting.
async fn receive(client: &aws_sdk_sqs::Client, url: &str, want: usize) -> Vec<Message> {
    let mut got = Vec::new();
    for _ in 0..30 {
        if got.len() >= want {
            break;
        }
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        got.extend(out.messages.unwrap_or_default());
    }
    assert_eq!(got.len(), want, "messages in {url}");
    let more = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert_eq!(
        more.messages.unwrap_or_default().len(),
        0,
        "extra messages in {url}"
    );
    got
}

fn body(m: &Message) -> serde_json::Value {
    serde_json::from_str(m.body().unwrap()).unwrap()
}

fn attr<'a>(m: &'a Message, name: &str) -> &'a str {
    m.message_attributes()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value())
        .unwrap_or_else(|| panic!("attribute {name} on {m:?}"))
}

#[tokio::test]
async fn items_arrive_in_a_standard_queue_with_body_and_attributes() {
    let client = sqs().await;
    let url = queue(&client, false, &[]).await;
    let sink = SqsQuarantine::new(client.clone(), &url);
    let items = vec![
        item(
            "shardId-000",
            1,
            b"{not json",
            "bad JSON at line 1 column 2",
        ),
        item("shardId-001", 7, &[0, 159, 146, 150], "bad UTF-8"),
    ];
    let results = sink.send(&items).await;
    assert_eq!(results, vec![Ok(()), Ok(())]);

    let got = receive(&client, &url, 2).await;
    let by_position: HashMap<String, &Message> = got
        .iter()
        .map(|m| (body(m)["position"].as_str().unwrap().to_string(), m))
        .collect();
    for it in &items {
        let m = by_position[&it.position];
        let b = body(m);
        assert_eq!(b["source_arn"], it.source_arn.as_str());
        assert_eq!(b["lane"], it.lane.as_str());
        assert_eq!(b["failure_id"], it.failure_id.as_str());
        assert_eq!(b["reason"], it.reason.as_str());
        assert_eq!(b["payload"], it.payload.as_str());
        assert_eq!(b["payload_truncated"], false);
        assert_eq!(attr(m, "reason"), it.reason);
        assert_eq!(attr(m, "source"), it.source_arn);
    }
}

#[tokio::test]
async fn fifo_queue_gets_lane_groups_stable_dedup_ids_and_order() {
    let client = sqs().await;
    let url = queue(&client, true, &[]).await;
    let sink = SqsQuarantine::new(client.clone(), &url);
    let items: Vec<QuarantineItem> = (0..6)
        .map(|i| item(if i % 2 == 0 { "lane-a" } else { "lane-b" }, i, b"x", "bad"))
        .collect();
    assert!(sink.send(&items).await.iter().all(Result::is_ok));
    // The same items again within the deduplication window: SQS drops them.
    assert!(sink.send(&items).await.iter().all(Result::is_ok));

    let got = receive(&client, &url, 6).await;
    let mut per_group: HashMap<String, Vec<String>> = HashMap::new();
    let mut dedup_ids = std::collections::HashSet::new();
    for m in &got {
        let sys = m.attributes().unwrap();
        let group = sys[&MessageSystemAttributeName::MessageGroupId].clone();
        let b = body(m);
        assert_eq!(b["lane"], group.as_str());
        dedup_ids.insert(sys[&MessageSystemAttributeName::MessageDeduplicationId].clone());
        per_group
            .entry(group)
            .or_default()
            .push(b["position"].as_str().unwrap().to_string());
    }
    assert_eq!(dedup_ids.len(), 6, "one deduplication id per record");
    assert_eq!(per_group["lane-a"], vec!["0", "2", "4"]);
    assert_eq!(per_group["lane-b"], vec!["1", "3", "5"]);
}

#[tokio::test]
async fn more_than_ten_items_are_chunked() {
    let client = sqs().await;
    let url = queue(&client, false, &[]).await;
    let sink = SqsQuarantine::new(client.clone(), &url);
    let items: Vec<QuarantineItem> = (0..23).map(|i| item("s", i, b"p", "bad")).collect();
    let results = sink.send(&items).await;
    assert_eq!(results.len(), 23);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let got = receive(&client, &url, 23).await;
    let mut positions: Vec<u32> = got
        .iter()
        .map(|m| body(m)["position"].as_str().unwrap().parse().unwrap())
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, (0..23).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_oversize_payload_is_truncated_and_flagged() {
    let client = sqs().await;
    // A queue with the classic 256 KiB limit, which moto enforces per message.
    let url = queue(
        &client,
        false,
        &[(QueueAttributeName::MaximumMessageSize, "262144")],
    )
    .await;
    let sink = SqsQuarantine::new(client.clone(), &url);
    let big: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    let items = vec![
        item("s", 1, &big, "table too wide"),
        item("s", 2, b"ok", "bad"),
    ];
    assert_eq!(sink.send(&items).await, vec![Ok(()), Ok(())]);

    let got = receive(&client, &url, 2).await;
    let m = got.iter().find(|m| body(m)["position"] == "1").unwrap();
    assert!(m.body().unwrap().len() <= 262_144);
    let b = body(m);
    assert_eq!(b["payload_truncated"], true);
    assert_eq!(b["payload_base64_len"], items[0].payload.len());
    assert_eq!(b["reason"], "table too wide");
    let cut = b["payload"].as_str().unwrap();
    assert!(cut.len() > 200_000 && items[0].payload.starts_with(cut));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(cut)
        .unwrap();
    assert_eq!(raw[..], big[..raw.len()]);
    let small = got.iter().find(|m| body(m)["position"] == "2").unwrap();
    assert_eq!(body(small)["payload_truncated"], false);
}

#[tokio::test]
async fn a_missing_queue_gives_an_error_per_item() {
    let client = sqs().await;
    let url = format!(
        "{}/123456789012/{}",
        MotoServer::shared().endpoint(),
        unique_name("no-such-queue")
    );
    let sink = SqsQuarantine::new(client, &url);
    let items: Vec<QuarantineItem> = (0..12).map(|i| item("s", i, b"p", "bad")).collect();
    let results = sink.send(&items).await;
    assert_eq!(results.len(), 12);
    for r in &results {
        let err = r.as_ref().unwrap_err();
        assert!(matches!(err, QuarantineError::Send(_)), "{err:?}");
        let why = err.to_string();
        assert!(why.contains("no-such-queue"), "{why}");
        assert!(
            why.contains("NonExistentQueue") || why.contains("QueueDoesNotExist"),
            "{why}"
        );
    }
}

#[tokio::test]
async fn log_sink_accepts_every_item() {
    let items: Vec<QuarantineItem> = (0..3).map(|i| item("s", i, b"p", "bad")).collect();
    assert_eq!(LogQuarantine.send(&items).await, vec![Ok(()); 3]);
}
