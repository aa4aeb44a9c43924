"""`Client` (sync) and `AsyncClient` over httpx. Both take the gateway URL and an API key (or a
JWT), default to CALLGAUGE_URL / CALLGAUGE_API_KEY, retry 429/503 honouring Retry-After (bounded),
send an Idempotency-Key on every POST (the same one on each retry), and raise `ApiError`
subclasses carrying the envelope's code, message and details."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from callgauge_client._base import BaseClient, Call, RetryPolicy
from callgauge_client._endpoints import Endpoints
from callgauge_client.errors import TransportError
from callgauge_client.models import Run


class Client(BaseClient, Endpoints):
    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0,
                 retry: RetryPolicy | None = None, headers: dict[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(base_url, api_key, timeout=timeout, retry=retry, headers=headers)
        self._http = httpx.Client(transport=transport, **self._client_kwargs())
        self.retries_done = 0  # 429/503 retries made over the client's life (observability, tests)

    def _call(self, call: Call) -> Any:
        kwargs = self._request_kwargs(call)
        attempt = 0
        while True:
            try:
                resp = self._http.request(call.method, call.path, **kwargs)
            except httpx.TransportError as exc:
                raise TransportError(f"cannot reach the Callgauge gateway at {self.base_url}: {exc}",
                                     self.base_url) from exc
            wait = self.retry.wait_for(resp, attempt)
            if wait is None:
                return self._decode(call, resp)
            attempt += 1
            self.retries_done += 1
            time.sleep(wait)

    def wait_for_run(self, project_id: str, run_id: str, *, timeout: float = 600.0, poll: float = 1.0,
                     on_update: Callable[[Run], None] | None = None) -> Run:
        """Poll a run until it finishes; TimeoutError after `timeout` s. `on_update(run)` after every poll."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get_run(project_id, run_id)
            if on_update is not None:
                on_update(run)
            if run.finished:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run.status} after {timeout:.0f} s")
            time.sleep(poll)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(BaseClient, Endpoints):
    """The same methods as `Client`, each returning an awaitable."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0,
                 retry: RetryPolicy | None = None, headers: dict[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(base_url, api_key, timeout=timeout, retry=retry, headers=headers)
        self._http = httpx.AsyncClient(transport=transport, **self._client_kwargs())
        self.retries_done = 0

    async def _call(self, call: Call) -> Any:  # type: ignore[override]
        kwargs = self._request_kwargs(call)
        attempt = 0
        while True:
            try:
                resp = await self._http.request(call.method, call.path, **kwargs)
            except httpx.TransportError as exc:
                raise TransportError(f"cannot reach the Callgauge gateway at {self.base_url}: {exc}",
                                     self.base_url) from exc
            wait = self.retry.wait_for(resp, attempt)
            if wait is None:
                return self._decode(call, resp)
            attempt += 1
            self.retries_done += 1
            await asyncio.sleep(wait)

    async def wait_for_run(self, project_id: str, run_id: str, *, timeout: float = 600.0, poll: float = 1.0,
                           on_update: Callable[[Run], None] | None = None) -> Run:
        deadline = time.monotonic() + timeout
        while True:
            run = await self.get_run(project_id, run_id)
            if on_update is not None:
                on_update(run)
            if run.finished:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run.status} after {timeout:.0f} s")
            await asyncio.sleep(poll)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

