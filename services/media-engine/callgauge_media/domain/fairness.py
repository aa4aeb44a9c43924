"""Fair sharing of one engine's call slots between accounts (issue 15 finding 3).

The worker pool holds `capacity` calls at once. Without a rule, one tenant's big load run takes every
slot as soon as one frees, and another tenant's probe waits behind it for as long as the load lasts.
`FairShare` sits in front of the pool:

- an account holds at most `account_limit` calls at once: the operator's per-account quota
  (CALLGAUGE_QUOTA_CONCURRENT_CALLS) and never more than `capacity - reserve`, so `reserve` slots
  (CALLGAUGE_MEDIA_FAIR_RESERVE_CALLS; default an eighth of the capacity, at least 1) are always
  left to the other accounts;
- when calls wait, a freed slot goes to the waiting account with the fewest calls up (ties: the
  longest waiting), so a newcomer goes before the account that already holds the most.

The bound this gives: an account with no call up, arriving while fewer than `reserve` calls of other
accounts (beyond their largest one) are up, gets a slot at once; otherwise at the next end of any
call, whichever account's. A load action never makes more call tasks than its account may hold
(`capacity` as the runner sees it is `account_limit`), so the engine's memory stays bounded by
`capacity` calls whatever the plan's size.

Pure asyncio, no pjsua2; one instance per engine process (the quota holds per engine replica).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from callgauge_platform.logs import get_logger

log = get_logger("media-engine")
WAITING = Gauge("callgauge_media_fair_waiting_calls", "calls waiting for a slot of the engine (all accounts)")
WAITED = Counter("callgauge_media_fair_waits_total", "calls that had to wait for a slot (an account at its "
                 "limit, or the engine full)")


def default_reserve(capacity: int) -> int:
    return max(1, -(-capacity // 8)) if capacity > 1 else 0


@dataclass
class _Waiter:
    account: str
    seq: int
    future: asyncio.Future


@dataclass
class FairShare:
    capacity: int
    quota: int = 0  # calls one account may have up at once (0: no quota beyond the reserve)
    reserve: int = -1  # slots one account can never take (-1: default_reserve(capacity))
    in_use: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _waiters: list[_Waiter] = field(default_factory=list)
    _seq: itertools.count = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("capacity must be >= 1")
        if self.reserve < 0:
            self.reserve = default_reserve(self.capacity)
        self.reserve = min(self.reserve, self.capacity - 1)

    @property
    def account_limit(self) -> int:
        limit = self.capacity - self.reserve
        return max(1, min(limit, self.quota) if self.quota > 0 else limit)

    @property
    def total(self) -> int:
        return sum(self.in_use.values())

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _may_take(self, account: str) -> bool:
        return self.total < self.capacity and self.in_use[account] < self.account_limit

    async def acquire(self, account: str) -> None:
        if not self._waiters and self._may_take(account):
            self.in_use[account] += 1
            return
        w = _Waiter(account, next(self._seq), asyncio.get_running_loop().create_future())
        self._waiters.append(w)
        WAITED.inc()
        WAITING.set(len(self._waiters))
        self._grant()
        try:
            await w.future
        except asyncio.CancelledError:
            if w.future.done() and not w.future.cancelled():
                self.release(account)  # granted as we were cancelled: hand it on
            else:
                self._drop(w)
            raise

    def release(self, account: str) -> None:
        self.in_use[account] -= 1
        if self.in_use[account] <= 0:
            del self.in_use[account]
        self._grant()

    def _drop(self, w: _Waiter) -> None:
        if w in self._waiters:
            self._waiters.remove(w)
            WAITING.set(len(self._waiters))

    def _grant(self) -> None:
        """Hand free slots to waiters: the account with the fewest calls up first, then the oldest."""
        while self._waiters and self.total < self.capacity:
            eligible = [w for w in self._waiters if not w.future.done() and self._may_take(w.account)]
            if not eligible:
                self._waiters = [w for w in self._waiters if not w.future.done()]
                break
            w = min(eligible, key=lambda x: (self.in_use.get(x.account, 0), x.seq))
            self._waiters.remove(w)
            self.in_use[w.account] += 1
            w.future.set_result(None)
        WAITING.set(len(self._waiters))

    @asynccontextmanager
    async def slot(self, account: str):
        await self.acquire(account)
        try:
            yield
        finally:
            self.release(account)

    def placer_for(self, placer, account: str) -> FairPlacer:
        return FairPlacer(placer, self, account)


class FairPlacer:
    """The pool as one account's run sees it: every call waits for a fair slot first; `capacity` is
    what the account may hold, so a load action makes no more call tasks than that."""

    def __init__(self, placer, share: FairShare, account: str) -> None:
        self._placer, self._share, self._account = placer, share, account or "?"

    def __getattr__(self, name: str):  # add_listener, remove_listener, hangup, ...
        attr = getattr(self._placer, name)  # AttributeError when the inner placer has none
        if name == "run_call":  # only when the inner placer has it (the runner checks with hasattr)
            async def run_call(job):
                async with self._share.slot(self._account):
                    return await attr(job)
            return run_call
        return attr

    @property
    def capacity(self) -> int:
        inner = getattr(self._placer, "capacity", 0)
        limit = self._share.account_limit
        return min(inner, limit) if isinstance(inner, int) and inner > 0 else limit

    @property
    def account_call_limit(self) -> int:
        """What a SIPp-driven load of the account may hold up at once (its -l): the account's quota
        (0: none). Not `account_limit`: SIPp's calls take no slot of the engine's pool, and the
        pool's capacity (128 by default, minus the reserve) as -l held a 1,000 calls/s SIPp run
        to ~112 calls/s (half its planned calls never attempted, issue #14 item 5)."""
        return self._share.quota

    async def place(self, call_id, action):
        async with self._share.slot(self._account):
            return await self._placer.place(call_id, action)
