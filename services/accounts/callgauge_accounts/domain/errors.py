"""Domain errors of the accounts service. Each maps to one gRPC status code at the entrypoint."""

from __future__ import annotations

from dataclasses import dataclass, field


class DomainError(Exception):
    pass


class NotFound(DomainError):
    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found")


class Conflict(DomainError):
    pass


class Forbidden(DomainError):
    pass


class Unauthenticated(DomainError):
    """One message for every cause (unknown email, wrong password, bad or spent token), so an
    answer never tells which part was wrong."""

    def __init__(self, message: str = "Invalid credentials") -> None:
        super().__init__(message)


@dataclass
class FieldError:
    loc: list[str | int]
    msg: str
    type: str = "value_error"


class Invalid(DomainError):
    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors))


@dataclass
class ValidationCollector:
    errors: list[FieldError] = field(default_factory=list)

    def add(self, loc: list[str | int], msg: str, type_: str = "value_error") -> None:
        self.errors.append(FieldError(loc, msg, type_))

    def raise_if_any(self) -> None:
        if self.errors:
            raise Invalid(self.errors)
