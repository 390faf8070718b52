//! A small JSON reader built for the decode hot path.
//!
//! It checks the whole document (strict RFC 8259: no trailing commas, no
//! comments, valid escapes and surrogate pairs) and records a flat tape of
//! nodes that borrow from the input, so looking up the handful of fields a
//! schema needs costs no allocation. It never recurses: nesting is bounded
//! by a depth limit and an explicit stack, so hostile input cannot blow the
//! call stack. The tape and the stack are reused from record to record.

use std::borrow::Cow;

use crate::bytes_eq::{bytes_eq, repeats_string};

/// Places of a flat object whose keys are remembered from one record to
/// the next (a record's columns are far fewer; the bound keeps a hostile
/// object of a million keys from being remembered).
const FLAT_KEYS_REMEMBERED: usize = 32;

/// What a node is. Containers span their whole text; children follow them
/// on the tape (object children alternate key, value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    /// A string with no escapes: the span is its content.
    Str,
    /// A string with escapes: the span is the raw content, decode on use.
    StrEscaped,
    /// A number with only an integer part.
    Int,
    /// A number with a fraction or an exponent.
    Float,
    True,
    False,
    Null,
}

#[derive(Clone, Copy, Debug)]
pub struct Node {
    pub kind: Kind,
    /// Byte span in the input (string spans exclude the quotes).
    pub start: u32,
    pub end: u32,
    /// Tape index just past this node's subtree (its next sibling).
    pub next: u32,
}

/// Why a document was rejected, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonError {
    Syntax { offset: usize, reason: &'static str },
    TooDeep { offset: usize, limit: usize },
}

/// A parsed document: the input text plus its tape.
#[derive(Default, Debug)]
pub struct Tape {
    nodes: Vec<Node>,
    stack: Vec<u32>,
    /// The keys of the last flat object read, by place, when plain:
    /// records of a stream mostly repeat their keys in one order, and a
    /// key whose bytes are the last one's at its place, closing quote
    /// included, is that plain key again (compared, not scanned).
    flat_keys: Vec<Vec<u8>>,
    /// Members of the last flat object read; `None` after any other
    /// document.
    flat_members: Option<usize>,
    /// See [`Tape::layout`].
    layout: u64,
    /// The last flat object's text around its values.
    shape: Shape,
    /// Documents read by their shape (tests count them).
    #[cfg(test)]
    shaped: usize,
}

/// What a value of a shaped object may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Str,
    Number,
    Literal(Kind),
}

/// The text of the last flat object read, its values cut out: records of
/// a stream mostly differ only in their values, so the next one is first
/// read as this text with other values in it ([`Tape::parse_shaped`]).
#[derive(Default, Debug)]
struct Shape {
    /// Whether it is the shape of the last document read.
    live: bool,
    /// The text before each value (a string's opening quote included),
    /// one piece after the other, and the text after the last value.
    text: Vec<u8>,
    members: Vec<ShapedMember>,
    /// Where the object's `{` is in the first piece and its `}` in the
    /// last.
    open_at: u32,
    close_at: u32,
}

#[derive(Clone, Copy, Debug)]
struct ShapedMember {
    /// Where the piece before this member's value ends in `Shape::text`.
    piece_end: u32,
    /// The key's span in that piece.
    key_start: u32,
    key_end: u32,
    value: Class,
}

impl Tape {
    pub fn new() -> Tape {
        Tape::default()
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, i: usize) -> Option<&Node> {
        self.nodes.get(i)
    }

    /// Parses `text` (already checked to be UTF-8, at most `u32::MAX`
    /// bytes) into this tape, replacing what it held. Node 0 is the root.
    pub fn parse(&mut self, text: &str, max_depth: usize) -> Result<(), JsonError> {
        self.nodes.clear();
        self.stack.clear();
        if text.len() > u32::MAX as usize {
            return Err(syntax(0, "document too large"));
        }
        if max_depth > 0 {
            if self.parse_shaped(text.as_bytes()) {
                #[cfg(test)]
                {
                    self.shaped += 1;
                }
                return Ok(());
            }
            self.nodes.clear();
            if self.parse_flat(text.as_bytes()) {
                self.take_shape(text.as_bytes());
                return Ok(());
            }
        }
        self.shape.live = false;
        self.flat_members = None;
        self.layout += 1;
        self.parse_general(text, max_depth)
    }

    /// The shape of the document on the tape, as a number: two documents
    /// read one after the other onto this tape have the same number only
    /// when both are flat objects with the same keys (byte for byte) in
    /// the same places, so that every lookup of a key finds the same node.
    /// Lookups can then be remembered from one record to the next.
    pub fn layout(&self) -> u64 {
        self.layout
    }

