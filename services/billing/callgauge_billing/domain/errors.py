"""Domain errors of the billing service. Each maps to one gRPC status code at the entrypoint."""

from __future__ import annotations

from dataclasses import dataclass, field


class DomainError(Exception):
    pass


@dataclass
class FieldError:
    loc: list[str | int]
    msg: str
    type: str = "value_error"


class Invalid(DomainError):
    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors))

    @classmethod
    def one(cls, loc: list[str | int], msg: str) -> Invalid:
        return cls([FieldError(loc, msg)])


class Conflict(DomainError):
    pass


class InsufficientBalance(DomainError):
    def __init__(self, needed: int, available: int, currency: str) -> None:
        self.needed, self.available, self.currency = needed, available, currency
        super().__init__(f"insufficient balance: this needs {needed} {currency} minor units, "
                         f"{max(available, 0)} are available; top up the wallet")


@dataclass
class ValidationCollector:
    errors: list[FieldError] = field(default_factory=list)

    def add(self, loc: list[str | int], msg: str, type_: str = "value_error") -> None:
        self.errors.append(FieldError(loc, msg, type_))

    def raise_if_any(self) -> None:
        if self.errors:
            raise Invalid(self.errors)
