"""POST …/run -> the run's first INVITE on the wire (issue #14 item 6a), through the REST API of a
whole stack as `callgauge up` starts it (SQLite, Tansu, every service as its own process).

A UDP socket on 127.0.0.1 stands in for the SIP target: it records when the first INVITE of each
run arrives (runs are told apart by the request URI's user part) and never answers, so each call
ends at its setup timeout and costs nothing else. --runs small runs are started one after another
(each waits for its INVITE, then --gap-s); prints p50/p95/p99/min/max of POST -> first INVITE, and
of POST -> the 201 answer (the part spent in the gateway, runs and billing's Reserve).

Bounded: --runs (count) and 15 s per run. Not a test: no thresholds, figures only.

    .venv/bin/python -m tests.bench.bench_first_invite --runs 40
    .venv/bin/python -m tests.bench.bench_first_invite --runs 40 --eventstore-url postgresql://127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx

from callgauge_platform.stack import Stack
from tests.bench._support import table
from tests.bench.bench_pipeline import InviteSniffer, _ms, _pct


def measure(api: httpx.Client, pid: str, tid: str, sniffer: InviteSniffer, n: int, gap_s: float
            ) -> tuple[list[float], list[float]]:
    """n runs one after another: (POST -> first INVITE, POST -> 201) in seconds."""
    invite, answered = [], []
    for i in range(n):
        tag = f"first-{i}-{uuid.uuid4().hex[:6]}"
        t0 = time.time()
        r = api.post(f"/projects/{pid}/tests/{tid}/run", json={"step.0.0.dial_destination": sniffer.uri(tag)})
        t1 = time.time()
        r.raise_for_status()
        answered.append(t1 - t0)
        deadline = time.monotonic() + 15
        while tag not in sniffer.first and time.monotonic() < deadline:
            time.sleep(0.001)
        if tag in sniffer.first:
            invite.append(sniffer.first[tag] - t0)
        time.sleep(gap_s)
    return invite, answered


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=40, help="runs to start, one after another (bound)")
    ap.add_argument("--gap-s", type=float, default=0.5, help="pause between runs (the stack idles meanwhile)")
    ap.add_argument("--warmup", type=int, default=3, help="runs started first and not counted")
    ap.add_argument("--eventstore-url", default="", help="e.g. postgresql://127.0.0.1:5432/test (default: SQLite)")
    a = ap.parse_args(argv)
    print(f"# POST -> first INVITE, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: {a.runs} runs, "
          f"store {a.eventstore_url or 'SQLite (embedded default)'}", flush=True)
    with tempfile.TemporaryDirectory(prefix="callgauge-bench-invite-") as tmp:
        overrides = {"eventstore_url": a.eventstore_url} if a.eventstore_url else {}
        if a.eventstore_url:
            overrides["kafka_topic_prefix"] = f"bench{uuid.uuid4().hex[:6]}."
        stack = Stack.on_free_ports(Path(tmp) / "data", **overrides)
        sniffer = InviteSniffer()
        stack.start(timeout=120)
        try:
            with httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1", timeout=60,
                              headers={"Authorization": f"Bearer {stack.settings.api_key}"}) as api:
                pid = api.post("/projects", json={"name": "first invite"}).json()["data"]["id"]
                tid = api.post(f"/projects/{pid}/tests", json={"name": "probe", "steps": [{"actions": [{
                    "type": "call", "dial_destination": sniffer.uri("x"), "duration_ms": 100,
                    "setup_timeout_ms": 500}]}]}).json()["data"]["id"]
                measure(api, pid, tid, sniffer, a.warmup, a.gap_s)
                invite, answered = measure(api, pid, tid, sniffer, a.runs, a.gap_s)
        finally:
            sniffer.close()
            stack.stop()
    print(table([
        ["POST -> first INVITE", len(invite), _ms(_pct(invite, 50)), _ms(_pct(invite, 95)), _ms(_pct(invite, 99)),
         _ms(min(invite) if invite else None), _ms(max(invite) if invite else None)],
        ["POST -> 201 answer", len(answered), _ms(_pct(answered, 50)), _ms(_pct(answered, 95)),
         _ms(_pct(answered, 99)), _ms(min(answered) if answered else None), _ms(max(answered) if answered else None)],
    ], ["ms", "runs", "p50", "p95", "p99", "min", "max"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
