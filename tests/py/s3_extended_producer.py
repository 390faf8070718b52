# Sends claim-check messages with the real Amazon SQS Extended Client for
# Python (PyPI amazon-sqs-extended-client) to a moto server: one with the
# current pointer class and ExtendedPayloadSize, one with the legacy class
# and SQSLargePayloadSize. Prints the payloads it offloaded, one JSON line
# each, in send order.
#   s3_extended_producer.py ENDPOINT QUEUE_URL BUCKET [GROUP]
# With GROUP (a FIFO queue) both go to that message group, in that order.
import json, sys
import boto3
from sqs_extended_client import SQSExtendedClientSession

endpoint, queue_url, bucket = sys.argv[1:4]
group = sys.argv[4] if len(sys.argv) > 4 else None
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="test", aws_secret_access_key="test")
boto3.client("s3", **kw).create_bucket(Bucket=bucket)
sqs = SQSExtendedClientSession().client("sqs", **kw)
sqs.large_payload_support = bucket
sqs.s3_client = boto3.client("s3", **kw)
for legacy, sym in ((False, "NEW"), (True, "OLD")):
    sqs.use_legacy_attribute = legacy
    # Over the 256 KiB queue limit, so the client offloads it by itself.
    rows = [{"sym": sym, "price": 100.0 + i, "size": i} for i in range(6000)]
    payload = json.dumps(rows)
    assert len(payload) > 262144
    fifo = dict(MessageGroupId=group, MessageDeduplicationId=sym) if group else {}
    sqs.send_message(QueueUrl=queue_url, MessageBody=payload, **fifo)
    print(json.dumps({"legacy": legacy, "payload": payload}), flush=True)
