"""The webhook HTTP adapter: POST one signed delivery attempt to its receiver.

The receiver's name is resolved once and every address it resolves to must be global (unless
private receivers are allowed); the request then goes to the address that was checked, with the
original name as Host header and TLS server name, so DNS rebinding cannot point a second
resolution elsewhere. The HTTP client and the clock (the signature's timestamp) are injected:
bootstrap passes an httpx.AsyncClient that follows no redirects, and owns it."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
from callgauge_platform.telemetry import current_traceparent

from callgauge_runs.domain import webhooks
from callgauge_runs.domain.errors import ValidationCollector

ATTEMPT_HEADER = "Callgauge-Attempt"


class WebhookSender(Protocol):
    async def send(self, url: str, secret: str, delivery: webhooks.Delivery, attempt: int) -> tuple[int, str]:
        """(HTTP status or 0, error or ''): one attempt of `delivery` to `url`, signed with `secret`."""
        ...


class HttpWebhookSender:
    def __init__(self, client: httpx.AsyncClient, clock: Callable[[], float] = time.time,
                 allow_private: bool = False) -> None:
        self.client = client
        self.clock = clock
        self.allow_private = allow_private

    async def send(self, url: str, secret: str, delivery: webhooks.Delivery, attempt: int) -> tuple[int, str]:
        why, address = await resolve_receiver(url, self.allow_private)
        if why:
            return 0, f"receiver refused: {why}"
        target, pinned_headers, extensions = pinned_request(url, address)
        body = delivery.body.encode()
        headers = webhooks.signed_headers(secret, int(self.clock()), body, delivery.event, delivery.id)
        headers[ATTEMPT_HEADER] = str(attempt)
        if traceparent := current_traceparent():
            headers["traceparent"] = traceparent
        try:
            resp = await self.client.post(target, content=body, headers={**headers, **pinned_headers},
                                          extensions=extensions)
        except httpx.HTTPError as exc:
            return 0, f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        return resp.status_code, "" if 200 <= resp.status_code < 300 else f"HTTP {resp.status_code}"


async def resolve_receiver(url: str, allow_private: bool = False) -> tuple[str, str]:
    """(why the receiver is refused or '', the address to connect to). Every address the name
    resolves to must be global; the request then goes to the address that was checked (no second
    resolution that DNS rebinding could answer differently)."""
    host = urlsplit(url).hostname or ""
    v = ValidationCollector()
    webhooks.validate_url(url, allow_private, v, ["url"])
    if v.errors:
        return v.errors[0].msg, ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}", ""
    if not infos:
        return f"cannot resolve {host}", ""
    if not allow_private:
        for info in infos:
            if why := webhooks.address_refused(info[4][0]):
                return f"{host} resolves to {why}", ""
    return "", infos[0][4][0]


def pinned_request(url: str, address: str) -> tuple[str, dict[str, str], dict]:
    """The URL with the checked address in place of the name, the Host header and the TLS server
    name (SNI and certificate check) of the original name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{parts.port}" if parts.port else "")
    host_header = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return (urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), {"Host": host_header},
            {"sni_hostname": host} if parts.scheme == "https" else {})
