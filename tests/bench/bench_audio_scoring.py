"""What scoring a recorded call costs (#17): CPU seconds per scored call and how many calls per
minute one core can score, through the media engine's own scoring path (``AudioService._score``:
its process pool, alignment, flags and ViSQOL speech-mode MOS-LQO) — not timed tests, figures.

The recordings are the reference prompt as the recorder writes it (16-bit PCM mono at 8 kHz), with
what a call does to it: a delay (120 ms), and per variant nothing, 3 % of 20 ms frames lost, or
another prompt (a mismatch, which costs the same). A real call's recording has the same length and
rate, so the scoring work is the same; the calls themselves are not placed here.

    .venv/bin/python -m tests.bench.bench_audio_scoring                 # 30 calls, one scorer process
    .venv/bin/python -m tests.bench.bench_audio_scoring --calls 60 --scorers 2

Bounded: ``--calls`` (at most 1000) recordings, waited for at most 120 s + 60 s per recording.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from callgauge_media.adapters.audio import prompts, wavfile
from callgauge_media.adapters.audio.service import BRIDGE_RATE, AudioService


def _recordings(media: Path, out: Path, n: int) -> tuple[Path, list[Path]]:
    ref = prompts.resolve("prompt:reference", media, BRIDGE_RATE)
    other = prompts.resolve("prompt:greeting", media, BRIDGE_RATE)
    x, _ = wavfile.read_mono(ref)
    y, _ = wavfile.read_mono(other)
    lead = np.zeros(int(0.12 * BRIDGE_RATE))
    rng = np.random.default_rng(17)
    paths = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            body = x.copy()
        elif kind == 1:  # 3 % of 20 ms frames lost (zeroed, no concealment)
            body = x.copy()
            frame = BRIDGE_RATE // 50
            for f in range(body.size // frame):
                if rng.random() < 0.03:
                    body[f * frame:(f + 1) * frame] = 0
        else:
            body = np.resize(y, x.size)
        rec = np.concatenate([lead, body, lead]) + 0.001 * rng.standard_normal(x.size + 2 * lead.size)
        p = out / f"bench:{i}.caller.wav"
        wavfile.write_pcm16(p, rec, BRIDGE_RATE)
        paths.append(p)
    return ref, paths


async def _run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="cg-audio-bench-") as tmp:
        root = Path(tmp)
        svc = AudioService(root / "audio", scorers=args.scorers, max_queue=max(16, args.calls))
        ref, paths = _recordings(svc.media_dir, root, args.calls)
        ref_s = wavfile.read_mono(ref)[0].size / BRIDGE_RATE
        try:
            # the first scoring in each pool process loads ViSQOL's model: measured apart
            t0 = time.perf_counter()
            first = await asyncio.wait_for(svc._score(str(paths[0]), str(ref)), 120)
            warm_s = time.perf_counter() - t0
            if isinstance(first, str):
                raise SystemExit(f"scoring failed: {first}")
            for _ in range(args.scorers - 1):  # warm the other processes too
                await asyncio.wait_for(svc._score(str(paths[0]), str(ref)), 120)
            t0 = time.perf_counter()
            results = await asyncio.wait_for(asyncio.gather(*(svc._score(str(p), str(ref)) for p in paths)),
                                             120 + 60 * len(paths))
            wall = time.perf_counter() - t0
        finally:
            svc.close()
    bad = [r for r in results if isinstance(r, str)]
    scored = [r for r in results if not isinstance(r, str)]
    cpu = [r["cpu_s"] for r in scored]
    mos = {k: [r["mos_lqo"] for j, r in enumerate(scored) if j % 3 == k] for k in range(3)}
    print(f"reference prompt: {ref_s:.2f} s at {BRIDGE_RATE} Hz; recordings: {args.calls} "
          f"(clean, 3 % frames lost, wrong prompt); scorer processes: {args.scorers}")
    print(f"first scoring (ViSQOL model load included): {warm_s:.2f} s wall, {first['cpu_s']:.2f} CPU s")
    if not cpu:
        raise SystemExit(f"nothing scored: {bad[:3]}")
    mean, p50 = statistics.fmean(cpu), statistics.median(cpu)
    print(f"CPU seconds per scored call (in the scorer process): mean {mean:.3f}, median {p50:.3f}, "
          f"max {max(cpu):.3f}  (per second of audio: {mean / ref_s:.3f})")
    print(f"calls one core can score per minute: {60.0 / mean:.0f}  (from the mean CPU per call)")
    print(f"measured: {len(scored)} calls in {wall:.2f} s wall with {args.scorers} scorer(s) = "
          f"{len(scored) / wall * 60:.0f} calls/min (wall, on a shared machine)")
    print("MOS-LQO: clean {:.2f}, 3 % frames lost {:.2f}, wrong prompt {:.2f} (means)".format(
        *(statistics.fmean(v) if v else float("nan") for v in mos.values())))
    if bad:
        print(f"not scored: {len(bad)} ({bad[0]})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=30, help="recordings to score (1..1000)")
    p.add_argument("--scorers", type=int, default=1, help="processes of the scoring pool (1 = one core)")
    args = p.parse_args()
    if not 1 <= args.calls <= 1000 or not 1 <= args.scorers <= 16:
        raise SystemExit("--calls 1..1000, --scorers 1..16")
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
