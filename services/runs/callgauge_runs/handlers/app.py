"""Command and query handlers of the runs service: load a decider's state from its stream,
decide, append at the loaded version; queries read the read model or a stream."""

from __future__ import annotations

import asyncio
import uuid

from google.protobuf.message import Message
from prometheus_client import Counter
from uuid6 import uuid7

from callgauge_bus.codec import Delivered, decode_payload, new_event
from callgauge_eventstore import EventStore, WrongExpectedVersion
from callgauge_eventstore.aggregate import load, save
from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.logs import get_logger
from callgauge_proto.callgauge.events.v1 import media_pb2

from callgauge_runs.adapters.billing import BillingPort
from callgauge_runs.domain import model
from callgauge_runs.domain.errors import NotFound
from callgauge_runs.handlers.views import ProjectView, ReadModel

log = get_logger(__name__)
SOURCE = "runs"
RUN_TRANSITIONS = Counter("callgauge_runs_transitions_total", "run state changes", ["status"])
EVENTS_APPENDED = Counter("callgauge_runs_events_appended_total",
                          "events appended to the runs event store (idempotent re-appends included)",
                          ["type"])
VIEWS = "runs-views"  # the read model's name in the store
_NS = uuid.UUID("6f1d2c1e-8a55-4c59-9d3e-5b0f8e3a7c21")


def project_stream(pid: str) -> str:
    return f"project-{pid}"


def test_stream(tid: str) -> str:
    return f"test-{tid}"


def run_stream(rid: str) -> str:
    return f"run-{rid}"


def new_id() -> str:
    return str(uuid7())


class RunsApp:
    def __init__(self, store: EventStore, billing: BillingPort | None = None) -> None:
        self.store = store
        self.billing = billing  # None: runs are not metered (tests, tools)
        self.view = ReadModel()
        self._projector: asyncio.Task | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._projector = asyncio.create_task(self._project(), name="runs-projector")
        await self.view.wait_for(await self.store.last_position(), timeout=120)

    async def stop(self) -> None:
        await cancel_and_wait(self._projector)

    async def _project(self) -> None:
        """Keep the read model: load its rows, then follow the log from their tracking record. Each
        event's row changes and the new checkpoint commit in one transaction, so a restart resumes
        exactly where the committed rows end."""
        rows, position = await self.store.read_projection(VIEWS)
        self.view.load_rows(rows, position)
        await self.view.advanced_to(position)
        async for ev in self.store.subscribe_all(position):
            payload = decode_payload(ev.type, ev.data)
            changed = self.view.apply(payload, ev.recorded_at) if payload is not None else set()
            await self.store.commit_projection(VIEWS, ev.position, {k: self.view.row(k) for k in changed})
            await self.view.advanced_to(ev.position)

    # ------------------------------------------------------------ commands

    async def _append(self, stream: str, version: int, events: list[Message], correlation: str,
                      causation: str = "", ids: list[uuid.UUID] | None = None) -> int:
        new = [new_event(e, correlation, causation, ids[i] if ids else None, SOURCE) for i, e in enumerate(events)]
        position = await save(self.store, stream, version, new)
        for e in events:
            EVENTS_APPENDED.labels(e.DESCRIPTOR.name).inc()
        await self.view.wait_for(position)
        return position

    async def create_project(self, cmd: model.CreateProject) -> ProjectView:
        state, version = await load(self.store, project_stream(cmd.project_id), model.evolve_project, decode_payload)
        events = model.decide_create_project(state, cmd)
        await self._append(project_stream(cmd.project_id), version, events, cmd.project_id)
        return self.view.projects[cmd.project_id]

    async def create_test(self, cmd: model.CreateTest) -> model.Test:
        project, _ = await load(self.store, project_stream(cmd.project_id), model.evolve_project, decode_payload)
        state, version = await load(self.store, test_stream(cmd.test_id), model.evolve_test, decode_payload)
        events = model.decide_create_test(project, state, cmd)
        await self._append(test_stream(cmd.test_id), version, events, cmd.project_id)
        return self.view.tests[cmd.test_id]

    async def start_run(self, cmd: model.StartRun) -> model.Run:
        test, _ = await load(self.store, test_stream(cmd.test_id), model.evolve_test, decode_payload)
        state, version = await load(self.store, run_stream(cmd.run_id), model.evolve_run, decode_payload)
        events = model.decide_start_run(test, state, cmd)
        if self.billing is not None:  # hold the run's maximum cost first; not payable -> not started
            await self.billing.reserve(cmd.account_id, cmd.mode, cmd.run_id, cmd.project_id, cmd.test_id,
                                       events[0].spec)
        try:
            await self._append(run_stream(cmd.run_id), version, events, cmd.run_id)
        except BaseException:
            if self.billing is not None:
                await asyncio.shield(self.billing.release(cmd.account_id, cmd.mode, cmd.run_id))
            raise
        RUN_TRANSITIONS.labels("PENDING").inc()
        return await self.get_run(cmd.account_id, cmd.project_id, cmd.run_id)

    async def on_media_event(self, delivered: Delivered) -> None:
        """Move a run along as the media-engine reports. Idempotent: the events decided from a
        media event get ids derived from its id, so a redelivery re-appends the same ids (a no-op)."""
        msg = delivered.payload
        run_id = getattr(msg, "run_id", "")
        if not run_id or not isinstance(
            msg, media_pb2.RunAccepted | media_pb2.RunMediaStarted | media_pb2.CallMeasured | media_pb2.RunMediaFinished
        ):
            return
        for _attempt in range(5):
            state, version = await load(self.store, run_stream(run_id), model.evolve_run, decode_payload)
            if state is None:
                log.warning("media_event_for_unknown_run", run_id=run_id, type=delivered.envelope.type)
                return
            events = model.decide_media_event(state, msg)
            if not events:
                return
            ids = [uuid.uuid5(_NS, f"{delivered.event_id}:{i}") for i in range(len(events))]
            try:
                await self._append(run_stream(run_id), version, events, run_id, delivered.event_id, ids)
            except WrongExpectedVersion:
                continue  # someone else moved the run; decide again on the new state
            for e in events:
                RUN_TRANSITIONS.labels(type(e).__name__).inc()
            return
        raise RuntimeError(f"run {run_id}: gave up after repeated version conflicts")

    # ------------------------------------------------------------ queries

    def list_projects(self, account_id: str) -> list[ProjectView]:
        return self.view.projects_of(account_id)

    def get_project(self, account_id: str, project_id: str) -> ProjectView:
        pv = self.view.projects.get(project_id)
        if pv is None or pv.project.account_id != account_id:
            raise NotFound("project", project_id)
        return pv

    def get_test(self, account_id: str, project_id: str, test_id: str) -> model.Test:
        t = self.view.tests.get(test_id)
        if t is None or t.account_id != account_id or t.project_id != project_id:
            raise NotFound("test", test_id)
        return t

    async def get_run(self, account_id: str, project_id: str, run_id: str) -> model.Run:
        run, _ = await load(self.store, run_stream(run_id), model.evolve_run, decode_payload)
        if run is None or run.account_id != account_id or (project_id and run.project_id != project_id):
            raise NotFound("run", run_id)
        return run

    def list_runs(self, account_id: str, project_id: str) -> list[model.Run]:
        self.get_project(account_id, project_id)
        return self.view.runs_of(account_id, project_id)
