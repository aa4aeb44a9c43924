"""The RunsService gRPC servicer: requests become commands and queries on RunsApp. Errors are
raised, not answered here: the server's DomainErrorInterceptor (callgauge_platform.errors) maps
them (QuotaExceeded: RESOURCE_EXHAUSTED QUOTA_EXCEEDED; billing's refusal passed on as it came;
billing not answering: UNAVAILABLE)."""

from __future__ import annotations

import hashlib
import secrets

from callgauge_platform.timestamps import datetime_of, timestamp_of
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2_grpc as pb_grpc

from callgauge_runs.domain import project as project_model, resources as resource_model, run as run_model, test as test_model
from callgauge_runs.domain.errors import FieldError, Invalid
from callgauge_runs.handlers import calls as calls_page
from callgauge_runs.handlers.app import RunsApp, new_id
from callgauge_runs.handlers.views import ProjectView


def _mode(mode: str) -> str:
    if mode in ("", "live"):
        return "live"
    if mode == "test":
        return "test"
    raise Invalid([FieldError(["mode"], "live or test")])


def project_pb(pv: ProjectView) -> pb.Project:
    p = pv.project
    return pb.Project(id=p.id, account_id=p.account_id, name=p.name, slug=p.slug, metadata=p.metadata,
                      test_count=pv.test_count, probe_count=pv.probe_count, registrar_count=pv.registrar_count,
                      created_at=timestamp_of(p.created_at))


def test_pb(t: test_model.Test) -> pb.Test:
    return pb.Test(id=t.id, project_id=t.project_id, name=t.name, spec=t.spec, metadata=t.metadata,
                   created_at=timestamp_of(t.created_at))


def registrar_pb(r: resource_model.Registrar) -> pb.Registrar:
    return pb.Registrar(id=r.id, project_id=r.project_id, name=r.name, host=r.host, port=r.port,
                        transport=r.transport, domain=r.domain, created_at=timestamp_of(r.created_at),
                        tls_verify=r.tls_verify)


def pool_pb(p: resource_model.CredentialPool) -> pb.CredentialPool:
    return pb.CredentialPool(id=p.id, project_id=p.project_id, name=p.name, created_at=timestamp_of(p.created_at), credentials=[
        pb.Credential(username=c.username, auth_username=c.auth_username, domain=c.domain,
                      has_password=bool(c.password_ciphertext)) for c in p.credentials])


def run_pb(r: run_model.Run, project_name: str = "", figures: bool = True) -> pb.Run:
    """`figures`: the run was folded from its stream (GetRun and commands), so its recorded-call
    figures are known; a header of ListRuns has none."""
    out = pb.Run(
        id=r.id, project_id=r.project_id, test_id=r.test_id, test_name=r.test_name,
        status=pb.RunStatus.Value(r.status), created_at=timestamp_of(r.created_at), started_at=timestamp_of(r.started_at),
        stopped_at=timestamp_of(r.stopped_at), summary=r.summary, passed=r.passed,
        result_description=r.result_description, metadata=r.metadata, tags=list(r.tags),
        planned_calls=r.planned_calls, project_name=project_name, account_id=r.account_id, mode=r.mode,
        stop_requested=r.stop_requested, kiosk_links=len(r.kiosk_hashes),
    )
    if figures:
        out.calls_recorded = r.stats.count
        out.first_failed_calls.extend(r.first_failed)
        out.recorded.CopyFrom(r.stats.summary())
    return out


def _page(items: list, page: int, per_page: int) -> list:
    page, per_page = max(page, 1), min(max(per_page or 25, 1), 100)
    return items[(page - 1) * per_page: page * per_page]


def _registrar_fields(r: pb.RegistrarRequest) -> resource_model.RegistrarFields:
    return resource_model.RegistrarFields(
        name=r.name if r.HasField("name") else None, host=r.host if r.HasField("host") else None,
        port=r.port if r.HasField("port") else None, transport=r.transport if r.HasField("transport") else None,
        domain=r.domain if r.HasField("domain") else None,
        tls_verify=r.tls_verify if r.HasField("tls_verify") else None)


