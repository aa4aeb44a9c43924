"""Domain errors of the billing service: the shared vocabulary plus InsufficientBalance and
PaymentDeclined (both refusals a client acts on). One server interceptor maps each to its gRPC
status code (callgauge_platform.errors.status_of)."""

from __future__ import annotations

from callgauge_platform.domain_errors import (Conflict, DomainError, FieldError, Invalid, Refused,
                                              ValidationCollector)

__all__ = ["Conflict", "DomainError", "FieldError", "InsufficientBalance", "Invalid", "PaymentDeclined",
           "ValidationCollector"]


class PaymentDeclined(Refused):
    """The payment provider did not pay a top-up: nothing was credited."""

    code = "PAYMENT_DECLINED"


class InsufficientBalance(Refused):
    code = "INSUFFICIENT_BALANCE"

    def __init__(self, needed: int, available: int, currency: str) -> None:
        self.needed, self.available, self.currency = needed, available, currency
        super().__init__(f"insufficient balance: this needs {needed} {currency} minor units, "
                         f"{max(available, 0)} are available; top up the wallet",
                         details={"needed": needed, "available": max(available, 0), "currency": currency})
