"""Chaos: `callgauge up` stopped (SIGTERM) with a run in flight that outlasts the engine's drain, then
started again on the same data dir (same ports, same stores; Tansu starts empty, as it always does).
The run must end in a true terminal state — FAILED "media engine: the media engine was stopped" (what
the engine's outbox says of a run it cancelled past its drain) or "media engine lost" (its lease),
keeping the calls recorded before the stop (each once), or COMPLETED if it drained — with
every recorded call billed and no hold left; no process of the first stack is left."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from callgauge_platform.stack import Stack
from tests.chaos._support import (TERMINAL, RunUnderTest, assert_recorded_once, billed_seconds, client_for, data,
                                  processes_of, sized, wait_billing_settled)
from tests.e2e.test_up_lifecycle import wait_gone

LEASE_S = 10.0
DRAIN_S = 5.0


def start_up(planned: Stack, bound_s: float = 120) -> subprocess.Popen:
    data_dir = planned.settings.data_dir.resolve()
    log = open(data_dir.parent / "up.log", "ab")  # noqa: SIM115 - the child writes it until it exits
    proc = subprocess.Popen([sys.executable, "-m", "callgauge_app", "up", "--data-dir", str(data_dir)],
                            env=planned.env(), stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + bound_s
    while b"Callgauge is up" not in (data_dir.parent / "up.log").read_bytes():
        assert proc.poll() is None, (data_dir.parent / "up.log").read_text()
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("callgauge up did not come up:\n" + (data_dir.parent / "up.log").read_text())
        time.sleep(0.2)
    return proc


def test_callgauge_up_stopped_with_a_run_in_flight_and_started_again_ends_the_run_truly(tmp_path):
    data_dir = (tmp_path / "data").resolve()
    planned = Stack.on_free_ports(data_dir, run_lease_s=LEASE_S, media_lease_renew_s=3.0, billing_mode="prepaid",
                                  media_drain_timeout_s=DRAIN_S)
    marker = f"CALLGAUGE_DATA_DIR={data_dir}".encode()
    proc = start_up(planned)
    second = None
    try:
        key = (data_dir / "api_key").read_text().strip()
        with client_for(planned.settings.gateway_url(), key) as api:
            r = RunUnderTest(api, "up restart", [{
                "type": "load", "dial_destination": planned.responder_uri(), "cps": 2, "hold_s": int(sized(40, 180)),
                "duration_ms": 1500}], assertions=[{"metric": "asr", "op": ">=", "value": 1}])
            r.wait_running(calls=3)
            stopped_at = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(120)
            stop_s = time.monotonic() - stopped_at
            assert wait_gone(marker, proc.pid) == [], processes_of(data_dir)
            assert code == 0, (data_dir.parent / "up.log").read_text()[-3000:]

            second = start_up(planned)
            restarted_at = time.monotonic()
            run, _ = r.wait_terminal(bound_s=LEASE_S + 90)
            terminal_after = time.monotonic() - restarted_at
            calls = r.calls()
            billing = wait_billing_settled(r, billed_seconds(calls), exact=False)
            print(f"\nup stopped in {stop_s:.1f} s (drain {DRAIN_S:.0f} s); the run was {run['status']} "
                  f"{terminal_after:.1f} s after the restart (lease {LEASE_S:.0f} s) — {run['resultDescription']}; "
                  f"{len(calls)} call(s) recorded once each; charged {billing['charged']} s for "
                  f"{billed_seconds(calls)} s recorded")
            assert run["status"] in TERMINAL
            if run["status"] == "FAILED":  # the engine's own word (stopped past its drain) or its lapsed lease
                assert run["resultDescription"].startswith(("media engine: the media engine was stopped",
                                                            "media engine lost")), run["resultDescription"]
            assert run["callsRecorded"] >= 3
            assert_recorded_once(run, calls)
            # the restarted stack takes new runs
            again = data(api.get(f"/projects/{r.project['id']}/tests/{r.test['id']}"))
            assert again["id"] == r.test["id"]
    finally:
        for p in (proc, second):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(120)
                except subprocess.TimeoutExpired:
                    p.kill()
        wait_gone(marker, 0)
