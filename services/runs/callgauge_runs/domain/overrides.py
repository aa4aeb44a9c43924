"""`step.N.M.<attr>=value` run-time overrides (Sipfront): steps and actions 0-based, the attribute
is a field of the action's message, the value arrives as text and is coerced by that field's
protobuf type. Pure."""

from __future__ import annotations

import math
import re

from google.protobuf.descriptor import FieldDescriptor

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

from callgauge_runs.domain.errors import ValidationCollector

_KEY = re.compile(r"^step\.(\d{1,4})\.(\d{1,4})\.([a-z_][a-z0-9_]*)$")
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}
_UINT32_MAX = 2**32 - 1


def _coerce(fd: FieldDescriptor, text: str) -> tuple[object | None, str]:
    """(value, error message)."""
    t = fd.type
    s = text.strip()
    if t == FieldDescriptor.TYPE_STRING:
        return text, ""
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64):
        if not re.fullmatch(r"\d+", s):
            return None, f"{text!r} is not a whole number >= 0"
        n = int(s)
        if t == FieldDescriptor.TYPE_UINT32 and n > _UINT32_MAX:
            return None, f"{text!r} is too large"
        return n, ""
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64):
        if not re.fullmatch(r"-?\d+", s):
            return None, f"{text!r} is not a whole number"
        return int(s), ""
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        try:
            f = float(s)
        except ValueError:
            return None, f"{text!r} is not a number"
        if not math.isfinite(f):
            return None, f"{text!r} is not a finite number"
        return f, ""
    if t == FieldDescriptor.TYPE_BOOL:
        if s.lower() in _TRUE:
            return True, ""
        if s.lower() in _FALSE:
            return False, ""
        return None, f"{text!r} is not true or false"
    return None, "this attribute cannot be overridden"


def apply_overrides(spec: spec_pb2.TestSpec, overrides: dict[str, str],
                    v: ValidationCollector) -> tuple[spec_pb2.TestSpec, dict[tuple, str]]:
    """(the spec with the overrides applied, {location in the spec: override key}). Each bad key or
    value is reported at loc [key]; the location map lets validation errors of the overridden
    attributes be reported under the key the caller sent."""
    out = spec_pb2.TestSpec()
    out.CopyFrom(spec)
    where: dict[tuple, str] = {}
    for key in sorted(overrides):
        text = overrides[key]
        m = _KEY.match(key)
        if m is None:
            v.add([key], "not an override: use step.N.M.<attribute> (0-based step and action)", "unknown_override")
            continue
        si, ai, attr = int(m.group(1)), int(m.group(2)), m.group(3)
        if si >= len(out.steps):
            v.add([key], f"step {si} does not exist: the test has {len(out.steps)} step(s), numbered from 0",
                  "unknown_step")
            continue
        actions = out.steps[si].actions
        if ai >= len(actions):
            v.add([key], f"action {ai} does not exist in step {si}: it has {len(actions)} action(s), "
                         "numbered from 0", "unknown_action")
            continue
        kind = actions[ai].WhichOneof("kind")
        body = getattr(actions[ai], kind)
        fd = body.DESCRIPTOR.fields_by_name.get(attr)
        if fd is None:
            names = ", ".join(f.name for f in body.DESCRIPTOR.fields)
            v.add([key], f"a {kind} action has no attribute {attr!r}; it has {names}", "unknown_attribute")
            continue
        value, err = _coerce(fd, text)
        if err:
            v.add([key], err, "type_error")
            continue
        setattr(body, attr, value)
        where[("steps", si, "actions", ai, attr)] = key
    return out, where
