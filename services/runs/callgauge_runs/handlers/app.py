"""Command and query handlers of the runs service: load a decider's state from its stream,
decide, append at the loaded version; queries read the read model or a stream."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from cryptography.fernet import Fernet
from google.protobuf.message import Message
from prometheus_client import Counter
from uuid6 import uuid7

from callgauge_bus.codec import Delivered, decode_payload, new_event
from callgauge_eventstore import DuplicateEventId, EventStore, WrongExpectedVersion
from callgauge_eventstore.aggregate import MAX_ATTEMPTS, StateCache, decide_and_append, derived_id, load
from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.destinations import DialPolicy
from callgauge_platform.logs import get_logger
from callgauge_proto.callgauge.events.v1 import accounts_pb2, media_pb2, runs_pb2

from callgauge_runs.adapters.billing import BillingPort
from callgauge_runs.domain import common, project as project_model, resources as resource_model, run as run_model, test as test_model
from callgauge_runs.domain import spec as specs
from callgauge_runs.domain.errors import Conflict, FieldError, Invalid, NotFound, QuotaExceeded
from callgauge_runs.handlers import calls as calls_page
from callgauge_runs.handlers.secrets import Secrets
from callgauge_runs.handlers.views import ProjectView, ReadModel

log = get_logger(__name__)
SOURCE = "runs"
RUN_TRANSITIONS = Counter("callgauge_runs_transitions_total", "run state changes", ["status"])
EVENTS_APPENDED = Counter("callgauge_runs_events_appended_total",
                          "events appended to the runs event store (idempotent re-appends included)",
                          ["type"])
VIEWS = "runs-views"  # the read model's name in the store
CALLS = "projection:runs-calls"  # the calls projection's tracking record
CALLS_CATCH_UP_S = 5.0  # how long a page of an ended run's calls waits for the calls projection
CALLS_BATCH = 1000  # events read (and calls written, in one transaction) per step of the calls projector
VIEWS_IDLE_COMMIT = 500  # events that change no row before the read model's checkpoint is written anyway
ID_NS = uuid.UUID("6f1d2c1e-8a55-4c59-9d3e-5b0f8e3a7c21")  # the namespace of the runs service's derived event ids
LEASES_LAPSED = Counter("callgauge_runs_engine_leases_lapsed_total",
                        "taken runs ended FAILED 'media engine lost' because their engine went silent")
DEAF_AFTER_S = 10.0  # the media consumer did not fetch for this long (nor lease/3): lease clocks held
# the media events that are an engine's word about a run (any of them renews its lease)
MEDIA_WORDS = (media_pb2.RunLeaseRenewed, media_pb2.RunAccepted, media_pb2.RunMediaStarted, media_pb2.CallMeasured,
               media_pb2.RunSecondStats, media_pb2.RunMediaFinished, media_pb2.CallAnswered, media_pb2.CallProgress,
               media_pb2.RegistrationMeasured)
# media events the runs service only hears (the run's engine is alive: heard(), on arrival)
LIVENESS_ONLY = (media_pb2.RunLeaseRenewed, media_pb2.CallAnswered, media_pb2.CallProgress, media_pb2.RegistrationMeasured)
STOP_DEADLINE_S = 60.0  # a STOPPING run the engine does not end within this is CANCELLED here


def project_stream(pid: str) -> str:
    return f"project-{pid}"


def test_stream(tid: str) -> str:
    return f"test-{tid}"


def run_stream(rid: str) -> str:
    return f"run-{rid}"


def registrar_stream(rid: str) -> str:
    return f"registrar-{rid}"


def pool_stream(pid: str) -> str:
    return f"credpool-{pid}"


def account_stream(account_id: str) -> str:
    return f"account-{account_id}"


def seconds_projection(run_id: str) -> str:
    return f"run-seconds/{run_id}"


@dataclass(frozen=True)
class Quotas:
    planned_calls_per_run: int = 100_000
    concurrent_runs: int = 20
    concurrent_calls: int = 1000


def new_id() -> str:
    return str(uuid7())


class RunsApp:
    def __init__(self, store: EventStore, billing: BillingPort | None = None, secrets: Secrets | None = None,
                 dial: DialPolicy | None = None, lease_s: float | None = None,
                 stop_deadline_s: float = STOP_DEADLINE_S, quotas: Quotas | None = None) -> None:
        """`secrets`: the key that encrypts SIP passwords (bootstrap passes the configured one;
        without it a throwaway key is made, fit for tests only). `dial`: the operator's SIP
        destination policy (bootstrap passes the configured one; None: destinations unchecked).
        `lease_s`: watch the leases of taken runs (bootstrap passes CALLGAUGE_RUN_LEASE_S; None: no
        watcher, for tests and tools)."""
        self.store = store
        self.dial = dial
        self.quotas = quotas or Quotas()
        self.billing = billing  # None: runs are not metered (tests, tools)
        self.secrets = secrets or Secrets([Fernet.generate_key()])
        self.view = ReadModel()
        # run streams grow by one CallRecorded per call: each load folds only what is new. A run
        # state is small whatever its size (counters and sketches, not calls)
        self.run_cache = StateCache(max_streams=1024)
        self._projector: asyncio.Task | None = None
        self._calls_projector: asyncio.Task | None = None
        self.calls_position = 0  # the store position the calls projection reflects
        self.lease_s, self.stop_deadline_s = lease_s, stop_deadline_s
        self._heard: dict[str, float] = {}  # run id -> when its engine last said anything (monotonic)
        # when the media consumer last fetched (bootstrap wires Consumer.last_poll): a consumer stuck
        # on a handler or a park (its store full) does not hear the engines, so no lease lapses then
        self.media_polled: Callable[[], float] | None = None
        self._stopping_since: dict[str, float] = {}
        self._lease_watcher: asyncio.Task | None = None
        # called with (account id, source event id) once the runs side of a deleted account is done
        # (bootstrap adds the monitor's: probes disabled, webhooks revoked)
        self.account_closed_hooks: list = []

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._projector = asyncio.create_task(self._project(), name="runs-projector")
        self._calls_projector = asyncio.create_task(self._project_calls(), name="runs-calls-projector")
        await self.view.wait_for(await self.store.last_position(), timeout=120)
        if self.lease_s is not None:
            self._lease_watcher = asyncio.create_task(self._watch_leases(), name="run-leases")

    async def stop(self) -> None:
        await cancel_and_wait(self._lease_watcher)
        await cancel_and_wait(self._calls_projector)
        await cancel_and_wait(self._projector)

    # ------------------------------------------------------------ engine leases

    async def _watch_leases(self) -> None:
        """A taken run (QUEUED, RUNNING, STOPPING) whose engine said nothing about it — no
        RunLeaseRenewed, no other media event — for lease_s ends FAILED "media engine lost"; a
        STOPPING run the engine does not end within stop_deadline_s ends CANCELLED. A run's clock
        starts when this process first sees it taken, so a restart of runs never ends one early;
        the bound after an engine dies is lease_s + one check interval (+ consumer lag)."""
        assert self.lease_s is not None
        every = max(0.5, min(5.0, self.lease_s / 6))
        while True:
            await asyncio.sleep(every)
            try:
                await self.check_leases()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # store full or down: the next round tries again
                log.warning("lease_check_failed", error=repr(exc))

    def heard(self, delivered: Delivered) -> None:
        """A media event arrived (the consumer's on_arrival: before it is handled, or parked behind
        its run's earlier records while the store is out): the run's engine is alive."""
        run_id = getattr(delivered.payload, "run_id", "")
        if run_id and isinstance(delivered.payload, MEDIA_WORDS):
            self._heard[run_id] = time.monotonic()

    async def check_leases(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        taken = {rid: run for rid, run in self.view.runs.items() if run.status in ("QUEUED", "RUNNING", "STOPPING")}
        for rid in [r for r in self._heard if r not in taken]:
            self._heard.pop(rid, None)
            self._stopping_since.pop(rid, None)
        if self.lease_s is not None and self.media_polled is not None and \
                now - self.media_polled() > max(DEAF_AFTER_S, self.lease_s / 3):
            # this service is not listening (its consumer waits on its store): an engine's silence
            # cannot be told from our deafness, so every lease clock starts again (like a restart)
            log.warning("lease_clocks_held", deaf_s=round(now - self.media_polled(), 1), runs=len(taken))
            for rid in taken:
                self._heard[rid] = now
            return
        for rid, run in taken.items():
            silent = now - self._heard.setdefault(rid, now)
            if self.lease_s is not None and silent > self.lease_s:
                log.error("media_engine_lost", run_id=rid, silent_s=round(silent, 1))
                LEASES_LAPSED.inc()
                await self._decide_quietly(run_stream(rid), run_model.decide_engine_lost, silent)
                continue
            if run.status == "STOPPING":
                waited = now - self._stopping_since.setdefault(rid, now)
                if waited > self.stop_deadline_s:
                    log.error("stop_deadline_passed", run_id=rid, waited_s=round(waited, 1))
                    await self._decide_quietly(run_stream(rid), run_model.decide_stop_deadline, waited)

    async def _decide_quietly(self, stream: str, decide, *context) -> None:
        try:
            await self._decide(stream, run_model.evolve_run, decide, *context, attempts=1)
        except WrongExpectedVersion:
            pass  # the run moved meanwhile (its engine spoke, another replica decided): next round

    async def _project(self) -> None:
        """Keep the read model: load its rows, then follow the log from their tracking record. Each
        event's row changes and the new checkpoint commit in one transaction, so a restart resumes
        exactly where the committed rows end."""
        rows, position = await self.store.read_projection(VIEWS)
        self.view.load_rows(rows, position)
        await self.view.advanced_to(position)
        committed = position
        async for ev in self.store.subscribe_all(position):
            # a call changes no row here (its figures are in its run's stream, its row in the calls
            # projection): not even decoded
            payload = None if ev.type == calls_page.CALL_RECORDED else decode_payload(ev.type, ev.data)
            changed = self.view.apply(payload, ev.recorded_at) if payload is not None else set()
            # an event that changes no row (a call) moves the checkpoint only now and then: replaying
            # those few after a restart changes nothing either
            if changed or ev.position - committed >= VIEWS_IDLE_COMMIT:
                rows = {k: self.view.row(k) for k in changed}
                await self.store.commit_projection(VIEWS, ev.position,
                                                   {k: v for k, v in rows.items() if v is not None},
                                                   [k for k, v in rows.items() if v is None])
                committed = ev.position
            await self.view.advanced_to(ev.position)

    async def _project_calls(self) -> None:
        """Keep the calls projection: every CallRecorded of the log becomes a row of its run, written
        a batch at a time in the same transaction as the projection's tracking record (a call
        already there is kept: idempotent by (run id, call id))."""
        position = await self.store.get_checkpoint(CALLS)
        self.calls_position = position
        while True:
            events = await self.store.read_all(position, limit=CALLS_BATCH)
            if not events:
                await asyncio.sleep(0.05)
                continue
            rows = [calls_page.row_of(ev.data) for ev in events if ev.type == calls_page.CALL_RECORDED]
            position = events[-1].position
            await self.store.commit_calls(CALLS, position, rows)
            self.calls_position = position

    # ------------------------------------------------------------ commands

    async def _decide(self, stream: str, evolve, decide, *context, correlation: str = "", causation: str = "",
                      id_source: str = "", attempts: int = MAX_ATTEMPTS) -> tuple[object, list[Message]]:
        """The one command loop (callgauge_eventstore.aggregate.decide_and_append): load a
        stream's state, decide on it (with any context the decider takes after the state), append
        at the loaded version; when another writer appended in between, decide again on the new
        state (up to `attempts` times). `id_source`: the i-th event gets the id derived from
        (id_source, i), so a repeat of the same source (a redelivered event) appends nothing
        twice. Then wait until the read model has it. Returns the state the decision was made on
        and the events appended."""
        cache = self.run_cache if evolve is run_model.evolve_run else None
        correlation = correlation or stream.partition("-")[2]
        decided: list[Message] = []

        def new_events(state) -> list:
            decided[:] = decide(state, *context)
            return [new_event(e, correlation, causation, derived_id(id_source, i, ID_NS) if id_source else None, SOURCE)
                    for i, e in enumerate(decided)]

        state, _, _, position = await decide_and_append(self.store, stream, evolve, decode_payload, new_events,
                                                        cache=cache, attempts=attempts)
        if position is None:
            return state, []
        for e in decided:
            EVENTS_APPENDED.labels(e.DESCRIPTOR.name).inc()
        await self.view.wait_for(position)
        return state, list(decided)

    async def _project_of(self, project_id: str) -> project_model.Project | None:
        project, _ = await load(self.store, project_stream(project_id), project_model.evolve_project, decode_payload)
        return project

    # projects

    async def _slug(self, decide, account_id: str, mode: str, slug: str, project_id: str) -> None:
        key = hashlib.sha256(f"{account_id}\x00{mode}\x00{slug}".encode()).hexdigest()
        await self._decide(f"slug-{key}", project_model.evolve_slug, decide, project_id, slug, correlation=project_id)

    async def create_project(self, cmd: project_model.CreateProject) -> ProjectView:
        """Decide, claim the slug (its own stream: a race loses with a conflict), then append."""
        if not cmd.slug:  # a derived slug is made unique (pbx, pbx-2, …); a chosen one must be free
            cmd = replace(cmd, slug=self.view.free_slug(cmd.account_id, cmd.mode, project_model.slugify(cmd.name.strip())))
        taken = self.view.slug_taken(cmd.account_id, cmd.mode, cmd.slug)
        stream = project_stream(cmd.project_id)
        project_model.decide_create_project(await self._project_of(cmd.project_id), cmd, taken)  # valid first
        await self._slug(project_model.decide_claim_slug, cmd.account_id, cmd.mode, cmd.slug, cmd.project_id)
        try:
            await self._decide(stream, project_model.evolve_project, project_model.decide_create_project, cmd, taken)
        except BaseException:
            await asyncio.shield(self._slug(project_model.decide_release_slug, cmd.account_id, cmd.mode, cmd.slug,
                                            cmd.project_id))
            raise
        return self.view.projects[cmd.project_id]

    async def update_project(self, cmd: project_model.UpdateProject) -> ProjectView:
        taken = cmd.slug is not None and self.view.slug_taken(cmd.account_id, cmd.mode, cmd.slug, but=cmd.project_id)
        stream = project_stream(cmd.project_id)
        state = await self._project_of(cmd.project_id)
        events = project_model.decide_update_project(state, cmd, taken)  # valid first
        new = events[0].slug if events else state.slug  # type: ignore[union-attr]  # decided: it exists
        if new != state.slug:  # type: ignore[union-attr]
            await self._slug(project_model.decide_claim_slug, cmd.account_id, cmd.mode, new, cmd.project_id)
        try:
            decided_on, _ = await self._decide(stream, project_model.evolve_project,
                                               project_model.decide_update_project, cmd, taken)
        except BaseException:
            if new != state.slug:  # type: ignore[union-attr]
                await asyncio.shield(self._slug(project_model.decide_release_slug, cmd.account_id, cmd.mode, new,
                                                cmd.project_id))
            raise
        old = decided_on.slug  # type: ignore[attr-defined]  # as it was when the update was appended
        if new != old:
            await self._slug(project_model.decide_release_slug, cmd.account_id, cmd.mode, old, cmd.project_id)
        return self.get_project(cmd.account_id, cmd.mode, cmd.project_id)

    async def delete_project(self, cmd: project_model.DeleteProject) -> None:
        state, _ = await self._decide(project_stream(cmd.project_id), project_model.evolve_project,
                                      project_model.decide_delete_project, cmd)
        await self._slug(project_model.decide_release_slug, cmd.account_id, cmd.mode, state.slug,  # type: ignore[attr-defined]
                         cmd.project_id)

    # tests

    async def create_test(self, cmd: test_model.CreateTest) -> test_model.Test:
        project = await self._project_of(cmd.project_id)
        resources = self.view.resources_of(cmd.project_id)
        await self._decide(test_stream(cmd.test_id), test_model.evolve_test,
                           lambda state, c: test_model.decide_create_test(project, state, c, resources, self.dial), cmd,
                           correlation=cmd.project_id)
        return self.view.tests[cmd.test_id]

    async def update_test(self, cmd: test_model.UpdateTest) -> test_model.Test:
        self.get_project(cmd.account_id, cmd.mode, cmd.project_id)
        await self._decide(test_stream(cmd.test_id), test_model.evolve_test, test_model.decide_update_test, cmd,
                           self.view.resources_of(cmd.project_id), self.dial, correlation=cmd.project_id)
        return self.get_test(cmd.account_id, cmd.mode, cmd.project_id, cmd.test_id)

    async def delete_test(self, cmd: test_model.DeleteTest) -> None:
        self.get_project(cmd.account_id, cmd.mode, cmd.project_id)
        await self._decide(test_stream(cmd.test_id), test_model.evolve_test, test_model.decide_delete_test, cmd,
                           correlation=cmd.project_id)

    # registrars and credential pools

    async def create_registrar(self, cmd: resource_model.CreateRegistrar) -> resource_model.Registrar:
        project = await self._project_of(cmd.project_id)
        await self._decide(registrar_stream(cmd.registrar_id), resource_model.evolve_registrar,
                           lambda state, c: resource_model.decide_create_registrar(project, state, c, self.dial), cmd,
                           correlation=cmd.project_id)
        return self.view.registrars[cmd.registrar_id]

    async def update_registrar(self, cmd: resource_model.UpdateRegistrar) -> resource_model.Registrar:
        self.get_project(cmd.account_id, cmd.mode, cmd.project_id)
        await self._decide(registrar_stream(cmd.registrar_id), resource_model.evolve_registrar, resource_model.decide_update_registrar,
                           cmd, self.dial, correlation=cmd.project_id)
        return self.get_registrar(cmd.account_id, cmd.mode, cmd.project_id, cmd.registrar_id)

    async def delete_registrar(self, cmd: resource_model.DeleteResource) -> None:
        self.get_project(cmd.account_id, cmd.mode, cmd.project_id)
        await self._decide(registrar_stream(cmd.resource_id), resource_model.evolve_registrar, resource_model.decide_delete_registrar,
                           cmd, self.view.tests_using(cmd.project_id, cmd.resource_id), correlation=cmd.project_id)

    def encrypt_credentials(self, creds: list[tuple[str, str, str, str | None]]) -> tuple[resource_model.Credential, ...]:
        """(username, auth_username, domain, password or None) -> credentials with the password
        encrypted ("" when none was given: the decider keeps a stored one or reports it missing)."""
        return tuple(resource_model.Credential(u, a, d, self.secrets.encrypt(pw) if pw else "") for u, a, d, pw in creds)

    async def create_pool(self, cmd: resource_model.CreateCredentialPool) -> resource_model.CredentialPool:
        project = await self._project_of(cmd.project_id)
        await self._decide(pool_stream(cmd.pool_id), resource_model.evolve_pool,
                           lambda state, c: resource_model.decide_create_pool(project, state, c), cmd,
                           correlation=cmd.project_id)
        return self.view.pools[cmd.pool_id]

    async def update_pool(self, cmd: resource_model.UpdateCredentialPool) -> resource_model.CredentialPool:
        self.get_project(cmd.account_id, cmd.mode, cmd.project_id)
        await self._decide(pool_stream(cmd.pool_id), resource_model.evolve_pool, resource_model.decide_update_pool, cmd,
                           correlation=cmd.project_id)
        return self.get_pool(cmd.account_id, cmd.mode, cmd.project_id, cmd.pool_id)

    async def delete_pool(self, cmd: resource_model.DeleteResource) -> None:
        self.get_project(cmd.account_id, cmd.mode, cmd.project_id)
        await self._decide(pool_stream(cmd.resource_id), resource_model.evolve_pool, resource_model.decide_delete_pool,
                           cmd, self.view.tests_using(cmd.project_id, cmd.resource_id), correlation=cmd.project_id)

    # runs

    def find_test(self, account_id: str, mode: str, project_id: str, name: str) -> test_model.Test:
        """The caller's test named `name` (in one project, or in any of the caller's projects)."""
        projects = {p.project.id for p in self.view.projects_of(account_id, mode)}
        found = [t for t in self.view.tests.values() if t.name == name and t.project_id in projects
                 and (not project_id or t.project_id == project_id)]
        if not found:
            raise NotFound("test", name)
        if len(found) > 1:
            raise Invalid([FieldError(["test.name"], f"{len(found)} tests are named {name!r} in different "
                                                     "projects: name the project or use test.id")])
        return found[0]

    def project_of_test(self, account_id: str, mode: str, test_id: str) -> str:
        t = self.view.tests.get(test_id)
        if t is None or not common.owned(t, account_id, mode) or t.project_id not in self.view.projects:
            raise NotFound("test", test_id)
        return t.project_id

    def _refuse_closed(self, account_id: str) -> None:
        if account_id in self.view.closed:
            raise Conflict(f"the account {account_id} was deleted: no run of it starts")

    async def start_run(self, cmd: run_model.StartRun) -> run_model.Run:
        """Snapshot the test (overrides applied, pools resolved) as RunRequested."""
        self._refuse_closed(cmd.account_id)
        self.get_project(cmd.account_id, cmd.mode, cmd.project_id)
        test, _ = await load(self.store, test_stream(cmd.test_id), test_model.evolve_test, decode_payload)
        resources = self.view.resources_of(cmd.project_id)
        state, _ = await load(self.store, run_stream(cmd.run_id), run_model.evolve_run, decode_payload, self.run_cache)
        events = run_model.decide_start_run(test, state, cmd, resources, self.dial)  # valid first
        self._check_quotas(cmd.account_id, events[0].spec)
        if self.billing is not None:  # hold the run's maximum cost first; not payable -> not started
            await self.billing.reserve(cmd.account_id, cmd.mode, cmd.project_id, cmd.test_id, cmd.run_id,
                                       events[0].spec)
        try:
            # a concurrent start of the same run id: the loser decides again on the started run
            # and gets the domain's Conflict
            await self._decide(run_stream(cmd.run_id), run_model.evolve_run,
                               lambda s: run_model.decide_start_run(test, s, cmd, resources, self.dial))
        except BaseException:
            # the run was started all the same (by a concurrent start of its id): the hold is its own
            if await self.store.stream_version(run_stream(cmd.run_id)) is not None:
                raise
            if self.billing is not None:
                try:
                    await asyncio.shield(self.billing.release(cmd.account_id, cmd.mode, cmd.run_id))
                except Exception as exc:  # the start's own error is the one to report
                    log.warning("reservation_not_released", run_id=cmd.run_id, error=repr(exc))
            raise
        RUN_TRANSITIONS.labels("PENDING").inc()
        if cmd.account_id in self.view.closed:  # closed while this one was starting: it ends too
            await self._stop_quietly(cmd.account_id, cmd.mode, cmd.run_id)
        return await self.get_run(cmd.account_id, cmd.mode, cmd.project_id, cmd.run_id)

    def _check_quotas(self, account_id: str, spec) -> None:
        """Per-account quotas, test mode included: planned calls per run (422), an action's concurrency
        above the concurrent-calls quota (422), unfinished runs at once (QuotaExceeded: 429). Each
        answer names the quota and its setting. (The media engine holds an account's calls beyond the
        concurrent-calls quota at run time: engine/fairness.py.)"""
        planned = specs.planned_attempts(spec)
        if planned > self.quotas.planned_calls_per_run:
            raise Invalid([FieldError(["steps"], f"the run plans {planned} calls; the quota is "
                                      f"{self.quotas.planned_calls_per_run} per run "
                                      "(quota_planned_calls_per_run, CALLGAUGE_QUOTA_PLANNED_CALLS_PER_RUN)",
                                      "quota_exceeded")])
        for si, step in enumerate(spec.steps):
            for ai, action in enumerate(step.actions):
                kind = action.WhichOneof("kind")
                field = {"call": "concurrency", "load": "max_concurrency"}.get(kind or "")
                asked = getattr(getattr(action, kind), field) if field else 0
                if asked > self.quotas.concurrent_calls:
                    raise Invalid([FieldError(["steps", si, "actions", ai, field],
                                              f"the action asks for {asked} concurrent calls; the quota is "
                                              f"{self.quotas.concurrent_calls} calls up at once per account "
                                              "(quota_concurrent_calls, CALLGAUGE_QUOTA_CONCURRENT_CALLS)",
                                              "quota_exceeded")])
        active = sum(1 for r in self.view.runs.values() if r.account_id == account_id and not r.finished)
        if active >= self.quotas.concurrent_runs:
            raise QuotaExceeded(f"concurrent runs quota reached: {active} of {self.quotas.concurrent_runs} "
                                "runs unfinished (CALLGAUGE_QUOTA_CONCURRENT_RUNS); retry when one ends")

    async def stop_run(self, cmd: run_model.StopRun) -> run_model.Run:
        await self._decide(run_stream(cmd.run_id), run_model.evolve_run, run_model.decide_stop_run, cmd)
        return await self.get_run(cmd.account_id, cmd.mode, "", cmd.run_id)

    async def revoke_kiosk(self, cmd: run_model.RevokeKioskLinks) -> run_model.Run:
        await self._decide(run_stream(cmd.run_id), run_model.evolve_run, run_model.decide_revoke_kiosk, cmd)
        return await self.get_run(cmd.account_id, cmd.mode, "", cmd.run_id)

    # ------------------------------------------------------------ deleted accounts

    async def close_account(self, account_id: str, source_event_id: str) -> None:
        """The accounts service deleted the account (its AccountDeleted on Kafka): record it (no run of
        it starts any more), stop its unfinished runs, revoke its kiosk links, then run the hooks
        (probes disabled, webhooks revoked). Every step is idempotent: a redelivery repeats nothing."""
        if account_id not in self.view.closed:
            await self._decide(account_stream(account_id), run_model.evolve_account_closed,
                               run_model.decide_close_account, account_id, source_event_id,
                               causation=source_event_id, id_source=f"{source_event_id}:account-closed")
            await self.view.wait_for(await self.store.last_position())
        runs = [r for r in list(self.view.runs.values()) if r.account_id == account_id]
        for r in runs:
            if not r.finished:
                await self._stop_quietly(account_id, r.mode, r.id)
            if r.kiosk_hashes:
                await self._decide(run_stream(r.id), run_model.evolve_run, run_model.decide_revoke_kiosk,
                                   run_model.RevokeKioskLinks(r.id, account_id, r.mode))
        for hook in self.account_closed_hooks:
            await hook(account_id, source_event_id)
        log.info("account_closed", account_id=account_id, runs=len(runs))

    async def _stop_quietly(self, account_id: str, mode: str, run_id: str) -> None:
        with contextlib.suppress(Conflict):  # ended meanwhile
            await self._decide(run_stream(run_id), run_model.evolve_run, run_model.decide_stop_run,
                               run_model.StopRun(run_id, account_id, mode, "the account was deleted"))

    async def on_media_batch(self, batch: list[Delivered]) -> None:
        """A batch of media events as the consumer fetched it (in order per partition, so per run).
        Consecutive calls of one run are decided on one load and appended in one write; anything
        else goes through on_media_event in its place."""
        calls: list[Delivered] = []
        for delivered in batch:
            msg = delivered.payload
            if isinstance(msg, LIVENESS_ONLY):
                continue  # heard on arrival (the lease); deciding nothing, they do not split a run of calls
            if isinstance(msg, media_pb2.CallMeasured) and msg.run_id:
                if calls and calls[-1].payload.run_id != msg.run_id:  # type: ignore[union-attr]
                    await self._record_calls(calls)
                    calls = []
                calls.append(delivered)
                continue
            if calls:
                await self._record_calls(calls)
                calls = []
            await self.on_media_event(delivered)
        if calls:
            await self._record_calls(calls)

    async def _record_calls(self, batch: list[Delivered]) -> None:
        """Calls of one run: each CallRecorded gets an id derived from its media event's id, so a
        redelivery is a repeat the store keeps once. A batch mixing new and already recorded calls
        (a redelivery that overlaps) is appended call by call."""
        run_id = batch[0].payload.run_id  # type: ignore[union-attr]
        self._heard[run_id] = time.monotonic()  # the run's engine is alive: its lease holds

        decided: list = []

        def new_events(state) -> list:
            decided.clear()  # a retry after a concurrent write decides again
            if state is None:
                return []
            # one CallRecorded per CallMeasured: its id is that of on_media_event's first event
            out = []
            for d in batch:
                for e in run_model.decide_media_event(state, d.payload):
                    decided.append(e)
                    out.append(new_event(e, run_id, d.event_id, derived_id(d.event_id, 0, ID_NS), SOURCE))
            return out

        def fold(state, _events) -> run_model.Run:  # the batch at once, from the decided messages
            if all(isinstance(e, runs_pb2.CallRecorded) for e in decided):
                return run_model.record_calls(state, [e.call for e in decided])
            for e in decided:  # CallRecorded's evolve does not read the time; nothing else comes here today
                state = run_model.evolve_run(state, e, None)
            return state

        try:
            state, _, events, position = await decide_and_append(
                self.store, run_stream(run_id), run_model.evolve_run, decode_payload, new_events,
                cache=self.run_cache, fold_appended=fold)
        except DuplicateEventId:
            for d in batch:
                await self.on_media_event(d)
            return
        if state is None:
            log.warning("media_event_for_unknown_run", run_id=run_id, type="CallMeasured", count=len(batch))
        if position is None:
            return
        EVENTS_APPENDED.labels("CallRecorded").inc(len(events))
        RUN_TRANSITIONS.labels("CallRecorded").inc(len(events))
        # no wait for the runs view here (read-your-writes is for a command's answer): CallRecorded
        # changes no row of it, nobody waits on this write, and the wait held the consumer's next
        # fetch behind the view projector's read of these events (up to its 10 s timeout, an error)

    async def on_media_event(self, delivered: Delivered) -> None:
        """Move a run along as the media-engine reports. Idempotent: the events decided from a
        media event get ids derived from its id, so a redelivery re-appends the same ids (a no-op)."""
        msg = delivered.payload
        if isinstance(msg, accounts_pb2.AccountDeleted) and msg.account_id:
            await self.close_account(msg.account_id, delivered.event_id)
            return
        run_id = getattr(msg, "run_id", "")
        if run_id:
            self._heard[run_id] = time.monotonic()  # the run's engine is alive: its lease holds
        if isinstance(msg, media_pb2.RunLeaseRenewed):
            return
        if run_id and isinstance(msg, media_pb2.RunSecondStats):
            await self.record_second(msg)
            return
        if not run_id or not isinstance(
            msg, media_pb2.RunAccepted | media_pb2.RunMediaStarted | media_pb2.CallMeasured | media_pb2.RunMediaFinished
        ):
            return
        state, events = await self._decide(run_stream(run_id), run_model.evolve_run,
                                           lambda s: [] if s is None else run_model.decide_media_event(s, msg),
                                           correlation=run_id, causation=delivered.event_id,
                                           id_source=delivered.event_id)
        if state is None:
            log.warning("media_event_for_unknown_run", run_id=run_id, type=delivered.envelope.type)
        for e in events:
            RUN_TRANSITIONS.labels(type(e).__name__).inc()

    # ------------------------------------------------------------ per-second statistics

    async def record_second(self, msg: media_pb2.RunSecondStats) -> None:
        """Keep a RunSecondStats for the run's report: a row per (engine, second) in the run's own
        projection `run-seconds/<run id>`. Upserted by key, so a redelivery changes nothing."""
        if msg.run_id not in self.view.runs:
            log.warning("second_stats_for_unknown_run", run_id=msg.run_id)
            return
        await self.store.commit_projection(seconds_projection(msg.run_id), msg.second,
                                           {f"{msg.engine_id}/{msg.second:08d}": msg.SerializeToString()})

    async def run_seconds(self, account_id: str, mode: str, run_id: str) -> list[media_pb2.RunSecondStats]:
        await self.get_run(account_id, mode, "", run_id)
        rows, _ = await self.store.read_projection(seconds_projection(run_id))
        out = []
        for raw in rows.values():
            s = media_pb2.RunSecondStats()
            s.ParseFromString(raw)
            out.append(s)
        out.sort(key=lambda s: (s.at.seconds, s.at.nanos, s.engine_id, s.second))
        return out

    # ------------------------------------------------------------ queries
    # Every query is scoped by (account, mode): another account's or mode's id is not found. The
    # parameters come in one order everywhere: account, mode, project, then the id asked for.

    def list_projects(self, account_id: str, mode: str = "live") -> list[ProjectView]:
        return self.view.projects_of(account_id, mode)

    def get_project(self, account_id: str, mode: str, project_id: str) -> ProjectView:
        pv = self.view.projects.get(project_id)
        if pv is None or not common.owned(pv.project, account_id, mode):
            raise NotFound("project", project_id)
        return pv

    def list_tests(self, account_id: str, mode: str, project_id: str) -> list[test_model.Test]:
        """A project's tests; with no project, every test of the account and mode (GET /api/v1/tests),
        by project then test id."""
        if not project_id:
            projects = {p.project.id for p in self.view.projects_of(account_id, mode)}
            return sorted((t for t in self.view.tests.values()
                           if t.project_id in projects and common.owned(t, account_id, mode)),
                          key=lambda t: (t.project_id, t.id))
        self.get_project(account_id, mode, project_id)
        return self.view.tests_of(project_id)

    def _of_project(self, table: dict, kind: str, account_id: str, mode: str, project_id: str, item_id: str):
        """`table[item_id]` when the project is the caller's and the item is the project's and the
        caller's (NotFound for the project first, then for the item)."""
        self.get_project(account_id, mode, project_id)
        item = table.get(item_id)
        if item is None or not common.owned(item, account_id, mode) or item.project_id != project_id:
            raise NotFound(kind, item_id)
        return item

    def get_test(self, account_id: str, mode: str, project_id: str, test_id: str) -> test_model.Test:
        return self._of_project(self.view.tests, "test", account_id, mode, project_id, test_id)

    def list_registrars(self, account_id: str, mode: str, project_id: str) -> list[resource_model.Registrar]:
        self.get_project(account_id, mode, project_id)
        return self.view.registrars_of(project_id)

    def get_registrar(self, account_id: str, mode: str, project_id: str, rid: str) -> resource_model.Registrar:
        return self._of_project(self.view.registrars, "registrar", account_id, mode, project_id, rid)

    def list_pools(self, account_id: str, mode: str, project_id: str) -> list[resource_model.CredentialPool]:
        self.get_project(account_id, mode, project_id)
        return self.view.pools_of(project_id)

    def get_pool(self, account_id: str, mode: str, project_id: str, pid: str) -> resource_model.CredentialPool:
        return self._of_project(self.view.pools, "credential pool", account_id, mode, project_id, pid)

    async def get_run(self, account_id: str, mode: str, project_id: str, run_id: str) -> run_model.Run:
        run, _ = await load(self.store, run_stream(run_id), run_model.evolve_run, decode_payload, self.run_cache)
        if (not common.owned(run, account_id, mode) or (project_id and run.project_id != project_id)
                or run.project_id not in self.view.projects):  # a deleted project takes its runs along
            raise NotFound("run", run_id)
        return run

    def list_runs(self, account_id: str, mode: str, project_id: str, test_id: str = "", status: str = "",
                  created_from: datetime | None = None, created_to: datetime | None = None) -> list[run_model.Run]:
        self.get_project(account_id, mode, project_id)
        return [r for r in self.view.runs_of(account_id, mode, project_id)
                if (not test_id or r.test_id == test_id) and (not status or r.status == status)
                and (created_from is None or (r.created_at is not None and r.created_at >= created_from))
                and (created_to is None or (r.created_at is not None and r.created_at < created_to))]

    async def list_run_calls(self, account_id: str, mode: str, project_id: str, run_id: str,
                             request: calls_page.PageRequest) -> calls_page.Page:
        """A page of a run's calls from the calls projection (what is recorded now). Once the run has
        ended, the page waits (at most CALLS_CATCH_UP_S) for the projection to reach the log's head, so
        that a run GetRun shows as ended lists every call it recorded."""
        run = await self.get_run(account_id, mode, project_id, run_id)  # as GetRun sees it (NotFound)
        if run.finished:
            head = await self.store.last_position()
            deadline = asyncio.get_running_loop().time() + CALLS_CATCH_UP_S
            while self.calls_position < head and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
        return await calls_page.read_page(self.store, run_id, request)

    def project_name(self, project_id: str) -> str:
        pv = self.view.projects.get(project_id)
        return pv.project.name if pv else ""

    async def run_by_kiosk_token(self, token: str) -> run_model.Run:
        run_id = self.view.kiosk.get(hashlib.sha256(token.encode()).hexdigest()) if token else None
        if run_id is None:
            raise NotFound("kiosk link", "…")  # never echo a token
        run, _ = await load(self.store, run_stream(run_id), run_model.evolve_run, decode_payload, self.run_cache)
        if run is None or run.account_id in self.view.closed:  # a deleted account's links are dead at once
            raise NotFound("kiosk link", "…")
        return run

    async def run_credentials(self, run_id: str) -> dict[str, str]:
        """`<pool id>/<username>` -> password for the credential pools the run uses, while the run is
        in flight only (an ended run's passwords are no longer handed out)."""
        run, _ = await load(self.store, run_stream(run_id), run_model.evolve_run, decode_payload, self.run_cache)
        if run is None:
            raise NotFound("run", run_id)
        if run.finished:
            raise Conflict(f"run {run_id} has ended ({run.status}): its credentials are no longer served")
        out: dict[str, str] = {}
        for pool_id in run.credential_pools:
            pool, _ = await load(self.store, pool_stream(pool_id), resource_model.evolve_pool, decode_payload)
            if pool is None or pool.deleted:
                continue
            for c in pool.credentials:
                plain = self.secrets.decrypt(c.password_ciphertext)
                if plain is None:
                    log.error("credential_undecryptable", pool_id=pool_id, username=c.username)
                    continue
                out[f"{pool_id}/{c.username}"] = plain
        return out
