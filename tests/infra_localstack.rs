//! localstack/ agrees with infra/template.yaml. There is no Docker here, so
//! the init script runs with a recording stand-in for `awslocal` on PATH:
//! every call it would make to LocalStack is checked against what the
//! template declares under its defaults (same names, same settings). The
//! compose file is checked for the wiring the script relies on.

mod infra_support;

use std::collections::HashMap;
use std::path::PathBuf;

use infra_support::{common, template_json, text, yaml_json, Stack};
use serde_json::{json, Value};
use tickbridge::config::Config;

fn localstack() -> PathBuf {
    common::repo_root().join("localstack")
}

/// `KEY=VALUE` lines of init/stack.env.
fn stack_env() -> HashMap<String, String> {
    let text = std::fs::read_to_string(localstack().join("init/stack.env")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=VALUE");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// One recorded `awslocal` call: its arguments.
struct Call(Vec<String>);

impl Call {
    fn is(&self, service: &str, op: &str) -> bool {
        self.0.first().map(String::as_str) == Some(service)
            && self.0.get(1).map(String::as_str) == Some(op)
    }
    fn flag(&self, name: &str) -> Option<&str> {
        let i = self.0.iter().position(|a| a == name)?;
        self.0.get(i + 1).map(String::as_str)
    }
    fn value(&self, name: &str) -> &str {
        self.flag(name)
            .unwrap_or_else(|| panic!("{:?} has no {name}", self.0))
    }
    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
    fn json(&self, name: &str) -> Value {
        serde_json::from_str(self.value(name))
            .unwrap_or_else(|e| panic!("{name} of {:?} is not JSON: {e}", self.0))
    }
}

/// Runs init/10-tickbridge.sh with the recording `awslocal` first on PATH.
fn run_init(extra_env: &[(&str, &str)]) -> Vec<Call> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.jsonl");
    let python = std::env::var("TICKBRIDGE_PYTHON").unwrap_or_else(|_| "python3".into());
    let shim = common::repo_root().join("tests/py/infra_awslocal_shim.py");
    let awslocal = dir.path().join("awslocal");
    std::fs::write(
        &awslocal,
        format!(
            "#!/bin/sh\nexec \"{python}\" \"{}\" \"$@\"\n",
            shim.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&awslocal, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(localstack().join("init/10-tickbridge.sh"))
        .env("PATH", path)
        .env("AWSLOCAL_LOG", &log)
        .env_remove("LAMBDA_ARCHITECTURE")
        .env_remove("AWS_DEFAULT_REGION");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("bash runs the init script");
    assert!(
        out.status.success(),
        "init script failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("stack ready"));
    std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| Call(serde_json::from_str(l).unwrap()))
        .collect()
}

fn find<'a>(calls: &'a [Call], service: &str, op: &str, pred: impl Fn(&Call) -> bool) -> &'a Call {
    let mut found = calls.iter().filter(|c| c.is(service, op) && pred(c));
    let call = found
        .next()
        .unwrap_or_else(|| panic!("the init script makes no matching {service} {op}"));
    assert!(found.next().is_none(), "{service} {op} made twice");
    call
}

/// The template's defaults with LocalStack's account in the ARNs.
fn localstack_arn(template_arn: &str) -> String {
    template_arn.replace(infra_support::ACCOUNT, "000000000000")
}

#[test]
fn stack_env_holds_the_template_defaults() {
    let stack = Stack::new(template_json(), &[]);
    let env = stack_env();
    let same = [
        ("FUNCTION_NAME", stack.param("FunctionName")),
        ("MEMORY_SIZE", stack.param("MemorySize")),
        ("TIMEOUT", stack.param("Timeout")),
        ("RESERVED_CONCURRENCY", stack.param("ReservedConcurrency")),
        ("SHARD_COUNT", stack.param("KinesisShardCount")),
        ("RETENTION_HOURS", stack.param("KinesisRetentionHours")),
        ("MAX_RECEIVE_COUNT", stack.param("SqsMaxReceiveCount")),
        ("KINESIS_BATCH_SIZE", stack.param("KinesisBatchSize")),
        (
            "KINESIS_BATCHING_WINDOW",
            stack.param("KinesisBatchingWindow"),
        ),
        (
            "KINESIS_PARALLELIZATION_FACTOR",
            stack.param("KinesisParallelizationFactor"),
        ),
        (
            "KINESIS_MAXIMUM_RETRY_ATTEMPTS",
            stack.param("KinesisMaximumRetryAttempts"),
        ),
        (
            "KINESIS_MAXIMUM_RECORD_AGE",
            stack.param("KinesisMaximumRecordAgeSeconds"),
        ),
        (
            "KINESIS_STARTING_POSITION",
            stack.param("KinesisStartingPosition"),
        ),
        ("SQS_BATCH_SIZE", stack.param("SqsBatchSize")),
        (
            "SQS_MAXIMUM_CONCURRENCY",
            stack.param("SqsMaximumConcurrency"),
        ),
        ("TP_USER", stack.param("TickerplantUser")),
        ("UPD_FUNC", stack.param("UpdFunction")),
        ("PUBLISH_MODE", stack.param("PublishMode")),
        ("BAD_RECORDS", stack.param("BadRecords")),
        ("CLAIM_CHECK_DELETE", stack.param("ClaimCheckDelete")),
        ("DEDUPE_TTL_SECONDS", stack.param("DedupeTtlSeconds")),
        ("DEADLINE_MARGIN_MS", stack.param("DeadlineMarginMs")),
        ("LOG_LEVEL", stack.param("LogLevel")),
        ("METRICS_NAMESPACE", stack.param("MetricsNamespace")),
        ("STREAM_NAME", text(&stack.props("TicksStream")["Name"])),
        ("QUEUE_NAME", text(&stack.props("TicksQueue")["QueueName"])),
        (
            "DLQ_NAME",
            text(&stack.props("TicksDeadLetterQueue")["QueueName"]),
        ),
        (
            "FAILURE_QUEUE_NAME",
            text(&stack.props("KinesisFailureQueue")["QueueName"]),
        ),
        (
            "QUARANTINE_QUEUE_NAME",
            text(&stack.props("QuarantineQueue")["QueueName"]),
        ),
        (
            "VISIBILITY_TIMEOUT",
            text(&stack.props("TicksQueue")["VisibilityTimeout"]),
        ),
        (
            "QUEUE_RETENTION",
            text(&stack.props("TicksQueue")["MessageRetentionPeriod"]),
        ),
        (
            "DLQ_RETENTION",
            text(&stack.props("TicksDeadLetterQueue")["MessageRetentionPeriod"]),
        ),
        ("TABLE_NAME", text(&stack.props("DedupeTable")["TableName"])),
        (
            "SECRET_NAME",
            text(&stack.props("TickerplantSecret")["Name"]),
        ),
        (
            "FUNCTION_ALIAS",
            text(&stack.resource("TickbridgeFunction")["Properties"]["AutoPublishAlias"]),
        ),
    ];
    for (key, want) in same {
        assert_eq!(
            env.get(key).map(String::as_str),
            Some(want.as_str()),
            "stack.env {key}"
        );
    }
}

#[test]
fn init_script_creates_the_template_resources_with_its_settings() {
    let stack = Stack::new(template_json(), &[]);
    let calls = run_init(&[]);

    let stream = stack.props("TicksStream");
    let c = find(&calls, "kinesis", "create-stream", |_| true);
    assert_eq!(c.value("--stream-name"), text(&stream["Name"]));
    assert_eq!(c.value("--shard-count"), text(&stream["ShardCount"]));
    // 24 h is Kinesis's default; the script raises retention only above it.
    assert_eq!(text(&stream["RetentionPeriodHours"]), "24");
    assert!(!calls
        .iter()
        .any(|c| c.is("kinesis", "increase-stream-retention-period")));

    // Every queue of the template, with the same attributes.
    let queues = stack.resources_of_type("AWS::SQS::Queue");
    let creates: Vec<&Call> = calls
        .iter()
        .filter(|c| c.is("sqs", "create-queue"))
        .collect();
    assert_eq!(creates.len(), queues.len());
    for q in &queues {
        let props = stack.props(q);
        let name = text(&props["QueueName"]);
        let c = find(&calls, "sqs", "create-queue", |c| {
            c.flag("--queue-name") == Some(&name)
        });
        let attrs = c.json("--attributes");
        let fifo = props["FifoQueue"] == true;
        assert_eq!(attrs["FifoQueue"] == "true", fifo, "{name} FifoQueue");
        assert_eq!(
            attrs["MessageRetentionPeriod"],
            text(&props["MessageRetentionPeriod"]),
            "{name} retention"
        );
        for key in ["VisibilityTimeout", "ContentBasedDeduplication"] {
            if !props[key].is_null() {
                assert_eq!(attrs[key], text(&props[key]), "{name} {key}");
            }
        }
        if let Some(redrive) = props.get("RedrivePolicy") {
            let got: Value =
                serde_json::from_str(attrs["RedrivePolicy"].as_str().unwrap()).unwrap();
            assert_eq!(
                got["deadLetterTargetArn"],
                localstack_arn(&text(&redrive["deadLetterTargetArn"]))
            );
            assert_eq!(got["maxReceiveCount"], text(&redrive["maxReceiveCount"]));
        } else {
            assert!(attrs.get("RedrivePolicy").is_none(), "{name}");
        }
    }

    let table = stack.props("DedupeTable");
    let name = text(&table["TableName"]);
    let c = find(&calls, "dynamodb", "create-table", |_| true);
    assert_eq!(c.value("--table-name"), name);
    let key = &table["KeySchema"][0];
    assert_eq!(
        c.value("--key-schema"),
        format!(
            "AttributeName={},KeyType={}",
            text(&key["AttributeName"]),
            text(&key["KeyType"])
        )
    );
    let attr = &table["AttributeDefinitions"][0];
    assert_eq!(
        c.value("--attribute-definitions"),
        format!(
            "AttributeName={},AttributeType={}",
            text(&attr["AttributeName"]),
            text(&attr["AttributeType"])
        )
    );
    assert_eq!(c.value("--billing-mode"), text(&table["BillingMode"]));
    let c = find(&calls, "dynamodb", "update-time-to-live", |_| true);
    assert_eq!(c.value("--table-name"), name);
    assert_eq!(
        c.value("--time-to-live-specification"),
        format!(
            "Enabled=true,AttributeName={}",
            text(&table["TimeToLiveSpecification"]["AttributeName"])
        )
    );
    let c = find(&calls, "dynamodb", "update-continuous-backups", |_| true);
    assert_eq!(
        c.value("--point-in-time-recovery-specification"),
        "PointInTimeRecoveryEnabled=true"
    );

    let c = find(&calls, "secretsmanager", "create-secret", |_| true);
    assert_eq!(
        c.value("--name"),
        text(&stack.props("TickerplantSecret")["Name"])
    );
    let secret: Value = c.json("--secret-string");
    assert_eq!(secret["username"], stack.param("TickerplantUser"));

    let f = stack.props("TickbridgeFunction");
    let c = find(&calls, "lambda", "create-function", |_| true);
    assert_eq!(c.value("--function-name"), text(&f["FunctionName"]));
    assert_eq!(c.value("--runtime"), text(&f["Runtime"]));
    assert_eq!(c.value("--handler"), text(&f["Handler"]));
    assert_eq!(c.value("--memory-size"), text(&f["MemorySize"]));
    assert_eq!(c.value("--timeout"), text(&f["Timeout"]));
    assert!(["arm64", "x86_64"].contains(&c.value("--architectures")));
    let c = find(&calls, "lambda", "put-function-concurrency", |_| true);
    assert_eq!(
        c.value("--reserved-concurrent-executions"),
        text(&f["ReservedConcurrentExecutions"])
    );
    let c = find(&calls, "lambda", "create-alias", |_| true);
    assert_eq!(c.value("--name"), text(&f["AutoPublishAlias"]));

    // The mappings, flag by flag against the template's properties.
    let k = stack.props("KinesisMapping");
    let kinesis_arn = localstack_arn(&text(&k["EventSourceArn"]));
    let c = find(&calls, "lambda", "create-event-source-mapping", |c| {
        c.flag("--event-source-arn") == Some(&kinesis_arn)
    });
    assert_eq!(c.value("--function-name"), text(&k["FunctionName"]));
    for (flag, prop) in [
        ("--starting-position", "StartingPosition"),
        ("--batch-size", "BatchSize"),
        (
            "--maximum-batching-window-in-seconds",
            "MaximumBatchingWindowInSeconds",
        ),
        ("--parallelization-factor", "ParallelizationFactor"),
        ("--maximum-retry-attempts", "MaximumRetryAttempts"),
        (
            "--maximum-record-age-in-seconds",
            "MaximumRecordAgeInSeconds",
        ),
    ] {
        assert_eq!(c.value(flag), text(&k[prop]), "Kinesis mapping {prop}");
    }
    assert_eq!(k["BisectBatchOnFunctionError"], true);
    assert!(c.has("--bisect-batch-on-function-error"));
    assert_eq!(
        c.value("--function-response-types"),
        "ReportBatchItemFailures"
    );
    assert_eq!(
        c.value("--destination-config"),
        format!(
            "OnFailure={{Destination={}}}",
            localstack_arn(&text(&k["DestinationConfig"]["OnFailure"]["Destination"]))
        )
    );
    let s = stack.props("SqsMapping");
    let queue_arn = localstack_arn(&text(&s["EventSourceArn"]));
    let c = find(&calls, "lambda", "create-event-source-mapping", |c| {
        c.flag("--event-source-arn") == Some(&queue_arn)
    });
    assert_eq!(c.value("--function-name"), text(&s["FunctionName"]));
    assert_eq!(c.value("--batch-size"), text(&s["BatchSize"]));
    assert_eq!(
        c.value("--scaling-config"),
        format!(
            "MaximumConcurrency={}",
            text(&s["ScalingConfig"]["MaximumConcurrency"])
        )
    );
    assert_eq!(
        c.value("--function-response-types"),
        "ReportBatchItemFailures"
    );
}

#[test]
fn init_script_gives_the_function_the_template_environment() {
    let stack = Stack::new(template_json(), &[]);
    let template_env: HashMap<String, String> = stack.environment().into_iter().collect();
    let calls = run_init(&[]);
    let c = find(&calls, "lambda", "create-function", |_| true);
    let env = c.json("--environment");
    let vars: HashMap<String, String> = env["Variables"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), text(v)))
        .collect();
    let mut local_names: Vec<&String> = vars
        .keys()
        .filter(|k| k.starts_with("TICKBRIDGE_"))
        .collect();
    let mut template_names: Vec<&String> = template_env.keys().collect();
    local_names.sort();
    template_names.sort();
    assert_eq!(local_names, template_names, "the same TICKBRIDGE_ settings");
    // The one extra: where function containers reach LocalStack.
    let extra: Vec<&String> = vars
        .keys()
        .filter(|k| !k.starts_with("TICKBRIDGE_"))
        .collect();
    assert_eq!(extra, ["AWS_ENDPOINT_URL"]);

    let secret = find(&calls, "secretsmanager", "create-secret", |_| true);
    let quarantine_name = text(&stack.props("QuarantineQueue")["QueueName"]);
    for (name, value) in &template_env {
        let local = &vars[name];
        match name.as_str() {
            // Deployment-specific: the compose service, and what LocalStack returned.
            "TICKBRIDGE_TP" => assert_eq!(local, &stack_env()["TP_ADDRESS"]),
            "TICKBRIDGE_TP_PASSWORD_SECRET_ARN" => assert!(
                local.contains(&format!(":secret:{}-", secret.value("--name"))),
                "{local}"
            ),
            "TICKBRIDGE_QUARANTINE_QUEUE_URL" => {
                assert!(local.ends_with(&format!("/{quarantine_name}")), "{local}")
            }
            _ => assert_eq!(local, value, "{name}"),
        }
    }
    // The function would start with these settings.
    let c = Config::from_vars(vars.clone()).unwrap();
    assert_eq!(c.tp, "tp:5010");
    assert!(c.tp_password.is_none() && c.tp_password_secret.is_some());

    // Parallel lanes follow the parallelization factor here too.
    let script = std::fs::read_to_string(localstack().join("init/10-tickbridge.sh")).unwrap();
    assert!(script.contains("KINESIS_PARALLELIZATION_FACTOR\" -gt 1"));
}

