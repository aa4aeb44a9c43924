"""Monitoring inside the runs service: the probe scheduler (handlers/probe_scheduler.py) and the
webhook dispatcher (handlers/webhook_dispatcher.py) over one view of the log, kept here.

Why in the runs service: every fact they need (probes, runs, webhook deliveries) is in its own
event store, and every guarantee rests on that store's expected-version check: a slot is fired
by appending `ProbeSlotFired` at the probe stream's version, a delivery attempt is taken by
appending `WebhookAttemptStarted` at the delivery stream's version. So any number of runs-service
replicas (or several MonitorApps on one store) run the scheduler and the dispatcher side by side;
one of them wins each slot and each attempt. No lock file, no leader election.

Three background tasks:
- the follower keeps the view (probes, endpoints, deliveries) from the global log and reacts to
  new events past its checkpoint: a finished probe run is judged on its probe; a finished
  non-probe run and a probe state change are scheduled as webhook deliveries (never in test
  mode). Reactions get event ids derived from the event they react to, so a replica or a restart
  repeating them appends nothing twice.
- the scheduler ticks (`probe_tick_seconds`): ProbeScheduler.schedule_once.
- the dispatcher ticks: WebhookDispatcher.dispatch_once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from callgauge_bus.codec import decode_payload
from callgauge_eventstore import EventStore
from callgauge_eventstore.aggregate import load
from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.logs import get_logger
from callgauge_proto.callgauge.events.v1 import monitor_pb2, runs_pb2
from google.protobuf.message import Message

from callgauge_runs.adapters.webhook_http import WebhookSender
from callgauge_runs.domain import run as run_model
from callgauge_runs.domain.probe import ProbeRules
from callgauge_runs.domain.webhooks import RetryPolicy
from callgauge_runs.handlers.app import RunsApp, run_stream
from callgauge_runs.handlers.calls import CALL_RECORDED
from callgauge_runs.handlers.monitor_view import MonitorView
from callgauge_runs.handlers.probe_scheduler import ProbeScheduler
from callgauge_runs.handlers.webhook_dispatcher import WebhookDispatcher

log = get_logger(__name__)
REACTOR = "monitor-reactor"  # checkpoint of the follower's reactions
REACTION_TRIES = 3
FOLLOWER = "monitor-follower"


@dataclass(frozen=True)
class MonitorConfig:
    rules: ProbeRules = ProbeRules()
    retry: RetryPolicy = RetryPolicy()
    tick_seconds: float = 1.0
    allow_private: bool = False
    scheduler: bool = True
    dispatcher: bool = True
    worker_id: str = field(default_factory=lambda: f"monitor-{uuid.uuid4().hex[:8]}")
    http_timeout: float = 10.0
    recovery_grace: timedelta = timedelta(seconds=3)  # a fired slot's run missing for longer is started


def monitor_config(settings) -> MonitorConfig:
    """The MonitorConfig of the service's settings (CALLGAUGE_PROBE_*, CALLGAUGE_WEBHOOK_*)."""
    return MonitorConfig(
        rules=ProbeRules(min_interval_seconds=settings.probe_min_interval_seconds),
        retry=RetryPolicy(base=timedelta(seconds=settings.webhook_retry_base_seconds)),
        tick_seconds=settings.probe_tick_seconds, allow_private=settings.webhook_allow_private,
        scheduler=settings.monitor_scheduler, dispatcher=settings.monitor_scheduler)


