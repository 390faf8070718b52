//! `tickbridge tp` over raw sockets with our own codec: both `.u.upd`
//! shapes, refusals, subscriptions, bad input, users, Unix sockets.

mod tp_support;

use std::io::Write;
use std::time::Duration;

use tickbridge::kdb::{MsgType, Table, Vector, K};
use tp_support::{upd, Client, Tp};

fn trade_columns(syms: &[&str], prices: &[f64]) -> K {
    let n = syms.len();
    K::list(vec![
        K::vector(Vector::Symbol(syms.iter().map(|s| s.to_string()).collect())),
        K::vector(Vector::Float(prices.to_vec())),
        K::vector(Vector::Long((0..n as i64).map(|i| 100 * (i + 1)).collect())),
        K::vector(Vector::Char(vec![b'B'; n])),
    ])
}

fn trade_row(sym: &str, price: f64) -> K {
    K::list(vec![
        K::sym(sym),
        K::Float(price),
        K::Long(7),
        K::Char(b'S'),
    ])
}

fn column<'a>(t: &'a Table, name: &str) -> &'a Vector {
    match t.column(name) {
        Some(K::Vector(_, v)) => v,
        other => panic!("column {name}: {other:?}"),
    }
}

#[test]
fn upd_in_both_shapes_by_symbol_and_string_sync_and_async() {
    let tp = Tp::start(None, &[]);
    let mut c = Client::connect(tp.port);
    let by_sym = K::sym(".u.upd");
    let by_str = K::string(".u.upd");
    // columns, by symbol, sync
    let r = c.sync(&upd(
        by_sym.clone(),
        "trade",
        trade_columns(&["A", "B"], &[1.0, 2.0]),
    ));
    assert_eq!(r, K::Identity);
    // one row of atoms, by string, async
    c.send(
        &upd(by_str.clone(), "trade", trade_row("C", 3.0)),
        MsgType::Async,
    );
    // one row with its own time, by symbol, async
    let mut timed = vec![K::Timespan(123)];
    if let K::List(_, items) = trade_row("D", 4.0) {
        timed.extend(items);
    }
    c.send(&upd(by_sym, "trade", K::list(timed)), MsgType::Async);
    // columns, by string, sync
    assert_eq!(
        c.sync(&upd(by_str, "trade", trade_columns(&["E"], &[5.0]))),
        K::Identity
    );
    assert_eq!(c.query(""), K::Identity);
    assert_eq!(c.sync(&K::Identity), K::Identity);
    assert_eq!(c.query(".u.i"), K::Long(4));
    assert_eq!(c.query("count trade"), K::Long(5));
    assert_eq!(c.query("count quote"), K::Long(0));
    let K::Table(t) = c.query("trade") else {
        panic!("trade is a table")
    };
    assert_eq!(t.names, ["time", "sym", "price", "size", "side"]);
    assert_eq!(
        column(&t, "sym"),
        &Vector::Symbol(["A", "B", "C", "D", "E"].map(String::from).to_vec())
    );
    assert_eq!(
        column(&t, "price"),
        &Vector::Float(vec![1.0, 2.0, 3.0, 4.0, 5.0])
    );
    let Vector::Timespan(times) = column(&t, "time") else {
        panic!("time is a timespan")
    };
    assert_eq!(times[3], 123, "a given time is kept");
    assert_eq!(times[0], times[1], "one stamp per update");
    for &i in &[0, 2, 4] {
        assert!(
            times[i] > 0 && times[i] < 86_400_000_000_000,
            "stamped with the time of day"
        );
    }
    assert_eq!(
        c.query("tables[]"),
        K::vector(Vector::Symbol(schema_tables()))
    );
    assert_eq!(c.query("select from trade"), K::Error("nyi".into()));
}

