//! Claim checks: a queue or stream record that stands for an S3 object.
//!
//! The format is the Amazon SQS Extended Client's (Java and Python): the
//! body is the JSON array
//! `["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"…","s3Key":"…"}]`
//! (the Java client's legacy class name
//! `com.amazon.sqs.javamessaging.MessageS3Pointer` too), and the message
//! carries attribute `ExtendedPayloadSize` (or the legacy
//! `SQSLargePayloadSize`) with the payload's size in bytes.
//!
//! **SQS**: a pointer-shaped body *without* either attribute is not a
//! pointer. That is the clients' own rule (they resolve only messages with
//! the attribute), so a producer that sends such text as data gets it
//! decoded as data (where it fails as "not a record" and is quarantined
//! with its body, which names the bucket and key for a person to follow).
//! A body with the attribute that is not a well-formed pointer is a
//! permanent error: the producer said it is a pointer.
//!
//! **Kinesis** has no message attributes and no standard pointer. A
//! Kinesis record is a pointer when its data is the *same* JSON array
//! (either class name; no size attribute). The same shape because producers
//! already have code that writes it (the `payloadoffloading` library is
//! shared by the SQS and SNS extended clients), and it cannot collide with a
//! record: records are JSON objects or arrays of objects, and this array
//! starts with a string.
//!
//! Fetching reads the object into one buffer sized from its
//! Content-Length, refusing an object over [`FetchOptions::max_bytes`]
//! before reading any of it, and stopping if the body runs past the bound
//! anyway.

use aws_sdk_s3::Client;
use serde::Deserialize;

use super::error::{ErrorKind, S3Error};
use super::ObjectRef;

pub const POINTER_CLASS: &str = "software.amazon.payloadoffloading.PayloadS3Pointer";
pub const LEGACY_POINTER_CLASS: &str = "com.amazon.sqs.javamessaging.MessageS3Pointer";
pub const SIZE_ATTRIBUTE: &str = "ExtendedPayloadSize";
pub const LEGACY_SIZE_ATTRIBUTE: &str = "SQSLargePayloadSize";

/// The default bound on a claim-checked payload: 16 MiB. A payload is one
/// record, decoded whole (its rows are one unit of dedupe and failure), so
/// it sits in memory with up to a batch of others (10 per SQS FIFO batch, more
/// on Kinesis); 16 MiB keeps a full batch of them within a 512 MB function
/// while being 64 times the 256 KiB queue limit that made the producer
/// offload. Larger payloads are what object ingestion (§7a, streamed) is
/// for. The schema catalog's `max_record_bytes` applies after the fetch, so
/// raising this bound only helps together with that one.
pub const DEFAULT_MAX_BYTES: u64 = 16 << 20;

/// A pointer record's target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pointer {
    pub object: ObjectRef,
    /// The size the producer declared in the message attribute (SQS only).
    pub declared_size: Option<u64>,
    /// Whether the body used the legacy Java class name.
    pub legacy_class: bool,
}

/// A body that says it is a pointer but is not a well-formed one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    #[error("message attribute {attribute} marks a claim-check pointer, but the body is not one: {reason}")]
    Malformed {
        attribute: &'static str,
        reason: String,
    },
    #[error("message attribute {attribute} is {value:?}, not a size in bytes")]
    BadSize {
        attribute: &'static str,
        value: String,
    },
}

#[derive(Deserialize)]
struct Target {
    #[serde(rename = "s3BucketName")]
    bucket: String,
    #[serde(rename = "s3Key")]
    key: String,
}

/// The pointer a body holds, or why it does not hold one. Cheap for bodies
/// that are not pointers: anything not starting with `["` is refused before
/// JSON parsing.
fn parse_body(body: &[u8]) -> Result<(ObjectRef, bool), String> {
    let text = body.trim_ascii();
    if !text.starts_with(b"[") {
        return Err("not a JSON array".into());
    }
    let (class, target): (String, Target) = serde_json::from_slice(text)
        .map_err(|e| format!("not [class, {{s3BucketName, s3Key}}]: {e}"))?;
    let legacy = match class.as_str() {
        POINTER_CLASS => false,
        LEGACY_POINTER_CLASS => true,
        other => return Err(format!("unknown pointer class {other:?}")),
    };
    if target.bucket.is_empty() || target.key.is_empty() {
        return Err("empty s3BucketName or s3Key".into());
    }
    Ok((ObjectRef::new(target.bucket, target.key), legacy))
}

/// Whether the body could be a pointer at all (a quick look, no parsing).
fn pointer_shaped(body: &[u8]) -> bool {
    let t = body.trim_ascii_start();
    t.starts_with(b"[")
        && t.get(1..)
            .is_some_and(|r| r.trim_ascii_start().starts_with(b"\""))
}

/// The pointer in an SQS message, given its body and its message
/// attributes as (name, string value) pairs. `Ok(None)`: an ordinary
/// message (including a pointer-shaped body without the size attribute;
/// see the module notes).
pub fn sqs_pointer<'a>(
    body: &[u8],
    attributes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<Option<Pointer>, PointerError> {
    let mut marked: Option<(&'static str, Option<&str>)> = None;
    for (name, value) in attributes {
        if name == SIZE_ATTRIBUTE {
            marked = Some((SIZE_ATTRIBUTE, value));
        } else if name == LEGACY_SIZE_ATTRIBUTE && marked.is_none() {
            marked = Some((LEGACY_SIZE_ATTRIBUTE, value));
        }
    }
    let Some((attribute, value)) = marked else {
        return Ok(None);
    };
    let declared_size = match value {
        None => None,
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| PointerError::BadSize {
            attribute,
            value: v.to_string(),
        })?),
    };
    let (object, legacy_class) =
        parse_body(body).map_err(|reason| PointerError::Malformed { attribute, reason })?;
    Ok(Some(Pointer {
        object,
        declared_size,
        legacy_class,
    }))
}

