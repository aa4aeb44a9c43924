"""Impairment of one call's media path: what a `call` / `load` action asks for (``Impairment`` in
the test spec), and the relays a media worker puts between its RTP/RTCP sockets and the far end.

How a call is impaired (pjsua driver)::

    far end --RTP--> relay L (listen) --[receive impairment]--> engine RTP port P   (from relay socket E)
    far end <--RTP-- relay L          <--[send impairment]----- engine RTP port P   (to relay socket E)
    far end --RTCP-> relay Lr --[delay, jitter]--> engine RTCP port; and back the same way

* The engine's SDP offer advertises L (``m=audio L``) and Lr (``a=rtcp:Lr``) instead of its own
  ports (pjsua2 ``onCallSdpCreated``), so a far end that follows the SDP sends its RTP and RTCP
  into the relays. The relays run on an asyncio loop in a thread of the media worker.
* The engine sends its RTP to the address the far end's SDP answer names, until the first RTP
  packet arrives from the relay: pjmedia then switches its remote address to the source of what
  it receives (symmetric RTP, immediately when nothing came from the SDP address before), so from
  then on what the engine sends goes through the relay too, and leaves from L -- the address the
  far end expects. The packets sent before that (the first ~20-40 ms) go straight to the far end.
* A far end that never sends RTP to the address in the offer (one that only echoes to the source
  of what it receives, like ``sipp -rtp_echo``) is not impaired: the relay sees nothing, and the
  call's ``impairment.rx_packets`` is 0 (``detail`` says so).
* RTCP is never dropped (reports carry the measurement); it gets the same delay and jitter, so
  the RTCP round trip includes the added delay twice when both directions are delayed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import struct
import threading
from dataclasses import dataclass

from callgauge_media.adapters.impair.relay import DirectionStats, UdpImpairmentRelay
from callgauge_media.domain.impairment import MediaImpairment

OPEN_TIMEOUT_S = 5.0


@dataclass
class CallRelays:
    """The two relays of one call (RTP, RTCP) and the ports the SDP offer advertises."""

    rtp: UdpImpairmentRelay
    rtcp: UdpImpairmentRelay
    rtp_port: int
    rtcp_port: int
    closed: bool = False
    ssrc: int | None = None  # of the engine's RTP stream (from its SDP offer's a=ssrc)
    primed: bool = False
    greeted: bool = False  # the far end got the primer before the engine's stream started

    def counts(self) -> tuple[DirectionStats, DirectionStats]:
        """(receive, send) counters of the RTP relay. Receive is the relay's upstream (the far end
        is its client), send its downstream."""
        s = self.rtp.stats
        return s.upstream, s.downstream


class RelayHost:
    """An asyncio loop in a daemon thread of the media worker that carries the calls' relays.

    Started on first use; :meth:`open` and :meth:`close` are called from the worker's pjsua thread
    and wait (bounded) for the loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                t = threading.Thread(target=run, name="impairment-relays", daemon=True)
                t.start()
                ready.wait(OPEN_TIMEOUT_S)
                self._loop, self._thread = loop, t
            return self._loop

    def open(self, listen_host: str, rtp_target: tuple[str, int], rtcp_target: tuple[str, int],
             imp: MediaImpairment) -> CallRelays:
        loop = self._ensure()
        rx, tx = imp.rtp_configs()
        crx, ctx = imp.rtcp_configs()

        async def start() -> CallRelays:
            rtp = UdpImpairmentRelay(listen=(listen_host, 0), target=rtp_target, upstream=rx, downstream=tx,
                                     seed=imp.seed)
            rtcp = UdpImpairmentRelay(listen=(listen_host, 0), target=rtcp_target, upstream=crx, downstream=ctx,
                                      seed=None if imp.seed is None else imp.seed + 1)
            try:
                _, p1 = await rtp.start()
                _, p2 = await rtcp.start()
            except BaseException:
                await rtp.stop()
                await rtcp.stop()
                raise
            return CallRelays(rtp, rtcp, p1, p2)

        return asyncio.run_coroutine_threadsafe(start(), loop).result(OPEN_TIMEOUT_S)

    def close(self, relays: CallRelays) -> None:
        if relays.closed or self._loop is None:
            return
        relays.closed = True

        async def stop() -> None:
            await relays.rtp.stop()
            await relays.rtcp.stop()

        try:
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(OPEN_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - the sockets go with the process at worst
            pass

    def greet_far_end(self, relays: CallRelays, far_end: tuple[str, int]) -> bool:
        """Before the engine's stream exists (pjsua2 ``onStreamPreCreate``): send the far end, from
        the relay's address, an RTP packet with the engine's SSRC and a payload type nobody uses,
        and wait (bounded) until it is on the wire. A far end with symmetric RTP then hears from
        the relay before the engine's first packet reaches it straight from the engine's own port,
        and keeps sending to the relay (pjmedia switches at once to the first address a packet
        with the expected SSRC comes from, and only after a probation of consecutive packets once
        it has heard from one). Sent later, from the relay's thread, the greeting loses that race on
        a busy machine and the far end's RTP goes around the relay. True when it was sent."""
        if relays.closed or self._loop is None or relays.ssrc is None:
            return False
        done: concurrent.futures.Future[bool] = concurrent.futures.Future()

        def greet() -> None:
            try:
                done.set_result(relays.rtp.greet_client(far_end, primer_packet(relays.ssrc or 0)))
            except BaseException as exc:  # noqa: BLE001 - reported to the waiting pjsua thread
                done.set_exception(exc)

        self._loop.call_soon_threadsafe(greet)
        try:
            sent = done.result(OPEN_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - not greeted: the far end may go around the relay (detail says)
            return False
        relays.greeted = sent
        return sent

    def prime(self, relays: CallRelays, far_end: tuple[str, int] | None) -> None:
        """The engine's stream has just been created (it will send its first packets straight to
        ``far_end``, the address of the SDP answer). Two things, at once:

        * to the far end, from the relay's address, an RTP packet with the engine's SSRC and a
          payload type nobody uses (dropped after the address check): a far end that learns its
          peer's address from the first packet it gets (symmetric RTP) learns the relay's, not the
          engine's own port;
        * to the engine, the far end's latest packet once more through the relay, so the engine
          switches to the relay now rather than at the far end's next packet."""
        if relays.closed or self._loop is None:
            return
        if far_end is not None and relays.ssrc is not None and not relays.greeted:
            self._loop.call_soon_threadsafe(relays.rtp.greet_client, far_end, primer_packet(relays.ssrc))
        self._loop.call_soon_threadsafe(relays.rtp.replay_upstream)

    def shutdown(self) -> None:
        loop = self._loop
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(OPEN_TIMEOUT_S)
        self._loop = None


PRIMER_PT = 127  # a dynamic payload type no offer of ours uses: the far end drops the packet


def primer_packet(ssrc: int) -> bytes:
    """A bare RTP header (version 2, payload type 127, sequence 0, timestamp 0) with ``ssrc``."""
    return struct.pack("!BBHII", 0x80, PRIMER_PT, 0, 0, ssrc & 0xFFFFFFFF)


def sdp_ssrc(sdp: str) -> int | None:
    m = re.search(r"^a=ssrc:(\d+)", sdp, re.MULTILINE)
    return int(m.group(1)) if m else None


def rewrite_offer(sdp: str, rtp_port: int, rtcp_port: int) -> tuple[str, int, int] | None:
    """The SDP with its first audio stream's port replaced by ``rtp_port`` and its RTCP port by
    ``rtcp_port`` (an ``a=rtcp:`` line added when there was none). Returns (new SDP, the original
    RTP port, the original RTCP port), or None when the SDP has no audio stream."""
    lines = sdp.split("\r\n")
    m_idx = None
    orig_rtp = orig_rtcp = 0
    for i, line in enumerate(lines):
        if line.startswith("m=audio "):
            parts = line.split(" ")
            orig_rtp = int(parts[1].split("/", 1)[0])
            parts[1] = str(rtp_port)
            lines[i] = " ".join(parts)
            m_idx = i
            break
    if m_idx is None:
        return None
    orig_rtcp = orig_rtp + 1
    end = next((j for j in range(m_idx + 1, len(lines)) if lines[j].startswith("m=")), len(lines))
    while end > m_idx + 1 and lines[end - 1] == "":  # the empty string after the last CRLF
        end -= 1
    for j in range(m_idx + 1, end):
        if lines[j].startswith("a=rtcp:"):
            rest = lines[j][len("a=rtcp:"):].split(" ", 1)
            orig_rtcp = int(rest[0])
            lines[j] = "a=rtcp:" + " ".join([str(rtcp_port), *rest[1:]])
            break
    else:
        lines.insert(end, f"a=rtcp:{rtcp_port}")  # attributes come last in a media section
    return "\r\n".join(lines), orig_rtp, orig_rtcp
