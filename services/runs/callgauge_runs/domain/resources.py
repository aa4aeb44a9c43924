"""What a project owns that tests refer to: registrars (SIP targets) and credential pools (SIP users).
Deciders: `evolve(state, event) -> state`, `decide_*(state, command) -> [events]`; pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from google.protobuf.message import Message

from callgauge_proto.callgauge.events.v1 import runs_pb2

from callgauge_platform.destinations import DialPolicy

from callgauge_runs.domain import spec as specs
from callgauge_runs.domain.common import owned
from callgauge_runs.domain.errors import Conflict, NotFound, ValidationCollector
from callgauge_runs.domain.project import Project


@dataclass(frozen=True)
class RegistrarFields:
    name: str | None = None
    host: str | None = None
    port: int | None = None
    transport: str | None = None
    domain: str | None = None
    tls_verify: bool | None = None


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
    tls_verify: bool = True  # transport tls: the media engine checks the registrar's certificate


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


def evolve_registrar(state: Registrar | None, event: Message, at: datetime | None = None) -> Registrar | None:
    if isinstance(event, runs_pb2.RegistrarCreated):
        return Registrar(event.registrar_id, event.project_id, event.account_id, event.mode or "live", event.name,
                         event.host, event.port, event.transport, event.domain, at,
                         tls_verify=event.tls_verify if event.HasField("tls_verify") else True)
    if state is None:
        return None
    if isinstance(event, runs_pb2.RegistrarUpdated):
        return replace(state, name=event.name, host=event.host, port=event.port, transport=event.transport,
                       domain=event.domain, tls_verify=event.tls_verify if event.HasField("tls_verify") else True)
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


_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9\-.]{0,252}))$")


def _validate_registrar(name: str, host: str, port: int, transport: str, domain: str,
                        v: ValidationCollector, dial: DialPolicy | None = None) -> None:
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
    elif dial is not None and host and _HOST.match(host):
        refusal = dial.static_refusal(host.strip("[]"), port)
        if refusal:
            v.add(["port" if refusal.startswith("port") else "host"],
                  f"{host}:{port} is not an allowed destination: {refusal}", "destination_denied")
    if transport not in specs.TRANSPORTS:
        v.add(["transport"], "udp, tcp or tls")
    if domain and not _HOST.match(domain):
        v.add(["domain"], f"{domain!r} is not a SIP domain")


def decide_create_registrar(project: Project | None, state: Registrar | None, cmd: CreateRegistrar,
                            dial: DialPolicy | None = None) -> list[Message]:
    if not owned(project, cmd.account_id, cmd.mode):
        raise NotFound("project", cmd.project_id)
    if state is not None:
        raise Conflict(f"registrar {cmd.registrar_id} exists")
    f = cmd.fields
    transport, domain = f.transport or "udp", (f.domain or "").strip()
    default_port = 5061 if transport == "tls" else 5060  # RFC 3261 §26.2: SIP over TLS listens on 5061
    name, host, port = (f.name or "").strip(), (f.host or "").strip(), default_port if f.port is None else f.port
    v = ValidationCollector()
    _validate_registrar(name, host, port, transport, domain, v, dial)
    v.raise_if_any()
    return [runs_pb2.RegistrarCreated(registrar_id=cmd.registrar_id, project_id=cmd.project_id,
                                      account_id=cmd.account_id, mode=cmd.mode, name=name, host=host, port=port,
                                      transport=transport, domain=domain or host,
                                      tls_verify=True if f.tls_verify is None else f.tls_verify)]


def _registrar_in(state: Registrar | None, account_id: str, mode: str, project_id: str, rid: str) -> Registrar:
    if not owned(state, account_id, mode) or state.project_id != project_id:
        raise NotFound("registrar", rid)
    return state


def decide_update_registrar(state: Registrar | None, cmd: UpdateRegistrar, dial: DialPolicy | None = None) -> list[Message]:
    r = _registrar_in(state, cmd.account_id, cmd.mode, cmd.project_id, cmd.registrar_id)
    f = cmd.fields
    name = r.name if f.name is None else f.name.strip()
    host = r.host if f.host is None else f.host.strip()
    port = r.port if f.port is None else f.port
    transport = r.transport if f.transport is None else f.transport
    domain = r.domain if f.domain is None else f.domain.strip()
    tls_verify = r.tls_verify if f.tls_verify is None else f.tls_verify
    v = ValidationCollector()
    _validate_registrar(name, host, port, transport, domain, v, dial)
    v.raise_if_any()
    if (name, host, port, transport, domain, tls_verify) == (r.name, r.host, r.port, r.transport, r.domain,
                                                             r.tls_verify):
        return []
    return [runs_pb2.RegistrarUpdated(registrar_id=r.id, name=name, host=host, port=port, transport=transport,
                                      domain=domain or host, tls_verify=tls_verify)]


def decide_delete_registrar(state: Registrar | None, cmd: DeleteResource, used_by: tuple[str, ...] = ()) -> list[Message]:
    """`used_by`: names of the tests that name this registrar (it cannot go while they do)."""
    r = _registrar_in(state, cmd.account_id, cmd.mode, cmd.project_id, cmd.resource_id)
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


def _pool_in(state: CredentialPool | None, account_id: str, mode: str, project_id: str, pid: str) -> CredentialPool:
    if not owned(state, account_id, mode) or state.project_id != project_id:
        raise NotFound("credential pool", pid)
    return state


def decide_update_pool(state: CredentialPool | None, cmd: UpdateCredentialPool) -> list[Message]:
    """A credential sent without a password keeps the password stored for its username."""
    pool = _pool_in(state, cmd.account_id, cmd.mode, cmd.project_id, cmd.pool_id)
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
    pool = _pool_in(state, cmd.account_id, cmd.mode, cmd.project_id, cmd.resource_id)
    if used_by:
        raise Conflict(f"credential pool {pool.id} is used by test(s) {', '.join(used_by)}: change them first")
    return [runs_pb2.CredentialPoolDeleted(pool_id=pool.id, project_id=pool.project_id)]
