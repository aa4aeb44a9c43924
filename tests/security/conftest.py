"""The security suite: the whole stack as `callgauge up` starts it, probed as a client (or a
neighbour on the network) would."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from callgauge_platform.stack import Stack, free_port, stop_process
from otlp_collector import Collector


@pytest.fixture(scope="session")
def sec_stack(tmp_path_factory):
    # SIP destinations on loopback are allowed explicitly by Stack.on_free_ports, as in the embedded
    # demo (the default denies them); webhook receivers keep the production default (global only).
    # Small quotas, so the quota tests reach them (only those tests start runs here).
    # Keys: the operator's per-key maximum and key count are small here (finding 6's tests reach them).
    s = Stack.on_free_ports(tmp_path_factory.mktemp("sec") / "data", rate_limit_per_minute=1_000_000,
                            quota_concurrent_runs=3, quota_planned_calls_per_run=1000,
                            probe_min_interval_seconds=1,  # the deletion test watches a 2 s probe
                            api_key_rate_limit_max=10_000, max_api_keys_per_account=5)
    s.start(timeout=90)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def gateway(sec_stack):
    return sec_stack.settings.gateway_url()


@pytest.fixture(scope="session")
def api(sec_stack):
    with httpx.Client(base_url=f"{sec_stack.settings.gateway_url()}/api/v1",
                      headers={"Authorization": f"Bearer {sec_stack.settings.api_key}"}, timeout=60) as client:
        yield client


@dataclass
class Edge:
    """A second gateway process in front of the security stack's services, with its own (small)
    bounds, so its counters are its own: failed authentications, the account total, trusted proxies,
    an https public URL, traces sent to a collector of the test."""
    url: str
    log_path: Path
    collector: Collector
    proc: subprocess.Popen
    trusted_proxy: str = "127.0.9.1"


EDGE_SETTINGS = {
    "CALLGAUGE_PUBLIC_URL": "https://callgauge.example.test",
    "CALLGAUGE_AUTH_FAILURES_PER_CLIENT": "5",
    "CALLGAUGE_LOGIN_FAILURES_PER_ACCOUNT": "3",
    "CALLGAUGE_TRUSTED_PROXIES": "127.0.9.1/32",
    "CALLGAUGE_ACCOUNT_RATE_LIMIT_PER_MINUTE": "12",
}


@pytest.fixture(scope="session")
def edge(sec_stack, tmp_path_factory):
    collector = Collector()
    collector.start()
    port = free_port()
    env = {**sec_stack.env(), **EDGE_SETTINGS, "CALLGAUGE_GATEWAY_PORT": str(port),
           "CALLGAUGE_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    log_path = tmp_path_factory.mktemp("edge") / "gateway.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "callgauge_gateway"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log_path.read_text()
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the edge gateway did not get ready in 60 s:\n" + log_path.read_text()
        time.sleep(0.1)
    yield Edge(url, log_path, collector, proc)
    stop_process(proc, 20)
    collector.stop()

