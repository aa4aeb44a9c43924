"""What a clean call's recording holds, and why (#17, docs/quality.md "The measurement path's own
noise"): clean (0 % loss) recorded calls through the caller's own path — a CallerAgent with a media
worker's options, the impairment relay (seed i, no loss), the reference prompt, the recorder — to the
built-in responder (which echoes), with per call:

- both jitter buffers' statistics (pjsua2 StreamStat ``jbuf``: prefetch, empty, lost, discard, delay;
  the responder's read just before its stream goes, by a child that patches the responder) and the
  caller's RTCP receive counts (loss, reorder, duplicates);
- the recording: its length, the reference's offset in it (``audioDelayMs``), and a frame map: for
  each voiced 20 ms frame of the reference, the lag (a multiple of 10 ms, pjmedia's G.711 frame) at
  which the recording holds it (normalised error < 5 %), so that every 10 ms the audio shifted by (a
  frame concealed when a buffer ran empty, a frame dropped by pjmedia's progressive discard, which
  ``jbuf.discard`` does not count) shows as a lag change, and every voiced frame altered as "bad";
- MOS-LQO, by the product's scorer (``analysis.score``, ViSQOL speech mode).

    # both buffers adaptive (as before), then the defaults, then the defaults with 2 CPU burners
    .venv/bin/python -m tests.bench.bench_clean_echo --calls 8 --load-scoring --responder-jb 0 --recorded-jb 0
    .venv/bin/python -m tests.bench.bench_clean_echo --calls 8 --load-scoring
    .venv/bin/python -m tests.bench.bench_clean_echo --calls 8 --load-scoring --busy 2

``--load-scoring`` scores each batch of calls in a one-process pool while the next batch runs, as
the media engine's scoring pool does during the quality bench. Bounded: at most 16 calls, 4 at a
time, every wait has a timeout; everything binds to 127.0.0.1; the responder and burners it starts
are stopped by pid.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from callgauge_media.adapters.audio import analysis, prompts
from callgauge_media.domain.impairment import MediaImpairment
from callgauge_media.domain.jobs import CallJob

JB_KEYS = ("prefetch", "minPrefetch", "maxPrefetch", "burst", "size", "avgDelayMsec", "maxDelayMsec",
           "lost", "discard", "empty")
MAX_CALLS = 16
TALK_MS = 13_000


def _stats(call, idx: int) -> dict:
    ss = call.getStreamStat(idx)
    rx = ss.rtcp.rxStat
    return {"jb": {k: int(getattr(ss.jbuf, k)) for k in JB_KEYS},
            "rx": {"pkt": int(rx.pkt), "loss": int(rx.loss), "reorder": int(rx.reorder), "dup": int(rx.dup),
                   "jitter_max_ms": rx.jitterUsec.max / 1000}}


def _responder_child(stats_file: str, argv: list[str]) -> int:
    """The built-in responder, each call's statistics appended to ``stats_file`` as it ends."""
    from callgauge_media.adapters.pjsua import responder as r
    from callgauge_media.entrypoints import responder as entry

    def on_stream_destroyed(self, prm) -> None:  # noqa: ANN001
        try:
            d = _stats(self, prm.streamIdx)
            d["call_id"] = self.getInfo().callIdString
            with open(stats_file, "a") as f:
                f.write(json.dumps(d) + "\n")
        except BaseException as exc:  # noqa: BLE001 - never out of a SWIG director
            sys.stderr.write(f"stats: {exc}\n")

    r._ResponderCall.onStreamDestroyed = on_stream_destroyed
    return entry.main(argv)


