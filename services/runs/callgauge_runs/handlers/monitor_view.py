"""What the probe scheduler and the webhook dispatcher share: their streams, the monitor's
in-memory view of probes, endpoints and deliveries (kept by MonitorApp's follower), and the one
command loop they append through (callgauge_eventstore.aggregate.decide_and_append)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callgauge_bus.codec import decode_payload, new_event
from callgauge_eventstore import EventStore, PositionWaiter
from callgauge_eventstore.aggregate import MAX_ATTEMPTS, Evolve, decide_and_append, derived_id
from callgauge_platform.timestamps import datetime_of
from callgauge_proto.callgauge.events.v1 import monitor_pb2
from google.protobuf.message import Message

from callgauge_runs.domain import probe as probe_model
from callgauge_runs.domain import webhooks

SOURCE = "runs"
ID_NS = uuid.UUID("0b7e5a53-3c9e-4a57-8a3e-2f3c54d1a901")  # the namespace of the monitor's derived ids


def probe_stream(pid: str) -> str:
    return f"probe-{pid}"


def endpoint_stream(eid: str) -> str:
    return f"webhook-{eid}"


def delivery_stream(did: str) -> str:
    return f"delivery-{did}"


def delivery_id_for(source_event_id: str, endpoint_id: str) -> str:
    """The delivery of one event to one endpoint: the same id whoever schedules it, so a replica
    or a restart repeating the reaction finds it scheduled."""
    return str(derived_id(source_event_id, endpoint_id, ID_NS))


@dataclass
class MonitorView(PositionWaiter):
    probes: dict[str, probe_model.Probe] = field(default_factory=dict)
    endpoints: dict[str, webhooks.Endpoint] = field(default_factory=dict)
    deliveries: dict[str, webhooks.Delivery] = field(default_factory=dict)
    run_probe: dict[str, str] = field(default_factory=dict)  # run id -> probe id
    last_fired: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # probe -> (run, fired_at)

    def apply(self, e: Message, at: datetime | None) -> None:
        name = type(e).__name__
        if name.startswith("Probe") and (pid := getattr(e, "probe_id", "")):
            self.probes[pid] = probe_model.evolve_probe(self.probes.get(pid), e, at)  # type: ignore[assignment]
            if isinstance(e, monitor_pb2.ProbeSlotFired):
                self.run_probe[e.run_id] = pid
                self.last_fired[pid] = (e.run_id, datetime_of(e.fired_at))
        elif name.startswith("WebhookEndpoint"):
            self.endpoints[e.endpoint_id] = webhooks.evolve_endpoint(  # type: ignore[assignment]
                self.endpoints.get(e.endpoint_id), e, at)
        elif name.startswith(("WebhookDelivery", "WebhookAttempt")):
            self.deliveries[e.delivery_id] = webhooks.evolve_delivery(  # type: ignore[assignment]
                self.deliveries.get(e.delivery_id), e, at)


@dataclass(frozen=True)
class Decided:
    state: Any              # the state the decision was made on
    events: list[Message]   # what was appended (empty: nothing was decided)
    position: int | None    # the position of the last one


async def decide(store: EventStore, view: MonitorView | None, stream: str, evolve: Evolve,
                 decider: Callable[[Any], Sequence[Message]], correlation: str, causation: str = "",
                 id_source: str = "", attempts: int = MAX_ATTEMPTS) -> Decided:
    """Load `stream`, decide on its state, append at its version; on a concurrent write decide
    again on the new state. `id_source`: the i-th event gets the id derived from (id_source, i)
    in the monitor's namespace, so a repeat of the same source appends nothing twice. With a
    `view`, wait until the view has what was appended."""
    decided: list[Message] = []

    def new_events(state: Any) -> list:
        decided[:] = decider(state)
        return [new_event(e, correlation, causation, derived_id(id_source, i, ID_NS) if id_source else None, SOURCE)
                for i, e in enumerate(decided)]

    state, _, _, position = await decide_and_append(store, stream, evolve, decode_payload, new_events,
                                                    attempts=attempts)
    if position is None:
        return Decided(state, [], None)
    if view is not None:
        await view.wait_for(position)
    return Decided(state, list(decided), position)
