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

from callgauge_runs.domain import overrides as overrides_mod
from callgauge_runs.domain import spec as specs
from callgauge_runs.domain.errors import Conflict, Invalid, NotFound, ValidationCollector

# ---------------------------------------------------------------- commands (plain data)
# Every command names the caller's account and mode (live | test): an aggregate of another
# account or mode is reported as not found.


@dataclass(frozen=True)
class CreateProject:
    project_id: str
    account_id: str
    name: str
    slug: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    mode: str = "live"


@dataclass(frozen=True)
class UpdateProject:
    project_id: str
    account_id: str
    mode: str
    name: str | None = None
    slug: str | None = None
    metadata: dict[str, str] | None = None


@dataclass(frozen=True)
class DeleteProject:
    project_id: str
    account_id: str
    mode: str


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


@dataclass(frozen=True)
class DeleteTest:
    test_id: str
    project_id: str
    account_id: str
    mode: str


@dataclass(frozen=True)
class RegistrarFields:
    name: str | None = None
    host: str | None = None
    port: int | None = None
    transport: str | None = None
    domain: str | None = None


@dataclass(frozen=True)
class CreateRegistrar:
    registrar_id: str
    project_id: str
    account_id: str
    mode: str
    fields: RegistrarFields


@dataclass(frozen=True)
class UpdateRegistrar:
    registrar_id: str
    project_id: str
    account_id: str
    mode: str
    fields: RegistrarFields


@dataclass(frozen=True)
class DeleteResource:
    """Delete a registrar or a credential pool."""
    resource_id: str
    project_id: str
    account_id: str
    mode: str


@dataclass(frozen=True)
class Credential:
    username: str
    auth_username: str = ""
    domain: str = ""
    password_ciphertext: str = ""   # Fernet token (the handler encrypts); "" = keep the stored one


@dataclass(frozen=True)
class CreateCredentialPool:
    pool_id: str
    project_id: str
    account_id: str
    mode: str
    name: str
    credentials: tuple[Credential, ...]


@dataclass(frozen=True)
class UpdateCredentialPool:
    pool_id: str
    project_id: str
    account_id: str
    mode: str
    name: str | None = None
    credentials: tuple[Credential, ...] | None = None


@dataclass(frozen=True)
class StartRun:
    run_id: str
    project_id: str
    test_id: str
    account_id: str
    metadata: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    mode: str = "live"
    overrides: dict[str, str] = field(default_factory=dict)
    kiosk_token_sha256: str = ""    # mint a kiosk link with this token hash


@dataclass(frozen=True)
class StopRun:
    run_id: str
    account_id: str
    mode: str
    reason: str = "stopped on request"


@dataclass(frozen=True)
class RevokeKioskLinks:
    run_id: str
    account_id: str
    mode: str


# ---------------------------------------------------------------- states


@dataclass(frozen=True)
class Project:
    id: str
    account_id: str
    name: str
    slug: str
    metadata: dict[str, str]
    created_at: datetime | None
    mode: str = "live"
    deleted: bool = False


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


@dataclass(frozen=True)
class Registrar:
    id: str
    project_id: str
    account_id: str
    mode: str
    name: str
    host: str
    port: int
    transport: str
    domain: str
    created_at: datetime | None = None
    deleted: bool = False


@dataclass(frozen=True)
class CredentialPool:
    id: str
    project_id: str
    account_id: str
    mode: str
    name: str
    credentials: tuple[Credential, ...]
    created_at: datetime | None = None
    deleted: bool = False


@dataclass(frozen=True)
class Resources:
    """What a project owns that tests refer to: registrars and credential pools by id."""
    registrars: dict[str, Registrar] = field(default_factory=dict)
    pools: dict[str, CredentialPool] = field(default_factory=dict)


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
    stop_requested: bool = False
    kiosk_hashes: tuple[str, ...] = ()
    credential_pools: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


def owned(state, account_id: str, mode: str) -> bool:
    """The aggregate exists, is not deleted and belongs to this account and mode."""
    return (state is not None and not getattr(state, "deleted", False) and state.account_id == account_id
            and state.mode == (mode or "live"))


# ---------------------------------------------------------------- evolve


