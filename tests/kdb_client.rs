//! The IPC client against a small kdb+-like server built on our codec:
//! handshake (with optional user:password, closing the socket on a bad one
//! as q does), sync answers, recorded async messages.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tickbridge::kdb::client::{
    ClientConfig, ClientError, Connection, Credentials, Publisher, RetryPolicy, Stage, Target,
};
use tickbridge::kdb::compress;
use tickbridge::kdb::io::{read_frame, DEFAULT_MAX_FRAME};
use tickbridge::kdb::{decode_message, encode_message, encode_upd, Column, MsgType, SymbolTable};
use tickbridge::kdb::{Vector, K};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{timeout, Instant};

/// Every test is bounded in time.
const LIMIT: Duration = Duration::from_secs(20);

#[derive(Clone, Default)]
struct Opts {
    /// `user:password` the server accepts; `None` accepts anyone.
    creds: Option<String>,
    /// Never reply to the handshake.
    mute_handshake: bool,
    /// Read sync queries but never answer them.
    mute_queries: bool,
}

#[derive(Clone, Default)]
struct Shared {
    log: Arc<Mutex<Vec<K>>>,
    accepted: Arc<AtomicUsize>,
}

struct Server {
    port: u16,
    shared: Shared,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(opts: Opts) -> Server {
        Server::start_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), opts)
    }

    fn start_on(listener: TcpListener, opts: Opts) -> Server {
        let port = listener.local_addr().unwrap().port();
        let shared = Shared::default();
        let s = shared.clone();
        let task = tokio::spawn(async move {
            // Aborting the server drops the set, which closes every client.
            let mut conns = JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                s.accepted.fetch_add(1, Ordering::SeqCst);
                conns.spawn(serve(sock, opts.clone(), s.clone()));
            }
        });
        Server { port, shared, task }
    }

    fn target(&self) -> Target {
        Target::Tcp {
            host: "127.0.0.1".into(),
            port: self.port,
        }
    }

    fn log(&self) -> Vec<K> {
        self.shared.log.lock().unwrap().clone()
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, opts: Opts, shared: Shared) {
    let mut hello = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if sock.read_exact(&mut b).await.is_err() {
            return;
        }
        if b[0] == 0 {
            break;
        }
        hello.push(b[0]);
    }
    // The last byte before the NUL is the capability.
    let cap = hello.pop().unwrap_or(0);
    if let Some(want) = &opts.creds {
        if hello != want.as_bytes() {
            return; // rejected: close, as q does
        }
    }
    if opts.mute_handshake {
        std::future::pending::<()>().await;
    }
    if sock.write_all(&[cap.min(3)]).await.is_err() {
        return;
    }
    while let Ok((_, msg)) = read_frame(&mut sock, DEFAULT_MAX_FRAME).await {
        let Ok((header, value)) = decode_message(&msg) else {
            return;
        };
        if header.msg_type != MsgType::Sync {
            shared.log.lock().unwrap().push(value);
            continue;
        }
        if opts.mute_queries {
            continue;
        }
        let reply = match value.as_text().filter(|_| matches!(value, K::Vector(..))) {
            Some(q) => match q.as_str() {
                "" => K::Identity,
                "fail" => K::Error("type".into()),
                "count" => K::Long(shared.log.lock().unwrap().len() as i64),
                "push" => {
                    // An async message before the reply; the client skips it.
                    let noise = encode_message(&K::sym("noise"), MsgType::Async);
                    if sock.write_all(&noise).await.is_err() {
                        return;
                    }
                    K::Long(7)
                }
                "bomb" => {
                    // A small compressed reply that claims 512 MiB once
                    // decompressed.
                    let body_len = 4 + 4096;
                    let mut bomb = vec![1u8, 2, 1, 0];
                    bomb.extend_from_slice(&((8 + body_len) as u32).to_le_bytes());
                    bomb.extend_from_slice(&(512u32 << 20).to_le_bytes());
                    bomb.resize(8 + body_len, 0);
                    if sock.write_all(&bomb).await.is_err() {
                        return;
                    }
                    continue;
                }
                "chatter" | "chatter-sync" => {
                    // Anything but the reply, for ever.
                    let kind = if q == "chatter" {
                        MsgType::Async
                    } else {
                        MsgType::Sync
                    };
                    let noise = encode_message(&K::string("noise"), kind);
                    loop {
                        if sock.write_all(&noise).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                "big" => {
                    let big = encode_message(&big_vector(), MsgType::Response);
                    let packed = compress::compress(&big).unwrap();
                    if sock.write_all(&packed).await.is_err() {
                        return;
                    }
                    continue;
                }
                _ => K::Error("nyi".into()),
            },
            None => value,
        };
        if sock
            .write_all(&encode_message(&reply, MsgType::Response))
            .await
            .is_err()
        {
            return;
        }
    }
}

fn big_vector() -> K {
    K::vector(Vector::Long((0..5000).map(|i| i % 10).collect()))
}

fn config(target: Target) -> ClientConfig {
    let mut c = ClientConfig::new(target);
    c.connect_timeout = Duration::from_secs(2);
    c.handshake_timeout = Duration::from_secs(2);
    c.read_timeout = Duration::from_secs(2);
    c
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("test took too long")
}

#[tokio::test]
async fn handshake_agrees_on_capability_3() {
    bounded(async {
        let server = Server::start(Opts::default()).await;
        let conn = Connection::connect(&config(server.target())).await.unwrap();
        assert_eq!(conn.capability(), 3);
        assert!(conn.is_local());
        server.stop().await;
    })
    .await
}

#[tokio::test]
async fn credentials_are_checked_and_never_shown() {
    bounded(async {
        let server = Server::start(Opts {
            creds: Some("alice:right-pw".into()),
            ..Opts::default()
        })
        .await;
        let good = config(server.target())
            .with_credentials(Some(Credentials::new("alice", "right-pw")));
        let mut conn = Connection::connect(&good).await.unwrap();
        assert_eq!(conn.query(&K::Long(5)).await.unwrap(), K::Long(5));

        let bad = config(server.target())
            .with_credentials(Some(Credentials::new("alice", "wrong-secret")));
        let err = Connection::connect(&bad).await.unwrap_err();
        assert!(
            matches!(&err, ClientError::AccessDenied { target } if target == &format!("127.0.0.1:{}", server.port)),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("access denied by 127.0.0.1:"), "{text}");
        assert!(!text.contains("wrong-secret") && !format!("{err:?}").contains("wrong-secret"));
        server.stop().await;
    })
    .await
}

/// A writer that collects log output for inspection.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_never_hold_the_password() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    // The test runtime is single-threaded, so the thread-local default
    // subscriber sees everything the client logs.
    let _guard = tracing::subscriber::set_default(subscriber);
    bounded(async {
        let server = Server::start(Opts {
            creds: Some("bob:pa55-word".into()),
            ..Opts::default()
        })
        .await;
        let good =
            config(server.target()).with_credentials(Some(Credentials::new("bob", "pa55-word")));
        let mut p = Publisher::new(good, RetryPolicy::default());
        p.chase().await.unwrap();
        let bad =
            config(server.target()).with_credentials(Some(Credentials::new("bob", "bad-pa55")));
        let mut p2 = Publisher::new(bad, RetryPolicy::default());
        assert!(p2.chase().await.is_err());
        server.stop().await;
    })
    .await;
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("connect"),
        "the client logs something: {text}"
    );
    assert!(
        !text.contains("pa55-word") && !text.contains("bad-pa55"),
        "{text}"
    );
}

