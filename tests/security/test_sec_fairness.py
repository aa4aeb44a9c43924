"""Finding 3, the rest: no tenant can starve another, or the machine. Tenant A (a test-mode key: free)
starts a 10,000,000-call load plan of 10-minute calls on an engine of 8 call slots; tenant B's
functional run still starts at once and completes, while A's run goes on; the engine's memory stays
bounded; a run asking for more concurrency than the per-account quota is a 422 naming it.

Without fair sharing, A's load takes every slot of the engine and B's call waits in the pool's
queue until one of A's 10-minute calls ends."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from callgauge_platform.stack import Stack, free_port, stop_process
from callgauge_platform.run_states import TERMINAL
from sec_helpers import descendants, rss_bytes
from waiting import wait_for

PASSWORD = "correct horse battery staple"
SLOTS = 8  # the engine's capacity: one worker of 8 calls
QUOTA_CALLS = 5  # calls one account may have up at once


@pytest.fixture(scope="module")
def fair_stack(tmp_path_factory):
    s = Stack.on_free_ports(tmp_path_factory.mktemp("fair") / "data", quota_planned_calls_per_run=10_000_000,
                            quota_concurrent_calls=QUOTA_CALLS, media_max_calls=SLOTS, media_calls_per_worker=SLOTS)
    s.start(timeout=90)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def big_responder(tmp_path_factory):
    """A SIP responder of its own for tenant A's calls, answering up to 16 at once (the stack's answers
    4, and B's call must not meet a busy responder)."""
    port = free_port(kind=socket.SOCK_DGRAM)
    log = tmp_path_factory.mktemp("responder") / "responder.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "callgauge_media.responder", "--host", "127.0.0.1",
                                 "--port", str(port), "--rtp-port", str(24000 + secrets.randbelow(2000) * 2),
                                 "--max-calls", "16"], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"responder ready" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
            time.sleep(0.2)
        yield f"sip:echo@127.0.0.1:{port}"
    finally:
        stop_process(proc, 15)


def tenant(base: str, mode: str) -> httpx.Client:
    anon = httpx.Client(base_url=base, timeout=60)
    email = f"t-{uuid.uuid4().hex[:10]}@example.com"
    assert anon.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
    r = anon.post("/auth/login", json={"email": email, "password": PASSWORD})
    jwt = {"Authorization": f"Bearer {r.json()['data']['accessToken']}"}
    r = anon.post("/api-keys", json={"name": mode, "mode": mode}, headers=jwt)
    assert r.status_code == 201, r.text
    anon.headers["Authorization"] = f"Bearer {r.json()['data']['key']}"
    return anon


def make_test(api: httpx.Client, action: dict) -> tuple[str, str]:
    r = api.post("/projects", json={"name": f"p-{uuid.uuid4().hex[:6]}"})
    assert r.status_code == 201, r.text
    pid = r.json()["data"]["id"]
    r = api.post(f"/projects/{pid}/tests", json={"name": "t", "steps": [{"actions": [action]}]})
    assert r.status_code == 201, r.text
    return pid, r.json()["data"]["id"]


def status(api: httpx.Client, pid: str, run_id: str) -> dict:
    return api.get(f"/projects/{pid}/test-runs/{run_id}").json()["data"]


def engine_pids(stack: Stack) -> list[int]:
    """The media-engine process and its pjsua2 workers."""
    engine = next(c for c in stack.children if c.name == "media-engine").proc.pid
    return [engine, *descendants(engine)]


def total_rss(stack: Stack) -> int:
    total = 0
    for pid in engine_pids(stack):
        try:
            total += rss_bytes(pid)
        except (OSError, RuntimeError):  # a process that just ended
            pass
    return total


