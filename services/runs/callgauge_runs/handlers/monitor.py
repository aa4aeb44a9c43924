"""Probes, their scheduler, and the webhook dispatcher, inside the runs service.

Why here: every fact they need (probes, runs, webhook deliveries) is in the runs service's own
event store, and every guarantee rests on that store's expected-version check — a slot is fired by
appending `ProbeSlotFired` at the probe stream's version, a delivery attempt is taken by appending
`WebhookAttemptStarted` at the delivery stream's version. So any number of runs-service replicas
(or several MonitorApps on one store) can run the scheduler and the dispatcher side by side:
one of them wins each slot and each attempt, the others get WrongExpectedVersion and move on.
No lock file, no leader election, no extra service to deploy.

Three background tasks:
- the follower keeps the in-memory view (probes, endpoints, deliveries) from the global log and
  reacts to new events past its checkpoint: a finished probe run is judged on its probe
  (`ProbeRunRecorded`, `ProbeStateChanged`); a finished non-probe run and a probe state change are
  scheduled as webhook deliveries (never in test mode). Reactions get event ids derived from the
  event they react to, so a replica or a restart repeating them appends nothing twice.
- the scheduler ticks (`probe_tick_seconds`), fires due slots and starts each slot's run through
  RunsApp.start_run with the run id recorded in the slot, so a crash between the two is repaired
  on the next tick (the run is started then; a second start of the same id is a no-op conflict).
- the dispatcher ticks, takes due delivery attempts and POSTs them, signed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
from callgauge_bus.codec import decode_payload, new_event
from callgauge_eventstore import EventStore, PositionWaiter, StreamState, WrongExpectedVersion
from callgauge_eventstore.aggregate import load, save
from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.logs import get_logger
from callgauge_platform.telemetry import current_traceparent, tracer
from callgauge_proto.callgauge.events.v1 import monitor_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from google.protobuf.message import Message
from opentelemetry import context as otel_context
from prometheus_client import Counter

from callgauge_runs.domain import compare as cmp
from callgauge_runs.domain import run as run_model
from callgauge_runs.domain import probe as P
from callgauge_runs.domain import webhooks as W
from callgauge_runs.domain.errors import Conflict, Invalid, NotFound, ValidationCollector
from callgauge_runs.handlers.app import RunsApp, new_id, run_stream

log = get_logger(__name__)
SOURCE = "runs"
SECRETS = "webhook-secrets"  # projection table holding endpoint secrets (never in an event)
REACTOR = "monitor-reactor"  # checkpoint of the follower's reactions
_NS = uuid.UUID("0b7e5a53-3c9e-4a57-8a3e-2f3c54d1a901")

TRACER = tracer("callgauge.runs.monitor")
SLOTS = Counter("callgauge_probe_slots_total", "probe slots, by who fired them", ["result"])
DELIVERIES = Counter("callgauge_webhook_attempts_total", "webhook delivery attempts", ["outcome"])


def probe_stream(pid: str) -> str:
    return f"probe-{pid}"


def endpoint_stream(eid: str) -> str:
    return f"webhook-{eid}"


def delivery_stream(did: str) -> str:
    return f"delivery-{did}"


def _id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(_NS, ":".join(parts))


@dataclass(frozen=True)
class MonitorConfig:
    rules: P.ProbeRules = P.ProbeRules()
    retry: W.RetryPolicy = W.RetryPolicy()
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
        rules=P.ProbeRules(min_interval_seconds=settings.probe_min_interval_seconds),
        retry=W.RetryPolicy(base=timedelta(seconds=settings.webhook_retry_base_seconds)),
        tick_seconds=settings.probe_tick_seconds, allow_private=settings.webhook_allow_private,
        scheduler=settings.monitor_scheduler, dispatcher=settings.monitor_scheduler)


@dataclass
class MonitorView(PositionWaiter):
    probes: dict[str, P.Probe] = field(default_factory=dict)
    endpoints: dict[str, W.Endpoint] = field(default_factory=dict)
    deliveries: dict[str, W.Delivery] = field(default_factory=dict)
    run_probe: dict[str, str] = field(default_factory=dict)  # run id -> probe id
    last_fired: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # probe -> (run, fired_at)

    def apply(self, e: Message, at: datetime | None) -> None:
        name = type(e).__name__
        if name.startswith("Probe") and (pid := getattr(e, "probe_id", "")):
            self.probes[pid] = P.evolve_probe(self.probes.get(pid), e, at)  # type: ignore[assignment]
            if isinstance(e, monitor_pb2.ProbeSlotFired):
                self.run_probe[e.run_id] = pid
                self.last_fired[pid] = (e.run_id, P.dt_of(e.fired_at))
        elif name.startswith("WebhookEndpoint"):
            self.endpoints[e.endpoint_id] = W.evolve_endpoint(self.endpoints.get(e.endpoint_id), e, at)  # type: ignore
        elif name.startswith(("WebhookDelivery", "WebhookAttempt")):
            self.deliveries[e.delivery_id] = W.evolve_delivery(self.deliveries.get(e.delivery_id), e, at)  # type: ignore



@dataclass(frozen=True)
class ProbeAnswer:
    probe: P.Probe
    webhook_secret: str = ""


class MonitorApp:
    def __init__(self, store: EventStore, runs: RunsApp, config: MonitorConfig | None = None) -> None:
        self.store, self.runs = store, runs
        self.config = config or MonitorConfig()
        self.view = MonitorView()
        self._tasks: list[asyncio.Task] = []
        self._secrets: dict[str, str] = {}
        self._inflight: set[str] = set()
        self._deliveries: set[asyncio.Task] = set()
        self._gave_up: set[str] = set()
        self._start_tries: dict[str, int] = {}
        self._http: httpx.AsyncClient | None = None
        self._stopping = asyncio.Event()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=self.config.http_timeout, follow_redirects=False)
        await self._load_secrets()
        self._tasks.append(asyncio.create_task(self._follow(), name="monitor-follower"))
        await self.view.wait_for(await self.store.last_position(), timeout=120)
        if self.config.scheduler:
            self._tasks.append(asyncio.create_task(self._loop(self.schedule_once), name="probe-scheduler"))
        if self.config.dispatcher:
            self._tasks.append(asyncio.create_task(self._loop(self.dispatch_once), name="webhook-dispatcher"))

    async def stop(self) -> None:
        """Let the scheduler and dispatcher finish their tick (a slot fired gets its run started),
        then stop following the log."""
        self._stopping.set()
        loops = [t for t in self._tasks if t.get_name() != "monitor-follower"]
        if loops:
            await asyncio.wait(loops, timeout=15)
        for t in reversed(self._tasks):
            await cancel_and_wait(t)
        self._tasks.clear()
        for t in list(self._deliveries):  # an attempt cut short is taken over after its lease
            await cancel_and_wait(t)
        if self._http is not None:
            await self._http.aclose()

    async def _loop(self, step) -> None:
        while not self._stopping.is_set():
            try:
                await step(datetime.now(UTC))
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad tick must not end the loop
                log.exception("monitor_tick_failed", step=step.__name__)
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
            payload = decode_payload(ev.type, ev.data)
            if payload is not None:
                self.view.apply(payload, ev.recorded_at)
            await self.view.advanced_to(ev.position)  # applied once, even if what follows fails
            if payload is not None and ev.position > checkpoint and await self._react(ev, payload):
                await self.store.set_checkpoint(REACTOR, ev.position)

    # ------------------------------------------------------------ appends

    async def _append(self, stream: str, version: int, events: list[Message], correlation: str,
                      causation: str = "", ids: list[uuid.UUID] | None = None, wait: bool = True) -> int:
        new = [new_event(e, correlation, causation, ids[i] if ids else None, SOURCE) for i, e in enumerate(events)]
        position = await save(self.store, stream, version, new)
        if wait:
            await self.view.wait_for(position)
        return position

    async def _load_probe(self, probe_id: str) -> tuple[P.Probe | None, int]:
        return await load(self.store, probe_stream(probe_id), P.evolve_probe, decode_payload)

    # ------------------------------------------------------------ reactions

    async def _react(self, ev, payload: Message) -> bool:
        """React to one new event; True when it was one we react to."""
        for attempt in range(3):
            try:
                if isinstance(payload, runs_pb2.RunCompleted | runs_pb2.RunFailed) or type(payload).__name__ in (
                        "RunCancelled", "RunStopped"):
                    await self._on_run_finished(str(ev.id), payload.run_id, ev.recorded_at)
                    return True
                if isinstance(payload, monitor_pb2.ProbeStateChanged):
                    await self._on_state_changed(str(ev.id), payload, ev.recorded_at)
                    return True
                return False
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("monitor_reaction_failed", type=ev.type, event_id=str(ev.id), attempt=attempt)
                await asyncio.sleep(0.2)
        return True

    async def _on_run_finished(self, event_id: str, run_id: str, at: datetime) -> None:
        run, _ = await load(self.store, run_stream(run_id), run_model.evolve_run, decode_payload)
        if run is None:
            return
        probe_id = self.view.run_probe.get(run_id) or run.metadata.get("probe_id", "")
        if probe_id:
            outcome = P.RunOutcome(run.id, run.status, run.summary, run.stopped_at or at, run.result_description)
            for _ in range(5):
                state, version = await self._load_probe(probe_id)
                events = P.decide_record_run(state, outcome)
                if not events:
                    return
                try:
                    await self._append(probe_stream(probe_id), version, events, probe_id, event_id,
                                       [_id(event_id, "probe", str(i)) for i in range(len(events))], wait=False)
                    return
                except WrongExpectedVersion:
                    continue
            return
        # Not a probe's run: notify `run.finished` (probe runs notify only through state changes).
        if run.mode != "live":
            return
        data = run_json(run)
        for ep in list(self.view.endpoints.values()):
            if ep.wants("run.finished", run.account_id, run.mode) and not ep.probe_id:
                await self._schedule(ep, "run.finished", event_id, data, at)

    async def _on_state_changed(self, event_id: str, e: monitor_pb2.ProbeStateChanged, at: datetime) -> None:
        probe = self.view.probes.get(e.probe_id)
        if probe is None or probe.mode != "live" or probe.deleted:
            return
        data = {"probeId": probe.id, "projectId": probe.project_id, "name": probe.name, "seq": e.seq,
                "fromState": e.from_state, "toState": e.to_state, "runId": e.run_id, "reasons": list(e.reasons),
                "changedAt": _iso(P.dt_of(e.changed_at))}
        for ep in list(self.view.endpoints.values()):
            if ep.wants("probe.state_changed", probe.account_id, probe.mode, probe.id):
                await self._schedule(ep, "probe.state_changed", event_id, data, at)

    async def _schedule(self, ep: W.Endpoint, event: str, source_event_id: str, data: dict, at: datetime) -> None:
        delivery_id = str(_id(source_event_id, ep.id))
        body = W.body(event, delivery_id, at, data)
        events = W.decide_schedule_delivery(None, delivery_id, ep, event, body, datetime.now(UTC), source_event_id)
        try:
            await self._append(delivery_stream(delivery_id), StreamState.NO_STREAM, events, ep.id, source_event_id,
                               [_id(delivery_id, "scheduled")], wait=False)
        except WrongExpectedVersion:
            pass  # scheduled already (a replica or a restart got there first)

    # ------------------------------------------------------------ scheduler

    async def schedule_once(self, now: datetime) -> None:
        for p in list(self.view.probes.values()):
            if p.deleted:
                continue
            if p.enabled and now >= p.next_due_at:
                await self._fire(p.id, now)
            await self._repair(p.id, now)
            timeout = self.config.rules.result_timeout(p.interval_seconds)
            if any(now - fired_at >= timeout for _run, fired_at in p.pending):
                await self._expire(p.id, now)

    async def _fire(self, probe_id: str, now: datetime) -> None:
        state, version = await self._load_probe(probe_id)
        if state is None or not self._scope_ok(state.account_id, state.mode, state.project_id, state.test_id)[1]:
            return  # its project or test is gone: no slot, no run (editing the probe's test revives it)
        events = P.decide_fire_slot(state, now, new_id())
        if not events:
            return
        with TRACER.start_as_current_span("probe.slot", context=_root(),
                                          attributes={"callgauge.probe_id": probe_id}):  # one trace per slot
            await self._fire_slot(state, version, events)

    async def _fire_slot(self, state: P.Probe, version: int, events: list[Message]) -> None:
        probe_id = state.id
        slot: monitor_pb2.ProbeSlotFired = events[0]  # type: ignore[assignment]
        try:
            await self._append(probe_stream(probe_id), version, events, slot.run_id, wait=False)
        except WrongExpectedVersion:
            SLOTS.labels("lost_race").inc()
            return  # another scheduler fired this slot
        SLOTS.labels("fired").inc()
        if slot.skipped_slots:
            log.warning("probe_slots_skipped", probe_id=probe_id, skipped=slot.skipped_slots, slot=slot.slot)
        await self._start_run(state, slot.run_id, slot.slot)

    async def _expire(self, probe_id: str, now: datetime) -> None:
        state, version = await self._load_probe(probe_id)
        events = P.decide_expire_runs(state, now, self.config.rules)
        if events:
            with contextlib.suppress(WrongExpectedVersion):  # another scheduler did it
                await self._append(probe_stream(probe_id), version, events, probe_id, wait=False)

    async def _repair(self, probe_id: str, now: datetime) -> None:
        """A slot recorded but its run never started (its scheduler died in between): start it."""
        fired = self.view.last_fired.get(probe_id)
        if fired is None:
            return
        run_id, fired_at = fired
        state = self.view.probes[probe_id]
        if (run_id in self.runs.view.runs or run_id in self._gave_up or now >= state.next_due_at
                or now - fired_at < self.config.recovery_grace):
            return  # started, hopeless, superseded by the next slot, or its scheduler may still start it
        if await self.store.stream_version(run_stream(run_id)) is not None:
            return
        log.warning("probe_slot_run_repaired", probe_id=probe_id, run_id=run_id)
        await self._start_run(state, run_id, state.last_slot)

    async def _start_run(self, probe: P.Probe, run_id: str, slot: int) -> None:
        try:
            await self.runs.start_run(run_model.StartRun(
                run_id=run_id, project_id=probe.project_id, test_id=probe.test_id, account_id=probe.account_id,
                metadata={"probe_id": probe.id, "probe_slot": str(slot)}, tags=("probe",), mode=probe.mode))
        except (Conflict, WrongExpectedVersion):
            pass  # started already
        except (NotFound, Invalid) as exc:  # the test was deleted or no longer valid
            self._gave_up.add(run_id)
            log.warning("probe_run_not_started", probe_id=probe.id, run_id=run_id, error=str(exc))
        except Exception as exc:  # e.g. billing refused or unreachable: the repair tries again, a few times
            tries = self._start_tries[run_id] = self._start_tries.get(run_id, 0) + 1
            if tries >= 5:
                self._gave_up.add(run_id)
            log.warning("probe_run_not_started", probe_id=probe.id, run_id=run_id, error=repr(exc), tries=tries)

    # ------------------------------------------------------------ dispatcher

    async def dispatch_once(self, now: datetime) -> None:
        if self._stopping.is_set():
            return
        due = [d.id for d in list(self.view.deliveries.values()) if W.due(d, now) and d.id not in self._inflight]
        for did in due[:50]:
            self._inflight.add(did)
            task = asyncio.get_running_loop().create_task(self._deliver(did))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, delivery_id: str) -> None:
        try:
            await self._deliver_once(delivery_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook_delivery_failed", delivery_id=delivery_id)
        finally:
            self._inflight.discard(delivery_id)

    async def _deliver_once(self, delivery_id: str) -> None:
        with TRACER.start_as_current_span("webhook.deliver", context=_root(),
                                          attributes={"callgauge.delivery_id": delivery_id}):
            await self._deliver_attempt(delivery_id)

    async def _deliver_attempt(self, delivery_id: str) -> None:
        stream = delivery_stream(delivery_id)
        state, version = await load(self.store, stream, W.evolve_delivery, decode_payload)
        events = W.decide_start_attempt(state, datetime.now(UTC), self.config.worker_id, self.config.retry)
        if not events or state is None:
            return
        try:
            await self._append(stream, version, events, state.endpoint_id, wait=False)
        except WrongExpectedVersion:
            return  # another dispatcher took this attempt
        attempt = events[0].attempt
        ep = self.view.endpoints.get(state.endpoint_id)
        status, error, give_up, started = 0, "", False, time.perf_counter()
        if ep is None or ep.deleted:
            error, give_up = "endpoint deleted", True
        else:
            status, error = await self._post(ep, state, attempt)
        duration = int((time.perf_counter() - started) * 1000)
        DELIVERIES.labels("delivered" if 200 <= status < 300 else "failed").inc()
        for _ in range(5):
            state, version = await load(self.store, stream, W.evolve_delivery, decode_payload)
            result = W.decide_attempt_result(state, attempt, status, error, datetime.now(UTC), duration,
                                             self.config.retry, give_up)
            if not result:
                return
            try:
                await self._append(stream, version, result, state.endpoint_id, wait=False)  # type: ignore[union-attr]
                return
            except WrongExpectedVersion:
                continue

    async def _post(self, ep: W.Endpoint, d: W.Delivery, attempt: int) -> tuple[int, str]:
        secret = await self._secret(ep.id)
        if not secret:
            return 0, "no signing secret for this endpoint"
        why, address = await resolve_receiver(ep.url, self.config.allow_private)
        if why:
            return 0, f"receiver refused: {why}"
        url, pinned_headers, extensions = pinned_request(ep.url, address)
        body = d.body.encode()
        headers = W.signed_headers(secret, int(time.time()), body, d.event, d.id)
        headers["Callgauge-Attempt"] = str(attempt)
        headers.update({k: v for k, v in [("traceparent", current_traceparent())] if v})
        try:
            assert self._http is not None
            resp = await self._http.post(url, content=body, headers={**headers, **pinned_headers},
                                         extensions=extensions)
        except httpx.HTTPError as exc:
            return 0, f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        return resp.status_code, "" if 200 <= resp.status_code < 300 else f"HTTP {resp.status_code}"

    async def _load_secrets(self) -> None:
        """Secrets are kept encrypted with the runs service's key (CALLGAUGE_SECRETS_KEY)."""
        rows, _ = await self.store.read_projection(SECRETS)
        for k, v in rows.items():
            if (plain := self.runs.secrets.decrypt(v.decode())) is not None:
                self._secrets[k] = plain

    async def _secret(self, endpoint_id: str) -> str:
        if endpoint_id not in self._secrets:
            await self._load_secrets()
        return self._secrets.get(endpoint_id, "")

    # ------------------------------------------------------------ commands: probes

    def _scope_ok(self, account_id: str, mode: str, project_id: str, test_id: str | None) -> tuple[bool, bool]:
        try:
            self.runs.get_project(account_id, project_id, mode)
        except NotFound:
            return False, False
        if test_id is None:
            return True, True
        try:
            self.runs.get_test(account_id, project_id, test_id, mode)
        except NotFound:
            return True, False
        return True, True

    async def _new_endpoint(self, cmd: W.CreateEndpoint, loc: str) -> tuple[list[Message], str]:
        events = W.decide_create_endpoint(None, cmd, self.config.allow_private, loc)
        return events, W.new_secret()

    async def _save_endpoint(self, endpoint_id: str, events: list[Message], secret: str) -> None:
        # The secret first: an endpoint never exists without one.
        await self.store.commit_projection(SECRETS, 0, {endpoint_id: self.runs.secrets.encrypt(secret).encode()})
        self._secrets[endpoint_id] = secret
        await self._append(endpoint_stream(endpoint_id), StreamState.NO_STREAM, events, endpoint_id)

    async def _scope_caught_up(self, account_id: str, mode: str, project_id: str,
                               test_id: str | None) -> tuple[bool, bool]:
        """_scope_ok, after catching up with the store when it says no: another replica may have
        created the project or test a moment ago."""
        found = self._scope_ok(account_id, mode, project_id, test_id)
        if all(found):
            return found
        await self.runs.view.wait_for(await self.store.last_position())
        return self._scope_ok(account_id, mode, project_id, test_id)

    async def create_probe(self, cmd: P.CreateProbe) -> ProbeAnswer:
        project_ok, test_ok = await self._scope_caught_up(cmd.account_id, cmd.mode, cmd.project_id, cmd.test_id)
        state, version = await self._load_probe(cmd.probe_id)
        endpoint_id = new_id() if cmd.webhook_url else ""
        cmd = _with(cmd, webhook_endpoint_id=endpoint_id)
        events = P.decide_create_probe(project_ok, test_ok, state, cmd, self.config.rules)  # validates all first
        secret = ""
        if cmd.webhook_url:
            ep_events, secret = await self._new_endpoint(W.CreateEndpoint(
                endpoint_id, cmd.account_id, cmd.mode, cmd.webhook_url, ("probe.state_changed",), cmd.probe_id,
                "webhook_url of probe " + cmd.probe_id), "webhook_url")
            await self._save_endpoint(endpoint_id, ep_events, secret)
        await self._append(probe_stream(cmd.probe_id), version, events, cmd.probe_id)
        return ProbeAnswer(self.view.probes[cmd.probe_id], secret)

    async def update_probe(self, cmd: P.UpdateProbe) -> ProbeAnswer:
        state, version = await self._load_probe(cmd.probe_id)
        test_ok = True
        if cmd.test_id is not None:
            test_ok = (await self._scope_caught_up(cmd.account_id, cmd.mode, cmd.project_id, cmd.test_id))[1]
        new_url = cmd.webhook_url is not None and state is not None and cmd.webhook_url != state.webhook_url
        endpoint_id = (new_id() if cmd.webhook_url else "") if new_url else None
        cmd = _with(cmd, webhook_endpoint_id=endpoint_id)
        events = P.decide_update_probe(state, test_ok, cmd, self.config.rules)
        assert state is not None
        secret = ""
        if new_url and cmd.webhook_url:
            ep_events, secret = await self._new_endpoint(W.CreateEndpoint(
                endpoint_id or "", cmd.account_id, cmd.mode, cmd.webhook_url, ("probe.state_changed",), state.id,
                "webhook_url of probe " + state.id), "webhook_url")
            await self._save_endpoint(endpoint_id or "", ep_events, secret)
        await self._append(probe_stream(state.id), version, events, state.id)
        if new_url and state.webhook_endpoint_id:
            await self._drop_endpoint(state.webhook_endpoint_id)
        return ProbeAnswer(self.view.probes[state.id], secret)

    async def delete_probe(self, probe_id: str, account_id: str, mode: str, project_id: str) -> None:
        state, version = await self._load_probe(probe_id)
        events = P.decide_delete_probe(state, probe_id, account_id, mode, project_id)
        await self._append(probe_stream(probe_id), version, events, probe_id)
        if state is not None and state.webhook_endpoint_id:
            await self._drop_endpoint(state.webhook_endpoint_id)

    async def acknowledge(self, probe_id: str, account_id: str, mode: str, project_id: str, up_to: int) -> P.Probe:
        for _ in range(5):
            state, version = await self._load_probe(probe_id)
            events = P.decide_acknowledge(state, probe_id, account_id, mode, project_id, up_to)
            try:
                await self._append(probe_stream(probe_id), version, events, probe_id)
                break
            except WrongExpectedVersion:
                continue
        return await self.get_probe(account_id, mode, project_id, probe_id)

    async def close_account(self, account_id: str, source_event_id: str = "") -> None:
        """A deleted account (RunsApp.close_account): disable its probes (no slot fires any more) and
        delete every webhook endpoint of it (deliveries still due give up: 'endpoint deleted').
        Idempotent: a disabled probe and a deleted endpoint are left as they are."""
        await self.view.wait_for(await self.store.last_position())
        for p in [p for p in list(self.view.probes.values()) if p.account_id == account_id and not p.deleted]:
            for _ in range(5):
                state, version = await self._load_probe(p.id)
                if state is None or state.deleted or not state.enabled:
                    break
                try:
                    events = P.decide_update_probe(state, True, P.UpdateProbe(
                        probe_id=state.id, project_id=state.project_id, account_id=account_id, mode=state.mode,
                        now=datetime.now(UTC), enabled=False), self.config.rules)
                except Invalid:  # a probe the rules no longer accept (e.g. a raised minimum): delete it
                    events = P.decide_delete_probe(state, state.id, account_id, state.mode, state.project_id)
                try:
                    await self._append(probe_stream(state.id), version, events, state.id, source_event_id)
                    break
                except WrongExpectedVersion:
                    continue
        for ep in [e for e in list(self.view.endpoints.values()) if e.account_id == account_id and not e.deleted]:
            with contextlib.suppress(WrongExpectedVersion):  # deleted meanwhile
                await self._drop_endpoint(ep.id)

    async def _drop_endpoint(self, endpoint_id: str) -> None:
        ep, version = await load(self.store, endpoint_stream(endpoint_id), W.evolve_endpoint, decode_payload)
        if ep is not None and not ep.deleted:
            await self._append(endpoint_stream(endpoint_id), version,
                               W.decide_delete_endpoint(ep, endpoint_id, ep.account_id, ep.mode), endpoint_id)

    # ------------------------------------------------------------ queries: probes

    async def get_probe(self, account_id: str, mode: str, project_id: str, probe_id: str) -> P.Probe:
        p = self.view.probes.get(probe_id)
        if p is None:  # created through another replica a moment ago?
            await self.view.wait_for(await self.store.last_position())
            p = self.view.probes.get(probe_id)
        if not P.visible(p, account_id, mode, project_id):
            raise NotFound("probe", probe_id)
        return p  # type: ignore[return-value]

    def list_probes(self, account_id: str, mode: str, project_id: str) -> list[P.Probe]:
        if not self._scope_ok(account_id, mode, project_id, None)[0]:
            raise NotFound("project", project_id)
        return sorted((p for p in self.view.probes.values() if P.visible(p, account_id, mode, project_id)),
                      key=lambda p: p.id)

    # ------------------------------------------------------------ webhooks

    async def create_webhook(self, account_id: str, mode: str, url: str, events: tuple[str, ...],
                             description: str) -> tuple[W.Endpoint, str]:
        endpoint_id = new_id()
        ep_events, secret = await self._new_endpoint(
            W.CreateEndpoint(endpoint_id, account_id, mode, url, events, "", description), "url")
        await self._save_endpoint(endpoint_id, ep_events, secret)
        return self.view.endpoints[endpoint_id], secret

    async def catch_up_on(self, endpoint_id: str) -> None:
        """An endpoint this replica has not seen yet may have been created through another one."""
        if endpoint_id not in self.view.endpoints:
            await self.view.wait_for(await self.store.last_position())

    def _endpoint(self, account_id: str, mode: str, endpoint_id: str) -> W.Endpoint:
        ep = self.view.endpoints.get(endpoint_id)
        if ep is None or ep.deleted or ep.account_id != account_id or ep.mode != mode:
            raise NotFound("webhook", endpoint_id)
        return ep

    def list_webhooks(self, account_id: str, mode: str) -> list[W.Endpoint]:
        return sorted((e for e in self.view.endpoints.values()
                       if not e.deleted and e.account_id == account_id and e.mode == mode), key=lambda e: e.id)

    async def delete_webhook(self, account_id: str, mode: str, endpoint_id: str) -> None:
        self._endpoint(account_id, mode, endpoint_id)
        await self._drop_endpoint(endpoint_id)

    def deliveries(self, account_id: str, mode: str, endpoint_id: str) -> list[W.Delivery]:
        self._endpoint(account_id, mode, endpoint_id)
        return sorted((d for d in self.view.deliveries.values() if d.endpoint_id == endpoint_id),
                      key=lambda d: d.created_at, reverse=True)[:200]

    # ------------------------------------------------------------ compare

    async def compare(self, account_id: str, mode: str, project_id: str, base_run_id: str, run_id: str,
                      tolerances: dict[str, float]) -> tuple[run_model.Run, run_model.Run, list[cmp.MetricDelta]]:
        v = ValidationCollector()
        cmp.validate_tolerances(tolerances, v)
        if not base_run_id:
            v.add(["baseRunId"], "the run to compare against", "missing")
        if not run_id:
            v.add(["runId"], "the run to compare", "missing")
        v.raise_if_any()
        base = await self.runs.get_run(account_id, project_id, base_run_id, mode)
        run = await self.runs.get_run(account_id, project_id, run_id, mode)
        for r in (base, run):
            if not r.finished:
                raise Conflict(f"run {r.id} is {r.status}; compare finished runs")
        return base, run, cmp.compare(base.summary or m_pb2.RunSummary(), run.summary or m_pb2.RunSummary(),
                                      tolerances)


