//! infra/template.yaml: cfn-lint and `sam validate --lint` clean, checkov
//! without failed checks (each skip justified), environment names and
//! values the config parser accepts, the settings the deployment must
//! have, and a dedupe table shaped as the store expects.

mod infra_support;

use std::path::PathBuf;
use std::process::Command;

use infra_support::{allowed, common, template_json, text, Stack};
use serde_json::{json, Value};
use tickbridge::config::{Config, StoreKind, VARS};
use tickbridge::pipeline::{BadRecords, PublishMode};

fn template_path() -> PathBuf {
    common::repo_root().join("infra/template.yaml")
}

fn cfn_lint(path: &std::path::Path) -> std::process::Output {
    common::python()
        .args([
            "-c",
            "import sys; from cfnlint.runner import main; sys.exit(main())",
        ])
        .arg(path)
        .output()
        .expect("python runs cfn-lint (pip install -r tests/requirements.txt)")
}

#[test]
fn cfn_lint_is_clean() {
    let out = cfn_lint(&template_path());
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "cfn-lint findings ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The linter really reads the file: an unknown runtime is reported.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("template.yaml");
    let text = std::fs::read_to_string(template_path()).unwrap();
    std::fs::write(&broken, text.replace("provided.al2023", "provided.al2099")).unwrap();
    let out = cfn_lint(&broken);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("E3030"));
}

/// `sam validate --lint` (the SAM CLI's own reading of the template and its
/// cfn-lint rules). `TICKBRIDGE_SAM` names the executable (scripts/test
/// installs it in `.venv-sam`), else `sam` on PATH.
fn sam_validate(path: &std::path::Path) -> std::process::Output {
    let sam = std::env::var_os("TICKBRIDGE_SAM").unwrap_or_else(|| "sam".into());
    Command::new(&sam)
        .args(["validate", "--lint", "--region", "us-east-1", "--template"])
        .arg(path)
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/test installs the SAM CLI: tests/requirements-sam.txt)",
                sam.to_string_lossy()
            )
        })
}

#[test]
fn sam_validate_lint_is_clean() {
    let out = sam_validate(&template_path());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.contains("is a valid SAM Template"),
        "sam validate --lint ({}):\n{said}",
        out.status
    );
    // It really reads the file: a GetAtt of a resource that is not there.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("template.yaml");
    let text = std::fs::read_to_string(template_path()).unwrap();
    assert!(text.contains("!GetAtt DedupeTable.Arn"));
    std::fs::write(
        &broken,
        text.replace("!GetAtt DedupeTable.Arn", "!GetAtt NoSuchTable.Arn"),
    )
    .unwrap();
    let out = sam_validate(&broken);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("E1010"));
}

