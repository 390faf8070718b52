"""KPL aggregates from a third-party producer, for tests/kpl_aggregates.rs.

stdin: {"records": [{"pk": str, "ehk": str|null, "data": base64}, ...]}
stdout: {"aggregates": [{"data": base64, "count": n,
                          "deaggregated": [{"pk", "ehk", "sub", "data"}]}]}

The aggregates are built by `aws_kinesis_agg.aggregator.RecordAggregator`
(PyPI aws-kinesis-agg), which starts a new aggregate whenever the next user
record would take the current one over the 1 MiB Kinesis record limit.
"deaggregated" is that package's own reading of the same bytes
(`aws_kinesis_agg.deaggregator`), as a second opinion.
"""

import base64
import json
import sys

from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import deaggregate_records


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
        out.append(
            {
                "data": base64.b64encode(agg_bytes).decode("ascii"),
                "count": agg.get_num_user_records(),
                "deaggregated": package_reading(agg_bytes),
            }
        )
    json.dump({"aggregates": out}, sys.stdout)


if __name__ == "__main__":
    main()
