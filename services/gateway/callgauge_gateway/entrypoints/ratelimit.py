"""Rate limits with the `limits` library: a fixed one-minute window per API key (or per user for
access tokens, per client address for the unauthenticated /auth routes), and one per account across
all its keys and tokens (CALLGAUGE_ACCOUNT_RATE_LIMIT_PER_MINUTE), so many keys do not add up to
more. Storage (callgauge_gateway.adapters.rate_limit_store) is Redis when CALLGAUGE_REDIS_URL is
set — every gateway process then counts in one place — and this process's memory otherwise (the
embedded one-gateway default).

Every counted response carries X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (unix
seconds when the window ends) of the tightest limit; a refused one is a 429 with Retry-After (seconds).
If Redis does not answer, requests are let through (logged): the limit protects the platform, it
must not take it down.

Failed authentications (a bad API key, token, password or refresh token) are counted per client
address (CALLGAUGE_AUTH_FAILURES_PER_CLIENT) and failed logins per email address
(CALLGAUGE_LOGIN_FAILURES_PER_ACCOUNT), in windows of CALLGAUGE_AUTH_FAILURE_WINDOW_SECONDS. Once a
bound is reached, every authentication from that address (or login to that account) is a 429
before any credential is looked at, until the window ends: guessing stops, and a right guess made
while blocked is not told apart from a wrong one.

The client address is the TCP peer. X-Forwarded-For is believed only when the peer is one of
CALLGAUGE_TRUSTED_PROXIES (CIDRs; none by default): the address is then the right-most entry that
is not itself a trusted proxy, so a client cannot pick its own address by sending the header."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time

from fastapi import Request
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.strategies import FixedWindowRateLimiter

from callgauge_gateway.entrypoints.deps import gateway_of
from callgauge_gateway.entrypoints.errors import ApiError
from callgauge_platform.logs import get_logger
from callgauge_gateway.settings import GatewaySettings

log = get_logger(__name__)
NAMESPACE = "callgauge"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(value: str) -> tuple[Network, ...]:
    """CALLGAUGE_TRUSTED_PROXIES: comma-separated CIDRs (a bare address is a /32 or /128)."""
    out = []
    for part in (p.strip() for p in value.split(",")):
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                raise ValueError(f"CALLGAUGE_TRUSTED_PROXIES: {part!r} is not a network (CIDR)") from exc
    return tuple(out)


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(peer: str, forwarded_for: list[str], proxies: tuple[Network, ...]) -> str:
    """The client's address: the TCP peer, unless the peer is a trusted proxy; then the right-most
    X-Forwarded-For entry that is not a trusted proxy (entries left of it are the client's to
    write, so they are never believed)."""
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for header in forwarded_for for h in header.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop.strip("[]")))
            except ValueError:
                return peer  # garbage where an address should be: count it against the proxy's peer
    return hops[0] if hops else peer


def request_client(request: Request) -> str:
    cached = getattr(request.state, "client_address", None)
    if cached is None:
        peer = request.client.host if request.client else "unknown"
        cached = client_address(peer, request.headers.getlist("x-forwarded-for"),
                                gateway_of(request).limiter.trusted_proxies)
        request.state.client_address = cached
    return cached


class RateLimiter:
    def __init__(self, settings: GatewaySettings, storage) -> None:
        """`storage`: where the counters live (callgauge_gateway.adapters.rate_limit_store)."""
        self.default = settings.rate_limit_per_minute
        self.key_max = settings.key_rate_limit_max()
        self.account_limit = settings.account_rate_limit()
        self.trusted_proxies = parse_proxies(settings.trusted_proxies)
        window = settings.auth_failure_window_seconds
        self.client_failures = RateLimitItemPerSecond(settings.auth_failures_per_client, window)
        self.login_failures = RateLimitItemPerSecond(settings.login_failures_per_account, window)
        self.storage = storage
        self.limiter = FixedWindowRateLimiter(self.storage)

    def key_limit(self, limit: int) -> int:
        """A key's own limit (or the default), never above the operator's maximum."""
        return min(limit or self.default, self.key_max)

    async def check(self, request: Request, identity: str, limit: int = 0, account: str = "") -> None:
        """Count one request of `identity` (and of its account, when given); raise 429 when over a
        limit. The headers (of the tightest limit) go on the response through request.state.rate_headers."""
        counted = [(identity, limit or self.default, "")]
        if account:
            counted.append((f"account:{account}", self.account_limit, "this account's total across its keys "))
        tightest = None
        for ident, lim, what in counted:
            item = RateLimitItemPerMinute(lim)
            try:
                allowed = await self.limiter.hit(item, NAMESPACE, ident)
                stats = await self.limiter.get_window_stats(item, NAMESPACE, ident)
            except Exception as exc:  # the store is down: let the request through
                log.warning("rate_limit_store_unavailable", error=repr(exc))
                return
            reset = math.ceil(stats.reset_time)
            headers = {"X-RateLimit-Limit": str(lim), "X-RateLimit-Remaining": str(max(stats.remaining, 0)),
                       "X-RateLimit-Reset": str(reset)}
            if tightest is None or stats.remaining < tightest[0]:
                tightest = (stats.remaining, headers)
                request.state.rate_headers = headers
            if not allowed:
                retry = min(60, max(1, math.ceil(stats.reset_time - time.time())))
                raise ApiError(429, f"Rate limit of {what}{lim} requests a minute reached; retry in {retry} s",
                               details=[{"limit": lim, "window": "1 minute", "retryAfter": retry,
                                         "scope": "account" if what else "key"}],
                               headers={**headers, "Retry-After": str(retry)})

    # ------------------------------------------------------------ failed authentications

    def _failure_keys(self, request: Request, email: str = "") -> list[tuple[object, str, str]]:
        keys = [(self.client_failures, f"authfail:ip:{request_client(request)}", "from this address")]
        if email:
            digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
            keys.append((self.login_failures, f"authfail:login:{digest}", "for this account"))
        return keys

    async def refuse_if_blocked(self, request: Request, email: str = "") -> None:
        """429 when this client address (or the login's account) has used up its failed attempts."""
        for item, ident, what in self._failure_keys(request, email):
            try:
                if await self.limiter.test(item, NAMESPACE, ident):
                    continue
                stats = await self.limiter.get_window_stats(item, NAMESPACE, ident)
            except Exception as exc:
                log.warning("rate_limit_store_unavailable", error=repr(exc))
                return
            retry = max(1, math.ceil(stats.reset_time - time.time()))
            log.warning("authentication_blocked", scope=what, client=request_client(request))
            raise ApiError(429, f"Too many failed authentications {what}; retry in {retry} s",
                           details=[{"limit": item.amount, "window": f"{item.multiples} seconds",
                                     "retryAfter": retry, "scope": "failed_authentications"}],
                           headers={"Retry-After": str(retry)})

    async def count_failure(self, request: Request, email: str = "") -> None:
        for item, ident, _what in self._failure_keys(request, email):
            try:
                await self.limiter.hit(item, NAMESPACE, ident)
            except Exception as exc:
                log.warning("rate_limit_store_unavailable", error=repr(exc))


async def limit_anonymous(request: Request) -> None:
    """The /auth routes (no credentials yet): counted per client address, which bounds password
    guessing against login; an address (or account) over its failed attempts is refused here."""
    limiter = gateway_of(request).limiter
    await limiter.check(request, f"ip:{request_client(request)}")