#[test]
fn wrong_types_lengths_and_tables_are_refused_and_the_connection_kept() {
    let tp = Tp::start(None, &[]);
    let mut c = Client::connect(tp.port);
    let f = || K::sym(".u.upd");
    let wrong_type = K::list(vec![K::sym("A"), K::Long(1), K::Long(7), K::Char(b'S')]);
    assert_eq!(
        c.sync(&upd(f(), "trade", wrong_type.clone())),
        K::Error("type".into())
    );
    let ragged = K::list(vec![
        K::vector(Vector::Symbol(vec!["A".into(), "B".into()])),
        K::vector(Vector::Float(vec![1.0])),
        K::vector(Vector::Long(vec![1, 2])),
        K::vector(Vector::Char(b"BS".to_vec())),
    ]);
    assert_eq!(
        c.sync(&upd(f(), "trade", ragged)),
        K::Error("length".into())
    );
    let short = K::list(vec![K::sym("A"), K::Float(1.0)]);
    assert_eq!(c.sync(&upd(f(), "trade", short)), K::Error("length".into()));
    assert_eq!(
        c.sync(&upd(f(), "nosuch", trade_row("A", 1.0))),
        K::Error("nosuch".into())
    );
    // async refusals: nothing comes back, the connection stays usable
    c.send(&upd(f(), "trade", wrong_type), MsgType::Async);
    c.send(&upd(f(), "nosuch", trade_row("A", 1.0)), MsgType::Async);
    c.send(&upd(f(), "trade", trade_row("A", 1.0)), MsgType::Async);
    assert_eq!(c.query(""), K::Identity);
    assert_eq!(c.query(".u.i"), K::Long(1));
    assert_eq!(c.query("count trade"), K::Long(1));
    assert_eq!(c.query("count nosuch"), K::Error("nosuch".into()));
    let unknown = K::list(vec![K::sym("exit"), K::Long(0)]);
    assert_eq!(c.sync(&unknown), K::Error("nyi".into()));
    assert_eq!(
        c.sync(&K::list(vec![K::sym(".u.upd"), K::sym("trade")])),
        K::Error("rank".into())
    );
}

#[test]
fn subscribers_get_their_tables_filtered_by_sym() {
    let tp = Tp::start(None, &[]);
    let mut all = Client::connect(tp.port);
    let mut aapl = Client::connect(tp.port);
    let mut leaver = Client::connect(tp.port);
    let mut feed = Client::connect(tp.port);

    let answer = all.sync(&K::list(vec![K::sym(".u.sub"), K::sym(""), K::sym("")]));
    let K::List(_, pairs) = answer else {
        panic!("a list of (table; empty table) pairs")
    };
    assert_eq!(pairs.len(), schema_tables().len());
    let answer = aapl.sync(&K::list(vec![
        K::sym(".u.sub"),
        K::sym("trade"),
        K::vector(Vector::Symbol(vec!["AAPL".into()])),
    ]));
    let K::List(_, pair) = answer else {
        panic!("(table; empty table)")
    };
    assert_eq!(pair[0], K::sym("trade"));
    let K::Table(empty) = &pair[1] else {
        panic!("an empty table")
    };
    assert_eq!(empty.row_count(), 0);
    assert_eq!(empty.names, ["time", "sym", "price", "size", "side"]);
    assert!(matches!(
        empty.column("sym"),
        Some(K::Vector(_, Vector::Symbol(_)))
    ));
    leaver.sync(&K::list(vec![
        K::sym(".u.sub"),
        K::sym("trade"),
        K::sym(""),
    ]));
    drop(leaver);

    feed.sync(&upd(
        K::sym(".u.upd"),
        "trade",
        trade_columns(&["AAPL", "MSFT", "AAPL"], &[1.0, 2.0, 3.0]),
    ));
    feed.sync(&upd(
        K::sym(".u.upd"),
        "trade",
        trade_columns(&["MSFT"], &[4.0]),
    ));
    feed.sync(&upd(K::string(".u.upd"), "trade", trade_row("AAPL", 5.0)));
    let quote = K::list(vec![
        K::sym("AAPL"),
        K::Float(1.0),
        K::Float(2.0),
        K::Long(1),
        K::Long(2),
    ]);
    feed.sync(&upd(K::sym(".u.upd"), "quote", quote));

    let expect_upd = |c: &mut Client| -> (String, Table) {
        let (t, msg) = c.read().expect("a publication");
        assert_eq!(t, MsgType::Async);
        let K::List(_, mut items) = msg else {
            panic!("(`upd; t; table)")
        };
        assert_eq!(items[0], K::sym("upd"));
        let K::Table(table) = items.pop().unwrap() else {
            panic!("a table")
        };
        (items[1].as_text().unwrap(), table)
    };
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (name, t) = expect_upd(&mut all);
        seen.push((name, t.row_count()));
    }
    assert_eq!(
        seen,
        [
            ("trade".into(), 3),
            ("trade".into(), 1),
            ("trade".into(), 1),
            ("quote".into(), 1)
        ]
    );
    let (name, t) = expect_upd(&mut aapl);
    assert_eq!(name, "trade");
    assert_eq!(
        column(&t, "sym"),
        &Vector::Symbol(vec!["AAPL".into(), "AAPL".into()])
    );
    assert_eq!(column(&t, "price"), &Vector::Float(vec![1.0, 3.0]));
    let (_, t) = expect_upd(&mut aapl);
    assert_eq!(column(&t, "price"), &Vector::Float(vec![5.0]));
    // nothing else for the AAPL trade subscriber: the next thing is its chaser
    assert_eq!(aapl.query(""), K::Identity);
    assert_eq!(feed.query(".u.i"), K::Long(4));
    assert_eq!(
        all.sync(&K::list(vec![K::sym(".u.sub"), K::sym("bad"), K::sym("")])),
        K::Error("bad".into())
    );
}

