"""Chaos: the media-engine SIGKILLed in the middle of a SIPp-driven load run. The run must end (FAILED
"media engine lost", within its lease plus a check interval), keep the calls recorded before the
kill, release its billing hold, and leave no SIPp process calling on (PR_SET_PDEATHSIG)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest

from callgauge_platform.stack import Stack
from tests.e2e.test_walking_skeleton import TERMINAL, data

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) is not installed")

LEASE_S = 10.0


def sipp_processes(data_dir: Path) -> list[int]:
    """SIPp processes of this stack (they inherit its CALLGAUGE_DATA_DIR), not other tests' ones."""
    marker = f"CALLGAUGE_DATA_DIR={data_dir.resolve()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "sipp" and \
                        (entry / "stat").read_text().split(")")[-1].split()[0] != "Z" and \
                        marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_sigkill_of_the_media_engine_mid_run_ends_the_run_and_leaves_no_sipp(tmp_path):
    stack = Stack.on_free_ports(tmp_path / "data", run_lease_s=LEASE_S)
    stack.start(timeout=90)
    try:
        api = httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1",
                           headers={"Authorization": f"Bearer {stack.settings.api_key}"}, timeout=30)
        project = data(api.post("/projects", json={"name": "chaos"}), 201)
        test = data(api.post(f"/projects/{project['id']}/tests", json={
            "name": "sipp kill", "steps": [{"actions": [{"type": "load", "dial_destination": stack.responder_uri(),
                                                         "cps": 2, "hold_s": 40, "duration_ms": 1000,
                                                         "driver": "sipp"}]}],
            "assertions": [{"metric": "asr", "op": ">=", "value": 1}]}), 201)
        before = data(api.get("/billing/wallet"))
        assert sipp_processes(stack.settings.data_dir) == []
        started = data(api.post(f"/projects/{project['id']}/tests/{test['id']}/run"), 201)
        url = f"/projects/{project['id']}/test-runs/{started['testRunId']}"
        deadline = time.monotonic() + 60  # bounds the poll
        while time.monotonic() < deadline:
            run = data(api.get(url))
            if run["status"] == "RUNNING" and (run.get("callsRecorded") or 0) >= 3:
                break
            time.sleep(0.2)
        assert run["status"] == "RUNNING", run
        assert data(api.get("/billing/wallet"))["reservedMinor"] > 0
        engine = next(c for c in stack.children if c.name == "media-engine")
        engine.proc.send_signal(signal.SIGKILL)
        engine.proc.wait(10)
        killed_at = time.monotonic()
        deadline = killed_at + 120  # bounds the poll; the measured time is printed, not asserted
        while time.monotonic() < deadline:
            run = data(api.get(url))
            if run["status"] in TERMINAL:
                break
            time.sleep(0.5)
        terminal_after = time.monotonic() - killed_at
        print(f"\nrun terminal {terminal_after:.1f} s after the engine's SIGKILL (lease {LEASE_S:.0f} s): "
              f"{run['status']} — {run['resultDescription']}")
        assert run["status"] == "FAILED", run
        assert run["resultDescription"].startswith("media engine lost"), run["resultDescription"]
        assert run["callsRecorded"] >= 3
        left = sipp_processes(stack.settings.data_dir)
        assert not left, f"SIPp outlived its engine: {left}"
        deadline = time.monotonic() + 30
        wallet = data(api.get("/billing/wallet"))
        while wallet["reservedMinor"] != before["reservedMinor"] and time.monotonic() < deadline:
            time.sleep(0.2)
            wallet = data(api.get("/billing/wallet"))
        assert wallet["reservedMinor"] == before["reservedMinor"], (before, wallet)
        orphans = [d for d in Path("/tmp").glob(f"callgauge-sipp-{engine.proc.pid}-*")]
        print(f"work dirs the dead engine left: {len(orphans)} (removed when an engine starts)")
    finally:
        stack.stop()
