//! `tickbridge ctl` against moto's Lambda API: a function with a `live`
//! alias, a Kinesis and an SQS FIFO mapping on it (as the template makes
//! them), then the real binary's status / pause / resume / concurrency,
//! each checked against what moto then reports through the SDK.

mod common;

use std::process::{Command, Output};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, FunctionResponseType, Runtime, ScalingConfig};
use common::moto::{unique_name, MotoServer};
use serde_json::Value;
use tickbridge::ctl::PAUSE_TAG;

/// The smallest valid zip: an empty archive (end-of-central-directory only).
const EMPTY_ZIP: &[u8] = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

struct Deployed {
    /// `name:live`, what the mappings invoke.
    qualified: String,
    name: String,
    stream_arn: String,
    queue_arn: String,
    lambda: aws_sdk_lambda::Client,
}

async fn deploy(moto: &MotoServer) -> Deployed {
    let sdk = moto.sdk_config().await;
    let name = unique_name("tickbridge-ctl");
    let out = common::run_python(
        "infra_moto_role.py",
        &[&moto.endpoint(), &format!("{name}-role")],
        None,
    );
    let role = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    lambda
        .create_function()
        .function_name(&name)
        .runtime(Runtime::Providedal2023)
        .architectures(Architecture::Arm64)
        .handler("bootstrap")
        .role(role)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(Blob::new(EMPTY_ZIP))
                .build(),
        )
        .send()
        .await
        .expect("create function");
    let version = lambda
        .publish_version()
        .function_name(&name)
        .send()
        .await
        .expect("publish version")
        .version()
        .unwrap()
        .to_string();
    lambda
        .create_alias()
        .function_name(&name)
        .name("live")
        .function_version(version)
        .send()
        .await
        .expect("create alias");
    lambda
        .put_function_concurrency()
        .function_name(&name)
        .reserved_concurrent_executions(10)
        .send()
        .await
        .expect("reserved concurrency");

    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let stream = format!("{name}-ticks");
    kinesis
        .create_stream()
        .stream_name(&stream)
        .shard_count(1)
        .send()
        .await
        .expect("create stream");
    let stream_arn = kinesis
        .describe_stream_summary()
        .stream_name(&stream)
        .send()
        .await
        .expect("describe stream")
        .stream_description_summary()
        .unwrap()
        .stream_arn()
        .to_string();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = sqs
        .create_queue()
        .queue_name(format!("{name}-ticks.fifo"))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .unwrap()
        .to_string();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();

    let qualified = format!("{name}:live");
    lambda
        .create_event_source_mapping()
        .function_name(&qualified)
        .event_source_arn(&stream_arn)
        .starting_position(aws_sdk_lambda::types::EventSourcePosition::Latest)
        .batch_size(500)
        .maximum_batching_window_in_seconds(1)
        .parallelization_factor(1)
        .function_response_types(FunctionResponseType::ReportBatchItemFailures)
        .send()
        .await
        .expect("kinesis mapping");
    lambda
        .create_event_source_mapping()
        .function_name(&qualified)
        .event_source_arn(&queue_arn)
        .batch_size(10)
        .scaling_config(ScalingConfig::builder().maximum_concurrency(5).build())
        .function_response_types(FunctionResponseType::ReportBatchItemFailures)
        .send()
        .await
        .expect("sqs mapping");
    Deployed {
        qualified,
        name,
        stream_arn,
        queue_arn,
        lambda,
    }
}

/// Runs the real binary against moto with dummy credentials.
fn ctl(moto: &MotoServer, args: &[&str]) -> Output {
    Command::new(common::tickbridge_exe())
        .arg("ctl")
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .envs(common::EMULATOR_AWS_ENV)
        .arg("--endpoint-url")
        .arg(moto.endpoint())
        .output()
        .expect("tickbridge runs")
}

fn ctl_json(moto: &MotoServer, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ctl(moto, &all);
    assert!(
        out.status.success(),
        "ctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ctl prints JSON")
}