def evolve_project(state: Project | None, event: Message, at: datetime | None = None) -> Project | None:
    if isinstance(event, runs_pb2.ProjectCreated):
        return Project(event.project_id, event.account_id, event.name, event.slug, dict(event.metadata), at,
                       event.mode or "live")
    if state is None:
        return None
    if isinstance(event, runs_pb2.ProjectUpdated):
        return replace(state, name=event.name, slug=event.slug, metadata=dict(event.metadata))
    if isinstance(event, runs_pb2.ProjectDeleted):
        return replace(state, deleted=True)
    return state


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


def evolve_registrar(state: Registrar | None, event: Message, at: datetime | None = None) -> Registrar | None:
    if isinstance(event, runs_pb2.RegistrarCreated):
        return Registrar(event.registrar_id, event.project_id, event.account_id, event.mode or "live", event.name,
                         event.host, event.port, event.transport, event.domain, at)
    if state is None:
        return None
    if isinstance(event, runs_pb2.RegistrarUpdated):
        return replace(state, name=event.name, host=event.host, port=event.port, transport=event.transport,
                       domain=event.domain)
    if isinstance(event, runs_pb2.RegistrarDeleted):
        return replace(state, deleted=True)
    return state


def _creds(stored) -> tuple[Credential, ...]:
    return tuple(Credential(c.username, c.auth_username, c.domain, c.password_ciphertext.decode("ascii"))
                 for c in stored)


def _stored(creds: tuple[Credential, ...]) -> list[runs_pb2.StoredCredential]:
    return [runs_pb2.StoredCredential(username=c.username, auth_username=c.auth_username, domain=c.domain,
                                      password_ciphertext=c.password_ciphertext.encode("ascii")) for c in creds]


def evolve_pool(state: CredentialPool | None, event: Message, at: datetime | None = None) -> CredentialPool | None:
    if isinstance(event, runs_pb2.CredentialPoolCreated):
        return CredentialPool(event.pool_id, event.project_id, event.account_id, event.mode or "live", event.name,
                              _creds(event.credentials), at)
    if state is None:
        return None
    if isinstance(event, runs_pb2.CredentialPoolUpdated):
        return replace(state, name=event.name, credentials=_creds(event.credentials))
    if isinstance(event, runs_pb2.CredentialPoolDeleted):
        return replace(state, deleted=True)
    return state


def evolve_run(state: Run | None, event: Message, at: datetime | None = None) -> Run | None:
    if isinstance(event, runs_pb2.RunRequested):
        return Run(
            id=event.run_id, project_id=event.project_id, test_id=event.test_id, account_id=event.account_id,
            test_name=event.test_name, spec=event.spec, metadata=dict(event.metadata), tags=tuple(event.tags),
            mode=event.mode or "live", created_at=at, planned_calls=specs.planned_calls(event.spec),
            credential_pools=tuple(p.id for p in event.pools),
        )
    if state is None:
        return None
    if isinstance(event, runs_pb2.RunQueued):
        return replace(state, status="QUEUED", planned_calls=event.planned_calls or state.planned_calls)
    if isinstance(event, runs_pb2.RunStarted):
        return replace(state, status="RUNNING", started_at=at)
    if isinstance(event, runs_pb2.CallRecorded):
        return replace(state, calls=(*state.calls, event.call))
    if isinstance(event, runs_pb2.RunStopRequested):
        return replace(state, status="STOPPING", stop_requested=True)
    if isinstance(event, runs_pb2.RunCompleted):
        return replace(state, status="COMPLETED", stopped_at=at, summary=event.summary, passed=event.passed,
                       result_description=event.result_description)
    if isinstance(event, runs_pb2.RunFailed):
        return replace(state, status="FAILED", stopped_at=at, summary=event.summary, passed=False,
                       result_description=event.result_description)
    if isinstance(event, runs_pb2.RunCancelled):
        return replace(state, status="CANCELLED", stopped_at=at, summary=event.summary, passed=False,
                       result_description=event.result_description)
    if isinstance(event, runs_pb2.RunKioskLinkCreated):
        return replace(state, kiosk_hashes=(*state.kiosk_hashes, event.token_sha256))
    if isinstance(event, runs_pb2.RunKioskLinkRevoked):
        return replace(state, kiosk_hashes=tuple(h for h in state.kiosk_hashes if h != event.token_sha256))
    return state


# ---------------------------------------------------------------- decide: projects

_SLUG = re.compile(r"[^a-z0-9]+")
_SLUG_OK = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def slugify(name: str) -> str:
    return _SLUG.sub("-", name.lower()).strip("-")[:64] or "project"


