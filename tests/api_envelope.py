"""The REST API's response envelope as the suites read it: `{"data": …, "meta": {"requestId": …}}`."""

from __future__ import annotations

import httpx


def data(resp: httpx.Response, status: int = 200):
    """The `data` of a response that has the expected status; every answer carries its request id."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert body["meta"]["requestId"], body
    return body["data"]