#[tokio::test]
async fn connect_timeout_names_the_stage() {
    bounded(async {
        // A listener with a backlog of one that never accepts: once its
        // queue is full the kernel drops new SYNs and connects hang.
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = sock.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        for _ in 0..16 {
            match timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => held.push(s),
                _ => break,
            }
        }
        let mut c = config(Target::Tcp {
            host: "127.0.0.1".into(),
            port: addr.port(),
        });
        c.connect_timeout = Duration::from_millis(300);
        let err = Connection::connect(&c).await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Timeout {
                    stage: Stage::Connect
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("connect"));
        drop(listener);
    })
    .await
}

#[tokio::test]
async fn handshake_timeout_names_the_stage() {
    bounded(async {
        let server = Server::start(Opts {
            mute_handshake: true,
            ..Opts::default()
        })
        .await;
        let mut c = config(server.target());
        c.handshake_timeout = Duration::from_millis(200);
        let err = Connection::connect(&c).await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Timeout {
                    stage: Stage::Handshake
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("handshake"));
        server.stop().await;
    })
    .await
}

#[tokio::test]
async fn read_timeout_names_the_stage_and_retires_the_connection() {
    bounded(async {
        let server = Server::start(Opts {
            mute_queries: true,
            ..Opts::default()
        })
        .await;
        let mut c = config(server.target());
        c.read_timeout = Duration::from_millis(200);
        let mut conn = Connection::connect(&c).await.unwrap();
        let err = conn.query_str("").await.unwrap_err();
        assert!(
            matches!(err, ClientError::Timeout { stage: Stage::Read }),
            "{err:?}"
        );
        assert!(err.to_string().contains("read"));
        // A late reply could be taken for the next one: the connection is done.
        assert!(!conn.is_usable());
        assert!(matches!(
            conn.chase().await.unwrap_err(),
            ClientError::Closed
        ));
        server.stop().await;
    })
    .await
}

