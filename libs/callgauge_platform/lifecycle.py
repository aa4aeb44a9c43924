"""Process lifecycle: run a service's main coroutine until SIGTERM/SIGINT, then let it drain."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callgauge_platform.settings import ServiceSettings


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """asyncio.run(main(stop)) where `stop` is set on SIGTERM or SIGINT; main drains and returns.
    The loop's lag is watched meanwhile (callgauge_event_loop_lag_seconds on /metrics)."""

    async def runner() -> None:
        from callgauge_platform.aio import cancel_and_wait
        from callgauge_platform.looplag import watch_loop_lag

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        lag = asyncio.create_task(watch_loop_lag(), name="loop-lag")
        try:
            await main(stop)
        finally:
            await cancel_and_wait(lag)

    asyncio.run(runner())
    return 0


def run_service(name: str, build: Callable[[object], object], settings_class: type[ServiceSettings]) -> int:
    """The whole life of a service process: its settings (`settings_class`, from the environment),
    logs, traces, start, wait for a signal, drain and stop. `build(settings)` returns an object with
    async start() and stop()."""
    from callgauge_platform.datadir import private_process
    from callgauge_platform.logs import get_logger, setup_logging
    from callgauge_platform.telemetry import setup_tracing

    from callgauge_platform.placeholders import refuse_placeholders

    private_process()  # stores, keys and logs it writes are 0600 / 0700
    settings = settings_class()
    refuse_placeholders(settings, name)  # a template's CHANGE-ME secret: exit 2 before anything starts
    setup_logging(name, settings.log_level, settings.log_json)
    provider = setup_tracing(name, settings.otlp_endpoint)
    log = get_logger(name)

    async def serve(stop: asyncio.Event) -> None:
        svc = build(settings)
        await svc.start()
        log.info("started")
        await stop.wait()
        log.info("stopping")
        await svc.stop()
        provider.shutdown()  # flush the spans still batched
        log.info("stopped")

    return run_until_signalled(serve)
