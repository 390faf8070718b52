//! S3 building blocks against a real moto server over HTTP: claim-check
//! pointers written by the real Amazon SQS Extended Client (Python) and
//! resolved; missing and too-large objects; objects streamed as lines,
//! plain and gzip, with bounded memory; CSV lines through a schema with bad
//! lines reported by number; resuming after a checkpoint; notifications
//! that S3 (moto) sends to SQS naming the objects.

mod common;

use std::io::Write;

use aws_sdk_s3::primitives::ByteStream;
use common::moto::{unique_name, MotoServer};
use tickbridge::s3::lines::Item;
use tickbridge::s3::pointer::{self, sqs_pointer, FetchOptions};
use tickbridge::s3::{
    event, open_lines, Cursor, ErrorKind, ObjectLines, ObjectOptions, ObjectRef, Pointer,
};
use tickbridge::schema::{BatchBuilder, Catalog, Schema};

async fn clients() -> (aws_sdk_s3::Client, aws_sdk_sqs::Client) {
    let config = MotoServer::shared().sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    (s3, aws_sdk_sqs::Client::new(&config))
}

async fn bucket(s3: &aws_sdk_s3::Client) -> String {
    let name = unique_name("tb-s3").to_lowercase();
    s3.create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket");
    name
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) -> String {
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .expect("put object");
    out.e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn extended_client_pointers_resolve_with_both_attribute_names() {
    let (s3, sqs) = clients().await;
    let queue = unique_name("claims");
    let url = sqs
        .create_queue()
        .queue_name(&queue)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let bucket = unique_name("claims").to_lowercase();
    let out = common::run_python(
        "s3_extended_producer.py",
        &[&MotoServer::shared().endpoint(), &url, &bucket],
        None,
    );
    let sent: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(sent.len(), 2);

    let mut got = Vec::new();
    for _ in 0..10 {
        let r = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        got.extend(r.messages.unwrap_or_default());
        if got.len() >= 2 {
            break;
        }
    }
    assert_eq!(got.len(), 2, "both messages arrive");
    for m in &got {
        let body = m.body().unwrap();
        let attrs = m.message_attributes().cloned().unwrap_or_default();
        let p = sqs_pointer(
            body.as_bytes(),
            attrs.iter().map(|(k, v)| (k.as_str(), v.string_value())),
        )
        .expect("well-formed")
        .expect("a pointer");
        assert_eq!(p.object.bucket, bucket);
        let want = sent
            .iter()
            .find(|s| s["legacy"] == p.legacy_class)
            .and_then(|s| s["payload"].as_str())
            .expect("the payload sent with this class");
        let attr = if p.legacy_class {
            "SQSLargePayloadSize"
        } else {
            "ExtendedPayloadSize"
        };
        assert!(attrs.contains_key(attr), "{attr} in {:?}", attrs.keys());
        assert_eq!(p.declared_size, Some(want.len() as u64));
        let bytes = pointer::fetch_object(&s3, &p, FetchOptions::default())
            .await
            .unwrap();
        assert_eq!(bytes, want.as_bytes());
        // Body without the attribute: an ordinary message, as the clients read it.
        assert_eq!(sqs_pointer(body.as_bytes(), []), Ok(None));
    }
    let legacy: Vec<bool> = got
        .iter()
        .map(|m| {
            m.body()
                .unwrap()
                .contains("com.amazon.sqs.javamessaging.MessageS3Pointer")
        })
        .collect();
    assert!(legacy.contains(&true) && legacy.contains(&false));

    // The payload is a record like any other: 6000 rows of one table.
    let schema: Schema = serde_json::from_str(
        r#"{"table":"claims","route":{"default":true},"columns":[
            {"name":"sym","type":"symbol"},{"name":"price","type":"float"},{"name":"size","type":"long"}]}"#,
    )
    .unwrap();
    let p = sqs_pointer(
        got[0].body().unwrap().as_bytes(),
        [("ExtendedPayloadSize", None)],
    )
    .unwrap()
    .unwrap();
    let bytes = pointer::fetch_object(&s3, &p, FetchOptions::default())
        .await
        .unwrap();
    let catalog =
        Catalog::from_schemas(vec![schema])
            .unwrap()
            .with_limits(tickbridge::schema::Limits {
                max_record_bytes: bytes.len(),
                max_depth: 64,
            });
    let mut b = BatchBuilder::new();
    let rows = catalog.decode_record(&bytes, "claims", &mut b).unwrap();
    assert_eq!(rows.rows, 6000);

    // Delete after commit (a setting): gone, and a second delete is fine.
    pointer::delete_object(&s3, &p.object).await.unwrap();
    let e = pointer::fetch_object(&s3, &p, FetchOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    pointer::delete_object(&s3, &p.object).await.unwrap();
}

