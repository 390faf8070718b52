//! The bridge's event readers against `aws_lambda_events`' typed events:
//! for generated Lambda events (unicode, escapes of every kind, every
//! field, keys in any order, whitespace anywhere), the records the bridge
//! reads must be the records the typed event holds, made by the same
//! constructors the runner uses for SDK records.
//!
//! The one-pass Kinesis reader is checked on its own (it must take every
//! event without escapes, and either decline or agree on the rest) and
//! through `parse_event`, which falls back to the lenient reader.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use proptest::prelude::*;
use tickbridge::source::event::{parse_event, parse_kinesis_one_pass, SourceOptions};
use tickbridge::source::kinesis::{self, Data, KinesisParts};
use tickbridge::source::sqs::{self, SqsParts};
use tickbridge::source::Record;

/// How a string is written into the event text.
#[derive(Clone, Copy, Debug)]
enum Style {
    /// As serde_json writes it: only what JSON requires is escaped.
    Minimal,
    /// Every non-ASCII character as `\uXXXX` (surrogate pairs beyond the
    /// BMP), and `/` as `\/`.
    Escaped,
}

fn write_str(out: &mut String, s: &str, style: Style) {
    match style {
        Style::Minimal => out.push_str(&serde_json::to_string(s).unwrap()),
        Style::Escaped => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '/' => out.push_str("\\/"),
                    '\n' => out.push_str("\\n"),
                    c if (c as u32) < 0x20 || !c.is_ascii() => {
                        let mut units = [0u16; 2];
                        for u in c.encode_utf16(&mut units) {
                            out.push_str(&format!("\\u{:04x}", u));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
    }
}

/// Text of all kinds: ASCII, accents, CJK, emoji, quotes, backslashes,
/// control characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_-]{0,12}",
        "[a-zé日本株\u{1F600}\"\\\\/ \u{1}\n\t]{0,12}",
        any::<String>(),
    ]
}

#[derive(Clone, Debug)]
struct KinRec {
    seq: String,
    shard: String,
    partition_key: String,
    data: Vec<u8>,
    /// Arrival in ms, last digit not 0 (see `arrival_text`).
    arrival_ms: u64,
    region: String,
    extra: String,
    encrypted: bool,
}

fn kin_rec() -> impl Strategy<Value = KinRec> {
    (
        "[1-9][0-9]{0,55}",
        "shardId-[0-9]{12}",
        text(),
        prop::collection::vec(any::<u8>(), 0..120),
        (1u64..4_102_444_800_000).prop_map(|ms| if ms % 10 == 0 { ms + 1 } else { ms }),
        text(),
        text(),
        any::<bool>(),
    )
        .prop_map(
            |(seq, shard, partition_key, data, arrival_ms, region, extra, encrypted)| KinRec {
                seq,
                shard,
                partition_key,
                data,
                arrival_ms,
                region,
                extra,
                encrypted,
            },
        )
}

/// `approximateArrivalTimestamp` in seconds with three decimals. With
/// fewer, `aws_lambda_events` reads the fraction's digits as milliseconds
/// (`1.5` as 1 s 5 ms), so the generator keeps the last digit non-zero.
fn arrival_text(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Whitespace JSON allows between tokens.
fn ws(pick: u8) -> &'static str {
    ["", " ", "\n  ", "\t", "\r\n"][usize::from(pick) % 5]
}

fn kinesis_event(recs: &[KinRec], arn: &str, style: Style, order: &[usize], space: u8) -> String {
    let w = ws(space);
    let b64 = |d: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(d)
    };
    let mut out = format!("{{{w}\"Records\"{w}:{w}[");
    for (n, r) in recs.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(w);
        let mut kin = String::from("{");
        let mut kf: Vec<String> = Vec::new();
        let field = |name: &str, value: &str, style: Style| {
            let mut s = String::new();
            write_str(&mut s, name, Style::Minimal);
            s.push_str(w);
            s.push(':');
            s.push_str(w);
            write_str(&mut s, value, style);
            s
        };
        kf.push(field("kinesisSchemaVersion", "1.0", style));
        kf.push(field("partitionKey", &r.partition_key, style));
        kf.push(field("sequenceNumber", &r.seq, style));
        kf.push(field("data", &b64(&r.data), Style::Minimal));
        kf.push(format!(
            "\"approximateArrivalTimestamp\":{w}{}",
            arrival_text(r.arrival_ms)
        ));
        if r.encrypted {
            kf.push(field("encryptionType", "KMS", style));
        }
        rotate(&mut kf, order.first().copied().unwrap_or(0));
        kin.push_str(&kf.join(","));
        kin.push('}');
        let mut f: Vec<String> = vec![
            format!("\"kinesis\":{w}{kin}"),
            field("eventSource", "aws:kinesis", style),
            field("eventVersion", "1.0", style),
            field("eventID", &format!("{}:{}", r.shard, r.seq), style),
            field("eventName", "aws:kinesis:record", style),
            field("invokeIdentityArn", &r.extra, style),
            field("awsRegion", &r.region, style),
            field("eventSourceARN", arn, style),
        ];
        rotate(&mut f, order.get(1).copied().unwrap_or(0));
        out.push('{');
        out.push_str(&f.join(&format!(",{w}")));
        out.push('}');
    }
    out.push_str(&format!("{w}]{w}}}{w}"));
    out
}

