"""The accounts service over gRPC with its real store (SQLite, and PostgreSQL when it answers):
register, login, refresh rotation, API keys, revocation seen at once, state rebuilt on restart,
and no secret in clear in the store."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from callgauge_accounts.bootstrap import bootstrap
from callgauge_app.settings import PlatformSettings
from callgauge_platform.stack import free_port
from callgauge_proto.callgauge.accounts.v1 import accounts_service_pb2 as pb
from callgauge_proto.callgauge.accounts.v1 import accounts_service_pb2_grpc as pb_grpc
from service_clients import acl_stub

PASSWORD = "correct horse battery staple"


class Service:
    def __init__(self, settings: PlatformSettings, store_factory) -> None:
        self.settings, self.store_factory = settings, store_factory
        self.svc = None
        self.channel = None

    async def start(self) -> pb_grpc.AccountsServiceStub:
        self.svc = bootstrap(self.settings, store=self.store_factory(), relay=False)  # no broker here
        await self.svc.start()
        self.channel = acl_stub(self.settings, "accounts", pb_grpc.AccountsServiceStub)
        return self.channel

    async def stop(self) -> None:
        await self.channel.close()
        await self.svc.stop()


@pytest.fixture
def service(store_backend, tmp_path):
    settings = PlatformSettings(data_dir=tmp_path, eventstore_url=store_backend.url, accounts_grpc=f"127.0.0.1:{free_port()}",
                        accounts_http_port=free_port())
    return Service(settings, lambda: store_backend.new_store("accounts"))


async def _code(coro) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await coro
    return e.value.code()


async def test_register_login_keys_refresh_and_restart(service) -> None:
    stub = await service.start()
    try:
        acc = await stub.Register(pb.RegisterRequest(email=" Ops@Example.com ", password=PASSWORD))
        assert acc.email == "ops@example.com" and acc.id
        assert await _code(stub.Register(pb.RegisterRequest(email="ops@example.com", password=PASSWORD))) \
            == grpc.StatusCode.ABORTED  # Conflict: ABORTED in every service (gateway: 409)
        assert await _code(stub.Register(pb.RegisterRequest(email="x@example.com", password="short"))) \
            == grpc.StatusCode.INVALID_ARGUMENT

        # one answer for a wrong password and an unknown email
        wrong = await _code(stub.Login(pb.LoginRequest(email="ops@example.com", password="wrong password!")))
        unknown = await _code(stub.Login(pb.LoginRequest(email="nobody@example.com", password=PASSWORD)))
        assert wrong == unknown == grpc.StatusCode.UNAUTHENTICATED

        tokens = await stub.Login(pb.LoginRequest(email="OPS@example.com", password=PASSWORD))
        assert tokens.expires_in == 3600
        who = await stub.Authenticate(pb.AuthenticateRequest(token=tokens.access_token))
        assert (who.account_id, who.mode, who.kind) == (acc.id, "live", "jwt")
        who = await stub.Authenticate(pb.AuthenticateRequest(token=tokens.access_token, requested_mode="test"))
        assert who.mode == "test"

        # refresh rotates; the spent token fails, and presenting it again revokes the session
        new = await stub.Refresh(pb.RefreshRequest(refresh_token=tokens.refresh_token))
        assert new.refresh_token != tokens.refresh_token
        assert await _code(stub.Refresh(pb.RefreshRequest(refresh_token=tokens.refresh_token))) \
            == grpc.StatusCode.UNAUTHENTICATED
        assert await _code(stub.Refresh(pb.RefreshRequest(refresh_token=new.refresh_token))) \
            == grpc.StatusCode.UNAUTHENTICATED
        assert await _code(stub.Authenticate(pb.AuthenticateRequest(token=new.access_token))) \
            == grpc.StatusCode.UNAUTHENTICATED

        # two concurrent refreshes of one token: exactly one wins
        t2 = await stub.Login(pb.LoginRequest(email="ops@example.com", password=PASSWORD))
        results = await asyncio.gather(*(stub.Refresh(pb.RefreshRequest(refresh_token=t2.refresh_token))
                                         for _ in range(2)), return_exceptions=True)
        assert sum(isinstance(r, pb.Tokens) for r in results) == 1, results

        created = await stub.CreateApiKey(pb.CreateApiKeyRequest(account_id=acc.id, name="ci", mode="test",
                                                                 rate_limit_per_minute=30))
        assert created.secret.startswith("cgk_test_") and len(created.secret) >= 9 + 43
        assert created.key.last4 == created.secret[-4:] and created.secret.startswith(created.key.prefix)
        who = await stub.Authenticate(pb.AuthenticateRequest(token=created.secret))
        assert (who.account_id, who.mode, who.key_id, who.rate_limit_per_minute) == (acc.id, "test", created.key.id, 30)
        listed = await stub.ListApiKeys(pb.AccountRef(account_id=acc.id))
        assert [k.id for k in listed.keys] == [created.key.id]
    finally:
        await service.stop()

    # a restart rebuilds everything from the store: the key still works, the user can log in
    stub = await service.start()
    try:
        who = await stub.Authenticate(pb.AuthenticateRequest(token=created.secret))
        assert who.key_id == created.key.id
        listed = await stub.ListApiKeys(pb.AccountRef(account_id=acc.id))
        assert listed.keys[0].HasField("last_used_at")
        await stub.Login(pb.LoginRequest(email="ops@example.com", password=PASSWORD))

        await stub.RevokeApiKey(pb.RevokeApiKeyRequest(account_id=acc.id, key_id=created.key.id))
        assert await _code(stub.Authenticate(pb.AuthenticateRequest(token=created.secret))) \
            == grpc.StatusCode.UNAUTHENTICATED
        assert await _code(stub.RevokeApiKey(pb.RevokeApiKeyRequest(account_id=acc.id, key_id=created.key.id))) \
            == grpc.StatusCode.NOT_FOUND

        # another account cannot see or revoke this account's keys
        other = await stub.Register(pb.RegisterRequest(email="other@example.com", password=PASSWORD))
        k2 = await stub.CreateApiKey(pb.CreateApiKeyRequest(account_id=acc.id, name="b", mode="live"))
        assert await _code(stub.RevokeApiKey(pb.RevokeApiKeyRequest(account_id=other.id, key_id=k2.key.id))) \
            == grpc.StatusCode.NOT_FOUND
        assert (await stub.ListApiKeys(pb.AccountRef(account_id=other.id))).keys == []

        # change email and password, then delete: keys stop, the email is free again
        upd = await stub.UpdateAccount(pb.UpdateAccountRequest(account_id=acc.id, email="noc@example.com",
                                                               password="another good passphrase",
                                                               current_password=PASSWORD))
        assert upd.email == "noc@example.com"
        assert await _code(stub.Login(pb.LoginRequest(email="ops@example.com", password=PASSWORD))) \
            == grpc.StatusCode.UNAUTHENTICATED
        await stub.Login(pb.LoginRequest(email="noc@example.com", password="another good passphrase"))
        await stub.Register(pb.RegisterRequest(email="ops@example.com", password=PASSWORD))  # old email freed

        await stub.DeleteAccount(pb.AccountRef(account_id=acc.id))
        assert await _code(stub.Authenticate(pb.AuthenticateRequest(token=k2.secret))) \
            == grpc.StatusCode.UNAUTHENTICATED
        assert await _code(stub.GetAccount(pb.AccountRef(account_id=acc.id))) == grpc.StatusCode.NOT_FOUND
        again = await stub.Register(pb.RegisterRequest(email="noc@example.com", password=PASSWORD))
        assert again.id != acc.id

        # health, readiness and metrics on the service's HTTP port
        import httpx

        base = f"http://127.0.0.1:{service.settings.accounts_http_port}"
        async with httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(f"{base}/healthz")).status_code == 200
            assert (await http.get(f"{base}/readyz")).status_code == 200
            metrics = (await http.get(f"{base}/metrics")).text
        assert 'callgauge_accounts_logins_total{result="rejected"}' in metrics
        assert 'callgauge_accounts_authentications_total{kind="api_key",result="ok"}' in metrics

        # nothing secret is stored in clear
        events = await service.svc.store.read_all(0, limit=10_000)
        blob = b"".join(e.data for e in events)
        for secret in (PASSWORD.encode(), created.secret.encode(), k2.secret.encode(), t2.refresh_token.encode()):
            assert secret not in blob
    finally:
        await service.stop()


async def test_concurrent_registrations_of_one_email_make_one_account(service) -> None:
    stub = await service.start()
    try:
        results = await asyncio.gather(*(stub.Register(pb.RegisterRequest(email="race@example.com",
                                                                          password=PASSWORD)) for _ in range(3)),
                                       return_exceptions=True)
        ok = [r for r in results if isinstance(r, pb.Account)]
        assert len(ok) == 1, results
        assert all(r.code() == grpc.StatusCode.ABORTED for r in results if not isinstance(r, pb.Account))
    finally:
        await service.stop()


async def test_concurrent_commands_on_one_account_all_succeed(service) -> None:
    """Issue #19 item 1: accounts handles its account commands with the shared loop, so API keys
    created at once on one account all land (on PostgreSQL, before: all but one failed on the
    version check)."""
    stub = await service.start()
    try:
        acc = await stub.Register(pb.RegisterRequest(email="keys@example.com", password=PASSWORD))
        async with asyncio.timeout(60):
            results = await asyncio.gather(*(stub.CreateApiKey(pb.CreateApiKeyRequest(
                account_id=acc.id, name=f"k{i}", mode="live")) for i in range(5)), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        assert not failed, [f"{e.code()}: {e.details()}" if isinstance(e, grpc.aio.AioRpcError) else repr(e)
                            for e in failed]
        keys = await stub.ListApiKeys(pb.AccountRef(account_id=acc.id))
        assert sorted(k.name for k in keys.keys) == [f"k{i}" for i in range(5)]
    finally:
        await service.stop()
