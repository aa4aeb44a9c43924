"""The RunsService gRPC servicer: requests become commands and queries on RunsApp."""

from __future__ import annotations

from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from callgauge_eventstore import WrongExpectedVersion
from callgauge_platform.errors import grpc_errors
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2_grpc as pb_grpc

from callgauge_runs.adapters.billing import InsufficientBalance
from callgauge_runs.domain import model
from callgauge_runs.domain.errors import Conflict, Invalid, NotFound
from callgauge_runs.handlers.app import RunsApp, new_id
from callgauge_runs.handlers.views import ProjectView


def _map(exc: Exception):
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND, str(exc), []
    if isinstance(exc, Invalid):
        return grpc.StatusCode.INVALID_ARGUMENT, "invalid request", [
            {"loc": e.loc, "msg": e.msg, "type": e.type} for e in exc.errors
        ]
    if isinstance(exc, Conflict | WrongExpectedVersion):
        return grpc.StatusCode.ABORTED, str(exc), []
    return None


def _ts(dt: datetime | None) -> Timestamp | None:
    if dt is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts


def project_pb(pv: ProjectView) -> pb.Project:
    p = pv.project
    return pb.Project(id=p.id, account_id=p.account_id, name=p.name, slug=p.slug, metadata=p.metadata,
                      test_count=pv.test_count, probe_count=pv.probe_count, registrar_count=pv.registrar_count,
                      created_at=_ts(p.created_at))


def test_pb(t: model.Test) -> pb.Test:
    return pb.Test(id=t.id, project_id=t.project_id, name=t.name, spec=t.spec, metadata=t.metadata,
                   created_at=_ts(t.created_at))


def run_pb(r: model.Run) -> pb.Run:
    return pb.Run(
        id=r.id, project_id=r.project_id, test_id=r.test_id, test_name=r.test_name,
        status=pb.RunStatus.Value(r.status), created_at=_ts(r.created_at), started_at=_ts(r.started_at),
        stopped_at=_ts(r.stopped_at), summary=r.summary, calls=list(r.calls), passed=r.passed,
        result_description=r.result_description, metadata=r.metadata, tags=list(r.tags),
        planned_calls=r.planned_calls,
    )


def _page(items: list, page: int, per_page: int) -> list:
    page, per_page = max(page, 1), min(max(per_page or 25, 1), 100)
    return items[(page - 1) * per_page: page * per_page]


class RunsServicer(pb_grpc.RunsServiceServicer):
    def __init__(self, app: RunsApp) -> None:
        self.app = app

    @grpc_errors(_map)
    async def CreateProject(self, request: pb.CreateProjectRequest, context) -> pb.Project:
        pv = await self.app.create_project(model.CreateProject(
            project_id=new_id(), account_id=request.account_id, name=request.name, slug=request.slug,
            metadata=dict(request.metadata)))
        return project_pb(pv)

    @grpc_errors(_map)
    async def ListProjects(self, request: pb.ListProjectsRequest, context) -> pb.ListProjectsResponse:
        items = self.app.list_projects(request.account_id)
        return pb.ListProjectsResponse(projects=[project_pb(p) for p in _page(items, request.page, request.per_page)],
                                       total=len(items))

    @grpc_errors(_map)
    async def GetProject(self, request: pb.GetProjectRequest, context) -> pb.Project:
        return project_pb(self.app.get_project(request.account_id, request.project_id))

    @grpc_errors(_map)
    async def CreateTest(self, request: pb.CreateTestRequest, context) -> pb.Test:
        t = await self.app.create_test(model.CreateTest(
            test_id=new_id(), project_id=request.project_id, account_id=request.account_id, name=request.name,
            spec=request.spec, metadata=dict(request.metadata)))
        return test_pb(t)

    @grpc_errors(_map)
    async def GetTest(self, request: pb.GetTestRequest, context) -> pb.Test:
        return test_pb(self.app.get_test(request.account_id, request.project_id, request.test_id))

    @grpc_errors(_map)
    async def StartRun(self, request: pb.StartRunRequest, context) -> pb.Run:
        try:
            run = await self.app.start_run(model.StartRun(
                run_id=new_id(), project_id=request.project_id, test_id=request.test_id,
                account_id=request.account_id, metadata=dict(request.metadata), tags=tuple(request.tags),
                mode=request.mode or "live"))
        except InsufficientBalance as exc:  # billing's 402, passed on as it came
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc), trailing_metadata=exc.metadata)
        return run_pb(run)

    @grpc_errors(_map)
    async def GetRun(self, request: pb.GetRunRequest, context) -> pb.Run:
        return run_pb(await self.app.get_run(request.account_id, request.project_id, request.run_id))

    @grpc_errors(_map)
    async def ListRuns(self, request: pb.ListRunsRequest, context) -> pb.ListRunsResponse:
        items = self.app.list_runs(request.account_id, request.project_id)
        return pb.ListRunsResponse(runs=[run_pb(r) for r in _page(items, request.page, request.per_page)],
                                   total=len(items))
