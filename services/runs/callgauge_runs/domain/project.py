"""The Project aggregate and the slug claims that keep a project's slug unique per account and mode.
Deciders: `evolve(state, event) -> state`, `decide_*(state, command) -> [events]`; pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from google.protobuf.message import Message

from callgauge_proto.callgauge.events.v1 import runs_pb2

from callgauge_runs.domain.common import check_mode, owned, validate_metadata
from callgauge_runs.domain.errors import Conflict, NotFound, ValidationCollector


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
class Project:
    id: str
    account_id: str
    name: str
    slug: str
    metadata: dict[str, str]
    created_at: datetime | None
    mode: str = "live"
    deleted: bool = False


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


_SLUG = re.compile(r"[^a-z0-9]+")
_SLUG_OK = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def slugify(name: str) -> str:
    return _SLUG.sub("-", name.lower()).strip("-")[:64] or "project"


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
    validate_metadata(cmd.metadata, v)
    check_mode(cmd.mode, v)
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
    validate_metadata(metadata, v)
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
