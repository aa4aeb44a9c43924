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


EXACT_UP_TO = 10_000  # values of a figure kept as they are (nearest-rank percentiles); beyond, a sketch
SKETCH_ACCURACY = 0.005  # relative accuracy of the percentiles of a bigger run (DDSketch, as the runs service)


class _Quantiles:
    """One figure's values: exact nearest-rank percentiles while there are few, a DDSketch (bounded
    memory, within 0.5 % of the exact value) once there are more than :data:`EXACT_UP_TO`."""

    __slots__ = ("values", "sketch", "n", "total", "low", "high")

    def __init__(self) -> None:
        self.values: list[float] = []
        self.sketch = None
        self.n, self.total, self.low, self.high = 0, 0.0, math.inf, -math.inf

    def add(self, v: float) -> None:
        self.n += 1
        self.total += v
        self.low, self.high = min(self.low, v), max(self.high, v)
        if self.sketch is not None:
            self.sketch.add(v)
            return
        self.values.append(v)
        if len(self.values) > EXACT_UP_TO:
            from ddsketch import DDSketch

            self.sketch = DDSketch(relative_accuracy=SKETCH_ACCURACY)
            for x in self.values:
                self.sketch.add(x)
            self.values = []

    def percentile(self, p: float) -> float:
        if self.sketch is not None:
            return float(self.sketch.get_quantile_value(p / 100))
        return percentile(self.values, p)

    @property
    def mean(self) -> float:
        return self.total / self.n


class CallFigures:
    """A run's call figures as its calls end, at a bounded memory whatever the run's size: counters,
    sums, min/max and percentiles (:class:`_Quantiles`) — not the calls themselves, which go out as
    CallMeasured and live in the runs service's calls projection. Quality figures are of the answered
    calls that have them (a figure nobody measured is left out, never counted as 0)."""

    def __init__(self) -> None:
        self.attempted = self.answered = 0
        self.duration_total = 0.0
        self.rx_packets = self.tx_packets = self.recorded = 0
        self.sip_codes: Counter[int] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.engines: Counter[str] = Counter()
        self.q = {name: _Quantiles() for name in
                  ("mos", "mos_lqo", "setup_time_ms", "post_dial_delay_ms", "loss_pct", "jitter_ms")}

    def add(self, c: m_pb2.CallMeasurement, engine: str | None = None) -> None:
        self.attempted += 1
        self.rx_packets += c.rx_packets
        self.tx_packets += c.tx_packets
        self.recorded += bool(c.recorded_legs)
        self.sip_codes[c.sip_code] += 1
        self.outcomes[m_pb2.CallOutcome.Name(c.outcome)] += 1
        if engine is not None:
            self.engines[engine] += 1
        if c.outcome != m_pb2.SUCCESS:
            return
        self.answered += 1
        self.duration_total += c.duration_ms
        for name, q in self.q.items():
            if c.HasField(name):
                q.add(getattr(c, name))

    def summary(self, *, calls_planned: int = 0, peak_concurrency: int = 0, driver: str = "") -> m_pb2.RunSummary:
        s = m_pb2.RunSummary(calls_attempted=self.attempted, calls_answered=self.answered,
                             calls_failed=self.attempted - self.answered, calls_planned=calls_planned,
                             peak_concurrency=peak_concurrency, driver=driver)
        if self.attempted:
            s.asr = self.answered / self.attempted
        if self.answered:
            s.acd_ms = self.duration_total / self.answered
        q = self.q
        if q["mos"].n:
            s.mos_mean, s.mos_min, s.mos_p5 = q["mos"].mean, q["mos"].low, q["mos"].percentile(5)
        if q["mos_lqo"].n:  # the scored calls only (ViSQOL on their recording)
            s.mos_lqo_mean, s.mos_lqo_min = q["mos_lqo"].mean, q["mos_lqo"].low
        s.calls_audio_recorded = self.recorded
        if q["setup_time_ms"].n:
            setup = q["setup_time_ms"]
            s.setup_p50_ms, s.setup_p95_ms, s.setup_p99_ms = (setup.percentile(50), setup.percentile(95),
                                                              setup.percentile(99))
        if q["post_dial_delay_ms"].n:
            s.post_dial_delay_p95_ms = q["post_dial_delay_ms"].percentile(95)
        if q["loss_pct"].n:
            s.loss_pct_max = q["loss_pct"].high
        if q["jitter_ms"].n:
            s.jitter_ms_max, s.jitter_ms_mean = q["jitter_ms"].high, q["jitter_ms"].mean
        s.rx_packets, s.tx_packets = self.rx_packets, self.tx_packets
        for code, n in self.sip_codes.items():
            s.sip_codes[code] = n
        for outcome, n in self.outcomes.items():
            s.outcomes[outcome] = n
        for engine, n in self.engines.items():
            s.engines[engine] = n
        return s


def summarize(calls: Sequence[m_pb2.CallMeasurement], *, calls_planned: int = 0, peak_concurrency: int = 0,
              driver: str = "", engine_of: dict[str, str] | None = None) -> m_pb2.RunSummary:
    """The summary of ``calls`` (see :class:`CallFigures`); ``engine_of`` maps call ids to the engine
    that placed them (runs shared by replicas)."""
    figures = CallFigures()
    for c in calls:
        figures.add(c, engine_of.get(c.call_id, "") if engine_of else None)
    return figures.summary(calls_planned=calls_planned, peak_concurrency=peak_concurrency, driver=driver)


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
