"""python -m callgauge_gateway — the REST gateway (uvicorn; SIGTERM drains in-flight requests)."""

from __future__ import annotations

import sys

import uvicorn

from callgauge_platform.logs import setup_logging
from callgauge_platform.settings import Settings
from callgauge_platform.telemetry import setup_tracing

from callgauge_gateway.app import create_app


def main() -> int:
    settings = Settings()
    setup_logging("gateway", settings.log_level, settings.log_json)
    provider = setup_tracing("gateway", settings.otlp_endpoint)
    uvicorn.run(create_app(settings), host=settings.gateway_host, port=settings.gateway_port,
                log_level="warning", access_log=False, timeout_graceful_shutdown=10)
    provider.shutdown()  # flush the spans still batched
    return 0


if __name__ == "__main__":
    sys.exit(main())
