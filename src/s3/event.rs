//! S3 event notifications: which objects to ingest.
//!
//! Shapes read (each may arrive as a Lambda event or as an SQS message
//! body, standard or FIFO):
//! - S3's own notification, `{"Records":[{"eventSource":"aws:s3",
//!   "eventName":"ObjectCreated:Put","s3":{"bucket":{"name"},"object":
//!   {"key","size","eTag","versionId","sequencer"}}}]}`. Keys are URL-encoded
//!   with `+` for a space.
//! - The same, inside an SNS envelope delivered to SQS
//!   (`{"Type":"Notification","Message":"<the JSON above>"}`).
//! - EventBridge, `{"source":"aws.s3","detail-type":"Object Created",
//!   "detail":{"bucket":{"name"},"object":{"key","size","etag","version-id",
//!   "sequencer"}}}`. Keys are not encoded.
//! - `{"Event":"s3:TestEvent",…}`, which S3 sends when a notification is
//!   configured: nothing to do.

use serde::Deserialize;

use super::ObjectRef;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `ObjectCreated:*` or EventBridge `Object Created`: ingest it.
    Created,
    /// Anything else (removals, restores…), with its name.
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectEvent {
    pub kind: EventKind,
    pub object: ObjectRef,
    pub size: Option<u64>,
    /// S3's per-key ordering token (hex; longer is later when one is a
    /// prefix of the other: compare after right-padding with zeros).
    pub sequencer: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notification {
    /// `s3:TestEvent`: ignore.
    Test,
    Objects(Vec<ObjectEvent>),
}

impl Notification {
    /// The objects created, in notification order.
    pub fn created(&self) -> impl Iterator<Item = &ObjectEvent> {
        let events: &[ObjectEvent] = match self {
            Notification::Objects(v) => v,
            Notification::Test => &[],
        };
        events.iter().filter(|e| e.kind == EventKind::Created)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an S3 event notification: {0}")]
pub struct EventError(pub String);

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Records")]
    records: Option<Vec<S3Record>>,
    #[serde(rename = "Event")]
    event: Option<String>,
    #[serde(rename = "Type")]
    sns_type: Option<String>,
    #[serde(rename = "Message")]
    sns_message: Option<String>,
    source: Option<String>,
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
    detail: Option<Detail>,
}

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventSource")]
    event_source: Option<String>,
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: Option<S3Entity>,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: Bucket,
    object: S3Object,
}

#[derive(Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Deserialize)]
struct S3Object {
    key: String,
    size: Option<u64>,
    #[serde(rename = "eTag")]
    etag: Option<String>,
    #[serde(rename = "versionId")]
    version_id: Option<String>,
    sequencer: Option<String>,
}

#[derive(Deserialize)]
struct Detail {
    bucket: Bucket,
    object: EbObject,
}

#[derive(Deserialize)]
struct EbObject {
    key: String,
    size: Option<u64>,
    etag: Option<String>,
    #[serde(rename = "version-id")]
    version_id: Option<String>,
    sequencer: Option<String>,
}

/// Reads one notification (a Lambda event or an SQS message body).
pub fn parse_notification(json: &[u8]) -> Result<Notification, EventError> {
    parse_depth(json, 0)
}

fn parse_depth(json: &[u8], depth: u8) -> Result<Notification, EventError> {
    let env: Envelope =
        serde_json::from_slice(json).map_err(|e| EventError(format!("bad JSON: {e}")))?;
    if env.event.as_deref() == Some("s3:TestEvent") {
        return Ok(Notification::Test);
    }
    if let Some(records) = env.records {
        let mut out = Vec::with_capacity(records.len());
        for (i, r) in records.into_iter().enumerate() {
            if r.event_source.as_deref() != Some("aws:s3") {
                return Err(EventError(format!(
                    "record {i}: eventSource {:?}, not aws:s3",
                    r.event_source
                )));
            }
            let s3 =
                r.s3.ok_or_else(|| EventError(format!("record {i}: no s3 entity")))?;
            let key = url_decode(&s3.object.key)
                .map_err(|m| EventError(format!("record {i}: key {:?}: {m}", s3.object.key)))?;
            out.push(ObjectEvent {
                kind: if r.event_name.starts_with("ObjectCreated:") {
                    EventKind::Created
                } else {
                    EventKind::Other(r.event_name)
                },
                object: ObjectRef {
                    bucket: s3.bucket.name,
                    key,
                    version_id: s3.object.version_id.filter(|v| !v.is_empty()),
                    etag: s3.object.etag.map(unquote).filter(|e| !e.is_empty()),
                },
                size: s3.object.size,
                sequencer: s3.object.sequencer,
            });
        }
        return Ok(Notification::Objects(out));
    }
    if env.source.as_deref() == Some("aws.s3") {
        let kind = match env.detail_type {
            Some(t) if t == "Object Created" => EventKind::Created,
            Some(t) => EventKind::Other(t),
            None => return Err(EventError("EventBridge event without detail-type".into())),
        };
        let d = env
            .detail
            .ok_or_else(|| EventError("EventBridge event without detail".into()))?;
        return Ok(Notification::Objects(vec![ObjectEvent {
            kind,
            object: ObjectRef {
                bucket: d.bucket.name,
                key: d.object.key,
                version_id: d.object.version_id.filter(|v| !v.is_empty()),
                etag: d.object.etag.map(unquote).filter(|e| !e.is_empty()),
            },
            size: d.object.size,
            sequencer: d.object.sequencer,
        }]));
    }
    if let (Some("Notification"), Some(msg), 0) = (env.sns_type.as_deref(), &env.sns_message, depth)
    {
        return parse_depth(msg.as_bytes(), 1);
    }
    Err(EventError(
        "no Records, EventBridge aws.s3 detail or s3:TestEvent".into(),
    ))
}

fn unquote(s: String) -> String {
    match s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(t) => t.to_string(),
        None => s,
    }
}

