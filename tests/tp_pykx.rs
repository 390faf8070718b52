//! PyKX (unlicensed, `no_ctx=True`) as the feed and as the subscriber of
//! `tickbridge tp`. These fail, never skip, when PyKX is missing.

mod tp_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use tickbridge::kdb::{Vector, K};
use tp_support::common::{python, repo_root, run_python};
use tp_support::{upd, Client, Tp};

fn verdict(out: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().expect("a verdict line")).expect("JSON verdict")
}

#[test]
fn pykx_feed_publishes_both_shapes_and_sees_errors() {
    let dir = tempfile::tempdir().unwrap();
    let tp = Tp::start(Some(dir.path()), &[]);
    let out = run_python("tp_feed.py", &[&tp.port.to_string()], None);
    let v = verdict(&out);
    assert_eq!(v["ok"], true, "{v:#}");
    // and the stand-in agrees, over our own client
    let mut c = Client::connect(tp.port);
    assert_eq!(c.query(".u.i"), K::Long(5));
    assert_eq!(c.query("count trade"), K::Long(5));
}

#[test]
fn pykx_subscriber_receives_its_filtered_tables() {
    let tp = Tp::start(None, &[]);
    let mut child = python()
        .arg(repo_root().join("tests/py/tp_sub.py"))
        .args([&tp.port.to_string(), "trade", "AAPL,IBM", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python starts");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let mut child = Kill(child);
    let mut lines = BufReader::new(stdout).lines();
    let ready: serde_json::Value =
        serde_json::from_str(&lines.next().expect("ready line").unwrap()).unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["table"], "trade");
    assert_eq!(
        ready["columns"],
        serde_json::json!(["time", "sym", "price", "size", "side"])
    );
    assert_eq!(ready["empty_rows"], 0);

    let mut feed = Client::connect(tp.port);
    let cols = |syms: &[&str], prices: &[f64]| {
        let n = syms.len();
        K::list(vec![
            K::vector(Vector::Symbol(syms.iter().map(|s| s.to_string()).collect())),
            K::vector(Vector::Float(prices.to_vec())),
            K::vector(Vector::Long(vec![1; n])),
            K::vector(Vector::Char(vec![b'B'; n])),
        ])
    };
    feed.sync(&upd(
        K::sym(".u.upd"),
        "trade",
        cols(&["AAPL", "MSFT", "IBM"], &[1.0, 2.0, 3.0]),
    ));
    feed.sync(&upd(K::sym(".u.upd"), "trade", cols(&["MSFT"], &[4.0])));
    let quote = K::list(vec![
        K::sym("AAPL"),
        K::Float(1.0),
        K::Float(2.0),
        K::Long(1),
        K::Long(2),
    ]);
    feed.sync(&upd(K::sym(".u.upd"), "quote", quote));
    feed.sync(&upd(K::string(".u.upd"), "trade", cols(&["AAPL"], &[5.0])));

    let got: serde_json::Value =
        serde_json::from_str(&lines.next().expect("received line").unwrap()).unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success());
    assert_eq!(
        got["received"],
        serde_json::json!([
            {"fn": "upd", "table": "trade", "sym": ["AAPL", "IBM"], "price": [1.0, 3.0], "time_positive": true},
            {"fn": "upd", "table": "trade", "sym": ["AAPL"], "price": [5.0], "time_positive": true}
        ])
    );
}
