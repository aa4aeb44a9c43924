"""The runs service's read model: projects with their counts, tests and run headers per account,
kept in memory by following the event store's global log."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from dataclasses import dataclass, field, replace
from datetime import datetime

from google.protobuf.message import Message

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

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

    def apply(self, event: Message, at: datetime | None) -> set[str]:
        """Fold one event in; return the keys of the rows it changed."""
        if isinstance(event, runs_pb2.ProjectCreated):
            self.projects[event.project_id] = ProjectView(model.evolve_project(None, event, at))
            return {f"project:{event.project_id}"}
        if isinstance(event, runs_pb2.TestCreated):
            self.tests[event.test_id] = model.evolve_test(None, event, at)
            changed = {f"test:{event.test_id}"}
            if (pv := self.projects.get(event.project_id)) is not None:
                pv.test_count += 1
                changed.add(f"project:{event.project_id}")
            return changed
        if isinstance(event, runs_pb2.RunRequested):
            self.runs[event.run_id] = model.evolve_run(None, event, at)
            return {f"run:{event.run_id}"}
        if (run_id := getattr(event, "run_id", None)) and run_id in self.runs:
            run = model.evolve_run(self.runs[run_id], event, at)
            # Headers only: the per-call detail is read from the run's stream.
            self.runs[run_id] = replace(run, calls=())
            return {f"run:{run_id}"}
        return set()

    # ---------------------------------------------------------------- rows (persisted form)

    def row(self, key: str) -> bytes | None:
        """The persisted form of one entry (None when it does not exist)."""
        kind, _, ident = key.partition(":")
        if kind == "project" and (pv := self.projects.get(ident)) is not None:
            value = {**_encode(pv.project), "test_count": pv.test_count, "probe_count": pv.probe_count,
                     "registrar_count": pv.registrar_count}
        elif kind == "test" and (t := self.tests.get(ident)) is not None:
            value = _encode(t)
        elif kind == "run" and (r := self.runs.get(ident)) is not None:
            value = _encode(r)
        else:
            return None
        return json.dumps(value, sort_keys=True).encode()

    def rows(self) -> dict[str, bytes]:
        keys = ([f"project:{k}" for k in self.projects] + [f"test:{k}" for k in self.tests]
                + [f"run:{k}" for k in self.runs])
        return {k: self.row(k) for k in keys}  # type: ignore[misc]

    def load_rows(self, rows: dict[str, bytes], position: int) -> None:
        for key, raw in rows.items():
            kind, _, ident = key.partition(":")
            value = json.loads(raw)
            if kind == "project":
                counts = {k: value.pop(k) for k in ("test_count", "probe_count", "registrar_count")}
                self.projects[ident] = ProjectView(_decode(model.Project, value), **counts)
            elif kind == "test":
                self.tests[ident] = _decode(model.Test, value)
            elif kind == "run":
                self.runs[ident] = _decode(model.Run, value)
        self.position = position

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


# Protobuf fields of the view entries, by field name: stored as base64 of their wire form.
_PROTO_FIELDS = {"spec": spec_pb2.TestSpec, "summary": m_pb2.RunSummary}
_TIME_FIELDS = {"created_at", "started_at", "stopped_at"}


def _encode(obj) -> dict:
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if f.name in _PROTO_FIELDS:
            v = None if v is None else base64.b64encode(v.SerializeToString(deterministic=True)).decode()
        elif f.name in _TIME_FIELDS:
            v = v.isoformat() if v is not None else None
        elif f.name == "calls":
            v = []  # not kept in the read model
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def _decode(cls, value: dict):
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in value:
            continue
        v = value[f.name]
        if f.name in _PROTO_FIELDS and v is not None:
            msg = _PROTO_FIELDS[f.name]()
            msg.ParseFromString(base64.b64decode(v))
            v = msg
        elif f.name in _TIME_FIELDS and v is not None:
            v = datetime.fromisoformat(v)
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)
