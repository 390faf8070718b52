//! The stand-in run in-process through `tickbridge::tp::spawn`, as the
//! bridge demo does: subscribers that leave or fall behind are dropped
//! without stalling the feed; the connection cap and a torn journal are
//! reported by the handle.

mod tp_support;

use std::time::{Duration, Instant};

use tickbridge::kdb::{encode, MsgType, Vector, K};
use tickbridge::tp::journal::{file_for_day, LOG_HEADER};
use tickbridge::tp::{spawn, Now, RunningTp, TickerplantConfig};
use tp_support::{upd, Client};

fn schemas() -> Vec<tickbridge::schema::Schema> {
    tickbridge::schema::load_dir(&tp_support::common::repo_root().join("schemas")).unwrap()
}

fn trades(n: usize) -> K {
    K::list(vec![
        K::vector(Vector::Symbol(vec!["AAPL".into(); n])),
        K::vector(Vector::Float(vec![1.5; n])),
        K::vector(Vector::Long(vec![100; n])),
        K::vector(Vector::Char(vec![b'B'; n])),
    ])
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn start(config: TickerplantConfig) -> (tokio::runtime::Runtime, RunningTp) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tp = rt.block_on(spawn(config)).unwrap();
    (rt, tp)
}

#[test]
fn leaving_and_slow_subscribers_are_dropped_and_the_feed_goes_on() {
    let mut config = TickerplantConfig::new(schemas());
    // about four of the updates below
    config.queue_bytes = 600_000;
    let (rt, tp) = start(config);
    let port = tp.local_addr().port();
    assert_ne!(port, 0);
    let sub = |c: &mut Client| {
        let r = c.sync(&K::list(vec![
            K::sym(".u.sub"),
            K::sym("trade"),
            K::sym(""),
        ]));
        assert!(matches!(r, K::List(..)), "{r:?}");
    };

    let mut leaver = Client::connect(port);
    sub(&mut leaver);
    assert_eq!(tp.subscribers(), 1);
    drop(leaver);
    assert!(wait_until(Duration::from_secs(5), || tp.subscribers() == 0));

    // never reads: its socket and then its queue of 600 kB fill up
    let mut slow = Client::connect(port);
    sub(&mut slow);
    let mut feed = Client::connect(port);
    let updates = 200;
    for _ in 0..updates {
        let r = feed.sync(&upd(K::sym(".u.upd"), "trade", trades(5_000)));
        assert_eq!(r, K::Identity);
    }
    assert!(wait_until(Duration::from_secs(5), || tp.subscribers() == 0));
    assert_eq!(tp.msg_count(), updates);
    assert_eq!(tp.row_count("trade"), Some(updates as usize * 5_000));
    // the slow one was closed after what was already queued
    let mut got = 0;
    while let Some((MsgType::Async, _)) = slow.read() {
        got += 1;
    }
    assert!(got < updates, "dropped before the end: got {got}");
    rt.block_on(tp.shutdown());
}

#[test]
fn the_connection_cap_is_counted_by_the_handle() {
    let mut config = TickerplantConfig::new(schemas());
    config.max_connections = 2;
    let (rt, tp) = start(config);
    let port = tp.local_addr().port();
    // Retried: a connection just closed gives its place back asynchronously.
    let login = || {
        let start = Instant::now();
        loop {
            if let Some(c) = Client::login(port, "test:") {
                return c;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no place");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut a = login();
    let _b = login();
    assert_eq!(tp.connections(), 2);
    assert!(Client::login(port, "test:").is_none(), "a third is closed");
    assert!(tp.refused_connections() >= 1);
    assert_eq!(a.query(""), K::Identity);
    drop(a);
    assert!(wait_until(Duration::from_secs(5), || tp.connections() == 1));
    let mut c = login();
    assert_eq!(c.query(".u.i"), K::Long(0));
    rt.block_on(tp.shutdown());
}

#[test]
fn a_torn_journal_is_reported_by_the_handle() {
    let dir = tempfile::tempdir().unwrap();
    let file = file_for_day(dir.path(), Now::read().unix_day);
    let chunk = encode(&K::list(vec![K::sym("upd"), K::sym("trade"), {
        let K::List(_, mut cols) = trades(2) else {
            unreachable!()
        };
        cols.insert(0, K::vector(Vector::Timespan(vec![1, 2])));
        K::list(cols)
    }]));
    let mut log = LOG_HEADER.to_vec();
    log.extend_from_slice(&chunk);
    log.extend_from_slice(&chunk);
    log.extend_from_slice(&chunk[..chunk.len() / 2]);
    std::fs::write(&file, &log).unwrap();

    let mut config = TickerplantConfig::new(schemas());
    config.journal_dir = Some(dir.path().to_path_buf());
    let (rt, tp) = start(config);
    let scan = tp.journal_scan().expect("journaling").clone();
    assert_eq!(scan.chunks, 2);
    assert_eq!(scan.good_len, 8 + 2 * chunk.len());
    assert!(scan.corrupt.is_some());
    assert_eq!(tp.msg_count(), 2);
    assert_eq!(tp.row_count("trade"), Some(4));
    let table = tp.table("trade").unwrap();
    assert_eq!(
        table.column("time"),
        Some(&K::vector(Vector::Timespan(vec![1, 2, 1, 2])))
    );
    rt.block_on(tp.shutdown());
    assert_eq!(std::fs::read(&file).unwrap().len(), 8 + 2 * chunk.len());
}
