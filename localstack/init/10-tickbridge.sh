#!/usr/bin/env bash
# Creates the tickbridge stack in LocalStack when it is ready (mounted into
# /etc/localstack/init/ready.d): the stream, the queues, the dedupe table,
# the tickerplant secret, the function with its `live` alias, and both event
# source mappings, with the names and settings of infra/template.yaml (its
# defaults, kept in stack.env). Alarms, the log group and IAM policies exist
# only in the template: LocalStack does not enforce them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=stack.env
. "$here/stack.env"

REGION="${AWS_DEFAULT_REGION:-us-east-1}"
ACCOUNT=000000000000
arn() { printf 'arn:aws:%s:%s:%s:%s' "$1" "$REGION" "$ACCOUNT" "$2"; }

# LocalStack runs the function in a container of this machine's
# architecture; the artifact must be built for it (see README.md).
case "$(uname -m)" in
  aarch64 | arm64) ARCHITECTURE=arm64 ;;
  *) ARCHITECTURE=x86_64 ;;
esac
ARCHITECTURE="${LAMBDA_ARCHITECTURE:-$ARCHITECTURE}"

log() { echo "tickbridge init: $*"; }

log "stream $STREAM_NAME"
awslocal kinesis create-stream --stream-name "$STREAM_NAME" --shard-count "$SHARD_COUNT"
awslocal kinesis wait stream-exists --stream-name "$STREAM_NAME"
if [ "$RETENTION_HOURS" -gt 24 ]; then
  awslocal kinesis increase-stream-retention-period --stream-name "$STREAM_NAME" \
    --retention-period-hours "$RETENTION_HOURS"
fi

log "queues"
awslocal sqs create-queue --queue-name "$DLQ_NAME" --attributes \
  "$(printf '{"FifoQueue":"true","MessageRetentionPeriod":"%s"}' "$DLQ_RETENTION")"
redrive="$(printf '{\\"deadLetterTargetArn\\":\\"%s\\",\\"maxReceiveCount\\":\\"%s\\"}' \
  "$(arn sqs "$DLQ_NAME")" "$MAX_RECEIVE_COUNT")"
awslocal sqs create-queue --queue-name "$QUEUE_NAME" --attributes \
  "$(printf '{"FifoQueue":"true","ContentBasedDeduplication":"false","VisibilityTimeout":"%s","MessageRetentionPeriod":"%s","RedrivePolicy":"%s"}' \
    "$VISIBILITY_TIMEOUT" "$QUEUE_RETENTION" "$redrive")"
awslocal sqs create-queue --queue-name "$FAILURE_QUEUE_NAME" --attributes \
  "$(printf '{"MessageRetentionPeriod":"%s"}' "$DLQ_RETENTION")"
awslocal sqs create-queue --queue-name "$QUARANTINE_QUEUE_NAME" --attributes \
  "$(printf '{"FifoQueue":"true","MessageRetentionPeriod":"%s"}' "$DLQ_RETENTION")"
QUARANTINE_URL="$(awslocal sqs get-queue-url --queue-name "$QUARANTINE_QUEUE_NAME" \
  --query QueueUrl --output text)"

log "dedupe table $TABLE_NAME"
awslocal dynamodb create-table --table-name "$TABLE_NAME" \
  --attribute-definitions AttributeName=pk,AttributeType=S \
  --key-schema AttributeName=pk,KeyType=HASH \
  --billing-mode PAY_PER_REQUEST
awslocal dynamodb wait table-exists --table-name "$TABLE_NAME"
awslocal dynamodb update-time-to-live --table-name "$TABLE_NAME" \
  --time-to-live-specification Enabled=true,AttributeName=expiration
awslocal dynamodb update-continuous-backups --table-name "$TABLE_NAME" \
  --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true

log "tickerplant secret $SECRET_NAME"
SECRET_ARN="$(awslocal secretsmanager create-secret --name "$SECRET_NAME" \
  --secret-string "$(printf '{"username":"%s","password":"%s"}' "$TP_USER" "$TP_PASSWORD")" \
  --query ARN --output text)"

