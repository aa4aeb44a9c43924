"""UDP impairment relay over real UDP sockets on 127.0.0.1.

Every test is bounded in packets (at most a few thousand small datagrams) and in
time (waits are polled with a deadline; the module timeout is 120 s). Timing
assertions are lower bounds or comparisons between runs, never upper wall-clock
thresholds. Loss assertions use the relay's seeded RNG, so they are reproducible;
their tolerances are still derived from the distributions, so that they would hold
for any seed with high probability.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import statistics
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from callgauge_media.adapters.impair.relay import UdpImpairmentRelay
from callgauge_media.domain.impairment import GilbertElliott, ImpairmentConfig, gilbert_elliott_params

pytestmark = pytest.mark.timeout(120)

HDR = struct.Struct("!Id")  # sequence number, sender's time.monotonic()
WAIT_S = 15.0  # deadline for conditions that normally hold within milliseconds


def packet(seq: int, size: int = 40) -> bytes:
    return HDR.pack(seq, time.monotonic()) + bytes(max(0, size - HDR.size))


class Peer(asyncio.DatagramProtocol):
    """Records (arrival monotonic time, payload); optionally echoes to the sender."""

    def __init__(self, echo: bool = False, sock: socket.socket | None = None) -> None:
        self.echo = echo
        self.sock = sock  # raw socket, to echo b"" (asyncio's sendto() skips empty data)
        self.received: list[tuple[float, bytes]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        self.received.append((time.monotonic(), data))
        if self.echo:
            if data:
                self.transport.sendto(data, addr)
            else:
                self.sock.sendto(data, addr)

    def seqs(self) -> list[int]:
        return [HDR.unpack_from(d)[0] for _, d in self.received]

    def transits(self) -> dict[int, float]:
        """seq -> arrival - send time, in seconds."""
        out = {}
        for arrival, data in self.received:
            seq, sent = HDR.unpack_from(data)
            out[seq] = arrival - sent
        return out


async def open_peer(echo: bool = False) -> tuple[Peer, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    transport, proto = await loop.create_datagram_endpoint(lambda: Peer(echo, sock), sock=sock)
    return proto, transport.get_extra_info("sockname")[:2]


async def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        await asyncio.sleep(0.001)


@dataclass
class Rig:
    relay: UdpImpairmentRelay
    addr: tuple[str, int]
    client: Peer
    target: Peer

    async def send(self, n: int, *, first_seq: int = 0, batch: int = 25, interval: float | None = None,
                   size: int = 40) -> None:
        """Send n numbered datagrams to the relay, paced so no socket buffer overflows.

        Without ``interval``: bursts of ``batch``, then wait until the relay has read
        them (the relay shares the event loop, so an unpaced loop would overrun the
        kernel receive buffer and the kernel, not the relay, would drop datagrams).
        """
        base = self.relay.stats.upstream.received
        for i in range(n):
            self.client.transport.sendto(packet(first_seq + i, size), self.addr)
            if interval is not None:
                await asyncio.sleep(interval)
            elif (i + 1) % batch == 0:
                await wait_until(lambda: self.relay.stats.upstream.received >= base + i + 1)
        await wait_until(lambda: self.relay.stats.upstream.received >= base + n)

    async def settle(self) -> None:
        """Wait until every datagram the relay accepted has left it and arrived."""
        await wait_until(lambda: self.relay.stats.upstream.queued == 0 and self.relay.stats.downstream.queued == 0)
        await wait_until(lambda: len(self.target.received) >= self.relay.stats.upstream.forwarded)
        await wait_until(lambda: len(self.client.received) >= self.relay.stats.downstream.forwarded)


@contextlib.asynccontextmanager
async def rig(upstream: ImpairmentConfig | None = None, downstream: ImpairmentConfig | None = None,
              seed: int | None = 1, echo: bool = True, **kwargs) -> AsyncIterator[Rig]:
    target, target_addr = await open_peer(echo=echo)
    client, _ = await open_peer()
    relay = UdpImpairmentRelay(("127.0.0.1", 0), target_addr, upstream, downstream, seed, **kwargs)
    addr = await relay.start()
    try:
        yield Rig(relay, addr, client, target)
    finally:
        await relay.stop()
        client.transport.close()
        target.transport.close()


def loss_runs(received: set[int], n: int) -> list[int]:
    """Lengths of the runs of consecutive missing sequence numbers in 0..n-1."""
    runs, current = [], 0
    for seq in range(n):
        if seq in received:
            if current:
                runs.append(current)
            current = 0
        else:
            current += 1
    if current:
        runs.append(current)
    return runs


def inversions(seqs: list[int]) -> int:
    """Datagrams that arrived after a datagram with a higher sequence number."""
    highest, count = -1, 0
    for s in seqs:
        if s < highest:
            count += 1
        highest = max(highest, s)
    return count


# ---------------------------------------------------------------------------
# Transparent relay.
# ---------------------------------------------------------------------------
async def test_zero_impairment_forwards_everything_both_ways():
    n = 300
    async with rig() as r:
        assert r.addr[0] == "127.0.0.1" and r.addr[1] > 0
        await r.send(n)
        await r.settle()
        assert sorted(r.target.seqs()) == list(range(n))
        assert sorted(r.client.seqs()) == list(range(n))  # echoes came back through the relay
        # Payloads are untouched (the echo returns exactly what was sent).
        assert {d for _, d in r.client.received} == {d for _, d in r.target.received}
        st = r.relay.stats
        for d in (st.upstream, st.downstream):
            assert (d.received, d.forwarded, d.dropped, d.queued) == (n, n, 0, 0)
        assert r.relay.client_address is not None


async def test_payload_edge_cases_are_forwarded_unchanged():
    odd = [b"", b"\x00", bytes(range(256)) * 4, b"\xff" * 1400, b"INVITE sip:x \x00\x01 not really SIP"]
    async with rig(echo=True) as r:
        # A plain socket: asyncio's DatagramTransport.sendto() silently skips b"".
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.bind(("127.0.0.1", 0))
            raw.setblocking(False)
            for payload in odd:
                raw.sendto(payload, r.addr)
            await wait_until(lambda: len(r.target.received) == len(odd))
            assert sorted(d for _, d in r.target.received) == sorted(odd)
            # The echoes (b"" included) come back through the relay's downstream path.
            await wait_until(lambda: r.relay.stats.downstream.forwarded == len(odd))
            back = []
            deadline = time.monotonic() + WAIT_S
            while len(back) < len(odd) and time.monotonic() < deadline:
                try:
                    back.append(raw.recv(65535))
                except BlockingIOError:
                    await asyncio.sleep(0.001)
            assert sorted(back) == sorted(odd)


# ---------------------------------------------------------------------------
# Random loss.
#   n = 2000, p = 0.10: dropped ~ Binomial(n, p), mean 200, sigma = sqrt(n p (1-p))
#   = sqrt(180) = 13.42 datagrams; +-3 sigma -> fraction within 0.10 +- 0.0201.
# ---------------------------------------------------------------------------
async def test_random_loss_fraction_is_binomial():
    n, p = 2000, 0.10
    tol = 3 * math.sqrt(p * (1 - p) / n)  # 0.0201
    async with rig(upstream=ImpairmentConfig(loss_pct=10.0), seed=1234, echo=False) as r:
        await r.send(n)
        await r.settle()
        up = r.relay.stats.upstream
        assert up.received == n
        assert up.forwarded + up.dropped == n
        assert up.dropped == up.dropped_random
        assert abs(up.dropped / n - p) <= tol, up
        # What the relay says it forwarded is exactly what reached the target.
        assert len(r.target.received) == up.forwarded
        assert len(set(r.target.seqs())) == up.forwarded


async def test_same_seed_same_loss_pattern():
    patterns = []
    for _ in range(2):
        async with rig(upstream=ImpairmentConfig(loss_pct=20.0), seed=99, echo=False) as r:
            await r.send(500)
            await r.settle()
            patterns.append(frozenset(r.target.seqs()))
    assert patterns[0] == patterns[1]
    assert 0 < len(patterns[0]) < 500


async def test_downstream_loss_is_independent_of_upstream():
    n = 1000
    async with rig(downstream=ImpairmentConfig(loss_pct=30.0), seed=5) as r:
        await r.send(n)
        await r.settle()
        st = r.relay.stats
        assert st.upstream.forwarded == n and st.upstream.dropped == 0
        assert st.downstream.received == n
        # Binomial(1000, 0.3): sigma = sqrt(210) = 14.5 -> 300 +- 44 (3 sigma)
        assert abs(st.downstream.dropped_random - 300) <= 44
        assert len(r.client.received) == st.downstream.forwarded


# ---------------------------------------------------------------------------
# Gilbert-Elliott bursty loss.
#   gilbert_elliott_params(10 %, 4): r = 1/4 = 0.25, p = r L/(1 - L) = 0.25 * 0.1/0.9
#   = 0.027778; stationary loss p/(p + r) = 0.1.
#   n = 4000: expected bursts ~ n (1 - L) p = 4000 * 0.9 * 0.027778 = 100. Burst length
#   is geometric with mean 1/r = 4 and variance (1 - r)/r^2 = 12, so the mean of ~100
#   bursts has sigma = sqrt(12/100) = 0.35 -> tolerance +-1.1 (about 3 sigma).
#   Loss fraction: for a two-state chain the variance of the sample mean is
#   L(1 - L)/n * (1 + lambda)/(1 - lambda), lambda = 1 - p - r = 0.7222 -> factor 6.2,
#   sigma = sqrt(0.09 * 6.2 / 4000) = 0.0118 -> tolerance +-0.036 (3 sigma).
# ---------------------------------------------------------------------------
def test_gilbert_elliott_params_derivation():
    p, r = gilbert_elliott_params(10.0, 4.0)
    assert r == pytest.approx(0.25)
    assert p == pytest.approx(0.25 * 0.1 / 0.9)
    ge = GilbertElliott.from_loss(10.0, 4.0)
    assert ge.stationary_loss_pct == pytest.approx(10.0)
    assert ge.mean_bad_run == pytest.approx(4.0)
    # No loss -> never enters the bad state.
    assert gilbert_elliott_params(0.0, 3.0) == (0.0, pytest.approx(1 / 3))
    # Burst length 1 and L = 50 %: p = 1 * 0.5/0.5 = 1, the largest loss possible.
    assert gilbert_elliott_params(50.0, 1.0) == (pytest.approx(1.0), 1.0)


@pytest.mark.parametrize(
    ("loss", "burst"),
    [(-1, 2), (100, 2), (math.nan, 2), (10, 0.5), (10, math.inf), (60, 1.0)],  # 60 % with b = 1 needs p = 1.5
)
def test_gilbert_elliott_params_rejects_impossible_targets(loss, burst):
    with pytest.raises(ValueError):
        gilbert_elliott_params(loss, burst)


async def test_gilbert_elliott_mean_burst_length():
    n = 4000
    ge = GilbertElliott.from_loss(10.0, 4.0)
    async with rig(upstream=ImpairmentConfig(burst=ge), seed=2024, echo=False) as r:
        await r.send(n, batch=50)
        await r.settle()
        up = r.relay.stats.upstream
        assert up.dropped == up.dropped_burst == n - up.forwarded
        runs = loss_runs(set(r.target.seqs()), n)
    assert len(runs) >= 50  # ~100 expected; guards the statistics below
    assert statistics.fmean(runs) == pytest.approx(4.0, abs=1.1)
    assert sum(runs) / n == pytest.approx(0.10, abs=0.036)


async def test_random_loss_has_short_bursts_for_contrast():
    # Independent 10 % loss: runs are geometric with mean 1/(1 - 0.1) = 1.11.
    n = 4000
    async with rig(upstream=ImpairmentConfig(loss_pct=10.0), seed=2024, echo=False) as r:
        await r.send(n, batch=50)
        await r.settle()
        runs = loss_runs(set(r.target.seqs()), n)
    assert statistics.fmean(runs) < 1.5


# ---------------------------------------------------------------------------
# Delay and jitter.
# ---------------------------------------------------------------------------
async def test_fixed_delay_is_a_lower_bound_in_each_direction():
    up_ms, down_ms = 30.0, 20.0
    async with rig(upstream=ImpairmentConfig(delay_ms=up_ms), downstream=ImpairmentConfig(delay_ms=down_ms)) as r:
        await r.send(40, interval=0.003)
        await r.settle()
        one_way = r.target.transits()
        round_trip = r.client.transits()
        assert len(one_way) == len(round_trip) == 40
        # Sender stamps time.monotonic() before sendto; the relay reads the datagram
        # later and schedules it delay_ms after that, so arrival - stamp >= delay.
        assert min(one_way.values()) >= up_ms / 1000
        assert min(round_trip.values()) >= (up_ms + down_ms) / 1000
        # No jitter: FIFO order is kept.
        assert r.target.seqs() == sorted(r.target.seqs())
        assert r.client.seqs() == sorted(r.client.seqs())


def _transit_diff_sd(peer: Peer) -> float:
    """Std dev of consecutive transit-time differences (by sequence), seconds.

    This is the quantity RFC 3550 interarrival jitter estimates: D(i-1, i) =
    (R_i - R_{i-1}) - (S_i - S_{i-1}) = transit_i - transit_{i-1}.
    """
    transits = peer.transits()
    seqs = sorted(transits)
    return statistics.pstdev([transits[b] - transits[a] for a, b in zip(seqs, seqs[1:])])


async def test_jitter_raises_the_spread_of_transit_differences():
    # Uniform jitter +-j around a 50 ms delay (never clamped at 0): the transit has
    # sd j/sqrt(3), the difference of two independent transits sd sqrt(2/3) j:
    #   j = 0 -> scheduling noise only; j = 10 ms -> 8.2 ms; j = 40 ms -> 32.7 ms.
    sds = {}
    for jitter in (0.0, 10.0, 40.0):
        cfg = ImpairmentConfig(delay_ms=50.0, jitter_ms=jitter)
        async with rig(upstream=cfg, seed=7, echo=False) as r:
            await r.send(150, interval=0.002)
            await r.settle()
            assert len(r.target.received) == 150
            assert min(r.target.transits().values()) >= (50.0 - jitter) / 1000
            sds[jitter] = _transit_diff_sd(r.target)
    # j = 0 measures the machine's scheduling noise, which on a loaded machine can reach the
    # 8 ms of j = 10: only the 40 ms case is compared with it.
    assert sds[0.0] < sds[40.0] and sds[10.0] < sds[40.0], sds
    # Lower bounds at half the expected value (sample sd of 149 differences is
    # within a few % of its expectation; scheduling noise only adds variance).
    assert sds[10.0] >= 0.5 * math.sqrt(2 / 3) * 0.010, sds
    assert sds[40.0] >= 0.5 * math.sqrt(2 / 3) * 0.040, sds


async def test_large_jitter_reorders_unless_order_is_preserved():
    # +-40 ms jitter on datagrams 2 ms apart: a datagram is overtaken whenever a later
    # one draws a delay more than the spacing shorter -- most of the time.
    cfg = ImpairmentConfig(delay_ms=50.0, jitter_ms=40.0)
    async with rig(upstream=cfg, seed=11, echo=False) as r:
        await r.send(100, interval=0.002)
        await r.settle()
        assert inversions(r.target.seqs()) > 10
    fifo = ImpairmentConfig(delay_ms=50.0, jitter_ms=40.0, preserve_order=True)
    async with rig(upstream=fifo, seed=11, echo=False) as r:
        await r.send(100, interval=0.002)
        await r.settle()
        assert r.target.seqs() == list(range(100))
        assert min(r.target.transits().values()) >= 0.010


async def test_normal_jitter_spreads_transit_times():
    # Normal jitter, sd 10 ms around 100 ms (clamping at 0 needs a -10 sigma draw):
    # transit differences have sd sqrt(2) * 10 = 14.1 ms; lower bound at half.
    cfg = ImpairmentConfig(delay_ms=100.0, jitter_ms=10.0, jitter_distribution="normal")
    async with rig(upstream=cfg, seed=3, echo=False) as r:
        await r.send(150, interval=0.002)
        await r.settle()
        assert _transit_diff_sd(r.target) >= 0.5 * math.sqrt(2) * 0.010


# ---------------------------------------------------------------------------
# Run-time reconfiguration, bounds, robustness.
# ---------------------------------------------------------------------------
async def test_impairment_can_be_raised_mid_run():
    async with rig(echo=False) as r:
        await r.send(100, first_seq=0)
        r.relay.upstream = ImpairmentConfig(loss_pct=100.0)
        await r.send(100, first_seq=100)
        r.relay.upstream = ImpairmentConfig()
        await r.send(100, first_seq=200)
        await r.settle()
        assert sorted(r.target.seqs()) == list(range(100)) + list(range(200, 300))
        up = r.relay.stats.upstream
        assert (up.forwarded, up.dropped_random) == (200, 100)
        assert r.relay.upstream == ImpairmentConfig()
        with pytest.raises(TypeError):
            r.relay.downstream = {"loss_pct": 5}  # type: ignore[assignment]


async def test_queue_is_bounded():
    async with rig(upstream=ImpairmentConfig(delay_ms=300.0), echo=False, max_queue=10) as r:
        await r.send(50)
        up = r.relay.stats.upstream
        assert (up.queued, up.dropped_overflow) == (10, 40)
        await r.settle()
        assert r.target.seqs() == list(range(10))
        assert r.relay.stats.upstream.forwarded == 10


async def test_queue_is_bounded_in_bytes():
    # 1000-byte datagrams, 5000-byte budget: 5 fit, the other 15 overflow.
    async with rig(upstream=ImpairmentConfig(delay_ms=200.0), echo=False, max_queue_bytes=5000) as r:
        await r.send(20, size=1000)
        up = r.relay.stats.upstream
        assert (up.queued, up.dropped_overflow) == (5, 15)
        await r.settle()
        assert r.target.seqs() == list(range(5))


async def test_oversized_datagrams_are_dropped_and_the_relay_keeps_working():
    async with rig(echo=False, max_datagram_size=512) as r:
        r.client.transport.sendto(b"x" * 513, r.addr)
        r.client.transport.sendto(b"y" * 512, r.addr)
        await wait_until(lambda: r.relay.stats.upstream.received == 2)
        await r.send(10, first_seq=0)
        await r.settle()
        up = r.relay.stats.upstream
        assert up.dropped_oversize == 1
        assert up.forwarded == 11
        assert sorted(d for _, d in r.target.received)[-1] == b"y" * 512


async def test_unreachable_target_does_not_break_the_relay():
    # A port nobody listens on: the kernel answers with ICMP port unreachable, which
    # the relay's connected socket reports as an error; the relay must carry on.
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    dead_port = probe.getsockname()[1]
    probe.close()
    client, _ = await open_peer()
    relay = UdpImpairmentRelay(("127.0.0.1", 0), ("127.0.0.1", dead_port), seed=1)
    addr = await relay.start()
    try:
        for i in range(20):
            client.transport.sendto(packet(i), addr)
            await asyncio.sleep(0.001)
        await wait_until(lambda: relay.stats.upstream.received == 20)
        st = relay.stats
        assert st.upstream.forwarded + st.upstream.send_errors == 20
        assert relay.running
    finally:
        await relay.stop()
        await relay.stop()  # idempotent
        client.transport.close()
    assert not relay.running


async def test_stop_discards_queued_datagrams_and_cancels_timers():
    async with rig(upstream=ImpairmentConfig(delay_ms=10_000.0), echo=False) as r:
        await r.send(5)
        assert r.relay.stats.upstream.queued == 5
        await r.relay.stop()
        assert r.relay.stats.upstream.queued == 0
        await asyncio.sleep(0.05)
        assert r.target.received == []
        with pytest.raises(RuntimeError):
            await r.relay.start()


def test_config_validation():
    for bad in (
        dict(loss_pct=-1),
        dict(loss_pct=101),
        dict(loss_pct=math.nan),
        dict(delay_ms=-5),
        dict(jitter_ms=math.inf),
        dict(jitter_distribution="pareto"),
    ):
        with pytest.raises(ValueError):
            ImpairmentConfig(**bad)
    with pytest.raises(ValueError):
        GilbertElliott(p=1.2, r=0.5)
    with pytest.raises(ValueError):
        GilbertElliott(p=0.1, r=0.0)
    with pytest.raises(ValueError):
        UdpImpairmentRelay(("127.0.0.1", 0), None)
    assert not ImpairmentConfig().impairs
    assert ImpairmentConfig(jitter_ms=1).impairs
