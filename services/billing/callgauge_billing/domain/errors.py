"""Domain errors of the billing service: the shared vocabulary plus InsufficientBalance. Each maps
to one gRPC status code at the entrypoint."""

from __future__ import annotations

from callgauge_platform.domain_errors import Conflict, DomainError, FieldError, Invalid, ValidationCollector

__all__ = ["Conflict", "DomainError", "FieldError", "InsufficientBalance", "Invalid", "ValidationCollector"]


class PaymentDeclined(DomainError):
    """The payment provider did not pay a top-up: nothing was credited."""


class InsufficientBalance(DomainError):
    def __init__(self, needed: int, available: int, currency: str) -> None:
        self.needed, self.available, self.currency = needed, available, currency
        super().__init__(f"insufficient balance: this needs {needed} {currency} minor units, "
                         f"{max(available, 0)} are available; top up the wallet")