#[tokio::test]
async fn missing_and_too_large_objects_are_permanent() {
    let (s3, _) = clients().await;
    let b = bucket(&s3).await;
    let missing = Pointer {
        object: ObjectRef::new(&b, "no/such key.json"),
        declared_size: None,
        legacy_class: false,
    };
    let e = pointer::fetch_object(&s3, &missing, FetchOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(!e.is_transient());
    let msg = e.to_string();
    assert!(msg.contains(&format!("s3://{b}/no/such key.json")), "{msg}");
    assert!(msg.contains("permanent"), "{msg}");

    let no_bucket = Pointer {
        object: ObjectRef::new(unique_name("nobucket").to_lowercase(), "k"),
        ..missing.clone()
    };
    let e = pointer::fetch_object(&s3, &no_bucket, FetchOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");

    // 5 MB object, 1 MB bound: refused on Content-Length, naming the size.
    put(&s3, &b, "big.json", vec![b' '; 5 << 20]).await;
    let big = Pointer {
        object: ObjectRef::new(&b, "big.json"),
        ..missing.clone()
    };
    let opts = FetchOptions { max_bytes: 1 << 20 };
    let e = pointer::fetch_object(&s3, &big, opts).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge);
    assert!(e.to_string().contains(&(5u64 << 20).to_string()), "{e}");
    // A declared size over the bound is refused before any request: the
    // object need not even exist.
    let declared = Pointer {
        declared_size: Some(2 << 20),
        ..missing.clone()
    };
    let e = pointer::fetch_object(&s3, &declared, opts)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge);

    // Unreachable S3: transient.
    let dead = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(
            &tickbridge::aws::local_config(&format!("http://127.0.0.1:{}", common::free_port()))
                .await,
        )
        .force_path_style(true)
        .build(),
    );
    let e = pointer::fetch_object(&dead, &big, opts).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
}

/// `n` CSV lines after a header; every `bad_every`th line has a bad price.
fn csv_text(n: usize, bad_every: usize) -> Vec<u8> {
    let mut s = String::from("sym,price,size\n");
    for i in 1..=n {
        if bad_every > 0 && i % bad_every == 0 {
            s.push_str(&format!("S{},not-a-price,{i}\n", i % 7));
        } else {
            s.push_str(&format!("\"S{}\",{}.25,{i}\n", i % 7, i));
        }
    }
    s.into_bytes()
}

fn csv_catalog() -> Catalog {
    let s: Schema = serde_json::from_str(
        r#"{"table":"obj","route":{"default":true},"csv":{},
            "columns":[{"name":"time","type":"timespan","stamp":"tickerplant"},
              {"name":"sym","type":"symbol"},{"name":"px","type":"float","csv":"price"},
              {"name":"size","type":"long"}]}"#,
    )
    .unwrap();
    Catalog::from_schemas(vec![s]).unwrap()
}

struct Read {
    rows: usize,
    sizes: Vec<i64>,
    bad: Vec<(u64, Option<String>)>,
    max_buffered: usize,
    cursor: Cursor,
}

/// Reads up to `limit` data lines through the CSV schema.
async fn read_csv(lines: &mut ObjectLines, catalog: &Catalog, limit: usize) -> Read {
    let t = catalog.csv_table("any").unwrap();
    let mut header = None;
    let mut b = BatchBuilder::new();
    let mut read = Read {
        rows: 0,
        sizes: Vec::new(),
        bad: Vec::new(),
        max_buffered: 0,
        cursor: Cursor::START,
    };
    let mut seen = 0;
    while seen < limit {
        let Some(item) = lines.next().await.unwrap() else {
            break;
        };
        let Item::Line(l) = item else {
            read.bad.push((item.number(), None));
            continue;
        };
        let text = std::str::from_utf8(l.text).unwrap();
        if l.number == 1 {
            header = Some(catalog.csv_header(t, text, 1).unwrap());
            continue;
        }
        seen += 1;
        let h = header.as_ref().expect("header read first");
        match catalog.decode_csv_line(h, text, l.number, &mut b) {
            Ok(r) => read.rows += r.rows,
            Err(e) => read.bad.push((e.line(), e.column().map(str::to_string))),
        }
        read.max_buffered = read.max_buffered.max(lines.buffered());
    }
    read.cursor = lines.cursor();
    if let Some(k) = b.run_to_k(0, ".u.upd") {
        let s = format!("{k:?}");
        if let Some(i) = s.find("Long([") {
            let rest = &s[i + 6..];
            read.sizes = rest[..rest.find(']').unwrap()]
                .split(", ")
                .filter(|x| !x.is_empty())
                .map(|x| x.parse().unwrap())
                .collect();
        }
    }
    read
}

