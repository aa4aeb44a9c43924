"""The runs service's read model: projects with their counts, tests and run headers per account,
kept in memory by following the event store's global log."""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime

from google.protobuf.message import Message

from callgauge_eventstore import PositionWaiter
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import monitor_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_runs.domain import common, project as project_model, resources as resource_model, run as run_model, test as test_model
from callgauge_runs.domain import spec as specs


@dataclass
class ProjectView:
    project: project_model.Project
    test_count: int = 0
    probe_count: int = 0
    registrar_count: int = 0


@dataclass
class ReadModel(PositionWaiter):
    projects: dict[str, ProjectView] = field(default_factory=dict)
    tests: dict[str, test_model.Test] = field(default_factory=dict)
    runs: dict[str, run_model.Run] = field(default_factory=dict)
    registrars: dict[str, resource_model.Registrar] = field(default_factory=dict)
    pools: dict[str, resource_model.CredentialPool] = field(default_factory=dict)
    kiosk: dict[str, str] = field(default_factory=dict)  # token sha256 -> run id
    closed: set[str] = field(default_factory=set)  # deleted accounts (AccountClosed)

    def _count(self, project_id: str, attr: str, delta: int) -> set[str]:
        if (pv := self.projects.get(project_id)) is None:
            return set()
        setattr(pv, attr, max(0, getattr(pv, attr) + delta))
        return {f"project:{project_id}"}

    def _apply_counted(self, table: dict, kind: str, counter: str, item_id: str, evolve, event: Message,
                       at: datetime | None, created: bool, deleted: bool) -> set[str]:
        """Fold a created/updated/deleted event of a project's item that its project row counts
        (ProjectView.<counter>): the keys of the rows it changed."""
        key = {f"{kind}:{item_id}"}
        if created:
            table[item_id] = evolve(None, event, at)
            return key | self._count(event.project_id, counter, 1)  # type: ignore[attr-defined]
        if deleted:
            gone = table.pop(item_id, None)
            return key | (self._count(gone.project_id, counter, -1) if gone else set())
        if item_id in table:
            table[item_id] = evolve(table[item_id], event, at)
        return key

    def apply(self, event: Message, at: datetime | None) -> set[str]:
        """Fold one event in; return the keys of the rows it changed (a key whose entry is gone
        is a row to delete)."""
        if isinstance(event, runs_pb2.ProjectCreated | runs_pb2.ProjectUpdated | runs_pb2.ProjectDeleted):
            pid = event.project_id
            if isinstance(event, runs_pb2.ProjectCreated):
                self.projects[pid] = ProjectView(project_model.evolve_project(None, event, at))
            elif isinstance(event, runs_pb2.ProjectDeleted):
                self.projects.pop(pid, None)
            elif (pv := self.projects.get(pid)) is not None:
                pv.project = project_model.evolve_project(pv.project, event, at)
            return {f"project:{pid}"}
        if isinstance(event, runs_pb2.TestCreated | runs_pb2.TestUpdated | runs_pb2.TestDeleted):
            return self._apply_counted(self.tests, "test", "test_count", event.test_id,
                                       test_model.evolve_test, event, at,
                                       isinstance(event, runs_pb2.TestCreated),
                                       isinstance(event, runs_pb2.TestDeleted))
        if isinstance(event, runs_pb2.RegistrarCreated | runs_pb2.RegistrarUpdated | runs_pb2.RegistrarDeleted):
            return self._apply_counted(self.registrars, "registrar", "registrar_count",
                                       event.registrar_id, resource_model.evolve_registrar, event, at,
                                       isinstance(event, runs_pb2.RegistrarCreated),
                                       isinstance(event, runs_pb2.RegistrarDeleted))
        if isinstance(event, runs_pb2.CredentialPoolCreated | runs_pb2.CredentialPoolUpdated
                      | runs_pb2.CredentialPoolDeleted):
            pid = event.pool_id
            if isinstance(event, runs_pb2.CredentialPoolDeleted):
                self.pools.pop(pid, None)
            else:
                self.pools[pid] = resource_model.evolve_pool(self.pools.get(pid), event, at)
            return {f"pool:{pid}"}
        if isinstance(event, runs_pb2.AccountClosed):
            self.closed.add(event.account_id)
            return {f"closed:{event.account_id}"}
        if isinstance(event, runs_pb2.RunRequested):
            self.runs[event.run_id] = run_model.evolve_run(None, event, at)
            return {f"run:{event.run_id}"}
        if isinstance(event, runs_pb2.RunKioskLinkCreated | runs_pb2.RunKioskLinkRevoked):
            if isinstance(event, runs_pb2.RunKioskLinkCreated):
                self.kiosk[event.token_sha256] = event.run_id
            else:
                self.kiosk.pop(event.token_sha256, None)
            changed = {f"kiosk:{event.token_sha256}"}
            if event.run_id in self.runs:
                self.runs[event.run_id] = run_model.evolve_run(self.runs[event.run_id], event, at)
                changed.add(f"run:{event.run_id}")
            return changed
        if isinstance(event, monitor_pb2.ProbeCreated | monitor_pb2.ProbeDeleted):
            return self._count(event.project_id, "probe_count", 1 if isinstance(event, monitor_pb2.ProbeCreated) else -1)
        if event.DESCRIPTOR.file is monitor_pb2.DESCRIPTOR:
            return set()  # other probe and webhook facts: the monitor's own view (handlers/monitor_view.py)
        if isinstance(event, runs_pb2.CallRecorded):
            return set()  # headers only: a run's calls are in the calls projection, its figures in its stream
        if (run_id := getattr(event, "run_id", None)) and run_id in self.runs:
            self.runs[run_id] = run_model.evolve_run(self.runs[run_id], event, at)
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
        elif kind == "registrar" and (g := self.registrars.get(ident)) is not None:
            value = _encode(g)
        elif kind == "pool" and (c := self.pools.get(ident)) is not None:
            value = _encode(c)
        elif kind == "kiosk" and ident in self.kiosk:
            value = {"run_id": self.kiosk[ident]}
        elif kind == "closed" and ident in self.closed:
            value = {"closed": True}
        else:
            return None
        return json.dumps(value, sort_keys=True).encode()

    def rows(self) -> dict[str, bytes]:
        keys = ([f"project:{k}" for k in self.projects] + [f"test:{k}" for k in self.tests]
                + [f"run:{k}" for k in self.runs] + [f"registrar:{k}" for k in self.registrars]
                + [f"pool:{k}" for k in self.pools] + [f"kiosk:{k}" for k in self.kiosk]
                + [f"closed:{k}" for k in self.closed])
        return {k: self.row(k) for k in keys}  # type: ignore[misc]

    def load_rows(self, rows: dict[str, bytes], position: int) -> None:
        for key, raw in rows.items():
            kind, _, ident = key.partition(":")
            value = json.loads(raw)
            if kind == "project":
                counts = {k: value.pop(k) for k in ("test_count", "probe_count", "registrar_count")}
                self.projects[ident] = ProjectView(_decode(project_model.Project, value), **counts)
            elif kind == "test":
                self.tests[ident] = _decode(test_model.Test, value)
            elif kind == "run":
                self.runs[ident] = _decode(run_model.Run, value)
            elif kind == "registrar":
                self.registrars[ident] = _decode(resource_model.Registrar, value)
            elif kind == "pool":
                self.pools[ident] = _decode(resource_model.CredentialPool, value)
            elif kind == "kiosk":
                self.kiosk[ident] = value["run_id"]
            elif kind == "closed":
                self.closed.add(ident)
        self.position = position


    def projects_of(self, account_id: str, mode: str = "live") -> list[ProjectView]:
        return sorted((p for p in self.projects.values() if common.owned(p.project, account_id, mode)),
                      key=lambda p: p.project.id)

    def slug_taken(self, account_id: str, mode: str, slug: str, but: str = "") -> bool:
        return any(p.project.slug == slug and p.project.id != but for p in self.projects_of(account_id, mode))

    def free_slug(self, account_id: str, mode: str, base: str) -> str:
        taken = {p.project.slug for p in self.projects_of(account_id, mode)}
        if base not in taken:
            return base
        n = 2
        while f"{base[:58]}-{n}" in taken:
            n += 1
        return f"{base[:58]}-{n}"

    def tests_of(self, project_id: str) -> list[test_model.Test]:
        return sorted((t for t in self.tests.values() if t.project_id == project_id), key=lambda t: t.id)

    def registrars_of(self, project_id: str) -> list[resource_model.Registrar]:
        return sorted((r for r in self.registrars.values() if r.project_id == project_id), key=lambda r: r.id)

    def pools_of(self, project_id: str) -> list[resource_model.CredentialPool]:
        return sorted((p for p in self.pools.values() if p.project_id == project_id), key=lambda p: p.id)

    def resources_of(self, project_id: str) -> resource_model.Resources:
        return resource_model.Resources({r.id: r for r in self.registrars_of(project_id)},
                               {p.id: p for p in self.pools_of(project_id)})

    def tests_using(self, project_id: str, resource_id: str) -> tuple[str, ...]:
        """Names of the project's tests whose actions name this registrar or credential pool."""
        out = []
        for t in self.tests_of(project_id):
            targets, pools = specs.pool_refs(t.spec)
            if resource_id in targets or resource_id in pools:
                out.append(t.name)
        return tuple(out)

    def runs_of(self, account_id: str, mode: str, project_id: str) -> list[run_model.Run]:
        return sorted((r for r in self.runs.values() if common.owned(r, account_id, mode) and r.project_id == project_id),
                      key=lambda r: r.id, reverse=True)


# Protobuf fields of the view entries, by field name: stored as base64 of their wire form.
_PROTO_FIELDS = {"spec": spec_pb2.TestSpec, "summary": m_pb2.RunSummary}
_TIME_FIELDS = {"created_at", "started_at", "stopped_at"}
_NOT_KEPT = {"stats", "first_failed", "tally"}  # a run header has no call figures: get_run folds the stream


def _encode(obj) -> dict:
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if f.name in _PROTO_FIELDS:
            v = None if v is None else base64.b64encode(v.SerializeToString(deterministic=True)).decode()
        elif f.name in _TIME_FIELDS:
            v = v.isoformat() if v is not None else None
        elif f.name in _NOT_KEPT:
            continue
        elif f.name == "credentials":
            v = [dataclasses.asdict(c) for c in v]
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
        elif f.name == "credentials":
            v = tuple(resource_model.Credential(**c) for c in v)
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)
