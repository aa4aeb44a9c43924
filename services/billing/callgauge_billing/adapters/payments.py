"""The PaymentProvider port (auto top-ups) and its embedded adapters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PaymentResult:
    ok: bool
    reason: str = ""


class PaymentProvider(Protocol):
    async def charge(self, account_id: str, amount_minor: int, currency: str, attempt_id: str) -> PaymentResult:
        """Charge the account's saved payment method; `attempt_id` makes a repeat a no-op."""


class LocalPaymentProvider:
    """The embedded default: every payment succeeds (no money moves; for one-machine setups)."""

    async def charge(self, account_id: str, amount_minor: int, currency: str, attempt_id: str) -> PaymentResult:
        return PaymentResult(True)


class NoPaymentProvider:
    """No payment provider configured (the default): no top-up is paid, so none is credited; an
    operator credits wallets (`callgauge credit`)."""

    async def charge(self, account_id: str, amount_minor: int, currency: str, attempt_id: str) -> PaymentResult:
        return PaymentResult(False, "no payment provider is configured: the operator credits wallets")


class DecliningPaymentProvider:
    """Declines every payment, as a card that was refused (tests of the declined path)."""

    async def charge(self, account_id: str, amount_minor: int, currency: str, attempt_id: str) -> PaymentResult:
        return PaymentResult(False, "card declined by the payment provider")


def payment_provider(name: str) -> PaymentProvider:
    providers = {"none": NoPaymentProvider, "local": LocalPaymentProvider, "declining": DecliningPaymentProvider}
    if name not in providers:
        raise ValueError(f"CALLGAUGE_BILLING_PAYMENT_PROVIDER={name!r}: one of {', '.join(providers)}")
    return providers[name]()