/// `checkov` next to the test Python (a virtualenv's bin), else on PATH.
fn checkov() -> PathBuf {
    if let Ok(py) = std::env::var("TICKBRIDGE_PYTHON") {
        if let Some(dir) = PathBuf::from(py).parent() {
            let candidate = dir.join("checkov");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("checkov"))
        .find(|p| p.is_file())
        .expect("checkov is installed (pip install -r tests/requirements.txt)")
}

#[test]
fn checkov_fails_nothing_and_every_skip_says_why() {
    // --skip-download: no policy metadata fetched from the network.
    let out = Command::new(checkov())
        .arg("-f")
        .arg(template_path())
        .args([
            "--framework",
            "cloudformation",
            "--skip-download",
            "-o",
            "json",
        ])
        .current_dir(common::repo_root())
        .output()
        .expect("checkov runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let summary = &report["summary"];
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} ({})", c["check_id"], c["resource"], c["check_name"]))
        .collect();
    assert!(failed.is_empty(), "checkov failed checks: {failed:#?}");
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    assert!(summary["passed"].as_u64().unwrap() >= 10, "{summary}");
    for skip in report["results"]["skipped_checks"].as_array().unwrap() {
        let why = skip["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or("");
        assert!(
            why.len() > 40,
            "{} on {} is skipped without a reason",
            skip["check_id"],
            skip["resource"]
        );
    }
}

fn config_of(stack: &Stack) -> Config {
    Config::from_vars(stack.environment()).unwrap_or_else(|e| panic!("template environment: {e}"))
}

#[test]
fn every_environment_variable_is_one_the_config_reads() {
    let stack = Stack::new(template_json(), &[]);
    let env = stack.environment();
    assert!(!env.is_empty());
    for (name, _) in &env {
        assert!(
            VARS.iter().any(|(known, _)| known == name),
            "{name} in the template is not read by src/config.rs"
        );
    }
    // The password is never plain text; the secret's ARN is.
    assert!(env.iter().all(|(k, _)| k != "TICKBRIDGE_TP_PASSWORD"));

    let c = config_of(&stack);
    assert_eq!(c.tp, "tickerplant.internal:5010");
    assert_eq!(c.tp_user.as_deref(), Some("tickbridge"));
    assert!(c.tp_password.is_none());
    assert_eq!(
        c.tp_password_secret.as_deref(),
        Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:tickbridge/tickerplant-AbCdEf")
    );
    assert_eq!(c.store, StoreKind::DynamoDb);
    assert_eq!(c.dedupe_table.as_deref(), Some("tickbridge-dedupe"));
    assert_eq!(
        c.quarantine_queue_url.as_deref(),
        Some("https://sqs.us-east-1.amazonaws.com/123456789012/tickbridge-quarantine.fifo")
    );
    assert_eq!(c.pipeline.publish, PublishMode::Sync);
    assert_eq!(c.pipeline.bad_records, BadRecords::Quarantine);
    assert_eq!(c.pipeline.upd_func, ".u.upd");
    assert_eq!(c.pipeline.key_ttl.as_secs(), 604_800);
    assert_eq!(c.pipeline.deadline_margin.as_millis(), 1500);
    assert!(
        c.schemas_dir.is_none(),
        "empty TICKBRIDGE_SCHEMAS: embedded"
    );
    assert!(!c.source.lanes_by_partition_key);
    assert_eq!(c.metrics_namespace, "tickbridge");
}

#[test]
fn environment_follows_the_parameters() {
    let template = template_json();
    // Parallel Kinesis lanes are shard + partition key (DESIGN §2).
    let c = config_of(&Stack::new(
        template.clone(),
        &[("KinesisParallelizationFactor", "4")],
    ));
    assert!(c.source.lanes_by_partition_key);
    let given = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:tp-Q1w2E3";
    let stack = Stack::new(
        template.clone(),
        &[("TickerplantSecretArn", given), ("FunctionName", "tb2")],
    );
    let c = config_of(&stack);
    assert_eq!(c.tp_password_secret.as_deref(), Some(given));
    assert_eq!(c.dedupe_table.as_deref(), Some("tb2-dedupe"));
    assert!(stack.resources_of_type("AWS::SecretsManager::Secret").len() == 1);
    assert!(!stack.is("CreateSecret"));
    let policy = policy_statements(&stack);
    assert_eq!(statement(&policy, "TickerplantSecret")["Resource"], given);

    // Every choice the template offers parses.
    let base = Stack::new(template.clone(), &[]);
    for (param, var) in [
        ("PublishMode", "TICKBRIDGE_PUBLISH"),
        ("BadRecords", "TICKBRIDGE_BAD_RECORDS"),
        ("LogLevel", "TICKBRIDGE_LOG"),
    ] {
        let values = allowed(base.param_def(param));
        assert!(!values.is_empty(), "{param} has AllowedValues");
        for v in values {
            let stack = Stack::new(template.clone(), &[(param, &v)]);
            let env = stack.environment();
            assert!(env.iter().any(|(k, x)| k == var && *x == v));
            config_of(&stack);
        }
    }
    let c = config_of(&Stack::new(
        template,
        &[("PublishMode", "sync"), ("BadRecords", "fail")],
    ));
    assert_eq!(c.pipeline.publish, PublishMode::Sync);
    assert_eq!(c.pipeline.bad_records, BadRecords::Fail);
}

fn policy_statements(stack: &Stack) -> Vec<Value> {
    let role = stack.props("FunctionRole");
    role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .clone()
}

fn statement<'a>(statements: &'a [Value], sid: &str) -> &'a Value {
    statements
        .iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid}"))
}

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().map(text).collect(),
        other => vec![text(other)],
    }
}