/// S3's key encoding in notifications: form encoding (`+` is a space,
/// `%XX` a byte), the bytes UTF-8.
pub fn url_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent escape at byte {i}"))?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "decodes to bytes that are not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIRECT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
      "eventTime":"2024-01-02T03:04:05.000Z","eventName":"ObjectCreated:Put",
      "s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"ticks","arn":"arn:aws:s3:::ticks"},
      "object":{"key":"2024/01/trades+day%C3%A9%2B1.csv.gz","size":1024,"eTag":"0123abcd","versionId":"v1","sequencer":"0055AED6DCD90281E5"}}},
      {"eventSource":"aws:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"ticks"},"object":{"key":"old.csv","sequencer":"0055AED6DCD90281E6"}}}]}"#;

    #[test]
    fn direct_event_decodes_keys() {
        let n = parse_notification(DIRECT.as_bytes()).unwrap();
        let created: Vec<_> = n.created().collect();
        assert_eq!(created.len(), 1);
        let e = created[0];
        assert_eq!(e.object.bucket, "ticks");
        assert_eq!(e.object.key, "2024/01/trades dayé+1.csv.gz");
        assert_eq!(e.object.version_id.as_deref(), Some("v1"));
        assert_eq!(e.object.etag.as_deref(), Some("0123abcd"));
        assert_eq!(e.size, Some(1024));
        let Notification::Objects(all) = &n else {
            panic!("objects")
        };
        assert_eq!(all[1].kind, EventKind::Other("ObjectRemoved:Delete".into()));
        assert_eq!(all[1].object.lane(), "obj#ticks/old.csv#");
        assert_eq!(e.object.lane(), "obj#ticks/2024/01/trades dayé+1.csv.gz#v1");
    }

    #[test]
    fn sns_wrapped_and_test_event() {
        let sns = serde_json::json!({"Type":"Notification","Message": DIRECT}).to_string();
        assert_eq!(
            parse_notification(sns.as_bytes()).unwrap(),
            parse_notification(DIRECT.as_bytes()).unwrap()
        );
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-01-01T00:00:00Z","Bucket":"ticks","RequestId":"r","HostId":"h"}"#;
        assert_eq!(
            parse_notification(test.as_bytes()).unwrap(),
            Notification::Test
        );
        assert_eq!(
            parse_notification(test.as_bytes())
                .unwrap()
                .created()
                .count(),
            0
        );
    }

    #[test]
    fn eventbridge_keys_are_plain() {
        let eb = r#"{"version":"0","id":"1","detail-type":"Object Created","source":"aws.s3","account":"1",
          "time":"2024-01-02T03:04:05Z","region":"us-east-1","resources":["arn:aws:s3:::ticks"],
          "detail":{"version":"0","bucket":{"name":"ticks"},"object":{"key":"a b+c%41.csv","size":5,"etag":"\"e1\"","version-id":"v9","sequencer":"617F"},
          "request-id":"r","requester":"1","reason":"PutObject"}}"#;
        let n = parse_notification(eb.as_bytes()).unwrap();
        let e = n.created().next().unwrap();
        assert_eq!(e.object.key, "a b+c%41.csv");
        assert_eq!(e.object.etag.as_deref(), Some("e1"));
        assert_eq!(e.object.version_id.as_deref(), Some("v9"));
        let deleted = eb.replace("Object Created", "Object Deleted");
        assert_eq!(
            parse_notification(deleted.as_bytes())
                .unwrap()
                .created()
                .count(),
            0
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let kin = r#"{"Records":[{"eventSource":"aws:kinesis","kinesis":{}}]}"#;
        assert!(parse_notification(kin.as_bytes())
            .unwrap_err()
            .0
            .contains("aws:kinesis"));
        assert!(parse_notification(b"{}").is_err());
        assert!(parse_notification(b"nope")
            .unwrap_err()
            .0
            .contains("bad JSON"));
        assert!(url_decode("a%4").is_err());
        assert!(url_decode("%FF").is_err());
        assert_eq!(url_decode("%2Fx+y").unwrap(), "/x y");
    }
}
