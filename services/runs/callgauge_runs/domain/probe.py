"""The Probe aggregate as a decider: a test run on a schedule, each run judged by warning/critical
thresholds, a health state computed from the latest judged run, a history of state changes and
their acknowledgement (CallMeter's probes, Meter's schedules). Pure: the caller passes the clock.

Schedule: slot 1 is due at creation + the probe's jitter (a stable offset derived from its id, at
most 10 % of the interval and 30 s, so probes created together do not fire together); slot n+1 is
due one interval after slot n. `decide_fire_slot` fires the latest slot that is due; when several
were missed (no scheduler ran), it fires that one slot only and counts the others as skipped —
after a restart at most one missed slot is caught up, never a burst.

Health: each finished probe run gets a level — UNHEALTHY when it could not be carried out (no
call answered) or a metric crossed its critical level, DEGRADED when one crossed its warning
level, HEALTHY otherwise. The probe's state is the level of its latest judged run; UNKNOWN
before the first one. Cancelled runs are not judged.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from callgauge_proto.callgauge.events.v1 import monitor_pb2 as pb
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from google.protobuf.message import Message

from callgauge_platform.timestamps import datetime_of, timestamp_of

from callgauge_runs.domain.errors import Conflict, NotFound, ValidationCollector

HEALTHY, DEGRADED, UNHEALTHY, UNKNOWN = "HEALTHY", "DEGRADED", "UNHEALTHY", "UNKNOWN"
_SEVERITY = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}

# threshold name -> (RunSummary field, which way is better)
METRICS: dict[str, tuple[str, str]] = {
    "mos": ("mos_min", "higher"),
    "jitter_ms": ("jitter_ms_max", "lower"),
    "loss_pct": ("loss_pct_max", "lower"),
    "setup_ms": ("setup_p95_ms", "lower"),
    "asr": ("asr", "higher"),
}
UNITS = {"mos": "", "jitter_ms": " ms", "loss_pct": " %", "setup_ms": " ms", "asr": ""}
_LIMITS = {"mos": (1.0, 5.0), "jitter_ms": (0.0, 10_000.0), "loss_pct": (0.0, 100.0),
           "setup_ms": (0.0, 300_000.0), "asr": (0.0, 1.0)}


def default_thresholds() -> pb.ProbeThresholds:
    return pb.ProbeThresholds(
        mos=pb.MetricThreshold(warning=4.0, critical=3.0),
        jitter_ms=pb.MetricThreshold(warning=30.0, critical=80.0),
        loss_pct=pb.MetricThreshold(warning=1.0, critical=5.0),
        setup_ms=pb.MetricThreshold(warning=2000.0, critical=5000.0),
        asr=pb.MetricThreshold(warning=0.95, critical=0.5),
    )


@dataclass(frozen=True)
class ProbeRules:
    """Limits set by the operator (settings): the shortest interval, the longest."""

    min_interval_seconds: int = 10
    max_interval_seconds: int = 7 * 24 * 3600
    keep_results: int = 2000  # judged runs kept in the state for uptime (older ones drop out)
    min_result_timeout_seconds: int = 300  # a slot without a result after max(3 intervals, this): UNKNOWN

    def result_timeout(self, interval_seconds: int) -> timedelta:
        return timedelta(seconds=max(3 * interval_seconds, self.min_result_timeout_seconds))


# ---------------------------------------------------------------- commands


@dataclass(frozen=True)
class CreateProbe:
    probe_id: str
    project_id: str
    account_id: str
    mode: str
    test_id: str
    name: str
    interval_seconds: int
    now: datetime
    thresholds: pb.ProbeThresholds | None = None  # None: default_thresholds()
    webhook_url: str = ""
    webhook_endpoint_id: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class UpdateProbe:
    probe_id: str
    project_id: str
    account_id: str
    mode: str
    now: datetime
    test_id: str | None = None
    name: str | None = None
    interval_seconds: int | None = None
    thresholds: pb.ProbeThresholds | None = None
    webhook_url: str | None = None
    webhook_endpoint_id: str | None = None
    enabled: bool | None = None


@dataclass(frozen=True)
class RunOutcome:
    """What the probe needs to know about one of its finished runs."""

    run_id: str
    status: str  # COMPLETED | FAILED | CANCELLED
    summary: m_pb2.RunSummary | None
    finished_at: datetime
    description: str = ""


# ---------------------------------------------------------------- state


@dataclass(frozen=True)
class Judged:
    run_id: str
    level: str
    reasons: tuple[str, ...]
    finished_at: datetime


@dataclass(frozen=True)
class StateChange:
    seq: int
    from_state: str
    to_state: str
    run_id: str
    reasons: tuple[str, ...]
    changed_at: datetime


@dataclass(frozen=True)
class Probe:
    id: str
    project_id: str
    account_id: str
    mode: str
    test_id: str
    name: str
    interval_seconds: int
    thresholds: pb.ProbeThresholds
    webhook_url: str
    webhook_endpoint_id: str
    enabled: bool
    created_at: datetime
    next_due_at: datetime
    deleted: bool = False
    last_slot: int = 0
    pending: tuple[tuple[str, datetime], ...] = ()  # (run id, fired at) of runs fired, not judged yet
    slot_runs: tuple[tuple[int, str], ...] = ()  # (slot, run_id) of the last slots fired
    results: tuple[Judged, ...] = ()
    changes: tuple[StateChange, ...] = ()
    acked_seq: int = 0
    state: str = UNKNOWN
    state_reasons: tuple[str, ...] = ()
    state_since: datetime | None = None

    @property
    def last_run_id(self) -> str:
        return self.results[-1].run_id if self.results else ""

    @property
    def pending_runs(self) -> tuple[str, ...]:
        return tuple(r for r, _ in self.pending)

    @property
    def unacknowledged(self) -> tuple[StateChange, ...]:
        return tuple(c for c in self.changes if c.seq > self.acked_seq)

    def owns_run(self, run_id: str) -> bool:
        return run_id in self.pending_runs or any(r == run_id for _, r in self.slot_runs)


# ---------------------------------------------------------------- helpers


def jitter(probe_id: str, interval_seconds: int) -> timedelta:
    """A stable offset in [0, min(10 % of the interval, 30 s)) derived from the probe's id."""
    span_ms = int(min(interval_seconds * 0.1, 30.0) * 1000)
    if span_ms <= 0:
        return timedelta(0)
    h = int.from_bytes(hashlib.sha256(probe_id.encode()).digest()[:8], "big")
    return timedelta(milliseconds=h % span_ms)


