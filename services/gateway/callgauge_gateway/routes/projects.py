"""Projects, tests and runs (CallMeter's paths)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request

from callgauge_gateway.auth import Principal, authenticate
from callgauge_gateway.envelope import ok, page, to_json
from callgauge_gateway.schemas import ProjectIn, RunIn, TestIn, spec_json
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb

router = APIRouter(prefix="/api/v1", tags=["projects"])
Auth = Annotated[Principal, Depends(authenticate)]
PageNo = Annotated[int, Query(ge=1, le=100_000)]
PerPage = Annotated[int, Query(alias="perPage", ge=1, le=100)]


def _runs(request: Request):
    return request.app.state.runs


def _project(p: pb.Project) -> dict:
    d = to_json(p)
    d.pop("accountId", None)
    return d


def _test(t: pb.Test) -> dict:
    d = to_json(t)
    d["steps"], d["assertions"] = spec_json(t.spec).values()
    d.pop("spec")
    return d


def _run(r: pb.Run, request: Request) -> dict:
    d = to_json(r)
    d["testRunId"] = r.id
    base = request.app.state.settings.gateway_url()
    d["statusUrl"] = f"{base}/api/v1/projects/{r.project_id}/test-runs/{r.id}"
    return d


@router.post("/projects", status_code=201, summary="Create a project")
async def create_project(body: ProjectIn, request: Request, who: Auth):
    p = await _runs(request).CreateProject(pb.CreateProjectRequest(
        account_id=who.account_id, name=body.name, slug=body.slug or "", metadata=body.metadata))
    return ok(_project(p), 201)


@router.get("/projects", summary="List projects")
async def list_projects(request: Request, who: Auth, page_no: Annotated[PageNo, Query(alias="page")] = 1,
                        per_page: PerPage = 25):
    resp = await _runs(request).ListProjects(pb.ListProjectsRequest(
        account_id=who.account_id, page=page_no, per_page=per_page))
    return page([_project(p) for p in resp.projects], page_no, per_page, resp.total)


@router.get("/projects/{project_id}", summary="Get a project")
async def get_project(project_id: str, request: Request, who: Auth):
    p = await _runs(request).GetProject(pb.GetProjectRequest(account_id=who.account_id, project_id=project_id))
    return ok(_project(p))


@router.post("/projects/{project_id}/tests", status_code=201, summary="Create a test")
async def create_test(project_id: str, body: TestIn, request: Request, who: Auth):
    t = await _runs(request).CreateTest(pb.CreateTestRequest(
        account_id=who.account_id, project_id=project_id, name=body.name, spec=body.spec(), metadata=body.metadata))
    return ok(_test(t), 201)


@router.get("/projects/{project_id}/tests/{test_id}", summary="Get a test")
async def get_test(project_id: str, test_id: str, request: Request, who: Auth):
    t = await _runs(request).GetTest(pb.GetTestRequest(account_id=who.account_id, project_id=project_id,
                                                       test_id=test_id))
    return ok(_test(t))


@router.post("/projects/{project_id}/tests/{test_id}/run", status_code=201, summary="Run a test",
             description="Returns at once with the run's id and status PENDING; poll the run to follow it.")
async def run_test(project_id: str, test_id: str, request: Request, who: Auth,
                   body: Annotated[RunIn | None, Body()] = None):
    body = body or RunIn()
    r = await _runs(request).StartRun(pb.StartRunRequest(
        account_id=who.account_id, project_id=project_id, test_id=test_id, metadata=body.metadata,
        tags=body.tags, mode=who.mode))
    d = _run(r, request)
    return ok({"testRunId": r.id, "status": d["status"], "statusUrl": d["statusUrl"]}, 201)


@router.get("/projects/{project_id}/test-runs/{run_id}", summary="Get a run with its calls")
async def get_run(project_id: str, run_id: str, request: Request, who: Auth):
    r = await _runs(request).GetRun(pb.GetRunRequest(account_id=who.account_id, project_id=project_id,
                                                     run_id=run_id))
    return ok(_run(r, request))


@router.get("/projects/{project_id}/test-runs", summary="List a project's runs, newest first")
async def list_runs(project_id: str, request: Request, who: Auth,
                    page_no: Annotated[PageNo, Query(alias="page")] = 1, per_page: PerPage = 25):
    resp = await _runs(request).ListRuns(pb.ListRunsRequest(account_id=who.account_id, project_id=project_id,
                                                            page=page_no, per_page=per_page))
    return page([_run(r, request) for r in resp.runs], page_no, per_page, resp.total)
