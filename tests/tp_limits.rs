//! What a hostile or careless client can make `tickbridge tp` hold, measured
//! on the real binary from its `/proc/<pid>/status`: subscribers that never
//! read, sync answers never read, idle connections, decompression bombs,
//! too many connections, half-sent messages.

mod tp_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tickbridge::kdb::compress::compress;
use tickbridge::kdb::{encode_message, MsgType, Vector, K};
use tp_support::{upd, Client, Tp};

const MB: f64 = 1024.0 * 1024.0;

fn trade_columns(rows: usize) -> K {
    K::list(vec![
        K::vector(Vector::Symbol(vec!["AAPL".into(); rows])),
        K::vector(Vector::Float((0..rows).map(|i| i as f64 / 8.0).collect())),
        K::vector(Vector::Long((0..rows as i64).collect())),
        K::vector(Vector::Char(vec![b'B'; rows])),
    ])
}

/// Reads until the server closes the socket; false if it stays open.
fn closed_by_server(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut sink = vec![0u8; 1 << 16];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// A table of `sym` and 100 float columns: stored about as large as sent,
/// so the table's growth does not hide the queues' growth.
fn wide_schema_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut cols = vec![
        serde_json::json!({"name": "time", "type": "timespan"}),
        serde_json::json!({"name": "sym", "type": "symbol"}),
    ];
    cols.extend((0..100).map(|i| serde_json::json!({"name": format!("c{i}"), "type": "float"})));
    let schema = serde_json::json!({"table": "wide", "columns": cols});
    std::fs::write(dir.path().join("wide.json"), schema.to_string()).unwrap();
    dir
}

fn wide_update(rows: usize, salt: usize) -> K {
    let mut cols = vec![K::vector(Vector::Symbol(vec!["A".into(); rows]))];
    cols.extend((0..100).map(|c| {
        K::vector(Vector::Float(
            (0..rows).map(|r| (salt * 7 + c * 13 + r) as f64).collect(),
        ))
    }));
    upd(K::sym(".u.upd"), "wide", K::list(cols))
}

#[test]
fn subscribers_that_never_read_are_dropped_at_their_bytes_bound() {
    let dir = wide_schema_dir();
    let queue = 4 << 20;
    let tp = Tp::start_logged(&[
        "--schemas",
        dir.path().to_str().unwrap(),
        "--queue-bytes",
        &queue.to_string(),
    ]);
    let base = tp.rss_mb();
    // Filtered subscribers each get their own copy of every publication, so
    // under a message-count bound each would pin all that was sent.
    let stuck = 8;
    let mut subs: Vec<Client> = (0..stuck)
        .map(|_| {
            let mut c = Client::connect(tp.port);
            let filter = K::vector(Vector::Symbol(vec!["A".into(), "B".into()]));
            let r = c.sync(&K::list(vec![K::sym(".u.sub"), K::sym("wide"), filter]));
            assert!(matches!(r, K::List(..)), "{r:?}");
            c
        })
        .collect();

    let mut feed = Client::connect(tp.port);
    let (updates, rows) = (200, 250);
    let mut sent = 0usize;
    for u in 0..updates {
        let msg = encode_message(&wide_update(rows, u), MsgType::Async);
        sent += msg.len();
        feed.send_raw(&msg);
    }
    assert_eq!(feed.query(""), K::Identity, "the feed is never held up");
    assert_eq!(feed.query("count wide"), K::Long((updates * rows) as i64));

    assert!(
        tp.wait_for_log("subscriber too slow", stuck, Duration::from_secs(30)),
        "every stuck subscriber dropped: {}",
        tp.log()
    );
    let log = tp.log();
    for s in &mut subs {
        // The log line names the connection by its address.
        let me = s.stream.local_addr().unwrap().to_string();
        assert!(
            log.lines()
                .any(|l| l.contains("subscriber too slow") && l.contains(&me)),
            "a drop line names {me}: {log}"
        );
        assert!(closed_by_server(&mut s.stream, Duration::from_secs(10)));
    }
    let sent_mb = sent as f64 / MB;
    let growth = tp.peak_mb() - base;
    eprintln!(
        "sent {sent_mb:.1} MB to {stuck} stuck subscribers: peak RSS grew {growth:.1} MB (queue bound {} MB each)",
        queue >> 20
    );
    // The table itself holds what was sent (twice at worst while a column
    // grows); the stuck subscribers may add their bounds. Without a bytes
    // bound they would pin 8 copies of everything sent.
    let bound = 2.0 * sent_mb + stuck as f64 * (queue as f64 / MB) + 48.0;
    assert!(
        growth < bound,
        "peak RSS grew {growth:.1} MB, over {bound:.1}"
    );
    assert!(
        growth < stuck as f64 * sent_mb,
        "less than the unbounded cost"
    );
}

