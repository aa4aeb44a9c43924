"""Call attempts per second, signalling only: the pjsua2 engine vs raw SIPp, same SIPp uas.

    .venv/bin/python -m tests.bench.bench_call_rate [--calls 2000] [--workers 32] [--sipp-rate 3000]

(a) Callgauge: a WorkerPool of --workers pjsua2 processes (4 calls each) is given --calls jobs at
    once (the pool queues them FIFO and keeps every slot busy); each call hangs up as soon as it is
    answered (duration 0; SDP and RTP sockets are still set up, no talk time).
(b) raw SIPp: ``sipp -sn uac -d 0 -r RATE -rp 1000 -l LIMIT -m CALLS`` (LIMIT = the pool's
    concurrency, workers * 4).
Both against one ``sipp -sn uas`` on 127.0.0.1. Printed: attempts, successes, failures, elapsed,
attempts/s. Bounded by --calls and by a timeout; no assertions on time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.engine.jobs import CallJob
from callgauge_media.engine.pool import WorkerPool

from tests.bench._support import (
    HOST, CpuSampler, SippUas, free_udp_port, quiet_children, require_sipp, run_sipp_client, table,
)

POOL_RTP_BASE = 40000
RTP_PORTS_PER_WORKER = 40


async def callgauge_rate(uas: SippUas, calls: int, workers: int, timeout_s: float) -> dict:
    pool = WorkerPool(workers, rtp_port_base=POOL_RTP_BASE, rtp_ports_per_worker=RTP_PORTS_PER_WORKER,
                      bind_host=HOST, log_level=0, start_timeout_s=60 + 2.0 * workers, stop_timeout_s=20)
    with quiet_children():
        await pool.start()
    try:
        machine = CpuSampler()
        machine.start()
        t0 = time.monotonic()
        jobs = [pool.run_call(CallJob(call_id=f"rate-{i}", destination=uas.uri, duration_ms=0, codec="PCMU",
                                      setup_timeout_ms=10_000)) for i in range(calls)]
        ms = await asyncio.wait_for(asyncio.gather(*jobs), timeout_s)
        elapsed = time.monotonic() - t0
        busy = machine.stop()
    finally:
        await asyncio.wait_for(pool.stop(), 120)
    ok = sum(1 for m in ms if m.outcome == m_pb2.SUCCESS)
    fails: dict[str, int] = {}
    for m in ms:
        if m.outcome != m_pb2.SUCCESS:
            key = f"{m_pb2.CallOutcome.Name(m.outcome)} {m.sip_code}"
            fails[key] = fails.get(key, 0) + 1
    setup = sorted(m.setup_time_ms for m in ms if m.outcome == m_pb2.SUCCESS)
    return {"attempts": calls, "ok": ok, "failed": calls - ok, "elapsed": elapsed, "busy": busy, "fails": fails,
            "setup_p50": setup[len(setup) // 2] if setup else 0.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000, help="calls per side (bound)")
    ap.add_argument("--workers", type=int, default=32, help="pjsua2 worker processes (4 calls each)")
    ap.add_argument("--sipp-rate", type=float, default=3000.0, help="raw SIPp target calls/s (-r)")
    ap.add_argument("--timeout-s", type=float, default=300.0, help="bound on each side's run")
    a = ap.parse_args(argv)
    require_sipp()
    limit = a.workers * 4
    print(f"# call attempts per second, signalling only, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{a.calls} calls per side, concurrency {limit}", flush=True)
    with tempfile.TemporaryDirectory(prefix="callgauge-bench-") as tmp:
        work = Path(tmp)
        uas = SippUas(work, rtp_echo=False).start()
        try:
            cg = asyncio.run(callgauge_rate(uas, a.calls, a.workers, a.timeout_s))
            print(f"callgauge: {cg['ok']}/{cg['attempts']} ok in {cg['elapsed']:.1f} s = "
                  f"{cg['attempts'] / cg['elapsed']:.0f} attempts/s, machine CPU {cg['busy']:.0f} %"
                  + (f", failures {cg['fails']}" if cg["fails"] else ""), flush=True)
            machine = CpuSampler()
            machine.start()
            sp = run_sipp_client(["-sn", "uac", f"{HOST}:{uas.port}", "-s", "service", "-i", HOST,
                                  "-p", str(free_udp_port()), "-d", "0", "-r", f"{a.sipp_rate:g}", "-rp", "1000",
                                  "-l", str(limit), "-m", str(a.calls), "-recv_timeout", "10000"],
                                 work, "uac-rate", timeout_s=a.timeout_s, sample_every_s=0.1)
            sp_busy = machine.stop()
            print(f"sipp:      {sp.successful}/{sp.outgoing} ok, {sp.failed} failed in {sp.elapsed_s:.1f} s = "
                  f"{a.calls / sp.elapsed_s:.0f} attempts/s, machine CPU {sp_busy:.0f} % (rc {sp.returncode})",
                  flush=True)
        finally:
            uas.stop()
    cg_rate = cg["attempts"] / cg["elapsed"]
    sp_rate = a.calls / sp.elapsed_s
    print()
    print(table([
        ["Callgauge pjsua2 pool", cg["attempts"], cg["ok"], cg["failed"], f"{cg['elapsed']:.1f}", f"{cg_rate:.0f}",
         f"{cg['busy']:.0f}"],
        [f"raw SIPp uac (-r {a.sipp_rate:g})", sp.outgoing, sp.successful, sp.failed, f"{sp.elapsed_s:.1f}",
         f"{sp_rate:.0f}", f"{sp_busy:.0f}"],
    ], ["engine", "attempts", "ok", "failed", "elapsed s", "attempts/s", "machine CPU %"]))
    print(f"\nratio Callgauge / SIPp = {cg_rate / sp_rate:.2f}; Callgauge setup p50 {cg['setup_p50']:.1f} ms. "
          "SIPp elapsed includes its process start and its last call's end (it exits after -m calls).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
