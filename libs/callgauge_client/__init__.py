"""Callgauge's Python client: typed, sync (`Client`) and async (`AsyncClient`), over /api/v1.

    from callgauge_client import Client
    with Client("http://127.0.0.1:8080", "cgk_live_…") as cg:
        project = cg.create_project("PBX")
        test = cg.create_test(project.id, {"name": "echo", "steps": [...]})
        started = cg.start_run(project.id, test.id, {"step.0.0.dial_destination": "sip:echo@pbx"})
        run = cg.wait_for_run(project.id, started.test_run_id)
"""

from callgauge_client._base import RetryPolicy, run_body
from callgauge_client.assertions import AssertionResult, evaluate_assertions
from callgauge_client.client import AsyncClient, Client
from callgauge_client.errors import (
    ApiError,
    BadRequest,
    CallgaugeError,
    Conflict,
    Forbidden,
    InsufficientBalance,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    ValidationFailed,
)
from callgauge_client.models import (
    TERMINAL,
    ApiKey,
    CallMeasurement,
    CredentialPool,
    Page,
    Pagination,
    Probe,
    Project,
    Registrar,
    Run,
    RunStarted,
    RunStatus,
    Test,
    Tokens,
    TopUp,
    User,
    Wallet,
)

__all__ = [
    "TERMINAL", "ApiError", "ApiKey", "AssertionResult", "AsyncClient", "BadRequest", "CallMeasurement",
    "CallgaugeError", "Client", "Conflict", "CredentialPool", "Forbidden", "InsufficientBalance", "NotFound",
    "Page", "Pagination", "Probe", "Project", "RateLimited", "Registrar", "RetryPolicy", "Run", "RunStarted",
    "RunStatus", "ServerError", "Test", "Tokens", "TopUp", "TransportError", "Unauthorized", "User",
    "ValidationFailed", "Wallet", "evaluate_assertions", "run_body",
]
