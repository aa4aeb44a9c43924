"""Rebuild the runs service's read model from the event store (`callgauge replay --service runs`)."""

from __future__ import annotations

from dataclasses import dataclass

from callgauge_bus.codec import decode_payload
from callgauge_eventstore import EventStore

from callgauge_runs.handlers.app import VIEWS
from callgauge_runs.handlers.views import ReadModel


@dataclass(frozen=True)
class ReplayReport:
    position: int  # the log position the rebuilt model reflects
    rows: int
    stored_position: int  # where the stored model was before
    differing: tuple[str, ...]  # keys whose stored row differed from the rebuilt one (or was missing/extra)

    @property
    def identical(self) -> bool:
        return not self.differing and self.stored_position == self.position


async def rebuild(store: EventStore, batch: int = 1000) -> ReadModel:
    view, after = ReadModel(), 0
    while events := await store.read_all(after, batch):
        for ev in events:
            payload = decode_payload(ev.type, ev.data)
            if payload is not None:
                view.apply(payload, ev.recorded_at)
        after = events[-1].position
    view.position = after
    return view


async def replay(store: EventStore, write: bool = True) -> ReplayReport:
    """Fold the whole log into a fresh read model, compare it with the stored one and (with
    `write`) replace the stored rows and checkpoint with it in one transaction. Run it with the
    runs service stopped: a running service would keep committing its own rows meanwhile."""
    view = await rebuild(store)
    fresh = view.rows()
    stored, stored_position = await store.read_projection(VIEWS)
    differing = tuple(sorted(k for k in set(fresh) | set(stored) if fresh.get(k) != stored.get(k)))
    if write:
        await store.commit_projection(VIEWS, view.position, fresh, replace=True)
    return ReplayReport(view.position, len(fresh), stored_position, differing)
