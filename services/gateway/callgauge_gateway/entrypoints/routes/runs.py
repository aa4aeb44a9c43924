"""Runs: start (CallMeter's `POST /projects/{id}/tests/{id}/run` and Sipfront's `POST /tests/run`,
both form-encoded or JSON, with `step.N.M.attr` overrides), detail, list, Sipfront status, stop,
kiosk links."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from callgauge_gateway.domain.proto_json import to_json
from callgauge_gateway.entrypoints.envelope import ok, page
from callgauge_gateway.entrypoints.deps import Runs, gateway_of
from callgauge_gateway.entrypoints.errors import ApiError
from callgauge_gateway.entrypoints.routes._common import Auth, BodyLocRoute, Page
from callgauge_gateway.domain.schemas import METADATA_KEY_MAX, METADATA_MAX_KEYS, METADATA_VALUE_MAX
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb
from callgauge_platform.run_states import TERMINAL
from callgauge_platform.timestamps import iso_field, timestamp_of

router = APIRouter(prefix="/api/v1", tags=["runs"], route_class=BodyLocRoute)

_RUN_BODY_DOC = {
    "type": "object",
    "properties": {
        "test.name": {"type": "string", "description": "POST /tests/run: the test by name"},
        "test.id": {"type": "string", "description": "POST /tests/run: the test by id"},
        "project.id": {"type": "string", "description": "POST /tests/run: the project whose test.name is meant, "
                       "when several projects have a test of that name"},
        "report.mode": {"type": "string", "enum": ["kiosk"], "description": "also mint a public report link"},
        "tags": {"type": "array", "items": {"type": "string"}, "description": "or a comma-separated string"},
        "metadata": {"type": "object", "maxProperties": METADATA_MAX_KEYS,
                     "propertyNames": {"minLength": 1, "maxLength": METADATA_KEY_MAX},
                     "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_MAX}},
    },
    "patternProperties": {r"^step\.\d+\.\d+\.[a-z_]+$": {"type": ["string", "number", "boolean"]}},
    "additionalProperties": False,
    "example": {"step.0.0.dial_destination": "sip:echo@127.0.0.1:5070", "step.0.0.max_total_calls": 2,
                "report.mode": "kiosk", "tags": ["ci"]},
}
_RUN_BODY = {"requestBody": {"required": False, "content": {
    "application/json": {"schema": _RUN_BODY_DOC},
    "application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": {"type": "string"}}},
    "multipart/form-data": {"schema": {"type": "object", "additionalProperties": {"type": "string"}}},
}}}


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


async def _run_body(request: Request) -> list[tuple[str, Any]]:
    """The body as (key, value) pairs: a JSON object, or a form (urlencoded or multipart)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if not raw.strip():
        return []
    if ctype in ("application/json", "") or ctype.endswith("+json"):
        try:
            data = json.loads(raw)
        except ValueError:
            raise ApiError(400, "The body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(422, "The body must be a JSON object",
                           [{"loc": [], "msg": "expected an object", "type": "type_error"}])
        return list(data.items())
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        # an uploaded file is not a value: it is reported like any other wrong value
        return [(k, v if isinstance(v, str) else b"<file>") for k, v in form.multi_items()]
    raise ApiError(415, f"Send JSON or a form, not {ctype}")