#[test]
fn a_client_that_never_reads_its_answers_is_dropped() {
    let tp = Tp::start_logged(&[]); // default --queue-bytes: 64 MiB
    let mut feed = Client::connect(tp.port);
    let rows = 100_000;
    assert_eq!(
        feed.sync(&upd(K::sym(".u.upd"), "trade", trade_columns(rows))),
        K::Identity
    );
    let answer_mb = encode_message(
        &K::Table(match feed.query("trade") {
            K::Table(t) => t,
            other => panic!("{other:?}"),
        }),
        MsgType::Response,
    )
    .len() as f64
        / MB;
    let base = tp.rss_mb().max(tp.peak_mb());

    let mut hog = Client::connect(tp.port);
    let queries = 200;
    for _ in 0..queries {
        hog.send(&K::string("trade"), MsgType::Sync);
    }
    assert!(
        tp.wait_for_log("does not read its answers", 1, Duration::from_secs(60)),
        "dropped with a log line: {}",
        tp.log()
    );
    assert!(closed_by_server(&mut hog.stream, Duration::from_secs(20)));
    let growth = tp.peak_mb() - base;
    eprintln!(
        "{queries} unread answers of {answer_mb:.2} MB: peak RSS grew {growth:.1} MB (unbounded: {:.0} MB)",
        queries as f64 * answer_mb
    );
    assert!(growth < 64.0 + 48.0, "peak RSS grew {growth:.1} MB");
    // Others are served as before.
    assert_eq!(feed.query("count trade"), K::Long(rows as i64));
}

#[test]
fn idle_logged_in_connections_cost_little() {
    let tp = Tp::start(None, &["--max-connections", "600"]);
    // One connection first, so the runtime's own start-up is in the base.
    let mut first = Client::connect(tp.port);
    assert_eq!(first.query(""), K::Identity);
    let base = tp.rss_mb();
    let n = 500;
    let mut idle: Vec<Client> = (0..n).map(|_| Client::connect(tp.port)).collect();
    for c in &mut idle {
        // Used once, then idle.
        assert_eq!(c.query(""), K::Identity);
    }
    std::thread::sleep(Duration::from_millis(200));
    let growth = tp.rss_mb() - base;
    eprintln!("{n} idle logged-in connections: RSS grew {growth:.1} MB");
    assert!(
        growth < 40.0,
        "RSS grew {growth:.1} MB for {n} idle connections"
    );
    // They are all still served.
    for c in idle.iter_mut().step_by(50) {
        assert_eq!(c.query(".u.i"), K::Long(0));
    }
}

/// A compressed message whose stream is real but whose claimed
/// uncompressed length is `claim`.
fn bomb(claim: u32) -> Vec<u8> {
    // Blocks of 16 random letters and 48 spaces: compresses to about a
    // third, so the stream is megabytes, as a real bomb's would be.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let text: Vec<u8> = (0..24usize << 20)
        .map(|i| {
            if i % 64 < 16 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % 26) as u8 + b'a'
            } else {
                b' '
            }
        })
        .collect();
    let plain = encode_message(&K::vector(Vector::Char(text)), MsgType::Sync);
    let mut packed = compress(&plain).expect("compresses to under half");
    packed[8..12].copy_from_slice(&claim.to_le_bytes());
    packed
}

