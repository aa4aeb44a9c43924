"""The Wallet aggregate (pure). Money is integer minor units with a currency.
Only the skeleton is here: the wallet's balance as the sum of its ledger events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from google.protobuf.message import Message

from callgauge_proto.callgauge.events.v1 import billing_pb2

DEFAULT_CURRENCY = "EUR"


@dataclass(frozen=True)
class Wallet:
    account_id: str
    currency: str
    balance_minor: int = 0


def evolve(state: Wallet | None, event: Message, at: datetime | None = None) -> Wallet | None:
    if isinstance(event, billing_pb2.WalletOpened):
        return Wallet(event.account_id, event.currency)
    if state is not None and isinstance(event, billing_pb2.WalletCredited):
        return Wallet(state.account_id, state.currency, state.balance_minor + event.amount_minor)
    return state
