"""What the sync and async clients share: configuration, request preparation (auth, idempotency
keys), response decoding into models or typed errors, and the retry policy."""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel

from callgauge_client.errors import error_from_response, parse_retry_after
from callgauge_client.models import Page, Pagination

DEFAULT_URL = "http://127.0.0.1:8080"
RETRY_STATUSES = (429, 503)
USER_AGENT = "callgauge-client/0.1"


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    for suffix in ("/api/v1", "/api"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    if "://" not in url:
        url = "http://" + url
    return url


@dataclass
class RetryPolicy:
    """Retries on 429 (and 503) honouring Retry-After, bounded in count and in wait per retry."""

    max_retries: int = 3
    max_wait: float = 30.0          # never sleep longer than this for one retry
    backoff: float = 0.5            # when no Retry-After: backoff * 2**attempt (with jitter)

    def wait_for(self, resp: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying `resp`, or None when it must not be retried."""
        if resp.status_code not in RETRY_STATUSES or attempt >= self.max_retries:
            return None
        asked = parse_retry_after(resp.headers.get("retry-after"))
        if asked is None:
            asked = self.backoff * (2 ** attempt) * (1 + random.random() / 4)
        if asked > self.max_wait:
            return None  # the server asks for longer than we are willing to wait: surface the 429
        return asked


@dataclass
class Call:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    model: type[BaseModel] | None = None
    paged: bool = False
    idempotency_key: str | None = None


class BaseClient:
    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0,
                 retry: RetryPolicy | None = None, headers: dict[str, str] | None = None) -> None:
        self.base_url = normalise_url(base_url or os.environ.get("CALLGAUGE_URL") or DEFAULT_URL)
        self.api_key = api_key if api_key is not None else os.environ.get("CALLGAUGE_API_KEY", "")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}

    def _client_kwargs(self) -> dict[str, Any]:
        return {"base_url": f"{self.base_url}/api/v1", "timeout": self.timeout, "headers": self._headers}

    def _request_kwargs(self, call: Call) -> dict[str, Any]:
        headers: dict[str, str] = {}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if call.method == "POST":
            # One key per logical request, reused by every retry of it: the gateway replays the first
            # answer instead of acting twice.
            call.idempotency_key = call.idempotency_key or str(uuid.uuid4())
            headers["Idempotency-Key"] = call.idempotency_key
        kwargs: dict[str, Any] = {"headers": headers}
        if call.json is not None:
            kwargs["json"] = call.json
        if call.params:
            kwargs["params"] = {k: v for k, v in call.params.items() if v is not None}
        return kwargs

    @staticmethod
    def _decode(call: Call, resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            raise error_from_response(resp)
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            body = resp.json()
        except ValueError as exc:
            raise error_from_response(resp) from exc
        data = body.get("data") if isinstance(body, dict) and "data" in body else body
        if call.paged:
            meta = (body.get("meta") or {}) if isinstance(body, dict) else {}
            items = [call.model.model_validate(x) if call.model else x for x in (data or [])]
            return Page[call.model](items=items, pagination=Pagination.model_validate(meta.get("pagination") or {})) \
                if call.model else Page(items=items, pagination=Pagination.model_validate(meta.get("pagination") or {}))
        if call.model is not None and data is not None:
            return call.model.model_validate(data)
        return data


def run_body(overrides: dict[str, Any] | None = None, *, tags: list[str] | None = None,
             metadata: dict[str, str] | None = None, kiosk: bool = False, test_name: str | None = None,
             test_id: str | None = None) -> dict[str, Any]:
    """The body of a run start: `step.N.M.attr` overrides as flat keys (Sipfront), `report.mode`,
    `test.name`/`test.id` for POST /tests/run, tags and metadata."""
    body: dict[str, Any] = {}
    if test_name:
        body["test.name"] = test_name
    if test_id:
        body["test.id"] = test_id
    for key, value in (overrides or {}).items():
        if not key.startswith("step."):
            key = f"step.{key}"
        body[key] = value
    if kiosk:
        body["report.mode"] = "kiosk"
    if tags:
        body["tags"] = list(tags)
    if metadata:
        body["metadata"] = dict(metadata)
    return body
