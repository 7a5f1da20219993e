#!/usr/bin/python3
"""An independent AMQP 1.0 peer for interop tests: Apache Qpid Proton (Debian python3-qpid-proton),
which shares no code with rhea. Reads messages and reports their exact AMQP types, or sends messages
built from a JSON description with the AMQP types it names.

  proton_peer.py receive URL ADDRESS COUNT   prints one JSON object per message, accepting each
  proton_peer.py send URL ADDRESS            reads a JSON list of messages on stdin, sends them

Typed values in JSON are {"type": "<amqp type>", "value": ...}; the types are long, int, uint,
ulong, short, ubyte, symbol, string, boolean, timestamp (ms), binary (base64), double.
"""
import base64
import json
import sys

from proton import Message, int32, symbol, timestamp, uint, ulong, short, ubyte
from proton.utils import BlockingConnection


def amqp_type(v):
    """The AMQP type name of a decoded value, as Proton maps them to Python classes."""
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, timestamp):
        return "timestamp"
    for cls, name in ((int32, "int"), (uint, "uint"), (ulong, "ulong"), (short, "short"), (ubyte, "ubyte")):
        if isinstance(v, cls):
            return name
    if isinstance(v, int):
        return "long"
    if isinstance(v, symbol):
        return "symbol"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "binary"
    if isinstance(v, float):
        return "double"
    return type(v).__name__


def typed(v):
    t = amqp_type(v)
    if t == "binary":
        return {"type": t, "value": base64.b64encode(bytes(v)).decode("ascii")}
    if t in ("long", "int", "uint", "ulong", "short", "ubyte", "timestamp"):
        return {"type": t, "value": int(v)}
    return {"type": t, "value": v}


def untyped(d):
    t, v = d["type"], d["value"]
    return {
        "long": int,
        "int": int32,
        "uint": uint,
        "ulong": ulong,
        "short": short,
        "ubyte": ubyte,
        "symbol": symbol,
        "string": str,
        "boolean": bool,
        "timestamp": timestamp,
        "binary": lambda x: base64.b64decode(x),
        "double": float,
    }[t](v)


def connect(url):
    return BlockingConnection(url, user="guest", password="guest", allowed_mechs="PLAIN", timeout=20)


def receive(url, address, count):
    conn = connect(url)
    rcv = conn.create_receiver(address, credit=count)
    for _ in range(count):
        m = rcv.receive(timeout=20)
        body = m.body
        if isinstance(body, (bytes, bytearray, memoryview)):
            body_out = {"type": "binary", "value": base64.b64encode(bytes(body)).decode("ascii"), "inferred": bool(m.inferred)}
        elif body is None:
            body_out = None
        else:
            body_out = typed(body)
        out = {
            "id": m.id if isinstance(m.id, str) else repr(m.id),
            "durable": bool(m.durable),
            "content_type": None if m.content_type is None else str(m.content_type),
            "content_type_type": amqp_type(m.content_type) if m.content_type is not None else None,
            "properties": {k: typed(v) for k, v in (m.properties or {}).items()},
            "body": body_out,
        }
        print(json.dumps(out), flush=True)
        rcv.accept()
    conn.close()


def send(url, address):
    msgs = json.load(sys.stdin)
    conn = connect(url)
    snd = conn.create_sender(address)
    for d in msgs:
        m = Message()
        if "id" in d:
            m.id = d["id"]
        if "content_type" in d:
            m.content_type = d["content_type"]
        m.durable = True
        m.properties = {k: untyped(v) for k, v in d.get("properties", {}).items()}
        if "body_base64" in d:
            m.body = base64.b64decode(d["body_base64"])
            m.inferred = True  # bytes as a data section, not an amqp-value
        snd.send(m)
    conn.close()
    print("sent", len(msgs), flush=True)


if __name__ == "__main__":
    mode, url, address = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "receive":
        receive(url, address, int(sys.argv[4]))
    else:
        send(url, address)
