"""Projects and their tests (CallMeter's paths). Everything is scoped by the key's account and
mode: another account's or mode's id answers 404."""

from __future__ import annotations

from fastapi import APIRouter, Response

from callgauge_gateway.domain.proto_json import to_json
from callgauge_gateway.entrypoints.envelope import ok, page
from callgauge_gateway.entrypoints.deps import Runs
from callgauge_gateway.entrypoints.routes._common import Auth, BodyLocRoute, Page
from callgauge_gateway.domain.schemas import ProjectIn, ProjectPatch, TestIn, TestPatch, spec_json
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb

router = APIRouter(prefix="/api/v1", tags=["projects"], route_class=BodyLocRoute)


def _project(p: pb.Project) -> dict:
    d = to_json(p)
    d.pop("accountId", None)
    return d


def test_json(t: pb.Test) -> dict:
    d = to_json(t)
    d.update(spec_json(t.spec))
    d.pop("spec")
    return d


@router.post("/projects", status_code=201, summary="Create a project")
async def create_project(body: ProjectIn, who: Auth, runs: Runs):
    p = await runs.CreateProject(pb.CreateProjectRequest(
        account_id=who.account_id, mode=who.mode, name=body.name, slug=body.slug or "", metadata=body.metadata))
    return ok(_project(p), 201)


@router.get("/projects", summary="List projects")
async def list_projects(who: Auth, runs: Runs, paging: Page):
    resp = await runs.ListProjects(pb.ListProjectsRequest(
        account_id=who.account_id, mode=who.mode, page=paging.page, per_page=paging.per_page))
    return page([_project(p) for p in resp.projects], paging.page, paging.per_page, resp.total)


@router.get("/projects/{project_id}", summary="Get a project")
async def get_project(project_id: str, who: Auth, runs: Runs):
    p = await runs.GetProject(pb.GetProjectRequest(account_id=who.account_id, mode=who.mode,
                                                                 project_id=project_id))
    return ok(_project(p))


@router.patch("/projects/{project_id}", summary="Change a project's name, slug or metadata")
async def update_project(project_id: str, body: ProjectPatch, who: Auth, runs: Runs):
    req = pb.UpdateProjectRequest(account_id=who.account_id, mode=who.mode, project_id=project_id)
    if body.name is not None:
        req.name = body.name
    if body.slug is not None:
        req.slug = body.slug
    if body.metadata is not None:
        req.set_metadata = True
        req.metadata.update(body.metadata)
    return ok(_project(await runs.UpdateProject(req)))


@router.delete("/projects/{project_id}", status_code=204, summary="Delete a project")
async def delete_project(project_id: str, who: Auth, runs: Runs):
    await runs.DeleteProject(pb.GetProjectRequest(account_id=who.account_id, mode=who.mode,
                                                                project_id=project_id))
    return Response(status_code=204)


@router.post("/projects/{project_id}/tests", status_code=201, summary="Create a test")
async def create_test(project_id: str, body: TestIn, who: Auth, runs: Runs):
    t = await runs.CreateTest(pb.CreateTestRequest(
        account_id=who.account_id, mode=who.mode, project_id=project_id, name=body.name, spec=body.spec(),
        metadata=body.metadata))
    return ok(test_json(t), 201)


@router.get("/projects/{project_id}/tests", summary="List a project's tests")
async def list_tests(project_id: str, who: Auth, runs: Runs, paging: Page):
    resp = await runs.ListTests(pb.ListTestsRequest(
        account_id=who.account_id, mode=who.mode, project_id=project_id, page=paging.page,
        per_page=paging.per_page))
    return page([test_json(t) for t in resp.tests], paging.page, paging.per_page, resp.total)


@router.get("/projects/{project_id}/tests/{test_id}", summary="Get a test")
async def get_test(project_id: str, test_id: str, who: Auth, runs: Runs):
    t = await runs.GetTest(pb.GetTestRequest(account_id=who.account_id, mode=who.mode,
                                                           project_id=project_id, test_id=test_id))
    return ok(test_json(t))


@router.put("/projects/{project_id}/tests/{test_id}", summary="Replace a test")
async def replace_test(project_id: str, test_id: str, body: TestIn, who: Auth, runs: Runs):
    t = await runs.UpdateTest(pb.UpdateTestRequest(
        account_id=who.account_id, mode=who.mode, project_id=project_id, test_id=test_id, name=body.name,
        set_steps=True, set_assertions=True, spec=body.spec(), set_metadata=True, metadata=body.metadata,
        allow_unattempted_calls=body.allowUnattemptedCalls))
    return ok(test_json(t))


@router.patch("/projects/{project_id}/tests/{test_id}", summary="Change some of a test's fields")
async def update_test(project_id: str, test_id: str, body: TestPatch, who: Auth, runs: Runs):
    req = pb.UpdateTestRequest(account_id=who.account_id, mode=who.mode, project_id=project_id, test_id=test_id,
                               set_steps=body.steps is not None, set_assertions=body.assertions is not None,
                               spec=body.spec())
    if body.name is not None:
        req.name = body.name
    if body.allowUnattemptedCalls is not None:
        req.allow_unattempted_calls = body.allowUnattemptedCalls
    if body.metadata is not None:
        req.set_metadata = True
        req.metadata.update(body.metadata)
    return ok(test_json(await runs.UpdateTest(req)))


@router.delete("/projects/{project_id}/tests/{test_id}", status_code=204, summary="Delete a test")
async def delete_test(project_id: str, test_id: str, who: Auth, runs: Runs):
    await runs.DeleteTest(pb.GetTestRequest(account_id=who.account_id, mode=who.mode,
                                                          project_id=project_id, test_id=test_id))
    return Response(status_code=204)
