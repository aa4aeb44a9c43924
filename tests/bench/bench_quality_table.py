"""The E-model MOS beside ViSQOL MOS-LQO under packet loss, measured through the product's own
impairment path (#17, "Truth"): the table of docs/quality.md.

The whole stack starts on free loopback ports (``callgauge_platform.stack.Stack``, as the e2e tests
start it). One step per loss cell and codec (so at most 2 codecs: a test holds 20 steps), each with
at most 4 calls (the built-in responder's limit at once), hence one run per 4 calls of a cell,
``--calls`` in all. Each call dials the built-in responder (which echoes what it receives), plays
the reference speech prompt with ``record: true`` and has an ``impairment`` of ``loss_pct`` on the
caller's receive side (the media worker's RTP relay: the prompt goes out clean and its echo comes
back through the loss), random (``burst_packets: 0``) or bursty (``--burst`` packets mean burst,
Gilbert-Elliott at the same mean; at 0 % the bursty row is a second clean cell, since a burst length
needs a loss to shape).

Common random numbers: call i of every cell carries ``impairment.seed = i`` (the same seed for every
codec, loss level and pattern), so call i's loss pattern is the same packets in every cell of its
pattern, and the packets it loses at a lower loss are a subset of those it loses at a higher one
(the relay's nested draws, callgauge_media/adapters/impair/relay.py): cells differ only in the loss
rate, not in where the losses happened to land. Besides the cell means, the table says per pattern
how many of the calls (seeds) fell at each step of loss (a paired comparison).

Every call's E-model MOS (from the RTP the engine measured), its measured loss and its MOS-LQO (the
media engine's scoring pool, ViSQOL speech mode against the reference prompt) are read back through
the REST API and averaged per cell.

    .venv/bin/python -m tests.bench.bench_quality_table                          # 8 calls per cell
    .venv/bin/python -m tests.bench.bench_quality_table --calls 4 --codecs opus --scorers 1 --out /tmp/opus.md

Bounded: at most 16 calls per cell and codec, 4 at a time, 5 loss levels x 2 patterns; every wait has a
timeout.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx

from callgauge_platform.stack import Stack
from callgauge_platform.run_states import TERMINAL

LOSSES = (0.0, 1.0, 3.0, 5.0, 10.0)
TALK_MS = 13_000  # the 10.3 s reference prompt, its echo's round trip, and some room
AT_ONCE = 4  # the built-in responder takes 4 calls at once (486 beyond): one step per 4 calls of a cell
MAX_CALLS = 16


def _data(resp: httpx.Response, status: int = 200):
    if resp.status_code != status:
        raise SystemExit(f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text[:500]}")
    return resp.json()["data"]


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def _f(x: float | None, nd: int = 2) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def _run(api: httpx.Client, steps: list[dict]) -> list[dict]:
    """One test run of ``steps``; its calls once it ended."""
    project = _data(api.post("/projects", json={"name": f"quality-{uuid.uuid4().hex[:6]}"}), 201)
    test = _data(api.post(f"/projects/{project['id']}/tests", json={"name": "quality table", "steps": steps}), 201)
    started = _data(api.post(f"/projects/{project['id']}/tests/{test['id']}/run", json={}), 201)
    url = f"/projects/{project['id']}/test-runs/{started['testRunId']}"
    deadline = time.monotonic() + len(steps) * (TALK_MS / 1000 + 30) + 600  # bounds the wait
    while True:
        run = _data(api.get(url))
        if run["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"run {run['id']} still {run['status']} after the bound")
        time.sleep(2)
    got: list[dict] = []
    page = 1
    while True:
        batch = _data(api.get(f"{url}/calls", params={"perPage": 100, "page": page}))
        got += batch
        if len(batch) < 100:
            break
        page += 1
    return got


def run_table(api: httpx.Client, dest: str, codecs: list[str], calls: int, burst: float,
              raw: Path | None = None) -> list[dict]:
    # one step per cell and codec with at most AT_ONCE calls (the built-in responder's limit), so one run
    # per AT_ONCE seeds (a test has at most 20 steps); the seeds make the runs one experiment
    cells = [(loss, pattern, codec) for pattern in ("random", "bursty") for loss in LOSSES for codec in codecs]
    got: list[dict] = []
    for first in range(0, calls, AT_ONCE):
        steps = []
        for loss, pattern, codec in cells:
            imp = {"loss_pct": loss, "burst_packets": burst if pattern == "bursty" and loss > 0 else 0,
                   "direction": "receive"}
            steps.append({"actions": [
                {"type": "call", "dial_destination": dest, "duration_ms": TALK_MS, "codec": codec,
                 "record": True, "impairment": {**imp, "seed": seed}}
                for seed in range(first, min(calls, first + AT_ONCE))]})
        got += _run(api, steps)  # the step of a call is its cell
    rows = []
    if raw is not None:
        raw.write_text(json.dumps(got, indent=1))
    for i, (loss, pattern, codec) in enumerate(cells):
        cs = [c for c in got if c["step"] == i]
        ok = [c for c in cs if c["outcome"] == "SUCCESS"
              and (c.get("codec") or "").upper().startswith(codec.upper())]
        lqo = [c["mosLqo"] for c in ok if c.get("mosLqo") is not None]
        rows.append({
            "codec": codec, "pattern": pattern, "loss": loss, "calls": len(cs), "answered": len(ok),
            "scored": len(lqo),
            "injected": _mean([c["impairment"]["rxLossPct"] for c in ok
                               if (c.get("impairment") or {}).get("rxLossPct") is not None]),
            "measured": _mean([c["lossPct"] for c in ok if c.get("lossPct") is not None]),
            "mos": _mean([c["mos"] for c in ok if c.get("mos") is not None]),
            "lqo": _mean(lqo), "lqo_min": min(lqo) if lqo else None, "lqo_max": max(lqo) if lqo else None,
            # seed -> MOS-LQO, for the paired comparison between loss levels
            "by_seed": {(c.get("impairment") or {}).get("seed"): c["mosLqo"] for c in ok
                        if c.get("mosLqo") is not None},
            "notes": sorted({f"{c['outcome']} {c.get('sipCode')}: {(c.get('detail') or '')[:100]}"
                             for c in cs if c not in ok}),
        })
    return rows


def monotonic_verdicts(rows: list[dict]) -> list[str]:
    out = []
    for codec in dict.fromkeys(r["codec"] for r in rows):
        for pattern in ("random", "bursty"):
            cells = [r for r in rows if r["codec"] == codec and r["pattern"] == pattern]
            seq = [r["lqo"] for r in cells]
            if any(v is None for v in seq):
                out.append(f"{codec} {pattern}: not every cell scored")
                continue
            falls = all(b < a for a, b in zip(seq, seq[1:]))
            bad = [f"{LOSSES[i]:g}→{LOSSES[i + 1]:g} %" for i, (a, b) in enumerate(zip(seq, seq[1:])) if b >= a]
            line = (f"{codec} {pattern}: MOS-LQO means fall monotonically with loss" if falls else
                    f"{codec} {pattern}: means NOT monotonic (no fall at {', '.join(bad)})")
            # paired: per step of loss, how many seeds (the same loss pattern, one more rate) fell
            steps = []
            for i, (a, b) in enumerate(zip(cells, cells[1:])):
                both = sorted(set(a["by_seed"]) & set(b["by_seed"]) - {None})
                fell = sum(b["by_seed"][s] < a["by_seed"][s] for s in both)
                diff = _mean([b["by_seed"][s] - a["by_seed"][s] for s in both])
                steps.append(f"{LOSSES[i]:g}→{LOSSES[i + 1]:g} %: {fell}/{len(both)} fell, "
                             f"mean {_f(diff, 3)}")
            seeds = set.intersection(*(set(r["by_seed"]) - {None} for r in cells))
            mono = sum(all(b["by_seed"][s] < a["by_seed"][s] for a, b in zip(cells, cells[1:]))
                       for s in seeds)
            out.append(f"{line}; per seed: {'; '.join(steps)}; {mono}/{len(seeds)} seeds fall at every step")
    clean = [r["lqo"] for r in rows if r["codec"] == "PCMU" and r["loss"] == 0 and r["lqo"] is not None]
    if clean:
        v = min(clean)
        lo = min(r["lqo_min"] for r in rows
                 if r["codec"] == "PCMU" and r["loss"] == 0 and r["lqo_min"] is not None)
        out.append(f"clean PCMU MOS-LQO (lowest clean cell) {v:.2f} ({'>=' if v >= 4.0 else 'BELOW'} 4.0), "
                   f"lowest clean call {lo:.2f}")
    return out


def render(rows: list[dict], header: str) -> str:
    lines = [header, "",
             "| codec | loss pattern | loss asked % | injected % | measured % | calls answered/scored "
             "| E-model MOS | MOS-LQO mean | MOS-LQO min–max |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['codec']} | {r['pattern']} | {r['loss']:g} | {_f(r['injected'])} | {_f(r['measured'])} "
                     f"| {r['answered']}/{r['scored']} of {r['calls']} | {_f(r['mos'])} | {_f(r['lqo'])} "
                     f"| {_f(r['lqo_min'])}–{_f(r['lqo_max'])} |")
    lines += [""] + [f"- {v}" for v in monotonic_verdicts(rows)]
    notes = sorted({n for r in rows for n in r["notes"]})
    if notes:
        lines += ["", "Calls that did not succeed:"] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=8, help=f"calls per cell and codec (1..{MAX_CALLS}); call i "
                   f"carries impairment seed i; {AT_ONCE} at a time")
    p.add_argument("--codecs", default="PCMU,G722", help="comma separated: the codec field of a call action")
    p.add_argument("--burst", type=float, default=4.0, help="mean burst length (packets) of the bursty rows (>1)")
    p.add_argument("--scorers", type=int, default=2, help="processes of the media engine's scoring pool")
    p.add_argument("--out", type=Path, help="also write the table (markdown) to this file")
    args = p.parse_args()
    if not 1 <= args.calls <= MAX_CALLS or args.burst <= 1:
        raise SystemExit(f"--calls 1..{MAX_CALLS}, --burst > 1")
    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    if not 1 <= len(codecs) <= 2:
        raise SystemExit("--codecs: one or two (a step per cell and codec, 20 steps at most per test)")
    started = datetime.now(timezone.utc)
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cg-quality-") as tmp:
        stack = Stack.on_free_ports(Path(tmp) / "data", audio_scorers=args.scorers, audio_score_queue=1000)
        stack.start(timeout=120)
        try:
            with httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1", timeout=30,
                              headers={"Authorization": f"Bearer {stack.settings.api_key}"}) as api:
                t0 = time.monotonic()
                rows = run_table(api, stack.responder_uri(), codecs, args.calls, args.burst,
                                 args.out.with_suffix(".calls.json") if args.out else None)
                wall = time.monotonic() - t0
        finally:
            stack.stop()
    load1 = os.getloadavg()
    header = (f"Measured {started:%Y-%m-%d %H:%M} UTC, {wall:.0f} s, {args.calls} call(s) per cell and codec "
              f"(call i with impairment seed i in every cell), "
              f"bursty = Gilbert-Elliott mean burst {args.burst:g} packets; load average "
              f"{load0[0]:.2f} before, {load1[0]:.2f} after ({os.cpu_count()} cores, shared).\n"
              f"`.venv/bin/python -m tests.bench.bench_quality_table --calls {args.calls} --codecs "
              f"{','.join(codecs)} --burst {args.burst:g} --scorers {args.scorers}`")
    text = render(rows, header)
    print(text)
    if args.out:
        args.out.write_text(text)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
