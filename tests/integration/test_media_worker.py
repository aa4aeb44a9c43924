"""Real SIP/RTP calls from a WorkerPool (pjsua2 worker processes) to the built-in responder and SIPp.

Everything binds to 127.0.0.1; every subprocess is killed in fixture teardown; every wait is
bounded (asyncio.wait_for / subprocess timeouts), never a wall-clock assertion.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callgauge_platform.stack import free_port, stop_process, udp_port_taken
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.jobs import CallJob
from callgauge_media.adapters.pool import WorkerPool

pytest.importorskip("pjsua2", reason="pjsua2-python (extra 'media') is not installed")

HOST = "127.0.0.1"
CALL_BOUND_S = 45.0  # generous bound for one call's whole life
POOL_RTP_BASE = 46000


def _free_port(kind: int = socket.SOCK_DGRAM) -> int:
    return free_port(HOST, kind)


G729_ONLY_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas answering with a given SDP body">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 18
a=rtpmap:18 G729/8000

]]></send>
  <recv request="ACK" optional="true" rtd="true" crlf="true"/>
  <recv request="BYE" timeout="10000"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
</scenario>
"""


@pytest.fixture
def garbage_peer() -> Iterator[str]:
    """A UDP 'SIP peer' that answers every datagram with bytes that are not SIP."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                _, addr = sock.recvfrom(65535)
            except OSError:
                continue
            for junk in (b"\x00\xff garbage \r\n\r\n", b"SIP/2.0 2OO OK\r\nVia: ???\r\n\r\n", os.urandom(300)):
                try:
                    sock.sendto(junk, addr)
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"sip:junk@{HOST}:{sock.getsockname()[1]}"
    finally:
        done.set()
        t.join(5)
        sock.close()


@pytest.fixture
async def pool(start_pool) -> WorkerPool:
    # 4 calls per worker: the queueing tests below fill it
    return await start_pool(rtp_port_base=POOL_RTP_BASE, calls_per_worker=4)


async def _call(pool: WorkerPool, job: CallJob) -> m_pb2.CallMeasurement:
    return await asyncio.wait_for(pool.run_call(job), CALL_BOUND_S)


def _explain(m: m_pb2.CallMeasurement) -> str:
    return f"{m_pb2.CallOutcome.Name(m.outcome)} {m.sip_code} {m.sip_reason!r} detail={m.detail!r}"


def test_the_parent_process_does_not_load_pjsua2() -> None:
    code = ("import sys, callgauge_media.adapters.pool, callgauge_media.responder; "
            "sys.exit(1 if 'pjsua2' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


async def test_pcmu_call_with_tone_to_the_responder(pool: WorkerPool, start_responder) -> None:
    r = start_responder()
    m = await _call(pool, CallJob(call_id="tone-1", destination=r.uri, duration_ms=3000, tone_hz=440,
                                  codec="PCMU", setup_timeout_ms=10_000, step=1, action=2, index=3))
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert m.sip_code == 200
    assert (m.call_id, m.step, m.action, m.index, m.destination) == ("tone-1", 1, 2, 3, r.uri)
    assert m.codec == "PCMU"
    assert m.tx_packets > 0 and m.rx_packets > 0
    assert m.rx_lost_packets == 0 and m.loss_pct == 0.0
    assert not m.one_way_audio
    assert m.mos > 4.0 and m.r_factor > 80
    assert m.setup_time_ms > 0 and m.post_dial_delay_ms > 0
    assert m.duration_ms >= 3000
    assert m.ended_at.ToNanoseconds() > m.started_at.ToNanoseconds() > 0


async def test_call_to_sipp_rtp_echo(pool: WorkerPool, sipp_uas: str) -> None:
    m = await _call(pool, CallJob(call_id="sipp-1", destination=sipp_uas, duration_ms=2000, tone_hz=440))
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert m.sip_code == 200
    assert m.rx_packets > 0 and m.tx_packets > 0
    assert m.codec == "PCMU"


async def test_nobody_listening_is_a_timeout_or_a_failure(pool: WorkerPool) -> None:
    port = _free_port()  # closed again: nothing listens there
    m = await _call(pool, CallJob(call_id="void-1", destination=f"sip:nobody@{HOST}:{port}",
                                  duration_ms=1000, setup_timeout_ms=2000))
    assert m.outcome in (m_pb2.TIMEOUT, m_pb2.CALL_FAILED), _explain(m)
    assert m.sip_code >= 400, _explain(m)
    assert m.rx_packets == 0 and m.mos == 0


async def test_busy_responder_is_call_failed_486(pool: WorkerPool, start_responder) -> None:
    r = start_responder("--code", "486")
    m = await _call(pool, CallJob(call_id="busy-1", destination=r.uri, duration_ms=1000))
    assert m.outcome == m_pb2.CALL_FAILED, _explain(m)
    assert m.sip_code == 486
    assert m.post_dial_delay_ms > 0  # 180 came first
    assert m.setup_time_ms == 0


async def test_488_is_negotiation_failed(pool: WorkerPool, start_responder) -> None:
    r = start_responder("--code", "488")
    m = await _call(pool, CallJob(call_id="neg-1", destination=r.uri, duration_ms=1000))
    assert m.outcome == m_pb2.NEGOTIATION_FAILED, _explain(m)
    assert m.sip_code == 488


async def test_unknown_codec_is_negotiation_failed_without_a_call(pool: WorkerPool) -> None:
    m = await _call(pool, CallJob(call_id="codec-1", destination=f"sip:x@{HOST}:9", codec="AMR-WB"))
    assert m.outcome == m_pb2.NEGOTIATION_FAILED, _explain(m)
    assert "not available" in m.detail


async def test_g722_is_negotiated_when_preferred(pool: WorkerPool, start_responder) -> None:
    r = start_responder()
    m = await _call(pool, CallJob(call_id="wb-1", destination=r.uri, duration_ms=1500, tone_hz=1000, codec="G722"))
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert m.codec == "G722"
    assert m.rx_packets > 0
    assert m.mos > 4.0


async def test_opus_call_is_negotiated_and_scored_on_the_wideband_model(pool: WorkerPool, start_responder) -> None:
    # Given the built-in responder (pjsua2 with libopus), when a call asks for opus,
    # then the stream is opus, RTP flows both ways and the MOS comes from the wideband E-model
    # (G.107.1 scale: R above the narrowband ceiling of 100) with the estimate named in the detail.
    r = start_responder()
    m = await _call(pool, CallJob(call_id="opus-1", destination=r.uri, duration_ms=1500, tone_hz=1000, codec="opus"))
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert m.codec.lower() == "opus", _explain(m)
    assert m.rx_packets > 0 and m.tx_packets > 0
    assert m.HasField("mos") and m.mos > 4.0, _explain(m)
    assert m.r_factor > 100.0, m.r_factor  # a wideband R
    assert "ESTIMATED" in m.detail, _explain(m)


async def test_concurrent_calls_in_one_worker_each_get_their_own_codec(pool: WorkerPool, start_responder) -> None:
    # Given one worker (the fixture's pool has one process) holding four calls at once,
    # when each call asks for a different codec,
    # then each call's stream uses the codec it asked for: the single-codec offer is built inside
    # makeCall from the Endpoint-global priorities, which the worker sets right before each call.
    r = start_responder()
    codecs = ("opus", "G722", "PCMA", "PCMU")
    results = await asyncio.gather(*(
        _call(pool, CallJob(call_id=f"mix-{c}", destination=r.uri, duration_ms=3000, tone_hz=440, codec=c))
        for c in codecs))
    for codec, m in zip(codecs, results):
        assert m.outcome == m_pb2.SUCCESS, _explain(m)
        assert m.codec.lower() == codec.lower(), (codec, m.codec)
        assert m.rx_packets > 0, _explain(m)
    # they were up together: every call started before any other ended
    latest_start = max(m.started_at.ToMilliseconds() for m in results)
    earliest_end = min(m.ended_at.ToMilliseconds() for m in results)
    assert latest_start < earliest_end


async def test_opus_bandwidth_is_per_call_narrowband_to_fullband(pool: WorkerPool, start_responder) -> None:
    # Given one worker holding opus calls at once, when each asks for another audio bandwidth,
    # then each stream's opus codec was opened at its own sample rate (the offer's maxplaybackrate
    # bounds what the far end sends) and the measurement says which bandwidth it got.
    r = start_responder()
    asked = ("narrowband", "wideband", "superwideband", "fullband")
    results = await asyncio.gather(*(
        _call(pool, CallJob(call_id=f"bw-{b}", destination=r.uri, duration_ms=2500, tone_hz=440, codec="opus",
                            audio_bandwidth=b))
        for b in asked))
    for bw, m in zip(asked, results):
        assert m.outcome == m_pb2.SUCCESS and m.codec.lower() == "opus", _explain(m)
        assert m.audio_bandwidth == bw, (bw, m.audio_bandwidth, m.codec_clock_hz)
        assert m.rx_packets > 0 and m.HasField("mos"), _explain(m)
    assert [m.codec_clock_hz for m in results] == [8000, 16000, 24000, 48000]
    # a PCMU call is narrowband, G722 wideband
    m = await _call(pool, CallJob(call_id="bw-g722", destination=r.uri, duration_ms=1000, codec="G722"))
    assert (m.audio_bandwidth, m.codec_clock_hz) == ("wideband", 16000), _explain(m)


async def test_tcp_call_to_the_responder(pool: WorkerPool, start_responder) -> None:
    r = start_responder()
    if "no TCP listener" in r.log.read_text():
        pytest.skip("the responder's UDP port number was taken on TCP")
    m = await _call(pool, CallJob(call_id="tcp-1", destination=r.uri, duration_ms=1000, tone_hz=440, transport="tcp"))
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert m.rx_packets > 0


async def test_setup_timeout_cancels_a_ringing_call(pool: WorkerPool, start_responder) -> None:
    r = start_responder("--answer-delay-ms", "10000")
    m = await _call(pool, CallJob(call_id="ring-1", destination=r.uri, duration_ms=1000, setup_timeout_ms=1000))
    assert m.outcome == m_pb2.TIMEOUT, _explain(m)
    assert m.sip_code == 408
    assert "last provisional: 180 Ringing" in m.detail, _explain(m)
    assert m.post_dial_delay_ms > 0
    # the detail names the CANCEL because the ladder has it (issue 18: details and ladders agree)
    assert any(e.direction == "out" and e.summary.startswith("CANCEL") for e in m.sip_ladder), _explain(m)
    assert "CANCEL sent" in m.detail, _explain(m)


async def test_far_end_hangup_keeps_the_statistics(pool: WorkerPool, start_responder) -> None:
    r = start_responder("--hangup-after-ms", "1500")
    m = await _call(pool, CallJob(call_id="bye-1", destination=r.uri, duration_ms=20_000, tone_hz=440))
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert m.duration_ms < 20_000
    assert m.rx_packets > 0 and m.tx_packets > 0
    assert "far end hung up" in m.detail


async def test_answer_without_a_common_codec_is_negotiation_failed(pool: WorkerPool, tmp_path: Path) -> None:
    if shutil.which("sipp") is None:
        pytest.skip("sipp (Debian sip-tester) is not installed")
    (tmp_path / "g729_only.xml").write_text(G729_ONLY_UAS)
    sip_port, media_port = _free_port(), _free_port()
    proc = subprocess.Popen(["sipp", "-sf", "g729_only.xml", "-i", HOST, "-p", str(sip_port), "-mp", str(media_port),
                             "-m", "1", "-nostdin", "-timeout", "60"], cwd=tmp_path, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not udp_port_taken(sip_port):
            if proc.poll() is not None or time.monotonic() >= deadline:
                pytest.fail("sipp did not start")
            time.sleep(0.05)
        pid = pool.worker_pids()[0]
        m = await _call(pool, CallJob(call_id="g729", destination=f"sip:s@{HOST}:{sip_port}", duration_ms=1000))
        assert m.outcome == m_pb2.NEGOTIATION_FAILED, _explain(m)
        assert m.sip_code == 200 and "no audio stream" in m.detail
        assert pool.worker_pids()[0] == pid and pool.restarts == 0
    finally:
        stop_process(proc)


async def test_a_peer_sending_garbage_does_not_hurt_the_worker(pool: WorkerPool, garbage_peer: str,
                                                               start_responder) -> None:
    pid = pool.worker_pids()[0]
    m = await _call(pool, CallJob(call_id="junk", destination=garbage_peer, duration_ms=1000, setup_timeout_ms=1500))
    assert m.outcome == m_pb2.TIMEOUT, _explain(m)
    r = start_responder()
    ok = await _call(pool, CallJob(call_id="after-junk", destination=r.uri, duration_ms=500))
    assert ok.outcome == m_pb2.SUCCESS, _explain(ok)
    assert pool.worker_pids()[0] == pid and pool.restarts == 0


async def test_five_concurrent_calls_queue_on_one_worker(pool: WorkerPool, start_responder) -> None:
    r = start_responder()
    jobs = [CallJob(call_id=f"q-{i}", destination=r.uri, duration_ms=1500, tone_hz=440 if i % 2 else 0)
            for i in range(5)]
    ms = await asyncio.wait_for(asyncio.gather(*(pool.run_call(j) for j in jobs)), 2 * CALL_BOUND_S)
    assert [m.call_id for m in ms] == [j.call_id for j in jobs]
    for m in ms:
        assert m.outcome == m_pb2.SUCCESS, _explain(m)
        assert m.rx_packets > 0 and m.tx_packets > 0
    assert pool.in_flight == 0 and pool.queued == 0


async def test_a_crashed_worker_fails_only_its_calls_and_comes_back(start_responder) -> None:
    r = start_responder()
    async with WorkerPool(workers=2, rtp_port_base=POOL_RTP_BASE + 200, rtp_ports_per_worker=100,
                          calls_per_worker=4) as pool:
        live = [asyncio.create_task(pool.run_call(CallJob(call_id=f"long-{i}", destination=r.uri,
                                                          duration_ms=4000, tone_hz=440)))
                for i in range(2)]
        # least-loaded dispatch puts one call on each worker
        deadline = time.monotonic() + 20
        while [i["in_flight"] for i in pool.worker_info()] != [1, 1]:
            if time.monotonic() >= deadline:
                pytest.fail(f"calls not spread over the workers: {pool.worker_info()}")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        victim = pool.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        first, second = await asyncio.wait_for(asyncio.gather(*live), CALL_BOUND_S)
        assert first.outcome == m_pb2.CALL_FAILED and first.detail == "media worker crashed", _explain(first)
        assert second.outcome == m_pb2.SUCCESS, _explain(second)
        deadline = time.monotonic() + 30
        while not all(i["ready"] for i in pool.worker_info()):
            assert time.monotonic() < deadline, "worker was not restarted"
            await asyncio.sleep(0.1)
        assert pool.worker_pids()[0] not in (None, victim)
        assert pool.restarts == 1
        again = await _call(pool, CallJob(call_id="after-crash", destination=r.uri, duration_ms=500))
        assert again.outcome == m_pb2.SUCCESS, _explain(again)


async def test_a_worker_holding_many_calls_crashes_and_each_of_its_calls_gets_an_outcome(start_responder) -> None:
    """Workers hold many calls each (our pjsua2 build): killing one mid-run ends every call it held
    with CALL_FAILED and a reason, and leaves the other worker's calls alone."""
    r = start_responder("--max-calls", "64", "--rtp-port-range", "200")
    per_worker = 12
    async with WorkerPool(workers=2, rtp_port_base=POOL_RTP_BASE + 800, calls_per_worker=16) as pool:
        assert pool.rtp_ports_per_worker == 64  # the range follows the calls (4 ports per call)
        live = [asyncio.create_task(pool.run_call(CallJob(call_id=f"many-{i}", destination=r.uri,
                                                          duration_ms=8000, tone_hz=440)))
                for i in range(2 * per_worker)]
        deadline = time.monotonic() + 30
        while [i["in_flight"] for i in pool.worker_info()] != [per_worker, per_worker]:
            if time.monotonic() >= deadline:
                pytest.fail(f"calls not spread over the workers: {pool.worker_info()}")
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # the calls are up and talking
        victim = pool.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        ms = await asyncio.wait_for(asyncio.gather(*live), 2 * CALL_BOUND_S)
        crashed = [m for m in ms if m.outcome != m_pb2.SUCCESS]
        ok = [m for m in ms if m.outcome == m_pb2.SUCCESS]
        assert len(crashed) == per_worker, [_explain(m) for m in crashed]
        assert all(m.outcome == m_pb2.CALL_FAILED and m.detail == "media worker crashed" for m in crashed), \
            [_explain(m) for m in crashed]
        assert len(ok) == per_worker and all(m.rx_packets > 0 for m in ok), [_explain(m) for m in ok]
        assert sorted(m.call_id for m in ms) == sorted(f"many-{i}" for i in range(2 * per_worker))


