"""The embedded broker keeps topics in memory only. Killed mid-run and restarted empty, the stack
carries on: the run completes, the services' outboxes re-publish so a data team reading the
topics from the start sees every event, and the media-engine does not carry out an old run twice."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import httpx
import pytest

from callgauge_bus.codec import Delivered
from callgauge_bus.kafka import Consumer
from callgauge_platform.broker import tansu_command
from callgauge_platform.stack import Stack, _tcp_open
from tests.e2e.test_walking_skeleton import calls_of

pytestmark = pytest.mark.e2e


def wait_status(api, project_id, run_id, wanted, limit_s=90):
    deadline = time.monotonic() + limit_s  # bounds the poll; not a timing assertion
    status = None
    while time.monotonic() < deadline:
        run = api.get(f"/projects/{project_id}/test-runs/{run_id}").json()["data"]
        status = run["status"]
        if status in wanted:
            return run
        time.sleep(0.2)
    pytest.fail(f"run {run_id} still {status}")


async def media_types_by_run(bootstrap: str, topic: str, run_ids: set[str], limit_s: float = 60) -> dict:
    seen: dict[str, set[str]] = {r: set() for r in run_ids}

    async def handler(d: Delivered) -> None:
        if d.envelope.correlation_id in seen:
            seen[d.envelope.correlation_id].add(d.envelope.type.rsplit(".", 1)[-1])

    consumer = Consumer(bootstrap, [topic], f"data-team-{uuid.uuid4().hex[:6]}", handler)
    await consumer.start()
    try:
        async with asyncio.timeout(limit_s):
            while not all("RunMediaFinished" in t for t in seen.values()):
                await asyncio.sleep(0.1)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return seen


def test_a_broker_restarted_empty_mid_run_loses_nothing(tmp_path):
    stack = Stack.on_free_ports(tmp_path / "data")
    stack.start(timeout=90)
    try:
        s = stack.settings
        with httpx.Client(base_url=f"{s.gateway_url()}/api/v1", headers={"Authorization": f"Bearer {s.api_key}"},
                          timeout=30) as api:
            project = api.post("/projects", json={"name": "broker loss"}).json()["data"]

            def new_run(duration_ms):
                test = api.post(f"/projects/{project['id']}/tests", json={"name": "t", "steps": [{"actions": [
                    {"type": "call", "dial_destination": stack.responder_uri(), "duration_ms": duration_ms}]}]}).json()
                return api.post(f"/projects/{project['id']}/tests/{test['data']['id']}/run").json()["data"]["testRunId"]

            before = new_run(500)
            assert wait_status(api, project["id"], before, ("COMPLETED", "FAILED"))["status"] == "COMPLETED"

            during = new_run(6000)
            wait_status(api, project["id"], during, ("RUNNING",))
            tansu = next(c for c in stack.children if c.name == "tansu")
            tansu.proc.send_signal(signal.SIGKILL)
            tansu.proc.wait(10)
            host, port = s.kafka_bootstrap.rsplit(":", 1)
            stack._spawn("tansu", tansu_command(host, int(port)))
            deadline = time.monotonic() + 30
            while not _tcp_open(host, int(port)) and time.monotonic() < deadline:
                time.sleep(0.1)

            run = wait_status(api, project["id"], during, ("COMPLETED", "FAILED"), limit_s=120)
            assert run["status"] == "COMPLETED", run["resultDescription"]
            calls = calls_of(api, project["id"], during)
            assert len(calls) == 1 and calls[0]["rxPackets"] > 0
            old = api.get(f"/projects/{project['id']}/test-runs/{before}").json()["data"]
            assert old["status"] == "COMPLETED" and len(calls_of(api, project["id"], before)) == 1

        types = asyncio.run(media_types_by_run(s.kafka_bootstrap, s.topic("media"), {before, during}))
        full = {"RunAccepted", "RunMediaStarted", "CallMeasured", "RunMediaFinished"}
        assert full <= types[before] and full <= types[during], types  # plus metering and per-second stats
        media_log = (s.data_dir / "logs" / "media-engine.log").read_text()
        started = [line for line in media_log.splitlines() if '"run_started"' in line and before in line]
        assert len(started) == 1, started  # the re-published RunRequested of the old run was not run again
    finally:
        stack.stop()
