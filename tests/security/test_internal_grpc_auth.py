"""Finding 1 of #15: internal gRPC trusts no one it has not authenticated. The real accounts, runs and
billing servers are started; every method of every internal service is called without a token, with
a forged, expired or misaddressed token, and as every identity the access-control table does not
allow (UNAUTHENTICATED / PERMISSION_DENIED), and as one it allows (let through)."""

from __future__ import annotations

import time
import uuid

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import message_factory

from callgauge_platform.service_auth import ACL, IDENTITIES, HEALTH_METHODS, ServiceKeys, ServiceTokens
from callgauge_app.settings import PlatformSettings
from callgauge_platform.stack import free_port
from callgauge_proto.callgauge.accounts.v1 import accounts_service_pb2
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2
from callgauge_proto.callgauge.runs.v1 import monitor_service_pb2
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as rpb
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2_grpc as rpb_grpc
from callgauge_runs.adapters.billing import UnmeteredBilling
from service_clients import acl_stub

SERVICES = {
    "accounts": [accounts_service_pb2.DESCRIPTOR.services_by_name["AccountsService"]],
    "runs": [rpb.DESCRIPTOR.services_by_name["RunsService"],
             monitor_service_pb2.DESCRIPTOR.services_by_name["MonitorService"]],
    "billing": [billing_service_pb2.DESCRIPTOR.services_by_name["BillingService"]],
}


def methods(service: str):
    for svc in SERVICES[service]:
        for m in svc.methods:
            yield (f"/{svc.full_name}/{m.name}", message_factory.GetMessageClass(m.input_type),
                   message_factory.GetMessageClass(m.output_type))


def test_every_internal_method_has_an_explicit_acl_entry() -> None:
    for service in SERVICES:
        names = {name for name, _, _ in methods(service)}
        assert names <= set(ACL[service]), f"{service}: methods without an ACL entry: {names - set(ACL[service])}"
        for allowed in ACL[service].values():
            assert allowed and allowed <= set(IDENTITIES)


@pytest.fixture
async def services(tmp_path, broker, topic_prefix):
    from callgauge_accounts.bootstrap import bootstrap as accounts_bootstrap
    from callgauge_billing.bootstrap import bootstrap as billing_bootstrap
    from callgauge_runs.bootstrap import bootstrap as runs_bootstrap

    settings = PlatformSettings(
        data_dir=tmp_path, eventstore_url=f"sqlite:///{tmp_path}/", kafka_bootstrap=broker.bootstrap,
        kafka_topic_prefix=topic_prefix, runs_grpc=f"127.0.0.1:{free_port()}", runs_http_port=free_port(),
        billing_grpc=f"127.0.0.1:{free_port()}", billing_http_port=free_port(),
        accounts_grpc=f"127.0.0.1:{free_port()}", accounts_http_port=free_port(),
        dial_allow_cidrs="127.0.0.0/8")  # the SIP registrar below is on loopback (denied by default)
    started = [accounts_bootstrap(settings), runs_bootstrap(settings, billing=UnmeteredBilling()),
               billing_bootstrap(settings)]
    for svc in started:
        await svc.start()
    yield settings
    for svc in reversed(started):
        await svc.stop()


def target(settings: PlatformSettings, service: str) -> str:
    return {"accounts": settings.accounts_grpc, "runs": settings.runs_grpc, "billing": settings.billing_grpc}[service]


