"""Reading the Kafka event streams as a data team does (the `callgauge events` command is
callgauge_cli.operator's).

  callgauge events tail --topic runs|billing|media|accounts [--from earliest|latest] [--json] [--max N] [--timeout S]
  callgauge events export --topic media --to measurements.csv|measurements.parquet [--from earliest] [--timeout S]

Both read without a consumer group (nothing is committed, nothing disturbs the services' groups),
decode the EventEnvelope and its payload, and stop after --max events or when no record arrived for
--timeout seconds (tail without either follows for ever). Topic names follow
CALLGAUGE_KAFKA_TOPIC_PREFIX like the services'. Parquet needs pyarrow (`pip install pyarrow`).
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

from google.protobuf.json_format import MessageToDict

from callgauge_bus.codec import BadRecord, Delivered, decode_record
from callgauge_platform.timestamps import iso_field

AREAS = ("runs", "billing", "media", "accounts")

MEASUREMENT_FIELDS = [
    "call_id", "step", "action", "index", "destination", "outcome", "sip_code", "sip_reason",
    "setup_time_ms", "post_dial_delay_ms", "duration_ms", "codec", "tx_packets", "rx_packets",
    "rx_lost_packets", "loss_pct", "jitter_ms", "rtt_ms", "r_factor", "mos", "one_way_audio",
    "started_at", "ended_at", "detail",
]
EXPORT_COLUMNS = ["event_id", "occurred_at", "run_id", "engine_id", *MEASUREMENT_FIELDS]


class EventsCliError(RuntimeError):
    """A user-facing error (printed, exit 2)."""


async def read_events(bootstrap: str, topic: str, start: str = "earliest", max_events: int | None = None,
                      idle_timeout: float | None = None) -> AsyncIterator[Delivered]:
    """Decoded events of `topic`; undecodable records are skipped. Ends after max_events or
    idle_timeout seconds without a record (None: never)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest" if start == "earliest" else "latest")
    await consumer.start()
    try:
        count = 0
        loop = asyncio.get_running_loop()
        last = loop.time()
        while max_events is None or count < max_events:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            got = False
            for _tp, records in sorted(batches.items(), key=lambda kv: kv[0].partition):
                for rec in records:
                    got = True
                    try:
                        delivered = decode_record(rec.value)
                    except BadRecord:
                        continue
                    yield delivered
                    count += 1
                    if max_events is not None and count >= max_events:
                        return
            if got:
                last = loop.time()
            elif idle_timeout is not None and loop.time() - last >= idle_timeout:
                return
    finally:
        await consumer.stop()


def event_dict(d: Delivered) -> dict:
    env = d.envelope
    return {
        "event_id": env.event_id,
        "type": env.type,
        "schema_version": env.schema_version,
        "stream_id": env.stream_id,
        "stream_version": env.stream_version,
        "occurred_at": iso_field(env, "occurred_at"),
        "correlation_id": env.correlation_id,
        "causation_id": env.causation_id,
        "source": env.source,
        "run_id": getattr(d.payload, "run_id", "") or env.correlation_id,
        "payload": MessageToDict(d.payload, preserving_proto_field_name=True) if d.payload is not None else None,
    }


def format_line(d: Delivered, as_json: bool) -> str:
    e = event_dict(d)
    if as_json:
        return json.dumps(e, sort_keys=True)
    payload = json.dumps(e["payload"], sort_keys=True, separators=(",", ":"))
    return f"{e['occurred_at']} {e['type'].rsplit('.', 1)[-1]} stream={e['stream_id']} run={e['run_id']} {payload}"


async def tail(bootstrap: str, topic: str, start: str = "earliest", as_json: bool = False,
               max_events: int | None = None, idle_timeout: float | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    n = 0
    async for d in read_events(bootstrap, topic, start, max_events, idle_timeout):
        print(format_line(d, as_json), file=out, flush=True)
        n += 1
    return n


def measurement_row(d: Delivered) -> dict | None:
    """One flat row for a CallMeasured, None for any other event."""
    if d.payload is None or not d.envelope.type.endswith(".CallMeasured"):
        return None
    call = MessageToDict(d.payload.call, preserving_proto_field_name=True,
                         always_print_fields_with_no_presence=True)
    row = {"event_id": d.envelope.event_id,
           "occurred_at": d.envelope.occurred_at.ToJsonString() if d.envelope.HasField("occurred_at") else "",
           "run_id": d.payload.run_id, "engine_id": d.payload.engine_id}
    for f in MEASUREMENT_FIELDS:
        row[f] = call.get(f)  # None (an empty cell, a parquet null): not measured
    return row


async def export(bootstrap: str, topic: str, to: Path, start: str = "earliest", idle_timeout: float = 5.0,
                 max_events: int | None = None, progress: TextIO | None = None) -> int:
    """Write one row per CallMeasured to a .csv or .parquet file; returns the number of rows."""
    progress = progress or sys.stderr
    to = Path(to)
    suffix = to.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise EventsCliError(f"--to must end in .csv or .parquet, not {to.name!r}")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise EventsCliError("parquet export needs pyarrow: pip install pyarrow (or export to .csv)") from exc
    rows: list[dict] = []
    seen: set[str] = set()
    read = 0
    async for d in read_events(bootstrap, topic, start, max_events, idle_timeout):
        read += 1
        row = measurement_row(d)
        if row is not None and row["event_id"] not in seen:  # the relay may have re-published
            seen.add(row["event_id"])
            rows.append(row)
        if read % 100 == 0:
            print(f"\rread {read} events, {len(rows)} measurements", end="", file=progress, flush=True)
    print(f"\rread {read} events, {len(rows)} measurements -> {to}", file=progress, flush=True)
    if suffix == ".csv":
        with to.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=EXPORT_COLUMNS)
            w.writeheader()
            w.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows, schema=None) if rows else
                       pa.table({c: pa.array([], pa.string()) for c in EXPORT_COLUMNS}), to)
    return len(rows)
