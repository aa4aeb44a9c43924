"""One timestamp helper (issue #19 item 9): callgauge_platform.timestamps converts between
datetimes, protobuf Timestamps and ISO-8601 text for the services' events and answers; no module
of theirs keeps a private copy (`_ts`, `_dt`, `ts`, `dt_of`, `_iso`)."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime, timedelta, timezone

from callgauge_accounts.entrypoints import grpc_api as accounts_api
from callgauge_billing.entrypoints import grpc_api as billing_api
from callgauge_bus import codec
from callgauge_gateway.domain import report_view
from callgauge_gateway.entrypoints.reports import routes as report_routes
from callgauge_gateway.entrypoints.routes import billing as billing_routes
from callgauge_gateway.entrypoints.routes import calls as calls_routes
from callgauge_gateway.entrypoints.routes import identity as identity_routes
from callgauge_gateway.entrypoints.routes import runs as run_routes
from callgauge_platform.timestamps import datetime_of, iso_field, iso_of, parse_iso, timestamp_of
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb
from callgauge_runs.domain import probe, webhooks
from callgauge_runs.entrypoints import grpc_api as runs_api
from callgauge_runs.entrypoints import monitor_grpc
from callgauge_runs.handlers import monitor_view

AT = datetime(2026, 12, 6, 1, 2, 3, 456000, tzinfo=UTC)


def test_timestamp_of():
    assert timestamp_of(AT).ToDatetime(tzinfo=UTC) == AT
    assert timestamp_of(AT.replace(tzinfo=None)).ToDatetime(tzinfo=UTC) == AT  # naive: taken as UTC
    assert timestamp_of(None) is None  # not known: the field stays unset


def test_datetime_of_is_aware_utc_and_none_when_unset():
    back = datetime_of(timestamp_of(AT))
    assert back == AT and back.tzinfo is UTC
    request = pb.ListRunsRequest()
    assert datetime_of(request.created_from, request.HasField("created_from")) is None
    request.created_from.CopyFrom(timestamp_of(AT))
    assert datetime_of(request.created_from, request.HasField("created_from")) == AT


def test_iso_of_is_utc_with_a_z():
    assert iso_of(AT) == "2026-12-06T01:02:03.456000Z"
    assert iso_of(AT.astimezone(timezone(timedelta(hours=2)))) == "2026-12-06T01:02:03.456000Z"
    assert iso_of(None) is None


def test_iso_field_is_none_when_unset():
    run = pb.Run()
    assert iso_field(run, "created_at") is None  # not known: absent, never the epoch
    run.created_at.CopyFrom(timestamp_of(AT))
    assert iso_field(run, "created_at") == "2026-12-06T01:02:03.456Z"


def test_parse_iso_reads_a_z_and_refuses_garbage_quietly():
    assert parse_iso("2026-12-06T01:02:03.456Z") == AT
    assert parse_iso("") is None and parse_iso(None) is None and parse_iso("yesterday") is None


def test_no_module_keeps_its_own_copy():
    for module in (accounts_api, runs_api, monitor_grpc, billing_api, probe, webhooks, monitor_view, codec,
                   report_view, report_routes, identity_routes, run_routes, billing_routes, calls_routes):
        source = inspect.getsource(module)
        assert not re.search(r"^def (_ts|_dt|ts|dt_of|_iso)\(", source, re.M), module.__name__
        assert "FromDatetime(" not in source and "ToDatetime(" not in source, module.__name__
