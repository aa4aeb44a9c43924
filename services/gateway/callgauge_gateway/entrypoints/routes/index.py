"""Where Sipfront's clients start: `GET /api/v1/` (an index: the API's version, who the caller is,
links to everything else) and `GET /api/v1/tests` (every test of the caller's account and mode,
across projects, with its steps and the `step.N.M.<attr>` parameters a run may override)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from fastapi import APIRouter
from google.protobuf.descriptor import FieldDescriptor

from callgauge_gateway.entrypoints.envelope import ok, page
from callgauge_gateway.entrypoints.deps import Runs, SettingsDep
from callgauge_gateway.entrypoints.routes._common import Auth, Page
from callgauge_gateway.entrypoints.routes.projects import test_json
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb

router = APIRouter(prefix="/api/v1", tags=["index"])

API_VERSION = "v1"

# How the runs service coerces an override's text (callgauge_runs.domain.overrides): by the
# protobuf type of the action's field.
_TYPES = {
    FieldDescriptor.TYPE_STRING: "string", FieldDescriptor.TYPE_BOOL: "boolean",
    FieldDescriptor.TYPE_DOUBLE: "number", FieldDescriptor.TYPE_FLOAT: "number",
    FieldDescriptor.TYPE_UINT32: "integer", FieldDescriptor.TYPE_UINT64: "integer",
    FieldDescriptor.TYPE_INT32: "integer", FieldDescriptor.TYPE_INT64: "integer",
}


def _version() -> str:
    try:
        return metadata.version("callgauge")
    except metadata.PackageNotFoundError:
        return "unknown"


def overridable_parameters(spec: spec_pb2.TestSpec) -> list[dict[str, Any]]:
    """Every `step.N.M.<attr>` a run of this test may override, with its type and the test's value:
    the scalar fields of each action's message (the attribute names ARE the field names)."""
    out: list[dict[str, Any]] = []
    for si, step in enumerate(spec.steps):
        for ai, action in enumerate(step.actions):
            kind = action.WhichOneof("kind")
            if kind is None:
                continue
            body = getattr(action, kind)
            for fd in body.DESCRIPTOR.fields:
                typ = _TYPES.get(fd.type)
                if typ is None or fd.is_repeated:
                    continue
                value = getattr(body, fd.name)
                out.append({"name": f"step.{si}.{ai}.{fd.name}", "action": kind, "type": typ,
                            "value": round(value, 6) if isinstance(value, float) else value})
    return out


@router.get("/", summary="The API's index: version, the caller's account and mode, links",
            description="Where a client starts (Sipfront's `GET /api/v2/`): what this API is, who the key "
                        "belongs to, and where its resources are.")
async def index(who: Auth, settings: SettingsDep):
    base = settings.gateway_url()
    api = f"{base}/api/v1"
    return ok({
        "name": "Callgauge API",
        "version": API_VERSION,
        "serverVersion": _version(),
        "account": {"id": who.account_id, "mode": who.mode, "credential": who.kind},
        "links": {
            "self": f"{api}/",
            "tests": f"{api}/tests",
            "runTest": f"{api}/tests/run",
            "runStatus": f"{api}/runs/{{runId}}/status",
            "projects": f"{api}/projects",
            "testRuns": f"{api}/projects/{{projectId}}/test-runs",
            "runCalls": f"{api}/projects/{{projectId}}/test-runs/{{runId}}/calls",
            "me": f"{api}/users/me",
            "apiKeys": f"{api}/api-keys",
            "wallet": f"{api}/billing/wallet",
            "openapi": f"{api}/openapi.json",
            "docs": f"{base}/api/docs",
            "reports": f"{base}/reports/runs/{{runId}}",
        },
    })


@router.get("/tests", summary="Every test of the account, across projects, with its overridable parameters",
            description="Sipfront's `GET /tests`: each test with its project, steps, assertions and `parameters` — "
                        "the `step.N.M.<attr>` keys a run (`POST /tests/run`) may override, with their type and "
                        "the test's own value. Ordered by project, then test id; paginated.")
async def all_tests(who: Auth, runs: Runs, paging: Page):
    resp = await runs.ListTests(pb.ListTestsRequest(
        account_id=who.account_id, mode=who.mode, project_id="", page=paging.page, per_page=paging.per_page))
    items = []
    for t in resp.tests:
        d = test_json(t)
        d["parameters"] = overridable_parameters(t.spec)
        items.append(d)
    return page(items, paging.page, paging.per_page, resp.total)
