//! The stand-in's journal: kdb+ log format, read back on restart, torn
//! tails detected and cut, flushed on SIGTERM; `tickbridge tp replay`.

mod tp_support;

use std::time::Duration;

use tickbridge::kdb::{decode_prefix, MsgType, Vector, K};
use tickbridge::tp::journal::LOG_HEADER;
use tp_support::{journal_file, replay, upd, Client, Tp};

fn columns(n: usize, first_price: f64) -> K {
    K::list(vec![
        K::vector(Vector::Symbol(vec!["IBM".into(); n])),
        K::vector(Vector::Float(
            (0..n).map(|i| first_price + i as f64).collect(),
        )),
        K::vector(Vector::Long(vec![10; n])),
        K::vector(Vector::Char(vec![b'B'; n])),
    ])
}

fn summary(out: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().expect("a summary line");
    serde_json::from_str(last).expect("summary is JSON")
}

/// The chunks of a log file, decoded independently of the stand-in.
fn chunks(bytes: &[u8]) -> Vec<K> {
    assert_eq!(&bytes[..8], &LOG_HEADER);
    let mut pos = 8;
    let mut out = Vec::new();
    while pos < bytes.len() {
        let (k, used) = decode_prefix(&bytes[pos..]).expect("a whole chunk");
        out.push(k);
        pos += used;
    }
    out
}

#[test]
fn journal_is_read_back_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut tp = Tp::start(Some(dir.path()), &[]);
        let mut c = Client::connect(tp.port);
        for i in 0..3 {
            let r = c.sync(&upd(K::sym(".u.upd"), "trade", columns(2, i as f64 * 10.0)));
            assert_eq!(r, K::Identity);
        }
        let row = K::list(vec![
            K::sym("AAPL"),
            K::Float(1.0),
            K::Float(2.0),
            K::Long(3),
            K::Long(4),
        ]);
        c.send(&upd(K::string(".u.upd"), "quote", row), MsgType::Async);
        assert_eq!(c.query(".u.i"), K::Long(4));
        assert!(tp.terminate().success());
    }
    let file = journal_file(dir.path());
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.len() == 12 && name.starts_with("tp20"), "{name}");
    let bytes = std::fs::read(&file).unwrap();
    let logged = chunks(&bytes);
    assert_eq!(logged.len(), 4);
    // (`upd; `trade; x) with x stamped: time first, then the columns sent
    let K::List(_, items) = &logged[0] else {
        panic!("a list")
    };
    assert_eq!(items[0], K::sym("upd"));
    assert_eq!(items[1], K::sym("trade"));
    let K::List(_, x) = &items[2] else {
        panic!("columns")
    };
    assert_eq!(x.len(), 5);
    assert!(matches!(&x[0], K::Vector(_, Vector::Timespan(t)) if t.len() == 2));
    // the row of atoms stays a row in the journal, as tick.q writes it
    let K::List(_, items) = &logged[3] else {
        panic!("a list")
    };
    let K::List(_, x) = &items[2] else {
        panic!("a row")
    };
    assert!(matches!(x[0], K::Timespan(_)));
    assert_eq!(x[1], K::sym("AAPL"));

    let out = replay(&file, false);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 5);
    assert!(text.lines().next().unwrap().contains("\"rows\":2"));
    let s = summary(&out);
    assert_eq!(s["chunks"], 4);
    assert!(s["corrupt"].is_null());
    assert_eq!(summary(&replay(&file, true))["chunks"], 4);

    let tp = Tp::start(Some(dir.path()), &[]);
    let mut c = Client::connect(tp.port);
    assert_eq!(c.query(".u.i"), K::Long(4));
    assert_eq!(c.query("count trade"), K::Long(6));
    assert_eq!(c.query("count quote"), K::Long(1));
    c.sync(&upd(K::sym(".u.upd"), "trade", columns(1, 99.0)));
    assert_eq!(c.query(".u.i"), K::Long(5));
    assert_eq!(chunks(&std::fs::read(&file).unwrap()).len(), 5);
}

#[test]
fn a_truncated_journal_is_reported_and_cut_before_appending() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut tp = Tp::start(Some(dir.path()), &[]);
        let mut c = Client::connect(tp.port);
        for i in 0..5 {
            c.sync(&upd(K::sym(".u.upd"), "trade", columns(3, i as f64)));
        }
        assert!(tp.terminate().success());
    }
    let file = journal_file(dir.path());
    let whole = std::fs::read(&file).unwrap();
    std::fs::write(&file, &whole[..whole.len() - 7]).unwrap();

    let out = replay(&file, true);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a torn journal is not a success"
    );
    let s = summary(&out);
    assert_eq!(s["chunks"], 4);
    assert!(s["corrupt"].as_str().unwrap().contains("truncated"), "{s}");
    assert!((s["good_bytes"].as_u64().unwrap() as usize) < whole.len() - 7);

    let tp = Tp::start(Some(dir.path()), &[]);
    let mut c = Client::connect(tp.port);
    assert_eq!(c.query(".u.i"), K::Long(4));
    assert_eq!(c.query("count trade"), K::Long(12));
    c.sync(&upd(K::sym(".u.upd"), "trade", columns(1, 50.0)));
    drop(tp);
    let out = replay(&file, true);
    assert!(
        out.status.success(),
        "after the cut, new chunks follow good ones"
    );
    assert_eq!(summary(&out)["chunks"], 5);

    // garbage that is not a log at all is refused
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"hello world").unwrap();
    assert!(!replay(&junk, true).status.success());
}

#[test]
fn sigterm_flushes_buffered_journal_writes() {
    let dir = tempfile::tempdir().unwrap();
    // flush only on sync messages and at shutdown
    let mut tp = Tp::start(Some(dir.path()), &["--flush-ms", "600000"]);
    let mut c = Client::connect(tp.port);
    for i in 0..10 {
        c.send(
            &upd(K::sym(".u.upd"), "trade", columns(2, i as f64)),
            MsgType::Async,
        );
    }
    // `count t` is a read: it does not flush, so it shows when all ten
    // updates are in while they still sit in the journal's buffer
    let start = std::time::Instant::now();
    while c.query("count trade") != K::Long(20) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "updates processed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let file = journal_file(dir.path());
    assert_eq!(
        std::fs::read(&file).unwrap().len(),
        LOG_HEADER.len(),
        "async updates are still buffered"
    );
    assert!(tp.terminate().success());
    assert!(c.is_closed(), "clients are closed at shutdown");
    assert_eq!(chunks(&std::fs::read(&file).unwrap()).len(), 10);
}
