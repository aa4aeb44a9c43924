"""A small HTTP server for the non-HTTP services: /healthz (the process is alive), /readyz (its
dependencies answer) and /metrics (Prometheus text format)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from callgauge_platform.logs import get_logger

log = get_logger(__name__)

ReadyCheck = Callable[[], Awaitable[tuple[bool, str]]]


class _Store(Protocol):
    async def last_position(self) -> int: ...


async def store_ready(store: _Store) -> tuple[bool, str]:
    """The event store part of a service's /readyz: it answers a read of its head. A probe
    reports, never raises."""
    try:
        await store.last_position()
    except Exception as exc:
        return False, f"event store: {exc!r}"
    return True, "ready"


class HealthServer:
    def __init__(self, host: str, port: int, ready: ReadyCheck) -> None:
        self._host, self._port, self._ready = host, port, ready
        # the start that made this process (callgauge up checks it reached its own child)
        self._instance = os.environ.get("CALLGAUGE_INSTANCE_TOKEN", "").strip()
        self._server: asyncio.base_events.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            line = request.split(b"\r\n", 1)[0].decode("latin-1").split()
            path = line[1].split("?", 1)[0] if len(line) >= 2 else ""
            if path == "/healthz":
                status, ctype, body = 200, "text/plain", b"ok\n"
            elif path == "/readyz":
                ok, why = await self._ready()
                status, ctype, body = (200 if ok else 503), "text/plain", (why or "ready").encode() + b"\n"
            elif path == "/metrics":
                status, ctype, body = 200, CONTENT_TYPE_LATEST, generate_latest()
            else:
                status, ctype, body = 404, "text/plain", b"not found\n"
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            instance = f"X-Callgauge-Instance: {self._instance}\r\n" if self._instance else ""
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                f"{instance}Connection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        except Exception:  # a health probe must never take the service down
            log.exception("health_request_failed")
        finally:
            writer.close()
