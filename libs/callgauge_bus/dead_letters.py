"""Dead letters: the records a consumer's handler could not take after its retries, kept durably in
the service's own event store (a read-model table `dead-letters/<group>`: same transactions as the
rest of the store, never relayed to Kafka) instead of being skipped. The consumer retries them with
backoff, in the order they were parked; while a key (a run id) has parked records, later records of
that key are parked behind them, so a run's events are never handled out of order. Counted in
`callgauge_bus_dead_letters_total` / `callgauge_bus_dead_letters_pending` and logged."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Counter, Gauge
from uuid6 import uuid7

from callgauge_eventstore import EventStore

DEAD_LETTERED = Counter("callgauge_bus_dead_letters_total", "records parked after their handler's retries",
                        ["group", "topic"])
DEAD_LETTERS_RESOLVED = Counter("callgauge_bus_dead_letters_resolved_total",
                                "parked records a later retry handled", ["group"])
DEAD_LETTERS_PENDING = Gauge("callgauge_bus_dead_letters_pending", "parked records not yet handled", ["group"])


@dataclass(frozen=True)
class Parked:
    id: str  # time-ordered (UUIDv7): retried in this order
    topic: str
    key: str
    value: bytes
    error: str
    attempts: int


class DeadLetters:
    def __init__(self, store: EventStore, group: str) -> None:
        self.store, self.group = store, group
        self.name = f"dead-letters/{group}"

    async def pending(self) -> list[Parked]:
        rows, _ = await self.store.read_projection(self.name)
        out = []
        for pid, raw in rows.items():
            d = json.loads(raw)
            out.append(Parked(pid, d["topic"], d["key"], base64.b64decode(d["value"]), d["error"], d["attempts"]))
        out.sort(key=lambda p: p.id)
        DEAD_LETTERS_PENDING.labels(self.group).set(len(out))
        return out

    async def park(self, topic: str, key: str, value: bytes, error: str, attempts: int) -> Parked:
        """Durably record a record; raises when the store cannot take it (the caller must then not
        commit past the record)."""
        parked = Parked(str(uuid7()), topic, key, value, error[:2000], attempts)
        await self._put([parked])
        DEAD_LETTERED.labels(self.group, topic).inc()
        DEAD_LETTERS_PENDING.labels(self.group).inc()
        return parked

    async def retried(self, parked: Parked, error: str) -> None:
        await self._put([Parked(parked.id, parked.topic, parked.key, parked.value, error[:2000], parked.attempts + 1)])

    async def resolve(self, ids: Sequence[str]) -> None:
        await self.store.commit_projection(self.name, 0, {}, list(ids))
        DEAD_LETTERS_RESOLVED.labels(self.group).inc(len(ids))
        DEAD_LETTERS_PENDING.labels(self.group).dec(len(ids))

    async def _put(self, items: Sequence[Parked]) -> None:
        await self.store.commit_projection(self.name, 0, {p.id: json.dumps({
            "topic": p.topic, "key": p.key, "value": base64.b64encode(p.value).decode(), "error": p.error,
            "attempts": p.attempts}).encode() for p in items})
