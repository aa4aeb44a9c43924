"""`callgauge up`'s supervision with real child processes: a crashed child is restarted after a
growing delay and logged, repeated crashes make the supervisor give up naming the child; the stop
order follows dependencies and each child's stop timeout outlasts its drain. And the media-engine's
clean-up of the SIPp work dirs that a dead engine left."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from callgauge_platform.settings import StackSettings
from callgauge_platform.stack import RESTART_BACKOFF_S, RESTART_BURST, STOP_ORDER, Stack

from callgauge_media.adapters.sipp.driver import WORKDIR_PREFIX, remove_orphaned_workdirs


def _stack(tmp_path) -> Stack:
    return Stack(StackSettings(data_dir=tmp_path, media_drain_timeout_s=30))


def _wait_exit(proc: subprocess.Popen) -> None:
    proc.wait(30)


def test_a_crashed_child_is_restarted_with_backoff_then_given_up_on(tmp_path) -> None:
    stack = _stack(tmp_path)
    said: list[str] = []
    clock = [1000.0]
    child = stack._spawn("billing", [sys.executable, "-c", "import sys; sys.exit(3)"])
    pids = {child.proc.pid}
    gave_up = None
    for crash in range(1, RESTART_BURST + 1):
        _wait_exit(child.proc)
        gave_up = stack.supervise(said.append, now=lambda: clock[0])
        if gave_up is not None:
            break
        assert said[-1].startswith("billing exited with 3; restarting it in")
        assert child.restart_at == clock[0] + RESTART_BACKOFF_S[crash - 1]  # 1 s, 2 s, 4 s …
        clock[0] += RESTART_BACKOFF_S[crash - 1] - 0.5
        assert stack.supervise(said.append, now=lambda: clock[0]) is None
        assert child.proc.pid in pids  # not yet: the delay has not passed
        clock[0] += 0.5
        assert stack.supervise(said.append, now=lambda: clock[0]) is None
        assert said[-1].startswith("billing restarted")
        pids.add(child.proc.pid)
    assert gave_up is not None and gave_up.startswith(f"billing crashed {RESTART_BURST} times")
    assert len(pids) == RESTART_BURST  # the first start and RESTART_BURST - 1 restarts
    stack.stop()


def test_crashes_spread_out_in_time_never_exhaust_the_restarts(tmp_path) -> None:
    stack = _stack(tmp_path)
    clock = [0.0]
    child = stack._spawn("runs", [sys.executable, "-c", "import sys; sys.exit(1)"])
    for _ in range(RESTART_BURST * 2):
        _wait_exit(child.proc)
        assert stack.supervise(now=lambda: clock[0]) is None
        clock[0] += 60.0  # one crash a minute
        assert stack.supervise(now=lambda: clock[0]) is None
    stack.stop()


def test_stop_order_follows_dependencies_and_timeouts_outlast_the_drain(tmp_path) -> None:
    stack = _stack(tmp_path)
    record = tmp_path / "order"
    script = ("import signal, sys, time\n"
              "def term(*_):\n"
              f"    open({str(record)!r}, 'a').write(sys.argv[1] + '\\n'); sys.exit(0)\n"
              "signal.signal(signal.SIGTERM, term)\n"
              f"open({str(record)!r} + '.' + sys.argv[1], 'w').close()\n"
              "time.sleep(60)\n")
    start_order = ("tansu", "accounts", "runs", "billing", "media-engine", "gateway", "responder")
    for name in start_order:
        stack._spawn(name, [sys.executable, "-c", script, name])
    for name in start_order:  # every child has its SIGTERM handler installed
        while not (tmp_path / f"order.{name}").exists():
            time.sleep(0.05)
    timeouts = {c.name: c.stop_timeout for c in stack.children}
    assert timeouts["media-engine"] > 30
    stack.stop()
    assert record.read_text().split() == list(STOP_ORDER)
    assert stack.unclean_exits() == {}


def test_work_dirs_of_dead_engines_are_removed_and_live_ones_kept(tmp_path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = tmp_path / f"{WORKDIR_PREFIX}{dead.pid}-abc"
    live = tmp_path / f"{WORKDIR_PREFIX}{os.getpid()}-def"
    for d in (gone, live):
        d.mkdir()
        (d / "users.csv").write_text("SEQUENTIAL\n")
    assert remove_orphaned_workdirs(str(tmp_path)) == [str(gone)]
    assert not gone.exists() and live.exists()
