//! AWS X-Ray for the Lambda (`Tracing: Active` in the template): the trace
//! id in every log line of an invocation, and one subsegment per pipeline
//! stage sent to the X-Ray daemon Lambda runs next to the function.
//!
//! Lambda hands each invocation a trace header (`Root=…;Parent=…;Sampled=…`,
//! `Context::xray_trace_id`, also `_X_AMZN_TRACE_ID`) and the daemon's
//! address (`AWS_XRAY_DAEMON_ADDRESS`, `host:port` over UDP). Lambda itself
//! records the function's segment, whose id is the header's `Parent`; the
//! bridge adds subsegments under it. Sending is fire and forget: one
//! non-blocking UDP datagram per stage, and a failure is counted and logged
//! at debug, never the invocation's failure.

pub mod log;
mod segment;

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};

pub use segment::{new_id, subsegment_document, Subsegment};

use crate::pipeline::Summary;

/// The environment variable Lambda sets to the daemon's `host:port`.
pub const DAEMON_ADDRESS_VAR: &str = "AWS_XRAY_DAEMON_ADDRESS";

/// Datagrams that could not be sent (no daemon address, socket errors),
/// for tests and debugging; a process-wide count.
static SEND_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Subsegments that could not be sent since the process started.
pub fn send_errors() -> u64 {
    SEND_ERRORS.load(Ordering::Relaxed)
}

/// An invocation's trace header, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceHeader {
    /// The whole header as Lambda sent it (what the logs carry).
    pub raw: String,
    /// `1-<8 hex epoch seconds>-<24 hex>`.
    pub root: String,
    /// The id of the segment Lambda records for the function.
    pub parent: Option<String>,
    /// `Sampled=1`: X-Ray keeps this trace, so subsegments are worth sending.
    pub sampled: bool,
}

impl TraceHeader {
    /// `Root=1-…;Parent=…;Sampled=1[;Lineage=…]`, keys in any order. `None`
    /// without a `Root`.
    pub fn parse(header: &str) -> Option<TraceHeader> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = false;
        for part in header.split(';') {
            let Some((key, value)) = part.trim().split_once('=') else {
                continue;
            };
            match key.trim() {
                "Root" => root = Some(value.trim().to_string()),
                "Parent" => parent = Some(value.trim().to_string()),
                "Sampled" => sampled = value.trim() == "1",
                _ => {}
            }
        }
        Some(TraceHeader {
            raw: header.to_string(),
            root: root.filter(|r| !r.is_empty())?,
            parent: parent.filter(|p| !p.is_empty()),
            sampled,
        })
    }
}

/// The span an invocation runs in: its field `xray_trace_id` goes into
/// every log line written inside it (see [`log::FlatJson`]).
///
/// At ERROR level so that it is enabled whenever any line is: a span the
/// log filter disables records no fields, and a `TICKBRIDGE_LOG=warn`
/// would otherwise drop the trace id from exactly the lines that matter.
pub fn invocation_span(trace_header: Option<&str>) -> tracing::Span {
    let span = tracing::error_span!("invocation", xray_trace_id = tracing::field::Empty);
    if let Some(h) = trace_header.filter(|h| !h.is_empty()) {
        span.record("xray_trace_id", h);
    }
    span
}

/// The daemon's address from `AWS_XRAY_DAEMON_ADDRESS`: `host:port`, or the
/// SDKs' longer `tcp:host:port udp:host:port` form (the UDP one is used).
pub fn daemon_address_from_env() -> Option<SocketAddr> {
    let raw = std::env::var(DAEMON_ADDRESS_VAR).ok()?;
    parse_daemon_address(&raw)
}

fn parse_daemon_address(raw: &str) -> Option<SocketAddr> {
    let raw = raw.trim();
    let udp = raw
        .split_whitespace()
        .find_map(|part| part.strip_prefix("udp:"))
        .unwrap_or(raw);
    if let Ok(addr) = udp.parse() {
        return Some(addr);
    }
    // Lambda gives an IP; a name (`localhost:2000` in local tools) is
    // resolved once per invocation.
    udp.to_socket_addrs().ok()?.next()
}

