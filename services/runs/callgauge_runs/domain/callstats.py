"""The figures of a run's recorded calls, kept at a constant cost per call: counters and mergeable
quantile sketches (DDSketch) instead of the calls themselves (those live in the calls projection).

Persistent: `add` never changes the value it is called on (a run state may be shared by a cache and
by concurrent loads). The calls since the last fold are kept as a few numbers each; every FOLD calls
they are folded into a copy of the sketches, so a call costs O(1) amortised whatever the run's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ddsketch import DDSketch

from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

ACCURACY = 0.005   # relative accuracy of every quantile the sketches answer
FOLD = 256         # calls kept as numbers before they are folded into the sketches
SKETCHED = ("setup_ms", "post_dial_delay_ms", "mos", "jitter_ms", "loss_pct")


def new_sketch() -> DDSketch:
    return DDSketch(relative_accuracy=ACCURACY)


def merged(*sketches: DDSketch) -> DDSketch:
    """A new sketch holding every value of `sketches` (they are left as they are)."""
    out = new_sketch()
    for s in sketches:
        out.merge(s)
    return out


def quantile(sketch: DDSketch, q: float) -> float | None:
    """The value at quantile q (0..1), within ACCURACY of the exact one; None without values."""
    return sketch.get_quantile_value(q)


class _Call(NamedTuple):
    outcome: str
    sip_code: int
    answered: bool
    duration_ms: float
    rx_packets: int
    tx_packets: int
    setup_ms: float | None           # None: not measured (the proto field is unset)
    post_dial_delay_ms: float | None
    mos: float | None
    jitter_ms: float | None
    loss_pct: float | None
    mos_lqo: float | None = None
    recorded: bool = False


def _opt(call: m_pb2.CallMeasurement, name: str) -> float | None:
    return getattr(call, name) if call.HasField(name) else None


def _numbers(call: m_pb2.CallMeasurement) -> _Call:
    return _Call(m_pb2.CallOutcome.Name(call.outcome), call.sip_code, call.outcome == m_pb2.SUCCESS,
                 call.duration_ms, call.rx_packets, call.tx_packets, _opt(call, "setup_time_ms"),
                 _opt(call, "post_dial_delay_ms"), _opt(call, "mos"), _opt(call, "jitter_ms"), _opt(call, "loss_pct"),
                 _opt(call, "mos_lqo"), bool(call.recorded_legs))


@dataclass(frozen=True)
class _Folded:
    """Never changed once built (`plus` makes a new one)."""
    count: int = 0
    answered: int = 0
    rx_packets: int = 0
    tx_packets: int = 0
    duration_sum: float = 0.0
    mos_sum: float = 0.0             # over the answered calls that have a MOS (mos_n of them)
    mos_n: int = 0
    mos_min: float | None = None
    jitter_sum: float = 0.0
    jitter_n: int = 0
    jitter_max: float | None = None
    loss_max: float | None = None
    sip_codes: Mapping[int, int] = field(default_factory=dict)
    outcomes: Mapping[str, int] = field(default_factory=dict)
    sketches: Mapping[str, DDSketch] = field(default_factory=lambda: {m: new_sketch() for m in SKETCHED})
    lqo_sum: float = 0.0             # ViSQOL MOS-LQO of the scored answered calls (lqo_n of them)
    lqo_n: int = 0
    lqo_min: float | None = None
    audio_recorded: int = 0

    def plus(self, calls: Sequence[_Call]) -> _Folded:
        sketches = {m: merged(s) for m, s in self.sketches.items()}
        sip_codes, outcomes = dict(self.sip_codes), dict(self.outcomes)
        answered, rx, tx, duration, mos_sum, mos_n, mos_min = (self.answered, self.rx_packets, self.tx_packets,
                                                               self.duration_sum, self.mos_sum, self.mos_n, self.mos_min)
        jitter_sum, jitter_n, jitter_max, loss_max = self.jitter_sum, self.jitter_n, self.jitter_max, self.loss_max
        lqo_sum, lqo_n, lqo_min, audio_recorded = self.lqo_sum, self.lqo_n, self.lqo_min, self.audio_recorded
        for c in calls:
            audio_recorded += c.recorded
            sip_codes[c.sip_code] = sip_codes.get(c.sip_code, 0) + 1
            outcomes[c.outcome] = outcomes.get(c.outcome, 0) + 1
            rx += c.rx_packets
            tx += c.tx_packets
            if not c.answered:  # the quality figures are those of answered calls (as the engine's)
                continue
            answered += 1
            duration += c.duration_ms
            # a figure that was not measured is left out (it does not pull a mean or a minimum to 0)
            if c.mos is not None:
                mos_sum, mos_n = mos_sum + c.mos, mos_n + 1
                mos_min = c.mos if mos_min is None else min(mos_min, c.mos)
            if c.jitter_ms is not None:
                jitter_sum, jitter_n = jitter_sum + c.jitter_ms, jitter_n + 1
                jitter_max = c.jitter_ms if jitter_max is None else max(jitter_max, c.jitter_ms)
            if c.loss_pct is not None:
                loss_max = c.loss_pct if loss_max is None else max(loss_max, c.loss_pct)
            if c.mos_lqo is not None:
                lqo_sum, lqo_n = lqo_sum + c.mos_lqo, lqo_n + 1
                lqo_min = c.mos_lqo if lqo_min is None else min(lqo_min, c.mos_lqo)
            for m in SKETCHED:
                if getattr(c, m) is not None:
                    sketches[m].add(max(0.0, getattr(c, m)))
        return _Folded(self.count + len(calls), answered, rx, tx, duration, mos_sum, mos_n, mos_min, jitter_sum,
                       jitter_n, jitter_max, loss_max, sip_codes, outcomes, sketches, lqo_sum, lqo_n, lqo_min,
                       audio_recorded)


@dataclass(frozen=True)
class CallStats:
    folded: _Folded = field(default_factory=_Folded)
    recent: tuple[_Call, ...] = ()

    @property
    def count(self) -> int:
        return self.folded.count + len(self.recent)

    def add(self, call: m_pb2.CallMeasurement) -> CallStats:
        return self.add_many((call,))

    def add_many(self, calls: Iterable[m_pb2.CallMeasurement]) -> CallStats:
        """With `calls` added in order: every FOLD calls are folded into the sketches, exactly as
        adding them one at a time would."""
        folded, recent = self.folded, list(self.recent)
        for call in calls:
            recent.append(_numbers(call))
            if len(recent) >= FOLD:
                folded, recent = folded.plus(recent), []
        return CallStats(folded, tuple(recent))

    def settled(self) -> _Folded:
        return self.folded.plus(self.recent) if self.recent else self.folded

    def summary(self) -> m_pb2.RunSummary:
        """The recorded calls' figures, shaped as the engine's RunSummary (percentiles from the
        sketches; a figure without a value stays unset)."""
        f = self.settled()
        s = m_pb2.RunSummary(calls_attempted=f.count, calls_answered=f.answered, calls_failed=f.count - f.answered,
                             rx_packets=f.rx_packets, tx_packets=f.tx_packets,
                             calls_audio_recorded=f.audio_recorded)
        for code, n in f.sip_codes.items():
            s.sip_codes[code] = n
        for outcome, n in f.outcomes.items():
            s.outcomes[outcome] = n
        if f.count:
            s.asr = f.answered / f.count
        if f.answered:
            sk = f.sketches
            s.acd_ms = f.duration_sum / f.answered
            figures = {"mos_mean": f.mos_sum / f.mos_n if f.mos_n else None, "mos_min": f.mos_min,
                       "mos_p5": quantile(sk["mos"], 0.05),
                       "setup_p50_ms": quantile(sk["setup_ms"], 0.50), "setup_p95_ms": quantile(sk["setup_ms"], 0.95),
                       "setup_p99_ms": quantile(sk["setup_ms"], 0.99),
                       "post_dial_delay_p95_ms": quantile(sk["post_dial_delay_ms"], 0.95),
                       "loss_pct_max": f.loss_max, "jitter_ms_max": f.jitter_max,
                       "jitter_ms_mean": f.jitter_sum / f.jitter_n if f.jitter_n else None,
                       "mos_lqo_mean": f.lqo_sum / f.lqo_n if f.lqo_n else None, "mos_lqo_min": f.lqo_min}
            for name, value in figures.items():
                if value is not None:  # not measured by any call: left unset
                    setattr(s, name, value)
        return s