def _check_mode(mode: str, v: ValidationCollector) -> None:
    if mode not in ("live", "test"):
        v.add(["mode"], "live or test")


def decide_create_project(state: Project | None, cmd: CreateProject, slug_taken: bool = False) -> list[Message]:
    """`slug_taken`: another project of the account (and mode) already has the slug."""
    if state is not None:
        raise Conflict(f"project {cmd.project_id} exists")
    v = ValidationCollector()
    name = cmd.name.strip()
    if not name:
        v.add(["name"], "a project needs a name", "missing")
    elif len(name) > 200:
        v.add(["name"], "at most 200 characters")
    slug = cmd.slug or slugify(name)
    if cmd.slug and not _SLUG_OK.fullmatch(cmd.slug):
        v.add(["slug"], "lower-case letters, digits and '-', at most 64")
    _validate_metadata(cmd.metadata, v)
    _check_mode(cmd.mode, v)
    v.raise_if_any()
    if slug_taken:
        raise Conflict(f"another project already has the slug {slug!r}")
    return [runs_pb2.ProjectCreated(project_id=cmd.project_id, account_id=cmd.account_id, name=name, slug=slug,
                                    metadata=cmd.metadata, mode=cmd.mode)]


def decide_update_project(state: Project | None, cmd: UpdateProject, slug_taken: bool = False) -> list[Message]:
    if not owned(state, cmd.account_id, cmd.mode):
        raise NotFound("project", cmd.project_id)
    v = ValidationCollector()
    name = state.name if cmd.name is None else cmd.name.strip()
    if not name:
        v.add(["name"], "a project needs a name", "missing")
    elif len(name) > 200:
        v.add(["name"], "at most 200 characters")
    slug = state.slug if cmd.slug is None else cmd.slug
    if cmd.slug is not None and not _SLUG_OK.fullmatch(cmd.slug):
        v.add(["slug"], "lower-case letters, digits and '-', at most 64")
    metadata = state.metadata if cmd.metadata is None else cmd.metadata
    _validate_metadata(metadata, v)
    v.raise_if_any()
    if slug_taken and slug != state.slug:
        raise Conflict(f"another project already has the slug {slug!r}")
    if (name, slug, metadata) == (state.name, state.slug, state.metadata):
        return []
    return [runs_pb2.ProjectUpdated(project_id=state.id, name=name, slug=slug, metadata=metadata)]


def decide_delete_project(state: Project | None, cmd: DeleteProject) -> list[Message]:
    if not owned(state, cmd.account_id, cmd.mode):
        raise NotFound("project", cmd.project_id)
    return [runs_pb2.ProjectDeleted(project_id=state.id)]


def evolve_slug(state: str | None, event: Message, at: datetime | None = None) -> str | None:
    """The state of a slug claim stream: the id of the project holding the slug, or None."""
    if isinstance(event, runs_pb2.ProjectSlugClaimed):
        return event.project_id
    if isinstance(event, runs_pb2.ProjectSlugReleased) and state == event.project_id:
        return None
    return state


def decide_claim_slug(holder: str | None, project_id: str, slug: str) -> list[Message]:
    if holder == project_id:
        return []
    if holder is not None:
        raise Conflict(f"another project already has the slug {slug!r}")
    return [runs_pb2.ProjectSlugClaimed(project_id=project_id, slug=slug)]


def decide_release_slug(holder: str | None, project_id: str, slug: str) -> list[Message]:
    return [runs_pb2.ProjectSlugReleased(project_id=project_id, slug=slug)] if holder == project_id else []


# ---------------------------------------------------------------- decide: tests


def _validate_test(name: str, spec: spec_pb2.TestSpec, metadata: dict[str, str], resources: Resources | None,
                   v: ValidationCollector) -> None:
    resources = resources or Resources()
    if not name:
        v.add(["name"], "a test needs a name", "missing")
    elif len(name) > 200:
        v.add(["name"], "at most 200 characters")
    specs.validate(spec, v, [], resources.registrars.keys(), resources.pools.keys())
    _validate_metadata(metadata, v)


