"""Two runs-service processes on one SQLite store and the real broker, each with its probe
scheduler ticking every 50 ms: every slot of a 1-second probe is fired once and starts exactly
one run, whichever process wins it. Billing is left out (the processes run unmetered)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest
from callgauge_bus.codec import decode_payload
from callgauge_eventstore.factory import open_event_store
from callgauge_platform.stack import free_port, stop_process
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import monitor_pb2, runs_pb2
from callgauge_proto.callgauge.runs.v1 import monitor_service_pb2 as mpb
from callgauge_proto.callgauge.runs.v1 import monitor_service_pb2_grpc as mpb_grpc
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2_grpc as pb_grpc
from cryptography.fernet import Fernet
from callgauge_app.settings import PlatformSettings
from service_clients import acl_stub

CHILD = """
import sys
from callgauge_platform.lifecycle import run_service
from callgauge_runs.adapters.billing import UnmeteredBilling
from callgauge_runs.bootstrap import bootstrap
from callgauge_runs.settings import RunsSettings
sys.exit(run_service("runs", lambda settings: bootstrap(settings, billing=UnmeteredBilling()), RunsSettings))
"""


def _spawn(tmp_path: Path, name: str, env: dict[str, str]) -> tuple[subprocess.Popen, str, int]:
    grpc_addr, http_port = f"127.0.0.1:{free_port()}", free_port()
    env = {**env, "CALLGAUGE_RUNS_GRPC": grpc_addr, "CALLGAUGE_RUNS_HTTP_PORT": str(http_port),
           # its probes dial loopback port 9 (denied by default): allowed explicitly
           "CALLGAUGE_DIAL_ALLOW_CIDRS": "127.0.0.0/8", "CALLGAUGE_DIAL_ALLOW_PORTS": "1-65535"}
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc, grpc_addr, http_port


def _wait_ready(proc: subprocess.Popen, http_port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"runs process exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"runs process not ready after 60 s:\n{log.read_text()[-3000:]}")


async def test_two_runs_service_processes_fire_each_slot_once(tmp_path, broker, topic_prefix):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLGAUGE_")}
    env.update({
        "CALLGAUGE_DATA_DIR": str(tmp_path), "CALLGAUGE_EVENTSTORE_URL": f"sqlite:///{tmp_path}/",
        "CALLGAUGE_KAFKA_BOOTSTRAP": broker.bootstrap, "CALLGAUGE_KAFKA_TOPIC_PREFIX": topic_prefix,
        "CALLGAUGE_PROBE_MIN_INTERVAL_SECONDS": "1", "CALLGAUGE_PROBE_TICK_SECONDS": "0.05",
        "CALLGAUGE_SECRETS_KEY": Fernet.generate_key().decode(), "CALLGAUGE_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    a, a_grpc, a_http = _spawn(tmp_path, "a", env)
    b, b_grpc, b_http = _spawn(tmp_path, "b", env)
    try:
        _wait_ready(a, a_http, tmp_path / "a.log")
        _wait_ready(b, b_http, tmp_path / "b.log")
        keys = PlatformSettings(data_dir=tmp_path)  # both processes sign and check with the keys made there
        async with acl_stub(keys, "runs", pb_grpc.RunsServiceStub, a_grpc) as runs_a, \
                acl_stub(keys, "runs", mpb_grpc.MonitorServiceStub, a_grpc) as mon_a, \
                acl_stub(keys, "runs", mpb_grpc.MonitorServiceStub, b_grpc) as mon_b:
            project = await runs_a.CreateProject(pb.CreateProjectRequest(account_id="acct", mode="live", name="p"))
            spec = spec_pb2.TestSpec()
            spec.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(dial_destination="sip:x@127.0.0.1:9"))
            test = await runs_a.CreateTest(pb.CreateTestRequest(account_id="acct", mode="live",
                                                                project_id=project.id, name="t", spec=spec))
            probe = await mon_b.CreateProbe(mpb.CreateProbeRequest(
                scope=mpb.Scope(account_id="acct", mode="live"), project_id=project.id, test_id=test.id,
                name="every second", interval_seconds=1, enabled=True))
            get = mpb.GetProbeRequest(scope=mpb.Scope(account_id="acct", mode="live"), project_id=project.id,
                                      probe_id=probe.id)
            deadline = time.monotonic() + 60
            while (await mon_a.GetProbe(get)).slots_fired < 8:
                assert time.monotonic() < deadline, "8 slots did not fire within 60 s"
                await asyncio.sleep(0.2)
    finally:
        codes = [stop_process(p, 20) for p in (a, b)]
    assert codes == [0, 0], f"unclean exits {codes}: {(tmp_path / 'a.log').read_text()[-2000:]}"

    store = open_event_store(f"sqlite:///{tmp_path}/", "runs")
    try:
        slots, runs_per_slot = [], {}
        for ev in await store.read_all(0, 100_000):
            payload = decode_payload(ev.type, ev.data)
            if isinstance(payload, monitor_pb2.ProbeSlotFired) and payload.probe_id == probe.id:
                slots.append(payload.slot)
            if isinstance(payload, runs_pb2.RunRequested) and payload.metadata.get("probe_id") == probe.id:
                slot = int(payload.metadata["probe_slot"])
                runs_per_slot[slot] = runs_per_slot.get(slot, 0) + 1
    finally:
        await store.close()
    assert slots == list(range(1, len(slots) + 1)), f"each slot once, in order: {slots}"
    assert runs_per_slot == {s: 1 for s in slots}, f"runs per slot: {runs_per_slot}"
