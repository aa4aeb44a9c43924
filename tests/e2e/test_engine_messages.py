"""What a user reads about a call the engine could not make is a short reason (issue 18 item 4):
an unresolvable host (a name under the reserved .invalid TLD, RFC 2606) through the REST API — the
run's description, its calls (/calls) — and the CLI, for the pjsua2 engine and the SIPp driver;
pjlib's C calls, symbols and SIPp's raw output stay in the engine's log."""

from __future__ import annotations

import shutil

import pytest

from tests.e2e.test_cli import cli, logged_in  # noqa: F401 - fixtures
from tests.e2e.test_walking_skeleton import calls_of, data, run_to_end

pytestmark = pytest.mark.e2e

HOST = "cg-e2e.invalid"
REASON = f"cannot resolve host '{HOST}'"
INTERNALS = ("PJ_", "pjsua_call_make_call", "gethostbyname", "status 7", "Unknown remote host", "sipp exited",
             "Error:", "Traceback")


def _clean(text: str) -> None:
    for raw in INTERNALS:
        assert raw not in text, (raw, text)


def test_an_unresolvable_host_reads_as_a_short_reason_in_the_api_and_the_cli(api, stack, logged_in):  # noqa: F811
    project = data(api.post("/projects", json={"name": "unresolvable host"}), 201)
    test = data(api.post(f"/projects/{project['id']}/tests", json={
        "name": "nowhere", "steps": [{"actions": [{"type": "call", "dial_destination": f"sip:echo@{HOST}:5060",
                                                   "duration_ms": 1000, "setup_timeout_ms": 3000}]}]}), 201)
    r = logged_in("run", test["name"], "--project", project["slug"], "--wait")
    assert r.returncode == 1, r.stdout + r.stderr
    assert REASON in r.stdout, r.stdout
    _clean(r.stdout + r.stderr)

    runs = data(api.get(f"/projects/{project['id']}/test-runs"))
    (run,) = runs
    run = data(api.get(f"/projects/{project['id']}/test-runs/{run['id']}"))
    assert run["status"] == "FAILED" and REASON in run["resultDescription"], run
    _clean(run["resultDescription"])
    (call,) = calls_of(api, project["id"], run["id"])
    assert (call["outcome"], call["sipCode"]) == ("CALL_FAILED", 0), call
    assert call["detail"] == f"INVITE not sent: {REASON}", call

    listed = logged_in("runs", "calls", run["id"])
    assert listed.returncode == 0, listed.stderr
    assert REASON in listed.stdout, listed.stdout
    _clean(listed.stdout)


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) is not installed")
def test_an_unresolvable_host_for_the_sipp_driver_is_the_runs_reason(api, stack, logged_in):  # noqa: F811
    project = data(api.post("/projects", json={"name": "unresolvable host, sipp"}), 201)
    test = data(api.post(f"/projects/{project['id']}/tests", json={
        "name": "nowhere sipp", "steps": [{"actions": [{"type": "load", "dial_destination": f"sip:svc@{HOST}:5060",
                                                        "cps": 1, "max_total_calls": 1, "duration_ms": 500,
                                                        "driver": "sipp"}]}]}), 201)
    run, _ = run_to_end(api, project, test)
    assert run["status"] == "FAILED", run
    assert run["resultDescription"] == f"media engine: {REASON}", run["resultDescription"]
    status = logged_in("runs", "status", run["id"])
    assert status.returncode == 1 and REASON in status.stdout, status.stdout
    _clean(status.stdout)