def test_a_ten_million_call_plan_does_not_starve_another_tenant_or_the_engine(fair_stack, big_responder):
    base = f"{fair_stack.settings.gateway_url()}/api/v1"
    a, b = tenant(base, "test"), tenant(base, "live")
    try:
        rss_before = total_rss(fair_stack)
        a_pid, a_tid = make_test(a, {"type": "load", "dial_destination": big_responder,
                                        "cps": 1000, "hold_s": 10_000, "duration_ms": 600_000})
        r = a.post(f"/projects/{a_pid}/tests/{a_tid}/run", json={})
        assert r.status_code == 201, r.text
        a_run = r.json()["data"]["testRunId"]
        wait_for(lambda: status(a, a_pid, a_run)["status"] == "RUNNING", "A's load running", 60)
        time.sleep(2)  # A's load is at its cap now (1000 attempts a second, 10-minute calls)

        b_pid, b_tid = make_test(b, {"type": "call", "dial_destination": fair_stack.responder_uri(),
                                        "duration_ms": 1000})
        r = b.post(f"/projects/{b_pid}/tests/{b_tid}/run", json={})
        assert r.status_code == 201, r.text
        b_run = r.json()["data"]["testRunId"]
        # B's bound: its one call gets a reserved slot at once; the run ends well within 60 s (its
        # call is 1 s). Without fair sharing it waits for one of A's 10-minute calls to end.
        done = wait_for(lambda: (s := status(b, b_pid, b_run))["status"] in ("COMPLETED", "FAILED") and s,
                        "B's run to end while A's 10-million-call load goes on", 60)
        assert done["status"] == "COMPLETED" and done["passed"], (done["resultDescription"], done.get("summary"))
        assert status(a, a_pid, a_run)["status"] == "RUNNING"  # A was not stopped to make room

        # A holds at most its quota of calls: the engine's memory stays bounded while its plan is walked
        rss_during = total_rss(fair_stack)
        assert rss_during < rss_before + 200 * 1024 * 1024, (rss_before, rss_during)
        r = httpx.get(f"http://127.0.0.1:{fair_stack.settings.media_http_port}/healthz", timeout=10)
        assert r.status_code == 200  # the engine still answers

        # a run asking for more concurrent calls than the quota: 422 naming the quota and its setting
        q_pid, q_tid = make_test(b, {"type": "load", "dial_destination": fair_stack.responder_uri(),
                                        "cps": 10, "hold_s": 1, "max_concurrency": QUOTA_CALLS + 1})
        r = b.post(f"/projects/{q_pid}/tests/{q_tid}/run", json={})
        assert r.status_code == 422, r.text
        detail = r.json()["error"]["details"][0]
        assert detail["type"] == "quota_exceeded" and "CALLGAUGE_QUOTA_CONCURRENT_CALLS" in detail["msg"], detail
        assert detail["loc"][-1] == "max_concurrency", detail

        # A's own second run, while A's load holds A's whole quota: the engine takes it, and it waits
        # QUEUED for a slot (issue 18: QUEUED means waiting for capacity); it runs once the load stops
        s_pid, s_tid = make_test(a, {"type": "call", "dial_destination": fair_stack.responder_uri(),
                                        "duration_ms": 1000})
        r = a.post(f"/projects/{s_pid}/tests/{s_tid}/run", json={})
        assert r.status_code == 201, r.text
        a_second = r.json()["data"]["testRunId"]
        taken = wait_for(lambda: (s := status(a, s_pid, a_second))["status"] != "PENDING" and s,
                         "the engine to take A's second run", 60)
        assert taken["status"] == "QUEUED" and not taken.get("startedAt"), taken

        a.post(f"/runs/{a_run}/stop")
        second = wait_for(lambda: (s := status(a, s_pid, a_second))["status"] in ("COMPLETED", "FAILED") and s,
                          "A's second run to end once its load stopped", 90)
        assert second["status"] == "COMPLETED" and second["passed"], second["resultDescription"]
        stopped = wait_for(lambda: (s := status(a, a_pid, a_run))["status"] in TERMINAL
                           and s, "A's run to end after its stop", 90)
        calls = a.get(f"/projects/{a_pid}/test-runs/{a_run}/calls", params={"perPage": 100}).json()["data"]
        # the attempt held back at the stop is recorded 'not placed'; A never had more than its quota up
        answered = [c for c in calls if c["outcome"] == "SUCCESS" or c.get("sipCode") == 200]
        assert 1 <= len(answered) <= QUOTA_CALLS, (stopped["status"], [(c["outcome"], c.get("detail")) for c in calls])
    finally:
        a.close()
        b.close()
