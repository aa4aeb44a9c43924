"""One timestamp helper for the services' gRPC answers (issue #19 item 9):
callgauge_platform.timestamps.timestamp_of, used by the runs, monitor and accounts entrypoints."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

from callgauge_accounts.entrypoints import grpc_api as accounts_api
from callgauge_platform.timestamps import timestamp_of
from callgauge_runs.entrypoints import grpc_api as runs_api
from callgauge_runs.entrypoints import monitor_grpc


def test_timestamp_of():
    at = datetime(2026, 12, 6, 1, 2, 3, 456000, tzinfo=UTC)
    assert timestamp_of(at).ToDatetime(tzinfo=UTC) == at
    assert timestamp_of(None) is None  # not known: the field stays unset


def test_the_entrypoints_have_no_copy_of_it():
    for module in (accounts_api, runs_api, monitor_grpc):
        assert "def _ts(" not in inspect.getsource(module), module.__name__
        assert module.timestamp_of is timestamp_of
