//! `tickbridge schema diff` and `preflight::fetch`/`compare` against the
//! real stand-in binary: one started with the repo schemas matches, one
//! started with a drifted copy gives the exact finding lines.

mod tp_support;

use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};
use tickbridge::kdb::client::{ClientConfig, Publisher, RetryPolicy, Target};
use tickbridge::preflight;
use tp_support::common::{free_port, repo_root};
use tp_support::{tickbridge, Tp};

fn diff(args: &[&str]) -> Output {
    tickbridge()
        .args(["schema", "diff"])
        .args(args)
        .env("TICKBRIDGE_LOG", "error")
        .output()
        .expect("tickbridge runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The repo schemas, changed as a tickerplant's schema file might drift:
/// trade.price a real and an extra venue column, quote without asize,
/// alltypes with h and i swapped, no optinput table.
fn drifted_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = repo_root().join("schemas");
    let edit = |file: &str, f: &dyn Fn(&mut Vec<Value>)| {
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(src.join(file)).unwrap()).unwrap();
        let cols = v["columns"].as_array_mut().unwrap();
        f(cols);
        std::fs::write(dir.path().join(file), v.to_string()).unwrap();
    };
    let find = |cols: &Vec<Value>, name: &str| cols.iter().position(|c| c["name"] == name).unwrap();
    edit("trade.json", &|cols| {
        let p = find(cols, "price");
        cols[p]["type"] = json!("real");
        cols.push(json!({"name": "venue", "type": "symbol", "nullable": true}));
    });
    edit("quote.json", &|cols| {
        let p = find(cols, "asize");
        cols.remove(p);
    });
    edit("all_types.json", &|cols| {
        let (h, i) = (find(cols, "h"), find(cols, "i"));
        cols.swap(h, i);
    });
    dir
}

const DRIFT_FINDINGS: &[&str] = &[
    "table alltypes, column h: order differs: schema column 6, tickerplant column 7; updates are positional",
    "table alltypes, column i: order differs: schema column 7, tickerplant column 6; updates are positional",
    "table optinput: missing on the tickerplant (not in tables[])",
    "table quote, column asize: missing on the tickerplant (schema long 'j'); updates would carry one column too many",
    "table trade, column price: type mismatch: schema float 'f' vs tickerplant real 'e'",
    "table trade, column venue: extra on the tickerplant (tickerplant symbol 's'), not in the schema; updates would carry one column too few",
];

#[test]
fn a_matching_tickerplant_exits_zero() {
    let tp = Tp::start(None, &[]);
    let addr = format!("127.0.0.1:{}", tp.port);
    // Embedded schemas (the default), then the directory explicitly.
    for extra in [&[][..], &["--schemas", "schemas"][..]] {
        let out = tickbridge()
            .args(["schema", "diff", &addr])
            .args(extra)
            .current_dir(repo_root())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "matches: 4 tables\n");
    }
}

#[test]
fn a_drifted_tickerplant_gives_every_finding_and_exits_one() {
    let drifted = drifted_dir();
    let tp = Tp::start(None, &["--schemas", drifted.path().to_str().unwrap()]);
    let addr = format!("127.0.0.1:{}", tp.port);
    let out = diff(&[&addr]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().collect::<Vec<_>>(), DRIFT_FINDINGS);

    // Against its own schemas the same tickerplant matches.
    let out = diff(&[&addr, "--schemas", drifted.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "matches: 3 tables\n");

    // A missing update function is one more line.
    let out = diff(&[&addr, "--upd-func", ".u.nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout).lines().last(),
        Some("update function .u.nope: missing on the tickerplant (type .u.nope failed with '.u.nope)")
    );
    let out = diff(&[&addr, "--upd-func", ".u.i"]);
    assert_eq!(
        text(&out.stdout).lines().last(),
        Some("update function .u.i: not a function on the tickerplant (type .u.i is -7h)")
    );
}

#[test]
fn the_library_gives_the_same_findings_over_a_publisher() {
    let drifted = drifted_dir();
    let tp = Tp::start(None, &["--schemas", drifted.path().to_str().unwrap()]);
    let schemas = tickbridge::schema::embedded::schemas().unwrap();
    let names: Vec<&str> = schemas.iter().map(|s| s.table.as_str()).collect();
    let target = Target::parse(&format!("127.0.0.1:{}", tp.port)).unwrap();
    let mut publisher = Publisher::new(ClientConfig::new(target), RetryPolicy::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let shape = rt
        .block_on(preflight::fetch(&mut publisher, &names, ".u.upd"))
        .expect("fetch");
    assert_eq!(shape.tables, ["alltypes", "quote", "trade"]);
    assert_eq!(shape.upd, preflight::UpdFunc::Function { type_code: 100 });
    let sym = &shape.columns["trade"][1];
    assert_eq!(
        (sym.name.as_str(), sym.type_char, sym.attr.as_str()),
        ("sym", 's', "g")
    );
    let findings = preflight::compare(&schemas, &shape, ".u.upd");
    let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert_eq!(lines, DRIFT_FINDINGS);
    // Each finding names its table (and column, but for a missing table).
    for f in &findings {
        assert!(f.table.is_some());
        assert_eq!(f.column.is_none(), f.what == preflight::What::MissingTable);
    }
}

#[test]
fn cannot_tell_exits_two() {
    // Nobody listening.
    let out = diff(&[
        &format!("127.0.0.1:{}", free_port()),
        "--timeout-ms",
        "2000",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot reach"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    let tp = Tp::start(None, &[]);
    let addr = format!("127.0.0.1:{}", tp.port);
    // Not a q name: never sent.
    let out = diff(&[&addr, "--upd-func", ".u.upd;exit 0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not a q name"),
        "{}",
        text(&out.stderr)
    );
    // Schemas that do not load.
    let missing = Path::new("/nonexistent/tickbridge-schemas");
    let out = diff(&[&addr, "--schemas", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/tickbridge-schemas"));
    // A usage error (no address).
    assert_eq!(diff(&[]).status.code(), Some(2));
}
