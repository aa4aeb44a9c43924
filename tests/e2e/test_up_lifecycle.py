"""`callgauge up` starts every part and leaves nothing behind when stopped — by SIGTERM (drained)
or even when the supervisor itself is SIGKILLed."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from callgauge_platform.stack import Stack

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
    env = Stack.on_free_ports(data).env()
    proc = subprocess.Popen([sys.executable, "-m", "callgauge_platform.cli", "up", "--data-dir", str(data)], env=env,
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
            return proc, f"CALLGAUGE_DATA_DIR={data}".encode(), out
    proc.kill()
    pytest.fail("callgauge up did not come up:\n" + "".join(out))


def wait_gone(marker: bytes, exclude: int, limit_s: float = 30) -> list[int]:
    deadline = time.monotonic() + limit_s
    left = processes_with(marker, exclude)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = processes_with(marker, exclude)
    return left


def test_sigterm_stops_every_process(tmp_path):
    proc, marker, _ = start_up(tmp_path)
    children = processes_with(marker, proc.pid)
    # tansu, runs, billing, media-engine (+ its pjsua2 workers), gateway, responder
    assert len(children) >= 6, children
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(90) == 0
    assert wait_gone(marker, proc.pid) == []


def test_sigkill_of_the_supervisor_still_leaves_nothing(tmp_path):
    proc, marker, _ = start_up(tmp_path)
    assert processes_with(marker, proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert wait_gone(marker, proc.pid) == []
