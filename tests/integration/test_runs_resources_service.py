"""The runs service's resources with its real store (SQLite, and PostgreSQL when it answers) and
the real broker: (account, mode) scoping, credential-pool passwords only as ciphertext in events
and on Kafka but served by GetRunCredentials, kiosk tokens, stop, and a restart that keeps the
read model (registrars, pools, kiosk links, deletions)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import runs_pb2
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb

PASSWORD = "hunter2-Very-Secret"


@pytest.fixture
def service(runs_service):
    """(settings, start) where start() (re)starts the service on the same store and returns a stub
    (tests/integration/conftest.py)."""
    return runs_service


async def code_of(call) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def basic_call(registrar_id: str, pool_id: str) -> spec_pb2.TestSpec:
    spec = spec_pb2.TestSpec()
    s0 = spec.steps.add()
    s0.actions.add().register.CopyFrom(spec_pb2.RegisterAction(target_pool=registrar_id, credential_pool=pool_id))
    s0.actions.add().wait_for_calls.CopyFrom(spec_pb2.WaitForCallsAction(credential_pool=pool_id))
    spec.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(dial_destination="1001",
                                                                     target_pool=registrar_id))
    return spec


async def setup(stub, account="acc", mode="live"):
    project = await stub.CreateProject(pb.CreateProjectRequest(account_id=account, mode=mode, name="PBX"))
    reg = await stub.CreateRegistrar(pb.RegistrarRequest(account_id=account, mode=mode, project_id=project.id,
                                                         name="lab", host="127.0.0.1", port=5060))
    pool = await stub.CreateCredentialPool(pb.CredentialPoolRequest(
        account_id=account, mode=mode, project_id=project.id, name="users", set_credentials=True,
        credentials=[pb.CredentialIn(username="1001", password=PASSWORD),
                     pb.CredentialIn(username="1002", auth_username="a1002", password=PASSWORD + "2")]))
    test = await stub.CreateTest(pb.CreateTestRequest(account_id=account, mode=mode, project_id=project.id,
                                                      name="basic", spec=basic_call(reg.id, pool.id)))
    return project, reg, pool, test


async def test_passwords_are_ciphertext_on_kafka_and_served_to_the_engine(service, consume_until):
    settings, start = service
    stub = await start()
    project, reg, pool, test = await setup(stub)
    assert [c.has_password for c in pool.credentials] == [True, True]
    run = await stub.StartRun(pb.StartRunRequest(account_id="acc", project_id=project.id, test_id=test.id))

    seen = await consume_until(settings.kafka_bootstrap, settings.topic("runs"),
                               lambda seen: any(isinstance(d.payload, runs_pb2.RunRequested) for d in seen))
    raw = b"".join(d.envelope.SerializeToString() for d in seen)
    assert PASSWORD.encode() not in raw
    created = next(d.payload for d in seen if isinstance(d.payload, runs_pb2.CredentialPoolCreated))
    assert all(c.password_ciphertext.startswith(b"gAAAA") for c in created.credentials)  # Fernet tokens
    requested = next(d.payload for d in seen if isinstance(d.payload, runs_pb2.RunRequested))
    assert [(t.id, t.host, t.port) for t in requested.targets] == [(reg.id, "127.0.0.1", 5060)]
    assert [(c.username, c.auth_username) for c in requested.pools[0].credentials] == [("1001", "1001"),
                                                                                      ("1002", "a1002")]
    creds = await stub.GetRunCredentials(pb.GetRunCredentialsRequest(run_id=run.id))
    assert dict(creds.passwords) == {f"{pool.id}/1001": PASSWORD, f"{pool.id}/1002": PASSWORD + "2"}
    assert await code_of(stub.GetRunCredentials(pb.GetRunCredentialsRequest(run_id="nope"))) == \
        grpc.StatusCode.NOT_FOUND


async def test_everything_is_scoped_by_account_and_mode(service):
    _, start = service
    stub = await start()
    project, reg, pool, test = await setup(stub)
    run = await stub.StartRun(pb.StartRunRequest(account_id="acc", project_id=project.id, test_id=test.id))
    for account, mode in (("other", "live"), ("acc", "test")):
        nf = grpc.StatusCode.NOT_FOUND
        assert await code_of(stub.GetProject(pb.GetProjectRequest(account_id=account, mode=mode,
                                                                  project_id=project.id))) == nf
        assert await code_of(stub.GetTest(pb.GetTestRequest(account_id=account, mode=mode, project_id=project.id,
                                                            test_id=test.id))) == nf
        res = pb.GetResourceRequest(account_id=account, mode=mode, project_id=project.id, id=reg.id)
        assert await code_of(stub.GetRegistrar(res)) == nf
        assert await code_of(stub.DeleteRegistrar(res)) == nf
        assert await code_of(stub.GetCredentialPool(pb.GetResourceRequest(
            account_id=account, mode=mode, project_id=project.id, id=pool.id))) == nf
        get_run = pb.GetRunRequest(account_id=account, mode=mode, run_id=run.id)
        assert await code_of(stub.GetRun(get_run)) == nf
        assert await code_of(stub.StopRun(get_run)) == nf
        assert await code_of(stub.StartRun(pb.StartRunRequest(account_id=account, mode=mode, test_name="basic"))) == nf
        assert (await stub.ListProjects(pb.ListProjectsRequest(account_id=account, mode=mode))).total == 0
    assert await code_of(stub.GetProject(pb.GetProjectRequest(account_id="acc", mode="prod",
                                                              project_id=project.id))) == \
        grpc.StatusCode.INVALID_ARGUMENT
    # the run of the right account, by test name, with overrides checked against the test
    by_name = await stub.StartRun(pb.StartRunRequest(account_id="acc", test_name="basic",
                                                     overrides={"step.1.0.max_total_calls": "3"}))
    assert by_name.test_id == test.id and by_name.planned_calls == 3
    bad = stub.StartRun(pb.StartRunRequest(account_id="acc", test_name="basic", overrides={"step.9.0.x": "1"}))
    assert await code_of(bad) == grpc.StatusCode.INVALID_ARGUMENT


async def test_kiosk_links_stop_and_the_read_model_survive_a_restart(service):
    _, start = service
    stub = await start()
    project, reg, pool, test = await setup(stub)
    kiosk = await stub.StartRun(pb.StartRunRequest(account_id="acc", project_id=project.id, test_id=test.id,
                                                   report_mode="kiosk"))
    assert len(kiosk.kiosk_token) >= 43
    assert (await stub.GetRunByKioskToken(pb.GetRunByKioskTokenRequest(token=kiosk.kiosk_token))).id == kiosk.id
    stopped = await stub.StopRun(pb.GetRunRequest(account_id="acc", run_id=kiosk.id))
    assert pb.RunStatus.Name(stopped.status) == "CANCELLED" and stopped.stop_requested  # never taken: at once
    assert await code_of(stub.StopRun(pb.GetRunRequest(account_id="acc", run_id=kiosk.id))) == \
        grpc.StatusCode.ABORTED
    other = await stub.CreateRegistrar(pb.RegistrarRequest(account_id="acc", project_id=project.id,
                                                           name="gone", host="10.0.0.1"))
    await stub.DeleteRegistrar(pb.GetResourceRequest(account_id="acc", project_id=project.id, id=other.id))
    # a registrar a test names cannot go
    assert await code_of(stub.DeleteRegistrar(pb.GetResourceRequest(account_id="acc", project_id=project.id,
                                                                    id=reg.id))) == grpc.StatusCode.ABORTED

    stub = await start()  # the read model resumes from its persisted rows
    got = await stub.GetProject(pb.GetProjectRequest(account_id="acc", project_id=project.id))
    assert (got.test_count, got.registrar_count) == (1, 1)
    regs = await stub.ListRegistrars(pb.ListResourcesRequest(account_id="acc", project_id=project.id))
    assert [r.id for r in regs.registrars] == [reg.id]
    pools = await stub.ListCredentialPools(pb.ListResourcesRequest(account_id="acc", project_id=project.id))
    assert [c.username for c in pools.pools[0].credentials] == ["1001", "1002"]
    assert (await stub.GetRunByKioskToken(pb.GetRunByKioskTokenRequest(token=kiosk.kiosk_token))).id == kiosk.id
    await stub.RevokeKioskLinks(pb.GetRunRequest(account_id="acc", run_id=kiosk.id))
    assert await code_of(stub.GetRunByKioskToken(pb.GetRunByKioskTokenRequest(token=kiosk.kiosk_token))) == \
        grpc.StatusCode.NOT_FOUND
    # passwords still decrypt after the restart (the key lives in the data dir), for a run in flight;
    # the ended run's are no longer served
    live = await stub.StartRun(pb.StartRunRequest(account_id="acc", project_id=project.id, test_id=test.id))
    creds = await stub.GetRunCredentials(pb.GetRunCredentialsRequest(run_id=live.id))
    assert creds.passwords[f"{pool.id}/1001"] == PASSWORD
    assert await code_of(stub.GetRunCredentials(pb.GetRunCredentialsRequest(run_id=kiosk.id))) == \
        grpc.StatusCode.ABORTED
    listed = await stub.ListRuns(pb.ListRunsRequest(account_id="acc", project_id=project.id, status="CANCELLED"))
    assert [r.id for r in listed.runs] == [kiosk.id]


async def test_racing_creates_of_one_slug_make_one_project(service):
    _, start = service
    stub = await start()
    codes = await asyncio.gather(*(code_of(stub.CreateProject(pb.CreateProjectRequest(
        account_id="acc", name=f"P{i}", slug="shared"))) for i in range(5)))
    assert codes.count(grpc.StatusCode.OK) == 1 and set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.ABORTED}
    listed = await stub.ListProjects(pb.ListProjectsRequest(account_id="acc"))
    assert [p.slug for p in listed.projects] == ["shared"]
    # renamed away, the slug is free again; taken by a rename it is not
    [p] = listed.projects
    await stub.UpdateProject(pb.UpdateProjectRequest(account_id="acc", project_id=p.id, slug="moved"))
    other = await stub.CreateProject(pb.CreateProjectRequest(account_id="acc", name="Q", slug="shared"))
    assert await code_of(stub.UpdateProject(pb.UpdateProjectRequest(account_id="acc", project_id=other.id,
                                                                    slug="moved"))) == grpc.StatusCode.ABORTED
    await stub.DeleteProject(pb.GetProjectRequest(account_id="acc", project_id=p.id))
    await stub.UpdateProject(pb.UpdateProjectRequest(account_id="acc", project_id=other.id, slug="moved"))