#[test]
fn a_decompression_bomb_is_refused_before_allocating() {
    let tp = Tp::start_logged(&[]);
    let mut other = Client::connect(tp.port);
    assert_eq!(other.query(""), K::Identity);
    let packed = bomb(1 << 30);
    let base = tp.rss_mb().max(tp.peak_mb());
    let mut attacker = Client::connect(tp.port);
    attacker.send_raw(&packed);
    let (t, answer) = attacker.read().expect("an answer");
    assert_eq!((t, answer), (MsgType::Response, K::Error("limit".into())));
    assert!(tp.log().contains("would pass --max-message-bytes"));
    let growth = tp.peak_mb() - base;
    eprintln!(
        "bomb of {:.1} MB claiming 1 GiB: peak RSS grew {growth:.1} MB",
        packed.len() as f64 / MB
    );
    // The compressed frame itself is read; nothing near the claim.
    assert!(
        growth < packed.len() as f64 / MB * 2.0 + 32.0,
        "peak RSS grew {growth:.1} MB"
    );
    // The frame was whole, so the stream is intact: the attacker's
    // connection and everyone else's go on.
    assert_eq!(attacker.query(""), K::Identity);
    assert_eq!(other.query("count trade"), K::Long(0));
}

#[test]
fn a_smaller_max_message_bytes_refuses_what_decompresses_past_it() {
    let tp = Tp::start(None, &["--max-message-bytes", "1048576"]);
    let mut c = Client::connect(tp.port);
    // Honest: 60,000 rows compress to under a megabyte but come to more.
    let plain = encode_message(
        &upd(K::sym(".u.upd"), "trade", trade_columns(60_000)),
        MsgType::Sync,
    );
    assert!(plain.len() > 1 << 20);
    let packed = compress(&plain).expect("compresses");
    assert!(packed.len() < 1 << 20);
    c.send_raw(&packed);
    assert_eq!(c.read().unwrap().1, K::Error("limit".into()));
    assert_eq!(c.query("count trade"), K::Long(0));
    // Under the limit once decompressed: taken.
    let small = compress(&encode_message(
        &upd(K::sym(".u.upd"), "trade", trade_columns(10_000)),
        MsgType::Sync,
    ))
    .expect("compresses");
    c.send_raw(&small);
    assert_eq!(c.read().unwrap().1, K::Identity);
    assert_eq!(c.query("count trade"), K::Long(10_000));
}

#[test]
fn connections_beyond_the_cap_are_closed() {
    let tp = Tp::start_logged(&["--max-connections", "3"]);
    // Retried: the probe that saw the port open holds a place until the
    // server has seen it go.
    let mut held: Vec<Client> = (0..3).map(|_| login_retrying(tp.port)).collect();
    assert!(
        Client::login(tp.port, "test:").is_none(),
        "a fourth is closed"
    );
    assert!(tp.wait_for_log("already at --max-connections", 1, Duration::from_secs(5)));
    for c in &mut held {
        assert_eq!(c.query(""), K::Identity, "the others are untouched");
    }
    // A place given back is taken again.
    held.pop();
    let mut again = login_retrying(tp.port);
    assert_eq!(again.query(""), K::Identity);
}

fn login_retrying(port: u16) -> Client {
    let start = Instant::now();
    loop {
        if let Some(c) = Client::login(port, "test:") {
            return c;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no place freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_half_sent_message_is_closed_after_the_read_timeout() {
    let tp = Tp::start_logged(&["--read-timeout-ms", "400"]);
    let chaser = encode_message(&K::string(""), MsgType::Sync);

    // A header cut short, and a header with half a body.
    let mut head_only = Client::connect(tp.port);
    let mut half_body = Client::connect(tp.port);
    let mut idle = Client::connect(tp.port);
    let mut slow = Client::connect(tp.port);
    let start = Instant::now();
    head_only.send_raw(&chaser[..5]);
    half_body.send_raw(&chaser[..chaser.len() - 2]);
    assert!(closed_by_server(
        &mut head_only.stream,
        Duration::from_secs(10)
    ));
    assert!(closed_by_server(
        &mut half_body.stream,
        Duration::from_secs(10)
    ));
    assert!(
        start.elapsed() >= Duration::from_millis(350),
        "not before the timeout: {:?}",
        start.elapsed()
    );
    assert!(tp.wait_for_log("message not finished in time", 2, Duration::from_secs(5)));

    // Idle between messages for longer than the timeout: fine.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(idle.query(""), K::Identity);
    // Slow but within the timeout: fine.
    slow.send_raw(&chaser[..5]);
    std::thread::sleep(Duration::from_millis(100));
    slow.stream.write_all(&chaser[5..]).unwrap();
    assert_eq!(slow.read().unwrap().1, K::Identity);
}
