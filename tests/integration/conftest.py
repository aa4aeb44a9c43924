"""Fixtures of the integration suite: services running in the test's process on the test's store
(`store_backend`: SQLite, then PostgreSQL) and the real broker; the built-in responder as a far end."""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING
from dataclasses import dataclass
from pathlib import Path

import pytest

from callgauge_app.settings import PlatformSettings
from callgauge_platform.stack import free_port, stop_process
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2_grpc as pb_grpc
from callgauge_runs.adapters.billing import UnmeteredBilling
from callgauge_runs.bootstrap import bootstrap
from service_clients import AclStub, acl_stub

if TYPE_CHECKING:
    from callgauge_media.adapters.pool import WorkerPool

HOST = "127.0.0.1"


@pytest.fixture
async def runs_app(tmp_path):
    """A RunsApp on its own SQLite store, started (its projectors running); no broker, no billing."""
    from callgauge_eventstore.factory import open_event_store
    from callgauge_runs.handlers.app import RunsApp

    store = open_event_store(f"sqlite:///{tmp_path}/", "runs")
    app = RunsApp(store)
    await app.start()
    yield app
    await app.stop()
    await store.close()


@pytest.fixture
def start_a_run():
    """start(app) -> run id: a project, a one-call test and a run of it, for account "acct"."""
    from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
    from callgauge_runs.domain import project as project_model, run as run_model, test as test_model
    from callgauge_runs.handlers.app import new_id

    async def start(app) -> str:
        pid, tid, rid = new_id(), new_id(), new_id()
        await app.create_project(project_model.CreateProject(project_id=pid, account_id="acct", name="P"))
        spec = spec_pb2.TestSpec()
        spec.steps.add().actions.add().call.dial_destination = "sip:echo@127.0.0.1:5070"
        await app.create_test(test_model.CreateTest(test_id=tid, project_id=pid, account_id="acct", name="t",
                                                    spec=spec))
        await app.start_run(run_model.StartRun(run_id=rid, project_id=pid, test_id=tid, account_id="acct"))
        return rid

    return start


@pytest.fixture
async def runs_service(store_backend, tmp_path, broker, topic_prefix):
    """(settings, start): the runs service (billing unmetered) on the test's store and broker;
    start() (re)starts it on the same store and returns a stub."""
    settings = PlatformSettings(
        data_dir=tmp_path, eventstore_url=store_backend.url, kafka_bootstrap=broker.bootstrap,
        kafka_topic_prefix=topic_prefix, runs_grpc=f"127.0.0.1:{free_port()}", runs_http_port=free_port(),
        dial_allow_cidrs="127.0.0.0/8",  # the tests' SIP destinations are on loopback (denied by default)
    )
    running: list = []

    async def stop() -> None:
        for svc, channel in running:
            await channel.close()
            await svc.stop()
        running.clear()

    async def start() -> AclStub:
        await stop()
        svc = bootstrap(settings, store=store_backend.new_store("runs"), billing=UnmeteredBilling())
        await svc.start()
        stub = acl_stub(settings, "runs", pb_grpc.RunsServiceStub)
        running.append((svc, stub))
        return stub

    yield settings, start
    await stop()


# ---------------------------------------------------------------------------------- media peers

# The built-in responders' RTP ports: a block of 100 per test process, 20 per responder of a test.
RESPONDER_RTP_BASE = 33000 + (os.getpid() % 20) * 100


@dataclass
class Responder:
    proc: subprocess.Popen
    uri: str
    log: Path


@pytest.fixture
def start_responder(tmp_path: Path) -> Iterator[Callable[..., Responder]]:
    """Factory: ``python -m callgauge_media.responder`` on a free loopback SIP port, started and
    ready; `extra` are its options (a later one wins over the defaults given here)."""
    procs: list[subprocess.Popen] = []

    def start(*extra: str) -> Responder:
        n = len(procs)
        log = tmp_path / f"responder-{n}.log"
        cmd = [sys.executable, "-m", "callgauge_media.responder", "--host", HOST, "--port", "0",
               "--rtp-port", str(RESPONDER_RTP_BASE + n * 20), "--rtp-port-range", "20", *extra]
        with open(log, "w") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True)
        procs.append(proc)
        ready, _, _ = select.select([proc.stdout], [], [], 20.0)
        line = proc.stdout.readline().strip() if ready else ""
        if not line.startswith("responder ready sip:"):
            raise AssertionError(f"responder not ready: {line!r}\n{log.read_text()[-2000:]}")
        return Responder(proc, line.split()[-1], log)

    try:
        yield start
    finally:
        for proc in procs:
            stop_process(proc)
            if proc.stdout:
                proc.stdout.close()


@pytest.fixture
async def start_pool() -> AsyncIterator[Callable[..., Awaitable[WorkerPool]]]:
    """Factory: a started WorkerPool (pjsua2 worker processes) bound to 127.0.0.1, stopped after the
    test; `kw` as WorkerPool takes, over one worker of 16 calls on 100 RTP ports (each module keeps
    its own rtp_port_base)."""
    from callgauge_media.adapters.pool import WorkerPool

    pools: list[WorkerPool] = []

    async def start(**kw) -> WorkerPool:
        p = WorkerPool(**{"workers": 1, "rtp_ports_per_worker": 100, "calls_per_worker": 16, "bind_host": HOST,
                          **kw})
        await asyncio.wait_for(p.start(), 60)
        pools.append(p)
        return p

    try:
        yield start
    finally:
        for p in pools:
            await asyncio.wait_for(p.stop(), 60)


@pytest.fixture
def consume_until():
    """consume_until(bootstrap, topic, done, limit_s=30): what a fresh consumer group has read of the
    topic from its start once done(events read so far) is true; fails after limit_s."""
    from callgauge_bus.codec import Delivered
    from callgauge_bus.kafka import Consumer

    async def consume(bootstrap: str, topic: str, done: Callable[[list[Delivered]], bool],
                      limit_s: float = 30) -> list[Delivered]:
        seen: list[Delivered] = []

        async def on_event(d: Delivered) -> None:
            seen.append(d)

        consumer = Consumer(bootstrap, [topic], f"g{uuid.uuid4().hex}", on_event)
        await consumer.start()
        try:
            async with asyncio.timeout(limit_s):
                while not done(seen):
                    await asyncio.sleep(0.05)
        finally:
            await consumer.stop()
        return seen

    return consume
