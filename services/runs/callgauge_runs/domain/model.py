"""Aggregates of the runs service as deciders: `evolve(state, event) -> state` folds a stream,
`decide_*(state, command) -> [events]` checks a command against the state. Pure: no I/O, no clock
except what the caller passes in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from google.protobuf.message import Message

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_runs.domain import spec as specs
from callgauge_runs.domain.errors import Conflict, Invalid, NotFound, ValidationCollector

# ---------------------------------------------------------------- commands (plain data)


@dataclass(frozen=True)
class CreateProject:
    project_id: str
    account_id: str
    name: str
    slug: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CreateTest:
    test_id: str
    project_id: str
    account_id: str
    name: str
    spec: spec_pb2.TestSpec
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StartRun:
    run_id: str
    project_id: str
    test_id: str
    account_id: str
    metadata: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    mode: str = "live"


# ---------------------------------------------------------------- states


@dataclass(frozen=True)
class Project:
    id: str
    account_id: str
    name: str
    slug: str
    metadata: dict[str, str]
    created_at: datetime | None


@dataclass(frozen=True)
class Test:
    id: str
    project_id: str
    account_id: str
    name: str
    spec: spec_pb2.TestSpec
    metadata: dict[str, str]
    created_at: datetime | None


TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")


@dataclass(frozen=True)
class Run:
    id: str
    project_id: str
    test_id: str
    account_id: str
    test_name: str
    spec: spec_pb2.TestSpec
    metadata: dict[str, str]
    tags: tuple[str, ...]
    mode: str
    status: str = "PENDING"
    created_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    planned_calls: int = 0
    calls: tuple[m_pb2.CallMeasurement, ...] = ()
    summary: m_pb2.RunSummary | None = None
    passed: bool = False
    result_description: str = ""

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


# ---------------------------------------------------------------- evolve


def evolve_project(state: Project | None, event: Message, at: datetime | None = None) -> Project | None:
    if isinstance(event, runs_pb2.ProjectCreated):
        return Project(event.project_id, event.account_id, event.name, event.slug, dict(event.metadata), at)
    return state


def evolve_test(state: Test | None, event: Message, at: datetime | None = None) -> Test | None:
    if isinstance(event, runs_pb2.TestCreated):
        spec = spec_pb2.TestSpec()
        spec.CopyFrom(event.spec)
        return Test(event.test_id, event.project_id, event.account_id, event.name, spec, dict(event.metadata), at)
    return state


def evolve_run(state: Run | None, event: Message, at: datetime | None = None) -> Run | None:
    if isinstance(event, runs_pb2.RunRequested):
        return Run(
            id=event.run_id, project_id=event.project_id, test_id=event.test_id, account_id=event.account_id,
            test_name=event.test_name, spec=event.spec, metadata=dict(event.metadata), tags=tuple(event.tags),
            mode=event.mode or "live", created_at=at, planned_calls=specs.planned_calls(event.spec),
        )
    if state is None:
        return None
    if isinstance(event, runs_pb2.RunQueued):
        return replace(state, status="QUEUED", planned_calls=event.planned_calls or state.planned_calls)
    if isinstance(event, runs_pb2.RunStarted):
        return replace(state, status="RUNNING", started_at=at)
    if isinstance(event, runs_pb2.CallRecorded):
        return replace(state, calls=(*state.calls, event.call))
    if isinstance(event, runs_pb2.RunCompleted):
        return replace(state, status="COMPLETED", stopped_at=at, summary=event.summary, passed=event.passed,
                       result_description=event.result_description)
    if isinstance(event, runs_pb2.RunFailed):
        return replace(state, status="FAILED", stopped_at=at, summary=event.summary, passed=False,
                       result_description=event.result_description)
    return state


# ---------------------------------------------------------------- decide

_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    return _SLUG.sub("-", name.lower()).strip("-")[:64] or "project"


def decide_create_project(state: Project | None, cmd: CreateProject) -> list[Message]:
    if state is not None:
        raise Conflict(f"project {cmd.project_id} exists")
    v = ValidationCollector()
    name = cmd.name.strip()
    if not name:
        v.add(["name"], "a project needs a name", "missing")
    elif len(name) > 200:
        v.add(["name"], "at most 200 characters")
    slug = cmd.slug or slugify(name)
    if cmd.slug and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", cmd.slug):
        v.add(["slug"], "lower-case letters, digits and '-', at most 64")
    _validate_metadata(cmd.metadata, v)
    v.raise_if_any()
    return [runs_pb2.ProjectCreated(project_id=cmd.project_id, account_id=cmd.account_id, name=name, slug=slug,
                                    metadata=cmd.metadata)]


def decide_create_test(project: Project | None, state: Test | None, cmd: CreateTest) -> list[Message]:
    if project is None or project.account_id != cmd.account_id:
        raise NotFound("project", cmd.project_id)
    if state is not None:
        raise Conflict(f"test {cmd.test_id} exists")
    v = ValidationCollector()
    if not cmd.name.strip():
        v.add(["name"], "a test needs a name", "missing")
    specs.validate(cmd.spec, v, ["spec"])
    _validate_metadata(cmd.metadata, v)
    v.raise_if_any()
    return [runs_pb2.TestCreated(test_id=cmd.test_id, project_id=cmd.project_id, account_id=cmd.account_id,
                                 name=cmd.name.strip(), spec=specs.with_defaults(cmd.spec), metadata=cmd.metadata)]


def decide_start_run(test: Test | None, state: Run | None, cmd: StartRun) -> list[Message]:
    if test is None or test.account_id != cmd.account_id or test.project_id != cmd.project_id:
        raise NotFound("test", cmd.test_id)
    if state is not None:
        raise Conflict(f"run {cmd.run_id} exists")
    v = ValidationCollector()
    _validate_metadata(cmd.metadata, v)
    if cmd.mode not in ("live", "test"):
        v.add(["mode"], "live or test")
    v.raise_if_any()
    return [runs_pb2.RunRequested(run_id=cmd.run_id, project_id=cmd.project_id, test_id=cmd.test_id,
                                  account_id=cmd.account_id, test_name=test.name, spec=test.spec,
                                  metadata=cmd.metadata, tags=list(cmd.tags), mode=cmd.mode)]


def decide_media_event(state: Run | None, event: Message) -> list[Message]:
    """React to what the media-engine reports about a run. Repeats and late arrivals decide nothing."""
    if state is None or state.finished:
        return []
    if isinstance(event, media_pb2.RunAccepted):
        if state.status == "PENDING":
            return [runs_pb2.RunQueued(run_id=state.id, engine_id=event.engine_id, planned_calls=event.planned_calls)]
        return []
    if isinstance(event, media_pb2.RunMediaStarted):
        out: list[Message] = []
        if state.status == "PENDING":
            out.append(runs_pb2.RunQueued(run_id=state.id, engine_id=event.engine_id))
        if state.status in ("PENDING", "QUEUED"):
            out.append(runs_pb2.RunStarted(run_id=state.id, engine_id=event.engine_id))
        return out
    if isinstance(event, media_pb2.CallMeasured):
        if any(c.call_id == event.call.call_id for c in state.calls):
            return []
        return [runs_pb2.CallRecorded(run_id=state.id, call=event.call)]
    if isinstance(event, media_pb2.RunMediaFinished):
        if event.ended_by == "balance_exhausted":
            return [runs_pb2.RunFailed(run_id=state.id, summary=event.summary, result_description="balance exhausted")]
        if event.error:
            return [runs_pb2.RunFailed(run_id=state.id, summary=event.summary,
                                       result_description=f"media engine: {event.error}")]
        passed, description = evaluate(state.spec, event.summary, state.calls)
        if passed:
            return [runs_pb2.RunCompleted(run_id=state.id, summary=event.summary, passed=True,
                                          result_description=description)]
        return [runs_pb2.RunFailed(run_id=state.id, summary=event.summary, result_description=description)]
    return []


def metric_value(summary: m_pb2.RunSummary, metric: str) -> float:
    if metric == "acd_s":
        return summary.acd_ms / 1000.0
    return float(getattr(summary, metric))


_OPS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
        "<": lambda a, b: a < b, "==": lambda a, b: a == b}


def evaluate(spec: spec_pb2.TestSpec, summary: m_pb2.RunSummary,
             calls: tuple[m_pb2.CallMeasurement, ...]) -> tuple[bool, str]:
    """(passed, description): a run passes when every assertion holds; the description names each
    failed assertion and the first failed calls' outcomes with their SIP codes."""
    if summary.calls_attempted == 0:
        return False, "no call was attempted"
    failures = []
    for a in spec.assertions or specs.DEFAULT_ASSERTIONS:
        value = metric_value(summary, a.metric)
        if not _OPS[a.op](value, a.value):
            failures.append(f"{a.metric} {value:g} (expected {a.op} {a.value:g})")
    if not failures:
        return True, f"{summary.calls_answered}/{summary.calls_attempted} calls answered, all assertions held"
    bad = [c for c in calls if c.outcome != m_pb2.SUCCESS][:3]
    why = "; ".join(
        f"call {c.index}: {m_pb2.CallOutcome.Name(c.outcome)} {c.sip_code or ''} {c.sip_reason or c.detail}".strip()
        for c in bad
    )
    return False, "assertion failed: " + ", ".join(failures) + (f" — {why}" if why else "")


def _validate_metadata(md: dict[str, str], v: ValidationCollector) -> None:
    if len(md) > 50:
        v.add(["metadata"], "at most 50 keys")
    for k, val in md.items():
        if not k or len(k) > 40:
            v.add(["metadata", k], "keys are 1 to 40 characters")
        if len(val) > 500:
            v.add(["metadata", k], "values are at most 500 characters")


__all__ = [
    "Conflict", "CreateProject", "CreateTest", "Invalid", "NotFound", "Project", "Run", "StartRun", "Test",
    "decide_create_project", "decide_create_test", "decide_media_event", "decide_start_run", "evaluate",
    "evolve_project", "evolve_run", "evolve_test",
]
