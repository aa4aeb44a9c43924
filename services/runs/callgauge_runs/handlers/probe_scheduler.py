"""Probes and their scheduler: probe commands and queries, slots fired on time, each slot's run
started, its result judged on the probe.

A slot is fired by appending `ProbeSlotFired` at the probe stream's version, so any number of
schedulers (runs-service replicas) can tick side by side: one fires each slot, the others find it
fired when they decide again. The slot's run is started with the run id recorded in the slot, so a
crash between the two is repaired on a later tick (a second start of the same id is a conflict)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from callgauge_bus.codec import decode_payload
from callgauge_eventstore import EventStore
from callgauge_eventstore.aggregate import load
from callgauge_platform.logs import get_logger
from callgauge_platform.telemetry import tracer
from callgauge_proto.callgauge.events.v1 import monitor_pb2
from opentelemetry import context as otel_context
from prometheus_client import Counter

from callgauge_runs.domain import probe as probe_model
from callgauge_runs.domain import run as run_model
from callgauge_runs.domain.errors import Conflict, Invalid, NotFound
from callgauge_runs.domain.webhooks import CreateEndpoint
from callgauge_runs.handlers.app import RunsApp, new_id, run_stream
from callgauge_runs.handlers.monitor_view import MonitorView, decide, probe_stream
from callgauge_runs.handlers.webhook_dispatcher import WebhookDispatcher

log = get_logger(__name__)
TRACER = tracer("callgauge.runs.monitor")
SLOTS = Counter("callgauge_probe_slots_total", "probe slots, by who fired them", ["result"])
START_TRIES = 5  # starts of a slot's run that fail for a passing reason before it is given up


@dataclass(frozen=True)
class ProbeAnswer:
    probe: probe_model.Probe
    webhook_secret: str = ""  # the signing secret of a webhook made with the probe (shown once)


class ProbeScheduler:
    def __init__(self, store: EventStore, runs: RunsApp, view: MonitorView, webhooks: WebhookDispatcher,
                 rules: probe_model.ProbeRules, recovery_grace: timedelta) -> None:
        """`recovery_grace`: a fired slot's run still missing after this long is started here."""
        self.store, self.runs, self.view, self.webhooks = store, runs, view, webhooks
        self.rules, self.recovery_grace = rules, recovery_grace
        self._gave_up: set[str] = set()
        self._start_tries: dict[str, int] = {}

    async def _decide(self, probe_id: str, decider, correlation: str = "", causation: str = "",
                      id_source: str = "", wait: bool = True):
        return await decide(self.store, self.view if wait else None, probe_stream(probe_id),
                            probe_model.evolve_probe, decider, correlation or probe_id, causation, id_source)

    # ------------------------------------------------------------ scope

    def _scope_ok(self, account_id: str, mode: str, project_id: str, test_id: str | None) -> tuple[bool, bool]:
        """(the project is there, the test is there — or none was named)."""
        try:
            self.runs.get_project(account_id, mode, project_id)
        except NotFound:
            return False, False
        if test_id is None:
            return True, True
        try:
            self.runs.get_test(account_id, mode, project_id, test_id)
        except NotFound:
            return True, False
        return True, True

    async def _scope_caught_up(self, account_id: str, mode: str, project_id: str,
                               test_id: str | None) -> tuple[bool, bool]:
        """_scope_ok, after catching up with the store when it says no: another replica may have
        created the project or test a moment ago."""
        found = self._scope_ok(account_id, mode, project_id, test_id)
        if all(found):
            return found
        await self.runs.view.wait_for(await self.store.last_position())
        return self._scope_ok(account_id, mode, project_id, test_id)

    # ------------------------------------------------------------ commands

    async def _probe_endpoint(self, account_id: str, mode: str, endpoint_id: str, url: str, probe_id: str) -> str:
        return await self.webhooks.create_endpoint(CreateEndpoint(
            endpoint_id, account_id, mode, url, ("probe.state_changed",), probe_id,
            "webhook_url of probe " + probe_id), "webhook_url")

    async def create_probe(self, cmd: probe_model.CreateProbe) -> ProbeAnswer:
        project_ok, test_ok = await self._scope_caught_up(cmd.account_id, cmd.mode, cmd.project_id, cmd.test_id)
        cmd = _with(cmd, webhook_endpoint_id=new_id() if cmd.webhook_url else "")
        state, _ = await load(self.store, probe_stream(cmd.probe_id), probe_model.evolve_probe, decode_payload)
        probe_model.decide_create_probe(project_ok, test_ok, state, cmd, self.rules)  # validates all first
        secret = ""
        if cmd.webhook_url:
            secret = await self._probe_endpoint(cmd.account_id, cmd.mode, cmd.webhook_endpoint_id, cmd.webhook_url, cmd.probe_id)
        await self._decide(cmd.probe_id, lambda s: probe_model.decide_create_probe(project_ok, test_ok, s, cmd,
                                                                                   self.rules))
        return ProbeAnswer(self.view.probes[cmd.probe_id], secret)

    async def update_probe(self, cmd: probe_model.UpdateProbe) -> ProbeAnswer:
        state, _ = await load(self.store, probe_stream(cmd.probe_id), probe_model.evolve_probe, decode_payload)
        test_ok = True
        if cmd.test_id is not None:
            test_ok = (await self._scope_caught_up(cmd.account_id, cmd.mode, cmd.project_id, cmd.test_id))[1]
        new_url = cmd.webhook_url is not None and state is not None and cmd.webhook_url != state.webhook_url
        cmd = _with(cmd, webhook_endpoint_id=(new_id() if cmd.webhook_url else "") if new_url else None)
        probe_model.decide_update_probe(state, test_ok, cmd, self.rules)  # validates all first
        assert state is not None
        secret = ""
        if new_url and cmd.webhook_url:
            secret = await self._probe_endpoint(cmd.account_id, cmd.mode, cmd.webhook_endpoint_id or "", cmd.webhook_url, state.id)
        decided = await self._decide(state.id, lambda s: probe_model.decide_update_probe(s, test_ok, cmd, self.rules))
        old_endpoint = decided.state.webhook_endpoint_id
        if new_url and old_endpoint:
            await self.webhooks.drop_endpoint(old_endpoint)
        return ProbeAnswer(self.view.probes[state.id], secret)

    async def delete_probe(self, account_id: str, mode: str, project_id: str, probe_id: str) -> None:
        decided = await self._decide(probe_id, lambda s: probe_model.decide_delete_probe(s, account_id, mode, project_id, probe_id))
        if decided.state is not None and decided.state.webhook_endpoint_id:
            await self.webhooks.drop_endpoint(decided.state.webhook_endpoint_id)

    async def acknowledge(self, account_id: str, mode: str, project_id: str, probe_id: str,
                          up_to: int) -> probe_model.Probe:
        await self._decide(probe_id, lambda s: probe_model.decide_acknowledge(s, account_id, mode, project_id, probe_id, up_to))
        return await self.get_probe(account_id, mode, project_id, probe_id)

    async def close_account(self, account_id: str, source_event_id: str = "") -> None:
        """Disable every probe of a deleted account (no slot fires any more); a probe the rules no
        longer accept (e.g. a raised minimum interval) is deleted instead. Idempotent."""
        def disable(state: probe_model.Probe | None) -> list:
            if state is None or state.deleted or not state.enabled:
                return []
            try:
                return probe_model.decide_update_probe(state, True, probe_model.UpdateProbe(
                    probe_id=state.id, project_id=state.project_id, account_id=account_id, mode=state.mode,
                    now=datetime.now(UTC), enabled=False), self.rules)
            except Invalid:
                return probe_model.decide_delete_probe(state, account_id, state.mode, state.project_id, state.id)

        for p in [p for p in list(self.view.probes.values()) if p.account_id == account_id and not p.deleted]:
            await self._decide(p.id, disable, causation=source_event_id)

    # ------------------------------------------------------------ queries

    async def get_probe(self, account_id: str, mode: str, project_id: str, probe_id: str) -> probe_model.Probe:
        p = self.view.probes.get(probe_id)
        if p is None:  # created through another replica a moment ago?
            await self.view.wait_for(await self.store.last_position())
            p = self.view.probes.get(probe_id)
        if not probe_model.visible(p, account_id, mode, project_id):
            raise NotFound("probe", probe_id)
        return p  # type: ignore[return-value]

    def list_probes(self, account_id: str, mode: str, project_id: str) -> list[probe_model.Probe]:
        if not self._scope_ok(account_id, mode, project_id, None)[0]:
            raise NotFound("project", project_id)
        return sorted((p for p in self.view.probes.values() if probe_model.visible(p, account_id, mode, project_id)),
                      key=lambda p: p.id)

    # ------------------------------------------------------------ results

    async def record_run(self, event_id: str, probe_id: str, run: run_model.Run, at: datetime) -> None:
        """Judge a finished run on its probe (events ids derived from the run's end event)."""
        outcome = probe_model.RunOutcome(run.id, run.status, run.summary, run.stopped_at or at, run.result_description)
        await self._decide(probe_id, lambda s: probe_model.decide_record_run(s, outcome), causation=event_id,
                           id_source=f"{event_id}:probe", wait=False)

    # ------------------------------------------------------------ scheduler

    async def schedule_once(self, now: datetime) -> None:
        for p in list(self.view.probes.values()):
            if p.deleted:
                continue
            if p.enabled and now >= p.next_due_at:
                await self._fire(p.id, now)
            await self._repair(p.id, now)
            timeout = self.rules.result_timeout(p.interval_seconds)
            if any(now - fired_at >= timeout for _run, fired_at in p.pending):
                await self._decide(p.id, lambda s: probe_model.decide_expire_runs(s, now, self.rules), wait=False)

    async def _fire(self, probe_id: str, now: datetime) -> None:
        probe = self.view.probes[probe_id]
        if not self._scope_ok(probe.account_id, probe.mode, probe.project_id, probe.test_id)[1]:
            return  # its project or test is gone: no slot, no run (editing the probe's test revives it)
        with TRACER.start_as_current_span("probe.slot", context=otel_context.Context(),
                                          attributes={"callgauge.probe_id": probe_id}):  # one trace per slot
            decided = await self._decide(probe_id, lambda s: probe_model.decide_fire_slot(s, now, new_id()),
                                         wait=False)
            if not decided.events:
                SLOTS.labels("lost_race").inc()
                return  # another scheduler fired this slot
            slot: monitor_pb2.ProbeSlotFired = decided.events[0]  # type: ignore[assignment]
            SLOTS.labels("fired").inc()
            if slot.skipped_slots:
                log.warning("probe_slots_skipped", probe_id=probe_id, skipped=slot.skipped_slots, slot=slot.slot)
            await self._start_run(decided.state, slot.run_id, slot.slot)

    async def _repair(self, probe_id: str, now: datetime) -> None:
        """A slot recorded but its run never started (its scheduler died in between): start it."""
        fired = self.view.last_fired.get(probe_id)
        if fired is None:
            return
        run_id, fired_at = fired
        state = self.view.probes[probe_id]
        if (run_id in self.runs.view.runs or run_id in self._gave_up or now >= state.next_due_at
                or now - fired_at < self.recovery_grace):
            return  # started, hopeless, superseded by the next slot, or its scheduler may still start it
        if await self.store.stream_version(run_stream(run_id)) is not None:
            return
        log.warning("probe_slot_run_repaired", probe_id=probe_id, run_id=run_id)
        await self._start_run(state, run_id, state.last_slot)

    async def _start_run(self, probe: probe_model.Probe, run_id: str, slot: int) -> None:
        try:
            await self.runs.start_run(run_model.StartRun(
                run_id=run_id, project_id=probe.project_id, test_id=probe.test_id, account_id=probe.account_id,
                metadata={"probe_id": probe.id, "probe_slot": str(slot)}, tags=("probe",), mode=probe.mode))
        except Conflict:
            pass  # started already (by another scheduler's repair, or its own before a crash)
        except (NotFound, Invalid) as exc:  # the test was deleted or no longer valid
            self._gave_up.add(run_id)
            log.warning("probe_run_not_started", probe_id=probe.id, run_id=run_id, error=str(exc))
        except Exception as exc:  # e.g. billing refused or unreachable: the repair tries again, a few times
            tries = self._start_tries[run_id] = self._start_tries.get(run_id, 0) + 1
            if tries >= START_TRIES:
                self._gave_up.add(run_id)
            log.warning("probe_run_not_started", probe_id=probe.id, run_id=run_id, error=repr(exc), tries=tries)


def _with(cmd, **kw):
    return replace(cmd, **{k: v for k, v in kw.items() if v is not None})