class MonitorApp:
    """The view and its follower, the probe scheduler and the webhook dispatcher, their ticks."""

    def __init__(self, store: EventStore, runs: RunsApp, config: MonitorConfig | None = None,
                 sender: WebhookSender | None = None) -> None:
        """`sender`: how deliveries are POSTed (adapters/webhook_http.py); required when the
        configuration dispatches."""
        self.store, self.runs = store, runs
        self.config = config or MonitorConfig()
        if self.config.dispatcher and sender is None:
            raise ValueError("a dispatching MonitorApp needs a WebhookSender")
        self.view = MonitorView()
        self.webhooks = WebhookDispatcher(store, self.view, runs.secrets, sender, self.config.retry,
                                          self.config.allow_private, self.config.worker_id)
        self.probes = ProbeScheduler(store, runs, self.view, self.webhooks, self.config.rules,
                                     self.config.recovery_grace)
        self._tasks: list[asyncio.Task] = []
        self._stopping = asyncio.Event()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.webhooks.start()
        self._tasks.append(asyncio.create_task(self._follow(), name=FOLLOWER))
        await self.view.wait_for(await self.store.last_position(), timeout=120)
        if self.config.scheduler:
            self._tasks.append(asyncio.create_task(self._loop(self.probes.schedule_once), name="probe-scheduler"))
        if self.config.dispatcher:
            self._tasks.append(asyncio.create_task(self._loop(self.webhooks.dispatch_once),
                                                   name="webhook-dispatcher"))

    async def stop(self) -> None:
        """Let the scheduler and dispatcher finish their tick (a slot fired gets its run started),
        then stop following the log."""
        self._stopping.set()
        loops = [t for t in self._tasks if t.get_name() != FOLLOWER]
        if loops:
            await asyncio.wait(loops, timeout=15)
        for t in reversed(self._tasks):
            await cancel_and_wait(t)
        self._tasks.clear()
        await self.webhooks.stop()

    async def _loop(self, step: Callable[[datetime], Awaitable[None]]) -> None:
        while not self._stopping.is_set():
            try:
                await step(datetime.now(UTC))
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad tick must not end the loop
                log.exception("monitor_tick_failed", step=getattr(step, "__qualname__", repr(step)))
            try:
                async with asyncio.timeout(self.config.tick_seconds):
                    await self._stopping.wait()
            except TimeoutError:
                pass

    async def _follow(self) -> None:
        """Follow the log for good: a store error restarts the subscription where the view is."""
        while True:
            try:
                await self._follow_from(self.view.position)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("monitor_follower_failed", position=self.view.position)
                await asyncio.sleep(1.0)

    async def _follow_from(self, position: int) -> None:
        checkpoint = await self.store.get_checkpoint(REACTOR)
        async for ev in self.store.subscribe_all(position):
            # a call is neither a probe's, a webhook's nor a run's end: not even decoded (most of
            # the log in a load run)
            payload = None if ev.type == CALL_RECORDED else decode_payload(ev.type, ev.data)
            if payload is not None:
                self.view.apply(payload, ev.recorded_at)
            await self.view.advanced_to(ev.position)  # applied once, even if what follows fails
            if payload is not None and ev.position > checkpoint and await self._react(ev, payload):
                await self.store.set_checkpoint(REACTOR, ev.position)

    # ------------------------------------------------------------ reactions

    async def _react(self, ev, payload: Message) -> bool:
        """React to one new event; True when it was one we react to."""
        for attempt in range(REACTION_TRIES):
            try:
                if isinstance(payload, runs_pb2.RunCompleted | runs_pb2.RunFailed) or type(payload).__name__ in (
                        "RunCancelled", "RunStopped"):
                    await self._on_run_finished(str(ev.id), payload.run_id, ev.recorded_at)  # type: ignore[attr-defined]
                    return True
                if isinstance(payload, monitor_pb2.ProbeStateChanged):
                    await self.webhooks.notify_state_changed(str(ev.id), payload, ev.recorded_at)
                    return True
                return False
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("monitor_reaction_failed", type=ev.type, event_id=str(ev.id), attempt=attempt)
                await asyncio.sleep(0.2)
        return True

    async def _on_run_finished(self, event_id: str, run_id: str, at: datetime) -> None:
        """A probe's run is judged on its probe (which notifies through its state changes); any
        other run is notified as `run.finished`."""
        run, _ = await load(self.store, run_stream(run_id), run_model.evolve_run, decode_payload)
        if run is None:
            return
        probe_id = self.view.run_probe.get(run_id) or run.metadata.get("probe_id", "")
        if probe_id:
            await self.probes.record_run(event_id, probe_id, run, at)
        else:
            await self.webhooks.notify_run_finished(event_id, run, at)

    # ------------------------------------------------------------ deleted accounts

    async def close_account(self, account_id: str, source_event_id: str = "") -> None:
        """A deleted account (RunsApp.close_account): its probes are disabled (no slot fires any
        more) and its webhook endpoints deleted (deliveries still due give up: 'endpoint
        deleted'). Idempotent."""
        await self.view.wait_for(await self.store.last_position())
        await self.probes.close_account(account_id, source_event_id)
        await self.webhooks.close_account(account_id)


__all__ = ["MonitorApp", "MonitorConfig", "monitor_config"]
