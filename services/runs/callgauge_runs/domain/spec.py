"""Validation and defaults of a test's steps and actions (pure)."""

from __future__ import annotations

import re

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

from callgauge_runs.domain.errors import ValidationCollector

CODECS = ("PCMU", "PCMA", "G722", "GSM", "speex", "iLBC")
METRICS = ("asr", "mos_min", "mos_mean", "setup_p95_ms", "setup_p50_ms", "loss_pct_max", "jitter_ms_max",
           "acd_s", "mos_p5", "setup_p99_ms", "post_dial_delay_p95_ms")
OPS = (">=", "<=", ">", "<", "==")
_SIP_URI = re.compile(r"^sips?:([^@\s]+@)?[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?(;[^\s]*)?$")

MAX_DURATION_MS = 3_600_000
# Without assertions a run passes only when every call was answered.
DEFAULT_ASSERTIONS = (spec_pb2.Assertion(metric="asr", op=">=", value=1.0),)
MAX_CALLS = 100_000


def with_defaults(spec: spec_pb2.TestSpec) -> spec_pb2.TestSpec:
    out = spec_pb2.TestSpec()
    out.CopyFrom(spec)
    for step in out.steps:
        for action in step.actions:
            if action.WhichOneof("kind") == "call":
                c = action.call
                c.duration_ms = c.duration_ms or 5000
                c.codec = c.codec or "PCMU"
                c.setup_timeout_ms = c.setup_timeout_ms or 10000
                c.max_total_calls = c.max_total_calls or 1
                c.concurrency = c.concurrency or 1
                c.from_user = c.from_user or "callgauge"
                c.transport = c.transport or "udp"
    if not out.assertions:
        out.assertions.extend(DEFAULT_ASSERTIONS)
    return out


def validate(spec: spec_pb2.TestSpec, v: ValidationCollector, root: list[str | int]) -> None:
    if not spec.steps:
        v.add([*root, "steps"], "a test needs at least one step", "missing")
    for si, step in enumerate(spec.steps):
        if not step.actions:
            v.add([*root, "steps", si, "actions"], "a step needs at least one action", "missing")
        for ai, action in enumerate(step.actions):
            loc = [*root, "steps", si, "actions", ai]
            kind = action.WhichOneof("kind")
            if kind is None:
                v.add(loc, "action has no type", "missing")
            elif kind == "call":
                _validate_call(action.call, v, loc)
    for i, a in enumerate(spec.assertions):
        loc = [*root, "assertions", i]
        if a.metric not in METRICS:
            v.add([*loc, "metric"], f"unknown metric {a.metric!r}; one of {', '.join(METRICS)}")
        if a.op not in OPS:
            v.add([*loc, "op"], f"unknown operator {a.op!r}; one of {' '.join(OPS)}")


def _validate_call(c: spec_pb2.CallAction, v: ValidationCollector, loc: list[str | int]) -> None:
    if not c.dial_destination:
        v.add([*loc, "dial_destination"], "a call needs a destination SIP URI", "missing")
    elif not _SIP_URI.match(c.dial_destination):
        v.add([*loc, "dial_destination"], f"{c.dial_destination!r} is not a SIP URI like sip:user@host:5060")
    if c.duration_ms > MAX_DURATION_MS:
        v.add([*loc, "duration_ms"], f"at most {MAX_DURATION_MS} ms")
    if c.codec and c.codec not in CODECS:
        v.add([*loc, "codec"], f"unsupported codec {c.codec!r}; one of {', '.join(CODECS)}")
    if c.tone_hz > 4000:
        v.add([*loc, "tone_hz"], "a tone above 4000 Hz cannot pass a narrowband codec")
    if c.setup_timeout_ms > 300_000:
        v.add([*loc, "setup_timeout_ms"], "at most 300000 ms")
    if c.max_total_calls > MAX_CALLS:
        v.add([*loc, "max_total_calls"], f"at most {MAX_CALLS} calls per action")
    if c.concurrency and c.max_total_calls and c.concurrency > c.max_total_calls:
        v.add([*loc, "concurrency"], "cannot exceed max_total_calls")
    if c.transport and c.transport not in ("udp", "tcp"):
        v.add([*loc, "transport"], "udp or tcp")


def planned_calls(spec: spec_pb2.TestSpec) -> int:
    return sum(a.call.max_total_calls or 1 for s in spec.steps for a in s.actions if a.WhichOneof("kind") == "call")
