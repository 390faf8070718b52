//! One readable line per error, whatever the library put in it.
//!
//! Much of the library renders AWS SDK errors with the SDK's
//! `DisplayErrorContext`, which appends a Rust Debug dump of the whole
//! error (HTTP headers, `SdkBody`, `Extensions {…}`) to the message, and
//! error chains often repeat their source's text ("X: X"). An operator
//! needs neither, so every message the CLI prints passes through
//! [`one_line`] first.

/// The SDK error variants whose Debug dump `DisplayErrorContext` appends as
/// ` (Variant(…))`.
const DEBUG_TAILS: &[&str] = &[
    " (ServiceError(",
    " (DispatchFailure(",
    " (TimeoutError(",
    " (ResponseError(",
    " (ConstructionFailure(",
];

/// `text` without Debug dumps, without the SDK's generic "service error:"
/// prefix, without a segment repeated right after itself, on one line.
pub fn one_line(text: &str) -> String {
    let stripped = strip_debug_tails(text);
    let flat: String = stripped
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    dedupe_segments(&flat.replace("service error: ", ""))
}

/// Removes every ` (Variant(…))` Debug dump, matching its parentheses and
/// skipping over the quoted strings inside it.
fn strip_debug_tails(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = DEBUG_TAILS.iter().filter_map(|t| rest.find(t)).min();
        let Some(at) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at]);
        // Skip the leading space, then the balanced parenthesised dump.
        match balanced_end(&rest[at + 1..]) {
            Some(len) => rest = &rest[at + 1 + len..],
            // Unbalanced (truncated): drop the remainder.
            None => return out,
        }
    }
}

/// Byte length of the parenthesised group `s` starts with.
fn balanced_end(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + c.len_utf8());
                }
            }
            _ => {}
        }
    }
    None
}

/// "a: b: b: c" → "a: b: c", and "x: y: x: y" → "x: y": a chain whose
/// context equals its source says everything twice.
fn dedupe_segments(text: &str) -> String {
    let parts: Vec<&str> = text.split(": ").collect();
    let mut out: Vec<&str> = Vec::with_capacity(parts.len());
    for part in parts {
        out.push(part);
        // Drop a trailing run that repeats the run just before it.
        let n = out.len();
        for len in (1..=n / 2).rev() {
            if out[n - len..] == out[n - 2 * len..n - len] {
                out.truncate(n - len);
                break;
            }
        }
    }
    out.join(": ")
}

/// A command that cannot start as asked: a bad flag or setting, or a
/// resource it names that does not exist. Exits 2, like clap's own usage
/// errors; everything else that fails exits 1.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `e` as a [`UsageError`] (exit status 2), its text cleaned.
pub fn usage(e: anyhow::Error) -> anyhow::Error {
    if e.is::<UsageError>() {
        return e;
    }
    anyhow::Error::new(UsageError(render(&e)))
}

/// The exit status for an error a command returned: 2 for a
/// [`UsageError`], else 1.
pub fn exit_status(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.is::<UsageError>()) {
        2
    } else {
        1
    }
}

/// The message of an anyhow error chain on one line: `{:#}` joins the
/// chain with ": ", then [`one_line`] cleans it.
pub fn render(e: &anyhow::Error) -> String {
    one_line(&format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_debug_dumps_are_dropped() {
        let text = "GetFunction for function nope:live: service error: ResourceNotFoundException: Function not found: arn:x: ResourceNotFoundException: Function not found: arn:x (ServiceError(ServiceError { source: X { message: Some(\"a ) \\\" (\"), meta: {} }, raw: Response { headers: {\"a\": \"b\"} } }))";
        assert_eq!(
            one_line(text),
            "GetFunction for function nope:live: ResourceNotFoundException: Function not found: arn:x"
        );
        let with_hint = "GetShardIterator: dispatch failure: io (DispatchFailure(DispatchFailure { source: X })); is the endpoint right?";
        assert_eq!(
            one_line(with_hint),
            "GetShardIterator: dispatch failure: io; is the endpoint right?"
        );
    }

    #[test]
    fn repeated_text_is_said_once() {
        assert_eq!(
            one_line("TICKBRIDGE_TP: bad target x: expected host:port: TICKBRIDGE_TP: bad target x: expected host:port"),
            "TICKBRIDGE_TP: bad target x: expected host:port"
        );
        assert_eq!(
            one_line("bind 127.0.0.1:5010: Address already in use (os error 98): Address already in use (os error 98)"),
            "bind 127.0.0.1:5010: Address already in use (os error 98)"
        );
        assert_eq!(one_line("a: b: c"), "a: b: c");
        assert_eq!(one_line("line one\n  line two\n"), "line one; line two");
    }

    #[test]
    fn anyhow_contexts_equal_to_their_source_are_not_repeated() {
        let e = anyhow::anyhow!("journal /x: Permission denied")
            .context("journal /x: Permission denied")
            .context("cannot start");
        assert_eq!(render(&e), "cannot start: journal /x: Permission denied");
    }
}
