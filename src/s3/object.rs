//! One S3 object as a stream of lines: GetObject pinned to the version or
//! ETag that named it, gzip by key suffix or Content-Encoding, and a resume
//! from a [`Cursor`] (a ranged read for an object read as stored; a re-read
//! that skips confirmed lines for gzip).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use super::error::{ErrorKind, S3Error};
use super::lines::{ChunkSource, Cursor, LineOptions, LineReader, SliceChunks, DEFAULT_MAX_LINE};
use super::ObjectRef;

/// An S3 body as chunks.
pub struct BodyChunks {
    body: ByteStream,
    object: ObjectRef,
}

impl ChunkSource for BodyChunks {
    type Chunk = bytes::Bytes;
    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, S3Error> {
        match self.body.next().await {
            None => Ok(None),
            Some(Ok(b)) => Ok(Some(b)),
            // A body cut off mid-way (reset, timeout) is worth a retry.
            Some(Err(e)) => Err(S3Error::new(
                &self.object,
                ErrorKind::Unavailable,
                format!("reading the body: {e}"),
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectOptions {
    pub max_line: usize,
}

impl Default for ObjectOptions {
    fn default() -> ObjectOptions {
        ObjectOptions {
            max_line: DEFAULT_MAX_LINE,
        }
    }
}

/// Lines of one object.
pub enum ObjectLines {
    Body(LineReader<BodyChunks>),
    /// Nothing after the cursor (a ranged read past the end).
    Empty(LineReader<SliceChunks<Vec<u8>>>),
}

impl ObjectLines {
    pub async fn next(&mut self) -> Result<Option<super::lines::Item<'_>>, S3Error> {
        match self {
            ObjectLines::Body(r) => r.next().await,
            ObjectLines::Empty(r) => r.next().await,
        }
    }

    pub fn cursor(&self) -> Cursor {
        match self {
            ObjectLines::Body(r) => r.cursor(),
            ObjectLines::Empty(r) => r.cursor(),
        }
    }

    pub fn buffered(&self) -> usize {
        match self {
            ObjectLines::Body(r) => r.buffered(),
            ObjectLines::Empty(r) => r.buffered(),
        }
    }
}

/// Whether the key says gzip (`.gz`, any case).
pub fn gzip_by_key(key: &str) -> bool {
    key.len() >= 3
        && key
            .get(key.len() - 3..)
            .is_some_and(|s| s.eq_ignore_ascii_case(".gz"))
}

/// Opens `object` for reading after `resume`. The read is pinned: to the
/// version when given, else to the ETag (`If-Match`), so an object
/// overwritten since its notification is refused ([`ErrorKind::Changed`])
/// rather than mixed into the old one's line numbers.
pub async fn open_lines(
    client: &Client,
    object: &ObjectRef,
    resume: Cursor,
    options: ObjectOptions,
) -> Result<ObjectLines, S3Error> {
    let by_key = gzip_by_key(&object.key);
    // Only a cursor with an offset came from reading the object as stored.
    let ranged = resume.offset.filter(|&o| o > 0 && !by_key);
    let mut req = client.get_object().bucket(&object.bucket).key(&object.key);
    if let Some(v) = &object.version_id {
        req = req.version_id(v);
    } else if let Some(e) = &object.etag {
        req = req.if_match(format!("\"{e}\""));
    }
    if let Some(o) = ranged {
        req = req.range(format!("bytes={o}-"));
    }
    let out = match req.send().await {
        Ok(out) => out,
        Err(e) => {
            let err = S3Error::from_sdk(object, &e);
            // 416: the checkpoint is at the end of the object.
            let past_end =
                ranged.is_some() && e.raw_response().is_some_and(|r| r.status().as_u16() == 416);
            if past_end {
                let reader = LineReader::resumed_at(
                    SliceChunks::new(Vec::new()),
                    object.clone(),
                    options.max_line,
                    resume,
                );
                return Ok(ObjectLines::Empty(reader));
            }
            return Err(err);
        }
    };
    let gzip = by_key
        || out
            .content_encoding()
            .is_some_and(|e| e.split(',').any(|p| p.trim().eq_ignore_ascii_case("gzip")));
    if gzip && ranged.is_some() {
        // A checkpoint with an offset on an object that turns out to be
        // gzip (by Content-Encoding): not a cursor this object can have.
        return Err(S3Error::new(
            object,
            ErrorKind::Refused,
            "checkpoint has a byte offset but the object is gzip",
        ));
    }
    let source = BodyChunks {
        body: out.body,
        object: object.clone(),
    };
    let reader = match ranged {
        Some(_) => LineReader::resumed_at(source, object.clone(), options.max_line, resume),
        None => LineReader::new(
            source,
            object.clone(),
            LineOptions {
                max_line: options.max_line,
                gzip,
            },
            resume,
        ),
    };
    Ok(ObjectLines::Body(reader))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_suffix() {
        assert!(gzip_by_key("a/b.csv.gz"));
        assert!(gzip_by_key("X.GZ"));
        assert!(!gzip_by_key("a.gzip"));
        assert!(!gzip_by_key("gz"));
    }
}
