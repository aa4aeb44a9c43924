"""The one position-waiter of every read model (read-your-writes).

A read model folded from the store's global log keeps the position of the last event it applied.
The projector calls `advanced_to(event.position)` after applying an event; a command handler that
just appended at position P calls `wait_for(P)` before it answers, so what it returns (and the next
query) already reflects its own write. Positions only move forward: `advanced_to` with a lower
position leaves it where it is. `wait_for` raises TimeoutError when the model does not get there
in `timeout` seconds.

Read models subclass it (as a dataclass, its fields come first and both have defaults):

    @dataclass
    class ReadModel(PositionWaiter):
        accounts: dict[str, Account] = field(default_factory=dict)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class PositionWaiter:
    position: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition, repr=False, compare=False)

    async def advanced_to(self, position: int) -> None:
        """The model now reflects every event up to `position`; wake whoever waits for it."""
        async with self._changed:
            self.position = max(self.position, position)
            self._changed.notify_all()

    async def wait_for(self, position: int, timeout: float = 10.0) -> None:
        """Return once the model reflects every event up to `position`."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.position >= position), timeout)
