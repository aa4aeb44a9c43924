"""One trace per run: from the HTTP request through gRPC, the event append and relay, Kafka, the
media-engine's call and the measurement events back into the runs service — across processes,
as the services export it over OTLP to the test's collector."""

from __future__ import annotations

import secrets
import time

import pytest

from api_envelope import data
from test_walking_skeleton import make_test

pytestmark = pytest.mark.e2e


def test_a_run_is_one_trace_across_every_hop(api, stack, collector):
    project, test = make_test(api, stack.responder_uri(), duration_ms=1000)
    trace_id = secrets.token_hex(16)
    caller_span = secrets.token_hex(8)
    started = data(api.post(f"/projects/{project['id']}/tests/{test['id']}/run",
                            headers={"traceparent": f"00-{trace_id}-{caller_span}-01"}), 201)
    run_id = started["testRunId"]

    def names() -> set[str]:
        return {(s.service, s.name) for s in collector.trace(trace_id)}

    wanted = {("runs", "consume RunMediaFinished"), ("media-engine", "call"), ("runs", "publish RunCompleted")}
    deadline = time.monotonic() + 60  # bounds the wait for batched exports; not a timing assertion
    while not wanted <= names() and time.monotonic() < deadline:
        time.sleep(0.2)
    spans = collector.trace(trace_id)
    by_id = {s.span_id: s for s in spans}

    def one(service: str, name: str):
        found = [s for s in spans if s.service == service and s.name.startswith(name)]
        assert found, f"no {service} span {name!r} in trace; have {sorted(names())}"
        return found[0]

    start_run = one("runs", "/callgauge.runs.v1.RunsService/StartRun")
    publish = one("runs", "publish RunRequested")
    consume = one("media-engine", "consume RunRequested")
    call = one("media-engine", "call")
    measured = one("runs", "consume CallMeasured")
    finished = one("runs", "consume RunMediaFinished")

    # HTTP → gRPC: StartRun's parent is the gateway's request span (named by the route's template,
    # never the path: #15 13b) that continues the caller's context
    http = by_id[start_run.parent_id]
    assert http.service == "gateway" and http.name.startswith("POST /api/v1/projects"), http.name
    assert http.parent_id == caller_span
    assert publish.parent_id == start_run.span_id         # append → relay
    assert consume.parent_id == start_run.span_id         # Kafka header → media-engine
    assert call.parent_id == consume.span_id              # the call inside the run
    assert measured.parent_id == call.span_id             # measurement event → runs service
    assert by_id[finished.parent_id].service == "media-engine"
    assert call.attributes["callgauge.call_id"].startswith(run_id)
    assert call.attributes["callgauge.outcome"] == "SUCCESS"
