"""The domain-error vocabulary every service shares (pure: no I/O). A service's
``domain/errors.py`` re-exports these and adds its own; each entrypoint maps them to one gRPC
status code (NOT_FOUND, ABORTED, INVALID_ARGUMENT with field errors)."""

from __future__ import annotations

from dataclasses import dataclass, field


class DomainError(Exception):
    pass


class NotFound(DomainError):
    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found")
        self.kind, self.ident = kind, ident


class Conflict(DomainError):
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


@dataclass
class ValidationCollector:
    errors: list[FieldError] = field(default_factory=list)

    def add(self, loc: list[str | int], msg: str, type_: str = "value_error") -> None:
        self.errors.append(FieldError(loc, msg, type_))

    def raise_if_any(self) -> None:
        if self.errors:
            raise Invalid(self.errors)
