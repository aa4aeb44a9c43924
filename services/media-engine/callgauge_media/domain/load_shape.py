"""Load shaping (pure): from a LoadAction to the times of its call attempts and each call's talk time.

The rate of attempts follows a trapezoid: it climbs linearly from 0 to ``cps`` over ``ramp_up_s``,
stays at ``cps`` for ``hold_s``, and falls linearly back to 0 over ``ramp_down_s``. Attempt ``k``
(0-based) starts when the integral of the rate reaches ``k`` — so with no ramp, attempts are at
``0, 1/cps, 2/cps, …`` — and the plan ends when the window ends or ``max_total_calls`` attempts are
planned, whichever comes first. The plan is bounded both ways: at most ``MAX_PLANNED_CALLS``
attempts, within ``ramp_up_s + hold_s + ramp_down_s`` seconds (both capped too).

``max_concurrency`` is not part of the plan: the runner holds an attempt back while that many calls
are up, and drops attempts that could not start before the window closed (they are not
attempts). Talk times come from a seeded ``random.Random``, so the same run id gives the same plan.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

DISTRIBUTIONS = ("fixed", "uniform", "exponential")
DEFAULT_DURATION_MS = 5_000
MAX_DURATION_MS = 3_600_000
MAX_WINDOW_S = 24 * 3600
MAX_PLANNED_CALLS = 1_000_000
DEFAULT_CPS = 1.0


@dataclass(frozen=True, slots=True)
class LoadShape:
    cps: float
    ramp_up_s: float = 0.0
    hold_s: float = 0.0
    ramp_down_s: float = 0.0
    max_total_calls: int = 0  # 0: no cap (the window still bounds it)
    max_concurrency: int = 0  # 0: no cap of ours (the worker pool's capacity still bounds it)

    @classmethod
    def from_action(cls, a: spec_pb2.LoadAction) -> LoadShape:
        """Unset fields take defaults: cps 1, and with no phase at all a hold just long enough for
        ``max_total_calls`` attempts (1 call when that is unset too)."""
        cps = a.cps if a.cps > 0 and math.isfinite(a.cps) else DEFAULT_CPS
        up, hold, down = (min(float(x), MAX_WINDOW_S) for x in (a.ramp_up_s, a.hold_s, a.ramp_down_s))
        if up + hold + down == 0:
            hold = max(1, a.max_total_calls) / cps
        return cls(cps=cps, ramp_up_s=up, hold_s=hold, ramp_down_s=down,
                   max_total_calls=a.max_total_calls, max_concurrency=a.max_concurrency)

    @property
    def window_s(self) -> float:
        return self.ramp_up_s + self.hold_s + self.ramp_down_s

    def rate_at(self, t: float) -> float:
        """Target attempts per second at ``t`` seconds into the window."""
        if t < 0 or t >= self.window_s:
            return 0.0
        if t < self.ramp_up_s:
            return self.cps * t / self.ramp_up_s
        if t < self.ramp_up_s + self.hold_s:
            return self.cps
        return self.cps * (self.window_s - t) / self.ramp_down_s

    def expected_calls(self) -> float:
        """The integral of the rate over the window."""
        return self.cps * (self.ramp_up_s / 2 + self.hold_s + self.ramp_down_s / 2)

    def calls_by(self, t: float) -> float:
        """The integral of the rate from 0 to ``t``."""
        cps, up, hold, down = self.cps, self.ramp_up_s, self.hold_s, self.ramp_down_s
        t = min(max(t, 0.0), self.window_s)
        if t <= up:
            return cps * t * t / (2 * up) if up > 0 else 0.0
        if t <= up + hold:
            return cps * up / 2 + cps * (t - up)
        s = t - up - hold
        return cps * up / 2 + cps * hold + cps * s - cps * s * s / (2 * down)

    def rate_steps(self, min_calls_per_step: float = 5.0) -> list[tuple[float, float]]:
        """Piecewise-constant rates ``(start_s, calls per second)`` that place as many calls in each
        piece as the plan does (for a generator that only knows a constant rate, like SIPp): pieces
        of whole seconds within a phase, merged until each holds ``min_calls_per_step`` planned
        calls or the phase ends. The last piece has rate 0 at the end of the window."""
        edges = {0.0, self.window_s, self.ramp_up_s, self.ramp_up_s + self.hold_s}
        t = 0.0
        while t < self.window_s:
            edges.add(t)
            t += 1.0
        edges_sorted = sorted(e for e in edges if 0 <= e <= self.window_s)
        phase_ends = {self.ramp_up_s, self.ramp_up_s + self.hold_s, self.window_s}

        def planned(a: float, b: float) -> int:  # attempts k with calls_by(a) <= k < calls_by(b)
            return math.ceil(self.calls_by(b) - 1e-9) - math.ceil(self.calls_by(a) - 1e-9)

        out: list[tuple[float, float]] = []
        start = 0.0
        for e in edges_sorted[1:]:
            if planned(start, e) >= min_calls_per_step or e in phase_ends:
                if e > start:
                    out.append((start, planned(start, e) / (e - start)))
                start = e
        out.append((self.window_s, 0.0))
        merged = [out[0]]
        for piece in out[1:]:
            if abs(piece[1] - merged[-1][1]) > 1e-9:
                merged.append(piece)
        return merged

    def _time_of(self, k: float) -> float:
        """The time at which the integral of the rate reaches ``k`` (``k <= expected_calls()``)."""
        cps, up, hold, down = self.cps, self.ramp_up_s, self.hold_s, self.ramp_down_s
        area_up = cps * up / 2
        if k <= area_up and up > 0:
            return math.sqrt(2 * up * k / cps)
        k -= area_up
        if k <= cps * hold:
            return up + k / cps
        k -= cps * hold
        # ramp down: area from its start to s is cps*s - cps*s^2/(2*down)
        rest = max(0.0, 1 - 2 * k / (cps * down)) if down > 0 else 0.0
        return up + hold + down * (1 - math.sqrt(rest))

    def attempt_count(self) -> int:
        """How many attempts the plan holds, computed without listing them."""
        n = math.ceil(self.expected_calls() - 1e-9)  # attempt k starts when the integral reaches k
        n = min(n, self.max_total_calls or MAX_PLANNED_CALLS, MAX_PLANNED_CALLS)
        while n > 0 and self._time_of(n - 1) >= self.window_s:  # times ascend: only the tail can fall out
            n -= 1
        return n

    def iter_attempt_times(self) -> Iterator[float]:
        """Start offsets (seconds from the window's start) of the planned attempts, ascending, one
        at a time (a plan of any size costs the same memory)."""
        for k in range(self.attempt_count()):
            yield self._time_of(k)

    def attempt_times(self) -> list[float]:
        return list(self.iter_attempt_times())


def durations_ms(a: spec_pb2.LoadAction, n: int, seed: int) -> list[int]:
    """Talk time of each of ``n`` calls: ``fixed`` (default) = ``duration_ms``; ``uniform`` =
    ``duration_ms ± duration_spread_ms``; ``exponential`` with mean ``duration_ms``. Clamped to
    0..MAX_DURATION_MS. ``ValueError`` for an unknown distribution."""
    return list(itertools.islice(iter_durations_ms(a, seed), n))


def iter_durations_ms(a: spec_pb2.LoadAction, seed: int) -> Iterator[int]:
    """The talk times of :func:`durations_ms`, one at a time (same seed, same sequence)."""
    mean = a.duration_ms or DEFAULT_DURATION_MS
    dist = (a.duration_distribution or "fixed").strip().lower()
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"unknown duration_distribution {a.duration_distribution!r}; one of {', '.join(DISTRIBUTIONS)}")
    spread = a.duration_spread_ms

    def draws() -> Iterator[int]:  # the checks above run at the call, not at the first draw
        rng = random.Random(seed)
        while True:
            if dist == "fixed":
                d = float(mean)
            elif dist == "uniform":
                d = rng.uniform(mean - spread, mean + spread)
            else:
                d = rng.expovariate(1.0 / mean)
            yield int(min(MAX_DURATION_MS, max(0.0, round(d))))

    return draws()


def seed_for(run_id: str, step: int, action: int) -> int:
    """A stable seed per run and action (reproducible plans; different actions differ)."""
    digest = hashlib.sha256(f"{run_id}:{step}.{action}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True, slots=True)
class PlannedCall:
    index: int
    at_s: float
    duration_ms: int


def iter_plan(a: spec_pb2.LoadAction, seed: int) -> tuple[LoadShape, int, Iterator[PlannedCall]]:
    """The shape, the number of planned calls and the calls one at a time (bounded memory)."""
    shape = LoadShape.from_action(a)
    n = shape.attempt_count()
    calls = (PlannedCall(i, t, d) for i, t, d in zip(range(n), shape.iter_attempt_times(), iter_durations_ms(a, seed)))
    return shape, n, calls


def plan(a: spec_pb2.LoadAction, seed: int) -> tuple[LoadShape, list[PlannedCall]]:
    shape, _n, calls = iter_plan(a, seed)
    return shape, list(calls)
