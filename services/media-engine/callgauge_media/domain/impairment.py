"""The impairment of a call's media path, as a value: what a `call` / `load` action asks for
(``Impairment`` in the test spec, checked by :func:`impairment_problems`), and the per-direction
settings (:class:`ImpairmentConfig`, with Gilbert-Elliott bursts) the relays of
:mod:`callgauge_media.adapters.impair` apply to the packets."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Literal


def _check_prob(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0.0 or v > 1.0:
        raise ValueError(f"{name} must be a probability within 0..1, got {value!r}")
    return v


def gilbert_elliott_params(loss_pct: float, mean_burst_len: float) -> tuple[float, float]:
    """(p, r) of a Gilbert model (loss 1 in bad, 0 in good) for a target loss and burst length.

    Stationary loss L = p / (p + r) and mean burst length b = 1 / r, hence
    r = 1 / b and p = r L / (1 - L). Requires 0 <= L < 100 %, b >= 1 and p <= 1,
    i.e. L <= b / (1 + b).
    """
    loss = float(loss_pct)
    burst = float(mean_burst_len)
    if not math.isfinite(loss) or loss < 0.0 or loss >= 100.0:
        raise ValueError(f"loss_pct must be within 0..100 (exclusive of 100), got {loss_pct!r}")
    if not math.isfinite(burst) or burst < 1.0:
        raise ValueError(f"mean_burst_len must be >= 1 packet, got {mean_burst_len!r}")
    fraction = loss / 100.0
    r = 1.0 / burst
    p = r * fraction / (1.0 - fraction)
    if p > 1.0:
        raise ValueError(
            f"{loss_pct}% loss with mean bursts of {mean_burst_len} packets needs p > 1; "
            f"the maximum loss for that burst length is {100.0 * burst / (1.0 + burst):.2f}%"
        )
    return p, r


@dataclass(frozen=True)
class GilbertElliott:
    """Two-state bursty loss model. p = P(good->bad), r = P(bad->good), per datagram."""

    p: float
    r: float
    loss_bad: float = 1.0
    loss_good: float = 0.0

    def __post_init__(self) -> None:
        _check_prob("p", self.p)
        _check_prob("r", self.r)
        _check_prob("loss_bad", self.loss_bad)
        _check_prob("loss_good", self.loss_good)
        if self.r == 0.0 and self.p > 0.0:
            raise ValueError("r = 0 makes the bad state absorbing (loss forever); use r > 0")

    @classmethod
    def from_loss(cls, loss_pct: float, mean_burst_len: float) -> GilbertElliott:
        p, r = gilbert_elliott_params(loss_pct, mean_burst_len)
        return cls(p=p, r=r)

    @property
    def stationary_loss_pct(self) -> float:
        if self.p + self.r == 0.0:
            return 100.0 * self.loss_good
        bad = self.p / (self.p + self.r)
        return 100.0 * (bad * self.loss_bad + (1.0 - bad) * self.loss_good)

    @property
    def mean_bad_run(self) -> float:
        """Mean number of consecutive datagrams spent in the bad state (1 / r)."""
        return math.inf if self.r == 0.0 else 1.0 / self.r


@dataclass(frozen=True)
class ImpairmentConfig:
    """Impairment of one direction. The default impairs nothing."""

    loss_pct: float = 0.0
    burst: GilbertElliott | None = None
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    jitter_distribution: Literal["uniform", "normal"] = "uniform"
    preserve_order: bool = False

    def __post_init__(self) -> None:
        for name in ("loss_pct", "delay_ms", "jitter_ms"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.loss_pct > 100.0:
            raise ValueError(f"loss_pct must be within 0..100, got {self.loss_pct!r}")
        if self.jitter_distribution not in ("uniform", "normal"):
            raise ValueError(f"jitter_distribution must be 'uniform' or 'normal', got {self.jitter_distribution!r}")
        if self.burst is not None and not isinstance(self.burst, GilbertElliott):
            raise ValueError("burst must be a GilbertElliott or None")

    @property
    def impairs(self) -> bool:
        return bool(self.loss_pct or self.burst or self.delay_ms or self.jitter_ms)


DIRECTIONS = ("receive", "send", "both")
MAX_LOSS_PCT = 50.0
MAX_BURST_PACKETS = 100.0
MAX_JITTER_MS = 500.0
MAX_DELAY_MS = 2000.0
MAX_SEED = 2**32 - 1  # the seed is a uint32 in the spec


def impairment_problems(loss_pct: float, burst_packets: float, jitter_ms: float, delay_ms: float,
                        direction: str) -> list[tuple[str, str]]:
    """(field, message) for every value an Impairment must not have (the runs service checks the
    same rules when a test is saved)."""
    out: list[tuple[str, str]] = []
    for name, value, top in (("loss_pct", loss_pct, MAX_LOSS_PCT), ("jitter_ms", jitter_ms, MAX_JITTER_MS),
                             ("delay_ms", delay_ms, MAX_DELAY_MS)):
        if not math.isfinite(value) or value < 0 or value > top:
            out.append((name, f"between 0 and {top:g}"))
    if not math.isfinite(burst_packets) or burst_packets < 0 or burst_packets > MAX_BURST_PACKETS \
            or 0 < burst_packets < 1:
        out.append(("burst_packets", f"0 (random loss) or a mean burst length between 1 and {MAX_BURST_PACKETS:g} "
                                     "packets"))
    if direction not in ("", *DIRECTIONS):
        out.append(("direction", f"one of {', '.join(DIRECTIONS)}"))
    return out


@dataclass(frozen=True, slots=True)
class MediaImpairment:
    """A call's impairment (picklable: it travels to the media worker inside the CallJob)."""

    loss_pct: float = 0.0
    burst_packets: float = 0.0
    jitter_ms: float = 0.0
    delay_ms: float = 0.0
    direction: str = "receive"
    seed: int | None = None  # the loss and delay draws (0..2**32-1); None: from the OS
    seed_asked: bool = False  # the action named the seed (else it was derived from the call id)

    def __post_init__(self) -> None:
        problems = impairment_problems(self.loss_pct, self.burst_packets, self.jitter_ms, self.delay_ms,
                                       self.direction)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not 0 <= self.seed <= MAX_SEED):
            problems.append(("seed", f"an integer between 0 and {MAX_SEED}"))
        if problems:
            raise ValueError("impairment: " + "; ".join(f"{f} must be {m}" for f, m in problems))

    @classmethod
    def from_proto(cls, msg, *, seed_key: str = "") -> MediaImpairment:
        """From a spec's ``Impairment``. Its ``seed`` when it has one (every call of the action then
        gets the same loss pattern), else ``seed_key`` (the call id) seeds the draws, so a call's
        loss pattern is the same on every replay of its run."""
        if msg.HasField("seed"):
            seed, asked = int(msg.seed), True
        else:
            seed, asked = (zlib.crc32(seed_key.encode()) if seed_key else None), False
        return cls(loss_pct=float(msg.loss_pct), burst_packets=float(msg.burst_packets),
                   jitter_ms=float(msg.jitter_ms), delay_ms=float(msg.delay_ms),
                   direction=(msg.direction or "receive").lower(), seed=seed, seed_asked=asked)

    def fill(self, msg) -> None:
        """Into an ``Impairment`` message (as asked, defaults filled in; the seed only when the
        action named one)."""
        msg.loss_pct = self.loss_pct
        msg.burst_packets = self.burst_packets
        msg.jitter_ms = self.jitter_ms
        msg.delay_ms = self.delay_ms
        msg.direction = self.direction
        if self.seed_asked and self.seed is not None:
            msg.seed = self.seed

    def _one_way(self) -> ImpairmentConfig:
        burst = None
        loss = self.loss_pct
        if self.burst_packets > 1 and loss > 0:
            burst = GilbertElliott.from_loss(loss, self.burst_packets)
            loss = 0.0
        return ImpairmentConfig(loss_pct=loss, burst=burst, delay_ms=self.delay_ms, jitter_ms=self.jitter_ms)

    def rtp_configs(self) -> tuple[ImpairmentConfig, ImpairmentConfig]:
        """(receive: far end -> engine, send: engine -> far end)."""
        one = self._one_way()
        none = ImpairmentConfig()
        rx = one if self.direction in ("receive", "both") else none
        tx = one if self.direction in ("send", "both") else none
        return rx, tx

    def rtcp_configs(self) -> tuple[ImpairmentConfig, ImpairmentConfig]:
        """RTCP: the delay and jitter of each direction, never loss."""
        rx, tx = self.rtp_configs()
        return (ImpairmentConfig(delay_ms=rx.delay_ms, jitter_ms=rx.jitter_ms),
                ImpairmentConfig(delay_ms=tx.delay_ms, jitter_ms=tx.jitter_ms))
