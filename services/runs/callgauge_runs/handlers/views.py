"""The runs service's read model: projects with their counts, tests and run headers per account,
kept in memory by following the event store's global log."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime

from google.protobuf.message import Message

from callgauge_proto.callgauge.events.v1 import runs_pb2

from callgauge_runs.domain import model


@dataclass
class ProjectView:
    project: model.Project
    test_count: int = 0
    probe_count: int = 0
    registrar_count: int = 0


@dataclass
class ReadModel:
    projects: dict[str, ProjectView] = field(default_factory=dict)
    tests: dict[str, model.Test] = field(default_factory=dict)
    runs: dict[str, model.Run] = field(default_factory=dict)
    position: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def apply(self, event: Message, at: datetime | None) -> None:
        if isinstance(event, runs_pb2.ProjectCreated):
            self.projects[event.project_id] = ProjectView(model.evolve_project(None, event, at))
        elif isinstance(event, runs_pb2.TestCreated):
            self.tests[event.test_id] = model.evolve_test(None, event, at)
            if (pv := self.projects.get(event.project_id)) is not None:
                pv.test_count += 1
        elif isinstance(event, runs_pb2.RunRequested):
            self.runs[event.run_id] = model.evolve_run(None, event, at)
        elif (run_id := getattr(event, "run_id", None)) and run_id in self.runs:
            run = model.evolve_run(self.runs[run_id], event, at)
            # Headers only: the per-call detail is read from the run's stream.
            self.runs[run_id] = replace(run, calls=())

    async def advanced_to(self, position: int) -> None:
        async with self._changed:
            self.position = max(self.position, position)
            self._changed.notify_all()

    async def wait_for(self, position: int, timeout: float = 10.0) -> None:
        """Return once the model reflects every event up to `position` (read-your-writes)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.position >= position), timeout)

    def projects_of(self, account_id: str) -> list[ProjectView]:
        return sorted((p for p in self.projects.values() if p.project.account_id == account_id),
                      key=lambda p: p.project.id)

    def runs_of(self, account_id: str, project_id: str) -> list[model.Run]:
        return sorted((r for r in self.runs.values() if r.account_id == account_id and r.project_id == project_id),
                      key=lambda r: r.id, reverse=True)
