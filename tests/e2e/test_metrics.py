"""/metrics after one real call: the media-engine counts the call by outcome and observes its MOS;
the runs service counts the events it appended and reports its consumer lag."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from test_walking_skeleton import make_test, run_to_end

pytestmark = pytest.mark.e2e


def samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_call_shows_in_the_media_engine_and_runs_metrics(api, stack):
    project, test = make_test(api, stack.responder_uri(), duration_ms=1000)
    run, _ = run_to_end(api, project, test)
    assert run["status"] == "COMPLETED", run["resultDescription"]

    media = samples(stack.settings.media_http_port)
    assert media[("callgauge_media_calls_total", (("outcome", "SUCCESS"),))] >= 1
    assert media[("callgauge_media_call_mos_count", ())] >= 1
    assert media[("callgauge_media_call_setup_seconds_count", ())] >= 1
    assert media[("callgauge_media_active_calls", ())] == 0  # the call has ended

    runs = samples(stack.settings.runs_http_port)
    assert runs[("callgauge_runs_events_appended_total", (("type", "RunRequested"),))] >= 1
    assert runs[("callgauge_runs_events_appended_total", (("type", "CallRecorded"),))] >= 1

    media_topic = stack.settings.topic("media")
    deadline = time.monotonic() + 10  # a bound on the poll, not a timing assertion
    while True:
        lag = {labels: v for (name, labels), v in samples(stack.settings.runs_http_port).items()
               if name == "callgauge_bus_consumer_lag" and dict(labels)["topic"] == media_topic}
        if lag or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert lag, "no consumer-lag gauge for the runs service's media consumer"
    assert all(v >= 0 for v in lag.values())


def test_every_service_reports_its_event_loop_lag(stack):
    """Each service process watches its asyncio loop: a request waiting behind a consumer's
    synchronous work shows here, where no handler's latency histogram can see it."""
    s = stack.settings
    for name, port in (("runs", s.runs_http_port), ("billing", s.billing_http_port),
                       ("media-engine", s.media_http_port), ("accounts", s.accounts_http_port)):
        deadline = time.monotonic() + 10  # a bound on the poll, not a timing assertion
        while (count := samples(port).get(("callgauge_event_loop_lag_seconds_count", ()), 0)) < 1:
            assert time.monotonic() < deadline, f"{name}: no callgauge_event_loop_lag_seconds on /metrics"
            time.sleep(0.2)
        assert count >= 1
    gateway = httpx.get(f"{s.gateway_url()}/metrics", timeout=10).text
    assert "callgauge_event_loop_lag_seconds_count" in gateway