#[tokio::test]
async fn queries_return_values() {
    bounded(async {
        let server = Server::start(Opts::default()).await;
        let mut conn = Connection::connect(&config(server.target())).await.unwrap();
        let v = K::list(vec![
            K::sym("a"),
            K::vector(Vector::Float(vec![1.5, 2.5])),
            K::string("text"),
        ]);
        assert_eq!(conn.query(&v).await.unwrap(), v);
        // An async message arriving before the reply is skipped.
        assert_eq!(conn.query_str("push").await.unwrap(), K::Long(7));
        // A compressed reply is decompressed.
        assert_eq!(conn.query_str("big").await.unwrap(), big_vector());
        assert_eq!(conn.query_str("").await.unwrap(), K::Identity);
        server.stop().await;
    })
    .await
}

#[tokio::test]
async fn remote_errors_keep_the_connection() {
    bounded(async {
        let server = Server::start(Opts::default()).await;
        let mut conn = Connection::connect(&config(server.target())).await.unwrap();
        let err = conn.query_str("fail").await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Remote(e) if e == "type"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "remote error: 'type");
        assert!(conn.is_usable());
        conn.chase().await.unwrap();
        server.stop().await;
    })
    .await
}

#[tokio::test]
async fn async_messages_arrive_in_order_before_the_chaser_returns() {
    bounded(async {
        let server = Server::start(Opts::default()).await;
        let mut conn = Connection::connect(&config(server.target())).await.unwrap();
        let mut syms = SymbolTable::new();
        let mut raw = Vec::new();
        let mut expected = Vec::new();
        for i in 0..300i64 {
            if i % 2 == 0 {
                let v = K::Long(i);
                conn.send_async(&v).await.unwrap();
                expected.push(v);
            } else {
                syms.clear();
                let sym = syms.intern("AAPL");
                let cols = [
                    Column::Symbols(vec![sym]),
                    Column::Simple(Vector::Long(vec![i])),
                ];
                raw.clear();
                encode_upd(".u.upd", "trade", &cols, &syms, MsgType::Async, &mut raw);
                conn.send_raw(&raw).await.unwrap();
                expected.push(decode_message(&raw).unwrap().1);
            }
        }
        conn.chase().await.unwrap();
        // The server records before it reads the next message, so all 300
        // are in its log, in order, by the time the chaser's reply arrives.
        assert_eq!(server.log(), expected);
        server.stop().await;
    })
    .await
}

#[tokio::test]
async fn send_raw_refuses_a_partial_message() {
    bounded(async {
        let server = Server::start(Opts::default()).await;
        let mut conn = Connection::connect(&config(server.target())).await.unwrap();
        let msg = encode_message(&K::Long(1), MsgType::Async);
        let err = conn.send_raw(&msg[..msg.len() - 1]).await.unwrap_err();
        assert!(matches!(err, ClientError::Decode(_)), "{err:?}");
        assert!(
            conn.is_usable(),
            "nothing was written, the stream is intact"
        );
        conn.chase().await.unwrap();
        assert!(server.log().is_empty());
        server.stop().await;
    })
    .await
}

