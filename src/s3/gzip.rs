//! A gzip decoder fed chunk by chunk, producing at most a given amount of
//! output per call, so a small compressed chunk (or a decompression bomb)
//! never inflates into more memory than the caller asked for.
//!
//! flate2's gzip readers pull from a synchronous `Read`, and its write-side
//! decoder inflates a whole input chunk at once; object bodies arrive as
//! async chunks, so the RFC 1952 framing is read here and the deflate data
//! inflated with flate2's raw `Decompress`. Members may follow one another
//! (concatenated gzip, as `cat a.gz b.gz` and many log writers make); each
//! member's CRC-32 and length are checked.

use flate2::{Crc, Decompress, FlushDecompress, Status};

const FTEXT_RESERVED: u8 = 0xE0;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

#[derive(Debug)]
enum State {
    /// Reading the fixed 10-byte header (kept in `scratch`).
    Fixed,
    /// Reading the 2-byte FEXTRA length (in `scratch`).
    ExtraLen,
    Extra(usize),
    Name,
    Comment,
    HeaderCrc(usize),
    Body,
    /// Reading the 8-byte trailer (in `scratch`).
    Trailer,
}

pub struct GzipDecoder {
    state: State,
    flags: u8,
    scratch: Vec<u8>,
    inflate: Decompress,
    crc: Crc,
    members: u64,
}

impl Default for GzipDecoder {
    fn default() -> Self {
        GzipDecoder::new()
    }
}

impl GzipDecoder {
    pub fn new() -> GzipDecoder {
        GzipDecoder {
            state: State::Fixed,
            flags: 0,
            scratch: Vec::with_capacity(10),
            inflate: Decompress::new(false),
            crc: Crc::new(),
            members: 0,
        }
    }

    /// Consumes from `input` and appends at most `max_out` bytes to `out`;
    /// returns the input bytes consumed. Call again with the rest of the
    /// input (or with none, at the end, until it appends nothing) and then
    /// [`GzipDecoder::finish`].
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<usize, String> {
        let mut used = 0;
        let out_start = out.len();
        loop {
            let rest = input.get(used..).unwrap_or(&[]);
            match self.state {
                State::Body => {
                    let room = max_out.saturating_sub(out.len() - out_start);
                    if room == 0 {
                        return Ok(used);
                    }
                    let before_out = out.len();
                    let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
                    // A slice of exactly `room` bytes: never more output than asked for.
                    out.resize(before_out + room, 0);
                    let r = self.inflate.decompress(
                        rest,
                        out.get_mut(before_out..).unwrap_or(&mut []),
                        FlushDecompress::None,
                    );
                    let produced = (self.inflate.total_out() - out0) as usize;
                    out.truncate(before_out + produced);
                    let status = r.map_err(|e| format!("bad deflate data: {e}"))?;
                    let consumed = (self.inflate.total_in() - in0) as usize;
                    if let Some(new) = out.get(before_out..before_out + produced) {
                        self.crc.update(new);
                    }
                    used += consumed;
                    match status {
                        Status::StreamEnd => {
                            self.state = State::Trailer;
                            self.scratch.clear();
                        }
                        Status::Ok | Status::BufError => {
                            if consumed == 0 && produced == 0 {
                                return Ok(used);
                            }
                        }
                    }
                }
                _ => {
                    let Some(&b) = rest.first() else {
                        return Ok(used);
                    };
                    used += 1;
                    self.header_byte(b)?;
                }
            }
        }
    }

    fn header_byte(&mut self, b: u8) -> Result<(), String> {
        match self.state {
            State::Fixed => {
                self.scratch.push(b);
                match self.scratch.as_slice() {
                    [m0, ..] if *m0 != 0x1f => return Err(self.not_gzip()),
                    [_, m1, ..] if *m1 != 0x8b => return Err(self.not_gzip()),
                    [_, _, cm, ..] if *cm != 8 => {
                        return Err(format!("gzip compression method {cm}, not deflate (8)"))
                    }
                    [_, _, _, flg, ..] if flg & FTEXT_RESERVED != 0 => {
                        return Err("gzip header has reserved flag bits set".into())
                    }
                    h if h.len() == 10 => {
                        self.flags = h.get(3).copied().unwrap_or(0);
                        self.scratch.clear();
                        self.next_header_field(FEXTRA);
                    }
                    _ => {}
                }
            }
            State::ExtraLen => {
                self.scratch.push(b);
                if let [lo, hi] = self.scratch.as_slice() {
                    let n = usize::from(u16::from_le_bytes([*lo, *hi]));
                    self.scratch.clear();
                    if n == 0 {
                        self.next_header_field(FNAME);
                    } else {
                        self.state = State::Extra(n);
                    }
                }
            }
            State::Extra(n) => {
                if n <= 1 {
                    self.next_header_field(FNAME);
                } else {
                    self.state = State::Extra(n - 1);
                }
            }
            State::Name if b == 0 => self.next_header_field(FCOMMENT),
            State::Comment if b == 0 => self.next_header_field(FHCRC),
            State::Name | State::Comment => {}
            State::HeaderCrc(n) => {
                if n <= 1 {
                    self.start_body();
                } else {
                    self.state = State::HeaderCrc(n - 1);
                }
            }
            State::Trailer => {
                self.scratch.push(b);
                if let [c0, c1, c2, c3, s0, s1, s2, s3] = self.scratch.as_slice() {
                    let crc = u32::from_le_bytes([*c0, *c1, *c2, *c3]);
                    let size = u32::from_le_bytes([*s0, *s1, *s2, *s3]);
                    if crc != self.crc.sum() {
                        return Err(format!(
                            "gzip member {} fails its CRC-32 check",
                            self.members + 1
                        ));
                    }
                    if size != self.crc.amount() {
                        return Err(format!(
                            "gzip member {} has the wrong length",
                            self.members + 1
                        ));
                    }
                    self.members += 1;
                    self.scratch.clear();
                    self.inflate.reset(false);
                    self.crc.reset();
                    self.state = State::Fixed;
                }
            }
            State::Body => {}
        }
        Ok(())
    }

