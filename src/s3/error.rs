//! What went wrong with an S3 object, and whether trying again can help.
//!
//! Permanent (the record or object is bad: quarantine it, DESIGN §6): the
//! object or bucket does not exist, access is denied, the object is over
//! the size bound, it changed since it was named, or its bytes are not what
//! they claim (bad gzip). Transient (cut the lane, retry): throttling, 5xx,
//! timeouts, broken connections.

use std::fmt;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::ObjectRef;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AccessDenied,
    TooLarge,
    /// The object is not the one named (ETag or version no longer match).
    Changed,
    /// Its bytes are not what they claim to be (bad gzip, short body).
    BadObject,
    /// Any other refusal a retry will not change (4xx).
    Refused,
    Throttled,
    /// 5xx, timeouts, broken connections.
    Unavailable,
}

impl ErrorKind {
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Unavailable)
    }

    fn text(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AccessDenied => "access denied",
            ErrorKind::TooLarge => "too large",
            ErrorKind::Changed => "changed since it was named",
            ErrorKind::BadObject => "bad object",
            ErrorKind::Refused => "refused",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Unavailable => "unavailable",
        }
    }
}

/// An error about one object, naming it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct S3Error {
    pub bucket: String,
    pub key: String,
    pub kind: ErrorKind,
    pub reason: String,
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "s3://{}/{}: {} ({}; {})",
            self.bucket,
            self.key,
            self.kind.text(),
            self.reason,
            if self.kind.is_transient() {
                "transient"
            } else {
                "permanent"
            }
        )
    }
}

impl S3Error {
    pub fn new(object: &ObjectRef, kind: ErrorKind, reason: impl Into<String>) -> S3Error {
        S3Error {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            kind,
            reason: reason.into(),
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    /// Classifies an SDK error from a call about `object`.
    pub(crate) fn from_sdk<E>(object: &ObjectRef, err: &SdkError<E, HttpResponse>) -> S3Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (kind, reason) = match err {
            SdkError::ServiceError(ctx) => {
                let status = ctx.raw().status().as_u16();
                let code = ctx.err().code().unwrap_or("");
                let kind = classify(status, code);
                let reason = match ctx.err().message() {
                    Some(m) if !code.is_empty() => format!("{code}: {m}"),
                    _ if !code.is_empty() => code.to_string(),
                    _ => format!("HTTP {status}"),
                };
                (kind, reason)
            }
            SdkError::TimeoutError(_) => (ErrorKind::Unavailable, "timed out".to_string()),
            SdkError::DispatchFailure(_) => (
                ErrorKind::Unavailable,
                format!("request not sent: {}", DisplayErrorContext(err)),
            ),
            SdkError::ResponseError(_) => (
                ErrorKind::Unavailable,
                format!("bad response: {}", DisplayErrorContext(err)),
            ),
            // Building the request failed: a bucket or key the SDK refuses.
            SdkError::ConstructionFailure(_) => (
                ErrorKind::Refused,
                format!("bad request: {}", DisplayErrorContext(err)),
            ),
            _ => (ErrorKind::Unavailable, DisplayErrorContext(err).to_string()),
        };
        S3Error::new(object, kind, reason)
    }
}

/// Error code first (S3 sometimes answers 403 for a missing key the caller
/// may not list, and moto and S3 disagree on some statuses), then status.
pub(crate) fn classify(status: u16, code: &str) -> ErrorKind {
    match code {
        "NoSuchKey" | "NoSuchBucket" | "NoSuchVersion" | "NotFound" => ErrorKind::NotFound,
        "AccessDenied" | "AllAccessDisabled" | "InvalidObjectState" | "Forbidden" => {
            ErrorKind::AccessDenied
        }
        "PreconditionFailed" => ErrorKind::Changed,
        "SlowDown"
        | "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequests" => ErrorKind::Throttled,
        "InternalError" | "ServiceUnavailable" | "RequestTimeout" => ErrorKind::Unavailable,
        _ => match status {
            404 => ErrorKind::NotFound,
            403 => ErrorKind::AccessDenied,
            412 => ErrorKind::Changed,
            429 | 503 => ErrorKind::Throttled,
            408 | 500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::Refused,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_classify() {
        assert_eq!(classify(404, "NoSuchKey"), ErrorKind::NotFound);
        assert_eq!(classify(404, ""), ErrorKind::NotFound);
        assert_eq!(classify(403, "AccessDenied"), ErrorKind::AccessDenied);
        assert_eq!(classify(503, "SlowDown"), ErrorKind::Throttled);
        assert_eq!(classify(500, ""), ErrorKind::Unavailable);
        assert_eq!(classify(412, ""), ErrorKind::Changed);
        assert_eq!(classify(400, "InvalidArgument"), ErrorKind::Refused);
        assert!(classify(502, "").is_transient());
        assert!(!classify(404, "").is_transient());
    }

    #[test]
    fn message_names_object_and_fate() {
        let e = S3Error::new(
            &ObjectRef::new("b", "k/x.csv"),
            ErrorKind::NotFound,
            "NoSuchKey",
        );
        assert_eq!(
            e.to_string(),
            "s3://b/k/x.csv: not found (NoSuchKey; permanent)"
        );
    }
}
