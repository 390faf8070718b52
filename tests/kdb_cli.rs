//! `tickbridge kdb decode` on the captured kdb+ vectors, and `tickbridge kdb
//! query` against a small server built on our codec.

mod common;

use std::process::{Command, Output};

use tickbridge::kdb::io::{read_frame, DEFAULT_MAX_FRAME};
use tickbridge::kdb::{decode_message, encode_message, MsgType, Vector, K};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// (expression, body hex) pairs from one vectors file.
fn pairs(file: &str) -> Vec<(String, String)> {
    let path = common::vectors_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set TICKBRIDGE_KDB_VECTORS)", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() >= 2 && lines.len().is_multiple_of(2),
        "{file}: pairs of lines"
    );
    lines
        .chunks(2)
        .map(|p| (p[0].to_string(), p[1].trim().to_string()))
        .collect()
}

fn tickbridge(args: &[&str]) -> Output {
    Command::new(common::tickbridge_exe())
        .args(args)
        .env("TICKBRIDGE_LOG", "warn")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .trim_end()
        .to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn hex_of(expr: &str) -> String {
    pairs("expressions.txt")
        .into_iter()
        .find(|(e, _)| e == expr)
        .unwrap_or_else(|| panic!("no vector for {expr}"))
        .1
}

/// A whole message: header (async, given compression flag) then body.
fn with_header(body_hex: &str, compressed: bool) -> String {
    let body = hex::decode(body_hex).unwrap();
    let mut msg = vec![1, 0, compressed as u8, 0];
    msg.extend_from_slice(&((body.len() + 8) as u32).to_le_bytes());
    msg.extend_from_slice(&body);
    hex::encode_upper(msg)
}

#[test]
fn every_vector_round_trips_through_hex_out() {
    let all = pairs("expressions.txt");
    assert!(all.len() > 50);
    for (expr, hex) in &all {
        let out = tickbridge(&["kdb", "decode", "--hex-out", hex]);
        assert_eq!(&stdout(&out), &hex.to_uppercase(), "{expr}");
    }
}

#[test]
fn renders_like_q() {
    let cases: &[(&str, &str)] = &[
        ("1+`", "'type"),
        ("-234h", "-234h"),
        ("5.5e", "5.5e"),
        ("\"abc\"", "\"abc\""),
        ("`quickbrownfoxjumpsoveralazydog", "`quickbrownfoxjumpsoveralazydog"),
        ("2000.01.04D05:36:57.600", "2000.01.04D05:36:57.600000000"),
        ("2001.01m", "2001.01m"),
        ("2000.05.01", "2000.05.01"),
        ("2000.01.04T05:36:57.600", "2000.01.04T05:36:57.600"),
        ("0D05:36:57.600", "0D05:36:57.600000000"),
        ("12:04:59.123", "12:04:59.123"),
        ("0Ni", "0Ni"),
        ("0n", "0n"),
        ("0Nd", "0Nd"),
        ("(0b;1b;0b)", "010b"),
        ("(1h;2h;3h)", "1 2 3h"),
        ("1 0N 3", "1 0N 3"),
        ("3.23 0n", "3.23 0n"),
        ("(1;`bcd;\"0bc\";5.5e)", "(1;`bcd;\"0bc\";5.5e)"),
        ("(`one;2 3;\"456\";(7;8 9))", "(`one;2 3;\"456\";(7;8 9))"),
        ("``quick``fox", "``quick``fox"),
        ("{x+y}", "{x+y}"),
        ("1 2!`abc`cdefgh", "1| abc\n2| cdefgh"),
        (
            "\"G\"$\"8c680a01-5a49-5aab-5a65-d4bfddb6a661\"",
            "8c680a01-5a49-5aab-5a65-d4bfddb6a661",
        ),
        (
            "flip `name`iq!(`Dent`Beeblebrox`Prefect;98 42 126)",
            "name       iq\n--------------\nDent       98\nBeeblebrox 42\nPrefect    126",
        ),
        (
            "([eid:1001 1002 1003] pos:`d1`d2`d3;dates:(2001.01.01;2000.05.01;0Nd))",
            "eid | pos dates\n----| --------------\n1001| d1  2001.01.01\n1002| d2  2000.05.01\n1003| d3  0N",
        ),
    ];
    for (expr, want) in cases {
        let out = tickbridge(&["kdb", "decode", &hex_of(expr)]);
        assert_eq!(&stdout(&out), want, "{expr}");
    }
}

#[test]
fn whole_messages_are_detected() {
    let hex = hex_of("1 2 3");
    let msg = with_header(&hex, false);
    assert_eq!(stdout(&tickbridge(&["kdb", "decode", &msg])), "1 2 3");
    // --hex-out on a message gives the whole message back.
    assert_eq!(
        stdout(&tickbridge(&["kdb", "decode", "--hex-out", &msg])),
        msg
    );
    // Spaces, newlines and a 0x prefix are fine.
    let spaced = format!(
        "0x{}\n",
        msg.as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert_eq!(stdout(&tickbridge(&["kdb", "decode", &spaced])), "1 2 3");
}

#[test]
fn compressed_vectors_decode_with_a_header() {
    let all = pairs("compressed.txt");
    assert!(!all.is_empty());
    for (expr, body) in &all {
        let msg = with_header(body, true);
        let rendered = stdout(&tickbridge(&["kdb", "decode", &msg]));
        let plain = stdout(&tickbridge(&["kdb", "decode", "--hex-out", &msg]));
        // The re-encoded message is uncompressed and decodes to the same value.
        let bytes = hex::decode(&plain).unwrap();
        assert_eq!(&bytes[..4], &[1, 0, 0, 0], "{expr}");
        assert_eq!(
            u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize,
            bytes.len()
        );
        assert_eq!(
            stdout(&tickbridge(&["kdb", "decode", &plain])),
            rendered,
            "{expr}"
        );
        match expr.as_str() {
            "1000#`q" => assert_eq!(rendered, "`q".repeat(1000)),
            "([] q:1000#`q)" => {
                let lines: Vec<&str> = rendered.lines().collect();
                assert_eq!(lines[0], "q");
                assert_eq!(lines[2], "q");
                assert_eq!(lines.last().copied(), Some("…980 more rows"));
            }
            _ => {}
        }
    }
}

#[test]
fn raw_bytes_from_a_file_and_hex_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg.bin");
    std::fs::write(
        &path,
        hex::decode(with_header(&hex_of("`jumps`over`a`lazy`dog"), false)).unwrap(),
    )
    .unwrap();
    let out = tickbridge(&["kdb", "decode", "--file", path.to_str().unwrap()]);
    assert_eq!(stdout(&out), "`jumps`over`a`lazy`dog");

    use std::io::Write;
    let mut child = Command::new(common::tickbridge_exe())
        .args(["kdb", "decode", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(hex_of("12:05:00").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "12:05:00");
}

#[test]
fn bad_input_fails_clearly() {
    let out = tickbridge(&["kdb", "decode", "0A00zz"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("bad hex at offset 4"), "{err}");

    let out = tickbridge(&["kdb", "decode", "0A0"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("odd number"), "{}", stderr(&out));

    // A char vector claiming 5 bytes but holding 1.
    let out = tickbridge(&["kdb", "decode", "0A000500000061"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("undecodable") && err.contains("offset"),
        "{err}"
    );

    let out = tickbridge(&["kdb", "decode"]);
    assert!(!out.status.success());
}

/// A kdb+-like server on a thread: checks `user:password` when given,
/// answers `fail` with `'type` and anything else with `(`echo; expr)`.
/// Serves `conns` connections, then ends.
fn spawn_server(creds: Option<&'static str>, conns: usize) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            for _ in 0..conns {
                let limit = std::time::Duration::from_secs(20);
                let Ok(Ok((mut sock, _))) = tokio::time::timeout(limit, listener.accept()).await
                else {
                    return;
                };
                let mut hello = Vec::new();
                let mut b = [0u8; 1];
                while sock.read_exact(&mut b).await.is_ok() && b[0] != 0 {
                    hello.push(b[0]);
                }
                hello.pop();
                if creds.is_some_and(|c| c.as_bytes() != hello) {
                    continue; // dropped: access denied
                }
                if sock.write_all(&[3]).await.is_err() {
                    continue;
                }
                while let Ok((_, msg)) = read_frame(&mut sock, DEFAULT_MAX_FRAME).await {
                    let Ok((h, v)) = decode_message(&msg) else {
                        break;
                    };
                    if h.msg_type != MsgType::Sync {
                        continue;
                    }
                    let text = v.as_text().unwrap_or_default();
                    let reply = if text == "fail" {
                        K::Error("type".into())
                    } else if text == "rows" {
                        // A 30-row table: more than the default 20 shown.
                        K::Table(tickbridge::kdb::Table::new(
                            vec!["n".into()],
                            vec![K::vector(Vector::Long((0..30).collect()))],
                        ))
                    } else {
                        K::list(vec![
                            K::sym("echo"),
                            K::string(&text),
                            K::vector(Vector::Long(vec![1, 2])),
                        ])
                    };
                    if sock
                        .write_all(&encode_message(&reply, MsgType::Response))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        });
    });
    port
}

#[test]
fn query_prints_the_reply() {
    let port = spawn_server(None, 2);
    let target = format!("127.0.0.1:{port}");
    let out = tickbridge(&[
        "kdb",
        "query",
        &target,
        "count trade",
        "--timeout-ms",
        "5000",
    ]);
    assert_eq!(stdout(&out), "(`echo;\"count trade\";1 2)");

    let out = tickbridge(&["kdb", "query", &target, "fail", "--timeout-ms", "5000"]);
    assert!(!out.status.success());
    assert_eq!(stderr(&out).trim(), "'type");
    assert!(out.stdout.is_empty());
}

#[test]
fn query_shows_more_rows_when_asked() {
    let port = spawn_server(None, 3);
    let target = format!("127.0.0.1:{port}");
    let lines = |extra: &[&str]| {
        let mut args = vec!["kdb", "query", &target, "rows", "--timeout-ms", "5000"];
        args.extend_from_slice(extra);
        let out = tickbridge(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).lines().map(str::to_string).collect::<Vec<_>>()
    };
    // Header and rule, then the rows.
    let default = lines(&[]);
    assert_eq!(default.len(), 2 + 20 + 1, "{default:?}");
    assert_eq!(default.last().map(String::as_str), Some("…10 more rows"));
    let five = lines(&["--rows", "5"]);
    assert_eq!(five.len(), 2 + 5 + 1);
    assert_eq!(five.last().map(String::as_str), Some("…25 more rows"));
    let all = lines(&["--all"]);
    assert_eq!(all.len(), 2 + 30);
    assert_eq!(all.last().map(|l| l.trim()), Some("29"));
}

#[test]
fn query_with_credentials() {
    let port = spawn_server(Some("ops:hunter22"), 2);
    let target = format!("tcp://127.0.0.1:{port}");
    let run = |pw: &str| {
        Command::new(common::tickbridge_exe())
            .args([
                "kdb",
                "query",
                &target,
                "x",
                "--user",
                "ops",
                "--password-env",
                "TB_TEST_PW",
            ])
            .env("TB_TEST_PW", pw)
            .env("TICKBRIDGE_LOG", "debug")
            .output()
            .unwrap()
    };
    let out = run("hunter22");
    assert_eq!(stdout(&out), "(`echo;,\"x\";1 2)");
    assert!(!stderr(&out).contains("hunter22"));

    let out = run("wrong-pass");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("access denied by 127.0.0.1:"), "{err}");
    assert!(!err.contains("wrong-pass"), "{err}");
}

#[test]
fn query_to_nothing_fails_with_the_target() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("127.0.0.1:{port}");
    let out = tickbridge(&["kdb", "query", &target, "1", "--timeout-ms", "2000"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&target), "{}", stderr(&out));
}
