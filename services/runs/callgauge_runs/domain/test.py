"""The Test aggregate: named steps and assertions of a project, checked against the project's
registrars and credential pools. Deciders; pure."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from google.protobuf.message import Message

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import runs_pb2

from callgauge_platform.destinations import DialPolicy

from callgauge_runs.domain import spec as specs
from callgauge_runs.domain.common import owned, validate_metadata
from callgauge_runs.domain.errors import Conflict, NotFound, ValidationCollector
from callgauge_runs.domain.project import Project
from callgauge_runs.domain.resources import Resources


@dataclass(frozen=True)
class CreateTest:
    test_id: str
    project_id: str
    account_id: str
    name: str
    spec: spec_pb2.TestSpec
    metadata: dict[str, str] = field(default_factory=dict)
    mode: str = "live"


@dataclass(frozen=True)
class UpdateTest:
    test_id: str
    project_id: str
    account_id: str
    mode: str
    name: str | None = None
    steps: spec_pb2.TestSpec | None = None       # its steps replace the test's
    assertions: spec_pb2.TestSpec | None = None  # its assertions replace the test's
    metadata: dict[str, str] | None = None
    allow_unattempted_calls: bool | None = None  # replaces the test's when given


@dataclass(frozen=True)
class DeleteTest:
    test_id: str
    project_id: str
    account_id: str
    mode: str


@dataclass(frozen=True)
class Test:
    id: str
    project_id: str
    account_id: str
    name: str
    spec: spec_pb2.TestSpec
    metadata: dict[str, str]
    created_at: datetime | None
    mode: str = "live"
    deleted: bool = False


def evolve_test(state: Test | None, event: Message, at: datetime | None = None) -> Test | None:
    if isinstance(event, runs_pb2.TestCreated):
        spec = spec_pb2.TestSpec()
        spec.CopyFrom(event.spec)
        return Test(event.test_id, event.project_id, event.account_id, event.name, spec, dict(event.metadata), at,
                    event.mode or "live")
    if state is None:
        return None
    if isinstance(event, runs_pb2.TestUpdated):
        spec = spec_pb2.TestSpec()
        spec.CopyFrom(event.spec)
        return replace(state, name=event.name, spec=spec, metadata=dict(event.metadata))
    if isinstance(event, runs_pb2.TestDeleted):
        return replace(state, deleted=True)
    return state


def _validate_test(name: str, spec: spec_pb2.TestSpec, metadata: dict[str, str], resources: Resources | None,
                   v: ValidationCollector, dial: DialPolicy | None = None) -> None:
    resources = resources or Resources()
    if not name:
        v.add(["name"], "a test needs a name", "missing")
    elif len(name) > 200:
        v.add(["name"], "at most 200 characters")
    specs.validate(spec, v, [], resources.registrars.keys(), resources.pools.keys(), dial)
    validate_metadata(metadata, v)


def decide_create_test(project: Project | None, state: Test | None, cmd: CreateTest,
                       resources: Resources | None = None, dial: DialPolicy | None = None) -> list[Message]:
    """`resources`: the registrars and credential pools of the project the spec may name; `dial`:
    the operator's destination policy."""
    if not owned(project, cmd.account_id, cmd.mode):
        raise NotFound("project", cmd.project_id)
    if state is not None:
        raise Conflict(f"test {cmd.test_id} exists")
    v = ValidationCollector()
    _validate_test(cmd.name.strip(), cmd.spec, cmd.metadata, resources, v, dial)
    v.raise_if_any()
    return [runs_pb2.TestCreated(test_id=cmd.test_id, project_id=cmd.project_id, account_id=cmd.account_id,
                                 name=cmd.name.strip(), spec=specs.with_defaults(cmd.spec), metadata=cmd.metadata,
                                 mode=cmd.mode)]


def _test_in(state: Test | None, account_id: str, mode: str, project_id: str, test_id: str) -> Test:
    if not owned(state, account_id, mode) or state.project_id != project_id:
        raise NotFound("test", test_id)
    return state


def decide_update_test(state: Test | None, cmd: UpdateTest, resources: Resources | None = None,
                       dial: DialPolicy | None = None) -> list[Message]:
    test = _test_in(state, cmd.account_id, cmd.mode, cmd.project_id, cmd.test_id)
    name = test.name if cmd.name is None else cmd.name.strip()
    spec = spec_pb2.TestSpec()
    spec.steps.extend(test.spec.steps if cmd.steps is None else cmd.steps.steps)
    if cmd.assertions is not None:
        spec.assertions.extend(cmd.assertions.assertions)
    else:
        spec.assertions.extend(test.spec.assertions)
    spec.allow_unattempted_calls = (test.spec.allow_unattempted_calls if cmd.allow_unattempted_calls is None
                                    else cmd.allow_unattempted_calls)
    metadata = test.metadata if cmd.metadata is None else cmd.metadata
    v = ValidationCollector()
    _validate_test(name, spec, metadata, resources, v, dial)
    v.raise_if_any()
    spec = specs.with_defaults(spec)
    if (name, spec, metadata) == (test.name, test.spec, test.metadata):
        return []
    return [runs_pb2.TestUpdated(test_id=test.id, name=name, spec=spec, metadata=metadata)]


def decide_delete_test(state: Test | None, cmd: DeleteTest) -> list[Message]:
    test = _test_in(state, cmd.account_id, cmd.mode, cmd.project_id, cmd.test_id)
    return [runs_pb2.TestDeleted(test_id=test.id, project_id=test.project_id)]
