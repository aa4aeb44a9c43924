"""The one position-waiter (issue #19 item 3): callgauge_eventstore.PositionWaiter, used by the
accounts read model, the runs read model and the monitor view (none has its own copy)."""

from __future__ import annotations

import asyncio

import pytest

from callgauge_accounts.handlers.views import ReadModel as AccountsReadModel
from callgauge_eventstore import PositionWaiter
from callgauge_runs.handlers.monitor_view import MonitorView
from callgauge_runs.handlers.views import ReadModel as RunsReadModel


async def test_wait_returns_once_the_model_reaches_the_position():
    w = PositionWaiter()
    waiter = asyncio.create_task(w.wait_for(3))
    await w.advanced_to(1)
    await w.advanced_to(2)
    await asyncio.sleep(0)
    assert not waiter.done()  # 2 < 3: still waiting
    await w.advanced_to(3)
    await asyncio.wait_for(waiter, 10)
    assert w.position == 3


async def test_many_waiters_wake_on_one_advance_past_them():
    w = PositionWaiter()
    waiters = [asyncio.create_task(w.wait_for(p)) for p in (1, 5, 9)]
    await w.advanced_to(9)
    await asyncio.wait_for(asyncio.gather(*waiters), 10)


async def test_a_reached_position_returns_at_once_and_never_moves_back():
    w = PositionWaiter()
    await w.advanced_to(7)
    await w.advanced_to(4)  # an older position (a redelivery) does not move it back
    assert w.position == 7
    await w.wait_for(7, timeout=10)
    await w.wait_for(2, timeout=10)


async def test_a_position_not_reached_times_out():
    w = PositionWaiter()
    await w.advanced_to(1)
    with pytest.raises(TimeoutError):
        await w.wait_for(2, timeout=0.01)
    await w.advanced_to(2)  # still usable after a timeout
    await w.wait_for(2, timeout=10)


@pytest.mark.parametrize("view", [AccountsReadModel, RunsReadModel, MonitorView])
async def test_every_read_model_uses_the_one_waiter(view):
    assert issubclass(view, PositionWaiter)
    for name in ("advanced_to", "wait_for", "_changed"):
        assert name not in vars(view), f"{view.__module__}.{view.__name__} has its own {name}"
    v = view()
    assert v.position == 0
    waiter = asyncio.create_task(v.wait_for(4))
    await v.advanced_to(4)
    await asyncio.wait_for(waiter, 10)