class RunsServicer(pb_grpc.RunsServiceServicer):
    def __init__(self, app: RunsApp) -> None:
        self.app = app

    def _run(self, r: run_model.Run, figures: bool = True) -> pb.Run:
        return run_pb(r, self.app.project_name(r.project_id), figures)

    # projects

    async def CreateProject(self, request: pb.CreateProjectRequest, context) -> pb.Project:
        pv = await self.app.create_project(project_model.CreateProject(
            project_id=new_id(), account_id=request.account_id, name=request.name, slug=request.slug,
            metadata=dict(request.metadata), mode=_mode(request.mode)))
        return project_pb(pv)

    async def ListProjects(self, request: pb.ListProjectsRequest, context) -> pb.ListProjectsResponse:
        items = self.app.list_projects(request.account_id, _mode(request.mode))
        return pb.ListProjectsResponse(projects=[project_pb(p) for p in _page(items, request.page, request.per_page)],
                                       total=len(items))

    async def GetProject(self, request: pb.GetProjectRequest, context) -> pb.Project:
        return project_pb(self.app.get_project(request.account_id, _mode(request.mode), request.project_id))

    async def UpdateProject(self, request: pb.UpdateProjectRequest, context) -> pb.Project:
        pv = await self.app.update_project(project_model.UpdateProject(
            project_id=request.project_id, account_id=request.account_id, mode=_mode(request.mode),
            name=request.name if request.HasField("name") else None,
            slug=request.slug if request.HasField("slug") else None,
            metadata=dict(request.metadata) if request.set_metadata else None))
        return project_pb(pv)

    async def DeleteProject(self, request: pb.GetProjectRequest, context) -> pb.Empty:
        await self.app.delete_project(project_model.DeleteProject(request.project_id, request.account_id, _mode(request.mode)))
        return pb.Empty()

    # tests

    async def CreateTest(self, request: pb.CreateTestRequest, context) -> pb.Test:
        t = await self.app.create_test(test_model.CreateTest(
            test_id=new_id(), project_id=request.project_id, account_id=request.account_id, name=request.name,
            spec=request.spec, metadata=dict(request.metadata), mode=_mode(request.mode)))
        return test_pb(t)

    async def GetTest(self, request: pb.GetTestRequest, context) -> pb.Test:
        return test_pb(self.app.get_test(request.account_id, _mode(request.mode), request.project_id, request.test_id))

    async def ListTests(self, request: pb.ListTestsRequest, context) -> pb.ListTestsResponse:
        items = self.app.list_tests(request.account_id, _mode(request.mode), request.project_id)
        return pb.ListTestsResponse(tests=[test_pb(t) for t in _page(items, request.page, request.per_page)],
                                    total=len(items))

    async def UpdateTest(self, request: pb.UpdateTestRequest, context) -> pb.Test:
        t = await self.app.update_test(test_model.UpdateTest(
            test_id=request.test_id, project_id=request.project_id, account_id=request.account_id,
            mode=_mode(request.mode), name=request.name if request.HasField("name") else None,
            steps=request.spec if request.set_steps else None,
            assertions=request.spec if request.set_assertions else None,
            metadata=dict(request.metadata) if request.set_metadata else None,
            allow_unattempted_calls=(request.allow_unattempted_calls if request.HasField("allow_unattempted_calls")
                                     else None)))
        return test_pb(t)

    async def DeleteTest(self, request: pb.GetTestRequest, context) -> pb.Empty:
        await self.app.delete_test(test_model.DeleteTest(request.test_id, request.project_id, request.account_id,
                                                    _mode(request.mode)))
        return pb.Empty()

    # registrars

    async def CreateRegistrar(self, request: pb.RegistrarRequest, context) -> pb.Registrar:
        r = await self.app.create_registrar(resource_model.CreateRegistrar(
            new_id(), request.project_id, request.account_id, _mode(request.mode), _registrar_fields(request)))
        return registrar_pb(r)

    async def GetRegistrar(self, request: pb.GetResourceRequest, context) -> pb.Registrar:
        return registrar_pb(self.app.get_registrar(request.account_id, _mode(request.mode), request.project_id,
                                                   request.id))

    async def ListRegistrars(self, request: pb.ListResourcesRequest, context) -> pb.ListRegistrarsResponse:
        items = self.app.list_registrars(request.account_id, _mode(request.mode), request.project_id)
        return pb.ListRegistrarsResponse(
            registrars=[registrar_pb(r) for r in _page(items, request.page, request.per_page)], total=len(items))

    async def UpdateRegistrar(self, request: pb.RegistrarRequest, context) -> pb.Registrar:
        r = await self.app.update_registrar(resource_model.UpdateRegistrar(
            request.registrar_id, request.project_id, request.account_id, _mode(request.mode),
            _registrar_fields(request)))
        return registrar_pb(r)

    async def DeleteRegistrar(self, request: pb.GetResourceRequest, context) -> pb.Empty:
        await self.app.delete_registrar(resource_model.DeleteResource(request.id, request.project_id, request.account_id,
                                                             _mode(request.mode)))
        return pb.Empty()

    # credential pools

    def _creds(self, request: pb.CredentialPoolRequest) -> tuple[resource_model.Credential, ...]:
        return self.app.encrypt_credentials([
            (c.username, c.auth_username, c.domain, c.password if c.HasField("password") else None)
            for c in request.credentials])

    async def CreateCredentialPool(self, request: pb.CredentialPoolRequest, context) -> pb.CredentialPool:
        p = await self.app.create_pool(resource_model.CreateCredentialPool(
            new_id(), request.project_id, request.account_id, _mode(request.mode), request.name,
            self._creds(request)))
        return pool_pb(p)

    async def GetCredentialPool(self, request: pb.GetResourceRequest, context) -> pb.CredentialPool:
        return pool_pb(self.app.get_pool(request.account_id, _mode(request.mode), request.project_id, request.id))

    async def ListCredentialPools(self, request: pb.ListResourcesRequest, context) -> pb.ListCredentialPoolsResponse:
        items = self.app.list_pools(request.account_id, _mode(request.mode), request.project_id)
        return pb.ListCredentialPoolsResponse(pools=[pool_pb(p) for p in _page(items, request.page, request.per_page)],
                                              total=len(items))

    async def UpdateCredentialPool(self, request: pb.CredentialPoolRequest, context) -> pb.CredentialPool:
        p = await self.app.update_pool(resource_model.UpdateCredentialPool(
            request.pool_id, request.project_id, request.account_id, _mode(request.mode),
            name=request.name if request.HasField("name") else None,
            credentials=self._creds(request) if request.set_credentials else None))
        return pool_pb(p)

    async def DeleteCredentialPool(self, request: pb.GetResourceRequest, context) -> pb.Empty:
        await self.app.delete_pool(resource_model.DeleteResource(request.id, request.project_id, request.account_id,
                                                        _mode(request.mode)))
        return pb.Empty()

    # runs

    async def StartRun(self, request: pb.StartRunRequest, context) -> pb.Run:
        mode = _mode(request.mode)
        if request.report_mode not in ("", "kiosk"):
            raise Invalid([FieldError(["report.mode"], "kiosk, or leave it out")])
        project_id, test_id = request.project_id, request.test_id
        if not test_id:
            test = self.app.find_test(request.account_id, mode, project_id, request.test_name)
            project_id, test_id = test.project_id, test.id
        elif not project_id:
            project_id = self.app.project_of_test(request.account_id, mode, test_id)
        token = secrets.token_urlsafe(32) if request.report_mode == "kiosk" else ""
        run = await self.app.start_run(run_model.StartRun(
            run_id=new_id(), project_id=project_id, test_id=test_id, account_id=request.account_id,
            metadata=dict(request.metadata), tags=tuple(request.tags), mode=mode,
            overrides=dict(request.overrides),
            kiosk_token_sha256=hashlib.sha256(token.encode()).hexdigest() if token else ""))
        out = self._run(run)
        out.kiosk_token = token
        return out

    async def GetRun(self, request: pb.GetRunRequest, context) -> pb.Run:
        return self._run(await self.app.get_run(request.account_id, _mode(request.mode), request.project_id,
                                                request.run_id))

    async def ListRuns(self, request: pb.ListRunsRequest, context) -> pb.ListRunsResponse:
        if request.status and request.status not in pb.RunStatus.keys():
            raise Invalid([FieldError(["status"], "one of " + ", ".join(pb.RunStatus.keys()[1:]))])
        items = self.app.list_runs(request.account_id, _mode(request.mode), request.project_id, request.test_id,
                                   request.status, datetime_of(request.created_from, request.HasField("created_from")),
                                   datetime_of(request.created_to, request.HasField("created_to")))
        return pb.ListRunsResponse(runs=[self._run(r, figures=False)
                                         for r in _page(items, request.page, request.per_page)], total=len(items))

    async def ListRunCalls(self, request: pb.ListRunCallsRequest, context) -> pb.ListRunCallsResponse:
        page = await self.app.list_run_calls(request.account_id, _mode(request.mode), request.project_id,
                                             request.run_id, calls_page.PageRequest(
            page_size=request.page_size, page_token=request.page_token, outcomes=tuple(request.outcomes),
            sip_codes=tuple(request.sip_codes), sort=request.sort,
            mos_min=request.mos_min if request.HasField("mos_min") else None,
            mos_max=request.mos_max if request.HasField("mos_max") else None))
        return pb.ListRunCallsResponse(calls=page.calls, next_page_token=page.next_page_token, total=page.total)

    async def StopRun(self, request: pb.GetRunRequest, context) -> pb.Run:
        return self._run(await self.app.stop_run(run_model.StopRun(request.run_id, request.account_id,
                                                               _mode(request.mode))))

    async def RevokeKioskLinks(self, request: pb.GetRunRequest, context) -> pb.Run:
        return self._run(await self.app.revoke_kiosk(run_model.RevokeKioskLinks(request.run_id, request.account_id,
                                                                            _mode(request.mode))))

    async def GetRunByKioskToken(self, request: pb.GetRunByKioskTokenRequest, context) -> pb.Run:
        run = await self.app.run_by_kiosk_token(request.token)
        return self._run(await self.app.get_run(run.account_id, run.mode, "", run.id))

    async def GetRunCredentials(self, request: pb.GetRunCredentialsRequest, context) -> spec_pb2.RunCredentials:
        return spec_pb2.RunCredentials(run_id=request.run_id,
                                       passwords=await self.app.run_credentials(request.run_id))

    async def GetRunSeconds(self, request: pb.GetRunSecondsRequest, context) -> pb.RunSeconds:
        return pb.RunSeconds(seconds=await self.app.run_seconds(request.account_id, _mode(request.mode),
                                                                request.run_id))