def frame_map(ref: np.ndarray, rec: np.ndarray, base: int, n: int = 160, step: int = 80,
              search: int = 50) -> list[tuple[str, float | int | None]]:
    """Per 20 ms frame of the reference (8 kHz): ("quiet", None), ("ok", lag in 10 ms steps from
    ``base``) or ("bad", the smallest normalised error found)."""
    floor = 0.05 * float(np.sqrt(np.mean(ref * ref)))
    out: list[tuple[str, float | int | None]] = []
    for j in range(0, ref.size - n + 1, n):
        seg = ref[j:j + n]
        level = float(np.sqrt(np.mean(seg * seg)))
        if level < floor:
            out.append(("quiet", None))
            continue
        best = None
        for d in range(-search, search + 1):
            s = base + j + d * step
            if 0 <= s and s + n <= rec.size:
                err = float(np.sqrt(np.mean((rec[s:s + n] - seg) ** 2))) / level
                if best is None or err < best[0]:
                    best = (err, d)
        out.append(("ok", best[1]) if best is not None and best[0] < 0.05
                   else ("bad", None if best is None else round(best[0], 3)))
    return out


def recording(ref_path: str, rec_path: str) -> dict:
    s = analysis.score(rec_path, ref_path)
    ref, r1 = sf.read(ref_path, dtype="float64")
    rec, r2 = sf.read(rec_path, dtype="float64")
    base = int(round(analysis.align(ref, rec, r1, max_lag_s=5.0).offset_s * r1))
    fm = frame_map(ref, rec, base)
    changes, prev = [], None
    for i, (kind, lag) in enumerate(fm):
        if kind == "ok":
            if prev is not None and lag != prev:
                changes.append((i, prev, lag))
            prev = lag
    return {"mos_lqo": s.mos_lqo, "delay_ms": s.delay_ms, "rec_s": round(rec.size / r2, 3),
            "ref_s": round(ref.size / r1, 3),
            "voiced": sum(k != "quiet" for k, _ in fm), "intact": sum(k == "ok" for k, _ in fm),
            "bad": [i for i, (k, _) in enumerate(fm) if k == "bad"], "shifts": changes}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--responder-child":
        sys.exit(_responder_child(sys.argv[2], sys.argv[3:]))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=8,
                   help=f"clean calls (1..{MAX_CALLS}), 4 at a time; call i has seed i")
    p.add_argument("--codec", default="PCMU")
    p.add_argument("--responder-jb", type=int, default=None,
                   help="the responder's --jitter-buffer-ms (default: its own)")
    p.add_argument("--recorded-jb", type=int, default=None,
                   help="recorded calls' jitter buffer, ms (EndpointOptions.recorded_jitter_buffer_ms; "
                        "default: its own)")
    p.add_argument("--load-scoring", action="store_true", help="score each batch while the next one runs")
    p.add_argument("--busy", type=int, default=0, help="CPU burner processes during the calls (0..4)")
    p.add_argument("--out", type=Path, help="keep the recordings and rows.json here (default: a temp dir)")
    args = p.parse_args()
    if not 1 <= args.calls <= MAX_CALLS or not 0 <= args.busy <= 4:
        raise SystemExit(f"--calls 1..{MAX_CALLS}, --busy 0..4")
    out = args.out or Path(tempfile.mkdtemp(prefix="cg-echo-"))
    out.mkdir(parents=True, exist_ok=True)
    ref = str(prompts.resolve("prompt:reference", out / "media", 8000))  # the workers' bridge rate
    stats_file = out / "responder.jsonl"
    stats_file.unlink(missing_ok=True)

    from callgauge_media.adapters.pjsua.caller import CallerAgent
    from callgauge_media.adapters.pjsua.endpoint import EndpointOptions

    caller_stats: dict[int, dict] = {}
    results: dict[int, object] = {}

    class Agent(CallerAgent):
        def _snapshot(self, run) -> None:  # noqa: ANN001 - the statistics the measurement is made from, kept
            super()._snapshot(run)
            try:
                caller_stats[run.token] = {**_stats(run.call, run.media_idx), "call_id": run.raw.sip_call_id}
            except Exception as exc:  # noqa: BLE001
                print(f"statistics of call {run.token}: {exc}", file=sys.stderr)

    resp_cmd = [sys.executable, "-m", "tests.bench.bench_clean_echo", "--responder-child", str(stats_file),
                "--host", "127.0.0.1", "--port", "0", "--rtp-port", "36000", "--rtp-port-range", "40"]
    if args.responder_jb is not None:
        resp_cmd += ["--jitter-buffer-ms", str(args.responder_jb)]
    with open(out / "responder.log", "w") as err:
        resp = subprocess.Popen(resp_cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    burners: list[subprocess.Popen] = []
    pool = ProcessPoolExecutor(max_workers=1) if args.load_scoring else None
    opts = {} if args.recorded_jb is None else {"recorded_jitter_buffer_ms": args.recorded_jb}
    agent = Agent(EndpointOptions(bind_host="127.0.0.1", rtp_port=36100, rtp_port_range=40, max_calls=4,
                                  tcp=False, **opts),
                  on_result=lambda token, m: results.__setitem__(token, m))
    jobs: dict[int, CallJob] = {}
    futures = {}
    t0 = time.time()
    try:
        line = resp.stdout.readline()
        if "responder ready" not in line:
            raise SystemExit(f"responder not ready: {line!r}")
        dest = line.split()[-1]
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
        agent.start()
        for first in range(0, args.calls, 4):
            batch = range(first, min(args.calls, first + 4))
            for i in batch:
                jobs[i] = CallJob(call_id=str(uuid.uuid4()), destination=dest, duration_ms=TALK_MS,
                                  codec=args.codec,
                                  play_file=ref, record_path=str(out / f"call{i}.wav"), index=i,
                                  impairment=MediaImpairment(loss_pct=0.0, seed=i, seed_asked=True))
                agent.submit(i, jobs[i])
            deadline = time.monotonic() + TALK_MS / 1000 + 60
            while any(i not in results for i in batch) and time.monotonic() < deadline:
                agent.poll(20)
            if pool is not None:
                futures.update({i: pool.submit(recording, ref, jobs[i].record_path) for i in batch})
        wall = time.time() - t0
    finally:
        agent.shutdown()
        for proc in (resp, *burners):
            proc.terminate()
        for proc in (resp, *burners):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    responder = {}
    for ln in stats_file.read_text().splitlines() if stats_file.exists() else []:
        d = json.loads(ln)
        responder[d.pop("call_id")] = d
    rows = []
    for i, job in jobs.items():
        cs = caller_stats.get(i, {})
        rec = futures[i].result() if i in futures else recording(ref, job.record_path)
        rows.append({"seed": i, "outcome": getattr(results.get(i), "outcome", None), **rec,
                     "caller": cs, "responder": responder.get(cs.get("call_id"))})
    if pool is not None:
        pool.shutdown()
    (out / "rows.json").write_text(json.dumps(rows, indent=1, default=str))
    print(f"{len(rows)} clean {args.codec} calls in {wall:.0f} s, load average {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} cores); recordings and rows.json in {out}")
    print("| call | MOS-LQO | delay ms | voiced frames intact | 10 ms shifts (frame: lag before→after) "
          "| caller jbuf empty/lost/discard, prefetch | responder jbuf empty/lost/discard, prefetch |")
    print("|---:|---:|---:|---:|---|---|---|")
    for r in rows:
        c, s = r["caller"].get("jb", {}), (r["responder"] or {}).get("jb", {})
        shifts = ", ".join(f"{i}: {a}→{b}" for i, a, b in r["shifts"]) or "none"
        print(f"| {r['seed']} | {r['mos_lqo']} | {r['delay_ms']} | {r['intact']}/{r['voiced']} | {shifts} "
              f"| {c.get('empty')}/{c.get('lost')}/{c.get('discard')}, {c.get('prefetch')} "
              f"| {s.get('empty')}/{s.get('lost')}/{s.get('discard')}, {s.get('prefetch')} |")


if __name__ == "__main__":
    main()
