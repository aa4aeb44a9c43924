"""Typed exceptions: every error the gateway answers becomes an `ApiError` subclass chosen by
status code, carrying the envelope's `code`, `message` and `details` and the request id."""

from __future__ import annotations

from typing import Any

import httpx


class CallgaugeError(Exception):
    """Base of everything this client raises."""


class TransportError(CallgaugeError):
    """The gateway could not be reached (connection refused, DNS, TLS, timeout)."""

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(message)
        self.message, self.url = message, url


class ApiError(CallgaugeError):
    """The gateway answered with an error status. `code` is the envelope's machine-readable
    code (e.g. VALIDATION_ERROR), `details` its list (for 422: one entry per field, with `loc`,
    `msg`, `type`)."""

    status: int = 0

    def __init__(self, status: int, code: str, message: str, details: list[Any] | None = None,
                 request_id: str = "", headers: httpx.Headers | None = None, method: str = "", path: str = "") -> None:
        self.status, self.code, self.message = status, code, message
        self.details = list(details or [])
        self.request_id, self.headers, self.method, self.path = request_id, headers or httpx.Headers(), method, path
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.method else ""
        text = f"{where}{self.status} {self.code}: {self.message}"
        if self.details:
            parts = []
            for d in self.details[:10]:
                if isinstance(d, dict) and "msg" in d:
                    loc = ".".join(str(x) for x in d.get("loc", []))
                    parts.append(f"{loc}: {d['msg']}" if loc else str(d["msg"]))
                else:
                    parts.append(str(d))
            text += " (" + "; ".join(parts) + ")"
        return text


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class InsufficientBalance(ApiError):
    status = 402


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class ValidationFailed(ApiError):
    status = 422


class RateLimited(ApiError):
    """429 after the client's bounded retries ran out; `retry_after` is the last wait asked for."""

    status = 429

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class ServerError(ApiError):
    status = 500


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 402: InsufficientBalance, 403: Forbidden, 404: NotFound, 409: Conflict,
    422: ValidationFailed, 429: RateLimited,
}


def error_from_response(resp: httpx.Response) -> ApiError:
    code, message, details, rid = "", "", [], resp.headers.get("x-request-id", "")
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code, message = str(err.get("code") or ""), str(err.get("message") or "")
        details = err.get("details") or []
        rid = (body.get("meta") or {}).get("requestId") or rid
    elif isinstance(body, dict) and "detail" in body:  # a plain FastAPI error, not in the envelope
        message = str(body["detail"])
    else:
        message = resp.text[:300].strip() or resp.reason_phrase
    cls = _BY_STATUS.get(resp.status_code) or (ServerError if resp.status_code >= 500 else ApiError)
    return cls(resp.status_code, code or resp.reason_phrase.upper().replace(" ", "_"), message or resp.reason_phrase,
               details if isinstance(details, list) else [details], rid, resp.headers, resp.request.method,
               resp.request.url.path)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import datetime, timezone
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
