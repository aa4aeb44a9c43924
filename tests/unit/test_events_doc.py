"""docs/events.md documents every event message of the v1 contract, field by field, and its example
consumer at least compiles and answers --help."""

from __future__ import annotations

import py_compile
import re
import subprocess
import sys
from pathlib import Path

import pytest

from callgauge_proto.callgauge.accounts.v1 import events_pb2 as accounts_events_pb2
from callgauge_proto.callgauge.events.v1 import accounts_pb2, billing_pb2, envelope_pb2, media_pb2, monitor_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "events.md"
EXAMPLE = ROOT / "docs" / "examples" / "consume_media.py"


def _messages():
    for module in (envelope_pb2, runs_pb2, media_pb2, billing_pb2, monitor_pb2, measurements_pb2,
                   accounts_events_pb2, accounts_pb2):
        yield from module.DESCRIPTOR.message_types_by_name.values()


def _sections() -> dict[str, str]:
    """Message name -> the text of its section (from its `### ` heading to the next heading)."""
    text = DOC.read_text()
    out: dict[str, str] = {}
    parts = re.split(r"^#{2,3} ", text, flags=re.M)
    for part in parts[1:]:
        heading, _, body = part.partition("\n")
        for name in re.findall(r"`(?:callgauge\.[\w.]+\.)?(\w+)`", heading):
            out[name] = body
    return out


@pytest.mark.parametrize("desc", list(_messages()), ids=lambda d: d.full_name)
def test_every_event_message_and_field_is_documented(desc) -> None:
    sections = _sections()
    assert desc.name in sections, f"docs/events.md has no section for {desc.full_name}"
    body = sections[desc.name]
    missing = [f.name for f in desc.fields if f"`{f.name}`" not in body]
    assert not missing, f"{desc.full_name}: fields not documented in docs/events.md: {missing}"


def test_topics_are_documented() -> None:
    text = DOC.read_text()
    for name in ("callgauge.runs.v1", "callgauge.billing.v1", "callgauge.media.v1", "callgauge.accounts.v1",
                 "CALLGAUGE_KAFKA_TOPIC_PREFIX"):
        assert name in text


def test_example_consumer_compiles_and_has_help(tmp_path) -> None:
    py_compile.compile(str(EXAMPLE), cfile=str(tmp_path / "consume_media.pyc"), doraise=True)
    out = subprocess.run([sys.executable, str(EXAMPLE), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    for flag in ("--max-records", "--timeout", "--bootstrap"):
        assert flag in out.stdout


def _optional(f) -> bool:
    """A proto3 `optional` scalar (its presence tracked by a synthetic oneof named `_<field>`)."""
    return f.message_type is None and f.containing_oneof is not None and f.containing_oneof.name == f"_{f.name}"


@pytest.mark.parametrize("desc", [d for d in _messages() if any(_optional(f) for f in d.fields)],
                         ids=lambda d: d.full_name)
def test_every_optional_field_is_documented_as_optional(desc) -> None:
    """A figure that may be unmeasured is proto3 `optional`, and the doc says so (absent, never 0)."""
    body = _sections()[desc.name]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| (.*)$", body, flags=re.M)}
    undocumented = [f.name for f in desc.fields if _optional(f) and "*optional*" not in rows.get(f.name, "")]
    assert not undocumented, f"{desc.full_name}: optional fields not marked *optional*: {undocumented}"