log "function $FUNCTION_NAME ($ARCHITECTURE)"
awslocal iam create-role --role-name "$FUNCTION_NAME-role" --assume-role-policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
if [ "$KINESIS_PARALLELIZATION_FACTOR" -gt 1 ]; then LANES_BY_KEY=true; else LANES_BY_KEY=false; fi
environment="$(printf '{"Variables":{%s}}' "$(
  printf '"%s":"%s",' \
    TICKBRIDGE_TP "$TP_ADDRESS" \
    TICKBRIDGE_TP_USER "$TP_USER" \
    TICKBRIDGE_TP_PASSWORD_SECRET_ARN "$SECRET_ARN" \
    TICKBRIDGE_UPD_FUNC "$UPD_FUNC" \
    TICKBRIDGE_PUBLISH "$PUBLISH_MODE" \
    TICKBRIDGE_BAD_RECORDS "$BAD_RECORDS" \
    TICKBRIDGE_QUARANTINE_QUEUE_URL "$QUARANTINE_URL" \
    TICKBRIDGE_STORE dynamodb \
    TICKBRIDGE_DEDUPE_TABLE "$TABLE_NAME" \
    TICKBRIDGE_KEY_TTL_SECONDS "$DEDUPE_TTL_SECONDS" \
    TICKBRIDGE_DEADLINE_MARGIN_MS "$DEADLINE_MARGIN_MS" \
    TICKBRIDGE_SCHEMAS "" \
    TICKBRIDGE_LANES_BY_PARTITION_KEY "$LANES_BY_KEY" \
    TICKBRIDGE_METRICS_NAMESPACE "$METRICS_NAMESPACE" \
    TICKBRIDGE_LOG "$LOG_LEVEL" \
    TICKBRIDGE_CLAIM_CHECK_DELETE "$CLAIM_CHECK_DELETE"
)\"AWS_ENDPOINT_URL\":\"$LOCALSTACK_ENDPOINT\"")"
awslocal lambda create-function --function-name "$FUNCTION_NAME" \
  --runtime provided.al2023 --handler bootstrap --architectures "$ARCHITECTURE" \
  --memory-size "$MEMORY_SIZE" --timeout "$TIMEOUT" \
  --role "arn:aws:iam::$ACCOUNT:role/$FUNCTION_NAME-role" \
  --zip-file "fileb://$ARTIFACT" \
  --environment "$environment"
awslocal lambda wait function-active-v2 --function-name "$FUNCTION_NAME"
awslocal lambda put-function-concurrency --function-name "$FUNCTION_NAME" \
  --reserved-concurrent-executions "$RESERVED_CONCURRENCY"
version="$(awslocal lambda publish-version --function-name "$FUNCTION_NAME" \
  --query Version --output text)"
awslocal lambda create-alias --function-name "$FUNCTION_NAME" --name "$FUNCTION_ALIAS" \
  --function-version "$version"

log "event source mappings on $FUNCTION_NAME:$FUNCTION_ALIAS"
awslocal lambda create-event-source-mapping --function-name "$FUNCTION_NAME:$FUNCTION_ALIAS" \
  --event-source-arn "$(arn kinesis "stream/$STREAM_NAME")" \
  --starting-position "$KINESIS_STARTING_POSITION" \
  --batch-size "$KINESIS_BATCH_SIZE" \
  --maximum-batching-window-in-seconds "$KINESIS_BATCHING_WINDOW" \
  --parallelization-factor "$KINESIS_PARALLELIZATION_FACTOR" \
  --bisect-batch-on-function-error \
  --maximum-retry-attempts "$KINESIS_MAXIMUM_RETRY_ATTEMPTS" \
  --maximum-record-age-in-seconds "$KINESIS_MAXIMUM_RECORD_AGE" \
  --function-response-types ReportBatchItemFailures \
  --destination-config "OnFailure={Destination=$(arn sqs "$FAILURE_QUEUE_NAME")}"
awslocal lambda create-event-source-mapping --function-name "$FUNCTION_NAME:$FUNCTION_ALIAS" \
  --event-source-arn "$(arn sqs "$QUEUE_NAME")" \
  --batch-size "$SQS_BATCH_SIZE" \
  --scaling-config "MaximumConcurrency=$SQS_MAXIMUM_CONCURRENCY" \
  --function-response-types ReportBatchItemFailures

log "stack ready"
