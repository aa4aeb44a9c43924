"""Finding 5 of #15: money is not minted by asking. A user's top-up goes through the payment provider
(none is configured by default: nothing paid, nothing credited); only the operator identity credits
without paying (`callgauge credit`). Before the fix, TopUp credited whatever a key asked for."""

from __future__ import annotations

import uuid

import grpc
import httpx
import pytest

from callgauge_gateway.entrypoints.errors import api_error_from_grpc
from callgauge_platform.grpcutil import service_channel
from callgauge_app.settings import PlatformSettings
from callgauge_platform.stack import free_port
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2 as pb
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2_grpc as pb_grpc


@pytest.fixture
async def billing(tmp_path, broker, topic_prefix):
    from callgauge_billing.bootstrap import bootstrap

    settings = PlatformSettings(data_dir=tmp_path, eventstore_url=f"sqlite:///{tmp_path}/", kafka_bootstrap=broker.bootstrap,
                        kafka_topic_prefix=topic_prefix, billing_grpc=f"127.0.0.1:{free_port()}",
                        billing_http_port=free_port(), billing_welcome_credit_minor=100,
                        billing_mode="prepaid")
    assert settings.billing_payment_provider == "none"  # the default
    svc = bootstrap(settings)
    await svc.start()
    yield settings
    await svc.stop()


async def test_a_users_top_up_is_not_credited_unless_paid(billing) -> None:
    acc = f"acc-{uuid.uuid4().hex[:6]}"
    async with service_channel(billing, "billing", "gateway") as ch:
        stub = pb_grpc.BillingServiceStub(ch)
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.TopUp(pb.TopUpRequest(account_id=acc, amount_minor=10_000_000, top_up_id=str(uuid.uuid4())))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            api = api_error_from_grpc(err.value)
            assert api.status == 402 and api.code == "PAYMENT_DECLINED"
        assert (await stub.GetWallet(pb.GetWalletRequest(account_id=acc))).balance_minor == 100
        with pytest.raises(grpc.aio.AioRpcError) as err:  # the gateway cannot credit
            await stub.Credit(pb.CreditRequest(account_id=acc, amount_minor=500))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    async with service_channel(billing, "billing", "operator") as ch:
        w = await pb_grpc.BillingServiceStub(ch).Credit(pb.CreditRequest(account_id=acc, amount_minor=500,
                                                                         credit_id="c1", reason="invoice 42"))
        assert w.balance_minor == 600
        again = await pb_grpc.BillingServiceStub(ch).Credit(pb.CreditRequest(account_id=acc, amount_minor=500,
                                                                             credit_id="c1"))
        assert again.balance_minor == 600  # the same credit id credits once


def test_the_operator_credits_a_users_wallet_through_the_cli(sec_stack, gateway) -> None:
    from callgauge_app.main import main as cli

    base = f"{gateway}/api/v1"
    email = f"money-{uuid.uuid4().hex[:8]}@example.com"
    assert httpx.post(f"{base}/auth/register", json={"email": email, "password": "correct horse battery"}).status_code == 201
    token = httpx.post(f"{base}/auth/login", json={"email": email, "password": "correct horse battery"}).json()
    auth = {"Authorization": f"Bearer {token['data']['accessToken']}"}
    account = httpx.get(f"{base}/users/me", headers=auth).json()["data"]["id"]
    before = httpx.get(f"{base}/billing/wallet", headers=auth).json()["data"]["balanceMinor"]
    env_dir = str(sec_stack.settings.data_dir)
    import os

    old = {k: os.environ.get(k) for k in ("CALLGAUGE_BILLING_GRPC",)}
    os.environ["CALLGAUGE_BILLING_GRPC"] = sec_stack.settings.billing_grpc
    try:
        assert cli(["credit", "--account", account, "--amount", "1234", "--data-dir", env_dir,
                    "--credit-id", "cli-1"]) == 0
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    after = httpx.get(f"{base}/billing/wallet", headers=auth).json()["data"]["balanceMinor"]
    assert after == before + 1234