async def test_stop_reports_live_and_queued_calls(start_responder) -> None:
    r = start_responder()
    pool = WorkerPool(workers=1, rtp_port_base=POOL_RTP_BASE + 400, rtp_ports_per_worker=100, calls_per_worker=4)
    await asyncio.wait_for(pool.start(), 60)
    try:
        tasks = [asyncio.create_task(pool.run_call(CallJob(call_id=f"s-{i}", destination=r.uri,
                                                           duration_ms=30_000, tone_hz=440)))
                 for i in range(5)]
        deadline = time.monotonic() + 20
        while pool.in_flight < 4:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
    finally:
        await asyncio.wait_for(pool.stop(), 60)
    ms = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    answered = [m for m in ms if m.outcome == m_pb2.SUCCESS]
    assert len(answered) == 4, [_explain(m) for m in ms]
    assert all(m.rx_packets > 0 and "media engine stopping" in m.detail for m in answered)
    queued = [m for m in ms if m.outcome != m_pb2.SUCCESS]
    assert len(queued) == 1 and queued[0].detail == "not placed: media engine stopping"


async def test_responder_exits_zero_on_sigterm(start_responder) -> None:
    r = start_responder()
    assert stop_process(r.proc, timeout=10) == 0


async def test_a_worker_that_dies_before_it_is_ready_is_started_again(start_responder) -> None:
    """One worker of a starting pool dies before its first "ready" (here: SIGKILL while it still
    imports pjsua2): start() starts it again instead of failing the whole pool."""
    r = start_responder()
    pool = WorkerPool(workers=2, rtp_port_base=POOL_RTP_BASE + 600, rtp_ports_per_worker=100, calls_per_worker=4)
    starting = asyncio.create_task(pool.start())
    try:
        deadline = time.monotonic() + 20
        while True:  # the spawned interpreter needs far longer than this loop to import pjsua2
            pid = pool.worker_pids()[0]
            if pid:
                break
            if starting.done() or time.monotonic() >= deadline:
                pytest.fail(f"worker 0 never got a pid before the pool was ready: {pool.worker_info()}")
            await asyncio.sleep(0.005)
        assert not pool.worker_info()[0]["ready"]
        os.kill(pid, signal.SIGKILL)
        await asyncio.wait_for(starting, 90)
        assert all(i["ready"] for i in pool.worker_info())
        assert pool.worker_pids()[0] not in (None, pid)
        assert pool.restarts == 1
        m = await _call(pool, CallJob(call_id="after-early-death", destination=r.uri, duration_ms=500))
        assert m.outcome == m_pb2.SUCCESS, _explain(m)
    finally:
        await asyncio.wait_for(pool.stop(), 60)