fn rotate(v: &mut [String], by: usize) {
    if !v.is_empty() {
        let by = by % v.len();
        v.rotate_left(by);
    }
}

/// The records `aws_lambda_events`' typed event holds, through the
/// constructor the runner uses for SDK records.
fn kinesis_typed(event: &str, opts: &SourceOptions) -> Vec<Record> {
    let typed: KinesisEvent = serde_json::from_str(event).expect("aws_lambda_events reads it");
    let mut out = Vec::new();
    for r in &typed.records {
        let id = r.event_id.as_deref().unwrap_or_default();
        kinesis::records(
            KinesisParts {
                stream_arn: r.event_source_arn.as_deref().unwrap_or_default(),
                shard_id: id.split_once(':').map_or("", |(s, _)| s),
                sequence_number: &r.kinesis.sequence_number,
                partition_key: &r.kinesis.partition_key,
                data: Data::Bytes(&r.kinesis.data.0),
                arrival_ms: r.kinesis.approximate_arrival_timestamp.0.timestamp_millis(),
            },
            opts,
            &mut out,
        )
        .expect("generated records are well formed");
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn kinesis_events_read_as_aws_lambda_events_reads_them(
        mut recs in prop::collection::vec(kin_rec(), 1..6),
        alike in any::<bool>(),
        arn_tail in text(),
        escaped in any::<bool>(),
        order in prop::collection::vec(0usize..9, 2),
        space in any::<u8>(),
        by_key in any::<bool>(),
    ) {
        let arn = format!("arn:aws:kinesis:us-east-1:123456789012:stream/{arn_tail}");
        let style = if escaped { Style::Escaped } else { Style::Minimal };
        if alike {
            // Records that differ only where Lambda's do (sequence number,
            // partition key, data, arrival time), as the one-pass reader's
            // layouts read them.
            let first = recs[0].clone();
            for r in &mut recs {
                r.shard.clone_from(&first.shard);
                r.region.clone_from(&first.region);
                r.extra.clone_from(&first.extra);
                r.encrypted = first.encrypted;
            }
        }
        let event = kinesis_event(&recs, &arn, style, &order, space);
        let opts = SourceOptions { lanes_by_partition_key: by_key, ..SourceOptions::default() };
        let want = kinesis_typed(&event, &opts);
        prop_assert_eq!(want.len(), recs.len());
        let got = parse_event(event.as_bytes(), &opts).expect("parses");
        prop_assert_eq!(&got, &want);
        // The one-pass reader takes every event whose strings need no
        // escape, and agrees whenever it takes one.
        let needs_escape = |s: &str| serde_json::to_string(s).unwrap().len() != s.len() + 2;
        let plain = !escaped
            && !needs_escape(&arn)
            && recs.iter().all(|r| {
                !needs_escape(&r.partition_key)
            });
        match parse_kinesis_one_pass(event.as_bytes(), &opts) {
            Some(one_pass) => prop_assert_eq!(&one_pass.expect("parses"), &want),
            None => prop_assert!(!plain, "the one-pass reader declined a plain event: {}", event),
        }
    }

    #[test]
    fn sqs_events_read_as_aws_lambda_events_reads_them(
        msgs in prop::collection::vec((text(), text(), "[a-f0-9-]{1,36}", any::<bool>()), 1..6),
        queue in text(),
        escaped in any::<bool>(),
    ) {
        let style = if escaped { Style::Escaped } else { Style::Minimal };
        let arn = format!("arn:aws:sqs:us-east-1:123456789012:{queue}");
        let mut event = String::from("{\"Records\":[");
        for (n, (body, group, id, fifo)) in msgs.iter().enumerate() {
            if n > 0 {
                event.push(',');
            }
            let s = |k: &str, v: &str| {
                let mut t = String::new();
                write_str(&mut t, k, Style::Minimal);
                t.push(':');
                write_str(&mut t, v, style);
                t
            };
            let mut attrs = vec![
                s("SentTimestamp", &format!("{}", 1_764_000_000_000u64 + n as u64)),
                s("ApproximateReceiveCount", "1"),
            ];
            if *fifo {
                attrs.push(s("MessageGroupId", group));
                attrs.push(s("SequenceNumber", &format!("{:020}", 18_849_496_460_467_696_128u128 + n as u128)));
            }
            let fields = [
                s("messageId", id),
                s("receiptHandle", "rh"),
                s("body", body),
                format!("\"attributes\":{{{}}}", attrs.join(",")),
                "\"messageAttributes\":{}".to_string(),
                s("md5OfBody", ""),
                s("eventSource", "aws:sqs"),
                s("eventSourceARN", &arn),
                s("awsRegion", "us-east-1"),
            ];
            event.push('{');
            event.push_str(&fields.join(","));
            event.push('}');
        }
        event.push_str("]}");
        let opts = SourceOptions::default();
        let typed: SqsEvent = serde_json::from_str(&event).expect("aws_lambda_events reads it");
        let want: Vec<Record> = typed
            .records
            .iter()
            .map(|m| {
                let attr = |k: &str| m.attributes.get(k).map(String::as_str);
                sqs::record(
                    SqsParts {
                        queue_arn: m.event_source_arn.as_deref().unwrap_or_default(),
                        message_id: m.message_id.as_deref().unwrap_or_default(),
                        body: m.body.as_deref().unwrap_or_default(),
                        group_id: attr("MessageGroupId"),
                        sequence_number: attr("SequenceNumber"),
                        sent_timestamp: attr("SentTimestamp"),
                        pointer_attribute: None,
                    },
                    &opts,
                )
                .expect("well formed")
            })
            .collect();
        let got = parse_event(event.as_bytes(), &opts).expect("parses");
        prop_assert_eq!(got, want);
    }
}

/// Bytes the one-pass reader must not take, or must read as serde_json
/// would: a repeated field, invalid JSON in a skipped field, a lone
/// surrogate, nesting, a null where a string belongs.
#[test]
fn unusual_events_get_the_lenient_readers_answer() {
    let rec = |extra: &str, seq: &str| {
        format!(
            r#"{{"kinesis":{{"partitionKey":"k","sequenceNumber":"{seq}","data":"e30=","approximateArrivalTimestamp":1.5{extra}}},"eventSource":"aws:kinesis","eventID":"shardId-000000000001:{seq}","eventSourceARN":"arn:aws:kinesis:us-east-1:1:stream/s"}}"#
        )
    };
    let opts = SourceOptions::default();
    let cases = [
        rec(r#","partitionKey":"again""#, "1"),
        rec(r#","x":[1,2,{"y":"\ud800"}]"#, "2"),
        rec(r#","x":01"#, "3"),
        rec(r#","x":"tab	inside""#, "4"),
        rec(
            r#","x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"#,
            "5",
        ),
        rec(r#","x":null,"y":true,"z":-0.5e-3"#, "6"),
        rec("", "7").replace(r#""k""#, "null"),
        rec("", "8").replace("e30=", "!!not base64"),
        rec("", "9").replace("e30=", "e30\\u003d"),
        rec("", "x10"),
    ];
    for case in cases {
        let event = format!(r#"{{"Records":[{case}]}}"#);
        let lenient = parse_event(event.as_bytes(), &opts);
        if let Some(one_pass) = parse_kinesis_one_pass(event.as_bytes(), &opts) {
            assert_eq!(one_pass, lenient, "{event}");
        }
        // What serde_json and aws_lambda_events make of it, where they
        // read it at all.
        if let Ok(typed) = serde_json::from_str::<KinesisEvent>(&event) {
            if let Ok(records) = &lenient {
                assert_eq!(records.len(), typed.records.len(), "{event}");
            }
        }
    }
}
