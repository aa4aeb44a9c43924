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
import math
import random
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

    def attempt_times(self) -> list[float]:
        """Start offsets (seconds from the window's start) of the planned attempts, ascending."""
        n = math.ceil(self.expected_calls() - 1e-9)  # attempt k starts when the integral reaches k
        cap = self.max_total_calls or MAX_PLANNED_CALLS
        n = min(n, cap, MAX_PLANNED_CALLS)
        times = []
        for k in range(n):
            t = self._time_of(k)
            if t >= self.window_s:
                break
            times.append(t)
        return times


def durations_ms(a: spec_pb2.LoadAction, n: int, seed: int) -> list[int]:
    """Talk time of each of ``n`` calls: ``fixed`` (default) = ``duration_ms``; ``uniform`` =
    ``duration_ms ± duration_spread_ms``; ``exponential`` with mean ``duration_ms``. Clamped to
    0..MAX_DURATION_MS. ``ValueError`` for an unknown distribution."""
    mean = a.duration_ms or DEFAULT_DURATION_MS
    dist = (a.duration_distribution or "fixed").strip().lower()
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"unknown duration_distribution {a.duration_distribution!r}; one of {', '.join(DISTRIBUTIONS)}")
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if dist == "fixed":
            d = float(mean)
        elif dist == "uniform":
            spread = a.duration_spread_ms
            d = rng.uniform(mean - spread, mean + spread)
        else:
            d = rng.expovariate(1.0 / mean)
        out.append(int(min(MAX_DURATION_MS, max(0.0, round(d)))))
    return out


def seed_for(run_id: str, step: int, action: int) -> int:
    """A stable seed per run and action (reproducible plans; different actions differ)."""
    digest = hashlib.sha256(f"{run_id}:{step}.{action}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True, slots=True)
class PlannedCall:
    index: int
    at_s: float
    duration_ms: int


def plan(a: spec_pb2.LoadAction, seed: int) -> tuple[LoadShape, list[PlannedCall]]:
    shape = LoadShape.from_action(a)
    times = shape.attempt_times()
    durs = durations_ms(a, len(times), seed)
    return shape, [PlannedCall(i, t, d) for i, (t, d) in enumerate(zip(times, durs, strict=True))]
