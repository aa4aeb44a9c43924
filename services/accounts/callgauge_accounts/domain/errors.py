"""Domain errors of the accounts service: the shared vocabulary (Forbidden and Unauthenticated
included). One server interceptor maps each to its gRPC status code
(callgauge_platform.errors.status_of)."""

from __future__ import annotations

from callgauge_platform import domain_errors
from callgauge_platform.domain_errors import (Conflict, DomainError, FieldError, Forbidden, Invalid, NotFound,
                                              ValidationCollector)

__all__ = ["Conflict", "DomainError", "FieldError", "Forbidden", "Invalid", "NotFound", "Unauthenticated",
           "ValidationCollector"]


class Unauthenticated(domain_errors.Unauthenticated):
    """One message for every cause (unknown email, wrong password, bad or spent token), so an
    answer never tells which part was wrong."""

    def __init__(self, message: str = "Invalid credentials") -> None:
        super().__init__(message)
