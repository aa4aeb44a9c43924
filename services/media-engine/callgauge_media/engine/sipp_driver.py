"""The SIPp load driver: a load action with ``driver: sipp`` runs Debian's SIPp (``sipp``) with a
generated UAC scenario (:mod:`sipp_scenario`), at the shape's rate, and turns its statistics files
into the same RunSecondStats events and a RunSummary.

How the shape is followed: SIPp knows one constant rate (``-r``), counted from its last change;
the driver steers it over SIPp's UDP control port (``cset rate N``) through the pieces of
:meth:`LoadShape.rate_steps` (each piece places the plan's number of calls), ``-m`` caps the total
at the plan's attempts, ``-l`` is ``max_concurrency``. At the end of the window it sends ``q``
(SIPp stops starting calls and lets the running ones end), and the process is bounded by the
longest call plus a grace period, then terminated.

Per-call measurements are not available from SIPp (no RTP measured): the run gets per-second
statistics and a summary (attempts, answers, ASR, setup percentiles from ``-trace_rtt``, SIP codes
from ``-trace_error_codes``) but no CallMeasured events.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from callgauge_platform.logs import get_logger
from callgauge_platform.stack import free_port, udp_port_taken
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

from callgauge_media.engine.load_shape import MAX_DURATION_MS, LoadShape
from callgauge_media.engine.sipp_scenario import (
    SippSeconds,
    Target,
    parse_answer_counts,
    parse_destination,
    parse_error_codes,
    parse_rtt_ms,
    parse_stat_rows,
    sipp_command,
    sipp_summary,
    uac_scenario,
)

if TYPE_CHECKING:
    from callgauge_media.engine.runner import _RunState

log = get_logger("media-engine")
GRACE_S = 10.0
READY_WAIT_S = 5.0
CATCH_UP_S = 1.0
STOP_WAIT_S = 5.0


def _local_ip_for(host: str) -> str:
    """The address SIPp should bind to reach ``host`` (loopback for loopback)."""
    if host.startswith("127.") or host in ("localhost", "::1"):
        return "127.0.0.1"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((host.strip("[]"), 9))
        return s.getsockname()[0]
    except OSError:
        return "0.0.0.0"
    finally:
        s.close()


def _longest_call_s(load: spec_pb2.LoadAction) -> float:
    mean = load.duration_ms or 5000
    dist = (load.duration_distribution or "fixed").lower()
    longest = mean + load.duration_spread_ms if dist == "uniform" else (mean * 10 if dist == "exponential" else mean)
    return (min(longest, MAX_DURATION_MS) + (load.setup_timeout_ms or 32_000)) / 1000.0


def _target(state: _RunState, load: spec_pb2.LoadAction) -> Target:
    """Where SIPp sends the INVITEs: the destination URI, or with a ``target_pool`` the registrar's
    host and port (the destination is then a user or number there)."""
    if not load.target_pool:
        return parse_destination(load.dial_destination)
    sip = getattr(state, "sip", None)
    t = sip.targets.get(load.target_pool) if sip is not None else None
    if t is None:
        raise ValueError(f"target_pool {load.target_pool!r} was not resolved for this run")
    dest = load.dial_destination.strip()
    user = dest if "@" not in dest and ":" not in dest else parse_destination(dest).user
    return Target(user=user or "service", host=t.host, port=t.port or 5060)


async def run_sipp_load(state: _RunState, si: int, ai: int, load: spec_pb2.LoadAction, *,
                        pcap: bool | None = None, sipp: str = "sipp") -> None:
    if load.credential_pool:
        raise ValueError("the sipp driver does not authenticate (no credential_pool); use driver pjsua for "
                         "calls with digest auth")
    target = _target(state, load)
    if shutil.which(sipp) is None:
        raise RuntimeError("the sipp driver needs SIPp (Debian package sip-tester)")
    shape = LoadShape.from_action(load)
    planned = len(shape.attempt_times())
    state.planned += planned
    if planned == 0:
        return
    steps = shape.rate_steps()
    with_pcap = bool(load.tone_hz) if pcap is None else pcap
    workdir = Path(tempfile.mkdtemp(prefix="callgauge-sipp-"))
    try:
        (workdir / "scenario.xml").write_text(uac_scenario(load, target, with_pcap=with_pcap))
        local_ip = _local_ip_for(target.host)
        control_port = free_port(local_ip if local_ip != "0.0.0.0" else "127.0.0.1", socket.SOCK_DGRAM)
        bound = shape.window_s + CATCH_UP_S + _longest_call_s(load) + GRACE_S
        cmd = sipp_command(load, target, scenario="scenario.xml", local_ip=local_ip,
                           sip_port=free_port(local_ip, socket.SOCK_DGRAM) if local_ip != "0.0.0.0" else 0,
                           media_port=free_port(local_ip, socket.SOCK_DGRAM) if local_ip != "0.0.0.0" else 0,
                           control_port=control_port, initial_rate=steps[0][1], max_calls=planned,
                           timeout_s=int(bound) + 1)
        cmd[0] = sipp
        with open(workdir / "sipp.out", "wb") as out, open(workdir / "sipp.err", "wb") as err:
            proc = await asyncio.create_subprocess_exec(*cmd, cwd=workdir, stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=out, stderr=err)
        log.info("sipp_started", run_id=state.run_id, pid=proc.pid, planned=planned, target=target.remote)
        try:
            await _drive(state, proc, workdir, steps, shape, bound, control_port, local_ip)
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), STOP_WAIT_S)
                except asyncio.TimeoutError:
                    proc.kill()
                    await proc.wait()
        if proc.returncode not in (0, 1) and not (workdir / "stat.csv").exists():
            raise RuntimeError(f"sipp exited with {proc.returncode}: "
                               f"{(workdir / 'sipp.err').read_text(errors='replace')[-500:].strip()}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _drive(state: _RunState, proc: asyncio.subprocess.Process, workdir: Path,
                 steps: list[tuple[float, float]], shape: LoadShape, bound: float, control_port: int,
                 local_ip: str) -> None:
    loop = asyncio.get_running_loop()
    # the shape's clock starts when SIPp is up (its control port bound), not when it was spawned
    ready_by = loop.time() + READY_WAIT_S
    while proc.returncode is None and not udp_port_taken(control_port) and loop.time() < ready_by:
        try:
            await asyncio.wait_for(proc.wait(), 0.01)
        except asyncio.TimeoutError:
            pass
    t0 = loop.time()
    t0_ns = time.time_ns()
    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ctl_addr = ("127.0.0.1" if local_ip == "0.0.0.0" else local_ip, control_port)
    seconds = SippSeconds(state.run_id, state.engine_id)
    pending = list(steps[1:])
    quit_sent = False
    rows_seen = 1  # the first stat row is SIPp's start (all zero)

    def send(cmd: bytes) -> None:
        try:
            ctl.sendto(cmd, ctl_addr)
        except OSError as exc:
            log.warning("sipp_control_failed", run_id=state.run_id, error=repr(exc))

    async def emit_rows(final: bool) -> None:
        nonlocal rows_seen
        rows = parse_stat_rows(workdir / "stat.csv")
        counts = parse_answer_counts(next(iter(workdir.glob("scenario_*_counts.csv")), workdir / "none"))
        answers_total = counts[-1] if counts else None
        new = rows[rows_seen:]
        if not new:
            return
        if final and len(new) > 1:  # the last dumps of a finished SIPp: one partial second
            merged = new[-1]
            merged.outgoing_p = sum(r.outgoing_p for r in new)
            merged.successful_p = sum(r.successful_p for r in new)
            merged.failed_p = sum(r.failed_p for r in new)
            new = [merged]
        for r in new:
            await state.emit(seconds.next(r, answers_total, t0_ns + seconds.second * 1_000_000_000))
        rows_seen = len(rows)

    try:
        next_read = t0 + 1.0
        while proc.returncode is None:
            now = loop.time() - t0
            while pending and now >= pending[0][0]:
                at, rate = pending.pop(0)
                if rate > 0:
                    send(f"cset rate {rate:g}".encode())
                elif at < shape.window_s + CATCH_UP_S:
                    # SIPp loses up to one call per rate change: the window's end lets it catch up
                    # at the target rate for CATCH_UP_S (-m stops it at the planned attempts)
                    send(f"cset rate {shape.cps:g}".encode())
                    pending.insert(0, (shape.window_s + CATCH_UP_S, -1.0))
                elif not quit_sent:
                    send(b"q")  # no new calls any more, let the running ones end
                    quit_sent = True
            if now > bound:
                log.warning("sipp_over_time", run_id=state.run_id, bound_s=bound)
                break
            if loop.time() >= next_read:
                next_read += 1.0
                await emit_rows(final=False)
            waits = [next_read - loop.time()] + ([t0 + pending[0][0] - loop.time()] if pending else [])
            try:
                await asyncio.wait_for(proc.wait(), max(0.01, min(waits)))
            except asyncio.TimeoutError:
                pass
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_WAIT_S)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        await emit_rows(final=True)
    finally:
        ctl.close()
    rows = parse_stat_rows(workdir / "stat.csv")
    counts = parse_answer_counts(next(iter(workdir.glob("scenario_*_counts.csv")), workdir / "none"))
    rtt = parse_rtt_ms(next(iter(workdir.glob("scenario_*_rtt.csv")), workdir / "none"))
    codes = parse_error_codes(next(iter(workdir.glob("scenario_*_error_codes.csv")), workdir / "none"))
    summary = sipp_summary(rows, counts[-1] if counts else None, rtt, codes,
                           calls_planned=len(shape.attempt_times()), peak=seconds.peak)
    state.sipp_summaries.append(summary)
    log.info("sipp_finished", run_id=state.run_id, returncode=proc.returncode, attempted=summary.calls_attempted,
             answered=summary.calls_answered, pid=os.getpid())
