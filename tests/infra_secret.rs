//! The tickerplant password from Secrets Manager (the template's
//! `TICKBRIDGE_TP_PASSWORD_SECRET_ARN`), against moto: both secret shapes,
//! a clear error for a missing secret, and the real binary authenticating
//! to a stand-in that requires the password.

mod common;

use std::time::{Duration, Instant};

use common::moto::{unique_name, MotoServer};
use tickbridge::app::{resolve_tp_password, InitError};
use tickbridge::config::Config;

async fn create_secret(moto: &MotoServer, value: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    client
        .create_secret()
        .name(unique_name("tickbridge/tp"))
        .secret_string(value)
        .send()
        .await
        .expect("create secret")
        .arn()
        .unwrap()
        .to_string()
}

fn config(secret: &str) -> Config {
    Config::from_vars(
        [
            ("TICKBRIDGE_STORE", "memory"),
            ("TICKBRIDGE_TP_USER", "feed"),
            ("TICKBRIDGE_TP_PASSWORD_SECRET_ARN", secret),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap()
}

#[tokio::test]
async fn plain_and_json_secrets_give_the_password() {
    let moto = MotoServer::shared();
    let sdk = moto.sdk_config().await;
    let plain = create_secret(moto, "hunter2").await;
    let mut c = config(&plain);
    resolve_tp_password(&mut c, &sdk).await.unwrap();
    assert_eq!(c.tp_password.unwrap().0, "hunter2");

    // The shape the template's generated secret has.
    let json = create_secret(moto, r#"{"username":"feed","password":"s3cr3tpw"}"#).await;
    let mut c = config(&json);
    resolve_tp_password(&mut c, &sdk).await.unwrap();
    assert_eq!(c.tp_password.unwrap().0, "s3cr3tpw");

    // A JSON secret without a password is an error, not an empty password.
    let nopw = create_secret(moto, r#"{"username":"feed"}"#).await;
    let mut c = config(&nopw);
    let err = resolve_tp_password(&mut c, &sdk).await.unwrap_err();
    assert!(matches!(err, InitError::Secret(_)));
    assert!(err.to_string().contains("holds no password"), "{err}");
}

#[tokio::test]
async fn a_missing_secret_fails_init_naming_it() {
    let moto = MotoServer::shared();
    let sdk = moto.sdk_config().await;
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-AbCdEf";
    let mut c = config(missing);
    let err = resolve_tp_password(&mut c, &sdk).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("TICKBRIDGE_TP_PASSWORD_SECRET_ARN"),
        "{msg}"
    );
    assert!(msg.contains(missing), "{msg}");
    assert!(c.tp_password.is_none());
}

#[tokio::test]
async fn no_secret_named_means_no_call() {
    // An SDK configuration pointing nowhere: a call would fail.
    let sdk = tickbridge::aws::local_config("http://127.0.0.1:9").await;
    let mut c = Config::from_vars(
        [("TICKBRIDGE_STORE", "memory")].map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap();
    resolve_tp_password(&mut c, &sdk).await.unwrap();
    assert!(c.tp_password.is_none());
}

/// The binary's init (`tickbridge invoke` runs `App::init`) reads the secret
/// through `AWS_ENDPOINT_URL` and logs in to a stand-in that refuses any
/// other password; with a wrong secret the record is left for redelivery.
#[tokio::test]
async fn init_logs_in_with_the_secret_password() {
    let moto = MotoServer::shared();
    let schemas = tickbridge::schema::embedded::schemas().unwrap();
    let mut tp_config = tickbridge::tp::TickerplantConfig::new(schemas);
    tp_config.users = Some(tickbridge::tp::Users::parse("feed:s3cr3tpw\n").unwrap());
    let tp = tickbridge::tp::spawn(tp_config).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    let trade = serde_json::json!({"type": "trade", "id": "t-1", "sym": "AAPL",
        "price": 101.5, "size": 7, "side": "B"})
    .to_string();
    std::fs::write(
        &event,
        tickbridge_tools::bench::events::kinesis_event(&[trade], 1, "ticks").to_string(),
    )
    .unwrap();

    let run = |secret: String| {
        let event = event.clone();
        let tp_addr = tp.local_addr().to_string();
        let endpoint = moto.endpoint();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(common::tickbridge_exe())
                .args(["invoke", "--event"])
                .arg(&event)
                .args(["--tp", &tp_addr, "--timeout-secs", "10"])
                .env_remove("TICKBRIDGE_TP_PASSWORD")
                .env("TICKBRIDGE_TP_USER", "feed")
                .env("TICKBRIDGE_TP_PASSWORD_SECRET_ARN", secret)
                .env("TICKBRIDGE_TP_CONNECT_TIMEOUT_MS", "500")
                .env("TICKBRIDGE_BAD_RECORDS", "fail")
                .env("AWS_ENDPOINT_URL", endpoint)
                .envs(common::EMULATOR_AWS_ENV)
                .output()
                .unwrap()
        })
    };

    let good = create_secret(moto, r#"{"username":"feed","password":"s3cr3tpw"}"#).await;
    let out = run(good).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response["batchItemFailures"], serde_json::json!([]));
    let deadline = Instant::now() + Duration::from_secs(5);
    while tp.row_count("trade") != Some(1) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(tp.row_count("trade"), Some(1));

    let wrong = create_secret(moto, "not-the-password").await;
    let out = run(wrong).await.unwrap();
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        response["batchItemFailures"].as_array().map(Vec::len),
        Some(1),
        "{response}"
    );
    assert_eq!(tp.row_count("trade"), Some(1));
    // The password never reaches the logs.
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(!logs.contains("not-the-password"), "{logs}");
}
