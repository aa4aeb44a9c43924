"""Chaos: the disk full for ~45 s in the middle of a run. The stack's data dir (every service's SQLite
store) is a small tmpfs the test mounts; a filler file takes its last byte for FULL_S seconds, then is
removed. The run must end with nothing lost (COMPLETED, every call the engine placed recorded once)
or FAILED naming exactly what is missing (recorded + missing = placed); billing charges exactly the
recorded calls' seconds (plus nothing twice) and no hold is left. The services' logs go to a
directory off the tmpfs, so what they say about the fault can be read afterwards."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import time
from collections import Counter

import pytest

from callgauge_platform.stack import Stack
from tests.chaos._support import (RunUnderTest, assert_recorded_once, billed_seconds, client, data, sized,
                                  wait_billing_settled)

FULL_S = sized(45.0, 180.0)
HOLD_S = int(sized(60, 240))


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "data"
    mount.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m,mode=0700", "tmpfs", str(mount)],
                       check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        pytest.skip(f"cannot mount a tmpfs for the disk-full case (needs root or CAP_SYS_ADMIN): {detail.strip()}")
    logs = tmp_path / "logs"
    logs.mkdir()
    (mount / "logs").symlink_to(logs)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


def fill(path) -> int:
    """Take every byte left on the file system of `path`; returns how many were taken."""
    taken = 0
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 12, 1):
            chunk = b"\0" * size
            while True:
                try:
                    f.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
                taken += size
    return taken


def test_the_disk_full_for_45_s_mid_run_loses_nothing_or_fails_the_run_naming_what_is_missing(small_disk):
    stack = Stack.on_free_ports(small_disk, media_lease_renew_s=3.0, billing_mode="prepaid")
    stack.start(timeout=90)
    filler = small_disk / "filler"
    try:
        with client(stack) as api:
            r = RunUnderTest(api, "disk full", [{
                "type": "load", "dial_destination": stack.responder_uri(), "cps": 1, "hold_s": HOLD_S,
                "duration_ms": 1500}], assertions=[{"metric": "asr", "op": ">=", "value": 1}])
            r.wait_running(calls=3)
            taken = fill(filler)
            full_at = time.monotonic()
            statvfs = os.statvfs(small_disk)
            assert statvfs.f_bavail == 0, "the disk is not full"
            during = []
            while time.monotonic() - full_at < FULL_S:  # bounded: FULL_S
                resp = api.post("/projects", json={"name": f"during the fault {len(during)}"})
                during.append(resp.status_code)
                if resp.status_code != 201:  # a write the full store cannot take: 503, never 500
                    assert resp.status_code == 503, resp.text
                    assert resp.json()["error"]["code"] == "STORE_UNAVAILABLE", resp.text
                    assert resp.headers.get("Retry-After"), resp.headers
                time.sleep(5)
            filler.unlink()
            freed_at = time.monotonic()
            run, _ = r.wait_terminal(bound_s=HOLD_S + 150)
            terminal_after = time.monotonic() - freed_at
            calls = r.calls()
            billed = billed_seconds(calls)
            billing = wait_billing_settled(r, billed, bound_s=90)
            s = run["summary"]
            print(f"\ndisk full for {freed_at - full_at:.0f} s ({taken} bytes taken); writes meanwhile got "
                  f"{sorted(set(during))}; run {run['status']} {terminal_after:.1f} s after the disk was freed — "
                  f"{run['resultDescription']}; {len(calls)} call(s) recorded once each "
                  f"({dict(Counter((c['outcome'], c.get('sipCode')) for c in calls))}), engine placed "
                  f"{s.get('callsAttempted')} of {s.get('callsPlanned')} planned; charged {billing['charged']} s "
                  f"= {billed} s of recorded calls")
            assert_recorded_once(run, calls)
            placed = s.get("callsAttempted") or 0
            missing = re.match(r"(\d+) of the (\d+) call\(s\) the media engine placed were not recorded",
                               run["resultDescription"])
            if missing:  # lost, and the run says exactly how many
                assert run["status"] == "FAILED", run
                assert int(missing.group(1)) + len(calls) == int(missing.group(2)) == placed, (missing.groups(), s)
            else:  # nothing lost: every call the engine placed is recorded, once
                assert len(calls) == placed, (len(calls), s)
                # COMPLETED, or FAILED on the calls' own verdict (what the far end answered), never on
                # the engine's loss: it was alive all along
                assert run["status"] == "COMPLETED" or not run["resultDescription"].startswith("media engine"), run
            assert data(api.post("/projects", json={"name": "after the fault"}), 201)  # writes work again
    finally:
        filler.unlink(missing_ok=True)
        stack.stop()
