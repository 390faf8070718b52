"""A stand-in for `awslocal` that records each call instead of making it:
one JSON array of arguments per line in $AWSLOCAL_LOG. Calls whose output
the init script captures get answers shaped like LocalStack's.
"""
import json
import os
import sys

args = sys.argv[1:]
with open(os.environ["AWSLOCAL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")


def value(flag):
    return args[args.index(flag) + 1] if flag in args else ""


query = value("--query")
if query == "QueueUrl":
    print("http://sqs.us-east-1.localhost.localstack.cloud:4566/000000000000/" + value("--queue-name"))
elif query == "ARN":
    print("arn:aws:secretsmanager:us-east-1:000000000000:secret:" + value("--name") + "-AbCdEf")
elif query == "Version":
    print("1")
