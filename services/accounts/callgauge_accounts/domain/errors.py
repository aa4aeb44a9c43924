"""Domain errors of the accounts service: the shared vocabulary plus Forbidden and
Unauthenticated. Each maps to one gRPC status code at the entrypoint."""

from __future__ import annotations

from callgauge_platform.domain_errors import (Conflict, DomainError, FieldError, Invalid, NotFound,
                                              ValidationCollector)

__all__ = ["Conflict", "DomainError", "FieldError", "Forbidden", "Invalid", "NotFound", "Unauthenticated",
           "ValidationCollector"]


class Forbidden(DomainError):
    pass


class Unauthenticated(DomainError):
    """One message for every cause (unknown email, wrong password, bad or spent token), so an
    answer never tells which part was wrong."""

    def __init__(self, message: str = "Invalid credentials") -> None:
        super().__init__(message)
