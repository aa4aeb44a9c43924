"""Each service's settings class (the settings reference of the docs site is rendered from them:
scripts/mkdocs_reference.py).

`callgauge up` builds every service's settings from its own (StackSettings, with any other setting
given to it) and the environment before it starts anything, so a bad value is refused up front and
each child is handed exactly the settings its class declares (Stack.service_settings)."""

from __future__ import annotations

from callgauge_accounts.settings import AccountsSettings
from callgauge_billing.settings import BillingSettings
from callgauge_gateway.settings import GatewaySettings
from callgauge_media.settings import MediaSettings
from callgauge_platform.settings import ServiceSettings
from callgauge_runs.settings import RunsSettings

SERVICE_SETTINGS: dict[str, type[ServiceSettings]] = {
    "accounts": AccountsSettings, "runs": RunsSettings, "billing": BillingSettings,
    "media-engine": MediaSettings, "gateway": GatewaySettings,
}


class PlatformSettings(AccountsSettings, RunsSettings, BillingSettings, MediaSettings, GatewaySettings):
    """Every service's settings in one class, for what configures several services with one
    environment (the manifests in infra/, tests that start several services). No service reads it."""