#[tokio::test]
async fn publisher_reconnects_after_the_server_restarts() {
    bounded(async {
        let server = Server::start(Opts::default()).await;
        let port = server.port;
        let policy = RetryPolicy {
            max_delay: Duration::from_millis(200),
            max_total_delay: Duration::from_secs(3),
            ..RetryPolicy::default()
        };
        let mut p = Publisher::new(config(server.target()), policy);
        p.send_async(&K::Long(1)).await.unwrap();
        p.chase().await.unwrap();
        assert_eq!(server.log(), vec![K::Long(1)]);
        server.stop().await;

        // The tickerplant is gone: the caller hears of it and the link is dropped.
        let sent = p.send_async(&K::Long(2)).await;
        let chased = p.chase().await;
        assert!(sent.is_err() || chased.is_err(), "{sent:?} {chased:?}");
        assert!(!p.is_connected());

        // Restart on the same port a little later; the publisher retries
        // with backoff until it is back.
        let restart = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Server::start_on(
                TcpListener::bind(("127.0.0.1", port)).await.unwrap(),
                Opts::default(),
            )
        });
        // The loss was reported above, so the next batch is not failed for it.
        p.send_async(&K::Long(3)).await.unwrap();
        p.chase().await.unwrap();
        let server = restart.await.unwrap();
        assert_eq!(server.log(), vec![K::Long(3)], "nothing was resent");
        assert!(p.is_connected());
        server.stop().await;
    })
    .await
}

#[tokio::test]
async fn publisher_chase_fails_after_losing_unconfirmed_sends() {
    bounded(async {
        let server = Server::start(Opts::default()).await;
        let mut p = Publisher::new(config(server.target()), RetryPolicy::default());
        p.send_async(&K::Long(1)).await.unwrap();
        // The connection carrying the unconfirmed send goes away.
        p.disconnect();
        assert!(matches!(p.chase().await, Err(ClientError::Closed)));
        // Only once: later chases confirm later sends.
        p.chase().await.unwrap();
        server.stop().await;
    })
    .await
}

#[tokio::test]
async fn publisher_gives_up_at_the_deadline() {
    bounded(async {
        // A port with nothing listening.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let target = Target::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        let policy = RetryPolicy {
            max_retries: 1000,
            max_total_delay: Duration::from_secs(60),
            ..RetryPolicy::default()
        };
        let mut p = Publisher::new(config(target), policy);
        let started = Instant::now();
        p.set_deadline(Some(started + Duration::from_millis(500)));
        let err = p.chase().await.unwrap_err();
        assert!(
            matches!(err, ClientError::Io(_) | ClientError::Timeout { .. }),
            "{err:?}"
        );
        // Well before the 60 s the policy alone would allow.
        assert!(started.elapsed() < Duration::from_secs(10));
    })
    .await
}

#[tokio::test]
async fn publisher_does_not_retry_access_denied() {
    bounded(async {
        let server = Server::start(Opts {
            creds: Some("u:p".into()),
            ..Opts::default()
        })
        .await;
        let c = config(server.target()).with_credentials(Some(Credentials::new("u", "nope")));
        let mut p = Publisher::new(c, RetryPolicy::default());
        let err = p.send_async(&K::Long(1)).await.unwrap_err();
        assert!(matches!(err, ClientError::AccessDenied { .. }), "{err:?}");
        assert_eq!(server.shared.accepted.load(Ordering::SeqCst), 1);
        server.stop().await;
    })
    .await
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket_target() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kx.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let shared = Shared::default();
        let s = shared.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                conns.spawn(serve(sock, Opts::default(), s.clone()));
            }
        });
        let target = Target::parse(&format!("unix://{}", path.display())).unwrap();
        assert!(target.is_local());
        let mut conn = Connection::connect(&config(target)).await.unwrap();
        conn.send_async(&K::sym("hello")).await.unwrap();
        assert_eq!(conn.query_str("count").await.unwrap(), K::Long(1));
        assert_eq!(shared.log.lock().unwrap().clone(), vec![K::sym("hello")]);
        task.abort();
    })
    .await
}

