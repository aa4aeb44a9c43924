"""The impairment relay's loss patterns as common random numbers (pure: the relay's own decision
code through ``loss_pattern``, no sockets): with a seed, the datagrams lost at a lower loss are a
subset of those lost at a higher one (random, and bursty at the same mean burst length); the same
seed gives the same pattern and different seeds differ; the injected mean over many datagrams is
within a stated tolerance of the asked mean; and the burst model keeps its Gilbert-Elliott law.

Tolerances (4 standard deviations of the sample mean; every test is seeded, hence deterministic):

* random loss, n datagrams at p: Binomial, sigma = sqrt(p (1 - p) / n);
* bursty loss (Gilbert-Elliott, loss 1 in bad, 0 in good, L = p / (p + r)): the variance of the
  mean of a two-state chain is L (1 - L) / n * (1 + lambda) / (1 - lambda), lambda = 1 - p - r;
* mean burst length: geometric with mean 1 / r, variance (1 - r) / r^2, over the bursts counted.
"""
from __future__ import annotations

import math
import statistics

import pytest

from callgauge_media.adapters.impair.relay import UdpImpairmentRelay, loss_pattern
from callgauge_media.domain.impairment import GilbertElliott, ImpairmentConfig, MediaImpairment

LEVELS = (0.0, 1.0, 3.0, 5.0, 10.0, 20.0, 50.0)
N_NEST = 5000
N_MEAN = 100_000


def _random(loss: float) -> ImpairmentConfig:
    return ImpairmentConfig(loss_pct=loss)


def _bursty(loss: float, burst: float) -> ImpairmentConfig:
    return ImpairmentConfig(burst=GilbertElliott.from_loss(loss, burst)) if loss else ImpairmentConfig()


def _runs(lost: list[int]) -> list[int]:
    """Lengths of the runs of consecutive lost datagrams."""
    out: list[int] = []
    prev = None
    for k in lost:
        if prev is not None and k == prev + 1:
            out[-1] += 1
        else:
            out.append(1)
        prev = k
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 7, 4_294_967_295])
def test_random_loss_patterns_are_nested(seed: int) -> None:
    sets = [set(loss_pattern(_random(p), N_NEST, seed)) for p in LEVELS]
    assert not sets[0]
    for low, high in zip(sets, sets[1:]):
        assert low <= high
        assert len(low) < len(high)


@pytest.mark.parametrize("burst", [2.0, 4.0, 8.0])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_bursty_loss_patterns_are_nested_at_the_same_mean_burst(seed: int, burst: float) -> None:
    sets = [set(loss_pattern(_bursty(p, burst), N_NEST, seed)) for p in LEVELS]
    assert not sets[0]
    for low, high in zip(sets, sets[1:]):
        assert low <= high


def test_what_the_media_engine_asks_is_nested_too() -> None:
    # a call's receive direction is the RTP relay's upstream; the bench's cells differ only in loss_pct
    for burst in (0.0, 4.0):
        sets = [set(loss_pattern(MediaImpairment(loss_pct=p, burst_packets=burst if p else 0, seed=3)
                                 .rtp_configs()[0], 3000, 3))
                for p in (0.0, 1.0, 3.0, 5.0, 10.0)]
        assert all(a <= b for a, b in zip(sets, sets[1:])), burst


def test_random_and_burst_together_nest_in_each() -> None:
    low = ImpairmentConfig(loss_pct=1.0, burst=GilbertElliott.from_loss(2.0, 4.0))
    high = ImpairmentConfig(loss_pct=3.0, burst=GilbertElliott.from_loss(5.0, 4.0))
    assert set(loss_pattern(low, N_NEST, 5)) <= set(loss_pattern(high, N_NEST, 5))


def test_the_same_seed_gives_the_same_pattern_and_different_seeds_differ() -> None:
    for cfg in (_random(5.0), _bursty(5.0, 4.0)):
        a = loss_pattern(cfg, 3000, 42)
        assert a == loss_pattern(cfg, 3000, 42)
        assert a and a != loss_pattern(cfg, 3000, 43)
        # the two directions of one relay draw from their own streams
        assert a != loss_pattern(cfg, 3000, 42, direction="downstream")
        # unseeded: from the OS (two draws of 3000 datagrams at 5 % coincide with probability ~0)
        assert loss_pattern(cfg, 3000, None) != loss_pattern(cfg, 3000, None)


