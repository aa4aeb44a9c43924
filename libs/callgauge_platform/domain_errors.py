"""The domain-error vocabulary every service shares (pure: no I/O). A service's
``domain/errors.py`` re-exports these and derives its own from them; one gRPC server interceptor
(callgauge_platform.errors.DomainErrorInterceptor) maps each kind to one gRPC status code for every
service, so a servicer only raises."""

from __future__ import annotations

from dataclasses import dataclass, field


class DomainError(Exception):
    pass


class NotFound(DomainError):
    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found")
        self.kind, self.ident = kind, ident


class Conflict(DomainError):
    """The request collides with the current state (a name taken, a write that lost a race)."""


class Unauthenticated(DomainError):
    """The caller's credentials are missing, wrong or spent."""


class Forbidden(DomainError):
    """The caller is known but may not do this."""


class QuotaExceeded(DomainError):
    """An account quota that frees up with time (a run ends): the caller may retry later. Not a
    size limit and not a rate limit."""


class Refused(DomainError):
    """A valid request the current state refuses for a reason the client acts on (a wallet that
    cannot pay, a declined payment): `code` names the reason (UPPER_SNAKE), `details` are the facts
    the client shows (JSON-serialisable)."""

    code = "FAILED_PRECONDITION"

    def __init__(self, message: str, code: str | None = None, details: dict | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.details = details or {}


class Unavailable(DomainError):
    """Something the service depends on did not answer; nothing was done and the caller may retry."""


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
