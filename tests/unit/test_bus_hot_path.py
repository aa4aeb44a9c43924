"""The per-event shortcuts of the bus keep what they replace: the kept-hash partitioner puts every
key on the partition aiokafka's default partitioner (Kafka's murmur2) does, and the traceparent an
event carries is the one the W3C propagator injects."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider

from callgauge_bus.kafka import KeyHashPartitioner
from callgauge_platform.telemetry import current_traceparent


def test_kept_hashes_give_the_default_partitioners_partition_for_every_key() -> None:
    rng = random.Random(7)
    kept, default = KeyHashPartitioner(size=50), DefaultPartitioner()
    keys = [rng.randbytes(rng.randint(1, 40)) for _ in range(300)] + [b"run-1", b""]
    for _ in range(3):  # again: from the kept hashes (and past the bound, which clears them)
        for key in keys:
            for partitions in ([0], [0, 1, 2], list(range(16)), [3, 5, 9]):
                assert kept(key, partitions, partitions) == default(key, partitions, partitions), (key, partitions)
    assert len(kept._hashes) <= 50
    assert kept(None, [0, 1, 2], [1]) == 1  # no key: one of the available partitions, as the default does


def test_an_events_traceparent_is_what_the_w3c_propagator_injects() -> None:
    assert current_traceparent() == ""  # outside a span
    tracer = TracerProvider().get_tracer("test")
    for _ in range(5):
        with tracer.start_as_current_span("s"):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            assert current_traceparent() == carrier["traceparent"]
    with trace.use_span(trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)):
        assert current_traceparent() == ""