def _start_request(pairs: list[tuple[str, Any]], who, by_name: bool) -> pb.StartRunRequest:
    req = pb.StartRunRequest(account_id=who.account_id, mode=who.mode)
    errors: list[dict] = []

    def bad(key: str, msg: str, type_: str = "value_error") -> None:
        errors.append({"loc": [key], "msg": msg, "type": type_})

    for key, value in pairs:
        if key.startswith("step."):
            text = _text(value)
            if text is None:
                bad(key, "an override is one value: text, a number or true/false", "type_error")
            else:
                req.overrides[key] = text
        elif key == "report.mode":
            if value != "kiosk":
                bad(key, "kiosk, or leave it out")
            req.report_mode = "kiosk"
        elif key == "tags":
            if isinstance(value, list) and all(isinstance(t, str) for t in value):
                req.tags.extend(value)
            elif isinstance(value, str):
                req.tags.extend(t.strip() for t in value.split(",") if t.strip())
            else:
                bad(key, "a list of strings, or a comma-separated string", "type_error")
        elif key == "metadata" and isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(v, str):
                    errors.append({"loc": ["metadata", k], "msg": "metadata values are strings", "type": "type_error"})
                else:
                    req.metadata[k] = v
        elif key.startswith("metadata.") and isinstance(value, str):
            req.metadata[key.removeprefix("metadata.")] = value
        elif by_name and key in ("test.name", "test.id", "project.id") and isinstance(value, str) and value:
            setattr(req, {"test.name": "test_name", "test.id": "test_id", "project.id": "project_id"}[key], value)
        else:
            bad(key, "unknown field: expected step.N.M.<attribute>, report.mode, tags or metadata"
                     + (", test.name, test.id or project.id" if by_name else ""), "extra_forbidden")
    if len(req.overrides) > 500:
        bad("step", f"at most 500 overrides ({len(req.overrides)} sent)")
    if by_name and not (req.test_name or req.test_id):
        bad("test.name", "name the test: test.name or test.id", "missing")
    if errors:
        raise ApiError(422, "The request is not valid: see details", errors)
    return req


def _urls(request: Request, run_id: str) -> tuple[str, str]:
    base = gateway_of(request).settings.gateway_url()
    return f"{base}/reports/runs/{run_id}", f"{base}/api/v1/runs/{run_id}/status"


def _started(r: pb.Run, request: Request) -> dict:
    report_url, status_url = _urls(request, r.id)
    out = {"testRunId": r.id, "status": pb.RunStatus.Name(r.status), "projectId": r.project_id,
           "testId": r.test_id, "report_url": report_url, "session_id": r.id, "status_url": status_url}
    if r.kiosk_token:
        out["kiosk_url"] = f"{gateway_of(request).settings.gateway_url()}/reports/kiosk/{r.kiosk_token}"
    return out


def run_json(r: pb.Run, request: Request) -> dict:
    d = to_json(r)
    for k in ("accountId", "kioskToken", "calls"):  # a run's calls are paged: GET …/test-runs/{id}/calls
        d.pop(k, None)
    d["testRunId"] = r.id
    d["reportUrl"], d["statusUrl"] = _urls(request, r.id)
    return d


@router.post("/projects/{project_id}/tests/{test_id}/run", status_code=201, summary="Run a test",
             openapi_extra=_RUN_BODY,
             description="Returns at once with the run's id and status PENDING; poll the run to follow it. "
                         "Optional body (JSON or form): `step.N.M.<attr>` overrides, `report.mode=kiosk`, "
                         "`tags`, `metadata`.")
async def run_test(project_id: str, test_id: str, request: Request, who: Auth, runs: Runs):
    req = _start_request(await _run_body(request), who, by_name=False)
    req.project_id, req.test_id = project_id, test_id
    return ok(_started(await runs.StartRun(req), request), 201)


@router.post("/tests/run", status_code=201, summary="Run a test by name or id (Sipfront)",
             openapi_extra=_RUN_BODY,
             description="Form-encoded or JSON: `test.name` or `test.id` (optionally `project.id` when names "
                         "repeat across projects), `step.N.M.<attr>` overrides, `report.mode=kiosk`, `tags`, "
                         "`metadata`.")
async def run_by_name(request: Request, who: Auth, runs: Runs):
    req = _start_request(await _run_body(request), who, by_name=True)
    return ok(_started(await runs.StartRun(req), request), 201)


@router.get("/projects/{project_id}/test-runs/{run_id}",
            summary="Get a run: its status, summary and counts (its calls: …/calls, never here)",
            description="The run's size does not depend on its number of calls: page through them with "
                        "`GET …/test-runs/{runId}/calls`, or export them (`…/calls.csv`, `…/calls.parquet`).")
