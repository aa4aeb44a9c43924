"""The event store part of a service's /readyz (callgauge_platform.health.store_ready)."""

from __future__ import annotations

from callgauge_platform.health import store_ready


class _Store:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    async def last_position(self) -> int:
        if self.error is not None:
            raise self.error
        return 42


async def test_a_store_that_answers_is_ready():
    assert await store_ready(_Store()) == (True, "ready")


async def test_a_store_that_fails_is_reported_not_raised():
    ok, why = await store_ready(_Store(OSError("connection refused")))
    assert not ok
    assert why == "event store: OSError('connection refused')"
