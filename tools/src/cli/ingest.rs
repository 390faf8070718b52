//! `tickbridge ingest s3://bucket/prefix`: backfills outside Lambda. The
//! objects under the prefix, in key order (ListObjectsV2), go through the
//! same object path and checkpoints as the Lambda's S3 notifications
//! (`App::ingest_object`), so a run can be repeated or resumed: finished
//! objects are skipped, a stopped one continues after its checkpoint.
//! A progress line over bytes on stderr, a summary on stdout; exit 1 when
//! an object failed or was left pending (with `--dry-run`, also when a bad
//! line was found).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tickbridge::app::App;
use tickbridge::pipeline::BatchContext;
use tickbridge::s3::ingest::ObjectStatus;
use tickbridge::s3::ObjectRef;

use super::invoke::{bridge_settings, start_app};

#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// Objects to ingest: `s3://bucket/prefix` (or `s3://bucket` for all).
    pub url: String,
    /// Tickerplant (`host:port`, `tls://host:port`, `unix:///path`);
    /// default `TICKBRIDGE_TP` or 127.0.0.1:5010.
    #[arg(long)]
    pub tp: Option<String>,
    /// Where checkpoints live. `memory` lasts for this one run; `dynamodb`
    /// shares them with the Lambda.
    #[arg(long, value_parser = ["memory", "dynamodb"], default_value = "memory")]
    pub store: String,
    /// The DynamoDB table (with `--store dynamodb`).
    #[arg(long)]
    pub dedupe_table: Option<String>,
    /// SQS queue for bad lines; default `TICKBRIDGE_QUARANTINE_QUEUE_URL`.
    /// Required with `--store dynamodb` (a bad line is committed once
    /// quarantined, so it must land somewhere durable) unless
    /// `TICKBRIDGE_BAD_RECORDS=fail`; with `--store memory` and no queue,
    /// bad lines are logged.
    #[arg(long)]
    pub quarantine_queue_url: Option<String>,
    /// Schema directory (default: the embedded examples).
    #[arg(long)]
    pub schemas: Option<PathBuf>,
    /// List the objects, check headers and decode every line, without
    /// publishing or moving checkpoints.
    #[arg(long)]
    pub dry_run: bool,
    /// Time one object may take before it stops at its checkpoint.
    #[arg(long, default_value_t = 3600)]
    pub object_timeout_secs: u64,
    #[command(flatten)]
    pub aws: super::AwsArgs,
}