#[tokio::test]
async fn plain_and_gzip_objects_stream_with_bounded_memory() {
    let (s3, _) = clients().await;
    let b = bucket(&s3).await;
    let n = 250_000; // about 5 MB
    let text = csv_text(n, 10_000);
    assert!(text.len() > 4 << 20, "{} bytes", text.len());
    put(&s3, &b, "day/plain.csv", text.clone()).await;
    put(&s3, &b, "day/zipped.csv.gz", gzip(&text)).await;
    let catalog = csv_catalog();
    let opts = ObjectOptions { max_line: 4096 };
    for key in ["day/plain.csv", "day/zipped.csv.gz"] {
        let obj = ObjectRef::new(&b, key);
        let mut lines = open_lines(&s3, &obj, Cursor::START, opts).await.unwrap();
        let r = read_csv(&mut lines, &catalog, usize::MAX).await;
        let bad: Vec<u64> = (1..=n / 10_000).map(|k| (k * 10_000 + 1) as u64).collect();
        assert_eq!(
            r.bad.iter().map(|b| b.0).collect::<Vec<_>>(),
            bad,
            "{key}: bad lines by number"
        );
        assert!(r.bad.iter().all(|b| b.1.as_deref() == Some("px")), "{key}");
        assert_eq!(r.rows, n - bad.len(), "{key}");
        assert_eq!(r.sizes.len(), r.rows);
        assert!(r.sizes.windows(2).all(|w| w[0] < w[1]), "{key}: in order");
        // Bounded by the longest line and one fill, not by the object.
        assert!(
            r.max_buffered <= 256 << 10,
            "{key}: held {}",
            r.max_buffered
        );
        assert_eq!(r.cursor.line, n as u64 + 1);
    }
}

#[tokio::test]
async fn resume_after_a_checkpoint_skips_confirmed_lines() {
    let (s3, _) = clients().await;
    let b = bucket(&s3).await;
    let n = 20_000;
    let text = csv_text(n, 0);
    let plain_etag = put(&s3, &b, "r/plain.csv", text.clone()).await;
    put(&s3, &b, "r/zipped.csv.gz", gzip(&text)).await;
    let catalog = csv_catalog();
    let opts = ObjectOptions::default();
    for key in ["r/plain.csv", "r/zipped.csv.gz"] {
        let obj = ObjectRef::new(&b, key);
        let mut lines = open_lines(&s3, &obj, Cursor::START, opts).await.unwrap();
        let first = read_csv(&mut lines, &catalog, 7_000).await;
        drop(lines); // the "deadline": stop mid-object
        let saved = first.cursor.checkpoint();
        let cursor = Cursor::from_checkpoint(&saved).unwrap();
        assert_eq!(cursor.line, 7_001);
        assert_eq!(cursor.offset.is_some(), key.ends_with(".csv"), "{key}");

        let mut lines = open_lines(&s3, &obj, cursor, opts).await.unwrap();
        // The rest has no header line: map it from the schema's own header.
        let t = catalog.csv_table("x").unwrap();
        let h = catalog.csv_header(t, "sym,price,size", 1).unwrap();
        let mut bb = BatchBuilder::new();
        let mut next_number = None;
        let mut rows = 0;
        while let Some(item) = lines.next().await.unwrap() {
            let Item::Line(l) = item else {
                panic!("no long lines")
            };
            next_number.get_or_insert(l.number);
            catalog
                .decode_csv_line(&h, std::str::from_utf8(l.text).unwrap(), l.number, &mut bb)
                .unwrap();
            rows += 1;
        }
        assert_eq!(next_number, Some(7_002), "{key}");
        assert_eq!(first.rows + rows, n, "{key}: none lost, none twice");
        let end = lines.cursor();
        assert_eq!(end.line, n as u64 + 1);

        // Resuming at the very end reads nothing (plain: a range past the end).
        let mut done = open_lines(&s3, &obj, end, opts).await.unwrap();
        assert!(done.next().await.unwrap().is_none(), "{key}");
    }

    // Pinned to the ETag that named it: an overwritten object is refused.
    let mut pinned = ObjectRef::new(&b, "r/plain.csv");
    pinned.etag = Some(plain_etag);
    assert!(open_lines(&s3, &pinned, Cursor::START, opts).await.is_ok());
    put(&s3, &b, "r/plain.csv", csv_text(3, 0)).await;
    let e = open_lines(&s3, &pinned, Cursor::START, opts)
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::Changed, "{e}");
    assert!(!e.is_transient());
}

#[tokio::test]
async fn notifications_through_sqs_name_the_objects() {
    let (s3, sqs) = clients().await;
    let b = bucket(&s3).await;
    let url = sqs
        .create_queue()
        .queue_name(unique_name("notes"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .cloned()
        .unwrap();
    use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
    s3.put_bucket_notification_configuration()
        .bucket(&b)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(arn)
                        .events(Event::S3ObjectCreated)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let key = "in/ticks day+1.csv";
    let etag = put(&s3, &b, key, csv_text(5, 0)).await;

    let mut objects = Vec::new();
    for _ in 0..10 {
        let r = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for m in r.messages.unwrap_or_default() {
            let n = event::parse_notification(m.body().unwrap().as_bytes()).unwrap();
            objects.extend(n.created().cloned());
        }
        if !objects.is_empty() {
            break;
        }
    }
    assert_eq!(objects.len(), 1, "one ObjectCreated notification");
    let o = &objects[0].object;
    assert_eq!((o.bucket.as_str(), o.key.as_str()), (b.as_str(), key));
    assert_eq!(o.etag.as_deref(), Some(etag.as_str()));
    let mut lines = open_lines(&s3, o, Cursor::START, ObjectOptions::default())
        .await
        .unwrap();
    let r = read_csv(&mut lines, &csv_catalog(), usize::MAX).await;
    assert_eq!(r.rows, 5);
}