def decide_create_test(project: Project | None, state: Test | None, cmd: CreateTest,
                       resources: Resources | None = None) -> list[Message]:
    """`resources`: the registrars and credential pools of the project the spec may name."""
    if not owned(project, cmd.account_id, cmd.mode):
        raise NotFound("project", cmd.project_id)
    if state is not None:
        raise Conflict(f"test {cmd.test_id} exists")
    v = ValidationCollector()
    _validate_test(cmd.name.strip(), cmd.spec, cmd.metadata, resources, v)
    v.raise_if_any()
    return [runs_pb2.TestCreated(test_id=cmd.test_id, project_id=cmd.project_id, account_id=cmd.account_id,
                                 name=cmd.name.strip(), spec=specs.with_defaults(cmd.spec), metadata=cmd.metadata,
                                 mode=cmd.mode)]


def _test_in(state: Test | None, test_id: str, project_id: str, account_id: str, mode: str) -> Test:
    if not owned(state, account_id, mode) or state.project_id != project_id:
        raise NotFound("test", test_id)
    return state


def decide_update_test(state: Test | None, cmd: UpdateTest, resources: Resources | None = None) -> list[Message]:
    test = _test_in(state, cmd.test_id, cmd.project_id, cmd.account_id, cmd.mode)
    name = test.name if cmd.name is None else cmd.name.strip()
    spec = spec_pb2.TestSpec()
    spec.steps.extend(test.spec.steps if cmd.steps is None else cmd.steps.steps)
    if cmd.assertions is not None:
        spec.assertions.extend(cmd.assertions.assertions)
    else:
        spec.assertions.extend(test.spec.assertions)
    metadata = test.metadata if cmd.metadata is None else cmd.metadata
    v = ValidationCollector()
    _validate_test(name, spec, metadata, resources, v)
    v.raise_if_any()
    spec = specs.with_defaults(spec)
    if (name, spec, metadata) == (test.name, test.spec, test.metadata):
        return []
    return [runs_pb2.TestUpdated(test_id=test.id, name=name, spec=spec, metadata=metadata)]


def decide_delete_test(state: Test | None, cmd: DeleteTest) -> list[Message]:
    test = _test_in(state, cmd.test_id, cmd.project_id, cmd.account_id, cmd.mode)
    return [runs_pb2.TestDeleted(test_id=test.id, project_id=test.project_id)]


# ---------------------------------------------------------------- decide: registrars and credential pools

_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9\-.]{0,252}))$")


def _validate_registrar(name: str, host: str, port: int, transport: str, domain: str,
                        v: ValidationCollector) -> None:
    if not name.strip():
        v.add(["name"], "a registrar needs a name", "missing")
    elif len(name) > 200:
        v.add(["name"], "at most 200 characters")
    if not host:
        v.add(["host"], "a registrar needs a host (name or IP address)", "missing")
    elif not _HOST.match(host):
        v.add(["host"], f"{host!r} is not a host name or IP address")
    if not 1 <= port <= 65535:
        v.add(["port"], "a port between 1 and 65535")
    if transport not in specs.TRANSPORTS:
        v.add(["transport"], "udp or tcp")
    if domain and not _HOST.match(domain):
        v.add(["domain"], f"{domain!r} is not a SIP domain")


def decide_create_registrar(project: Project | None, state: Registrar | None, cmd: CreateRegistrar) -> list[Message]:
    if not owned(project, cmd.account_id, cmd.mode):
        raise NotFound("project", cmd.project_id)
    if state is not None:
        raise Conflict(f"registrar {cmd.registrar_id} exists")
    f = cmd.fields
    name, host, port = (f.name or "").strip(), (f.host or "").strip(), 5060 if f.port is None else f.port
    transport, domain = f.transport or "udp", (f.domain or "").strip()
    v = ValidationCollector()
    _validate_registrar(name, host, port, transport, domain, v)
    v.raise_if_any()
    return [runs_pb2.RegistrarCreated(registrar_id=cmd.registrar_id, project_id=cmd.project_id,
                                      account_id=cmd.account_id, mode=cmd.mode, name=name, host=host, port=port,
                                      transport=transport, domain=domain or host)]


def _registrar_in(state: Registrar | None, rid: str, project_id: str, account_id: str, mode: str) -> Registrar:
    if not owned(state, account_id, mode) or state.project_id != project_id:
        raise NotFound("registrar", rid)
    return state


