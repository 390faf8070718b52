//! SQS messages, from a Lambda event and from `ReceiveMessage`, through one
//! constructor ([`record`]).
//!
//! A message's dedupe key is `msg#<id>`, the id the bridge first saw it
//! under. Replay of a FIFO dead-letter queue passes the original id that
//! SQS put in `MessageDeduplicationId` (see `replay::sqs`); everything else
//! uses the message id.

use base64::Engine;

use super::{Record, SourceKind, SourceOptions, SourceRecordError};

/// The fields of an SQS message the bridge uses, borrowed from wherever
/// they were read.
#[derive(Clone, Copy, Debug)]
pub struct SqsParts<'a> {
    pub queue_arn: &'a str,
    /// The id the message is keyed and answered by.
    pub message_id: &'a str,
    pub body: &'a str,
    /// `MessageGroupId` (FIFO queues).
    pub group_id: Option<&'a str>,
    /// `SequenceNumber` (FIFO queues).
    pub sequence_number: Option<&'a str>,
    /// `SentTimestamp`, ms since the Unix epoch as text.
    pub sent_timestamp: Option<&'a str>,
    /// The claim-check size attribute and its string value, if present
    /// (see [`pointer_attribute`]).
    pub pointer_attribute: Option<(&'static str, Option<&'a str>)>,
}

/// The claim-check size attribute among a message's attributes:
/// `ExtendedPayloadSize`, else the legacy `SQSLargePayloadSize`, with its
/// string value. `lookup` answers whether the message has the attribute
/// (outer `Option`) and its string value (inner).
pub fn pointer_attribute<'a>(
    lookup: impl Fn(&str) -> Option<Option<&'a str>>,
) -> Option<(&'static str, Option<&'a str>)> {
    use crate::s3::pointer::{LEGACY_SIZE_ATTRIBUTE, SIZE_ATTRIBUTE};
    [SIZE_ATTRIBUTE, LEGACY_SIZE_ATTRIBUTE]
        .into_iter()
        .find_map(|name| lookup(name).map(|value| (name, value)))
}

impl<'a> SqsParts<'a> {
    /// A message `ReceiveMessage` returned from the queue `queue_arn`
    /// (received with its system attributes).
    pub fn from_message(m: &'a aws_sdk_sqs::types::Message, queue_arn: &'a str) -> Self {
        use aws_sdk_sqs::types::MessageSystemAttributeName as A;
        let attr = |a: A| m.attributes().and_then(|x| x.get(&a)).map(String::as_str);
        SqsParts {
            queue_arn,
            message_id: m.message_id().unwrap_or_default(),
            body: m.body().unwrap_or_default(),
            group_id: attr(A::MessageGroupId),
            sequence_number: attr(A::SequenceNumber),
            sent_timestamp: attr(A::SentTimestamp),
            pointer_attribute: pointer_attribute(|name| {
                m.message_attributes()
                    .and_then(|a| a.get(name))
                    .map(|v| v.string_value())
            }),
        }
    }
}

/// The one way an SQS `Record` is made.
pub fn record(p: SqsParts<'_>, opts: &SourceOptions) -> Result<Record, SourceRecordError> {
    let id = p.message_id;
    if id.is_empty() {
        return Err(SourceRecordError::NoMessageId);
    }
    // A standard queue has no groups and no order: each message is its own
    // lane, so one failure holds back nothing else.
    let lane = match p.group_id {
        Some(group) => format!("{}/{group}", p.queue_arn),
        None => format!("{}/{id}", p.queue_arn),
    };
    let (payload, defect) = if opts.sqs_body_base64 {
        match base64::engine::general_purpose::STANDARD.decode(p.body.trim()) {
            Ok(bytes) => (bytes, None),
            Err(e) => (
                p.body.as_bytes().to_vec(),
                Some(format!("body is not valid base64: {e}")),
            ),
        }
    } else {
        (p.body.as_bytes().to_vec(), None)
    };
    Ok(Record {
        kind: SourceKind::SqsFifo,
        message_key: Some(format!("msg#{id}")),
        lane: lane.into(),
        position: p.sequence_number.unwrap_or_default().into(),
        failure_id: id.into(),
        source_arn: p.queue_arn.into(),
        payload,
        arrival_ms: p.sent_timestamp.and_then(|t| t.parse().ok()).unwrap_or(0),
        defect,
        pointer_attribute: p
            .pointer_attribute
            .map(|(name, value)| Box::new((name, value.map(str::to_string)))),
        sub: None,
        kpl_note: None,
    })
}