def judge(thresholds: pb.ProbeThresholds, outcome: RunOutcome) -> tuple[str, tuple[str, ...], pb.ProbeRunMetrics]:
    """(level, reasons, metrics) of one finished run."""
    s = outcome.summary or m_pb2.RunSummary()
    metrics = pb.ProbeRunMetrics(**{name: float(getattr(s, f)) for name, (f, _) in METRICS.items() if s.HasField(f)})
    if s.calls_attempted == 0 or s.calls_answered == 0:
        why = "no call was attempted" if s.calls_attempted == 0 else f"0/{s.calls_attempted} calls answered"
        if outcome.description.startswith("media engine:"):
            why = outcome.description
        return UNHEALTHY, (why,), metrics
    level, reasons = HEALTHY, []
    for name, (_field, better) in METRICS.items():
        if not thresholds.HasField(name):
            continue
        if not metrics.HasField(name):
            reasons.append(f"{name} not measured")
            continue
        t = getattr(thresholds, name)
        value = getattr(metrics, name)
        worse = (lambda v, lim: v < lim) if better == "higher" else (lambda v, lim: v > lim)
        for lvl, limit, word in ((UNHEALTHY, t.critical, "critical"), (DEGRADED, t.warning, "warning")):
            if worse(value, limit):
                cmp = "<" if better == "higher" else ">"
                reasons.append(f"{name} {value:g}{UNITS[name]} {cmp} {word} {limit:g}{UNITS[name]}")
                if _SEVERITY[lvl] > _SEVERITY[level]:
                    level = lvl
                break
    return level, tuple(reasons), metrics


def health(results: tuple[Judged, ...]) -> tuple[str, tuple[str, ...]]:
    """The probe's state from its judged runs: the latest run's level; UNKNOWN without any."""
    if not results:
        return UNKNOWN, ()
    last = results[-1]
    return last.level, last.reasons


@dataclass(frozen=True)
class UptimeDay:
    day: str
    runs: int
    up_runs: int

    @property
    def uptime_pct(self) -> float:
        return round(100.0 * self.up_runs / self.runs, 2) if self.runs else 0.0


