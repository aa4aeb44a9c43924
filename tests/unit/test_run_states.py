"""One TERMINAL set (issue #19 item 9): callgauge_platform.run_states.TERMINAL, used by the runs
domain, the gateway's report view and the platform CLI; the standalone client library repeats it,
and this test keeps the two equal and true to the proto's RunStatus."""

from __future__ import annotations

from callgauge_client import models as client_models
from callgauge_gateway.reports import view as report_view
from callgauge_platform import cli as platform_cli
from callgauge_platform.run_states import TERMINAL
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb
from callgauge_runs.domain import run as run_model


def test_one_terminal_set():
    assert run_model.TERMINAL is report_view.TERMINAL is platform_cli.TERMINAL is TERMINAL
    assert tuple(client_models.TERMINAL) == TERMINAL
    assert set(TERMINAL) <= set(pb.RunStatus.keys())
