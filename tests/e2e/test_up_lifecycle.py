"""`callgauge up` starts every part and leaves nothing behind when stopped — by SIGTERM (drained)
or even when the supervisor itself is SIGKILLed."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from callgauge_bus.codec import decode_payload
from callgauge_eventstore.aggregate import load
from callgauge_eventstore.factory import open_event_store
from callgauge_platform.stack import Stack
from callgauge_runs.domain import run as run_model
from callgauge_platform.run_states import TERMINAL

pytestmark = pytest.mark.e2e


def processes_with(marker: bytes, exclude: int) -> list[int]:
    """Pids whose environment carries `marker` (every child of the stack inherits it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == exclude:
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().split(")")[-1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def start_up(tmp_path: Path):
    data = (tmp_path / "data").resolve()
    planned = Stack.on_free_ports(data)
    env = planned.env()
    proc = subprocess.Popen([sys.executable, "-m", "callgauge_app", "up", "--data-dir", str(data)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    out = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            assert proc.poll() is None, "".join(out)
            continue
        out.append(line)
        if "Callgauge is up" in line:
            return proc, f"CALLGAUGE_DATA_DIR={data}".encode(), planned
    proc.kill()
    pytest.fail("callgauge up did not come up:\n" + "".join(out))


def wait_gone(marker: bytes, exclude: int, limit_s: float = 30) -> list[int]:
    deadline = time.monotonic() + limit_s
    left = processes_with(marker, exclude)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = processes_with(marker, exclude)
    return left


def test_sigterm_drains_a_run_in_flight_and_stops_every_process(tmp_path):
    proc, marker, planned = start_up(tmp_path)
    children = processes_with(marker, proc.pid)
    # tansu, runs, billing, media-engine (+ its pjsua2 workers), gateway, responder
    assert len(children) >= 6, children

    # A run with a call in flight when the stop comes.
    s = planned.settings
    key = (s.data_dir / "api_key").read_text().strip()
    with httpx.Client(base_url=f"{s.gateway_url()}/api/v1", headers={"Authorization": f"Bearer {key}"},
                      timeout=30) as api:
        project = api.post("/projects", json={"name": "drain"}).json()["data"]
        test = api.post(f"/projects/{project['id']}/tests", json={"name": "long", "steps": [{"actions": [
            {"type": "call", "dial_destination": planned.responder_uri(), "duration_ms": 8000}]}]}).json()["data"]
        run_id = api.post(f"/projects/{project['id']}/tests/{test['id']}/run").json()["data"]["testRunId"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = api.get(f"/projects/{project['id']}/test-runs/{run_id}").json()["data"]["status"]
            if status == "RUNNING":
                break
            time.sleep(0.1)
        assert status == "RUNNING"

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(120) == 0  # every child exited 0 (the supervisor says otherwise)
    assert wait_gone(marker, proc.pid) == []

    # The run was carried to its end before the services stopped: its stream says so.
    async def final_state():
        store = open_event_store(f"sqlite:///{s.data_dir}/", "runs")
        try:
            run, _ = await load(store, f"run-{run_id}", run_model.evolve_run, decode_payload)
        finally:
            await store.close()
        return run

    run = asyncio.run(final_state())
    assert run.status in ("COMPLETED", "FAILED"), run.status
    assert run.stats.count == 1 and run.stats.summary().sip_codes[200] == 1  # the aggregate keeps counters (#14)


def test_sigkill_of_the_supervisor_still_leaves_nothing(tmp_path):
    proc, marker, _ = start_up(tmp_path)
    assert processes_with(marker, proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert wait_gone(marker, proc.pid) == []


def _second_up(env: dict, data: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callgauge_app", "up", "--data-dir", str(data)],
                          env={**env, "CALLGAUGE_DATA_DIR": str(data)}, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_a_second_up_on_taken_ports_or_the_same_data_dir_fails_and_leaves_the_first_alone(tmp_path):
    # issue 18: a second `callgauge up` on the same ports printed "Callgauge is up." (the first stack
    # answered its readiness checks), then its processes joined the first stack's consumer groups
    proc, marker, planned = start_up(tmp_path)
    try:
        children = sorted(processes_with(marker, proc.pid))
        s = planned.settings
        env = planned.env()

        # other data dir, same ports: refused before anything starts, naming the port and its holder
        other = (tmp_path / "other").resolve()
        r = _second_up(env, other)
        out = r.stdout + r.stderr
        assert r.returncode != 0, out
        assert "Callgauge is up" not in out, out
        kafka_port = int(s.kafka_bootstrap.rsplit(":", 1)[1])
        assert f"port {kafka_port}/TCP" in out and f"port {s.gateway_port}/TCP" in out, out
        assert f"a Callgauge stack with data dir {s.data_dir}" in out, out  # the holder, named
        holder_pids = {int(p) for p in re.findall(r"pid (\d+)", out)}
        assert holder_pids and holder_pids <= set(children), (holder_pids, children, out)
        assert not (other / "logs").exists()  # nothing was started
        assert processes_with(f"CALLGAUGE_DATA_DIR={other}".encode(), proc.pid) == []

        # the same data dir: its lock says which process holds it
        r = _second_up(env, s.data_dir)
        out = r.stdout + r.stderr
        assert r.returncode != 0 and "Callgauge is up" not in out, out
        assert f"data dir {s.data_dir} is in use by another Callgauge stack (pid {proc.pid})" in out, out

        # `callgauge demo` next to it (same data dir by default) runs in a temporary data dir of its own
        r = subprocess.run([sys.executable, "-m", "callgauge_app", "demo", "--data-dir", str(s.data_dir)],
                           env={k: v for k, v in os.environ.items() if not k.startswith("CALLGAUGE_")},
                           capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        assert f"data dir {s.data_dir} is in use by another Callgauge stack (pid {proc.pid}); the demo uses " in out, out
        assert "COMPLETED" in r.stdout, out

        # the first stack is untouched: the same processes, and a call through its API still works
        assert proc.poll() is None
        assert sorted(processes_with(marker, proc.pid)) == children
        key = (s.data_dir / "api_key").read_text().strip()
        with httpx.Client(base_url=f"{s.gateway_url()}/api/v1", headers={"Authorization": f"Bearer {key}"},
                          timeout=30) as api:
            project = api.post("/projects", json={"name": "still up"}).json()["data"]
            test = api.post(f"/projects/{project['id']}/tests", json={"name": "one call", "steps": [{"actions": [
                {"type": "call", "dial_destination": planned.responder_uri(), "duration_ms": 1000}]}]}).json()["data"]
            run_id = api.post(f"/projects/{project['id']}/tests/{test['id']}/run").json()["data"]["testRunId"]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                run = api.get(f"/projects/{project['id']}/test-runs/{run_id}").json()["data"]
                if run["status"] in TERMINAL:
                    break
                time.sleep(0.2)
            assert run["status"] == "COMPLETED", run
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    assert wait_gone(marker, proc.pid) == []