def decide_update_registrar(state: Registrar | None, cmd: UpdateRegistrar) -> list[Message]:
    r = _registrar_in(state, cmd.registrar_id, cmd.project_id, cmd.account_id, cmd.mode)
    f = cmd.fields
    name = r.name if f.name is None else f.name.strip()
    host = r.host if f.host is None else f.host.strip()
    port = r.port if f.port is None else f.port
    transport = r.transport if f.transport is None else f.transport
    domain = r.domain if f.domain is None else f.domain.strip()
    v = ValidationCollector()
    _validate_registrar(name, host, port, transport, domain, v)
    v.raise_if_any()
    if (name, host, port, transport, domain) == (r.name, r.host, r.port, r.transport, r.domain):
        return []
    return [runs_pb2.RegistrarUpdated(registrar_id=r.id, name=name, host=host, port=port, transport=transport,
                                      domain=domain or host)]


def decide_delete_registrar(state: Registrar | None, cmd: DeleteResource, used_by: tuple[str, ...] = ()) -> list[Message]:
    """`used_by`: names of the tests that name this registrar (it cannot go while they do)."""
    r = _registrar_in(state, cmd.resource_id, cmd.project_id, cmd.account_id, cmd.mode)
    if used_by:
        raise Conflict(f"registrar {r.id} is used by test(s) {', '.join(used_by)}: change them first")
    return [runs_pb2.RegistrarDeleted(registrar_id=r.id, project_id=r.project_id)]


_USER = re.compile(r"^[A-Za-z0-9._~+\-!$&'()*,;=%]{1,128}$")


def _validate_pool(name: str, creds: tuple[Credential, ...], v: ValidationCollector) -> None:
    if not name.strip():
        v.add(["name"], "a credential pool needs a name", "missing")
    elif len(name) > 200:
        v.add(["name"], "at most 200 characters")
    if len(creds) > 10_000:
        v.add(["credentials"], "at most 10000 users per pool")
    seen: set[str] = set()
    for i, c in enumerate(creds):
        if not _USER.match(c.username):
            v.add(["credentials", i, "username"], "1 to 128 characters of a SIP user part", "missing"
                  if not c.username else "value_error")
        elif c.username in seen:
            v.add(["credentials", i, "username"], f"{c.username!r} appears twice in the pool")
        seen.add(c.username)
        if c.auth_username and not _USER.match(c.auth_username):
            v.add(["credentials", i, "authUsername"], "1 to 128 characters of a SIP user part")
        if c.domain and not _HOST.match(c.domain):
            v.add(["credentials", i, "domain"], f"{c.domain!r} is not a SIP domain")
        if not c.password_ciphertext:
            v.add(["credentials", i, "password"], "a SIP user needs a password", "missing")


def decide_create_pool(project: Project | None, state: CredentialPool | None,
                       cmd: CreateCredentialPool) -> list[Message]:
    if not owned(project, cmd.account_id, cmd.mode):
        raise NotFound("project", cmd.project_id)
    if state is not None:
        raise Conflict(f"credential pool {cmd.pool_id} exists")
    v = ValidationCollector()
    _validate_pool(cmd.name, cmd.credentials, v)
    v.raise_if_any()
    return [runs_pb2.CredentialPoolCreated(pool_id=cmd.pool_id, project_id=cmd.project_id, account_id=cmd.account_id,
                                           mode=cmd.mode, name=cmd.name.strip(), credentials=_stored(cmd.credentials))]


def _pool_in(state: CredentialPool | None, pid: str, project_id: str, account_id: str, mode: str) -> CredentialPool:
    if not owned(state, account_id, mode) or state.project_id != project_id:
        raise NotFound("credential pool", pid)
    return state


def decide_update_pool(state: CredentialPool | None, cmd: UpdateCredentialPool) -> list[Message]:
    """A credential sent without a password keeps the password stored for its username."""
    pool = _pool_in(state, cmd.pool_id, cmd.project_id, cmd.account_id, cmd.mode)
    name = pool.name if cmd.name is None else cmd.name.strip()
    creds = pool.credentials
    if cmd.credentials is not None:
        stored = {c.username: c.password_ciphertext for c in pool.credentials}
        creds = tuple(c if c.password_ciphertext else replace(c, password_ciphertext=stored.get(c.username, ""))
                      for c in cmd.credentials)
    v = ValidationCollector()
    _validate_pool(name, creds, v)
    v.raise_if_any()
    if (name, creds) == (pool.name, pool.credentials):
        return []
    return [runs_pb2.CredentialPoolUpdated(pool_id=pool.id, name=name, credentials=_stored(creds))]


