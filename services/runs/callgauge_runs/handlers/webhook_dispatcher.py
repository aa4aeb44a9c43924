"""The webhook dispatcher: endpoints (their commands and the encrypted signing secrets), the
deliveries scheduled from what happened (a finished run, a probe's state change) and the attempts.

An attempt is taken by appending `WebhookAttemptStarted` at the delivery stream's version, so any
number of dispatchers (runs-service replicas) can tick side by side: one takes each attempt, the
others find it taken when they decide again. The POST itself goes through the injected
WebhookSender (adapters/webhook_http.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from callgauge_eventstore import EventStore
from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.logs import get_logger
from callgauge_platform.telemetry import tracer
from callgauge_proto.callgauge.events.v1 import monitor_pb2
from opentelemetry import context as otel_context
from prometheus_client import Counter

from callgauge_runs.adapters.webhook_http import WebhookSender
from callgauge_runs.domain import run as run_model
from callgauge_runs.domain import webhooks
from callgauge_runs.domain.errors import NotFound
from callgauge_runs.handlers.app import new_id
from callgauge_runs.handlers.monitor_view import (
    MonitorView, decide, delivery_id_for, delivery_stream, endpoint_stream)
from callgauge_runs.handlers.secrets import Secrets

log = get_logger(__name__)
SECRETS = "webhook-secrets"  # projection table holding endpoint secrets (never in an event)
TRACER = tracer("callgauge.runs.monitor")
DELIVERIES = Counter("callgauge_webhook_attempts_total", "webhook delivery attempts", ["outcome"])
BATCH = 50  # attempts started per tick


class WebhookDispatcher:
    def __init__(self, store: EventStore, view: MonitorView, secrets: Secrets, sender: WebhookSender | None,
                 retry: webhooks.RetryPolicy, allow_private: bool, worker_id: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """`sender`: None for a service that does not dispatch (no attempt is taken then)."""
        self.store, self.view, self.secrets, self.sender = store, view, secrets, sender
        self.retry, self.allow_private, self.worker_id, self.clock = retry, allow_private, worker_id, clock
        self._secrets: dict[str, str] = {}
        self._inflight: set[str] = set()
        self._deliveries: set[asyncio.Task] = set()

    async def start(self) -> None:
        await self._load_secrets()

    async def stop(self) -> None:
        for t in list(self._deliveries):  # an attempt cut short is taken over after its lease
            await cancel_and_wait(t)

    # ------------------------------------------------------------ endpoints

    async def create_endpoint(self, cmd: webhooks.CreateEndpoint, loc: str) -> str:
        """Create an endpoint (validated first: Invalid at `loc`); its signing secret."""
        events = webhooks.decide_create_endpoint(None, cmd, self.allow_private, loc)
        secret = webhooks.new_secret()
        # The secret first: an endpoint never exists without one.
        await self.store.commit_projection(SECRETS, 0, {cmd.endpoint_id: self.secrets.encrypt(secret).encode()})
        self._secrets[cmd.endpoint_id] = secret
        await decide(self.store, self.view, endpoint_stream(cmd.endpoint_id), webhooks.evolve_endpoint,
                     lambda state: webhooks.decide_create_endpoint(state, cmd, self.allow_private, loc) if state is None
                     else [], cmd.endpoint_id)
        return secret

    async def create_webhook(self, account_id: str, mode: str, url: str, events: tuple[str, ...],
                             description: str) -> tuple[webhooks.Endpoint, str]:
        endpoint_id = new_id()
        secret = await self.create_endpoint(
            webhooks.CreateEndpoint(endpoint_id, account_id, mode, url, events, "", description), "url")
        return self.view.endpoints[endpoint_id], secret

    async def drop_endpoint(self, endpoint_id: str) -> None:
        """Delete an endpoint (nothing when it is gone already)."""
        await decide(self.store, self.view, endpoint_stream(endpoint_id), webhooks.evolve_endpoint,
                     lambda ep: [] if ep is None or ep.deleted else
                     webhooks.decide_delete_endpoint(ep, ep.account_id, ep.mode, endpoint_id), endpoint_id)

    async def close_account(self, account_id: str) -> None:
        """Delete every endpoint of a deleted account (deliveries still due give up)."""
        for ep in [e for e in list(self.view.endpoints.values()) if e.account_id == account_id and not e.deleted]:
            await self.drop_endpoint(ep.id)

    async def catch_up_on(self, endpoint_id: str) -> None:
        """An endpoint this replica has not seen yet may have been created through another one."""
        if endpoint_id not in self.view.endpoints:
            await self.view.wait_for(await self.store.last_position())

    def _endpoint(self, account_id: str, mode: str, endpoint_id: str) -> webhooks.Endpoint:
        ep = self.view.endpoints.get(endpoint_id)
        if ep is None or ep.deleted or ep.account_id != account_id or ep.mode != mode:
            raise NotFound("webhook", endpoint_id)
        return ep

    def list_webhooks(self, account_id: str, mode: str) -> list[webhooks.Endpoint]:
        return sorted((e for e in self.view.endpoints.values()
                       if not e.deleted and e.account_id == account_id and e.mode == mode), key=lambda e: e.id)

    async def delete_webhook(self, account_id: str, mode: str, endpoint_id: str) -> None:
        self._endpoint(account_id, mode, endpoint_id)
        await self.drop_endpoint(endpoint_id)

    def deliveries(self, account_id: str, mode: str, endpoint_id: str) -> list[webhooks.Delivery]:
        self._endpoint(account_id, mode, endpoint_id)
        return sorted((d for d in self.view.deliveries.values() if d.endpoint_id == endpoint_id),
                      key=lambda d: d.created_at, reverse=True)[:200]

    async def _load_secrets(self) -> None:
        """Secrets are kept encrypted with the runs service's key (CALLGAUGE_SECRETS_KEY)."""
        rows, _ = await self.store.read_projection(SECRETS)
        for k, v in rows.items():
            if (plain := self.secrets.decrypt(v.decode())) is not None:
                self._secrets[k] = plain

    async def _secret(self, endpoint_id: str) -> str:
        if endpoint_id not in self._secrets:
            await self._load_secrets()
        return self._secrets.get(endpoint_id, "")

    # ------------------------------------------------------------ scheduling deliveries

    async def notify_run_finished(self, event_id: str, run: run_model.Run, at: datetime) -> None:
        """`run.finished` to the endpoints that want it (live runs that are not a probe's)."""
        if run.mode != "live":
            return
        data = webhooks.run_finished_data(run)
        for ep in list(self.view.endpoints.values()):
            if ep.wants("run.finished", run.account_id, run.mode) and not ep.probe_id:
                await self._schedule(ep, "run.finished", event_id, data, at)

    async def notify_state_changed(self, event_id: str, e: monitor_pb2.ProbeStateChanged, at: datetime) -> None:
        probe = self.view.probes.get(e.probe_id)
        if probe is None or probe.mode != "live" or probe.deleted:
            return
        data = webhooks.state_changed_data(probe, e)
        for ep in list(self.view.endpoints.values()):
            if ep.wants("probe.state_changed", probe.account_id, probe.mode, probe.id):
                await self._schedule(ep, "probe.state_changed", event_id, data, at)

    async def _schedule(self, ep: webhooks.Endpoint, event: str, source_event_id: str, data: dict,
                        at: datetime) -> None:
        delivery_id = delivery_id_for(source_event_id, ep.id)
        body = webhooks.body(event, delivery_id, at, data)
        now = self.clock()
        await decide(self.store, None, delivery_stream(delivery_id), webhooks.evolve_delivery,
                     lambda state: webhooks.decide_schedule_delivery(state, delivery_id, ep, event, body, now,
                                                                     source_event_id),
                     ep.id, source_event_id, id_source=delivery_id)

    # ------------------------------------------------------------ attempts

    async def dispatch_once(self, now: datetime) -> None:
        if self.sender is None:
            return
        due = [d.id for d in list(self.view.deliveries.values())
               if webhooks.due(d, now) and d.id not in self._inflight]
        for did in due[:BATCH]:
            self._inflight.add(did)
            task = asyncio.get_running_loop().create_task(self._deliver(did))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, delivery_id: str) -> None:
        try:
            with TRACER.start_as_current_span("webhook.deliver", context=otel_context.Context(),
                                              attributes={"callgauge.delivery_id": delivery_id}):
                await self._attempt(delivery_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook_delivery_failed", delivery_id=delivery_id)
        finally:
            self._inflight.discard(delivery_id)

    async def _attempt(self, delivery_id: str) -> None:
        stream = delivery_stream(delivery_id)
        taken = await decide(self.store, None, stream, webhooks.evolve_delivery,
                             lambda state: webhooks.decide_start_attempt(state, self.clock(), self.worker_id,
                                                                         self.retry),
                             self.view.deliveries[delivery_id].endpoint_id)
        if not taken.events:
            return  # not due (any more): another dispatcher took this attempt
        state: webhooks.Delivery = taken.state
        attempt = taken.events[0].attempt
        ep = self.view.endpoints.get(state.endpoint_id)
        status, error, give_up, started = 0, "", False, time.perf_counter()
        if ep is None or ep.deleted:
            error, give_up = "endpoint deleted", True
        elif not (secret := await self._secret(ep.id)):
            error = "no signing secret for this endpoint"
        else:
            assert self.sender is not None
            status, error = await self.sender.send(ep.url, secret, state, attempt)
        duration = int((time.perf_counter() - started) * 1000)
        DELIVERIES.labels("delivered" if 200 <= status < 300 else "failed").inc()
        await decide(self.store, None, stream, webhooks.evolve_delivery,
                     lambda state: webhooks.decide_attempt_result(state, attempt, status, error, self.clock(),
                                                                  duration, self.retry, give_up),
                     state.endpoint_id)

