"""Call attempts per second, signalling only: the pjsua2 engine, the SIPp driver and raw SIPp,
against the same SIPp uas.

    .venv/bin/python -m tests.bench.bench_call_rate [--calls 2000] [--workers 32] [--cps 600]
        [--sipp-rate 3000] [--only sipp] [--no-sip-log]

(a) Callgauge pjsua2: a ``load`` action (the engine's runner, ``execute_run``) of --calls attempts
    offered at --cps, ``max_concurrency`` = workers * 4, talk time 1 ms (hang-up at the answer; SDP
    and RTP sockets are still set up), on a WorkerPool of --workers pjsua2 processes (--no-sip-log:
    the workers' SIP message log off, to see what complete SIP ladders cost; the workers' CPU per call
    is printed).
(b) Callgauge SIPp driver: a ``load`` action with ``driver: sipp`` (generated scenario, rate
    steered over SIPp's control port, statistics files parsed into events, SIPp's per-message log
    followed into one CallMeasured per call) of --calls attempts at --sipp-rate, talk time 1 ms,
    ``max_concurrency`` = workers * 4.
(c) raw SIPp: ``sipp -sn uac -d 0 -r RATE -rp 1000 -l LIMIT -m CALLS`` (LIMIT = workers * 4).
All against one ``sipp -sn uas`` on 127.0.0.1. Printed: attempts, successes, failures, elapsed
(each side's whole run, process start included), attempts/s. Bounded by --calls and by a timeout;
no assertions on time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.adapters.pool import WorkerPool
from callgauge_media.bootstrap import load_drivers
from callgauge_media.handlers.runner import execute_run

from tests.bench._support import (
    HOST, CpuSampler, SippUas, free_udp_port, proc_cpu_seconds, quiet_children, require_sipp, run_sipp_client,
    table,
)

POOL_RTP_BASE = 40000
RTP_PORTS_PER_WORKER = 40


def _load_run(run_id: str, load: spec_pb2.LoadAction) -> runs_pb2.RunRequested:
    return runs_pb2.RunRequested(run_id=run_id, spec=spec_pb2.TestSpec(
        steps=[spec_pb2.Step(actions=[spec_pb2.Action(load=load)])]))


async def _execute(req: runs_pb2.RunRequested, placer, timeout_s: float) -> tuple[list, m_pb2.RunSummary, float, float]:
    calls: list = []

    async def emit(msg) -> None:
        if isinstance(msg, media_pb2.CallMeasured):
            calls.append(msg.call)

    machine = CpuSampler()
    machine.start()
    t0 = time.monotonic()
    summary = await asyncio.wait_for(execute_run(req, placer, emit, "bench", drivers=load_drivers()), timeout_s)
    return calls, summary, time.monotonic() - t0, machine.stop()


async def callgauge_rate(uas: SippUas, calls: int, workers: int, cps: float, timeout_s: float,
                         sip_message_log: bool = True) -> dict:
    pool = WorkerPool(workers, rtp_port_base=POOL_RTP_BASE, rtp_ports_per_worker=RTP_PORTS_PER_WORKER,
                      calls_per_worker=4,
                      bind_host=HOST, log_level=0, start_timeout_s=60 + 2.0 * workers, stop_timeout_s=20,
                      sip_message_log=sip_message_log)
    with quiet_children():
        await pool.start()
    try:
        load = spec_pb2.LoadAction(dial_destination=uas.uri, cps=cps, max_total_calls=calls,
                                   max_concurrency=workers * 4, duration_ms=1, codec="PCMU", setup_timeout_ms=10_000)
        cpu0 = proc_cpu_seconds(pool.worker_pids())
        ms, summary, elapsed, busy = await _execute(_load_run("bench-rate", load), pool, timeout_s)
        worker_cpu_s = proc_cpu_seconds(pool.worker_pids()) - cpu0
    finally:
        await asyncio.wait_for(pool.stop(), 120)
    ok = sum(1 for m in ms if m.outcome == m_pb2.SUCCESS)
    fails: dict[str, int] = {}
    for m in ms:
        if m.outcome != m_pb2.SUCCESS:
            key = f"{m_pb2.CallOutcome.Name(m.outcome)} {m.sip_code}"
            fails[key] = fails.get(key, 0) + 1
    return {"attempts": len(ms), "ok": ok, "failed": len(ms) - ok, "elapsed": elapsed, "busy": busy,
            "fails": fails, "setup_p50": summary.setup_p50_ms, "planned": summary.calls_planned,
            "worker_cpu_ms": 1000.0 * worker_cpu_s / max(1, len(ms))}


async def sipp_driver_rate(uas: SippUas, calls: int, rate: float, limit: int, timeout_s: float) -> dict:
    load = spec_pb2.LoadAction(dial_destination=uas.uri, cps=rate, max_total_calls=calls, max_concurrency=limit,
                               duration_ms=1, setup_timeout_ms=10_000, driver="sipp")
    ms, s, elapsed, busy = await _execute(_load_run("bench-sipp-driver", load), None, timeout_s)
    return {"attempts": s.calls_attempted, "ok": s.calls_answered, "failed": s.calls_failed, "elapsed": elapsed,
            "busy": busy, "setup_p50": s.setup_p50_ms, "measured": len(ms),
            "measured_ok": sum(1 for m in ms if m.outcome == m_pb2.SUCCESS)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000, help="calls per side (bound)")
    ap.add_argument("--workers", type=int, default=32, help="pjsua2 worker processes (4 calls each)")
    ap.add_argument("--cps", type=float, default=600.0, help="rate offered to the pjsua2 engine's load action")
    ap.add_argument("--sipp-rate", type=float, default=3000.0, help="SIPp target calls/s (-r), driver and raw")
    ap.add_argument("--timeout-s", type=float, default=300.0, help="bound on each side's run")
    ap.add_argument("--only", choices=("sipp",), help="sipp: the SIPp driver and raw SIPp only (no pjsua2 pool)")
    ap.add_argument("--no-sip-log", action="store_true",
                    help="pjsua2 workers without the SIP message log (ladders from pjsua2 callbacks only)")
    a = ap.parse_args(argv)
    require_sipp()
    limit = a.workers * 4
    print(f"# call attempts per second, signalling only, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{a.calls} calls per side, concurrency {limit}", flush=True)
    with tempfile.TemporaryDirectory(prefix="callgauge-bench-") as tmp:
        work = Path(tmp)
        uas = SippUas(work, rtp_echo=False).start()
        try:
            cg = None
            if a.only != "sipp":
                cg = asyncio.run(callgauge_rate(uas, a.calls, a.workers, a.cps, a.timeout_s,
                                                sip_message_log=not a.no_sip_log))
                print(f"callgauge pjsua2: {cg['ok']}/{cg['attempts']} ok (planned {cg['planned']}) in "
                      f"{cg['elapsed']:.1f} s = {cg['attempts'] / cg['elapsed']:.0f} attempts/s, machine CPU "
                      f"{cg['busy']:.0f} %, worker CPU {cg['worker_cpu_ms']:.2f} ms per call"
                      + (f", failures {cg['fails']}" if cg["fails"] else ""), flush=True)
            drv = asyncio.run(sipp_driver_rate(uas, a.calls, a.sipp_rate, limit, a.timeout_s))
            print(f"callgauge sipp driver: {drv['ok']}/{drv['attempts']} ok in {drv['elapsed']:.1f} s = "
                  f"{drv['attempts'] / drv['elapsed']:.0f} attempts/s, machine CPU {drv['busy']:.0f} %, "
                  f"{drv['measured']} CallMeasured ({drv['measured_ok']} SUCCESS)", flush=True)
            machine = CpuSampler()
            machine.start()
            sp = run_sipp_client(["-sn", "uac", f"{HOST}:{uas.port}", "-s", "service", "-i", HOST,
                                  "-p", str(free_udp_port()), "-d", "0", "-r", f"{a.sipp_rate:g}", "-rp", "1000",
                                  "-l", str(limit), "-m", str(a.calls), "-recv_timeout", "10000"],
                                 work, "uac-rate", timeout_s=a.timeout_s, sample_every_s=0.1)
            sp_busy = machine.stop()
            print(f"raw sipp: {sp.successful}/{sp.outgoing} ok, {sp.failed} failed in {sp.elapsed_s:.1f} s = "
                  f"{a.calls / sp.elapsed_s:.0f} attempts/s, machine CPU {sp_busy:.0f} % (rc {sp.returncode})",
                  flush=True)
        finally:
            uas.stop()
    drv_rate = drv["attempts"] / drv["elapsed"]
    sp_rate = sp.outgoing / sp.elapsed_s
    rows = []
    if cg is not None:
        cg_rate = cg["attempts"] / cg["elapsed"]
        rows.append([f"Callgauge pjsua2 load (offered {a.cps:g}/s{', no SIP log' if a.no_sip_log else ''})",
                     cg["attempts"], cg["ok"], cg["failed"],
                     f"{cg['elapsed']:.1f}", f"{cg_rate:.0f}", f"{cg['busy']:.0f}"])
    print()
    print(table([
        *rows,
        [f"Callgauge SIPp driver (-r {a.sipp_rate:g})", drv["attempts"], drv["ok"], drv["failed"],
         f"{drv['elapsed']:.1f}", f"{drv_rate:.0f}", f"{drv['busy']:.0f}"],
        [f"raw SIPp uac (-r {a.sipp_rate:g})", sp.outgoing, sp.successful, sp.failed, f"{sp.elapsed_s:.1f}",
         f"{sp_rate:.0f}", f"{sp_busy:.0f}"],
    ], ["engine", "attempts", "ok", "failed", "elapsed s", "attempts/s", "machine CPU %"]))
    pj = f"pjsua2 / raw SIPp = {cg_rate / sp_rate:.2f}; setup p50 pjsua2 {cg['setup_p50']:.1f} ms, " if cg else ""
    print(f"\nSIPp driver / raw SIPp = {drv_rate / sp_rate:.2f}; {pj}setup p50 SIPp driver {drv['setup_p50']:.2f} ms. "
          "Elapsed includes each side's start (pool already up for pjsua2; SIPp process start for both SIPp rows) "
          "and its last call's end.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
