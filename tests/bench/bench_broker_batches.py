"""The embedded broker's (Tansu, memory storage) CPU per 1,000 records, by how the records are batched
and by how many it already holds: why the producers batch up to 512 KiB per partition.

A fresh Tansu on a free loopback port, one topic; in steps, --per-step records (300 bytes, keyed over
997 keys) are produced, then the last --per-step records are fetched by a new consumer, as a consumer
following the topic would. Printed per step: records held, the broker's CPU (ms) per 1,000 records
produced and per 1,000 fetched, its RSS. `--one-per-request` awaits each record before sending the
next (a batch of one record per produce request, what a relay publishing one event at a time sends);
otherwise the producer is left to batch (linger 5 ms, up to 512 KiB a batch, as callgauge_bus does).

    .venv/bin/python -m tests.bench.bench_broker_batches --steps 10 --per-step 30000
    .venv/bin/python -m tests.bench.bench_broker_batches --steps 6 --per-step 10000 --one-per-request
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from callgauge_platform.broker import tansu_command

TOPIC = "bench-batches"


def cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS"))


async def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    for _ in range(150):  # the broker's start: bounded
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            return admin
        except Exception:  # noqa: BLE001 - not listening yet
            await admin.close()
            await asyncio.sleep(0.2)
    raise SystemExit(f"Tansu did not answer on {bootstrap}")


async def run(a: argparse.Namespace) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    broker = subprocess.Popen(tansu_command("127.0.0.1", port), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    bootstrap = f"127.0.0.1:{port}"
    try:
        admin = await _admin(bootstrap)
        await admin.create_topics([NewTopic(TOPIC, a.partitions, 1)])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=512 * 1024)
        await producer.start()
        payload = b"x" * 300
        held = 0
        print(f"# Tansu, {a.partitions} partitions, "
              + ("one record per produce request" if a.one_per_request else "producer batching (512 KiB)"))
        print(f"{'records held':>12}  {'produce CPU ms/1000':>20}  {'fetch CPU ms/1000':>18}  {'RSS MiB':>7}")
        for _ in range(a.steps):
            c0 = cpu_s(broker.pid)
            if a.one_per_request:
                for i in range(a.per_step):
                    await (await producer.send(TOPIC, payload, key=str(i % 997).encode()))
            else:
                sent = [await producer.send(TOPIC, payload, key=str(i % 997).encode())
                        for i in range(a.per_step)]
                await asyncio.gather(*sent)
            c1 = cpu_s(broker.pid)
            held += a.per_step
            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                        fetch_max_wait_ms=50)
            await consumer.start()
            parts = [TopicPartition(TOPIC, i) for i in range(a.partitions)]
            consumer.assign(parts)
            ends = await consumer.end_offsets(parts)
            for tp in parts:
                consumer.seek(tp, max(0, ends[tp] - a.per_step // a.partitions))
            got, c2 = 0, cpu_s(broker.pid)
            while got < a.per_step - a.partitions:
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                n = sum(len(v) for v in batch.values())
                if not n:
                    break
                got += n
            c3 = cpu_s(broker.pid)
            await consumer.stop()
            produced, fetched = 1e6 * (c1 - c0) / a.per_step, 1e6 * (c3 - c2) / max(got, 1)
            print(f"{held:>12}  {produced:>20.1f}  {fetched:>18.1f}  {rss_mib(broker.pid):>7}", flush=True)
        await producer.stop()
    finally:
        broker.terminate()
        broker.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10, help="steps (bound)")
    ap.add_argument("--per-step", type=int, default=30_000, help="records produced and fetched per step")
    ap.add_argument("--partitions", type=int, default=3,
                    help="the topic's partitions (callgauge's topics: 3)")
    ap.add_argument("--one-per-request", action="store_true",
                    help="await each record: one per produce request")
    a = ap.parse_args()
    if not (1 <= a.steps <= 100 and 1 <= a.per_step <= 1_000_000):
        raise SystemExit("--steps 1..100, --per-step 1..1,000,000")
    asyncio.run(run(a))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
