from __future__ import annotations

import shutil
import socket
import subprocess
import time

import httpx
import pytest

from callgauge_platform.stack import Stack, free_port
from otlp_collector import Collector


@pytest.fixture(scope="session")
def collector():
    c = Collector()
    c.start()
    yield c
    c.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory, collector):
    """The whole platform as `callgauge up` starts it, on free loopback ports, exporting its
    traces to the test's OTLP collector."""
    # A high default rate limit: the suite's many requests must not be throttled (tests of the limit
    # use keys with their own, low limit).
    # Probes on short intervals, webhook receivers on loopback and quick retries for the monitoring tests.
    s = Stack.on_free_ports(tmp_path_factory.mktemp("stack") / "data", otlp_endpoint=collector.endpoint,
                            rate_limit_per_minute=1_000_000, probe_min_interval_seconds=1,
                            webhook_allow_private=True, webhook_retry_base_seconds=1.0,
                            # a few tests dial the discard port (127.0.0.1:9) as a dead destination
                            dial_allow_ports="1-65535",
                            # the billing tests check wallets, 402s and hang-ups: an operator's prepaid mode
                            billing_mode="prepaid")
    s.extra_env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
    s.start(timeout=90)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def api(stack):
    with httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1",
                      headers={"Authorization": f"Bearer {stack.settings.api_key}"}, timeout=30) as client:
        yield client


@pytest.fixture
def sipp_uas():
    """SIPp as the far end: answers every call and echoes RTP (`-rtp_echo`)."""
    if shutil.which("sipp") is None:
        pytest.skip("sipp not installed (Debian package sip-tester; install.sh installs it)")
    port = free_port(kind=socket.SOCK_DGRAM)
    proc = subprocess.Popen(["sipp", "-sn", "uas", "-rtp_echo", "-i", "127.0.0.1", "-p", str(port), "-nostdin",
                             "-mp", str(free_port(kind=socket.SOCK_DGRAM))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    time.sleep(0.3)
    if proc.poll() is not None:
        pytest.fail(f"sipp exited with {proc.returncode}")
    yield f"sip:service@127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
