"""Load runs through the REST API of the whole stack: a shaped pjsua load and the SIPp driver,
both against the stack's built-in responder (a few calls, a few seconds)."""

from __future__ import annotations

import math
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.test_billing_metering import client, new_api_key
from tests.e2e.test_metrics import samples
from callgauge_platform.run_states import TERMINAL
from tests.e2e.test_walking_skeleton import calls_of, data, run_to_end

pytestmark = pytest.mark.e2e


def _load_test(api, name, load, assertions):
    project = data(api.post("/projects", json={"name": f"load {name}"}), 201)
    test = data(api.post(f"/projects/{project['id']}/tests", json={
        "name": name, "steps": [{"actions": [{"type": "load", **load}]}], "assertions": assertions}), 201)
    return project, test


def test_a_shaped_load_run_completes_with_its_run_figures(api, stack):
    project, test = _load_test(api, "pjsua", {
        "dial_destination": stack.responder_uri(), "cps": 2, "hold_s": 2, "max_concurrency": 3,
        "duration_ms": 800, "tone_hz": 440}, [
        {"metric": "asr", "op": ">=", "value": 1}, {"metric": "mos_p5", "op": ">=", "value": 4.0},
        {"metric": "acd_s", "op": ">=", "value": 0.7}])
    run, _ = run_to_end(api, project, test)
    assert run["status"] == "COMPLETED", run["resultDescription"]
    s = run["summary"]
    assert s["callsAttempted"] == 4 and s["callsAnswered"] == 4 and s["callsPlanned"] == 4
    assert s["mosP5"] > 4.0 and 1 <= s["peakConcurrency"] <= 3
    calls = calls_of(api, project["id"], run["id"])
    assert len(calls) == 4 and all(c["outcome"] == "SUCCESS" for c in calls)


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) is not installed")
def test_a_sipp_driven_load_run_completes_with_sipps_figures(api, stack):
    project, test = _load_test(api, "sipp", {
        "dial_destination": stack.responder_uri(), "cps": 3, "hold_s": 1, "duration_ms": 300, "driver": "sipp"},
        [{"metric": "asr", "op": ">=", "value": 1}])
    run, _ = run_to_end(api, project, test)
    assert run["status"] == "COMPLETED", run["resultDescription"]
    s = run["summary"]
    assert s["driver"] == "sipp" and s["callsAttempted"] == 3 and s["callsAnswered"] == 3
    # each SIPp call is a call of the run (signalling figures; SIPp measures no audio)
    calls = calls_of(api, project["id"], run["id"])
    assert sorted(c["index"] for c in calls) == [0, 1, 2]
    assert all(c["outcome"] == "SUCCESS" and c["sipCallId"] and not c.get("mos") for c in calls), calls


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) is not installed")
def test_a_sipp_driven_load_run_is_billed_by_its_answered_call_seconds(stack):
    with client(stack, new_api_key(stack, "live")) as api:
        before = data(api.get("/billing/wallet"))
        project, test = _load_test(api, "sipp billed", {
            "dial_destination": stack.responder_uri(), "cps": 3, "max_total_calls": 3, "duration_ms": 2300,
            "driver": "sipp"}, [{"metric": "asr", "op": ">=", "value": 1}])
        run, _ = run_to_end(api, project, test)
        assert run["status"] == "COMPLETED", run["resultDescription"]
        calls = calls_of(api, project["id"], run["id"])
        assert len(calls) == 3 and all(c["outcome"] == "SUCCESS" for c in calls), calls
        billed = sum(math.ceil(c["durationMs"] / 1000 - 1e-9) for c in calls)  # every started second
        assert billed >= 9  # 3 calls of at least 2.3 s

        def charges() -> list[dict]:
            entries = data(api.get("/billing/history", params={"perPage": 100}))
            return [e for e in entries if e["type"] == "charge" and e.get("runId") == run["testRunId"]]

        deadline = time.monotonic() + 30  # bounds the poll: the last CallMeasured is metered after the run ends
        while sum(e["quantity"] for e in charges()) < billed and time.monotonic() < deadline:
            time.sleep(0.2)
        found = charges()
        assert sum(e["quantity"] for e in found) == billed, found
        assert all(e["kind"] == "call_seconds" and e["amountMinor"] < 0 for e in found), found
        price = stack.settings_of("billing").billing_price_call_second_minor
        after = data(api.get("/billing/wallet"))
        assert after["balanceMinor"] == before["balanceMinor"] - billed * price, (before, after)
        while after["reservedMinor"] and time.monotonic() < deadline:  # released when billing sees the run's end
            time.sleep(0.2)
            after = data(api.get("/billing/wallet"))
        assert after["reservedMinor"] == 0 and after["balanceMinor"] == before["balanceMinor"] - billed * price


def _media_workers(stack) -> list[int]:
    """The media-engine's pjsua2 worker processes: its spawned children (not multiprocessing's
    resource tracker), oldest first."""
    engine = next(c for c in stack.children if c.name == "media-engine").proc.pid
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (d / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if ppid == engine and b"spawn_main" in cmdline:
            out.append(int(d.name))
    return sorted(out)


def test_a_media_worker_killed_mid_run_ends_each_of_its_calls_with_a_reason(api, stack, sipp_uas):
    """A worker holding calls of a load run is killed (SIGKILL) while they talk: each of its
    calls ends CALL_FAILED with the reason, the calls on the other worker go on, every planned call
    has exactly one outcome, and the run fails saying so."""
    project, test = _load_test(api, "worker killed", {
        "dial_destination": sipp_uas, "cps": 8, "max_total_calls": 8, "max_concurrency": 8,
        "duration_ms": 12000, "tone_hz": 440}, [])
    started = data(api.post(f"/projects/{project['id']}/tests/{test['id']}/run"), 201)
    run_path = f"/projects/{project['id']}/test-runs/{started['testRunId']}"
    deadline = time.monotonic() + 60  # bounds on the polls, not timing assertions
    while samples(stack.settings.media_http_port).get(("callgauge_media_active_calls", ()), 0) < 8:
        assert time.monotonic() < deadline, ("the load's calls never were up together", data(api.get(run_path)))
        time.sleep(0.2)
    time.sleep(1.0)  # answered and talking (loopback answers in ms)
    workers = _media_workers(stack)
    assert len(workers) >= 2, workers  # the pool spreads the calls over its least busy workers
    os.kill(workers[0], signal.SIGKILL)
    while (run := data(api.get(run_path)))["status"] not in TERMINAL:
        assert time.monotonic() < deadline + 60, run["status"]
        time.sleep(0.5)
    calls = calls_of(api, project["id"], run["id"])
    assert sorted(c["index"] for c in calls) == list(range(8))  # each planned call once
    crashed = [c for c in calls if c["outcome"] != "SUCCESS"]
    assert crashed and len(crashed) < 8, [(c["outcome"], c.get("detail")) for c in calls]
    assert all(c["outcome"] == "CALL_FAILED" and c.get("detail") == "media worker crashed" for c in crashed), crashed
    assert run["status"] == "FAILED" and f"{len(crashed)} of 8" in run["resultDescription"], run["resultDescription"]
    # the pool put a new worker in the killed one's place
    deadline = time.monotonic() + 60
    while workers[0] in (now := _media_workers(stack)) or len(now) < len(workers):
        assert time.monotonic() < deadline, now
        time.sleep(0.2)
