"""The webhook HTTP adapter (callgauge_runs.adapters.webhook_http) against a real receiver on
127.0.0.1, with its HTTP client and clock injected: the attempt is signed at the injected clock's
time, carries its attempt number, goes to the checked address; a private receiver is refused
without the setting and nothing is sent; a receiver's redirect is its answer."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from callgauge_runs.adapters.webhook_http import ATTEMPT_HEADER, HttpWebhookSender
from callgauge_runs.domain import webhooks
from webhook_receiver import WebhookReceiver

SECRET = "whsec_test"
NOW = 1_764_120_000.0


@pytest.fixture
def receiver(request) -> Iterator[WebhookReceiver]:
    """A receiver answering (status, location) as the test's parameter says, 204 by default."""
    status, *location = getattr(request, "param", (204,))
    with WebhookReceiver(status=status, location=location[0] if location else "", path="/hooks?x=1") as rx:
        yield rx


def delivery(body: str = '{"id":"d1"}') -> webhooks.Delivery:
    return webhooks.Delivery("d1", "w1", "run.finished", body, datetime.now(UTC))


async def send(rx_url: str, allow_private: bool, attempt: int = 1) -> tuple[int, str]:
    async with httpx.AsyncClient(timeout=5, follow_redirects=False) as client:
        sender = HttpWebhookSender(client, clock=lambda: NOW, allow_private=allow_private)
        return await sender.send(rx_url, SECRET, delivery(), attempt)


async def test_an_attempt_is_signed_at_the_injected_clock_and_numbered(receiver):
    assert await send(receiver.url, allow_private=True, attempt=3) == (204, "")
    [(headers, body)] = receiver.requests
    assert body == b'{"id":"d1"}'
    assert headers[webhooks.TIMESTAMP_HEADER] == str(int(NOW))
    assert webhooks.verify(SECRET, headers[webhooks.TIMESTAMP_HEADER], body, headers[webhooks.SIGNATURE_HEADER],
                           now=int(NOW) + 1)
    assert headers[ATTEMPT_HEADER] == "3" and headers[webhooks.DELIVERY_HEADER] == "d1"
    assert headers[webhooks.EVENT_HEADER] == "run.finished"
    assert headers["Host"] == f"127.0.0.1:{receiver.server.server_address[1]}"


@pytest.mark.parametrize("receiver", [(500,)], indirect=True)
async def test_an_error_status_is_reported(receiver):
    assert await send(receiver.url, allow_private=True) == (500, "HTTP 500")


@pytest.mark.parametrize("receiver", [(302, "http://127.0.0.1:9/elsewhere")], indirect=True)
async def test_a_redirect_is_the_receivers_answer_not_followed(receiver):
    assert await send(receiver.url, allow_private=True) == (302, "HTTP 302")
    assert len(receiver.requests) == 1


async def test_a_private_receiver_is_refused_without_the_setting_and_nothing_is_sent(receiver):
    status, error = await send(receiver.url, allow_private=False)
    assert status == 0 and error.startswith("receiver refused:"), error
    assert receiver.requests == []


async def test_a_receiver_that_is_not_listening_is_an_error_not_an_exception():
    with socket.socket() as s:  # a loopback port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    status, error = await send(f"http://127.0.0.1:{port}/hooks", allow_private=True)
    assert status == 0 and error.startswith("ConnectError"), error