/// The pointer in a Kinesis record's data, if it is one (see the module
/// notes: the SQS array shape, no attribute).
pub fn kinesis_pointer(data: &[u8]) -> Option<Pointer> {
    if !pointer_shaped(data) {
        return None;
    }
    parse_body(data).ok().map(|(object, legacy_class)| Pointer {
        object,
        declared_size: None,
        legacy_class,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchOptions {
    /// Larger objects are a permanent error, refused before reading.
    pub max_bytes: u64,
}

impl Default for FetchOptions {
    fn default() -> FetchOptions {
        FetchOptions {
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Reads the pointer's object into one buffer.
pub async fn fetch_object(
    client: &Client,
    pointer: &Pointer,
    options: FetchOptions,
) -> Result<Vec<u8>, S3Error> {
    let object = &pointer.object;
    let too_large = |size: u64| {
        S3Error::new(
            object,
            ErrorKind::TooLarge,
            format!(
                "{size} bytes is over the {}-byte claim-check limit",
                options.max_bytes
            ),
        )
    };
    if let Some(size) = pointer.declared_size.filter(|&s| s > options.max_bytes) {
        return Err(too_large(size));
    }
    let mut req = client.get_object().bucket(&object.bucket).key(&object.key);
    if let Some(v) = &object.version_id {
        req = req.version_id(v);
    }
    let out = req
        .send()
        .await
        .map_err(|e| S3Error::from_sdk(object, &e))?;
    let length = out.content_length().and_then(|n| u64::try_from(n).ok());
    if let Some(size) = length.filter(|&s| s > options.max_bytes) {
        // Dropping the body closes the connection without reading it.
        return Err(too_large(size));
    }
    let capacity = usize::try_from(length.unwrap_or(0).min(options.max_bytes)).unwrap_or(0);
    let mut buf = Vec::with_capacity(capacity);
    let mut body = out.body;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            S3Error::new(
                object,
                ErrorKind::Unavailable,
                format!("reading the body: {e}"),
            )
        })?;
        if (buf.len() + chunk.len()) as u64 > options.max_bytes {
            return Err(too_large((buf.len() + chunk.len()) as u64));
        }
        buf.extend_from_slice(&chunk);
    }
    if let Some(n) = length.filter(|&n| n != buf.len() as u64) {
        return Err(S3Error::new(
            object,
            ErrorKind::Unavailable,
            format!("body ended after {} of {n} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

/// Deletes a claim-checked object once its record is committed (a
/// setting; by default objects are left to a lifecycle rule). A missing
/// object counts as deleted: a redelivered, already committed pointer may
/// have been cleaned up by the first delivery.
pub async fn delete_object(client: &Client, object: &ObjectRef) -> Result<(), S3Error> {
    let mut req = client
        .delete_object()
        .bucket(&object.bucket)
        .key(&object.key);
    if let Some(v) = &object.version_id {
        req = req.version_id(v);
    }
    match req.send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let err = S3Error::from_sdk(object, &e);
            if err.kind == ErrorKind::NotFound {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"bkt","s3Key":"a/b c"}]"#;

    #[test]
    fn sqs_pointer_needs_an_attribute() {
        let p = sqs_pointer(BODY.as_bytes(), [("ExtendedPayloadSize", Some("300000"))])
            .unwrap()
            .unwrap();
        assert_eq!(p.object, ObjectRef::new("bkt", "a/b c"));
        assert_eq!(p.declared_size, Some(300000));
        assert!(!p.legacy_class);
        let legacy = BODY.replace(POINTER_CLASS, LEGACY_POINTER_CLASS);
        let p = sqs_pointer(legacy.as_bytes(), [("SQSLargePayloadSize", Some("7"))])
            .unwrap()
            .unwrap();
        assert!(p.legacy_class);
        assert_eq!(p.declared_size, Some(7));
        assert_eq!(
            sqs_pointer(BODY.as_bytes(), [("Other", Some("1"))]),
            Ok(None)
        );
        assert_eq!(sqs_pointer(b"{\"a\":1}", []), Ok(None));
    }

    #[test]
    fn sqs_marked_but_malformed_is_an_error() {
        let e = sqs_pointer(b"{\"a\":1}", [("ExtendedPayloadSize", Some("1"))]).unwrap_err();
        assert!(
            matches!(
                e,
                PointerError::Malformed {
                    attribute: "ExtendedPayloadSize",
                    ..
                }
            ),
            "{e}"
        );
        let e = sqs_pointer(
            br#"["x.Other",{"s3BucketName":"b","s3Key":"k"}]"#,
            [("SQSLargePayloadSize", None)],
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown pointer class"), "{e}");
        let e = sqs_pointer(BODY.as_bytes(), [("ExtendedPayloadSize", Some("lots"))]).unwrap_err();
        assert!(matches!(e, PointerError::BadSize { .. }));
        let e = sqs_pointer(
            br#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"","s3Key":"k"}]"#,
            [("ExtendedPayloadSize", Some("1"))],
        )
        .unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn kinesis_pointer_by_shape_alone() {
        assert_eq!(
            kinesis_pointer(format!("  {BODY}\n").as_bytes()).map(|p| p.object.key),
            Some("a/b c".to_string())
        );
        assert_eq!(kinesis_pointer(br#"[{"sym":"a"}]"#), None);
        assert_eq!(kinesis_pointer(br#"{"sym":"a"}"#), None);
        assert_eq!(kinesis_pointer(br#"["just","strings"]"#), None);
    }
}
