"""PyKX (unlicensed, no_ctx) as a tick feed against `tickbridge tp`.

Usage: tp_feed.py PORT
Publishes `.u.upd` in both shapes (columns, one row of atoms), naming the
function by string and by symbol, sync and async; checks that type, length
and unknown-table errors come back on sync calls; reads the table back.
Prints one JSON verdict line.
"""
import json
import sys

import numpy as np
import pykx as kx

port = int(sys.argv[1])
checks = {}


def expect_error(conn, name, *args):
    try:
        conn(*args)
    except kx.QError as e:
        return str(e) == name, str(e)
    return False, "no error"


with kx.SyncQConnection("127.0.0.1", port, no_ctx=True) as q:
    # columns, no time, function by string (what PyKX sends for '.u.upd'), sync
    cols = [
        kx.SymbolVector(["AAPL", "MSFT"]),
        kx.FloatVector([10.5, 20.25]),
        kx.LongVector([100, 200]),
        kx.CharVector("BS"),
    ]
    q(".u.upd", kx.SymbolAtom("trade"), cols)
    # one row of atoms, function by symbol, sync
    q(kx.SymbolAtom(".u.upd"), kx.SymbolAtom("trade"),
      kx.toq([kx.SymbolAtom("IBM"), kx.FloatAtom(30.0), kx.LongAtom(300), kx.CharAtom(b"B")]))
    # one row with its own time, by string, async
    q(".u.upd", kx.SymbolAtom("trade"),
      kx.toq([kx.TimespanAtom(np.timedelta64(3_600_000_000_000, "ns")), kx.SymbolAtom("KX"),
              kx.FloatAtom(40.0), kx.LongAtom(400), kx.CharAtom(b"S")]),
      wait=False)
    # columns by symbol, async, through the convenience method as well
    q(kx.SymbolAtom(".u.upd"), kx.SymbolAtom("quote"),
      [kx.SymbolVector(["AAPL"]), kx.FloatVector([1.0]), kx.FloatVector([1.5]),
       kx.LongVector([5]), kx.LongVector([6])], wait=False)
    q.upd("trade", [kx.SymbolVector(["GOOG"]), kx.FloatVector([50.0]), kx.LongVector([500]),
                    kx.CharVector("B")])

    checks["chaser"] = q("").py() is None
    checks["u_i"] = q(".u.i").py() == 5
    checks["count_trade"] = q("count trade").py() == 5
    checks["count_quote"] = q("count quote").py() == 1

    ok, got = expect_error(q, "type", ".u.upd", kx.SymbolAtom("trade"),
                           [kx.SymbolVector(["X"]), kx.LongVector([1]), kx.LongVector([1]),
                            kx.CharVector("B")])
    checks["type_error"] = [ok, got]
    ok, got = expect_error(q, "length", ".u.upd", kx.SymbolAtom("trade"),
                           [kx.SymbolVector(["X", "Y"]), kx.FloatVector([1.0]),
                            kx.LongVector([1, 2]), kx.CharVector("BS")])
    checks["length_error"] = [ok, got]
    ok, got = expect_error(q, "nosuch", ".u.upd", kx.SymbolAtom("nosuch"),
                           [kx.SymbolVector(["X"])])
    checks["table_error"] = [ok, got]
    ok, got = expect_error(q, "nyi", "til 10")
    checks["nyi"] = [ok, got]
    checks["u_i_after_errors"] = q(".u.i").py() == 5

    t = q("trade").pd()
    checks["syms"] = list(t["sym"]) == ["AAPL", "MSFT", "IBM", "KX", "GOOG"]
    checks["prices"] = list(t["price"]) == [10.5, 20.25, 30.0, 40.0, 50.0]
    checks["sides"] = "".join(x.decode() if isinstance(x, bytes) else str(x)
                              for x in t["side"]) == "BSBSB"
    checks["given_time_kept"] = int(t["time"].iloc[3].value) == 3_600_000_000_000
    checks["time_stamped"] = all(int(x.value) > 0 for x in t["time"])
    names = [str(x) for x in q("tables[]").py()]
    checks["tables"] = {"quote", "trade"} <= set(names) and names == sorted(names)

ok = all(v is True or (isinstance(v, list) and v[0] is True) for v in checks.values())
print(json.dumps({"ok": ok, "checks": checks}, default=str))