def decide_delete_pool(state: CredentialPool | None, cmd: DeleteResource, used_by: tuple[str, ...] = ()) -> list[Message]:
    pool = _pool_in(state, cmd.resource_id, cmd.project_id, cmd.account_id, cmd.mode)
    if used_by:
        raise Conflict(f"credential pool {pool.id} is used by test(s) {', '.join(used_by)}: change them first")
    return [runs_pb2.CredentialPoolDeleted(pool_id=pool.id, project_id=pool.project_id)]


# ---------------------------------------------------------------- decide: runs


def _resolve(spec: spec_pb2.TestSpec, resources: Resources) -> tuple[list, list]:
    target_ids, pool_ids = specs.pool_refs(spec)
    targets = []
    for rid in target_ids:
        r = resources.registrars[rid]
        targets.append(spec_pb2.ResolvedTarget(id=r.id, host=r.host, port=r.port, transport=r.transport,
                                               domain=r.domain))
    pools = []
    for pid in pool_ids:
        pool = resources.pools[pid]
        pools.append(spec_pb2.ResolvedPool(id=pool.id, credentials=[
            spec_pb2.ResolvedCredential(username=c.username, auth_username=c.auth_username or c.username,
                                        domain=c.domain) for c in pool.credentials]))
    return targets, pools


def decide_start_run(test: Test | None, state: Run | None, cmd: StartRun,
                     resources: Resources | None = None) -> list[Message]:
    """Snapshot the test with the overrides applied, resolve the pools it names (usernames only)."""
    if not owned(test, cmd.account_id, cmd.mode) or test.project_id != cmd.project_id:
        raise NotFound("test", cmd.test_id)
    if state is not None:
        raise Conflict(f"run {cmd.run_id} exists")
    resources = resources or Resources()
    v = ValidationCollector()
    _validate_metadata(cmd.metadata, v)
    _check_mode(cmd.mode, v)
    if len(cmd.tags) > 20 or any(not t or len(t) > 64 for t in cmd.tags):
        v.add(["tags"], "at most 20 tags of 1 to 64 characters")
    spec, where = overrides_mod.apply_overrides(test.spec, cmd.overrides, v)
    if not v.errors:
        checked = ValidationCollector()
        specs.validate(spec, checked, [], resources.registrars.keys(), resources.pools.keys())
        for e in checked.errors:
            key = where.get(tuple(e.loc))
            v.add([key] if key else e.loc, e.msg, e.type)
    v.raise_if_any()
    targets, pools = _resolve(spec, resources)
    events: list[Message] = [runs_pb2.RunRequested(
        run_id=cmd.run_id, project_id=cmd.project_id, test_id=cmd.test_id, account_id=cmd.account_id,
        test_name=test.name, spec=spec, metadata=cmd.metadata, tags=list(cmd.tags), mode=cmd.mode,
        targets=targets, pools=pools)]
    if cmd.kiosk_token_sha256:
        events.append(runs_pb2.RunKioskLinkCreated(run_id=cmd.run_id, token_sha256=cmd.kiosk_token_sha256))
    return events


def decide_stop_run(state: Run | None, cmd: StopRun) -> list[Message]:
    """A run not yet taken by an engine ends at once; one in flight goes STOPPING until the engine
    reports its end. Stopping a stopping run changes nothing; a finished one cannot be stopped."""
    if not owned(state, cmd.account_id, cmd.mode):
        raise NotFound("run", cmd.run_id)
    if state.finished:
        raise Conflict(f"run {state.id} already ended ({state.status})")
    if state.stop_requested:
        return []
    events: list[Message] = [runs_pb2.RunStopRequested(run_id=state.id, reason=cmd.reason)]
    if state.status == "PENDING":
        events.append(runs_pb2.RunCancelled(run_id=state.id, summary=m_pb2.RunSummary(),
                                            result_description=f"cancelled before it started: {cmd.reason}"))
    return events


def decide_revoke_kiosk(state: Run | None, cmd: RevokeKioskLinks) -> list[Message]:
    if not owned(state, cmd.account_id, cmd.mode):
        raise NotFound("run", cmd.run_id)
    return [runs_pb2.RunKioskLinkRevoked(run_id=state.id, token_sha256=h) for h in state.kiosk_hashes]


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
        if state.stop_requested:
            return [runs_pb2.RunCancelled(run_id=state.id, summary=event.summary,
                                          result_description=f"stopped on request after "
                                                             f"{event.summary.calls_attempted} call(s)")]
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

