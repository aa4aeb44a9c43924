"""One TERMINAL set (issue #19 item 9): callgauge_platform.run_states.TERMINAL, used by the runs
domain and the gateway's report view; the standalone client library repeats it,
and this test keeps the two equal and true to the proto's RunStatus."""

from __future__ import annotations

from callgauge_client import models as client_models
import callgauge_gateway.domain.report_view as report_view
from callgauge_platform.run_states import TERMINAL
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb
from callgauge_runs.domain import run as run_model


def test_one_terminal_set():
    assert run_model.TERMINAL is report_view.TERMINAL is TERMINAL
    assert tuple(client_models.TERMINAL) == TERMINAL
    assert set(TERMINAL) <= set(pb.RunStatus.keys())


def test_no_other_copy_in_the_tree():
    """Outside the client library (it sits below the platform), nothing spells the set again."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2]
    spelled = re.compile(r"""\(\s*"(COMPLETED|FAILED|CANCELLED)",\s*"(COMPLETED|FAILED|CANCELLED)",\s*"(COMPLETED|FAILED|CANCELLED)"\s*\)""")
    found = []
    for top in ("services", "libs", "apps", "tests"):
        for path in (root / top).rglob("*.py"):
            rel = path.relative_to(root).as_posix()
            if ".venv" in rel or rel in ("libs/callgauge_platform/run_states.py", "libs/callgauge_client/models.py"):
                continue
            if spelled.search(path.read_text(errors="replace")):
                found.append(rel)
    assert found == [], found