WORKER_FROM_A_SCRIPT = """
import asyncio, os, sys
if __name__ != "__main__":  # spawn ran this program's main module again, in a worker
    open(os.environ["MAIN_RAN_IN"], "a").write(f"{os.getpid()}\\n")
from callgauge_media.adapters.pool import WorkerPool

async def main() -> None:
    pool = WorkerPool(1, int(sys.argv[1]), calls_per_worker=4)
    await asyncio.wait_for(pool.start(), 60)
    ready = [w.ready for w in pool._workers]
    await pool.stop()
    sys.exit(0 if ready == [True] else 3)

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_a_worker_does_not_run_the_embedding_programs_main_module(tmp_path) -> None:
    """spawn re-imports the parent's main module in every child: from a script, a test runner or
    the CLI that was the whole program's imports (~125 MiB more per worker, measured). The pool
    starts its workers without it; a worker needs only its own module."""
    script = tmp_path / "embedding_program.py"
    script.write_text(WORKER_FROM_A_SCRIPT)
    marker = tmp_path / "main-ran-in"
    env = {**os.environ, "MAIN_RAN_IN": str(marker), "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(script), str(POOL_RTP_BASE + 400)], env=env, timeout=120,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not marker.exists(), f"the worker ran the program's main module: {marker.read_text()}"
