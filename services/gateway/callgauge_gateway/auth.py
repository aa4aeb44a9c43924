"""Authentication. Until user accounts exist, the gateway accepts the one bootstrap API key that
`callgauge up` creates (CALLGAUGE_API_KEY); its account is `default`."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request

from callgauge_gateway.errors import ApiError

KEY_PREFIXES = ("cgk_live_", "cgk_test_")


@dataclass(frozen=True)
class Principal:
    account_id: str
    mode: str  # live | test


def authenticate(request: Request) -> Principal:
    expected: str = request.app.state.settings.api_key
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Missing API key: send Authorization: Bearer cgk_live_…")
    token = token.strip()
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError(401, "Invalid or expired API key")
    return Principal(account_id="default", mode="test" if token.startswith("cgk_test_") else "live")
