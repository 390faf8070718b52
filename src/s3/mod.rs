//! S3: claim-check payloads and S3 objects streamed as lines (DESIGN §2,
//! §7a).
//!
//! - [`pointer`]: the SQS Extended Client's pointer body (and the same
//!   shape on Kinesis), and fetching the object it names with a size bound.
//! - [`event`]: S3 event notifications (direct, through SQS or SNS, and
//!   EventBridge) to the objects they name.
//! - [`object`]: one object as a stream of lines (gzip inflated as it
//!   streams), resumable from a [`Cursor`].
//! - [`lines`]: the line splitter and gzip decoder under it, over any
//!   source of byte chunks, with memory bounded by the longest line.
//! - [`error`]: what went wrong, and whether a retry can help.
//! - [`claim_check`]: the pipeline's claim-check stage over S3 (a client
//!   made on first use, the size bound, deletion after commit).
//! - [`ingest`]: one object streamed into the tickerplant with a line
//!   checkpoint, for S3 notifications and `tickbridge ingest`.

pub mod claim_check;
pub mod error;
pub mod event;
pub mod gzip;
pub mod ingest;
pub mod lines;
pub mod notify;
pub mod object;
pub mod pointer;

pub use error::{ErrorKind, S3Error};
pub use event::{EventKind, Notification, ObjectEvent};
pub use lines::{ChunkSource, Cursor, Item, Line, LineOptions, LineReader};
pub use object::{open_lines, ObjectLines, ObjectOptions};
pub use pointer::{delete_object, fetch_object, FetchOptions, Pointer, PointerError};

use std::fmt;

/// One S3 object: bucket, key, and the version or ETag that pins it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    /// Without quotes.
    pub etag: Option<String>,
}

impl ObjectRef {
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> ObjectRef {
        ObjectRef {
            bucket: bucket.into(),
            key: key.into(),
            version_id: None,
            etag: None,
        }
    }

    /// The dedupe lane of this object's line checkpoint:
    /// `obj#<bucket>/<key>#<version id, else ETag, else empty>`. The
    /// version (or ETag) is part of it so that a new object under the same
    /// key starts from line 0 instead of resuming an old one's checkpoint.
    pub fn lane(&self) -> String {
        let pin = self
            .version_id
            .as_deref()
            .or(self.etag.as_deref())
            .unwrap_or("");
        format!("obj#{}/{}#{}", self.bucket, self.key, pin)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)?;
        if let Some(v) = &self.version_id {
            write!(f, " (version {v})")?;
        }
        Ok(())
    }
}