def test_the_relay_draws_what_loss_pattern_says() -> None:
    cfg = _bursty(5.0, 4.0)
    relay = UdpImpairmentRelay(target=("127.0.0.1", 9), upstream=cfg, downstream=_random(3.0), seed=11)
    up = [k for k in range(2000) if relay._up._loss_decision() is not None]
    down = [k for k in range(2000) if relay._down._loss_decision() is not None]
    assert up == loss_pattern(cfg, 2000, 11)
    assert down == loss_pattern(_random(3.0), 2000, 11, direction="downstream")


def test_a_config_changed_mid_run_keeps_the_draws_of_the_datagrams_after_it() -> None:
    # three uniforms per datagram whatever the config: from datagram 1000 on, 3 % then 5 % drops
    # exactly what 5 % from the start drops
    switched = loss_pattern([(0, _random(3.0)), (1000, _random(5.0))], 3000, 9)
    straight = loss_pattern(_random(5.0), 3000, 9)
    assert [k for k in switched if k >= 1000] == [k for k in straight if k >= 1000]
    assert [k for k in switched if k < 1000] == [k for k in loss_pattern(_random(3.0), 1000, 9)]
    # nor does a burst model in between shift the random draws after it
    mixed = loss_pattern([(0, _bursty(10.0, 4.0)), (500, _random(5.0))], 3000, 9)
    assert [k for k in mixed if k >= 500] == [k for k in straight if k >= 500]


@pytest.mark.parametrize("loss", [1.0, 3.0, 5.0, 10.0])
def test_random_loss_hits_its_mean(loss: float) -> None:
    p = loss / 100
    tol = 4 * math.sqrt(p * (1 - p) / N_MEAN)  # 0.0004 at 1 %, 0.0038 at 10 %
    got = len(loss_pattern(_random(loss), N_MEAN, 2024)) / N_MEAN
    assert abs(got - p) <= tol, (got, p, tol)


@pytest.mark.parametrize("loss", [1.0, 3.0, 5.0, 10.0])
def test_bursty_loss_hits_its_mean_and_its_burst_length(loss: float) -> None:
    ge = GilbertElliott.from_loss(loss, 4.0)
    L = loss / 100
    lam = 1 - ge.p - ge.r
    tol = 4 * math.sqrt(L * (1 - L) / N_MEAN * (1 + lam) / (1 - lam))  # 0.0033 at 1 %, 0.0094 at 10 %
    lost = loss_pattern(ImpairmentConfig(burst=ge), N_MEAN, 2024)
    assert abs(len(lost) / N_MEAN - L) <= tol, (len(lost) / N_MEAN, L, tol)
    runs = _runs(lost)  # with loss 1 in bad and 0 in good the loss runs are the bad runs
    assert len(runs) > 200
    tol_b = 4 * math.sqrt((1 - ge.r) / ge.r ** 2 / len(runs))
    assert statistics.fmean(runs) == pytest.approx(4.0, abs=tol_b)


def test_unseeded_loss_keeps_its_law() -> None:
    # the OS-seeded draws: mean and burst length at 5 sigma (a false alarm about once in 3 million)
    n, L = 50_000, 0.05
    got = len(loss_pattern(_random(5.0), n, None)) / n
    assert abs(got - L) <= 5 * math.sqrt(L * (1 - L) / n)
    ge = GilbertElliott.from_loss(5.0, 4.0)
    lam = 1 - ge.p - ge.r
    lost = loss_pattern(ImpairmentConfig(burst=ge), n, None)
    assert abs(len(lost) / n - L) <= 5 * math.sqrt(L * (1 - L) / n * (1 + lam) / (1 - lam))
    runs = _runs(lost)
    assert statistics.fmean(runs) == pytest.approx(4.0, abs=5 * math.sqrt(12 / len(runs)))


def test_a_loss_pattern_needs_its_first_config_at_zero() -> None:
    with pytest.raises(ValueError):
        loss_pattern([(5, _random(1.0))], 10, 1)
