"""The Run aggregate: a snapshot of a test with its overrides applied, its lifecycle as the media
engine reports it, and its verdict. Deciders; pure: no I/O, no clock except what the caller passes in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from google.protobuf.message import Message

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_platform.destinations import DialPolicy
from callgauge_platform.run_states import TERMINAL

from callgauge_runs.domain import overrides as overrides_mod
from callgauge_runs.domain import spec as specs
from callgauge_runs.domain.callstats import CallStats
from callgauge_runs.domain import verdict
from callgauge_runs.domain.common import check_mode, owned, validate_metadata
from callgauge_runs.domain.errors import Conflict, NotFound, ValidationCollector
from callgauge_runs.domain.resources import Resources
from callgauge_runs.domain.test import Test


@dataclass(frozen=True)
class StartRun:
    run_id: str
    project_id: str
    test_id: str
    account_id: str
    metadata: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    mode: str = "live"
    overrides: dict[str, str] = field(default_factory=dict)
    kiosk_token_sha256: str = ""    # mint a kiosk link with this token hash


@dataclass(frozen=True)
class StopRun:
    run_id: str
    account_id: str
    mode: str
    reason: str = "stopped on request"


@dataclass(frozen=True)
class RevokeKioskLinks:
    run_id: str
    account_id: str
    mode: str


FIRST_FAILED = 3  # failed calls a run keeps to name in its result description


@dataclass(frozen=True)
class Run:
    id: str
    project_id: str
    test_id: str
    account_id: str
    test_name: str
    spec: spec_pb2.TestSpec
    metadata: dict[str, str]
    tags: tuple[str, ...]
    mode: str
    status: str = "PENDING"
    created_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    planned_calls: int = 0
    stats: CallStats = field(default_factory=CallStats)  # counters and sketches of the recorded calls
    first_failed: tuple[m_pb2.CallMeasurement, ...] = ()  # at most FIRST_FAILED, without SIP ladders
    engine_id: str = ""  # the engine that took the run (RunQueued / RunStarted)
    summary: m_pb2.RunSummary | None = None
    tally: verdict.Tally = verdict.Tally()   # calls recorded, and those that did not end as expected
    passed: bool = False
    result_description: str = ""
    stop_requested: bool = False
    kiosk_hashes: tuple[str, ...] = ()
    credential_pools: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


def evolve_run(state: Run | None, event: Message, at: datetime | None = None) -> Run | None:
    if isinstance(event, runs_pb2.RunRequested):
        return Run(
            id=event.run_id, project_id=event.project_id, test_id=event.test_id, account_id=event.account_id,
            test_name=event.test_name, spec=event.spec, metadata=dict(event.metadata), tags=tuple(event.tags),
            mode=event.mode or "live", created_at=at, planned_calls=specs.planned_calls(event.spec),
            credential_pools=tuple(p.id for p in event.pools),
        )
    if state is None:
        return None
    if isinstance(event, runs_pb2.RunQueued):
        return replace(state, status="QUEUED", planned_calls=event.planned_calls or state.planned_calls,
                       engine_id=event.engine_id or state.engine_id)
    if isinstance(event, runs_pb2.RunStarted):
        return replace(state, status="RUNNING", started_at=at, engine_id=event.engine_id or state.engine_id)
    if isinstance(event, runs_pb2.CallRecorded):
        return record_calls(state, (event.call,))
    if isinstance(event, runs_pb2.RunStopRequested):
        return replace(state, status="STOPPING", stop_requested=True)
    if isinstance(event, runs_pb2.RunCompleted):
        return replace(state, status="COMPLETED", stopped_at=at, summary=event.summary, passed=event.passed,
                       result_description=event.result_description)
    if isinstance(event, runs_pb2.RunFailed):
        return replace(state, status="FAILED", stopped_at=at, summary=event.summary, passed=False,
                       result_description=event.result_description)
    if isinstance(event, runs_pb2.RunCancelled):
        return replace(state, status="CANCELLED", stopped_at=at, summary=event.summary, passed=False,
                       result_description=event.result_description)
    if isinstance(event, runs_pb2.RunKioskLinkCreated):
        return replace(state, kiosk_hashes=(*state.kiosk_hashes, event.token_sha256))
    if isinstance(event, runs_pb2.RunKioskLinkRevoked):
        return replace(state, kiosk_hashes=tuple(h for h in state.kiosk_hashes if h != event.token_sha256))
    return state


def record_calls(state: Run, calls: Sequence[m_pb2.CallMeasurement]) -> Run:
    """The run with `calls` recorded, in order: what evolve_run makes of their CallRecorded one by
    one, with one new Run for the batch (the runs service folds each batch it appends at once)."""
    first_failed, tally, spec = state.first_failed, state.tally, state.spec
    for call in calls:
        if call.outcome != m_pb2.SUCCESS and len(first_failed) < FIRST_FAILED:
            kept = m_pb2.CallMeasurement()
            kept.CopyFrom(call)
            kept.ClearField("sip_ladder")
            first_failed = (*first_failed, kept)
        tally = verdict.count_call(tally, spec, call)
    return replace(state, stats=state.stats.add_many(calls), first_failed=first_failed, tally=tally)


def _resolve(spec: spec_pb2.TestSpec, resources: Resources) -> tuple[list, list]:
    target_ids, pool_ids = specs.pool_refs(spec)
    targets = []
    for rid in target_ids:
        r = resources.registrars[rid]
        targets.append(spec_pb2.ResolvedTarget(id=r.id, host=r.host, port=r.port, transport=r.transport,
                                               domain=r.domain, tls_verify=r.tls_verify))
    pools = []
    for pid in pool_ids:
        pool = resources.pools[pid]
        pools.append(spec_pb2.ResolvedPool(id=pool.id, credentials=[
            spec_pb2.ResolvedCredential(username=c.username, auth_username=c.auth_username or c.username,
                                        domain=c.domain) for c in pool.credentials]))
    return targets, pools


def decide_start_run(test: Test | None, state: Run | None, cmd: StartRun,
                     resources: Resources | None = None, dial: DialPolicy | None = None) -> list[Message]:
    """Snapshot the test with the overrides applied, resolve the pools it names (usernames only).
    `dial`: the operator's destination policy, checked again now (it may have changed since the test
    was saved, and overrides may name other destinations)."""
    if not owned(test, cmd.account_id, cmd.mode) or test.project_id != cmd.project_id:
        raise NotFound("test", cmd.test_id)
    if state is not None:
        raise Conflict(f"run {cmd.run_id} exists")
    resources = resources or Resources()
    v = ValidationCollector()
    validate_metadata(cmd.metadata, v)
    check_mode(cmd.mode, v)
    if len(cmd.tags) > 20 or any(not t or len(t) > 64 for t in cmd.tags):
        v.add(["tags"], "at most 20 tags of 1 to 64 characters")
    spec, where = overrides_mod.apply_overrides(test.spec, cmd.overrides, v)
    if not v.errors:
        checked = ValidationCollector()
        specs.validate(spec, checked, [], resources.registrars.keys(), resources.pools.keys(), dial)
        for e in checked.errors:
            key = where.get(tuple(e.loc))
            v.add([key] if key else e.loc, e.msg, e.type)
    v.raise_if_any()
    targets, pools = _resolve(spec, resources)
    if dial is not None:
        for t in targets:
            refusal = dial.static_refusal(t.host, t.port or 5060)
            if refusal:
                v.add(["registrars", t.id, "host"], f"registrar {t.host}:{t.port} is not an allowed destination: "
                      f"{refusal}", "destination_denied")
        v.raise_if_any()
    events: list[Message] = [runs_pb2.RunRequested(
        run_id=cmd.run_id, project_id=cmd.project_id, test_id=cmd.test_id, account_id=cmd.account_id,
        test_name=test.name, spec=spec, metadata=cmd.metadata, tags=list(cmd.tags), mode=cmd.mode,
        targets=targets, pools=pools)]
    if cmd.kiosk_token_sha256:
        events.append(runs_pb2.RunKioskLinkCreated(run_id=cmd.run_id, token_sha256=cmd.kiosk_token_sha256))
    return events


def decide_stop_run(state: Run | None, cmd: StopRun) -> list[Message]:
    """A run not yet taken by an engine ends at once; one in flight goes STOPPING until the engine
    reports its end. Stopping a stopping run changes nothing; a finished one cannot be stopped."""
    if not owned(state, cmd.account_id, cmd.mode):
        raise NotFound("run", cmd.run_id)
    if state.finished:
        raise Conflict(f"run {state.id} already ended ({state.status})")
    if state.stop_requested:
        return []
    events: list[Message] = [runs_pb2.RunStopRequested(run_id=state.id, reason=cmd.reason)]
    if state.status == "PENDING":
        events.append(runs_pb2.RunCancelled(run_id=state.id, summary=m_pb2.RunSummary(),
                                            result_description=f"cancelled before it started: {cmd.reason}"))
    return events


def decide_revoke_kiosk(state: Run | None, cmd: RevokeKioskLinks) -> list[Message]:
    if not owned(state, cmd.account_id, cmd.mode):
        raise NotFound("run", cmd.run_id)
    return [runs_pb2.RunKioskLinkRevoked(run_id=state.id, token_sha256=h) for h in state.kiosk_hashes]


def decide_media_event(state: Run | None, event: Message) -> list[Message]:
    """React to what the media-engine reports about a run. Repeats and late arrivals decide nothing."""
    if state is None or state.finished:
        return []
    if isinstance(event, media_pb2.RunAccepted):
        if state.status == "PENDING":
            return [runs_pb2.RunQueued(run_id=state.id, engine_id=event.engine_id, planned_calls=event.planned_calls)]
        return []
    if isinstance(event, media_pb2.RunMediaStarted):
        out: list[Message] = []
        if state.status == "PENDING":
            out.append(runs_pb2.RunQueued(run_id=state.id, engine_id=event.engine_id))
        if state.status in ("PENDING", "QUEUED"):
            out.append(runs_pb2.RunStarted(run_id=state.id, engine_id=event.engine_id))
        return out
    if isinstance(event, media_pb2.CallMeasured):
        # a redelivered CallMeasured decides the same event id again: the store keeps it once
        return [runs_pb2.CallRecorded(run_id=state.id, call=event.call)]
    if isinstance(event, media_pb2.RunMediaFinished):
        if event.ended_by == "balance_exhausted":
            return [runs_pb2.RunFailed(run_id=state.id, summary=event.summary, result_description="balance exhausted")]
        if state.stop_requested:
            return [runs_pb2.RunCancelled(run_id=state.id, summary=event.summary,
                                          result_description=f"stopped on request after "
                                                             f"{event.summary.calls_attempted} call(s)")]
        if event.error:
            return [runs_pb2.RunFailed(run_id=state.id, summary=event.summary,
                                       result_description=f"media engine: {event.error}")]
        if (gap := reconcile(state, event.summary)) is not None:
            return [runs_pb2.RunFailed(run_id=state.id, summary=event.summary, result_description=gap)]
        passed, description = verdict.decide(state.spec, event.summary, state.tally)
        if passed:
            return [runs_pb2.RunCompleted(run_id=state.id, summary=event.summary, passed=True,
                                          result_description=description)]
        return [runs_pb2.RunFailed(run_id=state.id, summary=event.summary, result_description=description)]
    return []


def reconcile(state: Run, summary: m_pb2.RunSummary) -> str | None:
    """Why a run the engine reports finished cannot pass on what was recorded, or None. The engine's
    outbox publishes a run's CallMeasured before its RunMediaFinished, on the run's partition, and
    consumers dead-letter instead of skipping (docs/reliability.md), so a call missing here is lost,
    not late: the run fails naming how many. Planned calls never attempted fail it too (a load
    that could not keep up, a run cut short), naming why as the engine counted it
    (RunSummary.not_attempted) — a stop or an exhausted balance is decided earlier — unless its
    test allows unattempted calls (TestSpec.allow_unattempted_calls): it is then judged on the
    calls it attempted."""
    placed = summary.calls_attempted  # every CallMeasured the engine emitted (SIPp's per call too)
    recorded = state.stats.count
    if placed and recorded < placed:
        return (f"{placed - recorded} of the {placed} call(s) the media engine placed "
                f"were not recorded (lost on the way); {recorded} recorded")
    if summary.calls_planned and placed < summary.calls_planned and not state.spec.allow_unattempted_calls:
        why = "; ".join(f"{n}: {reason}" for reason, n in sorted(summary.not_attempted.items(), key=lambda kv: -kv[1]))
        return (f"{summary.calls_planned - placed} of the {summary.calls_planned} planned call(s) were never "
                f"attempted ({placed} attempted): {why or 'the media engine did not say why'}")
    return None


def decide_engine_lost(state: Run | None, silent_s: float) -> list[Message]:
    """The engine that took the run went silent for longer than its lease: the run ends FAILED
    "media engine lost", keeping every call recorded so far (billing releases the rest of the hold
    on RunFailed). Untaken (PENDING) and finished runs are not affected."""
    if state is None or state.finished or state.status == "PENDING":
        return []
    summary = _recorded_summary(state)
    engine = f" {state.engine_id}" if state.engine_id else ""
    return [runs_pb2.RunFailed(run_id=state.id, summary=summary, result_description=(
        f"media engine lost: no word from engine{engine} for {silent_s:.0f} s; {state.stats.count} of "
        f"{state.planned_calls} planned call(s) recorded, the rest not placed or lost with the engine"))]


def decide_stop_deadline(state: Run | None, waited_s: float) -> list[Message]:
    """A STOPPING run whose engine did not confirm the stop within the deadline ends CANCELLED with
    what was recorded: Stop always ends a run."""
    if state is None or state.finished or not state.stop_requested:
        return []
    summary = _recorded_summary(state)
    return [runs_pb2.RunCancelled(run_id=state.id, summary=summary, result_description=(
        f"stopped on request; the media engine did not confirm within {waited_s:.0f} s, "
        f"{state.stats.count} call(s) recorded"))]


def _recorded_summary(state: Run) -> m_pb2.RunSummary:
    """The run's figures from what was recorded, when its engine cannot give them."""
    summary = state.stats.summary()
    summary.calls_planned = state.planned_calls
    return summary



# ---------------------------------------------------------------- deleted accounts


def evolve_account_closed(state: bool | None, event: Message, at: datetime | None = None) -> bool | None:
    """The runs side of an account: closed once its AccountClosed is recorded."""
    return True if isinstance(event, runs_pb2.AccountClosed) else state


def decide_close_account(closed: bool | None, account_id: str, source_event_id: str) -> list[Message]:
    """Record that an account was deleted (no run of it starts any more); once."""
    if closed:
        return []
    return [runs_pb2.AccountClosed(account_id=account_id, source_event_id=source_event_id)]
