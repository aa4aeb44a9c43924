"""The gateway's HTTP server: uvicorn serving the application bootstrap wired, until SIGTERM or
SIGINT. A signal drains in-flight requests, then the process exits 0 (uvicorn's own handling would
re-raise the signal and exit -15)."""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn
from fastapi import FastAPI

from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.lifecycle import run_until_signalled
from callgauge_gateway.settings import GatewaySettings


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # signals are ours: run_until_signalled turns them into should_exit
        yield


def serve_until_signalled(app: FastAPI, settings: GatewaySettings) -> bool:
    """Serve `app` on CALLGAUGE_GATEWAY_HOST:PORT until a signal; whether the server had started."""
    config = uvicorn.Config(app, host=settings.gateway_host, port=settings.gateway_port,
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
    return server.started
