"""PyKX (KX's own codec, unlicensed) as the oracle for tickbridge's kdb+ bytes.

Usage: codec_oracle.py MODE, input on stdin, one JSON document on stdout.
  reserialize  stdin: a JSON list of hex kdb+ IPC messages (compressed or
               not). Each is read with kx.deserialize and written again with
               kx.serialize: {"out": [hex or {"error": text}, ...]}.
  columns      stdin: one IPC message holding a table. Its columns as PyKX
               reads them, raw (kdb+ counts since 2000.01.01):
               {"names": [...], "columns": {name: [values]}}; floats are
               repr strings so nan and inf survive JSON; guids are strings.
  build        no input. A table with one column of each type that PyKX can
               build from numpy without a licence, and a general list of the
               temporal and numeric null and infinity atoms, as PyKX
               serializes them: {"table": hex, "specials": hex}.
"""
import json
import sys
import uuid

import numpy as np
import pykx as kx


def ser(x):
    return bytes(kx.serialize(x).copy()).hex()


def reserialize():
    out = []
    for h in json.load(sys.stdin):
        try:
            out.append(ser(kx.deserialize(bytes.fromhex(h))))
        except Exception as e:  # reported per message, judged by the test
            out.append({"error": f"{type(e).__name__}: {e}"})
    return {"out": out}


def plain(v):
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, bytes):
        return v.decode("latin-1")
    if isinstance(v, uuid.UUID):
        return str(v)
    return str(v)


def columns():
    t = kx.deserialize(sys.stdin.buffer.read())
    if not isinstance(t, kx.Table):
        raise SystemExit(f"expected a table, PyKX read {type(t).__name__}")
    raw = t.pd(raw=True)
    cols = {}
    for name in raw.columns:
        if raw[name].dtype == np.complex128:
            # Raw guids are their 16 bytes seen as a complex number.
            cols[name] = [str(uuid.UUID(bytes=np.complex128(v).tobytes())) for v in raw[name]]
        else:
            cols[name] = [plain(v) for v in raw[name]]
    return {"names": list(raw.columns), "columns": cols}


def build():
    td = lambda unit, *a: np.array(a, dtype=f"timedelta64[{unit}]")
    cols = {
        "b": kx.BooleanVector(np.array([True, False, True])),
        "g": kx.GUIDVector([uuid.UUID(int=1), uuid.UUID(int=0),
                            uuid.UUID("12345678-1234-5678-1234-567812345678")]),
        "x": kx.ByteVector(np.array([0, 1, 255], dtype=np.uint8)),
        "h": kx.ShortVector(np.array([1, -32768, 32767], dtype=np.int16)),
        "i": kx.IntVector(np.array([1, -2147483648, 2147483647], dtype=np.int32)),
        "j": kx.LongVector(np.array([1, -(2**63), 2**63 - 1], dtype=np.int64)),
        "e": kx.RealVector(np.array([1.5, np.nan, np.inf], dtype=np.float32)),
        "f": kx.FloatVector(np.array([1.5, np.nan, -np.inf])),
        "c": kx.CharVector(b"a z"),
        "s": kx.SymbolVector(["a", "", "IBM"]),
        "p": kx.TimestampVector(np.array(
            ["2000-01-01T00:00:00", "1999-12-31T23:59:59.999999999",
             "2026-12-02T05:00:00.000000001"], dtype="datetime64[ns]")),
        "m": kx.MonthVector(np.array(["2000-01", "1999-12", "2001-01"], dtype="datetime64[M]")),
        "d": kx.DateVector(np.array(["2000-01-01", "1999-12-31", "2000-05-01"],
                                    dtype="datetime64[D]")),
        "n": kx.TimespanVector(td("ns", 0, -1, 3_600_000_000_000)),
        "u": kx.MinuteVector(td("m", 0, 1, 61)),
        "v": kx.SecondVector(td("s", 0, 1, 3661)),
        "t": kx.TimeVector(td("ms", 0, 1, 43_499_123)),
    }
    d = bytes(kx.serialize(kx.Dictionary(cols)).copy())
    # A flip of that dictionary (type 98, no attribute) read by PyKX, then
    # serialized by PyKX: the table bytes are PyKX's own.
    body = b"\x62\x00" + d[8:]
    table = kx.deserialize(b"\x01\x00\x00\x00" + (len(body) + 8).to_bytes(4, "little") + body)
    specials = []
    for name in ["Short", "Int", "Long", "Real", "Float", "Timestamp", "Month", "Date",
                 "Timespan", "Minute", "Second", "Time"]:
        atom = getattr(kx, name + "Atom")
        specials += [atom.null, atom.inf]
    specials += [kx.GUIDAtom.null, kx.SymbolAtom.null, kx.CharAtom.null]
    return {"table": ser(table), "specials": ser(kx.toq(specials))}


mode = sys.argv[1] if len(sys.argv) > 1 else ""
handlers = {"reserialize": reserialize, "columns": columns, "build": build}
if mode not in handlers:
    raise SystemExit(f"usage: codec_oracle.py {'|'.join(handlers)}")
print(json.dumps(handlers[mode]()))
