"""Concurrent full-media calls, caller and callee both on this machine: Callgauge vs SIPp.

    .venv/bin/python -m tests.bench.bench_concurrent_calls [--levels 40,80,160,240,320] [--max 320]
        [--hold-s 15] [--cps 40]

Per concurrency level (ascending, each bounded by --max):
  (a) Callgauge: a WorkerPool of ceil(level / --calls-per-worker) pjsua2 worker processes
      (default 64 calls each) carries out a ``load`` action (the engine's runner): ``level`` PCMU calls
      with a 440 Hz tone, started at --cps calls/s, each talking level/cps + --hold-s seconds (so
      all ``level`` calls are up together for --hold-s once the last one started), against
      ``sipp -sn uas -rtp_echo``.
      Every call is measured (loss, MOS). Reported: attempted/answered, mean/max loss, min/mean
      MOS, machine CPU (/proc/stat, all cores) and worker CPU while all calls are up, RSS per call
      (sum of worker VmRSS / answered calls).
  (b) SIPp alone: Debian's ``uac_pcap`` scenario (G.711 A-law pcap replayed for the same talk
      time) at the same level and start rate, against a second ``sipp -sn uas -rtp_echo``. Reported: what SIPp
      reports (calls successful/failed, the highest CurrentCall of its per-second statistics),
      machine CPU and SIPp CPU, RSS per call. SIPp does not
      measure the audio it gets back, so "clean" for SIPp = every call succeeded, all were up at
      once, and the echo far end dropped (kernel, /proc/net/udp) at most 1 % of the RTP sent to it.

Both sides report the peak number of calls up at once (Callgauge: from the measured answer and
hang-up times), so a level that was never reached shows. Stepping stops for a side once it is not clean (Callgauge: a call not answered, mean loss > 1 %
or min MOS < 4.0). Everything binds to 127.0.0.1; every wait is bounded. No assertions on time.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.adapters.pool import WorkerPool
from callgauge_media.adapters.worker import DEFAULT_CALLS_PER_WORKER
from callgauge_media.handlers.runner import execute_run

from tests.bench._support import (
    HOST, CpuSampler, quiet_children, SippStats, SippUas, free_udp_port, parse_levels, pcap_uac_scenario, proc_cpu_seconds,
    require_sipp, rss_kib, run_sipp_client, table, udp_drops, drops_between,
)

POOL_RTP_BASE = 40000  # workers' RTP ranges from here, 4 ports per call (the pool's default)
SIPP_UAC_MEDIA_PORT = 61000
MAX_LOSS_PCT = 1.0
MIN_MOS = 4.0
# both sides' far end (one `sipp -sn uas -rtp_echo`, one socket echoing every call's RTP) runs
# under SCHED_RR when the bench runs as root: otherwise, on a saturated machine, it is the echo
# whose socket overflows (see the "kernel drops" figures), and the bench measures SIPp's echo, not
# the load generator; --echo-normal turns it off
ECHO_RT = True


@dataclass
class CgLevel:
    level: int
    workers: int = 0
    attempted: int = 0
    answered: int = 0
    loss_mean: float = 0.0
    loss_max: float = 0.0
    mos_min: float = 0.0
    mos_mean: float = 0.0
    busy_pct: float | None = None
    worker_cpu_pct: float | None = None  # sum over workers, % of one core
    rss_kib: int = 0
    peak: int = 0  # most calls up at once (answer .. hang-up), from the measurements
    echo_drops: int = 0  # datagrams the kernel dropped at the SIPp echo's media socket
    rx_drops: int = 0  # datagrams the kernel dropped at the workers' RTP sockets
    start_s: float = 0.0
    failures: dict | None = None

    @property
    def clean(self) -> bool:
        return (self.answered == self.attempted > 0 and self.peak == self.level and self.loss_mean <= MAX_LOSS_PCT
                and self.mos_min >= MIN_MOS)


async def callgauge_level(level: int, hold_s: float, cps: float, workdir: Path, drain_rx: bool = True,
                          calls_per_worker: int = DEFAULT_CALLS_PER_WORKER) -> CgLevel:
    calls_per_worker = min(calls_per_worker, level)
    r = CgLevel(level=level, workers=math.ceil(level / calls_per_worker), attempted=level)
    uas = SippUas(workdir / f"cg-{level}", rtp_echo=True, realtime=ECHO_RT).start()
    pool = WorkerPool(r.workers, rtp_port_base=POOL_RTP_BASE, calls_per_worker=calls_per_worker,
                      bind_host=HOST, log_level=0, start_timeout_s=60 + 2.0 * r.workers, stop_timeout_s=20,
                      drain_rx=drain_rx)
    try:
        t = time.monotonic()
        with quiet_children():
            await pool.start()
        r.start_s = time.monotonic() - t
        pids = [p for p in pool.worker_pids() if p]
        ramp_s = level / cps

        # the engine's own load action: `level` attempts at `cps`, each talking until every call has
        # been up together for `hold_s`
        load = spec_pb2.LoadAction(dial_destination=uas.uri, cps=cps, max_total_calls=level, max_concurrency=level,
                                   duration_ms=int((ramp_s + hold_s) * 1000), tone_hz=440, codec="PCMU", setup_timeout_ms=15_000)
        req = runs_pb2.RunRequested(run_id=f"bench-{level}", spec=spec_pb2.TestSpec(
            steps=[spec_pb2.Step(actions=[spec_pb2.Action(load=load)])]))
        ms: list[m_pb2.CallMeasurement] = []

        async def emit(msg) -> None:
            if isinstance(msg, media_pb2.CallMeasured):
                ms.append(msg.call)

        d0 = udp_drops()
        calls = asyncio.ensure_future(execute_run(req, pool, emit, "bench"))
        # all calls are up between the last start (+ setup) and the first hang-up
        w0, w1 = ramp_s + 1.0, ramp_s + max(2.0, hold_s - 1.0)
        await asyncio.sleep(w0)
        machine = CpuSampler()
        machine.start()
        c0 = proc_cpu_seconds(pids)
        t0 = time.monotonic()
        await asyncio.sleep(w1 - w0)
        r.busy_pct = machine.stop()
        r.worker_cpu_pct = 100.0 * (proc_cpu_seconds(pids) - c0) / (time.monotonic() - t0)
        r.rss_kib = rss_kib(pids)
        await asyncio.wait_for(calls, 2 * ramp_s + hold_s + 60)
        d1 = udp_drops()
        r.echo_drops = drops_between(d0, d1, [uas.media_port])
        r.rx_drops = drops_between(d0, d1, range(POOL_RTP_BASE, POOL_RTP_BASE + r.workers * pool.rtp_ports_per_worker))
    finally:
        await asyncio.wait_for(pool.stop(), 120)
        uas.stop()
    ok = [m for m in ms if m.outcome == m_pb2.SUCCESS]
    r.answered = len(ok)
    fails: dict[str, int] = {}
    for m in ms:
        if m.outcome != m_pb2.SUCCESS:
            key = f"{m_pb2.CallOutcome.Name(m.outcome)} {m.sip_code} {m.detail[:40]}"
            fails[key] = fails.get(key, 0) + 1
    r.failures = fails
    r.peak = peak_concurrency(ok)
    if ok:
        r.loss_mean = statistics.fmean(m.loss_pct for m in ok)
        r.loss_max = max(m.loss_pct for m in ok)
        r.mos_min = min(m.mos for m in ok)
        r.mos_mean = statistics.fmean(m.mos for m in ok)
    return r


def sipp_clean(s: SippStats, level: int) -> bool:
    """Every call completed, all of them were up at once, and the echo far end lost at most
    MAX_LOSS_PCT of the RTP it was sent (kernel drops at its socket over the packets the calls sent:
    the only loss on SIPp's side that anyone measures)."""
    return (s.failed == 0 and s.successful == level and s.peak_current == level
            and 100.0 * s.echo_drops / max(1, s.echo_packets) <= MAX_LOSS_PCT)


def peak_concurrency(ms: list[m_pb2.CallMeasurement]) -> int:
    """Most answered calls up at the same time (answer = hang-up - duration)."""
    edges = []
    for m in ms:
        end = m.ended_at.ToMilliseconds()
        edges += [(end - int(m.duration_ms), 1), (end, -1)]
    peak = cur = 0
    for _, d in sorted(edges):
        cur += d
        peak = max(peak, cur)
    return peak


def sipp_level(level: int, hold_s: float, cps: float, workdir: Path) -> SippStats:
    d = workdir / f"sipp-{level}"
    d.mkdir(parents=True, exist_ok=True)
    scen = d / "uac_pcap_hold.xml"
    ramp_s = level / cps
    scen.write_text(pcap_uac_scenario(int((ramp_s + hold_s) * 1000)))
    uas = SippUas(d, rtp_echo=True, realtime=ECHO_RT).start()
    try:
        d0 = udp_drops()
        st = run_sipp_client(
            ["-sf", str(scen), f"{HOST}:{uas.port}", "-s", "service", "-i", HOST, "-p", str(free_udp_port()),
             "-mp", str(SIPP_UAC_MEDIA_PORT), "-r", f"{cps:g}", "-l", str(level), "-m", str(level),
             "-recv_timeout", "30000"],
            d, "uac", timeout_s=2 * ramp_s + hold_s + 60, window=(ramp_s + 1.0, ramp_s + max(2.0, hold_s - 1.0)),
            extra_pids=(uas.pid,))
        st.echo_drops = drops_between(d0, udp_drops(), [uas.media_port])
        st.echo_packets = int(st.successful * (ramp_s + hold_s) * 50)  # G.711 at 20 ms: 50 packets/s/call
        return st
    finally:
        uas.stop()


def main(argv: list[str] | None = None) -> int:
    global ECHO_RT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="40,80,160,240,320,400,500")
    ap.add_argument("--max", type=int, default=320, help="highest concurrency tried (bound)")
    ap.add_argument("--hold-s", type=float, default=15.0, help="talk time of each call")
    ap.add_argument("--cps", type=float, default=40.0, help="staggered start: calls started per second")
    ap.add_argument("--echo-normal", action="store_true",
                    help="run the SIPp echo far end at normal priority (default: SCHED_RR when root)")
    ap.add_argument("--calls-per-worker", type=int, default=DEFAULT_CALLS_PER_WORKER,
                    help="calls per pjsua2 worker process (default: the engine's)")
    ap.add_argument("--only", choices=("callgauge", "sipp"), help="run one side only")
    ap.add_argument("--no-drain", action="store_true",
                    help="also run Callgauge with received audio not connected to the null playback device")
    a = ap.parse_args(argv)
    ECHO_RT = not a.echo_normal
    require_sipp()
    levels = parse_levels(a.levels, a.max)
    if not levels:
        raise SystemExit("no level <= --max")
    print(f"# concurrent full-media calls, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"levels {levels}, hold {a.hold_s:g} s, start {a.cps:g} calls/s", flush=True)
    cg: dict[int, CgLevel] = {}
    sp: dict[int, SippStats] = {}
    cg_on, sp_on = a.only != "sipp", a.only != "callgauge"
    nd: dict[int, CgLevel] = {}
    nd_on = cg_on and a.no_drain
    with tempfile.TemporaryDirectory(prefix="callgauge-bench-") as tmp:
        work = Path(tmp)
        for level in levels:
            if not (cg_on or sp_on or nd_on):
                break
            if cg_on:
                r = asyncio.run(callgauge_level(level, a.hold_s, a.cps, work, calls_per_worker=a.calls_per_worker))
                cg[level] = r
                print(f"callgauge {level:4d}: answered {r.answered}/{r.attempted} peak up {r.peak} loss mean {r.loss_mean:.2f} % "
                      f"max {r.loss_max:.2f} % MOS min {r.mos_min:.2f} mean {r.mos_mean:.2f} "
                      f"machine CPU {r.busy_pct or 0:.0f} % workers {r.worker_cpu_pct or 0:.0f} % of a core "
                      f"kernel drops: SIPp echo {r.echo_drops} workers {r.rx_drops} "
                      f"RSS {r.rss_kib / max(1, r.answered) / 1024:.1f} MiB/call (pool start {r.start_s:.1f} s)"
                      + (f" failures {r.failures}" if r.failures else ""), flush=True)
                cg_on = r.clean
            if nd_on:
                r = asyncio.run(callgauge_level(level, a.hold_s, a.cps, work, drain_rx=False,
                                                calls_per_worker=a.calls_per_worker))
                nd[level] = r
                print(f"cg-nodrain {level:3d}: answered {r.answered}/{r.attempted} peak up {r.peak} loss mean {r.loss_mean:.2f} % "
                      f"max {r.loss_max:.2f} % MOS min {r.mos_min:.2f} mean {r.mos_mean:.2f} "
                      f"machine CPU {r.busy_pct or 0:.0f} % workers {r.worker_cpu_pct or 0:.0f} % of a core "
                      f"kernel drops: SIPp echo {r.echo_drops} workers {r.rx_drops}"
                      + (f" failures {r.failures}" if r.failures else ""), flush=True)
                nd_on = r.clean
            if sp_on:
                s = sipp_level(level, a.hold_s, a.cps, work)
                sp[level] = s
                print(f"sipp      {level:4d}: successful {s.successful} failed {s.failed} of {s.outgoing} peak up {s.peak_current} "
                      f"echo dropped {s.echo_drops} of ~{s.echo_packets} ({100 * s.echo_drops / max(1, s.echo_packets):.2f} %) "
                      f"machine CPU {s.window_busy_pct or 0:.0f} % sipp {s.window_proc_cpu_pct or 0:.0f} % of a core "
                      f"RSS {s.window_rss_kib / max(1, level) / 1024:.2f} MiB/call (rc {s.returncode})", flush=True)
                sp_on = sipp_clean(s, level)
    rows = []
    for level in levels:
        if level not in cg and level not in sp:
            continue
        c, s = cg.get(level), sp.get(level)
        rows.append([
            level,
            f"{c.answered}/{c.attempted}" if c else "-",
            c.peak if c else "-",
            f"{c.loss_mean:.2f}/{c.loss_max:.2f}" if c else "-",
            f"{c.mos_min:.2f}/{c.mos_mean:.2f}" if c else "-",
            f"{c.busy_pct:.0f}" if c and c.busy_pct is not None else "-",
            f"{c.worker_cpu_pct / level:.2f}" if c and c.worker_cpu_pct is not None else "-",
            f"{c.rss_kib / max(1, c.answered) / 1024:.1f}" if c else "-",
            ("yes" if c.clean else "NO") if c else "-",
            f"{s.successful}/{s.failed}" if s else "-",
            s.peak_current if s else "-",
            f"{s.window_busy_pct:.0f}" if s and s.window_busy_pct is not None else "-",
            f"{s.window_proc_cpu_pct / level:.2f}" if s and s.window_proc_cpu_pct is not None else "-",
            f"{s.window_rss_kib / level / 1024:.2f}" if s else "-",
            ("yes" if sipp_clean(s, level) else "NO") if s else "-",
        ])
    print()
    print(table(rows, ["calls", "CG ans/att", "CG peak up", "CG loss% mean/max", "CG MOS min/mean", "CG machCPU%",
                       "CG %core/call", "CG MiB/call", "CG clean", "SIPp ok/fail", "SIPp peak up", "SIPp machCPU%",
                       "SIPp %core/call", "SIPp MiB/call", "SIPp clean"]))
    cg_clean = max((lv for lv, c in cg.items() if c.clean), default=0)
    sp_clean = max((lv for lv, s in sp.items() if sipp_clean(s, lv)), default=0)
    cg_more = cg_clean == max(cg, default=0) and cg_clean > 0
    sp_more = sp_clean == max(sp, default=0) and sp_clean > 0
    print()
    print(f"max clean concurrency: Callgauge {cg_clean}{'+' if cg_more else ''} (every call measured), "
          f"SIPp {sp_clean}{'+' if sp_more else ''} (calls completed, echo loss <= {MAX_LOSS_PCT:g} %, "
          f"SIPp's own audio not measured)")
    if nd:
        nd_clean = max((lv for lv, c in nd.items() if c.clean), default=0)
        print(f"max clean concurrency, Callgauge without draining the received audio: {nd_clean}"
              f"{'+' if nd_clean == max(nd) and nd_clean else ''}")
    if cg_clean and sp_clean:
        print(f"ratio Callgauge / SIPp = {cg_clean / sp_clean:.2f}"
              + (" (a '+' side was never pushed past clean: the ratio is bounded by --max)" if cg_more or sp_more else ""))
    print("CG %core/call: worker processes' CPU while all calls are up; SIPp %core/call: uac + uas "
          "processes; MiB/call: worker RSS / answered calls, SIPp uac RSS / calls. machCPU%: whole machine (all cores, other load included), /proc/stat.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