#[test]
fn bad_input_gets_an_error_and_others_keep_being_served() {
    let mut tp = Tp::start(None, &[]);
    let mut good = Client::connect(tp.port);

    // a well-framed message whose body is garbage: an error, connection kept
    let mut bad = Client::connect(tp.port);
    bad.send_raw(&[1, 1, 0, 0, 13, 0, 0, 0, 0x7f, 1, 2, 3, 4]);
    assert_eq!(bad.read().unwrap().1, K::Error("badmsg".into()));
    let mut truncated_list = vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 0xf9];
    let n = truncated_list.len() as u32;
    truncated_list[4..8].copy_from_slice(&n.to_le_bytes());
    bad.send_raw(&truncated_list);
    assert_eq!(bad.read().unwrap().1, K::Error("badmsg".into()));
    assert_eq!(bad.query(""), K::Identity);

    // a length of 4 GB: an error, then the connection is closed
    let mut huge = Client::connect(tp.port);
    huge.send_raw(&[1, 1, 0, 0, 0xf0, 0xff, 0xff, 0xff, 0]);
    assert_eq!(huge.read().unwrap().1, K::Error("limit".into()));
    assert!(huge.is_closed());

    // an unsupported header: an error, closed
    let mut weird = Client::connect(tp.port);
    weird.send_raw(&[0, 1, 0, 0, 9, 0, 0, 0, 0]);
    assert_eq!(weird.read().unwrap().1, K::Error("badmsg".into()));
    assert!(weird.is_closed());

    // a client that hangs up mid-message
    let mut quitter = Client::connect(tp.port);
    quitter.send_raw(&[1, 0, 0, 0, 100, 0, 0, 0, 0, 0]);
    drop(quitter);

    // a handshake that never ends with 0 and is too long
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", tp.port)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = raw.write_all(&[b'x'; 4096]);
    let mut b = [0u8; 1];
    assert!(matches!(
        std::io::Read::read(&mut raw, &mut b),
        Ok(0) | Err(_)
    ));

    assert!(tp.is_running());
    let r = good.sync(&upd(K::sym(".u.upd"), "trade", trade_row("A", 1.0)));
    assert_eq!(r, K::Identity);
    assert_eq!(good.query(".u.i"), K::Long(1));
}

#[test]
fn users_file_refuses_wrong_credentials_by_closing() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "alice:wonder\n").unwrap();
    let tp = Tp::start(None, &["--users", users.to_str().unwrap()]);
    assert!(Client::login(tp.port, "alice:wrong").is_none());
    assert!(Client::login(tp.port, "bob:wonder").is_none());
    assert!(Client::login(tp.port, "").is_none());
    let mut ok = Client::login(tp.port, "alice:wonder").expect("accepted");
    assert_eq!(ok.query(""), K::Identity);
}

#[cfg(unix)]
#[test]
fn unix_socket_serves_the_same() {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tp.sock");
    let tp = Tp::start(None, &["--unix", path.to_str().unwrap()]);
    let mut s = None;
    for _ in 0..100 {
        if let Ok(c) = UnixStream::connect(&path) {
            s = Some(c);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut s = s.expect("unix socket listening");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"u:p\x03\x00").unwrap();
    let mut cap = [0u8; 1];
    s.read_exact(&mut cap).unwrap();
    assert_eq!(cap, [3]);
    let msg = tickbridge::kdb::encode_message(&K::string(".u.i"), MsgType::Sync);
    s.write_all(&msg).unwrap();
    let mut answer = vec![0u8; 17];
    s.read_exact(&mut answer).unwrap();
    let (_, k) = tickbridge::kdb::decode_message(&answer).unwrap();
    assert_eq!(k, K::Long(0));
    drop(tp);
}

/// The tables of the repository's schema files, sorted as `tables[]` lists them.
fn schema_tables() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut names: Vec<String> = tickbridge::schema::load_dir(&dir)
        .expect("schemas load")
        .into_iter()
        .map(|s| s.table)
        .collect();
    names.sort();
    names
}