def _root() -> otel_context.Context:
    return otel_context.Context()


def _with(cmd, **kw):
    return replace(cmd, **{k: v for k, v in kw.items() if v is not None})


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


def run_json(run: run_model.Run) -> dict:
    s = run.summary or m_pb2.RunSummary()
    return {"testRunId": run.id, "projectId": run.project_id, "testId": run.test_id, "testName": run.test_name,
            "status": run.status, "passed": run.passed, "resultDescription": run.result_description,
            "startedAt": _iso(run.started_at), "stoppedAt": _iso(run.stopped_at), "metadata": run.metadata,
            "tags": list(run.tags),
            "summary": {"callsAttempted": s.calls_attempted, "callsAnswered": s.calls_answered, "asr": s.asr,
                        "mosMean": round(s.mos_mean, 3), "mosMin": round(s.mos_min, 3),
                        "setupP95Ms": round(s.setup_p95_ms, 1), "jitterMsMax": round(s.jitter_ms_max, 2),
                        "lossPctMax": round(s.loss_pct_max, 2)}}


async def resolve_receiver(url: str, allow_private: bool = False) -> tuple[str, str]:
    """(why the receiver is refused or '', the address to connect to). Every address the name
    resolves to must be global; the request then goes to the address that was checked (no second
    resolution that DNS rebinding could answer differently)."""
    host = urlsplit(url).hostname or ""
    v = ValidationCollector()
    W.validate_url(url, allow_private, v, ["url"])
    if v.errors:
        return v.errors[0].msg, ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}", ""
    if not infos:
        return f"cannot resolve {host}", ""
    if not allow_private:
        for info in infos:
            if why := W.address_refused(info[4][0]):
                return f"{host} resolves to {why}", ""
    return "", infos[0][4][0]


def pinned_request(url: str, address: str) -> tuple[str, dict[str, str], dict]:
    """The URL with the checked address in place of the name, the Host header and the TLS server
    name (SNI and certificate check) of the original name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{parts.port}" if parts.port else "")
    host_header = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return (urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), {"Host": host_header},
            {"sni_hostname": host} if parts.scheme == "https" else {})


__all__ = ["MonitorApp", "MonitorConfig", "ProbeAnswer"]
