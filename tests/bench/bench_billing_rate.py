"""Billing at rate (issue #14 item 3): the billing service (its real consumer, batch handler, SQLite
store and outbox relay, as `bootstrap` wires it; gRPC and health left out) against the real Tansu
broker, fed by a separate producer process with the media events of --rate answered calls per second
for --calls calls (per call, as the engine sends them: CallAnswered, a CallProgress after 1 s of talk,
CallMeasured at its end), then the run's RunCompleted. Prints the metering rate sustained, how far
billing fell behind the producer at worst, the time from RunCompleted to the run's hold released
(settled), and whether the wallet was charged exactly the answered call-seconds.

Bounded: --calls, --rate, and every wait has a timeout. Not a test: figures only.

    .venv/bin/python -m tests.bench.bench_billing_rate --calls 60000 --rate 1000
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from callgauge_billing.bootstrap import bootstrap
from callgauge_billing.handlers.app import CALLS_METERED
from callgauge_bus.codec import envelope_for
from callgauge_bus.kafka import Producer, ensure_topics
from callgauge_platform.broker import tansu_command
from callgauge_app.settings import PlatformSettings
from callgauge_platform.stack import free_port, stop_process
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from tests.bench._support import table

ACCOUNT = "acct-bench"
TALK_MS = 1000


def _record(topic: str, msg, run_id: str, stream: str) -> tuple:
    env = envelope_for(msg, stream, 0, run_id, "", "media-engine")
    return (topic, run_id, env.SerializeToString(), [("event_id", env.event_id.encode()), ("type", env.type.encode())])


def produce(bootstrap_servers: str, media: str, runs: str, run_id: str, calls: int, rate: float, out) -> None:
    """The producer process: calls answered at `rate`, each ending TALK_MS later; then RunCompleted."""

    async def main() -> None:
        producer = Producer(bootstrap_servers, client_id="bench-producer")
        await producer.start()
        try:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            answered = ended = 0
            tick = 0.05
            while ended < calls:
                now = loop.time() - t0
                due_answers = min(calls, int(now * rate) + 1)
                due_ends = min(calls, max(0, int((now - TALK_MS / 1000) * rate) + 1))
                batch = []
                for i in range(answered, due_answers):
                    batch.append(_record(media, media_pb2.CallAnswered(run_id=run_id, engine_id="bench",
                                                                       call_id=f"{run_id}:0.0.{i}"), run_id, f"m-{run_id}"))
                for i in range(ended, due_ends):
                    cid = f"{run_id}:0.0.{i}"
                    batch.append(_record(media, media_pb2.CallProgress(run_id=run_id, engine_id="bench", call_id=cid,
                                                                       up_ms=TALK_MS), run_id, f"m-{run_id}"))
                    batch.append(_record(media, media_pb2.CallMeasured(run_id=run_id, engine_id="bench",
                                                                       call=m_pb2.CallMeasurement(
                        call_id=cid, index=i, outcome=m_pb2.SUCCESS, sip_code=200, duration_ms=TALK_MS)),
                        run_id, f"m-{run_id}"))
                answered, ended = due_answers, due_ends
                if batch:
                    await producer.send_many(batch)
                await asyncio.sleep(max(0.0, tick - ((loop.time() - t0) % tick)))
            produced_s = loop.time() - t0
            await producer.send_many([_record(runs, runs_pb2.RunCompleted(run_id=run_id, passed=True), run_id,
                                              f"run-{run_id}")])
            out.put((time.time(), produced_s))
        finally:
            await producer.stop()

    asyncio.run(main())


def _metered() -> float:
    return CALLS_METERED.labels("live")._value.get()


async def bench(a, bootstrap_servers: str, data_dir: Path) -> list[list[object]]:
    settings = PlatformSettings(data_dir=data_dir, kafka_bootstrap=bootstrap_servers, billing_payment_provider="local",
                        billing_mode="prepaid",
                        billing_max_top_up_minor=100_000_000)
    svc = bootstrap(settings)
    await ensure_topics(bootstrap_servers, [settings.topic(x) for x in ("runs", "billing", "media")])
    await svc.app.start()
    await svc.producer.start()
    await svc.relay.start()
    await svc.consumer.start()
    try:
        price = settings.billing_price_call_second_minor
        await svc.app.top_up(ACCOUNT, "live", a.calls * price * 2 + 1000, "", "bench-top-up")
        run_id = f"bench-{int(time.time())}"
        spec = spec_pb2.TestSpec(steps=[spec_pb2.Step(actions=[spec_pb2.Action(load=spec_pb2.LoadAction(
            dial_destination="sip:x@127.0.0.1", cps=a.rate, max_total_calls=a.calls, duration_ms=TALK_MS))])])
        await svc.app.reserve(ACCOUNT, "live", "p", "t", run_id, spec)
        before, _ = await svc.app.get_wallet(ACCOUNT, "live")
        async with asyncio.timeout(60):
            await svc.consumer.ready.wait()
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        child = ctx.Process(target=produce, args=(bootstrap_servers, settings.topic("media"), settings.topic("runs"),
                                                 run_id, a.calls, a.rate, out), daemon=True)
        m0 = _metered()
        t_start = time.time()
        child.start()
        samples: list[tuple[float, float]] = []
        done_at = produced_s = None
        settled_at = None
        deadline = time.monotonic() + a.calls / a.rate + 300
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            samples.append((time.time(), _metered() - m0))
            if done_at is None and not out.empty():
                done_at, produced_s = out.get()
            if done_at is not None:
                state, _ = await svc.app.get_wallet(ACCOUNT, "live")
                # settled: the hold released and every call-second charged
                if run_id not in state.holds and before.balance_minor - state.balance_minor >= a.calls * price:
                    settled_at = time.time()
                    break
        child.join(10)
        after, _ = await svc.app.get_wallet(ACCOUNT, "live")
    finally:
        await svc.consumer.stop()
        await svc.relay.stop()
        await svc.producer.stop()
        await svc.store.close()
    total = 2 * a.calls  # metered call events: a CallProgress and a CallMeasured per call
    n = samples[-1][1] if samples else 0
    lo = next((s for s in samples if s[1] >= 0.1 * n), None)
    hi = next((s for s in samples if s[1] >= 0.9 * n), None)
    rate = (hi[1] - lo[1]) / (hi[0] - lo[0]) / 2 if lo and hi and hi[0] > lo[0] else None
    # behind the producer at worst: events it had sent by then (its schedule) minus events metered
    behind = max((min(total, 2 * a.rate * max(0.0, t - t_start - TALK_MS / 1000)) - m for t, m in samples), default=0)
    charged = before.balance_minor - after.balance_minor
    return [
        ["calls produced / rate asked", f"{a.calls} / {a.rate:g} calls/s"],
        ["producer: all events sent in (s)", f"{produced_s:.1f}" if produced_s else "–"],
        ["metering rate sustained (answered calls/s)", f"{rate:.0f}" if rate else "–"],
        ["call events metered in batches / sent", f"{int(n)} / {total}"],
        ["billing behind the producer at worst (call events)", f"{behind:.0f}"],
        ["RunCompleted -> hold released and all charged (s)", f"{settled_at - done_at:.2f}" if settled_at and done_at
         else "not settled in time"],
        ["charged / answered call-seconds x price (exact?)", f"{charged} / {a.calls * price} "
         f"({'exact' if charged == a.calls * price else 'NOT exact'})"],
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=60_000, help="answered calls (bound)")
    ap.add_argument("--rate", type=float, default=1000.0, help="answered calls per second")
    a = ap.parse_args(argv)
    print(f"# billing at rate, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: {a.calls} calls at {a.rate:g}/s, "
          f"{TALK_MS} ms each, SQLite", flush=True)
    with tempfile.TemporaryDirectory(prefix="callgauge-bench-billing-") as tmp:
        port = free_port()
        tansu = subprocess.Popen(tansu_command("127.0.0.1", port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            rows = asyncio.run(bench(a, f"127.0.0.1:{port}", Path(tmp)))
        finally:
            stop_process(tansu)
    print(table(rows, ["figure", "value"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