def uptime_by_day(results: tuple[Judged, ...]) -> list[UptimeDay]:
    """Per UTC day, the share of judged runs that were not UNHEALTHY, oldest day first (slots
    without a result, level UNKNOWN, are not counted)."""
    days: OrderedDict[str, list[int]] = OrderedDict()
    for r in sorted((r for r in results if r.level != UNKNOWN), key=lambda r: r.finished_at):
        d = days.setdefault(r.finished_at.astimezone(UTC).date().isoformat(), [0, 0])
        d[0] += 1
        d[1] += r.level != UNHEALTHY
    return [UptimeDay(day, n, up) for day, (n, up) in days.items()]


# ---------------------------------------------------------------- evolve


def evolve_probe(state: Probe | None, event: Message, at: datetime | None = None) -> Probe | None:
    if isinstance(event, pb.ProbeCreated):
        created = datetime_of(event.first_due_at) - jitter(event.probe_id, event.interval_seconds)
        return Probe(
            id=event.probe_id, project_id=event.project_id, account_id=event.account_id, mode=event.mode or "live",
            test_id=event.test_id, name=event.name, interval_seconds=event.interval_seconds,
            thresholds=_copy(event.thresholds), webhook_url=event.webhook_url,
            webhook_endpoint_id=event.webhook_endpoint_id, enabled=event.enabled,
            created_at=at or created, next_due_at=datetime_of(event.first_due_at),
        )
    if state is None:
        return None
    if isinstance(event, pb.ProbeUpdated):
        return replace(state, test_id=event.test_id, name=event.name, interval_seconds=event.interval_seconds,
                       thresholds=_copy(event.thresholds), webhook_url=event.webhook_url,
                       webhook_endpoint_id=event.webhook_endpoint_id, enabled=event.enabled,
                       next_due_at=datetime_of(event.next_due_at))
    if isinstance(event, pb.ProbeDeleted):
        return replace(state, deleted=True, enabled=False)
    if isinstance(event, pb.ProbeSlotFired):
        return replace(state, last_slot=event.slot, next_due_at=datetime_of(event.next_due_at),
                       pending=(*state.pending, (event.run_id, datetime_of(event.fired_at)))[-50:],
                       slot_runs=(*state.slot_runs, (event.slot, event.run_id))[-200:])
    if isinstance(event, pb.ProbeRunRecorded):
        judged = Judged(event.run_id, event.level, tuple(event.reasons), datetime_of(event.finished_at))
        results = (*state.results, judged)[-ProbeRules.keep_results:] if event.level else state.results
        new_state, reasons = health(results)
        return replace(state, results=results, pending=tuple(p for p in state.pending if p[0] != event.run_id),
                       state=new_state, state_reasons=reasons)
    if isinstance(event, pb.ProbeStateChanged):
        change = StateChange(event.seq, event.from_state, event.to_state, event.run_id, tuple(event.reasons),
                             datetime_of(event.changed_at))
        return replace(state, changes=(*state.changes, change), state_since=change.changed_at)
    if isinstance(event, pb.ProbeChangesAcknowledged):
        return replace(state, acked_seq=max(state.acked_seq, event.up_to_seq))
    return state


def _copy(t: pb.ProbeThresholds) -> pb.ProbeThresholds:
    out = pb.ProbeThresholds()
    out.CopyFrom(t)
    return out


# ---------------------------------------------------------------- decide


def _validate_thresholds(t: pb.ProbeThresholds, v: ValidationCollector) -> None:
    for name, (_f, better) in METRICS.items():
        if not t.HasField(name):
            continue
        m = getattr(t, name)
        lo, hi = _LIMITS[name]
        for which in ("warning", "critical"):
            value = getattr(m, which)
            if not lo <= value <= hi:
                v.add(["thresholds", name, which], f"between {lo:g} and {hi:g}")
        if better == "higher" and m.critical > m.warning:
            v.add(["thresholds", name, "critical"],
                  f"{name} gets worse as it falls: critical ({m.critical:g}) must not be above warning ({m.warning:g})")
        if better == "lower" and m.critical < m.warning:
            v.add(["thresholds", name, "critical"],
                  f"{name} gets worse as it rises: critical ({m.critical:g}) must not be below warning ({m.warning:g})")