/// A test-only CA and a `localhost` server certificate signed by it
/// (P-256, valid for 100 years), made with openssl for these tests alone.
const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBoTCCAUegAwIBAgIUKaqNNBQfDxs71N7mha/UyePAraowCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSdGlja2JyaWRnZSB0ZXN0IENBMCAXDTI2MTEyNTA2MDAyOVoY
DzIxMjYxMTAxMDYwMDI5WjAdMRswGQYDVQQDDBJ0aWNrYnJpZGdlIHRlc3QgQ0Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARnvq4NpByfSvaa+wHZzRAiM1RkGc5S
yDfYUm3a3Q17XgzBN7GfSH5epX76FiBX0me5bfGsPapDOS1Mav5bLmE9o2MwYTAd
BgNVHQ4EFgQUVMIJ+9BtHS9Tagk/3vzWJ1SH9+kwHwYDVR0jBBgwFoAUVMIJ+9Bt
HS9Tagk/3vzWJ1SH9+kwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYw
CgYIKoZIzj0EAwIDSAAwRQIhAMkfT+TgDY48n7z1FBUPJr+tpBBgTKE4D1wUP9NF
hso5AiBW3TEbNH468UTbslG/aPeLdTallYritMoakT4TdspXNA==
-----END CERTIFICATE-----
";
const TEST_SERVER_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBvzCCAWWgAwIBAgIUcBce5LDpzs+OQKJQEfr7SEQr9oAwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSdGlja2JyaWRnZSB0ZXN0IENBMCAXDTI2MTEyNTA2MDAyOVoY
DzIxMjYxMTAxMDYwMDI5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjO
PQIBBggqhkjOPQMBBwNCAAQqm7xNeVYYC1o9AfTBv/lt4wy0m6YkPasr8gEuH+p9
CocNgf3yv09MB3CHRBadZYUx1Q4QSAmwAeVsRfvCwjJzo4GJMIGGMAkGA1UdEwQC
MAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMBQGA1UdEQQN
MAuCCWxvY2FsaG9zdDAdBgNVHQ4EFgQUSv44yeLAJSz/Xx6WIqd81VQkS1EwHwYD
VR0jBBgwFoAUVMIJ+9BtHS9Tagk/3vzWJ1SH9+kwCgYIKoZIzj0EAwIDSAAwRQIg
fz1ve8yTfnwfdVVdHf0Fc9Z5pMpu/ihi85A5SevzK20CIQCkLWX7UXHYcDrgyN1X
f3wF9jUgdTSlV7xVh7ao0KtwMw==
-----END CERTIFICATE-----
";
const TEST_SERVER_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgrq/T/sStzWr4v8Qd
ZY9EMTDTv0osEWHcB8ugX3uk47WhRANCAAQqm7xNeVYYC1o9AfTBv/lt4wy0m6Yk
Pasr8gEuH+p9CocNgf3yv09MB3CHRBadZYUx1Q4QSAmwAeVsRfvCwjJz
-----END PRIVATE KEY-----
";

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let cert = CertificateDer::from_pem_slice(TEST_SERVER_CERT_PEM.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(TEST_SERVER_KEY_PEM.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
async fn tls_target_with_a_ca_file() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tls_acceptor();
        let shared = Shared::default();
        let s = shared.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                // A failed TLS handshake just drops that client.
                if let Ok(tls) = acceptor.accept(sock).await {
                    conns.spawn(serve(tls, Opts::default(), s.clone()));
                }
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, TEST_CA_PEM).unwrap();
        let target = Target::parse(&format!("tls://localhost:{port}"))
            .unwrap()
            .with_ca_file(Some(ca));
        let mut conn = Connection::connect(&config(target)).await.unwrap();
        conn.send_async(&K::Long(9)).await.unwrap();
        assert_eq!(conn.query_str("count").await.unwrap(), K::Long(1));
        assert_eq!(shared.log.lock().unwrap().clone(), vec![K::Long(9)]);

        // The webpki roots do not trust the test CA.
        // That refusal is permanent: named, and not retried by the publisher.
        let untrusted = Target::parse(&format!("tls://localhost:{port}")).unwrap();
        let err = Connection::connect(&config(untrusted.clone()))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Certificate { .. }), "{err:?}");
        assert!(!err.is_transient());
        assert!(
            err.to_string().contains("certificate of localhost refused"),
            "{err}"
        );
        let started = std::time::Instant::now();
        let mut p = Publisher::new(config(untrusted), RetryPolicy::default());
        let err = p.chase().await.unwrap_err();
        assert!(matches!(err, ClientError::Certificate { .. }), "{err:?}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "retried a certificate error"
        );
        task.abort();
    })
    .await
}

