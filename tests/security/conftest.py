"""The security suite: the whole stack as `callgauge up` starts it, probed as a client (or a
neighbour on the network) would."""

from __future__ import annotations

import httpx
import pytest

from callgauge_platform.stack import Stack


@pytest.fixture(scope="session")
def sec_stack(tmp_path_factory):
    # SIP destinations on loopback are allowed explicitly by Stack.on_free_ports, as in the embedded
    # demo (the default denies them); webhook receivers keep the production default (global only).
    # Small quotas, so the quota tests reach them (only those tests start runs here).
    s = Stack.on_free_ports(tmp_path_factory.mktemp("sec") / "data", rate_limit_per_minute=1_000_000,
                            quota_concurrent_runs=3, quota_planned_calls_per_run=1000,
                            probe_min_interval_seconds=1)  # the deletion test watches a 2 s probe
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
