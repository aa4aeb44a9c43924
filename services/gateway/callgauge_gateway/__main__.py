"""python -m callgauge_gateway — the REST gateway. SIGTERM drains in-flight requests, then the
process exits 0 (uvicorn's own handling would re-raise the signal and exit -15)."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import uvicorn

from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.datadir import private_process
from callgauge_platform.lifecycle import run_until_signalled
from callgauge_platform.logs import setup_logging
from callgauge_platform.placeholders import refuse_placeholders
from callgauge_platform.settings import Settings
from callgauge_platform.telemetry import setup_tracing

from callgauge_gateway.app import create_app


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # signals are ours: run_until_signalled turns them into should_exit
        yield


def main() -> int:
    private_process()  # the idempotency store and the secrets it writes are 0600 / 0700
    settings = Settings()
    refuse_placeholders(settings, "gateway")  # a template's CHANGE-ME secret: exit 2 before anything starts
    setup_logging("gateway", settings.log_level, settings.log_json)
    provider = setup_tracing("gateway", settings.otlp_endpoint)
    config = uvicorn.Config(create_app(settings), host=settings.gateway_host, port=settings.gateway_port,
                            log_level="warning", access_log=False, timeout_graceful_shutdown=10,
                            # uvicorn would believe X-Forwarded-For from 127.0.0.1 (FORWARDED_ALLOW_IPS): the
                            # gateway decides that itself, from CALLGAUGE_TRUSTED_PROXIES only (ratelimit.py)
                            proxy_headers=False, server_header=False)
    server = _Server(config)

    async def serve(stop: asyncio.Event) -> None:
        task = asyncio.create_task(server.serve())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        await task
        await cancel_and_wait(stopped)

    run_until_signalled(serve)
    provider.shutdown()  # flush the spans still batched
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