#[tokio::test]
async fn publisher_keeps_the_link_on_a_malformed_raw_message() {
    bounded(async {
        let server = Server::start(Opts::default()).await;
        let mut p = Publisher::new(config(server.target()), RetryPolicy::default());
        p.chase().await.unwrap();
        let msg = encode_message(&K::Long(1), MsgType::Async);
        let err = p.send_raw(&msg[..msg.len() - 2]).await.unwrap_err();
        assert!(matches!(err, ClientError::Decode(_)), "{err:?}");
        assert!(p.is_connected());
        p.send_raw(&msg).await.unwrap();
        p.chase().await.unwrap();
        assert_eq!(server.log(), vec![K::Long(1)]);
        assert_eq!(server.shared.accepted.load(Ordering::SeqCst), 1);
        server.stop().await;
    })
    .await
}

fn vm_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_before_allocating() {
    bounded(async {
        let server = Server::start(Opts::default()).await;
        let mut cfg = config(server.target());
        cfg.max_frame = 64 << 20;
        let mut conn = Connection::connect(&cfg).await.unwrap();
        let before = vm_kb("VmHWM:");
        let err = conn.query_str("bomb").await.unwrap_err();
        let grew_mb = (vm_kb("VmHWM:") - before) / 1024;
        assert!(matches!(err, ClientError::Decode(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("536870912") && text.contains("67108864"),
            "{text}"
        );
        // 512 MiB were claimed; the peak of this whole test process grew
        // by far less (other tests run in parallel threads).
        assert!(grew_mb < 100, "peak memory grew {grew_mb} MB");
        assert!(!conn.is_usable());
        server.stop().await;
    })
    .await
}

#[tokio::test]
async fn a_chattering_peer_cannot_hold_a_reply_past_the_deadline() {
    bounded(async {
        let server = Server::start(Opts::default()).await;
        for q in ["chatter", "chatter-sync"] {
            let mut cfg = config(server.target());
            // Each frame arrives well within this; the whole wait must not.
            cfg.read_timeout = Duration::from_secs(10);
            let mut conn = Connection::connect(&cfg).await.unwrap();
            let started = Instant::now();
            conn.set_deadline(Some(started + Duration::from_millis(400)));
            let err = conn.query_str(q).await.unwrap_err();
            let took = started.elapsed();
            assert!(
                matches!(err, ClientError::Timeout { stage: Stage::Read }),
                "{q}: {err:?}"
            );
            assert!(took < Duration::from_millis(1500), "{q}: took {took:?}");

            // Without a deadline the reply timeout bounds the whole wait,
            // not each frame.
            cfg.read_timeout = Duration::from_millis(300);
            let mut conn = Connection::connect(&cfg).await.unwrap();
            let started = Instant::now();
            let err = conn.query_str(q).await.unwrap_err();
            assert!(
                matches!(err, ClientError::Timeout { stage: Stage::Read }),
                "{err:?}"
            );
            assert!(started.elapsed() < Duration::from_millis(1500));
        }
        server.stop().await;
    })
    .await
}

#[tokio::test]
async fn pipelined_sync_messages_get_their_own_replies_in_order() {
    bounded(async {
        let server = Server::start(Opts::default()).await;
        let mut p = Publisher::new(config(server.target()), RetryPolicy::default());
        let msgs: Vec<Vec<u8>> = ["count", "fail", "count"]
            .iter()
            .map(|q| encode_message(&K::string(q), MsgType::Sync))
            .collect();
        for m in &msgs {
            p.write_sync_raw(m).await.unwrap();
        }
        assert_eq!(p.next_reply().await.unwrap(), K::Long(0));
        let err = p.next_reply().await.unwrap_err();
        assert!(
            matches!(err, ClientError::Remote(ref e) if e == "type"),
            "{err:?}"
        );
        assert_eq!(p.next_reply().await.unwrap(), K::Long(0));
        // Every reply read: nothing is waiting, and the link is still good.
        assert!(matches!(p.next_reply().await, Err(ClientError::Misuse(_))));
        assert!(p.is_connected());
        p.chase().await.unwrap();
        // An async message is not accepted where a sync one is needed.
        let async_msg = encode_message(&K::Long(1), MsgType::Async);
        assert!(p.write_sync_raw(&async_msg).await.is_err());
        server.stop().await;
    })
    .await
}
