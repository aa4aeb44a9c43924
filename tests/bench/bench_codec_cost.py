"""CPU cost per full-media call of each codec (Opus beside PCMU), caller and callee side.

    .venv/bin/python -m tests.bench.bench_codec_cost [--codecs PCMU,opus,opus:wideband] [--calls 32] [--talk-s 14] [--rounds 2]

One pjsua2 worker process (the engine's WorkerPool) places ``--calls`` calls with a 440 Hz tone at
once to the built-in responder (``python -m callgauge_media.responder``, echoing the audio back, so it
encodes and decodes the same codec), all held ``--talk-s`` seconds; the codecs take turns, their order
rotating each round, so that drift on this shared machine hits each. CPU of the caller's worker and of
the responder process is taken from /proc over the window where every call is up, and reported as
% of one core per call (median of the rounds), with the load average. Every call is measured
(outcome, negotiated codec, loss, MOS). Loopback only; every wait is bounded; no assertions on time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.jobs import CallJob
from callgauge_media.adapters.pool import WorkerPool

from tests.bench._support import HOST, proc_cpu_seconds, quiet_children, table

RTP_BASE = 52_000
RESPONDER_RTP = 56_000


def start_responder(calls: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "callgauge_media.responder", "--host", HOST, "--port", "0", "--rtp-port",
         str(RESPONDER_RTP), "--rtp-port-range", str(4 * calls + 20), "--max-calls", str(calls), "--log-level", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 30.0)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.startswith("responder ready sip:"):
        proc.kill()
        raise SystemExit(f"responder not ready: {line!r}")
    return proc, line.split()[-1]


async def one_round(pool: WorkerPool, worker_pid: int, responder_pid: int, uri: str, calls: int, talk_s: float,
                    codec: str, tag: str) -> dict:
    variant, srtp, keying = codec, "off", "sdes"
    for suffix, k in (("+srtp", "sdes"), ("+dtls", "dtls")):  # "PCMU+srtp": SDES SRTP; "PCMU+dtls": DTLS-SRTP
        if codec.endswith(suffix):
            variant, srtp, keying = codec.removesuffix(suffix), "mandatory", k
    name, _, bandwidth = variant.partition(":")  # "opus:wideband": opus opened at 16 kHz
    jobs = [CallJob(call_id=f"{tag}-{i}", destination=uri, duration_ms=int(talk_s * 1000), tone_hz=440,
                    codec=name, audio_bandwidth=bandwidth, srtp=srtp, srtp_keying=keying,
                    setup_timeout_ms=15_000)
            for i in range(calls)]
    running = asyncio.ensure_future(asyncio.gather(*(pool.run_call(j) for j in jobs)))
    place_s = calls * 0.03 + 1.5  # the worker paces new calls (25 ms each), then setup
    await asyncio.sleep(place_s)
    c_w, c_r, t0 = proc_cpu_seconds([worker_pid]), proc_cpu_seconds([responder_pid]), time.monotonic()
    await asyncio.sleep(max(2.0, talk_s - place_s - 1.5))
    dt = time.monotonic() - t0
    w_pct = 100.0 * (proc_cpu_seconds([worker_pid]) - c_w) / dt
    r_pct = 100.0 * (proc_cpu_seconds([responder_pid]) - c_r) / dt
    ms: list[m_pb2.CallMeasurement] = await asyncio.wait_for(running, talk_s + 60)
    ok = [m for m in ms if m.outcome == m_pb2.SUCCESS]
    return {
        "codec": codec, "answered": len(ok), "got": sorted({f"{m.codec}@{m.codec_clock_hz}" for m in ok}),
        "srtp_calls": sum(1 for m in ok if m.srtp),
        "suites": sorted({f"{m.srtp_suite}/{m.srtp_keying}" for m in ok if m.srtp}),
        "loss_max": max((m.loss_pct for m in ok), default=float("nan")),
        "mos_min": min((m.mos for m in ok if m.HasField("mos")), default=float("nan")),
        "unscored": sum(1 for m in ok if not m.HasField("mos")),  # no MOS measured (absent, not 0)
        "caller_pct_per_call": w_pct / calls, "callee_pct_per_call": r_pct / calls,
    }


async def main_async(args: argparse.Namespace) -> int:
    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    proc, uri = start_responder(args.calls)
    pool = WorkerPool(1, rtp_port_base=RTP_BASE, calls_per_worker=args.calls, bind_host=HOST, log_level=0)
    rows: list[dict] = []
    try:
        with quiet_children():
            await asyncio.wait_for(pool.start(), 60)
        [pid] = [p for p in pool.worker_pids() if p]
        for r in range(args.rounds):
            k = r % len(codecs)
            for codec in codecs[k:] + codecs[:k]:
                rows.append(await one_round(pool, pid, proc.pid, uri, args.calls, args.talk_s, codec, f"r{r}-{codec}"))
                await asyncio.sleep(2.0)  # let the slots go
    finally:
        await asyncio.wait_for(pool.stop(), 60)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"# {args.title} per call — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {args.calls} calls held "
          f"{args.talk_s:g} s, {args.rounds} rounds, load average {os.getloadavg()}")
    print(table([[x["codec"], f"{x['answered']}/{args.calls}", ",".join(x["got"]) or "-", x["srtp_calls"],
                  ",".join(x["suites"]) or "-", f"{x['loss_max']:.2f}", f"{x['mos_min']:.2f}", x["unscored"],
                  f"{x['caller_pct_per_call']:.3f}", f"{x['callee_pct_per_call']:.3f}"] for x in rows],
                ["variant", "answered", "negotiated", "SRTP calls", "suite", "max loss %", "min MOS", "no MOS",
                 "caller %core/call", "callee %core/call"]))
    base = codecs[0]
    for side in ("caller", "callee"):
        med = {c: statistics.median(x[f"{side}_pct_per_call"] for x in rows if x["codec"] == c) for c in codecs}
        parts = [f"{c} {med[c]:.3f}" + (f" ({med[c] / med[base]:.1f}x {base})" if c != base and med[base] else "")
                 for c in codecs]
        print(f"{side}: % of a core per call: " + ", ".join(parts))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--codecs", default="PCMU,opus", help="comma-separated, the first is the baseline; opus may "
                   "name its audio bandwidth: opus:narrowband, opus:wideband, ...; a +srtp suffix makes the "
                   "calls SRTP (SDES, mandatory): PCMU+srtp; +dtls the same with DTLS-SRTP keys: PCMU+dtls")
    p.add_argument("--calls", type=int, default=32)
    p.add_argument("--title", default="Codec cost", help=argparse.SUPPRESS)
    p.add_argument("--talk-s", type=float, default=14.0)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    if not 1 <= args.calls <= 128 or not 5 <= args.talk_s <= 120 or not 1 <= args.rounds <= 10:
        p.error("--calls 1..128, --talk-s 5..120, --rounds 1..10")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