#[test]
fn function_and_mappings_have_the_required_settings() {
    let stack = Stack::new(template_json(), &[]);
    let f = stack.props("TickbridgeFunction");
    assert_eq!(f["Runtime"], "provided.al2023");
    assert_eq!(f["Handler"], "bootstrap");
    assert_eq!(
        allowed(stack.param_def("Architecture")),
        ["arm64", "x86_64"]
    );
    assert_eq!(f["Architectures"], json!(["arm64"]));
    assert_eq!(f["MemorySize"], "512");
    assert_eq!(f["Timeout"], "60");
    assert_eq!(f["ReservedConcurrentExecutions"], "10");
    // Optional parts are absent under the defaults, present when asked for.
    assert!(f.get("ProvisionedConcurrencyConfig").is_none());
    assert!(f.get("VpcConfig").is_none());
    let vpc = Stack::new(
        template_json(),
        &[
            ("SubnetIds", "subnet-1,subnet-2"),
            ("SecurityGroupIds", "sg-1"),
            ("ProvisionedConcurrency", "2"),
        ],
    );
    let fv = vpc.props("TickbridgeFunction");
    assert_eq!(
        fv["VpcConfig"]["SubnetIds"],
        json!(["subnet-1", "subnet-2"])
    );
    assert_eq!(fv["VpcConfig"]["SecurityGroupIds"], json!(["sg-1"]));
    assert_eq!(
        fv["ProvisionedConcurrencyConfig"]["ProvisionedConcurrentExecutions"],
        "2"
    );
    assert_eq!(fv["AutoPublishAlias"], "live");

    let k = stack.props("KinesisMapping");
    assert_eq!(k["FunctionName"], "tickbridge:live");
    assert_eq!(
        k["EventSourceArn"],
        "arn:aws:kinesis:us-east-1:123456789012:stream/tickbridge-ticks"
    );
    for key in [
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "ParallelizationFactor",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
        "StartingPosition",
    ] {
        assert!(k.get(key).is_some(), "Kinesis mapping lacks {key}");
    }
    assert_eq!(k["BisectBatchOnFunctionError"], true);
    assert_eq!(
        k["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(
        k["DestinationConfig"]["OnFailure"]["Destination"],
        "arn:aws:sqs:us-east-1:123456789012:tickbridge-kinesis-failures"
    );
    // A record may not outlive the stream's retention while being retried.
    let age: i64 = text(&k["MaximumRecordAgeInSeconds"]).parse().unwrap();
    let retention: i64 = stack.param("KinesisRetentionHours").parse().unwrap();
    assert!(age <= retention * 3600);

    let s = stack.props("SqsMapping");
    assert_eq!(s["FunctionName"], "tickbridge:live");
    assert_eq!(
        s["EventSourceArn"],
        "arn:aws:sqs:us-east-1:123456789012:tickbridge-ticks.fifo"
    );
    assert_eq!(
        s["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert!(s["ScalingConfig"]["MaximumConcurrency"].is_string());
    let batch = stack.param_def("SqsBatchSize");
    assert!(batch["MaxValue"].as_i64().unwrap() <= 10);
    assert!(text(&s["BatchSize"]).parse::<i64>().unwrap() <= 10);
}

#[test]
fn queues_table_and_alarms_have_the_required_settings() {
    let stack = Stack::new(template_json(), &[]);
    let q = stack.props("TicksQueue");
    assert_eq!(q["FifoQueue"], true);
    assert_eq!(
        q["RedrivePolicy"]["deadLetterTargetArn"],
        "arn:aws:sqs:us-east-1:123456789012:tickbridge-ticks-dlq.fifo"
    );
    let receives = stack.param_def("SqsMaxReceiveCount");
    assert!(receives["MinValue"].as_i64().unwrap() >= 5);
    assert!(
        text(&q["RedrivePolicy"]["maxReceiveCount"])
            .parse::<i64>()
            .unwrap()
            >= 5
    );
    assert_eq!(stack.props("TicksDeadLetterQueue")["FifoQueue"], true);
    assert_eq!(stack.props("QuarantineQueue")["FifoQueue"], true);
    // Visibility is six times the timeout for every timeout allowed.
    for timeout in allowed(stack.param_def("Timeout")) {
        let s = Stack::new(template_json(), &[("Timeout", &timeout)]);
        let vis = s.props("TicksQueue")["VisibilityTimeout"].as_i64().unwrap();
        let t: i64 = timeout.parse().unwrap();
        assert!(vis >= 6 * t, "visibility {vis} for timeout {t}");
        assert_eq!(s.props("TickbridgeFunction")["Timeout"], timeout);
    }
    for name in stack.resources_of_type("AWS::SQS::Queue") {
        assert_eq!(stack.props(&name)["SqsManagedSseEnabled"], true, "{name}");
    }

    let t = stack.props("DedupeTable");
    assert_eq!(t["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        t["TimeToLiveSpecification"],
        json!({"AttributeName": "expiration", "Enabled": true})
    );
    assert_eq!(
        t["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );

    let alarms: Vec<(String, String, String)> = stack
        .resources_of_type("AWS::CloudWatch::Alarm")
        .iter()
        .map(|n| {
            let p = stack.props(n);
            (
                text(&p["Namespace"]),
                text(&p["MetricName"]),
                text(&p["Dimensions"][0]["Value"]),
            )
        })
        .collect();
    for want in [
        ("AWS/Lambda", "IteratorAge", "tickbridge"),
        ("AWS/Lambda", "Errors", "tickbridge"),
        (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "tickbridge-ticks-dlq.fifo",
        ),
        (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "tickbridge-kinesis-failures",
        ),
        (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "tickbridge-quarantine.fifo",
        ),
    ] {
        assert!(
            alarms
                .iter()
                .any(|a| (a.0.as_str(), a.1.as_str(), a.2.as_str()) == want),
            "no alarm {want:?} in {alarms:?}"
        );
    }
}

#[test]
fn the_role_grants_only_named_resources() {
    let stack = Stack::new(template_json(), &[]);
    let statements = policy_statements(&stack);
    for s in &statements {
        assert_eq!(s["Effect"], "Allow");
        for action in as_list(&s["Action"]) {
            assert!(!action.contains('*'), "wildcard action {action}");
        }
        for resource in as_list(&s["Resource"]) {
            // Named ARNs only; the log group's own streams are the one `:*`.
            let named = resource.starts_with("arn:aws:")
                && (!resource.contains('*')
                    || resource.ends_with(":log-group:/aws/lambda/tickbridge:*"));
            assert!(named, "{} grants {resource}", s["Sid"]);
        }
    }
    assert_eq!(
        as_list(&statement(&statements, "Dedupe")["Resource"]),
        ["arn:aws:dynamodb:us-east-1:123456789012:table/tickbridge-dedupe"]
    );
    assert_eq!(
        as_list(&statement(&statements, "SendFailuresAndQuarantine")["Resource"]),
        [
            "arn:aws:sqs:us-east-1:123456789012:tickbridge-kinesis-failures",
            "arn:aws:sqs:us-east-1:123456789012:tickbridge-quarantine.fifo"
        ]
    );
    let env = stack.environment();
    let secret = env
        .iter()
        .find(|(k, _)| k == "TICKBRIDGE_TP_PASSWORD_SECRET_ARN")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert_eq!(
        text(&statement(&statements, "TickerplantSecret")["Resource"]),
        secret
    );
    // Managed policies only where resource "*" is unavoidable: X-Ray's
    // write actions always, the ENI policy only in a VPC.
    let xray = "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess";
    assert_eq!(
        stack.props("FunctionRole")["ManagedPolicyArns"],
        json!([xray])
    );
    let vpc = Stack::new(template_json(), &[("SubnetIds", "subnet-1")]);
    assert_eq!(
        vpc.props("FunctionRole")["ManagedPolicyArns"],
        json!([
            xray,
            "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
        ])
    );
}

/// `sam build` builds the function with cargo-lambda from the workspace
/// root, and the function is traced by X-Ray.
#[test]
fn sam_builds_with_cargo_lambda_and_traces_with_xray() {
    let stack = Stack::new(template_json(), &[]);
    let meta = &stack.resource("TickbridgeFunction")["Metadata"];
    assert_eq!(meta["BuildMethod"], "rust-cargolambda");
    assert_eq!(meta["BuildProperties"]["Binary"], "bootstrap");
    let f = stack.props("TickbridgeFunction");
    assert_eq!(f["Tracing"], "Active");
    // cargo-lambda needs the directory holding the Cargo.toml that
    // declares the `bootstrap` binary.
    let code_uri = common::repo_root().join("infra").join(text(&f["CodeUri"]));
    let manifest = std::fs::read_to_string(code_uri.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("name = \"bootstrap\""),
        "{} does not declare the bootstrap binary",
        code_uri.display()
    );
}

/// `(major, minor, patch)` of `1.94.1` or `1.95`.
fn version(text: &str) -> (u32, u32, u32) {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap());
    let major = parts.next().unwrap();
    (major, parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The highest `rust-version` any package locked in Cargo.lock declares,
/// read from cargo's registry sources.
fn locked_rust_version() -> (u32, u32, u32) {
    let lock = std::fs::read_to_string(common::repo_root().join("Cargo.lock")).unwrap();
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let registries: Vec<PathBuf> = std::fs::read_dir(home.join("registry/src"))
        .expect("cargo registry sources")
        .map(|e| e.unwrap().path())
        .collect();
    let mut best = (0, 0, 0);
    let mut seen = 0;
    for block in lock.split("[[package]]") {
        let field = |k: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix(" = \"")?.strip_suffix('"'))
        };
        let (Some(name), Some(ver), Some(_)) = (field("name"), field("version"), field("source"))
        else {
            continue;
        };
        let Some(manifest) = registries
            .iter()
            .map(|r| r.join(format!("{name}-{ver}/Cargo.toml")))
            .find(|p| p.is_file())
        else {
            continue;
        };
        seen += 1;
        let text = std::fs::read_to_string(manifest).unwrap();
        if let Some(v) = text
            .lines()
            .find_map(|l| l.strip_prefix("rust-version = \"")?.strip_suffix('"'))
        {
            best = best.max(version(v));
        }
    }
    assert!(
        seen > 100,
        "only {seen} locked packages found in the registry"
    );
    best
}

fn manifest_rust_version(path: &str) -> (u32, u32, u32) {
    let text = std::fs::read_to_string(common::repo_root().join(path)).unwrap();
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \"")?.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{path} has no rust-version"));
    version(v)
}

/// The LocalStack image builds with `cargo build --locked`: its Rust must
/// be at least what every locked crate needs, and the manifests' declared
/// minimum must be that same version (not an older, false one).
#[test]
fn rust_versions_match_the_lock_file() {
    let needed = locked_rust_version();
    assert!(needed >= (1, 94, 1), "{needed:?}");
    for manifest in ["Cargo.toml", "tools/Cargo.toml"] {
        assert_eq!(manifest_rust_version(manifest), needed, "{manifest}");
    }
    let dockerfile =
        std::fs::read_to_string(common::repo_root().join("localstack/Dockerfile.tp")).unwrap();
    let image = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .expect("Dockerfile.tp builds FROM rust:<version>");
    let tag = image.split(['-', ' ']).next().unwrap();
    assert!(
        version(tag) >= needed,
        "Dockerfile.tp uses rust:{tag}, the lock file needs {needed:?}"
    );
}

/// The table the template declares has the key and TTL attribute the
/// DynamoDB store uses: compared with a table the store itself creates.
#[tokio::test]
async fn dedupe_table_matches_the_store() {
    let moto = common::moto::MotoServer::shared();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let name = common::moto::unique_name("infra-dedupe");
    tickbridge::dedupe::dynamodb::ensure_table(&client, &name)
        .await
        .unwrap();
    let described = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let table = described.table().unwrap();
    let keys: Vec<Value> = table
        .key_schema()
        .iter()
        .map(|k| json!({"AttributeName": k.attribute_name(), "KeyType": k.key_type().as_str()}))
        .collect();
    let attrs: Vec<Value> = table
        .attribute_definitions()
        .iter()
        .map(|a| {
            json!({"AttributeName": a.attribute_name(), "AttributeType": a.attribute_type().as_str()})
        })
        .collect();
    let ttl = client
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let ttl_attr = ttl
        .time_to_live_description()
        .and_then(|d| d.attribute_name())
        .unwrap()
        .to_string();

    let stack = Stack::new(template_json(), &[]);
    let t = stack.props("DedupeTable");
    assert_eq!(t["KeySchema"], Value::Array(keys));
    assert_eq!(t["AttributeDefinitions"], Value::Array(attrs));
    assert_eq!(t["TimeToLiveSpecification"]["AttributeName"], ttl_attr);
}

/// S3 (issue 14): no S3 access by default; with a bucket, s3:GetObject on
/// that bucket's objects only, s3:DeleteObject only with deletion after
/// commit, and the EventBridge rule only when asked for.
#[test]
fn s3_access_is_to_the_named_bucket_only() {
    let template = template_json();
    let none = Stack::new(template.clone(), &[]);
    let sids: Vec<String> = policy_statements(&none)
        .iter()
        .map(|s| text(&s["Sid"]))
        .collect();
    assert!(!sids
        .iter()
        .any(|s| s == "ReadObjects" || s == "DeleteClaimChecks"));
    assert!(!none.is("S3ViaEventBridge"));
    let c = config_of(&none);
    assert_eq!(
        c.s3.claim_check_delete,
        tickbridge::s3::claim_check::DeleteMode::Never
    );

    let read = Stack::new(template.clone(), &[("S3BucketName", "ticks-in")]);
    let statements = policy_statements(&read);
    let r = statement(&statements, "ReadObjects");
    assert_eq!(
        as_list(&r["Action"]),
        ["s3:GetObject", "s3:GetObjectVersion"]
    );
    assert_eq!(as_list(&r["Resource"]), ["arn:aws:s3:::ticks-in/*"]);
    assert!(!statements.iter().any(|s| s["Sid"] == "DeleteClaimChecks"));
    assert!(!read.is("S3ViaEventBridge"));

    let all = Stack::new(
        template,
        &[
            ("S3BucketName", "ticks-in"),
            ("ClaimCheckDelete", "after-commit"),
            ("S3Notifications", "eventbridge"),
        ],
    );
    let statements = policy_statements(&all);
    let d = statement(&statements, "DeleteClaimChecks");
    assert_eq!(as_list(&d["Action"]), ["s3:DeleteObject"]);
    assert_eq!(as_list(&d["Resource"]), ["arn:aws:s3:::ticks-in/*"]);
    assert_eq!(
        config_of(&all).s3.claim_check_delete,
        tickbridge::s3::claim_check::DeleteMode::AfterCommit
    );
    assert!(all.is("S3ViaEventBridge"));
    assert_eq!(
        all.resource("S3ObjectRule")["Condition"],
        "S3ViaEventBridge"
    );
    let rule = all.props("S3ObjectRule");
    assert_eq!(rule["EventPattern"]["source"], json!(["aws.s3"]));
    assert_eq!(
        rule["EventPattern"]["detail"]["bucket"]["name"],
        json!(["ticks-in"])
    );
}