/// The stages of a batch as subsegments, in pipeline order; a stage that
/// did not run (no start time) is left out.
pub fn stage_subsegments(summary: &Summary) -> Vec<Subsegment> {
    let start = &summary.stage_start_ms;
    let took = &summary.stage_ms;
    [
        ("parse", start.parse, took.parse),
        ("dedupe", start.dedupe, took.dedupe),
        ("decode", start.decode, took.decode),
        ("quarantine", start.quarantine, took.quarantine),
        ("publish", start.publish, took.publish),
        ("commit", start.commit, took.commit),
    ]
    .into_iter()
    .filter(|(_, start_ms, _)| *start_ms > 0.0)
    .map(|(name, start_ms, ms)| Subsegment {
        name,
        start_time: start_ms / 1000.0,
        end_time: (start_ms + ms.max(0.0)) / 1000.0,
    })
    .collect()
}

/// Sends one subsegment per stage of `summary` to the daemon at `daemon`,
/// when the trace is sampled. Returns how many datagrams went out.
pub fn send_stages_to(header: &TraceHeader, summary: &Summary, daemon: SocketAddr) -> usize {
    if !header.sampled {
        return 0;
    }
    let Some(parent) = header.parent.as_deref() else {
        // Without the function segment's id a subsegment has nowhere to go.
        return 0;
    };
    let bind: SocketAddr = if daemon.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = match UdpSocket::bind(bind).and_then(|s| s.set_nonblocking(true).map(|_| s)) {
        Ok(s) => s,
        Err(e) => {
            SEND_ERRORS.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %e, "x-ray: no UDP socket; subsegments not sent");
            return 0;
        }
    };
    let mut sent = 0;
    for sub in stage_subsegments(summary) {
        let doc = subsegment_document(&sub, &header.root, parent);
        match socket.send_to(doc.as_bytes(), daemon) {
            Ok(_) => sent += 1,
            Err(e) => {
                SEND_ERRORS.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(daemon = %daemon, stage = sub.name, error = %e, "x-ray: subsegment not sent");
            }
        }
    }
    sent
}

/// What the Lambda adapter calls after a batch: subsegments to the daemon
/// named by `AWS_XRAY_DAEMON_ADDRESS`, if the header says the trace is
/// sampled. Nothing happens without a header or a daemon address.
pub fn send_stages(trace_header: Option<&str>, summary: &Summary) -> usize {
    let Some(header) = trace_header.and_then(TraceHeader::parse) else {
        return 0;
    };
    if !header.sampled {
        return 0;
    }
    match daemon_address_from_env() {
        Some(daemon) => send_stages_to(&header, summary, daemon),
        None => {
            SEND_ERRORS.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                "x-ray: sampled trace but {DAEMON_ADDRESS_VAR} is unset or not host:port"
            );
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_in_any_order() {
        let h = TraceHeader::parse(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        assert_eq!(h.root, "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(h.parent.as_deref(), Some("53995c3f42cd8ad8"));
        assert!(h.sampled);
        let h = TraceHeader::parse("Sampled=0; Parent=aa; Root=1-a-b;Lineage=x:1").unwrap();
        assert_eq!((h.root.as_str(), h.sampled), ("1-a-b", false));
        assert_eq!(TraceHeader::parse("Parent=aa;Sampled=1"), None);
        assert_eq!(TraceHeader::parse(""), None);
    }

    #[test]
    fn daemon_addresses_in_both_forms() {
        let want: SocketAddr = "169.254.79.129:2000".parse().unwrap();
        assert_eq!(parse_daemon_address("169.254.79.129:2000"), Some(want));
        assert_eq!(
            parse_daemon_address("tcp:127.0.0.1:2001 udp:169.254.79.129:2000"),
            Some(want)
        );
        assert_eq!(parse_daemon_address("nonsense"), None);
    }

    #[test]
    fn unsampled_traces_send_nothing() {
        let mut s = Summary::default();
        s.stage_start_ms.dedupe = 1.0e12;
        let h = TraceHeader::parse("Root=1-a-b;Parent=cc;Sampled=0").unwrap();
        let nowhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(send_stages_to(&h, &s, nowhere), 0);
    }

    #[test]
    fn stages_that_did_not_run_are_left_out() {
        let mut s = Summary::default();
        s.stage_start_ms.dedupe = 1_000.0;
        s.stage_ms.dedupe = 500.0;
        let subs = stage_subsegments(&s);
        assert_eq!(subs.len(), 1);
        assert_eq!(
            (subs[0].name, subs[0].start_time, subs[0].end_time),
            ("dedupe", 1.0, 1.5)
        );
    }
}
