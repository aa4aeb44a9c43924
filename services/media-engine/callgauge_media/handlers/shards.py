"""Scale-out: one load run shared by the media-engine replicas of a consumer group.

Why through events: a RunRequested is keyed by its run id, so exactly one replica of the
``callgauge-media`` group receives it (the *owner*). To let the others place part of its calls,
the owner publishes the work as events, and the group's ordinary partition assignment decides who
does what — no replica registry, no leader election, nothing but Kafka:

1. The owner appends ``RunAccepted`` and ``RunMediaStarted`` to its outbox (as for any run), then
   one ``LoadShardAssigned`` per shard to a second outbox that its relay publishes to the internal
   topic ``callgauge.media-work.v1``. Shard ``k`` is keyed so that it lands on partition
   ``k % partitions`` (:func:`shard_keys`), so with as many shards as partitions every replica
   that holds a partition of that topic gets a shard. Each shard places the calls whose index
   ``% shards == k`` of every load action, on the same plan (same seed) and the same clock
   (``start_at``), with ``max_concurrency`` split between shards: together they make the
   requested shape.
2. Every replica (the owner too) consumes ``callgauge.media-work.v1`` in the group
   ``callgauge-media-work``. For a shard it has not begun (its outbox stream
   ``media-shard-<run>-<k>`` does not exist), it places the calls and emits ``CallMeasured`` and
   ``RunSecondStats`` with its own engine id, then ``LoadShardFinished`` — all on
   ``callgauge.media.v1``, keyed by the run id, so they share the run's partition.
3. The owner reads ``callgauge.media.v1`` from the offsets it saw before assigning (a reader
   without group), collects the run's ``CallMeasured`` (deduped by call id) until every shard
   reported ``LoadShardFinished`` (or a deadline: the plan's length + the longest call + a
   margin), and emits the one ``RunMediaFinished`` with the summary over all shards' calls (its
   ``engines`` map says who placed how many). Because it has seen every shard's calls on the
   run's partition first, the runs service records them all before the run ends.

Durability: assignments and results go through outboxes (local event stores + relays), so a
broker that restarts empty gets them again; a replica restarted with the same engine id does not
run a shard twice (its stream exists). Limits: a replica that dies during its shard does not
resume it (the owner ends the run at the deadline with an error naming the missing shards and the
calls that were measured), and an owner that dies does not resume the coordination.

Only runs whose actions are all ``load`` actions with the ``pjsua`` driver are split; anything else
runs on the owner alone, as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiokafka.partitioner import murmur2
from google.protobuf.message import Message

from callgauge_platform.logs import get_logger
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.load_shape import plan, seed_for
from callgauge_media.handlers.runner import planned_calls
from callgauge_media.domain.summary import CallFigures

log = get_logger("media-engine")
Emit = Callable[[Message], Awaitable[None]]
EmitKeyed = Callable[[Message, str], Awaitable[None]]
START_DELAY_S = 1.0  # shards start their common clock this long after the assignment
DEADLINE_MARGIN_S = 60.0


class MediaReader(Protocol):
    async def poll(self, timeout_s: float) -> Sequence[Message]:
        """Decoded payloads published on callgauge.media.v1 since the reader was opened."""


def shardable(spec: spec_pb2.TestSpec) -> bool:
    actions = [a for s in spec.steps for a in s.actions]
    return bool(actions) and all(
        a.WhichOneof("kind") == "load" and (a.load.driver or "pjsua").lower() == "pjsua" for a in actions)


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as in the Java client) gives a key."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def shard_keys(run_id: str, shards: int, partitions: int) -> list[str]:
    """A Kafka key per shard such that shard ``k`` lands on partition ``k % partitions``."""
    keys = []
    for k in range(shards):
        want = k % partitions
        salt = 0
        while partition_of(f"{run_id}/{k}/{salt}", partitions) != want:
            salt += 1  # about `partitions` tries on average
        keys.append(f"{run_id}/{k}/{salt}")
    return keys


def run_deadline_s(req: runs_pb2.RunRequested) -> float:
    """An upper bound of how long a sharded load run lasts: per step, the longest window plus the
    longest planned call (the plan is seeded by the run id, so its talk times are known) and its
    setup timeout; then a margin."""
    total = 0.0
    for si, step in enumerate(req.spec.steps):
        longest = 0.0
        for ai, a in enumerate(step.actions):
            shape, calls = plan(a.load, seed_for(req.run_id, si, ai))
            talk = max((c.duration_ms for c in calls), default=0)
            longest = max(longest, shape.window_s + (talk + (a.load.setup_timeout_ms or 32_000)) / 1000.0)
        total += longest
    return total + DEADLINE_MARGIN_S


async def coordinate_run(req: runs_pb2.RunRequested, *, engine_id: str, shards: int, partitions: int,
                         emit: Emit, emit_work: EmitKeyed, reader: MediaReader,
                         deadline_s: float | None = None) -> m_pb2.RunSummary:
    """The owner's side of a sharded run (see the module doc). ``reader`` must have been opened
    before this is called."""
    await emit(media_pb2.RunAccepted(run_id=req.run_id, engine_id=engine_id, planned_calls=planned_calls(req.spec)))
    await emit(media_pb2.RunMediaStarted(run_id=req.run_id, engine_id=engine_id))
    start_at = time.time() + START_DELAY_S
    for k, key in enumerate(shard_keys(req.run_id, shards, partitions)):
        assign = media_pb2.LoadShardAssigned(run_id=req.run_id, owner_engine_id=engine_id, shard=k, shards=shards,
                                             request=req)
        assign.start_at.FromNanoseconds(int(start_at * 1e9))
        await emit_work(assign, key)
    log.info("run_sharded", run_id=req.run_id, shards=shards, partitions=partitions)

    seen: set[str] = set()  # call ids (a redelivered CallMeasured counts once); the figures, not the calls, are kept
    figures = CallFigures()
    finished: dict[int, media_pb2.LoadShardFinished] = {}
    loop = asyncio.get_running_loop()
    limit = loop.time() + (deadline_s if deadline_s is not None else run_deadline_s(req))
    error = ""
    try:
        while len(finished) < shards:
            left = limit - loop.time()
            if left <= 0:
                missing = sorted(set(range(shards)) - set(finished))
                error = f"shards {missing} of {shards} did not finish in time"
                break
            for msg in await reader.poll(min(1.0, left)):
                if getattr(msg, "run_id", None) != req.run_id:
                    continue
                if isinstance(msg, media_pb2.CallMeasured) and msg.call.call_id not in seen:
                    seen.add(msg.call.call_id)
                    figures.add(msg.call, msg.engine_id)
                elif isinstance(msg, media_pb2.LoadShardFinished) and msg.shards == shards:
                    finished.setdefault(msg.shard, msg)
    except asyncio.CancelledError:
        error = "the media engine was stopped"
        raise
    finally:
        errors = [f"shard {f.shard} ({f.engine_id}): {f.error}" for f in finished.values() if f.error]
        if errors:
            error = "; ".join(filter(None, [error, *errors]))
        planned = sum(f.summary.calls_planned for f in finished.values()) if len(finished) == shards else 0
        peak = sum(f.summary.peak_concurrency for f in finished.values())
        summary = figures.summary(calls_planned=planned or planned_calls(req.spec), peak_concurrency=peak,
                                  driver="pjsua")
        for f in finished.values():
            for why, n in f.summary.not_attempted.items():
                summary.not_attempted[why] += n
        await asyncio.shield(emit(media_pb2.RunMediaFinished(run_id=req.run_id, engine_id=engine_id,
                                                             summary=summary, error=error)))
    return summary
