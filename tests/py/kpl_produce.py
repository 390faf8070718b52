"""KPL aggregates from a third-party producer, for tests/kpl_aggregates.rs.

stdin: {"records": [{"pk": str, "ehk": str|null, "data": base64}, ...],
        "spoil_key_index": [record, index]  (optional)}
stdout: {"aggregates": [{"data": base64, "count": n,
                          "deaggregated": [{"pk", "ehk", "sub", "data"}]}]}

The aggregates are built by `aws_kinesis_agg.aggregator.RecordAggregator`
(PyPI aws-kinesis-agg), which starts a new aggregate whenever the next user
record would take the current one over the 1 MiB Kinesis record limit.
"deaggregated" is that package's own reading of the same bytes
(`aws_kinesis_agg.deaggregator`), as a second opinion.

"spoil_key_index" sets one user record's partition_key_index of every
aggregate to an index past the key table, re-encoded with the package's own
protobuf classes and given a fresh MD5: a well-formed aggregate with one bad
user record ("deaggregated" is then empty: the package cannot read it).
"""

import base64
import hashlib
import json
import sys

import aws_kinesis_agg
from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import deaggregate_records

# After the aggregator: it makes the package's generated modules importable.
from aws_kinesis_agg import messages_pb2  # noqa: E402


def spoil_key_index(agg_bytes, record, index):
    magic = aws_kinesis_agg.MAGIC
    body = agg_bytes[len(magic) : -aws_kinesis_agg.DIGEST_SIZE]
    message = messages_pb2.AggregatedRecord()
    message.ParseFromString(body)
    message.records[record].partition_key_index = index
    body = message.SerializeToString()
    return magic + body + hashlib.md5(body).digest()


def package_reading(agg_bytes):
    event_record = {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "sequenceNumber": "1",
            "approximateArrivalTimestamp": 0,
            "data": base64.b64encode(agg_bytes).decode("ascii"),
        }
    }
    out = []
    for r in deaggregate_records([event_record]):
        k = r["kinesis"]
        if not k.get("aggregated"):
            raise SystemExit("aws_kinesis_agg does not read its own output as an aggregate")
        out.append(
            {
                "pk": k["partitionKey"],
                "ehk": k["explicitHashKey"],
                "sub": k["subSequenceNumber"],
                "data": base64.b64encode(base64.b64decode(k["data"])).decode("ascii"),
            }
        )
    return out


def main():
    spec = json.load(sys.stdin)
    aggregator = RecordAggregator()
    finished = []
    for r in spec["records"]:
        full = aggregator.add_user_record(r["pk"], base64.b64decode(r["data"]), r["ehk"])
        if full is not None:
            finished.append(full)
    last = aggregator.clear_and_get()
    if last is not None:
        finished.append(last)
    out = []
    for agg in finished:
        _pk, _ehk, agg_bytes = agg.get_contents()
        spoil = spec.get("spoil_key_index")
        if spoil is not None:
            agg_bytes = spoil_key_index(agg_bytes, spoil[0], spoil[1])
        out.append(
            {
                "data": base64.b64encode(agg_bytes).decode("ascii"),
                "count": agg.get_num_user_records(),
                "deaggregated": [] if spoil is not None else package_reading(agg_bytes),
            }
        )
    json.dump({"aggregates": out}, sys.stdout)


if __name__ == "__main__":
    main()
