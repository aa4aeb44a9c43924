"""`Client` (sync) and `AsyncClient` over httpx. Both take the gateway URL and an API key (or a
JWT), default to CALLGAUGE_URL / CALLGAUGE_API_KEY, retry 429/503 honouring Retry-After (bounded),
send an Idempotency-Key on every POST (the same one on each retry), and raise `ApiError`
subclasses carrying the envelope's code, message and details."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from callgauge_client._base import BaseClient, Call, RetryPolicy
from callgauge_client._endpoints import Endpoints, call_filters, calls_path
from callgauge_client.errors import TransportError, error_from_response
from callgauge_client.models import CallMeasurement, Run

EXPORT_FORMATS = ("csv", "parquet")


def _export(client: BaseClient, project_id: str, run_id: str, path: str | os.PathLike, fmt: str,
            filters: dict[str, Any]) -> tuple[Path, Path, str, dict[str, Any]]:
    """(the file, its .part while downloading, the URL path, the request's kwargs) of an export."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format {fmt!r}: csv or parquet")
    target = Path(path)
    url = calls_path(project_id, run_id, f".{fmt}")
    params = {k: v for k, v in call_filters(**filters).items() if v is not None}
    return target, target.with_name(target.name + ".part"), url, client._request_kwargs(Call("GET", url, params=params))


def _audio(client: BaseClient, project_id: str, run_id: str, call_id: str, path: str | os.PathLike,
           leg: str) -> tuple[Path, Path, str, dict[str, Any]]:
    if leg not in ("caller", "callee"):
        raise ValueError(f"leg {leg!r}: caller or callee")
    target = Path(path)
    url = calls_path(project_id, run_id, f"/{quote(call_id, safe='')}/audio")
    return (target, target.with_name(target.name + ".part"), url,
            client._request_kwargs(Call("GET", url, params={"leg": leg})))


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

    def run_calls(self, project_id: str, run_id: str, *, per_page: int = 1000, **filters: Any
                  ) -> Iterator[CallMeasurement]:
        """Every call of a run (matching `filters`: outcome, sip_code, mos_min, mos_max, sort), page
        after page with the keyset cursor; memory bounded by one page."""
        cursor = None
        while True:
            page = self.run_calls_page(project_id, run_id, cursor=cursor, per_page=per_page, **filters)
            yield from page.items
            cursor = page.pagination.next_cursor
            if not cursor:
                return

    def export_run_calls(self, project_id: str, run_id: str, path: str | os.PathLike, fmt: str = "csv",
                         **filters: Any) -> int:
        """Download a run's calls as CSV or Parquet into `path` (streamed; written to `path.part`,
        renamed when complete). Returns the bytes written."""
        return self._save(*_export(self, project_id, run_id, path, fmt, filters), "export")

    def download_call_audio(self, project_id: str, run_id: str, call_id: str, path: str | os.PathLike,
                            leg: str = "caller") -> int:
        """Save one leg's recording of a call (WAV) into `path`; returns the bytes written. A call
        without that recording raises NotFoundError."""
        return self._save(*_audio(self, project_id, run_id, call_id, path, leg), "download")

    def _save(self, target: Path, part: Path, url: str, kwargs: dict[str, Any], what: str) -> int:
        """Stream a GET into `part`, then rename it to `target`; the bytes written. An error status
        raises its ApiError; a broken transfer removes `part` and raises TransportError."""
        size = 0
        try:
            with self._http.stream("GET", url, **kwargs) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise error_from_response(resp)
                with part.open("wb") as f:
                    for chunk in resp.iter_bytes():
                        size += f.write(chunk)
        except httpx.TransportError as exc:
            part.unlink(missing_ok=True)
            raise TransportError(f"the {what} from {self.base_url} broke off: {exc}", self.base_url) from exc
        part.replace(target)
        return size

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

    async def run_calls(self, project_id: str, run_id: str, *, per_page: int = 1000,  # type: ignore[override]
                        **filters: Any) -> AsyncIterator[CallMeasurement]:
        """Every call of a run, page after page (`async for call in cg.run_calls(...)`)."""
        cursor = None
        while True:
            page = await self.run_calls_page(project_id, run_id, cursor=cursor, per_page=per_page, **filters)
            for call in page.items:
                yield call
            cursor = page.pagination.next_cursor
            if not cursor:
                return

    async def export_run_calls(self, project_id: str, run_id: str, path: str | os.PathLike, fmt: str = "csv",
                               **filters: Any) -> int:
        return await self._save(*_export(self, project_id, run_id, path, fmt, filters), "export")

    async def download_call_audio(self, project_id: str, run_id: str, call_id: str, path: str | os.PathLike,
                                  leg: str = "caller") -> int:
        return await self._save(*_audio(self, project_id, run_id, call_id, path, leg), "download")

    async def _save(self, target: Path, part: Path, url: str, kwargs: dict[str, Any], what: str) -> int:
        size = 0
        try:
            async with self._http.stream("GET", url, **kwargs) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise error_from_response(resp)
                with part.open("wb") as f:
                    async for chunk in resp.aiter_bytes():
                        size += f.write(chunk)
        except httpx.TransportError as exc:
            part.unlink(missing_ok=True)
            raise TransportError(f"the {what} from {self.base_url} broke off: {exc}", self.base_url) from exc
        part.replace(target)
        return size

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