#[test]
fn init_script_follows_the_machine_architecture_or_the_override() {
    let calls = run_init(&[("LAMBDA_ARCHITECTURE", "arm64")]);
    let c = find(&calls, "lambda", "create-function", |_| true);
    assert_eq!(c.value("--architectures"), "arm64");
    let calls = run_init(&[]);
    let c = find(&calls, "lambda", "create-function", |_| true);
    let want = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86_64"
    };
    assert_eq!(c.value("--architectures"), want);
    // LocalStack runs only executable init scripts.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(localstack().join("init/10-tickbridge.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "init script is not executable");
}

#[test]
fn compose_runs_localstack_and_the_stand_in_the_script_expects() {
    let compose = yaml_json(&localstack().join("docker-compose.yml"), false);
    let env = stack_env();
    let ls = &compose["services"]["localstack"];
    let tp = &compose["services"]["tp"];
    assert!(text(&ls["image"]).starts_with("localstack/localstack:"));
    let services = text(&ls["environment"]["SERVICES"]);
    for s in [
        "lambda",
        "kinesis",
        "sqs",
        "dynamodb",
        "secretsmanager",
        "iam",
    ] {
        assert!(services.split(',').any(|x| x == s), "LocalStack lacks {s}");
    }
    let volumes: Vec<String> = ls["volumes"].as_array().unwrap().iter().map(text).collect();
    assert!(volumes.contains(&"./init:/etc/localstack/init/ready.d:ro".to_string()));
    // The artifact cargo lambda writes is where the script reads it.
    let artifact_dir = std::path::Path::new(&env["ARTIFACT"]).parent().unwrap();
    assert!(volumes.contains(&format!(
        "../target/lambda/bootstrap:{}:ro",
        artifact_dir.display()
    )));
    assert!(volumes
        .iter()
        .any(|v| v.starts_with("/var/run/docker.sock:")));

    // Function containers join the network where `tp` and `localstack` are.
    let network = text(&ls["environment"]["LAMBDA_DOCKER_NETWORK"]);
    assert_eq!(text(&compose["networks"]["tickbridge"]["name"]), network);
    assert_eq!(tp["networks"], json!(["tickbridge"]));
    assert_eq!(ls["networks"], json!(["tickbridge"]));
    let (host, port) = env["TP_ADDRESS"].split_once(':').unwrap();
    assert_eq!(host, "tp");
    assert!(env["LOCALSTACK_ENDPOINT"].starts_with("http://localstack:4566"));

    // The stand-in's command is one the real CLI accepts, on that port,
    // with the user file holding the secret's user and password.
    let mut argv = vec!["tickbridge".to_string()];
    argv.extend(tp["command"].as_array().unwrap().iter().map(text));
    let cli = <tickbridge_tools::cli::Cli as clap::Parser>::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("tp command {argv:?}: {e}"));
    let tickbridge_tools::cli::Command::Tp(args) = cli.command else {
        panic!("the tp service does not run `tickbridge tp`");
    };
    assert_eq!(args.port.to_string(), port);
    assert_eq!(args.bind.to_string(), "0.0.0.0");
    let users_in_container = args.users.expect("the stand-in requires a password");
    let tp_volumes: Vec<String> = tp["volumes"].as_array().unwrap().iter().map(text).collect();
    let users_mount = format!("./tp-users:{}:ro", users_in_container.display());
    assert!(tp_volumes.contains(&users_mount), "{tp_volumes:?}");
    let users = std::fs::read_to_string(localstack().join("tp-users")).unwrap();
    assert_eq!(
        users.trim(),
        format!("{}:{}", env["TP_USER"], env["TP_PASSWORD"])
    );
    assert!(tp_volumes.contains(&format!(
        "../schemas:{}:ro",
        args.schemas
            .as_ref()
            .expect("compose passes --schemas")
            .display()
    )));
    assert_eq!(text(&tp["build"]["dockerfile"]), "localstack/Dockerfile.tp");
    assert!(localstack().join("Dockerfile.tp").is_file());
}
