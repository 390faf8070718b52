//! Claim checks end to end: the real Amazon SQS Extended Client for Python
//! offloads payloads to moto's S3 and puts pointer messages (current and
//! legacy attribute names) on a moto FIFO queue; the bridge reads them
//! with ReceiveMessage (`source::sqs::from_sdk`), replaces each pointer by
//! its object's rows and forwards them to the tickerplant stand-in over
//! TCP. A pointer to a missing object is quarantined with its bucket, key
//! and reason while the rest of its group flows. Kinesis pointers (the
//! same JSON array as data) resolve too.

mod s3_support;

use std::time::Duration;

use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use base64::Engine;
use s3_support::*;
use tickbridge::pipeline::{BatchContext, RecordState};
use tickbridge::source::{sqs::from_sdk, SourceOptions};

#[tokio::test]
async fn extended_client_pointers_flow_and_a_missing_object_is_quarantined() {
    let sqs = sqs().await;
    let s3 = s3().await;
    let queue = unique_name("claims") + ".fifo";
    let url = sqs
        .create_queue()
        .queue_name(&queue)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let bucket = unique_name("claims").to_lowercase();
    // First in the group: a pointer to an object that does not exist.
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let missing = format!(
        r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{{"s3BucketName":"{bucket}","s3Key":"gone/0001"}}]"#
    );
    sqs.send_message()
        .queue_url(&url)
        .message_body(&missing)
        .message_group_id("g")
        .message_deduplication_id("missing")
        .message_attributes(
            "ExtendedPayloadSize",
            MessageAttributeValue::builder()
                .data_type("Number")
                .string_value("300000")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let out = common::run_python(
        "s3_extended_producer.py",
        &[&MotoServer::shared().endpoint(), &url, &bucket, "g"],
        None,
    );
    let sent: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(sent.len(), 2);

    let mut msgs = Vec::new();
    for _ in 0..10 {
        let r = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        msgs.extend(r.messages.unwrap_or_default());
        if msgs.len() >= 3 {
            break;
        }
    }
    assert_eq!(msgs.len(), 3);
    let arn = format!("arn:aws:sqs:us-east-1:123456789012:{queue}");
    let records: Vec<_> = msgs
        .iter()
        .map(|m| from_sdk(m, &arn, &SourceOptions::default()).unwrap())
        .collect();
    let attrs: Vec<&str> = records
        .iter()
        .map(|r| r.pointer_attribute.as_ref().map_or("", |a| a.0))
        .collect();
    assert_eq!(
        attrs,
        [
            "ExtendedPayloadSize",
            "ExtendedPayloadSize",
            "SQSLargePayloadSize"
        ]
    );

    let tp = tp().await;
    let table = dedupe_table().await;
    let app = bridge(
        &tp,
        &table,
        Opts {
            delete_after_commit: true,
            ..Opts::default()
        },
    )
    .await;
    let ctx = BatchContext::with_budget("claims", Duration::from_secs(30));
    let inv = app.handle_records(&records, &ctx).await.unwrap();
    let RecordState::Quarantined { reason } = &inv.states[0] else {
        panic!("missing object quarantined: {:?}", inv.states[0]);
    };
    assert!(
        reason.contains(&format!("s3://{bucket}/gone/0001")) && reason.contains("not found"),
        "{reason}"
    );
    assert_eq!(
        inv.states[1..],
        [RecordState::Forwarded, RecordState::Forwarded]
    );
    assert!(inv.response.batch_item_failures.is_empty());
    let got = rows(&tp, "obj");
    let want: Vec<(String, i64)> = ["NEW", "OLD"]
        .iter()
        .flat_map(|s| (0..6000).map(move |i| (s.to_string(), i)))
        .collect();
    assert_eq!(got, want, "both payloads' rows, in message order");

    // Deleted after commit (TICKBRIDGE_CLAIM_CHECK_DELETE=after-commit).
    let left = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(left.key_count(), Some(0), "{:?}", left.contents());

    // Redelivered: the message keys make them duplicates; no fetch (the
    // objects are gone) and nothing twice.
    let again = app.handle_records(&records[1..], &ctx).await.unwrap();
    assert_eq!(
        again.states,
        [RecordState::Duplicate, RecordState::Duplicate]
    );
    assert_eq!(rows(&tp, "obj").len(), 12_000);
}

#[tokio::test]
async fn kinesis_pointers_resolve_to_their_objects_rows() {
    let s3c = s3().await;
    let b = bucket(&s3c).await;
    let payload: String = serde_json::to_string(
        &(0..50)
            .map(|i| serde_json::json!({"sym": "KIN", "price": 1.0, "size": i}))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    put(&s3c, &b, "k/1.json", payload.into_bytes()).await;
    let pointer = format!(
        r#"["com.amazon.sqs.javamessaging.MessageS3Pointer",{{"s3BucketName":"{b}","s3Key":"k/1.json"}}]"#
    );
    let arn = "arn:aws:kinesis:us-east-1:123456789012:stream/claims";
    let seq = "49590338271490256608559692538361571095921575989136588898";
    let event = serde_json::json!({"Records": [{
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "p", "sequenceNumber": seq,
            "data": base64::engine::general_purpose::STANDARD.encode(&pointer),
            "approximateArrivalTimestamp": 1_764_000_000.0},
        "eventSource": "aws:kinesis", "eventVersion": "1.0",
        "eventID": format!("shardId-000000000000:{seq}"), "eventName": "aws:kinesis:record",
        "awsRegion": "us-east-1", "eventSourceARN": arn}]});
    let tp = tp().await;
    let table = dedupe_table().await;
    let app = bridge(&tp, &table, Opts::default()).await;
    let ctx = BatchContext::with_budget("kin", Duration::from_secs(30));
    let inv = app
        .handle(event.to_string().as_bytes(), &ctx)
        .await
        .unwrap();
    assert_eq!(inv.states, [RecordState::Forwarded]);
    assert_eq!(
        rows(&tp, "obj").iter().map(|r| r.1).collect::<Vec<_>>(),
        (0..50).collect::<Vec<_>>()
    );
}
