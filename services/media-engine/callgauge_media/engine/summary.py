"""Aggregates over a run's call and registration measurements (pure)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(calls: Sequence[m_pb2.CallMeasurement], *, calls_planned: int = 0, peak_concurrency: int = 0,
              driver: str = "", engine_of: dict[str, str] | None = None) -> m_pb2.RunSummary:
    """``engine_of`` maps call ids to the engine that placed them (runs shared by replicas)."""
    answered = [c for c in calls if c.outcome == m_pb2.SUCCESS]
    s = m_pb2.RunSummary(
        calls_attempted=len(calls),
        calls_answered=len(answered),
        calls_failed=len(calls) - len(answered),
        calls_planned=calls_planned,
        peak_concurrency=peak_concurrency,
        driver=driver,
    )
    if calls:
        s.asr = len(answered) / len(calls)
    if answered:
        s.acd_ms = sum(c.duration_ms for c in answered) / len(answered)

    def measured(name: str) -> list[float]:  # the answered calls that have this figure; the others are left out
        return [getattr(c, name) for c in answered if c.HasField(name)]

    moses = measured("mos")
    if moses:
        s.mos_mean = sum(moses) / len(moses)
        s.mos_min = min(moses)
        s.mos_p5 = percentile(moses, 5)
    lqos = measured("mos_lqo")  # the scored calls only (ViSQOL on their recording)
    if lqos:
        s.mos_lqo_mean = sum(lqos) / len(lqos)
        s.mos_lqo_min = min(lqos)
    s.calls_audio_recorded = sum(1 for c in calls if c.recorded_legs)
    setups = measured("setup_time_ms")
    if setups:
        s.setup_p50_ms = percentile(setups, 50)
        s.setup_p95_ms = percentile(setups, 95)
        s.setup_p99_ms = percentile(setups, 99)
    pdds = measured("post_dial_delay_ms")
    if pdds:
        s.post_dial_delay_p95_ms = percentile(pdds, 95)
    losses = measured("loss_pct")
    if losses:
        s.loss_pct_max = max(losses)
    jitters = measured("jitter_ms")
    if jitters:
        s.jitter_ms_max = max(jitters)
        s.jitter_ms_mean = sum(jitters) / len(jitters)
    s.rx_packets = sum(c.rx_packets for c in calls)
    s.tx_packets = sum(c.tx_packets for c in calls)
    for code, n in Counter(c.sip_code for c in calls).items():
        s.sip_codes[code] = n
    for outcome, n in Counter(m_pb2.CallOutcome.Name(c.outcome) for c in calls).items():
        s.outcomes[outcome] = n
    if engine_of:
        for engine, n in Counter(engine_of.get(c.call_id, "") for c in calls).items():
            s.engines[engine] = n
    return s


def add_registrations(s: m_pb2.RunSummary, registrations: Sequence[m_pb2.RegistrationMeasurement]) -> m_pb2.RunSummary:
    """``s`` with the registration figures of ``registrations`` (set in place, returned): users
    registered / failed (a registration lost at a refresh counts as failed), register time p50/p95
    of those that registered (nearest rank)."""
    ok = [r for r in registrations if r.outcome == m_pb2.SUCCESS]
    s.registrations_ok = len(ok)
    s.registrations_failed = len(registrations) - len(ok)
    times = [r.register_time_ms for r in ok if r.HasField("register_time_ms")]
    if times:
        s.register_p50_ms = percentile(times, 50)
        s.register_p95_ms = percentile(times, 95)
    return s


def merge_counts(base: m_pb2.RunSummary, other: m_pb2.RunSummary) -> m_pb2.RunSummary:
    """``base`` plus the counts of ``other`` (e.g. a SIPp-driven action's summary, which has no
    per-call quality): attempts, answers, failures, SIP codes and outcomes add up, ASR is
    recomputed; the timing and quality figures of the side that has answered calls are kept
    (``other``'s when ``base`` has none)."""
    if base.calls_answered == 0 and other.calls_answered > 0:
        out = m_pb2.RunSummary()
        out.CopyFrom(other)
        out.ClearField("sip_codes")
        out.ClearField("outcomes")
    else:
        out = m_pb2.RunSummary()
        out.CopyFrom(base)
        out.ClearField("sip_codes")
        out.ClearField("outcomes")
    out.calls_attempted = base.calls_attempted + other.calls_attempted
    out.calls_answered = base.calls_answered + other.calls_answered
    out.calls_failed = base.calls_failed + other.calls_failed
    out.calls_planned = base.calls_planned + other.calls_planned
    out.peak_concurrency = max(base.peak_concurrency, other.peak_concurrency)
    out.registrations_ok = base.registrations_ok + other.registrations_ok
    out.registrations_failed = base.registrations_failed + other.registrations_failed
    src = other if base.registrations_ok == 0 and other.registrations_ok else base  # percentiles do not add up: keep the side that has them
    for name in ("register_p50_ms", "register_p95_ms"):
        if src.HasField(name):
            setattr(out, name, getattr(src, name))
        else:
            out.ClearField(name)
    if out.calls_attempted:
        out.asr = out.calls_answered / out.calls_attempted
    else:
        out.ClearField("asr")
    drivers = sorted({d for s in (base, other) for d in s.driver.split("+") if d})
    out.driver = "+".join(drivers)
    for src in (base, other):
        for code, n in src.sip_codes.items():
            out.sip_codes[code] += n
        for name, n in src.outcomes.items():
            out.outcomes[name] += n
    out.ClearField("not_attempted")
    for src in (base, other):
        for why, n in src.not_attempted.items():
            out.not_attempted[why] += n
    return out
