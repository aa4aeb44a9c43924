from __future__ import annotations

import httpx
import pytest

from callgauge_app.settings import SERVICE_SETTINGS
from callgauge_platform.stack import Stack
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
    s.service_settings = SERVICE_SETTINGS  # like `callgauge up`: each service is handed its own settings
    s.start(timeout=90)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def api(stack):
    with httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1",
                      headers={"Authorization": f"Bearer {stack.settings.api_key}"}, timeout=30) as client:
        yield client