    /// Any JSON document onto the tape (`parse` tries the flat-object loop
    /// first).
    fn parse_general(&mut self, text: &str, max_depth: usize) -> Result<(), JsonError> {
        self.nodes.clear();
        self.stack.clear();
        let mut p = Parser {
            b: text.as_bytes(),
            i: 0,
        };
        loop {
            // One value, then whatever closes or separates after it.
            p.skip_ws();
            let at = p.i;
            match p.peek() {
                None => return Err(syntax(at, "unexpected end of input")),
                Some(b'{') | Some(b'[') => {
                    let object = p.peek() == Some(b'{');
                    if self.stack.len() >= max_depth {
                        return Err(JsonError::TooDeep {
                            offset: at,
                            limit: max_depth,
                        });
                    }
                    p.i += 1;
                    let idx = self.nodes.len() as u32;
                    self.nodes.push(Node {
                        kind: if object { Kind::Object } else { Kind::Array },
                        start: at as u32,
                        end: 0,
                        next: 0,
                    });
                    self.stack.push(idx);
                    p.skip_ws();
                    let close = if object { b'}' } else { b']' };
                    if p.peek() == Some(close) {
                        p.i += 1;
                        self.close_top(p.i);
                    } else {
                        if object {
                            self.key(&mut p)?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    let (kind, start, end) = p.string()?;
                    self.leaf(kind, start, end);
                }
                Some(b'-' | b'0'..=b'9') => {
                    let (kind, start, end) = p.number()?;
                    self.leaf(kind, start, end);
                }
                Some(b't') => self.literal(&mut p, b"true", Kind::True)?,
                Some(b'f') => self.literal(&mut p, b"false", Kind::False)?,
                Some(b'n') => self.literal(&mut p, b"null", Kind::Null)?,
                Some(_) => return Err(syntax(at, "expected a value")),
            }
            // After a complete value: close containers or move to the next item.
            loop {
                p.skip_ws();
                let Some(&top) = self.stack.last() else {
                    return match p.peek() {
                        None => Ok(()),
                        Some(_) => Err(syntax(p.i, "trailing characters after the value")),
                    };
                };
                let object = self
                    .nodes
                    .get(top as usize)
                    .is_some_and(|n| n.kind == Kind::Object);
                match p.peek() {
                    Some(b',') => {
                        p.i += 1;
                        if object {
                            p.skip_ws();
                            self.key(&mut p)?;
                        }
                        break;
                    }
                    Some(b'}') if object => {
                        p.i += 1;
                        self.close_top(p.i);
                    }
                    Some(b']') if !object => {
                        p.i += 1;
                        self.close_top(p.i);
                    }
                    None => return Err(syntax(p.i, "unexpected end of input")),
                    Some(_) => {
                        return Err(syntax(
                            p.i,
                            if object {
                                "expected ',' or '}'"
                            } else {
                                "expected ',' or ']'"
                            },
                        ))
                    }
                }
            }
        }
    }

    /// The common record, one object of scalar members, onto the tape in
    /// one loop: no stack, and no look at the enclosing container after
    /// each value. The tape is the one the general loop makes (a test holds
    /// them together); `false` at anything else (a nested container, bad
    /// JSON), and then the general loop reads the text, and names the
    /// error if there is one.
    fn parse_flat(&mut self, b: &[u8]) -> bool {
        let mut p = Parser { b, i: 0 };
        p.skip_ws();
        if p.peek() != Some(b'{') {
            return false;
        }
        let start = p.i as u32;
        p.i += 1;
        self.nodes.push(Node {
            kind: Kind::Object,
            start,
            end: 0,
            next: 0,
        });
        p.skip_ws();
        // Whether every key so far is the last flat object's at its place.
        let mut same = true;
        let mut members = 0;
        if p.peek() == Some(b'}') {
            p.i += 1;
        } else {
            loop {
                if p.peek() != Some(b'"') {
                    return false;
                }
                let Some((kind, start, end, seen)) = self.flat_key(&mut p, members) else {
                    return false;
                };
                same &= seen;
                members += 1;
                self.leaf(kind, start, end);
                p.skip_ws();
                if p.peek() != Some(b':') {
                    return false;
                }
                p.i += 1;
                p.skip_ws();
                let value = match p.peek() {
                    Some(b'"') => p.string(),
                    Some(b'-' | b'0'..=b'9') => p.number(),
                    Some(b't') => p.literal(b"true", Kind::True),
                    Some(b'f') => p.literal(b"false", Kind::False),
                    Some(b'n') => p.literal(b"null", Kind::Null),
                    _ => return false,
                };
                let Ok((kind, start, end)) = value else {
                    return false;
                };
                self.leaf(kind, start, end);
                p.skip_ws();
                match p.peek() {
                    Some(b',') => {
                        p.i += 1;
                        p.skip_ws();
                    }
                    Some(b'}') => {
                        p.i += 1;
                        break;
                    }
                    _ => return false,
                }
            }
        }
        let next = self.nodes.len() as u32;
        if let Some(root) = self.nodes.first_mut() {
            root.end = p.i as u32;
            root.next = next;
        }
        p.skip_ws();
        if p.i != b.len() {
            return false;
        }
        if !(same && self.flat_members == Some(members)) {
            self.layout += 1;
        }
        self.flat_members = Some(members);
        true
    }

    /// Keeps the shape of the flat object just read from `b` (its keys all
    /// plain, at most [`FLAT_KEYS_REMEMBERED`] of them), or none.
    fn take_shape(&mut self, b: &[u8]) {
        let Tape { nodes, shape, .. } = self;
        shape.live = false;
        shape.text.clear();
        shape.members.clear();
        let (Some(root), Some(members)) = (nodes.first(), nodes.get(1..)) else {
            return;
        };
        if members.is_empty() || members.len() > 2 * FLAT_KEYS_REMEMBERED {
            return;
        }
        // Where the piece being cut starts in `b`.
        let mut from = 0usize;
        for pair in members.chunks(2) {
            let [key, value] = pair else { return };
            let (class, start, after) = match value.kind {
                // A string's piece ends after its opening quote, and the
                // next one starts after its closing quote.
                Kind::Str | Kind::StrEscaped => (Class::Str, value.start, value.end + 1),
                Kind::Int | Kind::Float => (Class::Number, value.start, value.end),
                k @ (Kind::True | Kind::False | Kind::Null) => {
                    (Class::Literal(k), value.start, value.end)
                }
                Kind::Object | Kind::Array => return,
            };
            let (start, after) = (start as usize, after as usize);
            let Some(piece) = b.get(from..start) else {
                return;
            };
            if key.kind != Kind::Str || (key.start as usize) < from {
                return;
            }
            let key_start = key.start - from as u32;
            let key_end = key.end - from as u32;
            shape.text.extend_from_slice(piece);
            shape.members.push(ShapedMember {
                piece_end: shape.text.len() as u32,
                key_start,
                key_end,
                value: class,
            });
            from = after;
        }
        let (Some(tail), Some(close)) = (b.get(from..), (root.end as usize).checked_sub(from + 1))
        else {
            return;
        };
        shape.text.extend_from_slice(tail);
        shape.open_at = root.start;
        shape.close_at = close as u32;
        shape.live = true;
    }

    /// Reads `b` as the last flat object's shape with other values in it:
    /// the text around the values must be the same, byte for byte, and
    /// each value of the same class (a string without escapes, a number,
    /// or the same literal); `false` at anything else. The tape is the one
    /// the flat loop makes of the same text (a test holds them together),
    /// and its keys are the last object's, so the layout stays.
    fn parse_shaped(&mut self, b: &[u8]) -> bool {
        let Tape { nodes, shape, .. } = self;
        if !shape.live {
            return false;
        }
        nodes.push(Node {
            kind: Kind::Object,
            start: shape.open_at,
            end: 0,
            next: 0,
        });
        let mut pos = 0usize;
        let mut piece_start = 0usize;
        for m in &shape.members {
            let Some(piece) = shape.text.get(piece_start..m.piece_end as usize) else {
                return false;
            };
            if !b
                .get(pos..pos + piece.len())
                .is_some_and(|here| bytes_eq(here, piece))
            {
                return false;
            }
            push_leaf(
                nodes,
                Kind::Str,
                pos + m.key_start as usize,
                pos + m.key_end as usize,
            );
            pos += piece.len();
            let mut p = Parser { b, i: pos };
            let value = match m.value {
                Class::Str => {
                    let rest = b.get(pos..).unwrap_or_default();
                    let plain = string_stop(rest);
                    if rest.get(plain) != Some(&b'"') {
                        return false;
                    }
                    p.i = pos + plain + 1;
                    Ok((Kind::Str, pos, pos + plain))
                }
                Class::Number => p.number(),
                Class::Literal(kind) => {
                    let word: &[u8] = match kind {
                        Kind::True => b"true",
                        Kind::False => b"false",
                        _ => b"null",
                    };
                    p.literal(word, kind)
                }
            };
            let Ok((kind, start, end)) = value else {
                return false;
            };
            push_leaf(nodes, kind, start, end);
            pos = p.i;
            piece_start = m.piece_end as usize;
        }
        let tail = shape.text.get(piece_start..).unwrap_or_default();
        if !b.get(pos..).is_some_and(|rest| bytes_eq(rest, tail)) {
            return false;
        }
        let next = nodes.len() as u32;
        if let Some(root) = nodes.first_mut() {
            root.end = (pos + shape.close_at as usize + 1) as u32;
            root.next = next;
        }
        true
    }

    /// The key at `place` of a flat object, at its opening quote. The
    /// last element says whether it is the last flat object's key there.
    #[inline]
    fn flat_key(&mut self, p: &mut Parser, place: usize) -> Option<(Kind, usize, usize, bool)> {
        let start = p.i + 1;
        if let Some(seen) = self.flat_keys.get(place) {
            let end = start + seen.len();
            if p.b
                .get(start..)
                .is_some_and(|rest| repeats_string(rest, seen))
            {
                p.i = end + 1;
                return Some((Kind::Str, start, end, true));
            }
        }
        let (kind, start, end) = p.string().ok()?;
        if kind == Kind::Str && place < FLAT_KEYS_REMEMBERED {
            if self.flat_keys.len() <= place {
                self.flat_keys.resize_with(place + 1, Vec::new);
            }
            if let (Some(seen), Some(key)) = (self.flat_keys.get_mut(place), p.b.get(start..end)) {
                seen.clear();
                seen.extend_from_slice(key);
            }
        }
        Some((kind, start, end, false))
    }

    /// An object key, then its colon.
    fn key(&mut self, p: &mut Parser) -> Result<(), JsonError> {
        if p.peek() != Some(b'"') {
            return Err(syntax(p.i, "expected a string key"));
        }
        let (kind, start, end) = p.string()?;
        self.leaf(kind, start, end);
        p.skip_ws();
        if p.peek() != Some(b':') {
            return Err(syntax(p.i, "expected ':'"));
        }
        p.i += 1;
        Ok(())
    }

    fn leaf(&mut self, kind: Kind, start: usize, end: usize) {
        push_leaf(&mut self.nodes, kind, start, end);
    }

    fn literal(&mut self, p: &mut Parser, word: &[u8], kind: Kind) -> Result<(), JsonError> {
        let (kind, start, end) = p.literal(word, kind)?;
        self.leaf(kind, start, end);
        Ok(())
    }

    fn close_top(&mut self, end: usize) {
        let next = self.nodes.len() as u32;
        if let Some(top) = self.stack.pop() {
            if let Some(n) = self.nodes.get_mut(top as usize) {
                n.end = end as u32;
                n.next = next;
            }
        }
    }

    /// The value of `key` in the object at `obj`. A key given more than
    /// once means its last value, as serde_json, Python's `json` and
    /// JavaScript's `JSON.parse` read it, so a producer checking its own
    /// record sees what the bridge sends. Every lookup (columns, routing
    /// fields, payload keys) comes through here, so they all agree.
    pub fn get(&self, text: &str, obj: usize, key: &str) -> Option<usize> {
        let o = self.nodes.get(obj)?;
        if o.kind != Kind::Object {
            return None;
        }
        // Every member is looked at (the last match wins), so a member
        // that cannot match must cost little: lengths first, bytes only
        // when they agree, unescaping only for an escaped key long enough.
        let (bytes, want) = (text.as_bytes(), key.as_bytes());
        let mut last = None;
        let mut i = obj + 1;
        while i < o.next as usize {
            let Some(k) = self.nodes.get(i) else { break };
            let v = i + 1;
            let (start, end) = (k.start as usize, k.end as usize);
            let found = match k.kind {
                // Keys are short: compared inline rather than by a call
                // to memcmp.
                Kind::Str => bytes.get(start..end).is_some_and(|k| bytes_eq(k, want)),
                // Unescaping never lengthens a key.
                _ => {
                    end.saturating_sub(start) >= want.len()
                        && self.str_at(text, i).is_some_and(|s| s == key)
                }
            };
            if found {
                last = Some(v);
            }
            let Some(value) = self.nodes.get(v) else {
                break;
            };
            i = value.next as usize;
        }
        last
    }

    /// The values of several keys of the object at `obj` in one pass over
    /// its members: `out[j]` is what [`Tape::get`] gives for `keys[j]`
    /// (the last value of a repeated key). A record's columns are looked
    /// up this way, each member read once rather than once per column.
    pub fn get_many(&self, text: &str, obj: usize, keys: &[String], out: &mut Vec<Option<usize>>) {
        out.clear();
        out.resize(keys.len(), None);
        let Some(o) = self.nodes.get(obj).filter(|o| o.kind == Kind::Object) else {
            return;
        };
        let bytes = text.as_bytes();
        let mut i = obj + 1;
        while i < o.next as usize {
            let Some(k) = self.nodes.get(i) else { break };
            let v = i + 1;
            let unescaped;
            let key = match k.kind {
                Kind::Str => bytes
                    .get(k.start as usize..k.end as usize)
                    .unwrap_or_default(),
                _ => {
                    unescaped = self.str_at(text, i);
                    unescaped.as_deref().map_or(&[][..], str::as_bytes)
                }
            };
            for (want, slot) in keys.iter().zip(out.iter_mut()) {
                // Compared inline, as in `get`: a row's keys are short and
                // often of one length ("side", "size", "time", "type"), and
                // a call to memcmp per such pair was 2% of the handler.
                if bytes_eq(want.as_bytes(), key) {
                    *slot = Some(v);
                }
            }
            let Some(value) = self.nodes.get(v) else {
                break;
            };
            i = value.next as usize;
        }
    }

    /// Element `n` of the array at `arr`.
    pub fn index(&self, arr: usize, n: usize) -> Option<usize> {
        let a = self.nodes.get(arr)?;
        if a.kind != Kind::Array {
            return None;
        }
        let mut i = arr + 1;
        for _ in 0..n {
            if i >= a.next as usize {
                return None;
            }
            i = self.nodes.get(i)?.next as usize;
        }
        (i < a.next as usize).then_some(i)
    }

    /// The elements of the array at `arr` (tape indices).
    pub fn elements(&self, arr: usize) -> Elements<'_> {
        let end = self
            .nodes
            .get(arr)
            .filter(|n| n.kind == Kind::Array)
            .map_or(0, |n| n.next as usize);
        Elements {
            tape: self,
            i: arr + 1,
            end,
        }
    }

    /// The text of the string node `i`, unescaped.
    pub fn str_at<'t>(&self, text: &'t str, i: usize) -> Option<Cow<'t, str>> {
        let n = self.nodes.get(i)?;
        let raw = text.get(n.start as usize..n.end as usize)?;
        match n.kind {
            Kind::Str => Some(Cow::Borrowed(raw)),
            Kind::StrEscaped => unescape(raw).map(Cow::Owned),
            _ => None,
        }
    }

    /// The raw text of node `i` (for strings, without the quotes).
    pub fn raw<'t>(&self, text: &'t str, i: usize) -> &'t str {
        self.nodes
            .get(i)
            .and_then(|n| text.get(n.start as usize..n.end as usize))
            .unwrap_or("")
    }
}