/// A message `ReceiveMessage` returned, keyed by its own id.
pub fn from_sdk(
    m: &aws_sdk_sqs::types::Message,
    queue_arn: &str,
    opts: &SourceOptions,
) -> Result<Record, SourceRecordError> {
    record(SqsParts::from_message(m, queue_arn), opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::event::parse_event;
    use aws_sdk_sqs::types::{Message, MessageSystemAttributeName as A};

    const ARN: &str = "arn:aws:sqs:us-east-1:000000000000:q.fifo";

    fn message(id: &str, body: &str, group: Option<&str>) -> Message {
        let mut b = Message::builder()
            .message_id(id)
            .receipt_handle("rh")
            .body(body)
            .attributes(A::SequenceNumber, "18849496460467696128")
            .attributes(A::SentTimestamp, "1764000000123")
            .attributes(A::ApproximateReceiveCount, "2");
        if let Some(g) = group {
            b = b.attributes(A::MessageGroupId, g);
        }
        b.build()
    }

    /// The Lambda event for these messages, written out as Lambda does.
    fn event(msgs: &[(&str, &str, Option<&str>)]) -> String {
        let items: Vec<serde_json::Value> = msgs
            .iter()
            .map(|(id, body, group)| {
                let mut attributes = serde_json::json!({
                    "ApproximateReceiveCount": "2",
                    "SentTimestamp": "1764000000123",
                    "SequenceNumber": "18849496460467696128",
                });
                if let Some(g) = group {
                    attributes["MessageGroupId"] = serde_json::json!(g);
                }
                serde_json::json!({
                    "messageId": id, "receiptHandle": "rh", "body": body,
                    "attributes": attributes, "messageAttributes": {},
                    "md5OfBody": "", "eventSource": "aws:sqs",
                    "eventSourceARN": ARN, "awsRegion": "us-east-1",
                })
            })
            .collect();
        serde_json::json!({ "Records": items }).to_string()
    }

    #[test]
    fn sdk_messages_equal_the_records_of_the_lambda_event() {
        let unicode = "{\"sym\":\"日本株\",\"q\":\"\\\"é\u{1F600}\\\"\"}";
        let msgs = [
            ("m-1", r#"{"x":1}"#, Some("g7")),
            ("m-2", unicode, Some("g7")),
            ("m-3", "plain", None),
            // Base64 when the setting says so, and one that is not.
            ("m-4", " eyJhIjoxfQ== ", Some("g8")),
            ("m-5", "!!!not base64", Some("g8")),
        ];
        let ev = event(&msgs);
        let sdk: Vec<Message> = msgs.iter().map(|(i, b, g)| message(i, b, *g)).collect();
        for base64 in [false, true] {
            let opts = SourceOptions {
                sqs_body_base64: base64,
                ..SourceOptions::default()
            };
            let want = parse_event(ev.as_bytes(), &opts).unwrap();
            let got: Vec<Record> = sdk
                .iter()
                .map(|m| from_sdk(m, ARN, &opts).unwrap())
                .collect();
            assert_eq!(got, want, "base64 bodies: {base64}");
            assert_eq!(&*got[0].lane, format!("{ARN}/g7"));
            assert_eq!(got[0].message_key.as_deref(), Some("msg#m-1"));
            assert_eq!(&*got[0].position, "18849496460467696128");
            assert_eq!(got[0].arrival_ms, 1_764_000_000_123);
            assert_eq!(got[1].payload, unicode.as_bytes());
            assert_eq!(&*got[2].lane, format!("{ARN}/m-3"));
            assert_eq!(got[4].defect.is_some(), base64);
            if base64 {
                assert_eq!(got[3].payload, br#"{"a":1}"#);
            }
        }
    }

    #[test]
    fn an_original_id_keys_the_record_and_an_empty_id_is_an_error() {
        let m = message("new-id", "b", Some("g"));
        let mut parts = SqsParts::from_message(&m, ARN);
        parts.message_id = "orig-id";
        let r = record(parts, &SourceOptions::default()).unwrap();
        assert_eq!(
            (&*r.failure_id, r.message_key.as_deref()),
            ("orig-id", Some("msg#orig-id"))
        );
        let no_id = Message::builder().body("b").build();
        assert_eq!(
            from_sdk(&no_id, ARN, &SourceOptions::default()),
            Err(SourceRecordError::NoMessageId)
        );
    }
}
