"""Creates an IAM role Lambda may assume on a moto server (moto's Lambda
refuses functions whose role does not exist) and prints its ARN.

usage: infra_moto_role.py ENDPOINT ROLE_NAME
"""
import json
import sys

import boto3

endpoint, name = sys.argv[1], sys.argv[2]
iam = boto3.client(
    "iam",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)
trust = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
print(role["Role"]["Arn"])
