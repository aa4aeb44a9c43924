"""The engine's fair sharing of call slots between accounts (engine/fairness.py): one account never
takes the reserved slots, a freed slot goes to the waiting account with the fewest calls up, the
per-account quota holds, a cancelled waiter takes nothing."""

from __future__ import annotations

import asyncio

import pytest

from callgauge_media.domain.fairness import FairShare, default_reserve


async def _spin() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_the_default_reserve_is_an_eighth_of_the_capacity_and_at_least_one() -> None:
    assert (default_reserve(1), default_reserve(2), default_reserve(8), default_reserve(128), default_reserve(130)) == (
        0, 1, 1, 16, 17)
    assert FairShare(8).account_limit == 7 and FairShare(8, quota=5).account_limit == 5
    assert FairShare(1).account_limit == 1  # a one-slot engine reserves nothing


async def test_a_big_tenant_leaves_the_reserve_to_a_newcomer() -> None:
    share = FairShare(capacity=8)
    for _ in range(7):
        await share.acquire("A")
    blocked = asyncio.create_task(share.acquire("A"))  # A at its limit: waits
    await _spin()
    assert not blocked.done()
    await asyncio.wait_for(share.acquire("B"), 1)  # B gets the reserved slot at once
    assert share.in_use == {"A": 7, "B": 1} and share.total == 8
    blocked.cancel()


async def test_a_freed_slot_goes_to_the_account_with_the_fewest_calls_up() -> None:
    share = FairShare(capacity=4, reserve=0)
    for _ in range(4):
        await share.acquire("A")
    a_waits = asyncio.create_task(share.acquire("A"))  # waiting first
    await _spin()
    b_waits = asyncio.create_task(share.acquire("B"))  # waiting second, but holds nothing
    await _spin()
    share.release("A")
    await _spin()
    assert b_waits.done() and not a_waits.done()
    share.release("A")
    await _spin()
    assert a_waits.done() and share.in_use == {"A": 3, "B": 1}


async def test_the_quota_holds_an_account_even_when_slots_are_free() -> None:
    share = FairShare(capacity=16, quota=3)
    for _ in range(3):
        await share.acquire("A")
    fourth = asyncio.create_task(share.acquire("A"))
    await _spin()
    assert not fourth.done() and share.total == 3
    async with share.slot("B"):
        assert share.in_use["B"] == 1
    share.release("A")
    await asyncio.wait_for(fourth, 1)
    assert share.in_use == {"A": 3}


async def test_a_cancelled_waiter_takes_no_slot() -> None:
    share = FairShare(capacity=2, reserve=0)
    await share.acquire("A")
    await share.acquire("A")
    waiter = asyncio.create_task(share.acquire("B"))
    await _spin()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    share.release("A")
    assert share.in_use == {"A": 1} and share.waiting == 0


async def test_the_fair_placer_shows_the_account_limit_and_wraps_run_call_only_when_there_is_one() -> None:
    class Pool:
        capacity = 8

        def __init__(self) -> None:
            self.seen: list[int] = []

        async def place(self, call_id, action):
            self.seen.append(share.total)
            return call_id

    class WithRunCall(Pool):
        async def run_call(self, job):
            self.seen.append(share.total)
            return job

    share = FairShare(capacity=8, quota=3)
    plain = share.placer_for(Pool(), "A")
    assert plain.capacity == 3 and plain.account_call_limit == 3 and not hasattr(plain, "run_call")
    # a SIPp load's -l is the account's quota, not the pool's slots (SIPp's calls take none of them)
    assert FairShare(capacity=128, quota=1000).placer_for(Pool(), "A").account_call_limit == 1000
    assert FairShare(capacity=128).placer_for(Pool(), "A").account_call_limit == 0
    assert await plain.place("c1", None) == "c1" and share.total == 0
    rich = share.placer_for(WithRunCall(), "A")
    assert await rich.run_call("job") == "job" and rich._placer.seen == [1] and share.total == 0