    fn not_gzip(&self) -> String {
        if self.members == 0 {
            "not gzip data (bad magic number)".into()
        } else {
            format!(
                "bytes after gzip member {} are not another member",
                self.members
            )
        }
    }

    /// Moves to the first header field at or after `from` that the flags
    /// say is present.
    fn next_header_field(&mut self, from: u8) {
        let order = [FEXTRA, FNAME, FCOMMENT, FHCRC];
        for f in order.into_iter().skip_while(|&f| f != from) {
            if self.flags & f != 0 {
                self.state = match f {
                    FEXTRA => State::ExtraLen,
                    FNAME => State::Name,
                    FCOMMENT => State::Comment,
                    _ => State::HeaderCrc(2),
                };
                return;
            }
        }
        self.start_body();
    }

    fn start_body(&mut self) {
        self.state = State::Body;
    }

    /// At the end of the input: whether it ended between members.
    pub fn finish(&self) -> Result<(), String> {
        match self.state {
            State::Fixed if self.scratch.is_empty() && self.members > 0 => Ok(()),
            State::Fixed if self.scratch.is_empty() => Err("empty gzip data".into()),
            _ => Err(format!(
                "gzip data ends early (in member {})",
                self.members + 1
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn inflate_all(data: &[u8], chunk: usize, max_out: usize) -> Result<Vec<u8>, String> {
        let mut d = GzipDecoder::new();
        let mut out = Vec::new();
        for c in data.chunks(chunk) {
            let mut pos = 0;
            while pos < c.len() {
                let before = out.len();
                pos += d.decode(&c[pos..], &mut out, max_out)?;
                assert!(out.len() - before <= max_out);
            }
        }
        loop {
            let before = out.len();
            d.decode(&[], &mut out, max_out)?;
            if out.len() == before {
                break;
            }
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn round_trips_in_any_chunking() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let z = gz(&data);
        for (chunk, max_out) in [(1, 7), (13, 4096), (z.len(), 65536)] {
            assert_eq!(inflate_all(&z, chunk, max_out).unwrap(), data);
        }
    }

    #[test]
    fn members_concatenate_and_header_fields_are_skipped() {
        let mut two = gz(b"first\n");
        let mut b = flate2::GzBuilder::new()
            .filename("x.csv")
            .comment("c")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), Compression::default());
        b.write_all(b"second\n").unwrap();
        two.extend(b.finish().unwrap());
        assert_eq!(inflate_all(&two, 3, 5).unwrap(), b"first\nsecond\n");
    }

    #[test]
    fn damage_is_reported() {
        let z = gz(b"hello world, hello world");
        let mut bad_crc = z.clone();
        let n = bad_crc.len();
        bad_crc[n - 6] ^= 1;
        assert!(inflate_all(&bad_crc, 4, 10).unwrap_err().contains("CRC"));
        assert!(inflate_all(&z[..z.len() - 3], 4, 10)
            .unwrap_err()
            .contains("ends early"));
        assert!(inflate_all(b"plain text", 4, 10)
            .unwrap_err()
            .contains("not gzip"));
        let mut trailing = z.clone();
        trailing.extend_from_slice(b"junk");
        assert!(inflate_all(&trailing, 4, 10)
            .unwrap_err()
            .contains("after gzip member 1"));
    }

    #[test]
    fn a_bomb_inflates_only_as_asked() {
        let z = gz(&vec![b'a'; 10 << 20]);
        let mut d = GzipDecoder::new();
        let mut out = Vec::new();
        d.decode(&z, &mut out, 1000).unwrap();
        assert!(out.len() <= 1000);
        assert!(out.capacity() < 1 << 20, "capacity {}", out.capacity());
    }
}
