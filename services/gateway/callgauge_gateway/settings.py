"""The gateway's settings: its own fields and the shared parts it reads."""

from __future__ import annotations

from pydantic import Field

from callgauge_platform.settings import AccountsTarget, BillingTarget, BootstrapKeySettings, GatewayEndpoint, RateLimitSettings, RunsTarget, ServiceSettings


class GatewaySettings(ServiceSettings, GatewayEndpoint, AccountsTarget, RunsTarget, BillingTarget, RateLimitSettings, BootstrapKeySettings):
    """Every CALLGAUGE_* setting the gateway reads (the docs' settings reference)."""

    account_rate_limit_per_minute: int = Field(0, ge=0, le=10_000_000,
                                               description="requests a minute of one account across all its keys "
                                               "and login tokens; 0 = api_key_rate_limit_max")
    auth_failure_window_seconds: int = Field(600, ge=10, le=86400,
                                             description="the window failed authentications are counted in")
    auth_failures_per_client: int = Field(30, ge=1, le=10_000_000,
                                          description="failed authentications (bad key, token, password or "
                                          "refresh token) one client address may make per window; 429 after")
    login_failures_per_account: int = Field(10, ge=1, le=10_000_000,
                                            description="failed logins per email address per window, from any "
                                            "address; 429 after (even for the right password) until it ends")
    trusted_proxies: str = Field("", description="comma-separated CIDRs of the reverse proxies in front of the "
                                 "gateway; only their X-Forwarded-For is believed. Empty = none: the client "
                                 "address is the TCP peer")
    report_session_ttl_seconds: int = Field(12 * 3600, ge=60, le=30 * 86400,
                                            description="how long a report-page sign-in lasts")
    redis_url: str = Field("", description="redis://… shared by gateway processes for rate limits and "
                           "idempotency keys; empty = memory (limits) and a SQLite file under data_dir (idempotency)")
    gateway_max_body_bytes: int = Field(1024 * 1024, ge=1024, le=1024 * 1024 * 1024,
                                        description="largest request body the gateway reads (413 above)")
    gateway_max_json_depth: int = Field(32, ge=2, le=500, description="deepest JSON nesting accepted (422 above)")
    idempotency_ttl_seconds: int = Field(86400, ge=60, le=7 * 86400)

    def account_rate_limit(self) -> int:
        return self.account_rate_limit_per_minute or self.key_rate_limit_max()
