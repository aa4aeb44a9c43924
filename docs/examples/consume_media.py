"""Example consumer of callgauge.media.v1: prints one line per event (or one JSON object per line).

    .venv/bin/python docs/examples/consume_media.py --bootstrap 127.0.0.1:9092 --from earliest \
        --max-records 100 --timeout 10

Bounded: stops after --max-records records or --timeout seconds, whichever comes first. Dedupes on
the envelope's event_id, since delivery is at-least-once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Print decoded events from callgauge.media.v1.")
    p.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    p.add_argument("--topic-prefix", default="", help="the stack's CALLGAUGE_KAFKA_TOPIC_PREFIX")
    p.add_argument("--from", dest="offset", choices=("earliest", "latest"), default="earliest")
    p.add_argument("--group", default="", help="consumer group (default: a fresh one, no commits)")
    p.add_argument("--max-records", type=int, default=100, help="stop after this many records")
    p.add_argument("--timeout", type=float, default=10.0, help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    return p.parse_args(argv)


def render(delivered, as_json: bool) -> str:
    from google.protobuf.json_format import MessageToDict

    env = delivered.envelope
    if as_json:
        return json.dumps({
            "event_id": env.event_id, "type": env.type, "schema_version": env.schema_version,
            "correlation_id": env.correlation_id, "occurred_at": env.occurred_at.ToJsonString(),
            "payload": MessageToDict(delivered.payload, preserving_proto_field_name=True),
        })
    msg = delivered.payload
    short = env.type.rsplit(".", 1)[-1]
    if short == "CallMeasured":
        c = msg.call
        return (f"{env.occurred_at.ToJsonString()} run={msg.run_id} CallMeasured {c.call_id} "
                f"outcome={c.outcome} sip={c.sip_code} setup_ms={c.setup_time_ms:.1f} "
                f"loss%={c.loss_pct:.2f} jitter_ms={c.jitter_ms:.2f} mos={c.mos:.2f}")
    if short == "RegistrationMeasured":
        r = msg.registration
        return (f"{env.occurred_at.ToJsonString()} run={msg.run_id} RegistrationMeasured {r.registration_id} "
                f"user={r.user} outcome={r.outcome} sip={r.sip_code} register_ms={r.register_time_ms:.1f} "
                f"expires={r.expires} unregistered={r.unregistered} kept={r.kept}")
    return f"{env.occurred_at.ToJsonString()} run={getattr(msg, 'run_id', '')} {short}"


async def consume(args: argparse.Namespace) -> int:
    from aiokafka import AIOKafkaConsumer

    from callgauge_bus.codec import BadRecord, decode_record

    topic = f"{args.topic_prefix}callgauge.media.v1"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group or f"consume-media-{uuid.uuid4().hex[:8]}",
        auto_offset_reset=args.offset,
        enable_auto_commit=bool(args.group),
    )
    await consumer.start()
    seen: set[str] = set()
    count = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout
    try:
        while count < args.max_records and (left := deadline - loop.time()) > 0:
            batch = await consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000),
                                           max_records=args.max_records - count)
            for records in batch.values():
                for rec in records:
                    count += 1
                    try:
                        delivered = decode_record(rec.value)
                    except BadRecord as exc:
                        print(f"skipped undecodable record: {exc}", file=sys.stderr)
                        continue
                    if delivered.payload is None or delivered.event_id in seen:
                        continue  # an event type this build does not know, or a redelivery
                    seen.add(delivered.event_id)
                    print(render(delivered, args.json), flush=True)
    finally:
        await consumer.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(consume(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
