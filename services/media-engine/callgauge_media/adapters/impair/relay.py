"""User-space UDP impairment relay (loss, bursty loss, delay, jitter) on asyncio.

The machines Callgauge is built and tested on have no netem in their kernel (docs/media.md, impairment),
so tests and demos make network impairment in user space: a relay sits between a media engine and a
system under test and applies, per direction, random loss, Gilbert-Elliott bursty loss, a fixed
delay and jitter.

Topology (one relay instance = one UDP flow = one client <-> one target)::

    client (engine) --> listen 127.0.0.1:L --[upstream impairment]--> target (host, port)
    client (engine) <-- listen 127.0.0.1:L <--[downstream impairment]-- target

* Datagrams arriving on the listen socket go to the target; the sender's address
  becomes "the client". Datagrams the target sends back (to the relay's own
  target-facing socket, an ephemeral port) go to the *last* client address seen.
  Datagrams from the target before any client has spoken are dropped
  (``dropped_no_client``).
* The relay does not parse what it carries: SIP, RTP and RTCP are each a separate
  UDP flow, so each needs its own relay. To impair a call, compose relays:

  - SIP: one relay whose target is the SUT's SIP port (e.g. 5060); the engine uses
    the relay's listen address as its registrar/outbound proxy. A SUT that answers
    to the source address (``rport``, RFC 3581) replies through the relay.
  - RTP (and RTCP at RTP port + 1, unless rtcp-mux): one relay per media port,
    targeting the SUT's media port. RTP returns through the relay only when the
    far end sends back to the source address it received from -- "symmetric RTP"
    (RFC 4961): SIPp ``-rtp_echo``, rtpengine/rtpproxy in symmetric mode, most
    SBCs. For a peer that follows the SDP strictly, point the SDP at the relay
    instead (advertise the relay's listen address as the engine's media address,
    e.g. pjsua2 ``transportConfig.publicAddress``/fixed media port), or impair
    one direction only with pjsua2 ``MediaConfig.txDropPct/rxDropPct``.
  - Either way the SIP and media relays are independent objects with independent
    impairment configs; a test usually impairs only the media relays.

Example::

    relay = UdpImpairmentRelay(
        listen=("127.0.0.1", 0),                       # 0: pick a free port
        target=("127.0.0.1", 40000),                   # the SUT's RTP port
        upstream=ImpairmentConfig(loss_pct=2.0),
        downstream=ImpairmentConfig(delay_ms=80.0, jitter_ms=10.0),
        seed=42,
    )
    host, port = await relay.start()                   # point the engine's RTP here
    ...
    relay.upstream = ImpairmentConfig(burst=GilbertElliott.from_loss(5.0, 3.0))  # mid-run
    up = relay.stats.upstream                          # forwarded, dropped, lost, ...
    await relay.stop()

Impairment semantics (``ImpairmentConfig``, one per direction):

* ``loss_pct``: each datagram is dropped independently with that probability.
* ``burst``: a ``GilbertElliott`` two-state Markov chain stepped once per
  datagram: in the good state a datagram is lost with probability ``loss_good``
  (default 0), in the bad state with ``loss_bad`` (default 1); after each datagram
  the chain moves good->bad with probability ``p`` and bad->good with ``r``. With
  the defaults, the stationary loss is p / (p + r) and loss bursts are geometric
  with mean length 1 / r. ``gilbert_elliott_params(loss_pct, mean_burst)`` gives
  p and r for a target loss and mean burst length. Random and burst loss combine:
  a datagram is dropped if either drops it. The chain starts in the good state.

How the loss draws are made -- common random numbers, so that a seed fixes *where* losses
fall and the loss rate only decides *how many*:

* Every datagram of a direction takes exactly three uniforms from the direction's loss
  stream, whatever the configuration: ``u`` (random loss), ``e`` (the Gilbert-Elliott
  state's loss) and ``w`` (the chain's step). Datagram k therefore sees the same
  (u_k, e_k, w_k) under any loss settings, and a config changed mid-run does not shift
  the draws of the datagrams after it.
* Random loss: datagram k is dropped iff ``u_k < loss_pct / 100``. With the same seed the
  datagrams dropped at 3 % are a subset of those dropped at 5 % (nesting).
* Bursts: the chain's step is the monotone ("coupled") form of the same Markov chain:
  the next state is bad iff ``w_k < P(bad next | state now)``, i.e. ``w_k < p`` from good
  and ``w_k < 1 - r`` from bad (staying bad) -- one uniform for either state, instead of
  one draw for leaving good and another for leaving bad. The law is unchanged
  (P(good->bad) = p, P(bad->good) = r), so unseeded behaviour is statistically what it
  was. In a state the datagram is lost iff ``e_k < loss_bad`` (bad) or ``e_k < loss_good``
  (good). Take two chains on the same uniforms with the same r (the same mean burst
  length 1 / r) and p1 <= p2 (a lower and a higher mean loss): whenever chain 1 is bad,
  chain 2 is bad too. By induction over k: both good -> ``w < p1`` implies ``w < p2``; both
  bad -> they take the same step; chain 2 bad and chain 1 good -> chain 1 goes bad only if
  ``w < p1 <= p2 <= 1 - r``, and then chain 2 stays bad. So the bursts at the lower mean
  lie inside those at the higher mean: the loss set at 1 % (bursts of 4) is a subset of
  the one at 5 % (bursts of 4). This needs ``p2 <= 1 - r`` (a positively correlated chain),
  i.e. loss + 1 / burst <= 1 with the defaults: always true for bursts of 2 packets or more
  up to 50 % loss; for mean bursts between 1 and 2 packets at high loss the chain is still
  the right Gilbert-Elliott chain, only no longer nested.
* How close to the asked mean: random loss over n datagrams is Binomial(n, p): the
  injected fraction has a standard deviation of sqrt(p (1 - p) / n) (1 % over the 650
  packets of a 13 s PCMU call: +-0.39 points). Bursty loss varies more, because a call
  holds few bursts: the variance of the mean of a two-state chain is
  L (1 - L) / n * (1 + lambda) / (1 - lambda), lambda = 1 - p - r (1 % in bursts of 4
  over 650 packets: about 1.6 bursts, +-1.0 point). Nesting does not change that spread,
  but with a seed every cell of a comparison (loss levels, codecs, runs) sees the same
  draws, so cells differ by the loss rate alone, not by where the losses happened to land.
* ``delay_ms`` + jitter: each forwarded datagram is sent after
  ``max(0, delay_ms + J)`` where J ~ Uniform(-jitter_ms, +jitter_ms)
  (``jitter_distribution="uniform"``, the default: standard deviation
  jitter_ms / sqrt(3)) or J ~ Normal(0, jitter_ms) (``"normal"``: jitter_ms is the
  standard deviation; unbounded tails). Keep ``delay_ms >= jitter_ms`` for uniform
  jitter if the distribution must stay symmetric -- the clamp at 0 skews it.
  Each datagram is scheduled independently, so when jitter exceeds the spacing
  between packets they are REORDERED, as on a real multi-path network; an RTP
  receiver then sees out-of-order sequence numbers and its jitter buffer may
  discard late packets (counted as loss by RTCP). ``preserve_order=True`` makes a
  datagram never leave before its predecessor (FIFO: the delay of a packet becomes
  max(own draw, predecessor's departure)), which removes reordering but raises the
  mean delay and shapes the distribution.
* Each direction has two ``random.Random`` streams derived from ``seed`` (seeded
  with the strings "<seed>/<direction>/loss" and "<seed>/<direction>/delay"), so
  with a seed the loss pattern of a direction depends only on the number and order
  of datagrams in that direction and on the loss rate (nested, above) -- never on
  timing, on the other direction, or on the delay/jitter settings. ``seed=None``
  seeds from the OS.
* Configs are immutable values; assign ``relay.upstream = ImpairmentConfig(...)``
  (or ``downstream``) at any time: the change applies to the next datagram;
  datagrams already queued keep their departure time. The Gilbert-Elliott state
  carries over (it resets to "good" when the new config has no burst model).

Robustness: queued datagrams are bounded per direction (``max_queue`` datagrams
and ``max_queue_bytes`` bytes; beyond either, new datagrams are dropped and
counted as ``dropped_overflow``, as are datagrams
that would grow asyncio's own socket write buffer beyond ``max_write_buffer``
bytes when the kernel send buffer is full); datagrams longer
than ``max_datagram_size`` are dropped (``dropped_oversize``); the payload is never
parsed, so no content can make it fail; socket errors (ICMP port unreachable and
the like, send failures) are counted, never raised into the event loop. Delays use
one event-loop timer per direction (no polling, no busy loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from callgauge_media.domain.impairment import ImpairmentConfig

log = logging.getLogger(__name__)

Address = tuple[str, int]
MAX_UDP_PAYLOAD = 65507  # IPv4: 65535 - 20 (IP header) - 8 (UDP header)


@dataclass(frozen=True)
class DirectionStats:
    """Counters of one direction (snapshot).

    ``forwarded`` counts datagrams handed to the outgoing socket; a failure the
    kernel reports later (ICMP unreachable) shows in ``RelayStats.socket_errors``.
    """

    received: int = 0
    forwarded: int = 0
    dropped_random: int = 0
    dropped_burst: int = 0
    dropped_overflow: int = 0
    dropped_oversize: int = 0
    dropped_no_client: int = 0
    send_errors: int = 0
    queued: int = 0

    @property
    def lost(self) -> int:
        """Datagrams dropped by the loss models (random + burst)."""
        return self.dropped_random + self.dropped_burst

    @property
    def dropped(self) -> int:
        """Every datagram the relay did not forward (loss, overflow, oversize, no client)."""
        return (
            self.dropped_random
            + self.dropped_burst
            + self.dropped_overflow
            + self.dropped_oversize
            + self.dropped_no_client
        )


@dataclass(frozen=True)
class RelayStats:
    upstream: DirectionStats
    downstream: DirectionStats
    socket_errors: int = 0


@dataclass
class _Counters:
    received: int = 0
    forwarded: int = 0
    dropped_random: int = 0
    dropped_burst: int = 0
    dropped_overflow: int = 0
    dropped_oversize: int = 0
    dropped_no_client: int = 0
    send_errors: int = 0


@dataclass(order=True)
class _Queued:
    when: float
    seq: int
    data: bytes = field(compare=False)


class _Direction:
    """Impairment state, delay queue and counters of one direction."""

    def __init__(
        self,
        name: str,
        config: ImpairmentConfig,
        rng_loss: random.Random,
        rng_delay: random.Random,
        max_queue: int,
        max_queue_bytes: int,
    ) -> None:
        self.name = name
        self.config = config
        self.rng = rng_loss
        self.rng_delay = rng_delay
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.queued_bytes = 0
        self.bad = False
        self.counters = _Counters()
        self.heap: list[_Queued] = []
        self.seq = 0
        self.last_departure = -math.inf
        self.timer: asyncio.TimerHandle | None = None
        self.timer_when = math.inf
        self.loop: asyncio.AbstractEventLoop | None = None
        self.send: Callable[[bytes], None] | None = None

    def set_config(self, config: ImpairmentConfig) -> None:
        if not isinstance(config, ImpairmentConfig):
            raise TypeError(f"expected ImpairmentConfig, got {type(config).__name__}")
        self.config = config
        if config.burst is None:
            self.bad = False

    def _loss_decision(self) -> str | None:
        """Drop or forward one datagram: three uniforms per datagram whatever the config, each loss
        a threshold on one of them (nested patterns, module docstring)."""
        cfg = self.config
        draw = self.rng.random
        u, e, w = draw(), draw(), draw()
        verdict = None
        ge = cfg.burst
        if ge is not None:
            # Loss in the current state, then one (monotone) Markov step for the next datagram.
            if e < (ge.loss_bad if self.bad else ge.loss_good):
                verdict = "burst"
            self.bad = w < ((1.0 - ge.r) if self.bad else ge.p)
        if verdict is None and u * 100.0 < cfg.loss_pct:
            verdict = "random"
        return verdict

    def _delay_s(self) -> float:
        cfg = self.config
        delay = cfg.delay_ms
        if cfg.jitter_ms > 0.0:
            if cfg.jitter_distribution == "normal":
                delay += self.rng_delay.gauss(0.0, cfg.jitter_ms)
            else:
                delay += self.rng_delay.uniform(-cfg.jitter_ms, cfg.jitter_ms)
        return max(0.0, delay) / 1000.0

    def handle(self, data: bytes, max_size: int) -> None:
        loop = self.loop
        if loop is None:  # stopped: late datagram from a closing socket
            return
        c = self.counters
        c.received += 1
        if len(data) > max_size:
            c.dropped_oversize += 1
            return
        verdict = self._loss_decision()
        if verdict == "burst":
            c.dropped_burst += 1
            return
        if verdict == "random":
            c.dropped_random += 1
            return
        now = loop.time()
        when = now + self._delay_s()
        if self.config.preserve_order:
            when = max(when, self.last_departure)
        if when <= now and not self.heap:
            self.last_departure = max(self.last_departure, now)
            self._emit(data)
            return
        if len(self.heap) >= self.max_queue or self.queued_bytes + len(data) > self.max_queue_bytes:
            c.dropped_overflow += 1
            return
        self.last_departure = max(self.last_departure, when)
        self.seq += 1
        self.queued_bytes += len(data)
        heapq.heappush(self.heap, _Queued(when, self.seq, data))
        self._arm()

    def _arm(self) -> None:
        if not self.heap or self.loop is None:
            return
        first = self.heap[0].when
        if self.timer is not None:
            if first >= self.timer_when:
                return
            self.timer.cancel()
        self.timer_when = first
        self.timer = self.loop.call_at(first, self._drain)

    def _drain(self) -> None:
        self.timer = None
        self.timer_when = math.inf
        loop = self.loop
        if loop is None:
            return
        now = loop.time()
        try:
            while self.heap and self.heap[0].when <= now:
                data = heapq.heappop(self.heap).data
                self.queued_bytes -= len(data)
                self._emit(data)
        finally:
            self._arm()

    def _emit(self, data: bytes) -> None:
        send = self.send
        if send is None:
            return
        try:
            send(data)
        except _NoClient:
            self.counters.dropped_no_client += 1
        except _WriteBufferFull:
            self.counters.dropped_overflow += 1
        except (OSError, RuntimeError, ValueError) as exc:  # closed transport, EMSGSIZE, ...
            self.counters.send_errors += 1
            log.debug("relay %s send failed: %r", self.name, exc)
        else:
            self.counters.forwarded += 1

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None
        self.timer_when = math.inf
        self.heap.clear()
        self.queued_bytes = 0
        self.loop = None
        self.send = None

    def snapshot(self) -> DirectionStats:
        c = self.counters
        return DirectionStats(
            received=c.received,
            forwarded=c.forwarded,
            dropped_random=c.dropped_random,
            dropped_burst=c.dropped_burst,
            dropped_overflow=c.dropped_overflow,
            dropped_oversize=c.dropped_oversize,
            dropped_no_client=c.dropped_no_client,
            send_errors=c.send_errors,
            queued=len(self.heap),
        )


def stream_rng(seed: int | None, stream: str) -> random.Random:
    """The ``random.Random`` of one stream ("upstream/loss", "downstream/delay", ...) of a relay
    seeded with ``seed`` (None: from the OS)."""
    return random.Random() if seed is None else random.Random(f"{seed}/{stream}")


def loss_pattern(config: ImpairmentConfig | list[tuple[int, ImpairmentConfig]], n: int, seed: int | None,
                 direction: str = "upstream") -> list[int]:
    """The 0-based numbers of the datagrams, among the first ``n`` of ``direction`` ("upstream" or
    "downstream"), that a relay seeded with ``seed`` drops by its loss models -- the same code and
    streams as the relay, without sockets. ``config`` is one config, or ``[(from_datagram, config),
    ...]`` (ascending, the first from 0) for configs changed mid-run."""
    changes = [(0, config)] if isinstance(config, ImpairmentConfig) else list(config)
    if not changes or changes[0][0] != 0:
        raise ValueError("the first config must apply from datagram 0")
    d = _Direction(direction, changes[0][1], stream_rng(seed, f"{direction}/loss"),
                   stream_rng(seed, f"{direction}/delay"), 1, 1)
    at = {k: c for k, c in changes}
    out = []
    for k in range(n):
        if k in at:
            d.set_config(at[k])
        if d._loss_decision() is not None:
            out.append(k)
    return out


class _NoClient(Exception):
    pass


class _WriteBufferFull(Exception):
    pass


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None], on_error: Callable[[Exception], None]) -> None:
        self._on_datagram = on_datagram
        self._on_error = on_error

    def datagram_received(self, data: bytes, addr: Address) -> None:  # type: ignore[override]
        try:
            self._on_datagram(data, addr)
        except Exception:  # never let one datagram break the transport
            log.exception("impairment relay: datagram handling failed")

    def error_received(self, exc: Exception) -> None:
        self._on_error(exc)


class UdpImpairmentRelay:
    """Relay one UDP flow between a client and a target with per-direction impairment.

    ``upstream`` impairs client -> target, ``downstream`` target -> client. Use
    ``await start()`` (returns the bound listen address; port 0 picks one) and
    ``await stop()``, or ``async with``.
    """

    def __init__(
        self,
        listen: Address = ("127.0.0.1", 0),
        target: Address | None = None,
        upstream: ImpairmentConfig | None = None,
        downstream: ImpairmentConfig | None = None,
        seed: int | None = None,
        *,
        max_queue: int = 10_000,
        max_queue_bytes: int = 16 * 1024 * 1024,
        max_datagram_size: int = MAX_UDP_PAYLOAD,
        max_write_buffer: int = 4 * 1024 * 1024,
    ) -> None:
        if target is None:
            raise ValueError("target (host, port) is required")
        if max_queue < 1 or max_queue_bytes < 1:
            raise ValueError("max_queue and max_queue_bytes must be >= 1")
        if not 0 <= max_datagram_size <= MAX_UDP_PAYLOAD:
            raise ValueError(f"max_datagram_size must be within 0..{MAX_UDP_PAYLOAD}")
        self._listen_requested = (listen[0], int(listen[1]))
        self._target = (target[0], int(target[1]))
        self._seed = seed
        self._max_datagram_size = max_datagram_size
        self._max_write_buffer = max_write_buffer
        self._up = _Direction(
            "upstream",
            upstream or ImpairmentConfig(),
            self._rng("upstream/loss"),
            self._rng("upstream/delay"),
            max_queue,
            max_queue_bytes,
        )
        self._down = _Direction(
            "downstream",
            downstream or ImpairmentConfig(),
            self._rng("downstream/loss"),
            self._rng("downstream/delay"),
            max_queue,
            max_queue_bytes,
        )
        self._up.set_config(self._up.config)
        self._down.set_config(self._down.config)
        self._client: Address | None = None
        self._listen_transport: asyncio.DatagramTransport | None = None
        self._target_transport: asyncio.DatagramTransport | None = None
        self._listen_sock: socket.socket | None = None
        self._target_sock: socket.socket | None = None
        self._listen_address: Address | None = None
        self._socket_errors = 0
        self._closed = False
        self._last_upstream: bytes | None = None
        self.replayed = 0

    def _rng(self, stream: str) -> random.Random:
        return stream_rng(self._seed, stream)

    # -- configuration -------------------------------------------------------
    @property
    def upstream(self) -> ImpairmentConfig:
        return self._up.config

    @upstream.setter
    def upstream(self, config: ImpairmentConfig) -> None:
        self._up.set_config(config)

    @property
    def downstream(self) -> ImpairmentConfig:
        return self._down.config

    @downstream.setter
    def downstream(self, config: ImpairmentConfig) -> None:
        self._down.set_config(config)

    # -- state ---------------------------------------------------------------
    @property
    def listen_address(self) -> Address | None:
        return self._listen_address

    @property
    def target(self) -> Address:
        return self._target

    @property
    def client_address(self) -> Address | None:
        return self._client

    @property
    def running(self) -> bool:
        return self._listen_transport is not None

    @property
    def stats(self) -> RelayStats:
        return RelayStats(self._up.snapshot(), self._down.snapshot(), self._socket_errors)

    # -- lifecycle -----------------------------------------------------------
    async def start(self) -> Address:
        if self._listen_transport is not None or self._closed:
            raise RuntimeError("relay already started" if not self._closed else "relay was stopped")
        loop = asyncio.get_running_loop()
        # Own sockets (rather than local_addr/remote_addr) so zero-length datagrams,
        # which asyncio's DatagramTransport.sendto silently ignores, can be relayed.
        with contextlib.ExitStack() as undo:  # on any failure, close what was opened so far
            target_sock = await self._open_socket(loop, self._target, connect=True)
            undo.callback(target_sock.close)
            listen_sock = await self._open_socket(loop, self._listen_requested, connect=False)
            undo.callback(listen_sock.close)
            target_transport, _ = await loop.create_datagram_endpoint(
                lambda: _Endpoint(self._on_target_datagram, self._on_error), sock=target_sock
            )
            undo.callback(target_transport.close)
            listen_transport, _ = await loop.create_datagram_endpoint(
                lambda: _Endpoint(self._on_client_datagram, self._on_error), sock=listen_sock
            )
            undo.pop_all()
        self._target_sock = target_sock
        self._listen_sock = listen_sock
        self._target_transport = target_transport  # type: ignore[assignment]
        self._listen_transport = listen_transport  # type: ignore[assignment]
        sockname = listen_transport.get_extra_info("sockname")
        self._listen_address = (sockname[0], sockname[1])
        for direction, send in ((self._up, self._send_upstream), (self._down, self._send_downstream)):
            direction.loop = loop
            direction.send = send
        log.debug("impairment relay %s -> %s started", self._listen_address, self._target)
        return self._listen_address

    @staticmethod
    async def _open_socket(loop: asyncio.AbstractEventLoop, address: Address, *, connect: bool) -> socket.socket:
        infos = await loop.getaddrinfo(
            address[0], address[1], type=socket.SOCK_DGRAM, flags=0 if connect else socket.AI_PASSIVE
        )
        if not infos:
            raise OSError(f"cannot resolve {address!r}")
        family, type_, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            if connect:
                sock.connect(sockaddr)  # UDP connect: sets the peer, no packet is sent
            else:
                sock.bind(sockaddr)
        except BaseException:
            sock.close()
            raise
        return sock

    async def stop(self) -> None:
        """Close both sockets; datagrams still queued are discarded. Idempotent."""
        self._closed = True
        self._up.close()
        self._down.close()
        for transport in (self._listen_transport, self._target_transport):
            if transport is not None:
                transport.close()
        self._listen_transport = None
        self._target_transport = None
        self._listen_sock = None
        self._target_sock = None
        await asyncio.sleep(0)  # let the transports' connection_lost callbacks run

    async def __aenter__(self) -> UdpImpairmentRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- datagram paths --------------------------------------------------------
    def _on_client_datagram(self, data: bytes, addr: Address) -> None:
        self._client = (addr[0], addr[1])
        self._last_upstream = data
        self._up.handle(data, self._max_datagram_size)

    def greet_client(self, client: Address, data: bytes) -> bool:
        """Send ``data`` to ``client`` from the listen socket at once (not counted), and take it as
        the client until one speaks. The media engine uses it to show a far end the relay's
        address before anything else reaches it. False when the relay is not running."""
        transport = self._listen_transport
        if transport is None or transport.is_closing() or self._closed:
            return False
        if self._client is None:
            self._client = (client[0], int(client[1]))
        transport.sendto(data, (client[0], int(client[1])))
        return True

    def replay_upstream(self) -> bool:
        """Send the client's latest datagram to the target once more, at once and unimpaired (not
        counted in the direction's statistics). The media engine uses it to make its RTP stack
        learn the relay's address as soon as its stream exists. False when there is none yet."""
        data = self._last_upstream
        sock = self._target_sock
        if data is None or sock is None or self._closed:
            return False
        try:
            sock.send(data)
        except OSError:
            return False
        self.replayed += 1
        return True

    def _on_target_datagram(self, data: bytes, addr: Address) -> None:
        self._down.handle(data, self._max_datagram_size)

    def _send_upstream(self, data: bytes) -> None:
        transport = self._target_transport
        if transport is None or transport.is_closing():
            raise RuntimeError("target socket closed")
        if transport.get_write_buffer_size() > self._max_write_buffer:
            raise _WriteBufferFull
        if not data:
            assert self._target_sock is not None
            self._target_sock.send(b"")  # OSError (incl. BlockingIOError) counts as a send error
            return
        transport.sendto(data)

    def _send_downstream(self, data: bytes) -> None:
        transport = self._listen_transport
        if transport is None or transport.is_closing():
            raise RuntimeError("listen socket closed")
        if self._client is None:
            raise _NoClient
        if transport.get_write_buffer_size() > self._max_write_buffer:
            raise _WriteBufferFull
        if not data:
            assert self._listen_sock is not None
            self._listen_sock.sendto(b"", self._client)
            return
        transport.sendto(data, self._client)

    def _on_error(self, exc: Exception) -> None:
        # e.g. ConnectionRefusedError after an ICMP port-unreachable from the target.
        self._socket_errors += 1
        log.debug("impairment relay socket error: %r", exc)