def _validate_url(url: str, v: ValidationCollector) -> None:
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        v.add(["webhook_url"], "an http(s) URL like https://example.com/hooks/callgauge")


def _validate_config(name: str, interval: int, rules: ProbeRules, v: ValidationCollector) -> None:
    if not name.strip():
        v.add(["name"], "a probe needs a name", "missing")
    elif len(name) > 200:
        v.add(["name"], "at most 200 characters")
    if not rules.min_interval_seconds <= interval <= rules.max_interval_seconds:
        v.add(["interval_seconds"],
              f"between {rules.min_interval_seconds} and {rules.max_interval_seconds} seconds")


def decide_create_probe(project_ok: bool, test_ok: bool, state: Probe | None, cmd: CreateProbe,
                        rules: ProbeRules = ProbeRules()) -> list[Message]:
    """project_ok / test_ok: the project and test exist in the caller's account and mode."""
    if not project_ok:
        raise NotFound("project", cmd.project_id)
    if state is not None:
        raise Conflict(f"probe {cmd.probe_id} exists")
    v = ValidationCollector()
    if not test_ok:
        v.add(["test_id"], f"no test {cmd.test_id!r} in this project", "not_found")
    _validate_config(cmd.name, cmd.interval_seconds, rules, v)
    thresholds = cmd.thresholds if cmd.thresholds is not None else default_thresholds()
    _validate_thresholds(thresholds, v)
    _validate_url(cmd.webhook_url, v)
    if cmd.mode not in ("live", "test"):
        v.add(["mode"], "live or test")
    v.raise_if_any()
    first = cmd.now + jitter(cmd.probe_id, cmd.interval_seconds)
    return [pb.ProbeCreated(
        probe_id=cmd.probe_id, project_id=cmd.project_id, account_id=cmd.account_id, mode=cmd.mode,
        test_id=cmd.test_id, name=cmd.name.strip(), interval_seconds=cmd.interval_seconds, thresholds=thresholds,
        webhook_url=cmd.webhook_url, enabled=cmd.enabled, first_due_at=timestamp_of(first),
        webhook_endpoint_id=cmd.webhook_endpoint_id)]


def visible(state: Probe | None, account_id: str, mode: str, project_id: str) -> bool:
    return (state is not None and not state.deleted and state.account_id == account_id and state.mode == mode
            and (not project_id or state.project_id == project_id))


def decide_update_probe(state: Probe | None, test_ok: bool, cmd: UpdateProbe,
                        rules: ProbeRules = ProbeRules()) -> list[Message]:
    if not visible(state, cmd.account_id, cmd.mode, cmd.project_id):
        raise NotFound("probe", cmd.probe_id)
    assert state is not None
    v = ValidationCollector()
    if cmd.test_id is not None and not test_ok:
        v.add(["test_id"], f"no test {cmd.test_id!r} in this project", "not_found")
    name = cmd.name if cmd.name is not None else state.name
    interval = cmd.interval_seconds if cmd.interval_seconds is not None else state.interval_seconds
    thresholds = cmd.thresholds if cmd.thresholds is not None else state.thresholds
    url = cmd.webhook_url if cmd.webhook_url is not None else state.webhook_url
    _validate_config(name, interval, rules, v)
    _validate_thresholds(thresholds, v)
    _validate_url(url, v)
    v.raise_if_any()
    enabled = cmd.enabled if cmd.enabled is not None else state.enabled
    # The schedule restarts from now when the interval changes or the probe is switched on again.
    restart = interval != state.interval_seconds or (enabled and not state.enabled)
    next_due = cmd.now + jitter(state.id, interval) if restart else state.next_due_at
    return [pb.ProbeUpdated(
        probe_id=state.id, test_id=cmd.test_id or state.test_id, name=name.strip(), interval_seconds=interval,
        thresholds=thresholds, webhook_url=url, enabled=enabled, next_due_at=timestamp_of(next_due),
        webhook_endpoint_id=cmd.webhook_endpoint_id if cmd.webhook_endpoint_id is not None
        else state.webhook_endpoint_id)]


def decide_delete_probe(state: Probe | None, account_id: str, mode: str, project_id: str,
                        probe_id: str) -> list[Message]:
    if not visible(state, account_id, mode, project_id):
        raise NotFound("probe", probe_id)
    assert state is not None
    return [pb.ProbeDeleted(probe_id=state.id, project_id=state.project_id)]


