"""Prints a YAML file as JSON. With --cfn, reads it as a CloudFormation
template (short-form intrinsics such as !Ref become {"Ref": ...}) with the
parser cfn-lint uses.

usage: infra_yaml_json.py [--cfn] FILE
"""
import json
import sys

args = sys.argv[1:]
if args[0] == "--cfn":
    from cfnlint.decode import decode

    template, problems = decode(args[1])
    if problems:
        sys.exit("\n".join(str(p) for p in problems))
    print(json.dumps(template))
else:
    import yaml

    with open(args[0]) as f:
        print(json.dumps(yaml.safe_load(f)))