async def get_run(project_id: str, run_id: str, request: Request, who: Auth, runs: Runs):
    r = await runs.GetRun(pb.GetRunRequest(account_id=who.account_id, mode=who.mode,
                                                         project_id=project_id, run_id=run_id))
    return ok(run_json(r, request))


_STATUSES = tuple(pb.RunStatus.keys()[1:])


@router.get("/projects/{project_id}/test-runs", summary="List a project's runs, newest first")
async def list_runs(project_id: str, request: Request, who: Auth, runs: Runs, paging: Page,
                    test_id: Annotated[str | None, Query(alias="testId", max_length=100)] = None,
                    status: Annotated[str | None, Query(description=" | ".join(_STATUSES))] = None,
                    created_from: Annotated[datetime | None, Query(alias="from")] = None,
                    created_to: Annotated[datetime | None, Query(alias="to")] = None):
    if status is not None and status.upper() not in _STATUSES:
        raise ApiError(422, "The request is not valid: see details",
                       [{"loc": ["query", "status"], "msg": "one of " + ", ".join(_STATUSES), "type": "enum"}])
    req = pb.ListRunsRequest(account_id=who.account_id, mode=who.mode, project_id=project_id, page=paging.page,
                             per_page=paging.per_page, test_id=test_id or "", status=(status or "").upper())
    for field, value in (("created_from", created_from), ("created_to", created_to)):
        if value is not None:
            if value.tzinfo is None:
                raise ApiError(422, "The request is not valid: see details", [{
                    "loc": ["query", "from" if field == "created_from" else "to"],
                    "msg": "give a time zone, e.g. 2026-01-01T00:00:00Z", "type": "value_error"}])
            getattr(req, field).CopyFrom(timestamp_of(value))
    resp = await runs.ListRuns(req)
    return page([run_json(r, request) for r in resp.runs], paging.page, paging.per_page, resp.total)


def status_json(r: pb.Run, request: Request) -> dict:
    """Sipfront's run status: running until the run ends, then passed or failed."""
    name = pb.RunStatus.Name(r.status)
    finished = name in TERMINAL
    passed = name == "COMPLETED" and r.passed
    report_url, _ = _urls(request, r.id)
    return {
        "id": r.id, "session_id": r.id,
        "status": ("passed" if passed else "failed") if finished else "running",
        "state": name,
        "has_passed": passed, "is_failed": finished and not passed, "is_finished": finished,
        "result_description": r.result_description,
        "started_at": iso_field(r, "started_at"), "stopped_at": iso_field(r, "stopped_at"),
        "tags": list(r.tags), "test_id": r.test_id, "test_name": r.test_name,
        "project_id": r.project_id, "project_name": r.project_name, "report_url": report_url,
    }


@router.get("/runs/{run_id}/status", summary="A run's status (Sipfront shape: data.run.status running|passed|failed)")
async def run_status(run_id: str, request: Request, who: Auth, runs: Runs):
    r = await runs.GetRun(pb.GetRunRequest(account_id=who.account_id, mode=who.mode, run_id=run_id))
    return ok({"run": status_json(r, request)})


@router.post("/runs/{run_id}/stop", status_code=202,
             summary="Stop a run: its calls are hung up and it ends CANCELLED (409 when it already ended)")
async def stop_run(run_id: str, request: Request, who: Auth, runs: Runs):
    r = await runs.StopRun(pb.GetRunRequest(account_id=who.account_id, mode=who.mode, run_id=run_id))
    return ok(run_json(r, request), 202)


@router.delete("/runs/{run_id}/kiosk", status_code=204, summary="Revoke the run's public (kiosk) report links")
async def revoke_kiosk(run_id: str, who: Auth, runs: Runs):
    await runs.RevokeKioskLinks(pb.GetRunRequest(account_id=who.account_id, mode=who.mode,
                                                               run_id=run_id))
    return Response(status_code=204)