def decide_fire_slot(state: Probe | None, now: datetime, run_id: str) -> list[Message]:
    """Fire the latest due slot (at most one), or nothing when none is due."""
    if state is None or state.deleted or not state.enabled or now < state.next_due_at:
        return []
    interval = timedelta(seconds=state.interval_seconds)
    missed = int((now - state.next_due_at) / interval)  # whole intervals since the first due slot
    due = state.next_due_at + missed * interval
    return [pb.ProbeSlotFired(probe_id=state.id, slot=state.last_slot + 1 + missed, due_at=timestamp_of(due), fired_at=timestamp_of(now),
                              run_id=run_id, skipped_slots=missed, next_due_at=timestamp_of(due + interval))]


def decide_record_run(state: Probe | None, outcome: RunOutcome) -> list[Message]:
    """Judge one of the probe's finished runs; a state change is decided with it."""
    if state is None or outcome.run_id not in state.pending_runs:
        return []  # not this probe's run, or already recorded
    if outcome.status == "CANCELLED":
        return [pb.ProbeRunRecorded(probe_id=state.id, run_id=outcome.run_id, run_status=outcome.status, level="",
                                    finished_at=timestamp_of(outcome.finished_at))]
    level, reasons, metrics = judge(state.thresholds, outcome)
    out: list[Message] = [pb.ProbeRunRecorded(
        probe_id=state.id, run_id=outcome.run_id, run_status=outcome.status, level=level, reasons=list(reasons),
        metrics=metrics, finished_at=timestamp_of(outcome.finished_at))]
    if level != state.state:
        seq = (state.changes[-1].seq if state.changes else 0) + 1
        out.append(pb.ProbeStateChanged(probe_id=state.id, seq=seq, from_state=state.state, to_state=level,
                                        run_id=outcome.run_id, reasons=list(reasons),
                                        changed_at=timestamp_of(outcome.finished_at)))
    return out


def decide_expire_runs(state: Probe | None, now: datetime, rules: ProbeRules = ProbeRules()) -> list[Message]:
    """Slots whose run gave no result in time (the engine is down, the run hangs): each is recorded
    with level UNKNOWN, and the probe's state becomes UNKNOWN — a probe that cannot measure says so.
    A result arriving later is ignored."""
    if state is None or state.deleted:
        return []
    timeout = rules.result_timeout(state.interval_seconds)
    out: list[Message] = []
    current, seq = state.state, state.changes[-1].seq if state.changes else 0
    for run_id, fired_at in state.pending:
        if now - fired_at < timeout:
            continue
        reason = f"no result {int(timeout.total_seconds())} s after the slot fired"
        out.append(pb.ProbeRunRecorded(probe_id=state.id, run_id=run_id, run_status="NO_RESULT", level=UNKNOWN,
                                       reasons=[reason], finished_at=timestamp_of(now)))
        if current != UNKNOWN:
            seq += 1
            out.append(pb.ProbeStateChanged(probe_id=state.id, seq=seq, from_state=current, to_state=UNKNOWN,
                                            run_id=run_id, reasons=[reason], changed_at=timestamp_of(now)))
            current = UNKNOWN
    return out


def decide_acknowledge(state: Probe | None, account_id: str, mode: str, project_id: str, probe_id: str,
                       up_to_seq: int = 0) -> list[Message]:
    """Acknowledge the changes up to `up_to_seq` (0: all recorded so far); nothing new: no event."""
    if not visible(state, account_id, mode, project_id):
        raise NotFound("probe", probe_id)
    assert state is not None
    last = state.changes[-1].seq if state.changes else 0
    target = min(up_to_seq, last) if up_to_seq else last
    if target <= state.acked_seq:
        return []
    return [pb.ProbeChangesAcknowledged(probe_id=state.id, up_to_seq=target)]


__all__ = [
    "DEGRADED",
    "HEALTHY",
    "UNHEALTHY",
    "UNKNOWN",
    "CreateProbe",
    "Probe",
    "ProbeRules",
    "RunOutcome",
    "UpdateProbe",
    "decide_acknowledge",
    "decide_create_probe",
    "decide_delete_probe",
    "decide_expire_runs",
    "decide_fire_slot",
    "decide_record_run",
    "decide_update_probe",
    "default_thresholds",
    "evolve_probe",
    "health",
    "jitter",
    "judge",
    "uptime_by_day",
]
