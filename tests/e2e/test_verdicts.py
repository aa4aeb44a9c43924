"""Verdicts a user can trust, through the REST API of the whole stack with real calls: failed calls
fail a run that only asserts MOS (naming the calls), a test that expects 486 passes on 486, an
assertion on a figure nobody measured fails as "not measured", and unmeasured figures are null."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import uuid

import pytest

from callgauge_platform.stack import free_port, stop_process
from callgauge_platform.run_states import TERMINAL
from api_envelope import data
from test_runs_api import poll

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def busy_uri(tmp_path_factory):
    """The built-in responder answering every INVITE with 486 Busy Here."""
    log = tmp_path_factory.mktemp("busy") / "responder.log"
    rtp = free_port(kind=socket.SOCK_DGRAM)
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "callgauge_media.responder", "--host", "127.0.0.1",
                                 "--port", "0", "--rtp-port", str(rtp), "--rtp-port-range", "4", "--code", "486"],
                                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20.0)
        line = proc.stdout.readline().strip() if ready else ""
        if not line.startswith("responder ready sip:"):
            pytest.fail(f"busy responder not ready: {line!r}\n{log.read_text()[-2000:]}")
        yield line.split()[-1]
    finally:
        stop_process(proc)
        proc.stdout.close()


def run_test(api, actions, assertions=()):
    project = data(api.post("/projects", json={"name": f"verdicts-{uuid.uuid4().hex[:6]}"}), 201)
    test = data(api.post(f"/projects/{project['id']}/tests", json={
        "name": f"t-{uuid.uuid4().hex[:8]}", "steps": [{"actions": actions}], "assertions": list(assertions)}), 201)
    started = data(api.post(f"/projects/{project['id']}/tests/{test['id']}/run"), 201)
    url = f"/projects/{project['id']}/test-runs/{started['testRunId']}"
    run = poll(lambda: data(api.get(url)), lambda r: r["status"] in TERMINAL, "run to finish", 120)
    return project, run


def call(destination, n, **kw):
    return {"type": "call", "dial_destination": destination, "duration_ms": 1000, "max_total_calls": n, **kw}


def test_failed_calls_fail_a_run_with_only_a_mos_assertion_and_it_is_listed_as_failed(stack, api, busy_uri):
    project, run = run_test(api, [call(stack.responder_uri(), 2), call(busy_uri, 2)],
                            [{"metric": "mos_min", "op": ">=", "value": 1.0}])
    assert run["status"] == "FAILED" and run["passed"] is False, run["resultDescription"]
    why = run["resultDescription"]
    assert "2 of 4 call(s) did not end as expected" in why
    assert "(step 0, action 1): CALL_FAILED 486 Busy Here" in why
    calls = data(api.get(f"/projects/{project['id']}/test-runs/{run['id']}/calls", params={"perPage": 100}))
    busy = [c for c in calls if c["sipCode"] == 486]
    assert len(busy) == 2
    for c in busy:  # not measured: null, never 0
        assert (c["mos"], c["rFactor"], c["rttMs"], c["jitterMs"], c["lossPct"], c["setupTimeMs"]) == (None,) * 6
    answered = [c for c in calls if c["outcome"] == "SUCCESS"]
    assert len(answered) == 2 and all(c["mos"] is not None and c["setupTimeMs"] is not None for c in answered)
    listed = data(api.get(f"/projects/{project['id']}/test-runs", params={"status": "failed"}))
    assert [r["id"] for r in listed] == [run["id"]]
    assert data(api.get(f"/projects/{project['id']}/test-runs", params={"status": "COMPLETED"})) == []


def test_a_test_expecting_486_passes_on_486(stack, api, busy_uri):
    _, run = run_test(api, [call(busy_uri, 2, expect=[{"outcome": "CALL_FAILED", "sip_code": 486}])])
    assert run["status"] == "COMPLETED" and run["passed"] is True, run["resultDescription"]
    assert run["resultDescription"] == "2/2 calls ended as expected (0 answered), all assertions held"
    s = run["summary"]
    assert s["callsAttempted"] == 2 and s["asr"] == 0
    assert (s["mosMin"], s["mosMean"], s["setupP95Ms"], s["jitterMsMax"], s["lossPctMax"], s["acdMs"]) == (None,) * 6


def test_an_assertion_on_an_unmeasured_metric_fails_as_not_measured(stack, api, busy_uri):
    _, run = run_test(api, [call(busy_uri, 1, expect=[{"outcome": "CALL_FAILED"}])],
                      [{"metric": "mos_min", "op": ">=", "value": 4.0}])
    assert run["status"] == "FAILED"
    assert "mos_min not measured (expected >= 4)" in run["resultDescription"]
    assert run["summary"]["mosMin"] is None


def test_unmeasured_figures_show_a_dash_on_the_report_page(stack, api, busy_uri):
    from chromium_cdp import CHROMIUM, Browser

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package `chromium`, in install.sh's APT_PACKAGES)")
    _, run = run_test(api, [call(busy_uri, 1, expect=[{"outcome": "CALL_FAILED", "sip_code": 486}])])
    with Browser() as browser:
        browser.set_header("Authorization", f"Bearer {stack.settings.api_key}")
        page = browser.navigate(f"{stack.settings.gateway_url()}/reports/runs/{run['id']}")
        assert page.status == 200 and page.errors == []
        assert browser.evaluate("document.querySelector('#fig-mos').textContent").strip() == "— / —"
        cells = browser.evaluate("Array.from(document.querySelectorAll('#calls-table tbody tr td'))"
                                 ".map(td => td.textContent.trim())")
        assert cells.count("—") >= 6 and "0.00" not in cells, cells  # setup, PDD?, talk, loss, jitter, RTT, MOS


def test_unmeasured_figures_are_absent_on_the_media_topic(stack, api, busy_uri):
    """A data team reading Kafka gets the same truth as the API: a call that was never answered has
    no MOS, loss, jitter, RTT, R or setup time in its CallMeasured (proto `optional`, not 0)."""
    import asyncio

    from callgauge_bus.codec import Delivered
    from callgauge_bus.kafka import Consumer

    _, run = run_test(api, [call(busy_uri, 1, expect=[{"outcome": "CALL_FAILED", "sip_code": 486}])])
    assert run["status"] == "COMPLETED", run["resultDescription"]
    measured = []

    async def read() -> None:
        async def handler(d: Delivered) -> None:
            if d.envelope.correlation_id == run["id"] and type(d.payload).__name__ == "CallMeasured":
                measured.append(d.payload.call)

        consumer = Consumer(stack.settings.kafka_bootstrap, [stack.settings.topic("media")],
                            f"data-team-{uuid.uuid4().hex[:6]}", handler)
        await consumer.start()
        try:
            async with asyncio.timeout(60):
                while not measured:
                    await asyncio.sleep(0.1)
        finally:
            await consumer.stop()

    asyncio.run(read())
    (m,) = measured
    assert m.sip_code == 486
    absent = ("mos", "r_factor", "loss_pct", "jitter_ms", "rtt_ms", "setup_time_ms")
    assert [f for f in absent if m.HasField(f)] == [], m