/// `s3://bucket/prefix` → (bucket, prefix).
pub fn parse_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| anyhow::anyhow!("{url:?} is not an s3://bucket/prefix URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        anyhow::bail!("{url:?} names no bucket");
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

/// One listed object: its reference (pinned to the listed ETag) and size.
pub struct Listed {
    pub object: ObjectRef,
    pub size: u64,
}

/// Every object under the prefix, in key order (ListObjectsV2 returns
/// keys in UTF-8 binary order), "directory" markers left out.
pub async fn list(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<Vec<Listed>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "listing s3://{bucket}/{prefix}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
        for o in page.contents() {
            let Some(key) = o.key().filter(|k| !k.ends_with('/')) else {
                continue;
            };
            let mut object = ObjectRef::new(bucket, key);
            object.etag = o.e_tag().map(|e| e.trim_matches('"').to_string());
            out.push(Listed {
                object,
                size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            });
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// Progress over bytes: an indicatif bar on a terminal (cli::progress),
/// the per-object lines in any case.
struct Progress {
    done: u64,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn add(&mut self, bytes: u64) {
        self.done += bytes;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
        }
    }
}

/// What a whole run did.
#[derive(Default, Debug)]
pub struct Totals {
    pub objects: usize,
    pub done: usize,
    pub skipped: usize,
    pub bad: usize,
    pub pending: usize,
    pub rows: usize,
    pub bad_lines: usize,
    pub bytes: u64,
}

/// Ingests the listed objects in order with `app`; prints a line per
/// object that did not simply finish.
pub async fn ingest_all(
    app: &App,
    objects: &[Listed],
    dry_run: bool,
    object_timeout: Duration,
) -> Totals {
    let total: u64 = objects.iter().map(|o| o.size).sum();
    let mut progress = Progress {
        done: 0,
        bar: super::progress::on_terminal().then(|| super::progress::bytes_bar("ingest", total)),
    };
    let mut totals = Totals {
        objects: objects.len(),
        ..Totals::default()
    };
    for listed in objects {
        let ctx = BatchContext::with_budget("ingest", object_timeout);
        let before = progress.done;
        let report = app
            .ingest_object(&listed.object, &ctx, dry_run, &mut |n| progress.add(n))
            .await;
        // A skipped or resumed object counts as read in full.
        progress.done = before + listed.size;
        totals.rows += report.rows;
        // `quarantined` counts a bad object's own message too.
        let bad_object = matches!(report.status, ObjectStatus::Bad { .. });
        totals.bad_lines += report.quarantined.saturating_sub(usize::from(bad_object));
        totals.bytes += report.bytes;
        let note = match &report.status {
            ObjectStatus::Done => {
                totals.done += 1;
                None
            }
            ObjectStatus::AlreadyDone => {
                totals.skipped += 1;
                Some("already done, skipped".to_string())
            }
            ObjectStatus::Bad { reason } => {
                totals.bad += 1;
                Some(format!("bad object: {reason}"))
            }
            ObjectStatus::Pending { reason } => {
                totals.pending += 1;
                Some(format!("stopped at its checkpoint: {reason}"))
            }
        };
        progress.add(0);
        // Printed above the bar, not through it.
        super::progress::bars().suspend(|| match note {
            Some(n) => eprintln!("{}: {n}", listed.object),
            None => eprintln!(
                "{}: {} rows{}",
                listed.object,
                report.rows,
                if report.quarantined > 0 {
                    format!(", {} bad lines quarantined", report.quarantined)
                } else {
                    String::new()
                }
            ),
        });
    }
    if let Some(bar) = &progress.bar {
        bar.finish_and_clear();
    }
    totals
}

pub fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let (bucket, prefix) = parse_url(&args.url).map_err(super::errors::usage)?;
    args.aws.apply();
    let settings = bridge_settings(
        args.tp.clone(),
        Some(args.store.clone()),
        args.dedupe_table.clone(),
        args.quarantine_queue_url.clone(),
        args.schemas.as_ref().map(|p| p.display().to_string()),
    );
    let config = settings.config()?;
    super::validate_tp(&settings, &config)?;
    super::runtime()?.block_on(async move {
        let app = start_app(&settings, config).await?;
        let objects = list(app.s3_client().await, &bucket, &prefix).await?;
        let started = Instant::now();
        let t = ingest_all(
            &app,
            &objects,
            args.dry_run,
            Duration::from_secs(args.object_timeout_secs),
        )
        .await;
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        println!(
            "{}{} objects: {} done, {} already done, {} bad, {} pending; {} rows{}, {} bad lines; {:.1} MB in {:.1} s ({:.1} MB/s)",
            if args.dry_run { "dry run (nothing sent or checkpointed): " } else { "" },
            t.objects,
            t.done,
            t.skipped,
            t.bad,
            t.pending,
            t.rows,
            if args.dry_run { " decoded" } else { " sent" },
            t.bad_lines,
            t.bytes as f64 / 1e6,
            secs,
            t.bytes as f64 / 1e6 / secs
        );
        let failed = t.bad > 0 || t.pending > 0 || (args.dry_run && t.bad_lines > 0);
        Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("s3://b/p/q").unwrap(),
            ("b".to_string(), "p/q".to_string())
        );
        assert_eq!(parse_url("s3://b").unwrap(), ("b".into(), "".into()));
        assert!(parse_url("b/p").is_err());
        assert!(parse_url("s3:///p").is_err());
    }
}
