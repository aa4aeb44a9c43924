"""BillingService gRPC servicer."""

from __future__ import annotations

from callgauge_bus.codec import decode_payload
from callgauge_eventstore import EventStore
from callgauge_eventstore.aggregate import load
from callgauge_platform.errors import grpc_errors
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2 as pb
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2_grpc as pb_grpc

from callgauge_billing.domain import wallet


def wallet_stream(account_id: str) -> str:
    return f"wallet-{account_id}"


class BillingServicer(pb_grpc.BillingServiceServicer):
    def __init__(self, store: EventStore) -> None:
        self.store = store

    @grpc_errors(lambda exc: None)
    async def GetWallet(self, request: pb.GetWalletRequest, context) -> pb.Wallet:
        state, version = await load(self.store, wallet_stream(request.account_id), wallet.evolve, decode_payload)
        if state is None:
            return pb.Wallet(account_id=request.account_id, balance_minor=0, currency=wallet.DEFAULT_CURRENCY)
        return pb.Wallet(account_id=state.account_id, balance_minor=state.balance_minor, currency=state.currency,
                         version=max(version, 0))