pub struct Elements<'a> {
    tape: &'a Tape,
    i: usize,
    end: usize,
}

impl Iterator for Elements<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.i >= self.end {
            return None;
        }
        let cur = self.i;
        self.i = self.tape.nodes.get(cur)?.next as usize;
        Some(cur)
    }
}

fn syntax(offset: usize, reason: &'static str) -> JsonError {
    JsonError::Syntax { offset, reason }
}

/// Where a JSON string's plain run ends: the offset of the first quote,
/// backslash or control character in `b` (`b.len()` if none). Eight bytes
/// at a time (SWAR): most strings in records are short, where a SIMD
/// search's call costs more than it saves. (Sixteen bytes at a time with
/// SSE2 was tried: over the bench event's strings it took 15% longer.)
#[inline]
pub(crate) fn string_stop(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // High bit set in each byte of `v` that is zero; the lowest flagged
    // byte is always a true zero (a borrow only flags bytes above one).
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let hits = zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let tail = b.get(i..).unwrap_or(&[]);
    i + tail
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .unwrap_or(tail.len())
}

/// A scalar onto `nodes`: its subtree is itself.
fn push_leaf(nodes: &mut Vec<Node>, kind: Kind, start: usize, end: usize) {
    let next = nodes.len() as u32 + 1;
    nodes.push(Node {
        kind,
        start: start as u32,
        end: end as u32,
        next,
    });
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// At an opening quote: checks the string and returns its content span.
    fn string(&mut self) -> Result<(Kind, usize, usize), JsonError> {
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            let rest = self.b.get(self.i..).unwrap_or(&[]);
            // Plain bytes are the common case: skip them in one pass.
            let plain = string_stop(rest);
            if plain == rest.len() {
                return Err(syntax(self.b.len(), "unterminated string"));
            }
            self.i += plain;
            match self.peek() {
                Some(b'"') => {
                    let end = self.i;
                    self.i += 1;
                    let kind = if escaped { Kind::StrEscaped } else { Kind::Str };
                    return Ok((kind, start, end));
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return Err(syntax(self.i, "control character in string")),
            }
        }
    }

    /// At a backslash: checks one escape, including surrogate pairing.
    fn escape(&mut self) -> Result<(), JsonError> {
        let at = self.i;
        match self.b.get(self.i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.i += 2;
                Ok(())
            }
            Some(b'u') => {
                let hi = hex4(self.b, self.i + 2).ok_or_else(|| syntax(at, "bad \\u escape"))?;
                self.i += 6;
                if (0xDC00..0xE000).contains(&hi) {
                    return Err(syntax(at, "unpaired surrogate in \\u escape"));
                }
                if (0xD800..0xDC00).contains(&hi) {
                    let lo = (self.b.get(self.i) == Some(&b'\\')
                        && self.b.get(self.i + 1) == Some(&b'u'))
                    .then(|| hex4(self.b, self.i + 2))
                    .flatten()
                    .filter(|lo| (0xDC00..0xE000).contains(lo));
                    if lo.is_none() {
                        return Err(syntax(at, "unpaired surrogate in \\u escape"));
                    }
                    self.i += 6;
                }
                Ok(())
            }
            _ => Err(syntax(at, "bad escape")),
        }
    }

    /// At a literal's first letter: checks it is `word`.
    fn literal(&mut self, word: &[u8], kind: Kind) -> Result<(Kind, usize, usize), JsonError> {
        let start = self.i;
        if self.b.get(start..start + word.len()) != Some(word) {
            return Err(syntax(start, "invalid literal"));
        }
        self.i += word.len();
        Ok((kind, start, self.i))
    }

    /// Checks a number's grammar; returns its kind and span.
    fn number(&mut self) -> Result<(Kind, usize, usize), JsonError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(syntax(self.i, "bad number")),
        }
        let mut kind = Kind::Int;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(syntax(self.i, "bad number: digits expected after '.'"));
            }
            self.digits();
            kind = Kind::Float;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(syntax(self.i, "bad number: digits expected in exponent"));
            }
            self.digits();
            kind = Kind::Float;
        }
        Ok((kind, start, self.i))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    let mut v = 0u32;
    for &c in s {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

/// Decodes the escapes of a string the parser has already checked.
fn unescape(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < b.len() {
        let run = b
            .get(i..)?
            .iter()
            .position(|&c| c == b'\\')
            .unwrap_or(b.len() - i);
        out.push_str(raw.get(i..i + run)?);
        i += run;
        if i >= b.len() {
            break;
        }
        let c = *b.get(i + 1)?;
        i += 2;
        let ch = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(b, i)?;
                i += 4;
                if (0xD800..0xDC00).contains(&hi) {
                    let lo = hex4(b, i + 2)?;
                    i += 6;
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                } else {
                    char::from_u32(hi)?
                }
            }
            _ => return None,
        };
        out.push(ch);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn string_stop_finds_the_first_quote_backslash_or_control() {
        let cases: [(&[u8], usize); 8] = [
            (b"", 0),
            (b"abc", 3),
            (b"abcdefgh\"", 8),
            (b"abcdefghijklmnop\\", 16),
            (b"ab\x01cdefgh\"", 2),
            (b"\xe6\x97\xa5\xe6\x9c\xac!\x1f", 7),
            (b"\x7f\xff\x20\x21\x5b\x5d\x23\x24\x1f\"", 8),
            (b"0123456\"\\", 7),
        ];
        for (bytes, want) in cases {
            assert_eq!(string_stop(bytes), want, "{bytes:?}");
        }
        // Every position of every stop byte, after bytes that are near it
        // (0x20 and 0x80..0xff are not control characters), in texts that
        // end inside, at the end of and past whole 8-byte words.
        for stop in [b'"', b'\\', 0u8, 0x1f] {
            for (at, len) in (0..40).map(|at| (at, 40)).chain((0..18).map(|at| (at, 18))) {
                let mut b = vec![b'!'; len];
                for (n, c) in b.iter_mut().enumerate() {
                    *c = [b'!', b'#', 0x21, 0x5d, 0x20, 0xff][n % 6];
                }
                b[at] = stop;
                assert_eq!(string_stop(&b), at, "{stop:#x} at {at}");
            }
        }
        for len in 0..40 {
            for plain in [0x20u8, 0x7f, 0x80, 0xff] {
                assert_eq!(string_stop(&vec![plain; len]), len, "{plain:#x} x {len}");
            }
        }
    }

    use super::*;

    fn parse(s: &str) -> Result<Tape, JsonError> {
        let mut t = Tape::new();
        t.parse(s, 64).map(|_| t)
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        let docs = [
            r#"{"a":1,"b":[1,2,{"c":null}],"d":"x\"y\u00e9\ud83d\ude00","e":-0.5e-3,"f":true,"g":false}"#,
            "[]",
            "{}",
            " [ 1 , [ ] , { } ] ",
            "0",
            r#""\/\b\f\n\r\t""#,
        ];
        for d in docs {
            assert!(serde_json::from_str::<serde_json::Value>(d).is_ok(), "{d}");
            assert!(parse(d).is_ok(), "{d}");
        }
    }

    #[test]
    fn rejects_what_serde_json_rejects() {
        let docs = [
            "",
            "{",
            "[1,]",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            "01",
            "1.",
            "-",
            "1e",
            "tru",
            "nul",
            r#""\x""#,
            r#""\ud800""#,
            r#""\udc00x""#,
            "\"a\u{1}\"",
            "[1] 2",
            "[1}",
            r#"{"a":1]"#,
            r#""abc"#,
            r#""\u12""#,
        ];
        for d in docs {
            assert!(serde_json::from_str::<serde_json::Value>(d).is_err(), "{d}");
            assert!(parse(d).is_err(), "{d}");
        }
    }

    #[test]
    fn lookups_and_unescape() {
        let text = r#"{"a":{"b":[10,20,{"c":"\u0041\n"}]},"k\u0065y":"v"}"#;
        let t = parse(text).unwrap();
        let a = t.get(text, 0, "a").unwrap();
        let b = t.get(text, a, "b").unwrap();
        assert_eq!(t.raw(text, t.index(b, 1).unwrap()), "20");
        let c = t.get(text, t.index(b, 2).unwrap(), "c").unwrap();
        assert_eq!(t.str_at(text, c).unwrap(), "A\n");
        assert_eq!(t.index(b, 3), None);
        let key = t.get(text, 0, "key").unwrap();
        assert_eq!(t.str_at(text, key).unwrap(), "v");
        assert_eq!(t.elements(b).count(), 3);
        assert_eq!(t.get(text, 0, "zz"), None);
    }

    #[test]
    fn get_many_finds_what_get_finds() {
        let text = r#"{"p":1,"q":{"p":7},"p":2,"\u0070":3,"r":[1],"k\u0065y":"v","":0}"#;
        let t = parse(text).unwrap();
        let keys: Vec<String> = ["p", "q", "r", "key", "", "zz", "p"]
            .iter()
            .map(|k| k.to_string())
            .collect();
        let mut out = vec![Some(99)];
        t.get_many(text, 0, &keys, &mut out);
        let want: Vec<Option<usize>> = keys.iter().map(|k| t.get(text, 0, k)).collect();
        assert_eq!(out, want);
        assert_eq!(t.raw(text, out[0].unwrap()), "3");
        // The empty key is a key too (JSON pointer "/").
        assert_eq!(t.raw(text, out[4].unwrap()), "0");
        assert_eq!(out[5], None);
        // Not an object: nothing found.
        t.get_many(text, t.get(text, 0, "r").unwrap(), &keys, &mut out);
        assert!(out.iter().all(Option::is_none) && out.len() == keys.len());
    }

    /// The flat-object loop and the general one make the same tape, and
    /// the flat one declines what it was not built for.
    #[test]
    fn flat_objects_make_the_tape_the_general_loop_makes() {
        let tape_of = |t: &Tape| format!("{:?}", t.nodes());
        let general = |d: &str| {
            let mut t = Tape::new();
            let r = t.parse_general(d, 64);
            (r, tape_of(&t))
        };
        let values = [
            r#""x""#,
            r#""a\"b""#,
            r#""\u00e9""#,
            "0",
            "-1.5e3",
            "12",
            "true",
            "false",
            "null",
            r#""""#,
            "[1]",
            "{}",
            r#"{"a":1}"#,
            "01",
            "tru",
            r#""\x""#,
            "1.",
        ];
        let keys = [
            r#""k""#,
            r#""""#,
            r#""k\u0065y""#,
            r#""type""#,
            r#""typ""#,
            r#""types""#,
            r#""kk""#,
            "k",
            r#""a"#,
        ];
        let mut docs = vec![
            "{}".to_string(),
            " { } ".to_string(),
            "{".to_string(),
            "{}x".to_string(),
            "[]".to_string(),
        ];
        for (n, v) in values.iter().enumerate() {
            for k in keys {
                docs.push(format!("{{{k}:{v}}}"));
                docs.push(format!(
                    " {{ {k} : {v} , \"z\" : {} }} ",
                    values[(n + 3) % values.len()]
                ));
                docs.push(format!("{{{k}:{v},}}"));
                docs.push(format!("{{{k}:{v} \"z\":1}}"));
                docs.push(format!("{{{k}:{v}}}]"));
            }
        }
        let mut flat_taken = 0;
        // One tape for all, as a lane's records share one: each document's
        // keys are compared with the last flat one's.
        let mut t = Tape::new();
        for d in docs.iter().chain(&docs) {
            t.nodes.clear();
            let flat = t.parse_flat(d.as_bytes());
            let (result, want) = general(d);
            if flat {
                flat_taken += 1;
                assert!(
                    result.is_ok(),
                    "flat accepted what the general loop refuses: {d}"
                );
                assert_eq!(tape_of(&t), want, "{d}");
            }
            let mut t = Tape::new();
            assert_eq!(t.parse(d, 64), result, "{d}");
            assert_eq!(tape_of(&t), want, "{d}");
        }
        assert!(
            flat_taken >= 120,
            "only {flat_taken} of {} flat",
            docs.len()
        );
    }

    /// Documents read by the last one's shape make the tape the general
    /// loop makes of them, and the shape declines any other document.
    #[test]
    fn shaped_reads_make_the_tape_the_general_loop_makes() {
        let tape_of = |t: &Tape| format!("{:?}", t.nodes());
        let values = [
            r#""x""#,
            r#""""#,
            r#""a\"b""#,
            r#""\u00e9""#,
            r#""é""#,
            "\"a\u{1}b\"",
            "0",
            "-1.5e3",
            "12",
            "1.",
            "01",
            "-",
            "true",
            "false",
            "null",
            "tru",
            "nul",
            "[1]",
            "{}",
            r#"{"a":1}"#,
        ];
        // Each value's twin: another of its class (the same one when it
        // is not a plain string, a number or a literal).
        let twins = [
            r#""yy""#,
            r#""q""#,
            r#""c\"d""#,
            r#""\u00e8""#,
            r#""ü""#,
            "\"c\u{1f}d\"",
            "7",
            "2.25",
            "-3",
            "1.",
            "01",
            "-",
            "true",
            "false",
            "null",
            "tru",
            "nul",
            "[1]",
            "{}",
            r#"{"a":1}"#,
        ];
        // `V` is a value; each skeleton is filled with every value in turn
        // (and its neighbours in the list for the other places), and then
        // with their twins.
        let skeletons = [
            r#"{"k":V}"#,
            r#" { "k" : V , "z" : V } "#,
            r#"{"id":V,"price":V,"side":V,"sym":V}"#,
            r#"{"k\u0065y":V,"z":V}"#,
            r#"{"a":V,"a":V}"#,
            r#"{"a":V,}"#,
            r#"{"a":V}x"#,
            r#"{"a":V "b":V}"#,
            r#"{"a":V}]"#,
            r#"{"":V,"z":V}"#,
        ];
        let mut docs = Vec::new();
        for sk in skeletons {
            for n in 0..values.len() {
                for list in [values, twins] {
                    let mut d = String::new();
                    for (place, part) in sk.split('V').enumerate() {
                        if place > 0 {
                            d.push_str(list[(n + place - 1) % list.len()]);
                        }
                        d.push_str(part);
                    }
                    docs.push(d);
                }
            }
        }
        // The same documents in another order too: a shape taken from one
        // meets documents of other shapes.
        let mut mixed = docs.clone();
        mixed.reverse();
        mixed.rotate_left(7);
        let mut t = Tape::new();
        for d in docs.iter().chain(&mixed) {
            let mut fresh = Tape::new();
            let want = fresh.parse_general(d, 64);
            let got = t.parse(d, 64);
            assert_eq!(got, want, "{d}");
            if got.is_ok() {
                assert_eq!(tape_of(&t), tape_of(&fresh), "{d}");
            }
        }
        // Most alike documents in a row were read by their shape.
        assert!(t.shaped >= 60, "only {} read by their shape", t.shaped);
        // A shape holds lookups: the layout moves only when keys change.
        let mut t = Tape::new();
        t.parse(r#"{"a":1,"b":"x"}"#, 64).unwrap();
        let layout = t.layout();
        t.parse(r#"{"a":22,"b":"yy"}"#, 64).unwrap();
        assert_eq!((t.layout(), t.shaped), (layout, 1));
        t.parse(r#"{"a":22,"c":"yy"}"#, 64).unwrap();
        assert_ne!(t.layout(), layout);
    }

    #[test]
    fn a_repeated_key_means_its_last_value() {
        // Plain and escaped spellings of one key count as the same key.
        let text = r#"{"p":1,"q":0,"p":2,"\u0070":3,"r":{"p":9}}"#;
        let t = parse(text).unwrap();
        assert_eq!(t.raw(text, t.get(text, 0, "p").unwrap()), "3");
        assert_eq!(t.raw(text, t.get(text, 0, "q").unwrap()), "0");
        let text = r#"{"\u0070":3,"p":2}"#;
        let t = parse(text).unwrap();
        assert_eq!(t.raw(text, t.get(text, 0, "p").unwrap()), "2");
    }

    #[test]
    fn depth_is_bounded_without_recursion() {
        let deep = "[".repeat(100_000);
        let mut t = Tape::new();
        assert!(matches!(
            t.parse(&deep, 64),
            Err(JsonError::TooDeep { limit: 64, .. })
        ));
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(t.parse(&ok, 64).is_ok());
        let over = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(t.parse(&over, 64).is_err());
    }
}
