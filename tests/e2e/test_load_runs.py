"""Load runs through the REST API of the whole stack: a shaped pjsua load and the SIPp driver,
both against the stack's built-in responder (a few calls, a few seconds)."""

from __future__ import annotations

import shutil

import pytest

from tests.e2e.test_walking_skeleton import data, run_to_end

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
    assert len(run["calls"]) == 4 and all(c["outcome"] == "SUCCESS" for c in run["calls"])


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) is not installed")
def test_a_sipp_driven_load_run_completes_with_sipps_figures(api, stack):
    project, test = _load_test(api, "sipp", {
        "dial_destination": stack.responder_uri(), "cps": 3, "hold_s": 1, "duration_ms": 300, "driver": "sipp"},
        [{"metric": "asr", "op": ">=", "value": 1}])
    run, _ = run_to_end(api, project, test)
    assert run["status"] == "COMPLETED", run["resultDescription"]
    s = run["summary"]
    assert s["driver"] == "sipp" and s["callsAttempted"] == 3 and s["callsAnswered"] == 3
    assert run["calls"] == []  # SIPp measures no call's audio: the run has figures, not calls
