"""Every /api/v1 endpoint, written once. Each method describes its request as a `Call` and hands
it to `self._call`: `Client` returns the decoded result, `AsyncClient` an awaitable of it."""

from __future__ import annotations

from typing import Any

from callgauge_client._base import Call, run_body
from callgauge_client.models import (
    ApiKey,
    CallMeasurement,
    CredentialPool,
    Page,
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


def _paging(page: int, per_page: int, **extra: Any) -> dict[str, Any]:
    return {"page": page, "perPage": per_page, **extra}


def _listed(value: str | int | list | tuple | None) -> str | None:
    if value is None or isinstance(value, str | int):
        return None if value is None else str(value)
    return ",".join(str(v) for v in value) or None


def call_filters(outcome: str | list[str] | None = None, sip_code: int | list[int] | None = None,
                 mos_min: float | None = None, mos_max: float | None = None,
                 sort: str | None = None) -> dict[str, Any]:
    """The query of a run's calls (and their exports): outcome(s), SIP code(s), MOS bounds, sort
    (index, -index, setupMs, -setupMs, mos, -mos)."""
    return {"outcome": _listed(outcome), "sipCode": _listed(sip_code), "mosMin": mos_min, "mosMax": mos_max,
            "sort": sort}


def calls_path(project_id: str, run_id: str, suffix: str = "") -> str:
    return f"/projects/{project_id}/test-runs/{run_id}/calls{suffix}"


class Endpoints:
    def _call(self, call: Call) -> Any:  # pragma: no cover - provided by Client / AsyncClient
        raise NotImplementedError

    # ------------------------------------------------------------------ auth, users
    def register(self, email: str, password: str, **extra: Any) -> User:
        return self._call(Call("POST", "/auth/register", {"email": email, "password": password, **extra}, model=User))

    def login(self, email: str, password: str) -> Tokens:
        return self._call(Call("POST", "/auth/login", {"email": email, "password": password}, model=Tokens))

    def logout(self) -> None:
        """End the session of the access token in use."""
        return self._call(Call("POST", "/auth/logout"))

    def refresh(self, refresh_token: str) -> Tokens:
        return self._call(Call("POST", "/auth/refresh", {"refreshToken": refresh_token}, model=Tokens))

    def me(self) -> User:
        return self._call(Call("GET", "/users/me", model=User))

    def update_me(self, **fields: Any) -> User:
        return self._call(Call("PUT", "/users/me", fields, model=User))

    def delete_me(self) -> None:
        return self._call(Call("DELETE", "/users/me"))

    # ------------------------------------------------------------------ API keys
    def create_api_key(self, name: str, mode: str = "live", rate_limit_per_minute: int | None = None) -> ApiKey:
        """Needs a user's access token (JWT). The answer carries the full key (`.key`) once; it is
        never shown again."""
        body: dict[str, Any] = {"name": name, "mode": mode}
        if rate_limit_per_minute:
            body["rateLimitPerMinute"] = rate_limit_per_minute
        return self._call(Call("POST", "/api-keys", body, model=ApiKey))

    def list_api_keys(self, page: int = 1, per_page: int = 100) -> Page[ApiKey]:
        return self._call(Call("GET", "/api-keys", params=_paging(page, per_page), model=ApiKey, paged=True))

    def revoke_api_key(self, key_id: str) -> None:
        return self._call(Call("DELETE", f"/api-keys/{key_id}"))

    # ------------------------------------------------------------------ projects
    def create_project(self, name: str, slug: str | None = None, metadata: dict[str, str] | None = None) -> Project:
        body: dict[str, Any] = {"name": name}
        if slug:
            body["slug"] = slug
        if metadata:
            body["metadata"] = metadata
        return self._call(Call("POST", "/projects", body, model=Project))

    def list_projects(self, page: int = 1, per_page: int = 100) -> Page[Project]:
        return self._call(Call("GET", "/projects", params=_paging(page, per_page), model=Project, paged=True))

    def get_project(self, project_id: str) -> Project:
        return self._call(Call("GET", f"/projects/{project_id}", model=Project))

    def update_project(self, project_id: str, **fields: Any) -> Project:
        return self._call(Call("PATCH", f"/projects/{project_id}", fields, model=Project))

    def delete_project(self, project_id: str) -> None:
        return self._call(Call("DELETE", f"/projects/{project_id}"))

    # ------------------------------------------------------------------ registrars, credential pools
    def create_registrar(self, project_id: str, name: str, host: str, port: int | None = None,
                         transport: str = "udp", domain: str | None = None,
                         tls_verify: bool | None = None) -> Registrar:
        """``port``: default 5060, 5061 for tls; ``tls_verify`` false: TLS without checking the
        registrar's certificate (default: checked)."""
        body: dict[str, Any] = {"name": name, "host": host, "transport": transport}
        if port is not None:
            body["port"] = port
        if domain:
            body["domain"] = domain
        if tls_verify is not None:
            body["tls_verify"] = tls_verify
        return self._call(Call("POST", f"/projects/{project_id}/registrars", body, model=Registrar))

    def list_registrars(self, project_id: str, page: int = 1, per_page: int = 100) -> Page[Registrar]:
        return self._call(Call("GET", f"/projects/{project_id}/registrars", params=_paging(page, per_page),
                               model=Registrar, paged=True))

    def get_registrar(self, project_id: str, registrar_id: str) -> Registrar:
        return self._call(Call("GET", f"/projects/{project_id}/registrars/{registrar_id}", model=Registrar))

    def update_registrar(self, project_id: str, registrar_id: str, **fields: Any) -> Registrar:
        return self._call(Call("PATCH", f"/projects/{project_id}/registrars/{registrar_id}", fields, model=Registrar))

    def delete_registrar(self, project_id: str, registrar_id: str) -> None:
        return self._call(Call("DELETE", f"/projects/{project_id}/registrars/{registrar_id}"))

    def create_credential_pool(self, project_id: str, name: str, credentials: list[dict[str, str]]) -> CredentialPool:
        """credentials: [{"username": …, "password": …, "authUsername"?: …, "domain"?: …}]; passwords are
        write-only (answers say `has_password`)."""
        return self._call(Call("POST", f"/projects/{project_id}/credential-pools",
                               {"name": name, "credentials": credentials}, model=CredentialPool))

    def list_credential_pools(self, project_id: str, page: int = 1, per_page: int = 100) -> Page[CredentialPool]:
        return self._call(Call("GET", f"/projects/{project_id}/credential-pools", params=_paging(page, per_page),
                               model=CredentialPool, paged=True))

    def get_credential_pool(self, project_id: str, pool_id: str) -> CredentialPool:
        return self._call(Call("GET", f"/projects/{project_id}/credential-pools/{pool_id}", model=CredentialPool))

    def update_credential_pool(self, project_id: str, pool_id: str, **fields: Any) -> CredentialPool:
        return self._call(Call("PATCH", f"/projects/{project_id}/credential-pools/{pool_id}", fields,
                               model=CredentialPool))

    def delete_credential_pool(self, project_id: str, pool_id: str) -> None:
        return self._call(Call("DELETE", f"/projects/{project_id}/credential-pools/{pool_id}"))

    # ------------------------------------------------------------------ tests
    def create_test(self, project_id: str, test: dict[str, Any]) -> Test:
        """test: {name, steps: [{actions: [{type: call|register|wait_for_calls|load, …}]}], assertions, metadata}"""
        return self._call(Call("POST", f"/projects/{project_id}/tests", test, model=Test))

    def list_tests(self, project_id: str, page: int = 1, per_page: int = 100) -> Page[Test]:
        return self._call(Call("GET", f"/projects/{project_id}/tests", params=_paging(page, per_page),
                               model=Test, paged=True))

    def get_test(self, project_id: str, test_id: str) -> Test:
        return self._call(Call("GET", f"/projects/{project_id}/tests/{test_id}", model=Test))

    def update_test(self, project_id: str, test_id: str, test: dict[str, Any]) -> Test:
        """Replace the test (PUT)."""
        return self._call(Call("PUT", f"/projects/{project_id}/tests/{test_id}", test, model=Test))

    def patch_test(self, project_id: str, test_id: str, **fields: Any) -> Test:
        return self._call(Call("PATCH", f"/projects/{project_id}/tests/{test_id}", fields, model=Test))

    def delete_test(self, project_id: str, test_id: str) -> None:
        return self._call(Call("DELETE", f"/projects/{project_id}/tests/{test_id}"))

    # ------------------------------------------------------------------ runs
    def start_run(self, project_id: str, test_id: str, overrides: dict[str, Any] | None = None, *,
                  tags: list[str] | None = None, metadata: dict[str, str] | None = None, kiosk: bool = False,
                  idempotency_key: str | None = None) -> RunStarted:
        """CallMeter's form. overrides: {"step.1.0.dial_destination": "sip:…"} (the `step.` prefix is optional)."""
        return self._call(Call("POST", f"/projects/{project_id}/tests/{test_id}/run",
                               run_body(overrides, tags=tags, metadata=metadata, kiosk=kiosk), model=RunStarted,
                               idempotency_key=idempotency_key))

    def run_test(self, *, test_name: str | None = None, test_id: str | None = None, project_id: str | None = None,
                 overrides: dict[str, Any] | None = None, tags: list[str] | None = None,
                 metadata: dict[str, str] | None = None, kiosk: bool = False,
                 idempotency_key: str | None = None) -> RunStarted:
        """Sipfront's form: POST /tests/run with `test.name` or `test.id` (optionally `project.id`)."""
        body = run_body(overrides, tags=tags, metadata=metadata, kiosk=kiosk, test_name=test_name, test_id=test_id)
        if project_id:
            body["project.id"] = project_id
        return self._call(Call("POST", "/tests/run", body, model=RunStarted, idempotency_key=idempotency_key))

    def get_run(self, project_id: str, run_id: str) -> Run:
        return self._call(Call("GET", f"/projects/{project_id}/test-runs/{run_id}", model=Run))

    def run_calls_page(self, project_id: str, run_id: str, *, cursor: str | None = None, per_page: int = 100,
                       outcome: str | list[str] | None = None, sip_code: int | list[int] | None = None,
                       mos_min: float | None = None, mos_max: float | None = None,
                       sort: str | None = None) -> Page[CallMeasurement]:
        """One page of a run's calls; `page.pagination.next_cursor` is the next page's `cursor` (None
        on the last). `run_calls(...)` iterates over every page."""
        params = {**call_filters(outcome, sip_code, mos_min, mos_max, sort), "perPage": per_page, "cursor": cursor}
        return self._call(Call("GET", calls_path(project_id, run_id), params=params, model=CallMeasurement,
                               paged=True))

    def run_seconds(self, project_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's statistics second by second (one entry per media engine and second)."""
        return self._call(Call("GET", f"/projects/{project_id}/test-runs/{run_id}/seconds"))

    def run_status(self, run_id: str) -> RunStatus:
        return self._call(Call("GET", f"/runs/{run_id}/status", model=RunStatus))

    def stop_run(self, run_id: str) -> Any:
        return self._call(Call("POST", f"/runs/{run_id}/stop"))

    def list_runs(self, project_id: str, *, test_id: str | None = None, status: str | None = None,
                  since: str | None = None, until: str | None = None, page: int = 1,
                  per_page: int = 25) -> Page[Run]:
        params = _paging(page, per_page, testId=test_id, status=status, **{"from": since, "to": until})
        return self._call(Call("GET", f"/projects/{project_id}/test-runs", params=params, model=Run, paged=True))

    def revoke_kiosk(self, run_id: str) -> None:
        return self._call(Call("DELETE", f"/runs/{run_id}/kiosk"))

    # ------------------------------------------------------------------ billing
    def wallet(self) -> Wallet:
        return self._call(Call("GET", "/billing/wallet", model=Wallet))

    def top_up(self, amount_minor: int, currency: str | None = None, idempotency_key: str | None = None) -> Wallet:
        """Add money (integer minor units, e.g. cents); answers the wallet after it."""
        body: dict[str, Any] = {"amount_minor": amount_minor}
        if currency:
            body["currency"] = currency
        return self._call(Call("POST", "/billing/top-ups", body, model=Wallet, idempotency_key=idempotency_key))

    def set_auto_top_up(self, threshold_minor: int, amount_minor: int, enabled: bool = True,
                        currency: str | None = None) -> Wallet:
        body: dict[str, Any] = {"enabled": enabled, "threshold_minor": threshold_minor, "amount_minor": amount_minor}
        if currency:
            body["currency"] = currency
        return self._call(Call("PUT", "/billing/auto-top-up", body, model=Wallet))

    def usage(self, since: str | None = None, until: str | None = None, group_by: str | None = None) -> Any:
        return self._call(Call("GET", "/billing/usage", params={"from": since, "to": until, "groupBy": group_by}))

    def billing_history(self, page: int = 1, per_page: int = 25) -> Page[Any]:
        return self._call(Call("GET", "/billing/history", params=_paging(page, per_page), paged=True))

    # ------------------------------------------------------------------ probes, webhooks, comparison
    def create_probe(self, project_id: str, test_id: str, name: str, interval_seconds: int, *,
                     thresholds: dict[str, Any] | None = None, webhook_url: str | None = None,
                     enabled: bool = True) -> Probe:
        """thresholds: {"mos": {"warning": 4.0, "critical": 3.0}, "jitter_ms": {...}, ...}"""
        body: dict[str, Any] = {"testId": test_id, "name": name, "intervalSeconds": interval_seconds,
                                "enabled": enabled}
        if thresholds is not None:
            body["thresholds"] = thresholds
        if webhook_url:
            body["webhookUrl"] = webhook_url
        return self._call(Call("POST", f"/projects/{project_id}/probes", body, model=Probe))

    def list_probes(self, project_id: str, page: int = 1, per_page: int = 100) -> Page[Probe]:
        return self._call(Call("GET", f"/projects/{project_id}/probes", params=_paging(page, per_page),
                               model=Probe, paged=True))

    def get_probe(self, project_id: str, probe_id: str) -> Probe:
        return self._call(Call("GET", f"/projects/{project_id}/probes/{probe_id}", model=Probe))

    def update_probe(self, project_id: str, probe_id: str, **fields: Any) -> Probe:
        """fields in the API's spelling (camelCase or snake_case), e.g. enabled=False, intervalSeconds=300."""
        return self._call(Call("PATCH", f"/projects/{project_id}/probes/{probe_id}", fields, model=Probe))

    def delete_probe(self, project_id: str, probe_id: str) -> None:
        return self._call(Call("DELETE", f"/projects/{project_id}/probes/{probe_id}"))

    def probe_history(self, project_id: str, probe_id: str) -> Any:
        return self._call(Call("GET", f"/projects/{project_id}/probes/{probe_id}/history"))

    def probe_changes(self, project_id: str, probe_id: str) -> Any:
        """State changes not acknowledged yet."""
        return self._call(Call("GET", f"/projects/{project_id}/probes/{probe_id}/changes"))

    def ack_probe_changes(self, project_id: str, probe_id: str, up_to_seq: int = 0) -> Any:
        return self._call(Call("POST", f"/projects/{project_id}/probes/{probe_id}/changes/ack",
                               {"upToSeq": up_to_seq}))

    def create_webhook(self, url: str, events: list[str] | None = None, description: str = "") -> Any:
        body: dict[str, Any] = {"url": url, "description": description}
        if events:
            body["events"] = events
        return self._call(Call("POST", "/webhooks", body))

    def list_webhooks(self) -> Any:
        return self._call(Call("GET", "/webhooks"))

    def delete_webhook(self, webhook_id: str) -> None:
        return self._call(Call("DELETE", f"/webhooks/{webhook_id}"))

    def webhook_deliveries(self, webhook_id: str) -> Any:
        return self._call(Call("GET", f"/webhooks/{webhook_id}/deliveries"))

    def compare_runs(self, project_id: str, base_run_id: str, run_id: str,
                     tolerances: dict[str, float] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"baseRunId": base_run_id, "runId": run_id}
        if tolerances:
            body["tolerances"] = tolerances
        return self._call(Call("POST", f"/projects/{project_id}/test-runs/compare", body))
