//! One cheap call per AWS resource a command names, before it starts: a
//! missing table, queue or stream is a clear error and a non-zero exit at
//! once, not a loop that fails every batch.

use anyhow::anyhow;
use aws_config::SdkConfig;
use tickbridge::aws::error::error_text;

/// What a command is about to use, each with the flag (or variable) the
/// user named it with.
#[derive(Default)]
pub struct Needs {
    pub table: Option<(&'static str, String)>,
    pub queues: Vec<(&'static str, String)>,
    pub stream: Option<(&'static str, String)>,
}

/// Checks every resource; the first missing one is the error (exit status
/// 2), as one line naming the flag, the resource and AWS's reason.
pub async fn check(sdk: &SdkConfig, needs: &Needs) -> anyhow::Result<()> {
    check_all(sdk, needs).await.map_err(super::errors::usage)
}

async fn check_all(sdk: &SdkConfig, needs: &Needs) -> anyhow::Result<()> {
    if let Some((flag, table)) = &needs.table {
        tickbridge::aws::dynamodb_client(sdk)
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "{flag} {table}: DynamoDB DescribeTable failed: {}",
                    error_text(&e)
                )
            })?;
    }
    let sqs = tickbridge::aws::sqs_client(sdk);
    for (flag, url) in &needs.queues {
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "{flag} {url}: SQS GetQueueAttributes failed: {}",
                    error_text(&e)
                )
            })?;
    }
    if let Some((flag, stream)) = &needs.stream {
        tickbridge::aws::kinesis_client(sdk)
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "{flag} {stream}: Kinesis DescribeStreamSummary failed: {}",
                    error_text(&e)
                )
            })?;
    }
    Ok(())
}
