"""The runs service's settings: its own fields and the shared parts it reads."""

from __future__ import annotations

from pydantic import Field

from callgauge_platform.settings import BillingTarget, DialSettings, RunLimitsSettings, RunsEndpoint, StoreServiceSettings


class RunsSettings(StoreServiceSettings, RunsEndpoint, BillingTarget, RunLimitsSettings, DialSettings):
    """Every CALLGAUGE_* setting the runs service reads (the docs' settings reference)."""

    secrets_key: str = Field(
        "", description="Fernet key(s), comma-separated, encrypting SIP passwords in the runs store; "
                        "empty = generated into data_dir/runs-secrets.key",
    )
    quota_planned_calls_per_run: int = Field(100_000, ge=1, le=1_000_000_000,
                                             description="planned call attempts one run may hold (422 above)")
    quota_concurrent_runs: int = Field(20, ge=1, le=100_000,
                                       description="runs an account may have unfinished at once (429 above)")
    probe_min_interval_seconds: int = Field(10, ge=1, description="shortest probe interval accepted")
    probe_tick_seconds: float = Field(1.0, gt=0, le=60, description="how often the scheduler and dispatcher look")
    monitor_scheduler: bool = Field(True, description="run the probe scheduler and webhook dispatcher here")
    webhook_allow_private: bool = Field(False, description="allow webhook receivers on private/loopback addresses")
    webhook_retry_base_seconds: float = Field(30.0, gt=0, description="first retry delay; doubles, capped at 4 h")
