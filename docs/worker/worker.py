#!/usr/bin/env python3
"""A minimal worker in Python for the example workflow server's protocol.

It polls a workflow, "runs" it, and reports what it ran through ReportExecutionSpans,
the server's span proxy, so the spans join the workflow's trace without the worker
holding any collector credentials. See docs/worker-protocol.md.

Only `grpcio` is needed (Debian: python3-grpcio; pip: grpcio): the few messages are
encoded by hand below, so there is no code generation step. A real SDK would generate
its classes from examples/proto/workflow.proto instead.

    python3 docs/worker/worker.py 127.0.0.1:50051 --tenant acme --queue main

Prints one JSON object: the workflow, its trace id and the server's verdict per span.
"""

import argparse
import json
import os
import platform
import sys
import time

import grpc

SERVICE = "/instrument.example.v1.WorkflowService/"


# --- protobuf wire format: just what these messages use -----------------------------

def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field, wire):
    return _varint(field << 3 | wire)


def string(field, value):
    """A string (or nested message, as bytes) field; proto3 leaves empty ones out."""
    data = value.encode() if isinstance(value, str) else value
    return _key(field, 2) + _varint(len(data)) + data if data else b""


def uint(field, value):
    return _key(field, 0) + _varint(value) if value else b""


def decode(data):
    """A message as {field: [values]}: varints as ints, length-delimited as bytes."""
    fields, i = {}, 0
    while i < len(data):
        key, i = _read_varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(data, i)
        elif wire == 2:
            size, i = _read_varint(data, i)
            value, i = data[i:i + size], i + size
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire} not expected")
        fields.setdefault(field, []).append(value)
    return fields


def _read_varint(data, i):
    shift = result = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


def text(fields, field):
    return fields.get(field, [b""])[0].decode()


# --- the calls -------------------------------------------------------------------------

def call(channel, method, request, tenant):
    """A unary call with the tenant in the `x-tenant-id` metadata; the response's fields."""
    rpc = channel.unary_unary(SERVICE + method)  # bytes in, bytes out
    return decode(rpc(request, metadata=[("x-tenant-id", tenant)], timeout=10))


def execution_span(span_id, span_type, workflow_id, start_ns, end_ns, parent="", task_id="",
                   error="", attributes=()):
    """An ExecutionSpan message."""
    return (string(1, span_id) + string(2, parent) + string(3, span_type) +
            string(5, workflow_id) + string(6, task_id) + uint(7, start_ns) +
            uint(8, end_ns) + string(9, error) +
            b"".join(string(10, string(1, k) + string(2, v)) for k, v in attributes))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", help="host:port of the workflow server")
    parser.add_argument("--tenant", default="acme")
    parser.add_argument("--queue", default="main")
    parser.add_argument("--start", action="store_true",
                        help="start a workflow on the queue first (for a demo or a test)")
    args = parser.parse_args()

    with grpc.insecure_channel(args.server) as channel:
        if args.start:
            call(channel, "StartWorkflow",
                 string(1, "quote") + string(2, args.queue) + string(3, "{}"), args.tenant)
        polled = call(channel, "PollWorkflow",
                      string(1, args.queue) + string(2, "py-worker-1"), args.tenant)
        workflow_id = text(polled, 1)
        if not workflow_id:
            print(json.dumps({"workflow_id": None}))
            return 0
        # The stored traceparent: 00-<trace id>-<span id>-<flags>. The spans reported
        # need no trace id: the server puts them in the workflow's trace.
        traceparent = text(polled, 4)

        # "Run" the workflow: one task under the workflow's execution span.
        start = time.time_ns()
        time.sleep(0.01)
        task_start = time.time_ns()
        time.sleep(0.01)
        end = time.time_ns()
        execute_id, task_id = os.urandom(8).hex(), os.urandom(8).hex()
        spans = [
            execution_span(execute_id, "workflow.execute", workflow_id, start, end,
                           attributes=[("worker.id", "py-worker-1")]),
            execution_span(task_id, "task.execute", workflow_id, task_start, end,
                           parent=execute_id, task_id="task-py-1",
                           attributes=[("task.type", "quote"),
                                       # Not on the server's allow-list: dropped, named.
                                       ("card", "4111 1111 1111 1111")]),
            # A span id that is not 16 hex digits: refused, the others still recorded.
            execution_span("not-an-id", "task.execute", workflow_id, task_start, end),
        ]
        sdk = (string(1, "python") + string(2, "0.1.0") + string(3, sys.platform) +
               string(4, platform.machine()))
        report = string(1, sdk) + b"".join(string(2, span) for span in spans)
        answer = call(channel, "ReportExecutionSpans", report, args.tenant)

    results = []
    for raw in answer.get(1, []):
        result = decode(raw)
        results.append({
            "accepted": bool(result.get(1, [0])[0]),
            "refusal": text(result, 2),
            "dropped_attributes": [k.decode() for k in result.get(3, [])],
        })
    print(json.dumps({
        "workflow_id": workflow_id,
        "trace_id": traceparent.split("-")[1] if traceparent else None,
        "span_ids": [execute_id, task_id],
        "accepted": answer.get(2, [0])[0],
        "results": results,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
