"""The runs read model is a projection kept in the event store's database: its rows and tracking
record commit together, a restart resumes from them, and replay rebuilds the same state."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from callgauge_eventstore.factory import open_event_store
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_runs.domain import project as project_model, run as run_model, test as test_model
from callgauge_runs.handlers.app import VIEWS, RunsApp, new_id
from callgauge_runs.handlers.replay import replay


def spec():
    s = spec_pb2.TestSpec()
    s.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(dial_destination="sip:a@127.0.0.1:5070"))
    return s


async def populate(app: RunsApp):
    pid, tid = new_id(), new_id()
    await app.create_project(project_model.CreateProject(pid, "acc", "P", metadata={"team": "noc"}))
    await app.create_test(test_model.CreateTest(tid, pid, "acc", "T", spec()))
    run_ids = [new_id() for _ in range(3)]
    for rid in run_ids:
        await app.start_run(run_model.StartRun(rid, pid, tid, "acc", tags=("ci",)))
    return pid, tid, run_ids


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path}/"


async def test_a_restart_resumes_from_the_stored_rows(url):
    store = open_event_store(url, "runs")
    app = RunsApp(store)
    await app.start()
    pid, tid, run_ids = await populate(app)
    before = app.view.rows()
    await app.stop()
    rows, position = await store.read_projection(VIEWS)
    assert position == await store.last_position()
    assert rows == before and len(rows) == 5  # 1 project, 1 test, 3 runs
    assert json.loads(rows[f"project:{pid}"])["test_count"] == 1
    await store.close()

    store = open_event_store(url, "runs")
    again = RunsApp(store)
    await again.start()
    assert again.view.rows() == before
    assert again.get_project("acc", "live", pid).test_count == 1
    assert [r.id for r in again.list_runs("acc", "live", pid)] == sorted(run_ids, reverse=True)
    assert again.get_test("acc", "live", pid, tid).spec.steps[0].actions[0].call.dial_destination == "sip:a@127.0.0.1:5070"
    await again.stop()
    await store.close()


async def test_replay_rebuilds_the_same_state_and_repairs_a_damaged_row(url):
    store = open_event_store(url, "runs")
    app = RunsApp(store)
    await app.start()
    pid, _, _ = await populate(app)
    live = app.view.rows()
    await app.stop()

    report = await replay(store, write=False)
    assert report.identical and report.rows == len(live)

    damaged = json.loads(live[f"project:{pid}"])
    damaged["test_count"] = 99
    await store.commit_projection(VIEWS, report.position, {f"project:{pid}": json.dumps(damaged).encode(),
                                                           "project:ghost": b"{}"})
    report = await replay(store)
    assert report.differing == (f"project:{pid}", "project:ghost")
    rows, position = await store.read_projection(VIEWS)
    assert rows == live and position == report.position
    await store.close()


def test_the_replay_command(tmp_path):
    import asyncio

    async def seed():
        store = open_event_store(f"sqlite:///{tmp_path}/", "runs")
        app = RunsApp(store)
        await app.start()
        await populate(app)
        await app.stop()
        await store.close()

    asyncio.run(seed())
    cmd = [sys.executable, "-m", "callgauge_app", "replay", "--service", "runs", "--data-dir", str(tmp_path),
           "--check"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "5 rows" in out.stdout and "identical" in out.stdout
