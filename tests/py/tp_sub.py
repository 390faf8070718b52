"""PyKX (unlicensed, no_ctx) as a tick subscriber of `tickbridge tp`.

Usage: tp_sub.py PORT TABLE SYMS MESSAGES
SYMS is a comma-separated sym list, or "" for every sym. Subscribes with
`.u.sub`, prints {"ready": ...} once subscribed, then receives MESSAGES
published updates and prints them as one JSON line.
"""
import json
import sys

import pykx as kx

port, table, syms, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
wanted = kx.SymbolVector(syms.split(",")) if syms else kx.SymbolAtom("")

with kx.SyncQConnection("127.0.0.1", port, no_ctx=True, timeout=20.0) as q:
    answer = q(".u.sub", kx.SymbolAtom(table), wanted)
    # Unlicensed PyKX cannot index K lists with [], only with this helper.
    item = lambda k, i: k._unlicensed_getitem(i)  # noqa: E731
    name = str(item(answer, 0))
    empty = item(answer, 1).pd()
    print(json.dumps({"ready": True, "table": name, "columns": list(empty.columns),
                      "empty_rows": len(empty)}), flush=True)
    received = []
    for _ in range(n):
        # Published updates arrive as async messages on this connection.
        msg = q._recv(acceptAsync=True)
        fn, t, data = str(item(msg, 0)), str(item(msg, 1)), item(msg, 2).pd()
        received.append({
            "fn": fn,
            "table": t,
            "sym": [str(s) for s in data["sym"]],
            "price": [float(p) for p in data["price"]],
            "time_positive": bool(all(int(x.value) > 0 for x in data["time"])),
        })
    print(json.dumps({"received": received}), flush=True)
