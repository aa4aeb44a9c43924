"""Where the rate-limit counters live (the `limits` library's async storage): Redis when
CALLGAUGE_REDIS_URL is set, so every gateway process counts in one place, else this process's
memory (the embedded one-gateway default)."""

from __future__ import annotations

from limits.storage import storage_from_string

from callgauge_gateway.settings import GatewaySettings


def open_limit_storage(settings: GatewaySettings):
    if settings.redis_url:
        return storage_from_string(f"async+{settings.redis_url}", implementation="redispy",
                                   key_prefix="callgauge-limits")
    return storage_from_string("async+memory://")
