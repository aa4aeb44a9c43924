"""A restart with history (issue #14 item 6b): `callgauge up`'s processes on a data dir whose
media-engine outbox holds --events events the broker never acknowledged (what a stop during a big
run, or a re-publish after a broker loss, leaves; Tansu keeps nothing across a restart), then a
new run started right after the restart. Prints: the backlog, the stack's start time, POST -> the
run RUNNING and -> its first INVITE, and how long the relay took to publish the backlog.

The backlog is written straight into the engine's store while the stack is down: CallMeasured
events of an old run (what a big run's outbox is made of), in one stream per 1,000.

Bounded: --events, and every wait has a timeout. Not a test: figures only.

    .venv/bin/python -m tests.bench.bench_restart --events 300000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx

from callgauge_bus.codec import new_event
from callgauge_eventstore import StreamState
from callgauge_eventstore.factory import open_event_store
from callgauge_platform.stack import Stack
from callgauge_proto.callgauge.events.v1 import media_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_platform.run_states import TERMINAL
from tests.bench._support import table
from tests.bench.bench_pipeline import InviteSniffer

ENGINE_NAMESPACE = "media-engine"
RELAY = "relay:media"


async def fill(url: str, events: int) -> tuple[int, int]:
    """Append the backlog; (last position, relay checkpoint)."""
    store = open_event_store(url, ENGINE_NAMESPACE)
    try:
        old = f"old-{uuid.uuid4().hex[:8]}"
        for chunk in range(0, events, 1000):
            n = min(1000, events - chunk)
            await store.append_to_stream(f"media-run-{old}-{chunk}", StreamState.NO_STREAM, [
                new_event(media_pb2.CallMeasured(run_id=old, engine_id="bench", call=m_pb2.CallMeasurement(
                    call_id=f"{old}:0.0.{chunk + i}", index=chunk + i, outcome=m_pb2.SUCCESS, sip_code=200)),
                    correlation_id=old, source="media-engine") for i in range(n)])
        return await store.last_position(), await store.get_checkpoint(RELAY)
    finally:
        await store.close()


async def relay_position(url: str) -> int:
    store = open_event_store(url, ENGINE_NAMESPACE)
    try:
        return await store.get_checkpoint(RELAY)
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=300_000, help="unpublished events in the engine's outbox (bound)")
    a = ap.parse_args(argv)
    print(f"# restart with a backlog, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: {a.events} events", flush=True)
    with tempfile.TemporaryDirectory(prefix="callgauge-bench-restart-") as tmp:
        stack = Stack.on_free_ports(Path(tmp) / "data")
        url = stack.settings.eventstore_url_for()
        sniffer = InviteSniffer()
        try:
            stack.start(timeout=180)
            with httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1", timeout=60,
                              headers={"Authorization": f"Bearer {stack.settings.api_key}"}) as api:
                pid = api.post("/projects", json={"name": "restart"}).json()["data"]["id"]
                tid = api.post(f"/projects/{pid}/tests", json={"name": "probe", "steps": [{"actions": [{
                    "type": "call", "dial_destination": sniffer.uri("x"), "duration_ms": 100,
                    "setup_timeout_ms": 500}]}]}).json()["data"]["id"]
            stack.stop()
            t0 = time.monotonic()
            head, checkpoint = asyncio.run(fill(url, a.events))
            print(f"backlog written in {time.monotonic() - t0:.1f} s: positions {checkpoint}..{head}", flush=True)
            stack = Stack(stack.settings, extra_env=stack.extra_env)
            t0 = time.monotonic()
            stack.start(timeout=300)
            up_s = time.monotonic() - t0
            seen: dict[str, float] = {}
            with httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1", timeout=60,
                              headers={"Authorization": f"Bearer {stack.settings.api_key}"}) as api:
                t_post = time.time()
                rid = api.post(f"/projects/{pid}/tests/{tid}/run",
                               json={"step.0.0.dial_destination": sniffer.uri("after")}).json()["data"]["testRunId"]
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    status = api.get(f"/projects/{pid}/test-runs/{rid}").json()["data"]["status"]
                    seen.setdefault(status, time.time() - t_post)
                    if "after" in sniffer.first:
                        seen.setdefault("first INVITE", sniffer.first["after"] - t_post)
                    if status in TERMINAL:
                        break
                    time.sleep(0.02)
                relay_done = None
                while time.monotonic() < deadline:
                    if asyncio.run(relay_position(url)) >= head:
                        relay_done = time.monotonic() - t0
                        break
                    time.sleep(0.5)
        finally:
            sniffer.close()
            stack.stop()
    fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    print(table([
        ["unpublished events in the engine's outbox at the restart", head - checkpoint],
        ["stack start (s)", fmt(up_s)],
        ["POST -> RUNNING (s)", fmt(seen.get("RUNNING"))],
        ["POST -> first INVITE (s)", fmt(seen.get("first INVITE"))],
        ["POST -> ended (s)", fmt(min((v for k, v in seen.items() if k in ("COMPLETED", "FAILED")), default=None))],
        ["start -> backlog published (s)", fmt(relay_done)],
    ], ["figure", "value"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
