"""`callgauge events tail|export` against the real Tansu broker."""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest

from callgauge_bus.codec import envelope_for
from callgauge_bus.kafka import Producer, ensure_topics
from callgauge_bus import events_cli
from callgauge_app import main as cli
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2


async def _produce(bootstrap: str, topic: str, msgs) -> list[str]:
    await ensure_topics(bootstrap, [topic], partitions=1)
    producer = Producer(bootstrap)
    await producer.start()
    ids = []
    try:
        for i, msg in enumerate(msgs):
            env = envelope_for(msg, f"media-run-{msg.run_id}", i, msg.run_id, "", "test")
            await producer.send(topic, msg.run_id, env.SerializeToString())
            ids.append(env.event_id)
    finally:
        await producer.stop()
    return ids


def _measured(run: str, n: int, mos: float) -> media_pb2.CallMeasured:
    return media_pb2.CallMeasured(run_id=run, engine_id="e1", call=m_pb2.CallMeasurement(
        call_id=f"c{n}", index=n, destination="sip:echo@127.0.0.1", sip_code=200, codec="PCMU", mos=mos,
        outcome=m_pb2.CallOutcome.Value(m_pb2.CallOutcome.keys()[1])))


async def test_tail_prints_decoded_events_as_json(broker, topic_prefix, monkeypatch):
    monkeypatch.setenv("CALLGAUGE_KAFKA_TOPIC_PREFIX", topic_prefix)
    topic = f"{topic_prefix}callgauge.runs.v1"
    ids = await _produce(broker.bootstrap, topic, [runs_pb2.RunQueued(run_id="r1", planned_calls=2),
                                                   runs_pb2.RunQueued(run_id="r2", planned_calls=3)])
    out = io.StringIO()
    n = await events_cli.tail(broker.bootstrap, topic, "earliest", as_json=True, max_events=2, idle_timeout=10, out=out)
    assert n == 2
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event_id"] for e in lines] == ids
    assert lines[0]["type"].endswith("RunQueued") and lines[0]["run_id"] == "r1"
    assert lines[1]["payload"] == {"run_id": "r2", "planned_calls": 3}
    assert lines[0]["stream_id"] == "media-run-r1" and lines[0]["occurred_at"]
    out = io.StringIO()
    await events_cli.tail(broker.bootstrap, topic, "earliest", max_events=1, idle_timeout=10, out=out)
    assert "RunQueued" in out.getvalue() and "run=r1" in out.getvalue()


async def test_export_writes_one_csv_row_per_call_measured(broker, topic_prefix, tmp_path, capsys):
    topic = f"{topic_prefix}callgauge.media.v1"
    ids = await _produce(broker.bootstrap, topic, [
        media_pb2.RunAccepted(run_id="r1", engine_id="e1", planned_calls=2),
        _measured("r1", 0, 4.3), _measured("r1", 1, 3.9)])
    out = tmp_path / "m.csv"
    rows = await events_cli.export(broker.bootstrap, topic, out, idle_timeout=1.5)
    assert rows == 2
    got = list(csv.DictReader(out.open()))
    assert [r["event_id"] for r in got] == ids[1:]
    assert [r["call_id"] for r in got] == ["c0", "c1"]
    assert got[0]["run_id"] == "r1" and float(got[0]["mos"]) == 4.3 and got[0]["sip_code"] == "200"
    assert got[0]["occurred_at"] and got[0]["codec"] == "PCMU"
    assert "2 measurements" in capsys.readouterr().err


def test_cli_entry_point_tail_and_parquet_error(broker, topic_prefix, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CALLGAUGE_KAFKA_TOPIC_PREFIX", topic_prefix)
    import asyncio

    asyncio.run(_produce(broker.bootstrap, f"{topic_prefix}callgauge.billing.v1",
                         [runs_pb2.RunQueued(run_id="b1")]))
    assert cli.main(["events", "tail", "--topic", "billing", "--max", "1", "--timeout", "10",
                     "--bootstrap", broker.bootstrap]) == 0
    assert "run=b1" in capsys.readouterr().out
    # a machine without pyarrow (it is a dependency here, so hide it): a clear message, exit 2
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now raises ImportError
    assert cli.main(["events", "export", "--to", str(tmp_path / "m.parquet"), "--timeout", "0.5",
                     "--bootstrap", broker.bootstrap]) == 2
    assert "pip install pyarrow" in capsys.readouterr().err
    assert not (tmp_path / "m.parquet").exists()