fn states(status: &Value) -> Vec<String> {
    status["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap().to_string())
        .collect()
}

/// Mapping states as moto holds them, read with the SDK (not through ctl).
async fn sdk_states(d: &Deployed) -> Vec<String> {
    let out = d
        .lambda
        .list_event_source_mappings()
        .function_name(&d.qualified)
        .send()
        .await
        .unwrap();
    let mut states: Vec<String> = out
        .event_source_mappings()
        .iter()
        .map(|m| m.state().unwrap_or_default().to_string())
        .collect();
    states.sort();
    states
}

async fn sdk_reserved(d: &Deployed) -> Option<i32> {
    d.lambda
        .get_function_concurrency()
        .function_name(&d.name)
        .send()
        .await
        .unwrap()
        .reserved_concurrent_executions()
}

async fn sdk_pause_tag(d: &Deployed) -> Option<String> {
    let arn = d
        .lambda
        .get_function()
        .function_name(&d.name)
        .send()
        .await
        .unwrap()
        .configuration()
        .unwrap()
        .function_arn()
        .unwrap()
        .to_string();
    d.lambda
        .list_tags()
        .resource(arn)
        .send()
        .await
        .unwrap()
        .tags()
        .and_then(|t| t.get(PAUSE_TAG).cloned())
}

#[tokio::test]
async fn status_lists_the_mappings_with_their_settings() {
    let moto = MotoServer::shared();
    let d = deploy(moto).await;
    let status = ctl_json(moto, &["--function", &d.qualified, "status"]);
    assert_eq!(status["function"], d.qualified.as_str());
    assert_eq!(status["reserved_concurrency"], 10);
    let mappings = status["mappings"].as_array().unwrap();
    assert_eq!(mappings.len(), 2, "{status:#}");
    let kinesis = mappings
        .iter()
        .find(|m| m["source"] == d.stream_arn.as_str())
        .expect("the kinesis mapping");
    assert_eq!(kinesis["state"], "Enabled");
    assert_eq!(kinesis["batch_size"], 500);
    assert_eq!(kinesis["batching_window_s"], 1);
    assert_eq!(kinesis["report_batch_item_failures"], true);
    let sqs = mappings
        .iter()
        .find(|m| m["source"] == d.queue_arn.as_str())
        .expect("the sqs mapping");
    assert_eq!(sqs["batch_size"], 10);
    assert_eq!(sqs["maximum_concurrency"], 5);

    // The table for people names the same things.
    let out = ctl(moto, &["--function", &d.qualified, "status"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("reserved concurrency: 10"), "{text}");
    assert!(
        text.contains(&d.stream_arn) && text.contains(&d.queue_arn),
        "{text}"
    );
    assert_eq!(text.matches("Enabled").count(), 2, "{text}");
}

#[tokio::test]
async fn pause_and_resume_toggle_every_mapping() {
    let moto = MotoServer::shared();
    let d = deploy(moto).await;
    let paused = ctl_json(moto, &["--function", &d.qualified, "pause"]);
    assert_eq!(states(&paused), ["Disabled", "Disabled"]);
    assert_eq!(sdk_states(&d).await, ["Disabled", "Disabled"]);
    // A plain pause leaves concurrency alone.
    assert_eq!(sdk_reserved(&d).await, Some(10));

    // Pausing twice is harmless.
    let again = ctl_json(moto, &["--function", &d.qualified, "pause"]);
    assert_eq!(states(&again), ["Disabled", "Disabled"]);

    let resumed = ctl_json(moto, &["--function", &d.qualified, "resume"]);
    assert_eq!(states(&resumed), ["Enabled", "Enabled"]);
    assert_eq!(sdk_states(&d).await, ["Enabled", "Enabled"]);
    assert_eq!(sdk_reserved(&d).await, Some(10));
}

#[tokio::test]
async fn throttled_pause_records_and_restores_concurrency() {
    let moto = MotoServer::shared();
    let d = deploy(moto).await;
    let paused = ctl_json(moto, &["--function", &d.qualified, "pause", "--throttle"]);
    assert_eq!(states(&paused), ["Disabled", "Disabled"]);
    assert_eq!(paused["reserved_concurrency"], 0);
    assert_eq!(paused["concurrency_before_pause"], "10");
    assert_eq!(sdk_reserved(&d).await, Some(0));
    assert_eq!(sdk_pause_tag(&d).await.as_deref(), Some("10"));

    // A second throttled pause must keep the real earlier value, not 0.
    ctl_json(moto, &["--function", &d.qualified, "pause", "--throttle"]);
    assert_eq!(sdk_pause_tag(&d).await.as_deref(), Some("10"));

    let resumed = ctl_json(moto, &["--function", &d.qualified, "resume"]);
    assert_eq!(states(&resumed), ["Enabled", "Enabled"]);
    assert_eq!(resumed["reserved_concurrency"], 10);
    assert_eq!(resumed["concurrency_before_pause"], Value::Null);
    assert_eq!(sdk_reserved(&d).await, Some(10));
    assert_eq!(sdk_pause_tag(&d).await, None);
}

#[tokio::test]
async fn throttled_pause_of_an_unreserved_function_resumes_unreserved() {
    let moto = MotoServer::shared();
    let d = deploy(moto).await;
    ctl_json(moto, &["--function", &d.qualified, "concurrency", "none"]);
    assert_eq!(sdk_reserved(&d).await, None);
    ctl_json(moto, &["--function", &d.qualified, "pause", "--throttle"]);
    assert_eq!(sdk_reserved(&d).await, Some(0));
    assert_eq!(sdk_pause_tag(&d).await.as_deref(), Some("unreserved"));
    ctl_json(moto, &["--function", &d.qualified, "resume"]);
    assert_eq!(sdk_reserved(&d).await, None);
    assert_eq!(sdk_states(&d).await, ["Enabled", "Enabled"]);
}

#[tokio::test]
async fn concurrency_sets_and_removes_the_reservation() {
    let moto = MotoServer::shared();
    let d = deploy(moto).await;
    let status = ctl_json(moto, &["--function", &d.qualified, "concurrency", "3"]);
    assert_eq!(status["reserved_concurrency"], 3);
    assert_eq!(sdk_reserved(&d).await, Some(3));
    // The unqualified name works for function-level settings too.
    ctl_json(moto, &["--function", &d.name, "concurrency", "none"]);
    assert_eq!(sdk_reserved(&d).await, None);

    let out = ctl(moto, &["--function", &d.qualified, "concurrency", "lots"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"lots\""));
    assert_eq!(sdk_reserved(&d).await, None);
}

#[tokio::test]
async fn resume_refuses_a_throttled_function_it_did_not_pause() {
    let moto = MotoServer::shared();
    let d = deploy(moto).await;
    ctl_json(moto, &["--function", &d.qualified, "pause"]);
    ctl_json(moto, &["--function", &d.qualified, "concurrency", "0"]);
    let out = ctl(moto, &["--function", &d.qualified, "resume"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reserved concurrency 0"), "{err}");
    // Nothing was enabled into a throttle.
    assert_eq!(sdk_states(&d).await, ["Disabled", "Disabled"]);
}

#[tokio::test]
async fn endpoint_from_the_environment_and_unknown_functions() {
    let moto = MotoServer::shared();
    let d = deploy(moto).await;
    let out = Command::new(common::tickbridge_exe())
        .args(["ctl", "--function", &d.qualified, "--json", "status"])
        .env_remove("AWS_PROFILE")
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .envs(common::EMULATOR_AWS_ENV)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["mappings"].as_array().unwrap().len(), 2);

    let missing = unique_name("no-such-function");
    let out = ctl(moto, &["--function", &missing, "status"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&missing), "{err}");
    let out = ctl(moto, &["--function", &missing, "pause"]);
    assert!(!out.status.success());
}
