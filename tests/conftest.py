"""Fixtures shared by every test folder: a real Tansu broker on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid

import pytest

from callgauge_platform.broker import tansu_command
from callgauge_platform.stack import free_port


class Broker:
    def __init__(self) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(tansu_command("127.0.0.1", self.port), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                assert self.proc.poll() is None, f"tansu exited with {self.proc.returncode}"
                time.sleep(0.05)
        raise RuntimeError("tansu did not open its port")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="session")
def broker():
    """A real Tansu broker (memory storage), shared by the session; tests isolate by topic prefix."""
    b = Broker()
    b.start()
    yield b
    b.stop()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."
