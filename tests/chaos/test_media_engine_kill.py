"""Chaos: the media-engine SIGKILLed in the middle of a run, for each way it places calls — a SIPp-driven
load, a pjsua2 load and a call action. The run must end (FAILED "media engine lost", within its lease
plus a check interval), keep the calls recorded before the kill (each once, read from /calls), bill
every recorded call, release its billing hold, and leave no SIPp process calling on
(PR_SET_PDEATHSIG) and no pjsua2 worker of the dead engine."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from callgauge_platform.stack import Stack
from tests.chaos._support import (RunUnderTest, assert_recorded_once, billed_seconds, child, client, leftovers,
                                  restart, sigkill, sipp_processes, sized, wait_billing_settled)

LEASE_S = 10.0
HOLD_S = int(sized(40, 180))  # the run would last this long; the kill comes after its first 3 calls

CASES = {
    "sipp-load": lambda uri: {"type": "load", "dial_destination": uri, "cps": 2, "hold_s": HOLD_S,
                              "duration_ms": 1000, "driver": "sipp"},
    "pjsua-load": lambda uri: {"type": "load", "dial_destination": uri, "cps": 2, "hold_s": HOLD_S,
                               "duration_ms": 1500},
    "call-action": lambda uri: {"type": "call", "dial_destination": uri, "duration_ms": 1500, "max_total_calls": HOLD_S,
                                "concurrency": 2},
}
# The SIPp load is killed a second time, after the other two cases (a second run on the engine started
# again): the driver whose child process could outlive its engine. Twice for every driver would add
# ~60 s to the default run; the long variant repeats all of them (docs/reliability.md).
CASES["sipp-load-again"] = CASES["sipp-load"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One stack for the three cases: each starts the engine its predecessor killed again (as a
    supervisor would), which is also what removes the dead engine's SIPp work dirs."""
    s = Stack.on_free_ports(tmp_path_factory.mktemp("engine-kill") / "data", run_lease_s=LEASE_S, billing_mode="prepaid",
                            media_lease_renew_s=3.0)
    s.start(timeout=90)
    yield s
    s.stop()


@pytest.mark.parametrize("driver", list(CASES))
def test_sigkill_of_the_media_engine_mid_run_ends_the_run_and_leaves_nothing_calling(stack, driver):
    if driver.startswith("sipp") and shutil.which("sipp") is None:
        pytest.skip("sipp (Debian sip-tester) is not installed")
    if child(stack, "media-engine").proc.poll() is not None:
        restart(stack, "media-engine")
    with client(stack) as api:
        assert sipp_processes(stack.settings.data_dir) == []
        r = RunUnderTest(api, f"engine kill {driver}", [CASES[driver](stack.responder_uri())],
                         assertions=[{"metric": "asr", "op": ">=", "value": 1}])
        r.wait_running(calls=3)
        engine = child(stack, "media-engine")
        sigkill(stack, "media-engine")
        killed_at = time.monotonic()
        run, _ = r.wait_terminal(bound_s=120)  # the bound is the poll's; the measured time is printed
        terminal_after = time.monotonic() - killed_at
        left = leftovers(stack)
        calls = r.calls()
        billing = wait_billing_settled(r, billed_seconds(calls), exact=False)
        print(f"\n[{driver}] run terminal {terminal_after:.1f} s after the engine's SIGKILL (lease {LEASE_S:.0f} s):"
              f" {run['status']} — {run['resultDescription']}; {len(calls)} call(s) recorded once each "
          f"({dict(Counter(c['outcome'] for c in calls))}, failed: "
          f"{[(c.get('sipCode'), c.get('detail')) for c in calls if c['outcome'] != 'SUCCESS'][:2]}); "
              f"charged {billing['charged']} s for {billed_seconds(calls)} s recorded (the rest: ticks of calls "
              f"in flight at the kill); processes left: {left}")
        assert run["status"] == "FAILED", run
        assert run["resultDescription"].startswith("media engine lost"), run["resultDescription"]
        assert run["callsRecorded"] >= 3
        assert_recorded_once(run, calls)
        assert not left, f"processes outlived their engine: {left}"
        orphans = list(Path("/tmp").glob(f"callgauge-sipp-{engine.proc.pid}-*"))
        print(f"work dirs the dead engine left: {len(orphans)} (removed when an engine starts)")