async def call_details(channel, method, req_cls, resp_cls, token: str | None) -> tuple[grpc.StatusCode, str]:
    rpc = channel.unary_unary(method, request_serializer=req_cls.SerializeToString,
                              response_deserializer=resp_cls.FromString)
    md = (("authorization", f"Bearer {token}"),) if token is not None else None
    try:
        await rpc(req_cls(), metadata=md, timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


async def call(channel, method, req_cls, resp_cls, token: str | None) -> grpc.StatusCode:
    return (await call_details(channel, method, req_cls, resp_cls, token))[0]


def forged(identity: str, audience: str, *, key=None, exp_in: float = 300, kid: str | None = None) -> str:
    now = time.time()
    return jwt.encode({"iss": identity, "aud": audience, "iat": int(now), "exp": int(now + exp_in),
                       "jti": uuid.uuid4().hex}, key or Ed25519PrivateKey.generate(), algorithm="EdDSA",
                      headers={"kid": kid or identity})


@pytest.mark.parametrize("service", ["accounts", "runs", "billing"])
async def test_every_method_refuses_missing_forged_and_foreign_identities(services, service) -> None:
    settings = services
    keys = ServiceKeys.for_settings(settings)
    tokens = {ident: ServiceTokens(ident, keys.private_key(ident)) for ident in IDENTITIES}
    other = next(s for s in ("accounts", "runs", "billing") if s != service)
    async with grpc.aio.insecure_channel(target(settings, service)) as ch:
        for method, req, resp in methods(service):
            allowed = ACL[service][method]
            some = sorted(allowed)[0]
            assert await call(ch, method, req, resp, None) == grpc.StatusCode.UNAUTHENTICATED, method
            assert await call(ch, method, req, resp, "not-a-jwt") == grpc.StatusCode.UNAUTHENTICATED, method
            # the right claims, signed by a key that is not the identity's
            assert await call(ch, method, req, resp, forged(some, service)) == grpc.StatusCode.UNAUTHENTICATED
            # the identity's own key, but expired, or for another service, or under another kid
            own = keys.private_key(some)
            assert await call(ch, method, req, resp, forged(some, service, key=own, exp_in=-120)) == \
                grpc.StatusCode.UNAUTHENTICATED, method
            assert await call(ch, method, req, resp, tokens[some].token(other)) == \
                grpc.StatusCode.UNAUTHENTICATED, method
            for ident in IDENTITIES:
                if ident in allowed:
                    continue
                assert await call(ch, method, req, resp, tokens[ident].token(service)) == \
                    grpc.StatusCode.PERMISSION_DENIED, (method, ident)
                # a foreign identity cannot borrow an allowed one's name with its own key
                assert await call(ch, method, req, resp, forged(some, service, key=keys.private_key(ident))) == \
                    grpc.StatusCode.UNAUTHENTICATED, (method, ident)
            # let through: whatever the service answers an empty request (Login's own UNAUTHENTICATED
            # included), it is not the interceptor's refusal
            got, details = await call_details(ch, method, req, resp, tokens[some].token(service))
            assert "service token" not in details and "may not call" not in details, (method, got, details)
        # the standard health service answers anyone (probes), and says nothing else
        for method in HEALTH_METHODS - {"/grpc.health.v1.Health/Watch"}:
            from grpc_health.v1 import health_pb2

            assert await call(ch, method, health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse, None) == \
                grpc.StatusCode.OK


async def test_the_probe_of_the_review_is_refused(services) -> None:
    """What the security review did over the gRPC ports with no credentials."""
    settings = services
    from callgauge_proto.callgauge.accounts.v1 import accounts_service_pb2_grpc
    from callgauge_proto.callgauge.billing.v1 import billing_service_pb2_grpc

    async with grpc.aio.insecure_channel(settings.accounts_grpc) as a, \
            grpc.aio.insecure_channel(settings.billing_grpc) as b, \
            grpc.aio.insecure_channel(settings.runs_grpc) as r:
        attempts = [
            accounts_service_pb2_grpc.AccountsServiceStub(a).CreateApiKey(
                accounts_service_pb2.CreateApiKeyRequest(account_id="victim", name="x")),
            accounts_service_pb2_grpc.AccountsServiceStub(a).Login(
                accounts_service_pb2.LoginRequest(email="v@example.com", password="guess")),
            billing_service_pb2_grpc.BillingServiceStub(b).TopUp(
                billing_service_pb2.TopUpRequest(account_id="victim", amount_minor=10_000_000)),
            rpb_grpc.RunsServiceStub(r).GetRunCredentials(rpb.GetRunCredentialsRequest(run_id="r")),
            rpb_grpc.RunsServiceStub(r).ListProjects(rpb.ListProjectsRequest(account_id="victim")),
        ]
        for attempt in attempts:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await attempt
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_run_credentials_go_to_the_media_engine_only_and_only_while_the_run_is_in_flight(services) -> None:
    from callgauge_platform.grpcutil import service_channel
    from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

    settings = services
    async with acl_stub(settings, "runs", rpb_grpc.RunsServiceStub) as gw:
        project = await gw.CreateProject(rpb.CreateProjectRequest(account_id="acc", name="P"))
        pool = await gw.CreateCredentialPool(rpb.CredentialPoolRequest(
            account_id="acc", project_id=project.id, name="users", set_credentials=True,
            credentials=[rpb.CredentialIn(username="1001", password="s3cret-pass")]))
        reg = await gw.CreateRegistrar(rpb.RegistrarRequest(account_id="acc", project_id=project.id, name="lab",
                                                            host="127.0.0.1", port=5099))
        spec = spec_pb2.TestSpec()
        spec.steps.add().actions.add().register.CopyFrom(spec_pb2.RegisterAction(target_pool=reg.id,
                                                                                 credential_pool=pool.id))
        test = await gw.CreateTest(rpb.CreateTestRequest(account_id="acc", project_id=project.id, name="T",
                                                         spec=spec))
        run = await gw.StartRun(rpb.StartRunRequest(account_id="acc", project_id=project.id, test_id=test.id))

        async with service_channel(settings, "runs", "gateway") as as_gateway:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await rpb_grpc.RunsServiceStub(as_gateway).GetRunCredentials(
                    rpb.GetRunCredentialsRequest(run_id=run.id))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        async with service_channel(settings, "runs", "media-engine") as as_engine:
            engine = rpb_grpc.RunsServiceStub(as_engine)
            creds = await engine.GetRunCredentials(rpb.GetRunCredentialsRequest(run_id=run.id))
            assert dict(creds.passwords) == {f"{pool.id}/1001": "s3cret-pass"}
            stopped = await gw.StopRun(rpb.GetRunRequest(account_id="acc", run_id=run.id))
            assert rpb.RunStatus.Name(stopped.status) == "CANCELLED"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await engine.GetRunCredentials(rpb.GetRunCredentialsRequest(run_id=run.id))
            assert err.value.code() == grpc.StatusCode.ABORTED and "ended" in err.value.details()


def test_an_operator_set_key_directory_must_hold_the_keys(tmp_path) -> None:
    """Outside the embedded default no key is ever made up: a missing key stops the process."""
    from callgauge_platform.service_auth import ServiceAuthError, generate_keys

    with pytest.raises(ServiceAuthError):
        ServiceKeys.for_settings(PlatformSettings(data_dir=tmp_path, service_keys_dir=str(tmp_path / "absent")))
    d = tmp_path / "keys"
    generate_keys(d, ("runs",))
    assert oct(d.stat().st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in d.iterdir())
    keys = ServiceKeys.for_settings(PlatformSettings(data_dir=tmp_path, service_keys_dir=str(d)))
    keys.private_key("runs")
    with pytest.raises(ServiceAuthError):
        keys.private_key("gateway")
    assert set(keys.public_keys()) == {"runs"}
