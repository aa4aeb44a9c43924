"""Domain errors of the runs service: the shared vocabulary. Each maps to one gRPC status code at
the entrypoint."""

from __future__ import annotations

from callgauge_platform.domain_errors import (Conflict, DomainError, FieldError, Invalid, NotFound,
                                              ValidationCollector)

__all__ = ["Conflict", "DomainError", "FieldError", "Invalid", "NotFound", "ValidationCollector"]
