"""python -m callgauge_gateway — the REST gateway: the settings, then the application bootstrap
wires, served until a signal (entrypoints/server.py)."""

import sys

from callgauge_platform.datadir import private_process
from callgauge_platform.logs import setup_logging
from callgauge_platform.placeholders import refuse_placeholders
from callgauge_gateway.settings import GatewaySettings
from callgauge_platform.telemetry import setup_tracing

from callgauge_gateway.bootstrap import SERVICE, bootstrap
from callgauge_gateway.entrypoints.server import serve_until_signalled


def main() -> int:
    private_process()  # the idempotency store and the secrets it writes are 0600 / 0700
    settings = GatewaySettings()
    refuse_placeholders(settings, SERVICE)  # a template's CHANGE-ME secret: exit 2 before anything starts
    setup_logging(SERVICE, settings.log_level, settings.log_json)
    provider = setup_tracing(SERVICE, settings.otlp_endpoint)
    started = serve_until_signalled(bootstrap(settings), settings)
    provider.shutdown()  # flush the spans still batched
    return 0 if started else 1


if __name__ == "__main__":
    sys.exit(main())
