"""Rate limits with the `limits` library: a fixed one-minute window per API key (or per user for
access tokens, per client address for the unauthenticated /auth routes). Storage is Redis when
CALLGAUGE_REDIS_URL is set — every gateway process then counts in one place — and this process's
memory otherwise (the embedded one-gateway default).

Every counted response carries X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (unix
seconds when the window ends); a refused one is a 429 with Retry-After (seconds). If Redis does not
answer, requests are let through (logged): the limit protects the platform, it must not take it down."""

from __future__ import annotations

import math
import time

from fastapi import Request
from limits import RateLimitItemPerMinute
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from callgauge_gateway.errors import ApiError
from callgauge_platform.logs import get_logger
from callgauge_platform.settings import Settings

log = get_logger(__name__)
NAMESPACE = "callgauge"


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.default = settings.rate_limit_per_minute
        if settings.redis_url:
            self.storage = storage_from_string(f"async+{settings.redis_url}", implementation="redispy",
                                               key_prefix="callgauge-limits")
        else:
            self.storage = storage_from_string("async+memory://")
        self.limiter = FixedWindowRateLimiter(self.storage)

    async def check(self, request: Request, identity: str, limit: int = 0) -> None:
        """Count one request of `identity`; raise 429 when over its limit. The headers go on the
        response through request.state.rate_headers."""
        limit = limit or self.default
        item = RateLimitItemPerMinute(limit)
        try:
            allowed = await self.limiter.hit(item, NAMESPACE, identity)
            stats = await self.limiter.get_window_stats(item, NAMESPACE, identity)
        except Exception as exc:  # the store is down: let the request through
            log.warning("rate_limit_store_unavailable", error=repr(exc))
            return
        reset = math.ceil(stats.reset_time)
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(stats.remaining, 0)),
                   "X-RateLimit-Reset": str(reset)}
        request.state.rate_headers = headers
        if not allowed:
            retry = min(60, max(1, math.ceil(stats.reset_time - time.time())))
            raise ApiError(429, f"Rate limit of {limit} requests a minute reached; retry in {retry} s",
                           details=[{"limit": limit, "window": "1 minute", "retryAfter": retry}],
                           headers={**headers, "Retry-After": str(retry)})


async def limit_anonymous(request: Request) -> None:
    """The /auth routes (no credentials yet): counted per client address, which bounds password
    guessing against login."""
    client = request.client.host if request.client else "unknown"
    await request.app.state.limiter.check(request, f"ip:{client}")
