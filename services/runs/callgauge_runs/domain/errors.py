"""Domain errors of the runs service: the shared vocabulary (QuotaExceeded: an account quota that
frees up when a run ends). One server interceptor maps each to its gRPC status code
(callgauge_platform.errors.status_of)."""

from __future__ import annotations

from callgauge_platform.domain_errors import (Conflict, DomainError, FieldError, Invalid, NotFound, QuotaExceeded,
                                              ValidationCollector)

__all__ = ["Conflict", "DomainError", "FieldError", "Invalid", "NotFound", "QuotaExceeded", "ValidationCollector"]
