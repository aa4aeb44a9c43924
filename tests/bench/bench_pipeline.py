"""The pipeline at run size (issue #14's benchmark), through the REST API of a whole stack as
`callgauge up` starts it: one SIPp-driven `load` run at up to --rate calls/s for --calls calls
against `sipp -sn uas` on loopback. Prints, measured in that one run:

- calls recorded per second, sustained, two ways: the slope of `callsRecorded` between 10 % and 90 %
  of the calls (the steady middle), and calls over the time from the first recorded call to the
  last (a backlog drained after the engine's end lowers it); the SIPp driver's highest call rate
  (the most attempts in one second, from the run's per-second statistics), its rate over the same
  10-90 % middle (from the calls' start times) and its mean; the headline: recording rate /
  driver's highest rate (>= 1.0: the pipeline is not the bottleneck). A pipeline that keeps up
  records at the driver's rate, so the highest 1-second figure (jitter above the asked rate) puts
  the headline a little under 1.0 even then: compare it with recording / driver over the same
  middle, printed beside it;
- the report page loaded in headless Chromium (to the load event, median of 3 after a warm load);
- time from the engine's last call (the latest `endedAt`) to COMPLETED (`stoppedAt`);
- peak RSS of the runs and billing services;
- GET run p95 and first page of calls p95, during and after the run;
- CSV and Parquet export of every call: time and size;
- billing: the run's charges against the answered call-seconds, and the time from COMPLETED until
  the wallet's reservation is released;
- the media topic holding each CallMeasured of the run exactly once;
- POST -> first INVITE on the wire, p50/p99, idle and during the big run (a UDP socket that
  records when the first INVITE of each small run arrives; it never answers).

Bounded: --calls, --rate, --timeout-s. Not a test: no thresholds, figures only.

    .venv/bin/python -m tests.bench.bench_pipeline --calls 5000 --rate 500           # small, shared machine
    .venv/bin/python -m tests.bench.bench_pipeline --calls 300000 --rate 1000        # the issue's size
    .venv/bin/python -m tests.bench.bench_pipeline --eventstore-url postgresql://127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import math
import socket
import statistics
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx

from callgauge_bus.codec import Delivered
from callgauge_bus.kafka import Consumer
from callgauge_platform.stack import Stack
from callgauge_platform.run_states import TERMINAL
from tests.bench._support import HOST, SippUas, free_udp_port, proc_cpu_seconds, require_sipp, rss_kib, table


MAX_CALLS_PER_ACTION = 100_000  # the runs service's limit on one action's max_total_calls


def histogram(metrics_url: str, name: str, label: str = "") -> dict[float, float]:
    """The cumulative buckets (le -> count) of a Prometheus histogram on a /metrics page (of its
    series whose labels contain `label`, e.g. a gRPC method's)."""
    out: dict[float, float] = {}
    try:
        text = httpx.get(metrics_url, timeout=10).text
    except httpx.HTTPError:
        return out
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{") and label in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def grpc_histogram(metrics_url: str, method_suffix: str) -> dict[float, float]:
    """The cumulative buckets (le -> count) of a service's gRPC latency histogram for one method."""
    return histogram(metrics_url, "callgauge_grpc_request_seconds", f'{method_suffix}"')


def loop_lag(metrics_url: str) -> dict[float, float]:
    """A service's event-loop lag histogram (how late its loop ran what was due)."""
    return histogram(metrics_url, "callgauge_event_loop_lag_seconds")


def window_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """The q-quantile bucket of what a histogram observed between two snapshots."""
    return histogram_quantile({le: n - before.get(le, 0) for le, n in after.items()}, q)


def histogram_quantile(buckets: dict[float, float], q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile (None without observations)."""
    if not buckets or max(buckets.values()) <= 0:
        return None
    total = buckets[max(buckets)]
    return next(le for le in sorted(buckets) if buckets[le] >= q * total)


def _num(v: float | None) -> str:
    return "–" if v is None else f"{float(v):.2f}"


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v * 1000:.1f}"


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _ts(s: str | None) -> float | None:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() if s else None


class InviteSniffer:
    """A UDP socket standing in for a SIP target that never answers: records when each run's first
    INVITE arrives (runs are told apart by the user part, `sip:probe-<n>@…`)."""

    def __init__(self) -> None:
        self.port = free_udp_port()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, self.port))
        self.sock.settimeout(0.2)
        self.first: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def uri(self, tag: str) -> str:
        return f"sip:{tag}@{HOST}:{self.port}"

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            now = time.time()
            if data.startswith(b"INVITE sip:"):
                tag = data[len(b"INVITE sip:"):].split(b"@", 1)[0].decode("latin-1")
                self.first.setdefault(tag, now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def post_to_invite(api: httpx.Client, pid: str, tid: str, sniffer: InviteSniffer, n: int, label: str) -> list[float]:
    """n small runs one after another: seconds from POST …/run to their first INVITE on the wire."""
    out = []
    for i in range(n):
        tag = f"probe-{label}-{i}-{uuid.uuid4().hex[:6]}"
        t0 = time.time()
        r = api.post(f"/projects/{pid}/tests/{tid}/run", json={"step.0.0.dial_destination": sniffer.uri(tag)})
        r.raise_for_status()
        deadline = time.monotonic() + 15
        while tag not in sniffer.first and time.monotonic() < deadline:
            time.sleep(0.005)
        if tag in sniffer.first:
            out.append(sniffer.first[tag] - t0)
    return out


async def callmeasured_counts(bootstrap: str, topic: str, run_id: str, expected: int, limit_s: float) -> dict:
    """CallMeasured events of the run on the media topic, by call id (a new consumer group: every
    event on the topic)."""
    counts: dict[str, int] = {}

    async def handler(d: Delivered) -> None:
        if d.envelope.correlation_id == run_id and d.envelope.type.endswith("CallMeasured"):
            call_id = getattr(d.payload, "call", None)
            key = call_id.call_id if call_id is not None else d.envelope.event_id
            counts[key] = counts.get(key, 0) + 1

    consumer = Consumer(bootstrap, [topic], f"bench-{uuid.uuid4().hex[:6]}", handler)
    await consumer.start()
    try:
        deadline = time.monotonic() + limit_s
        last, still = -1, 0
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            total = sum(counts.values())
            still = still + 1 if total == last else 0
            last = total
            if total >= expected and still >= 4:  # caught up and quiet for 2 s
                break
    finally:
        await consumer.stop()
    return counts


def _create_database(url: str) -> tuple[str, str]:
    import psycopg

    name = f"bench_pipeline_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _db = url.rpartition("/")
    return name, f"{base}/{name}"


def _drop_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_backends(url: str, database: str) -> list[int]:
    """The server processes of the connections to `database` (the services' pools and listeners)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)).fetchall()
    return [r[0] for r in rows]


def _expected_seconds(row: dict) -> int:
    """What billing must charge a call of the CSV: every started second of an answered call."""
    if row["outcome"] != "SUCCESS" or not row["durationMs"]:
        return 0
    return math.ceil(float(row["durationMs"]) / 1000 - 1e-9)


async def billing_breakdown(url: str, run_id: str, rows: list[dict]) -> dict:
    """Where the run's call-second charges differ from the calls' answered seconds, read from the
    billing and media-engine stores themselves: per call, the seconds charged (the sum of its
    UsageCharged quantities) against the CSV's; charges made twice for one source event; and the
    calls whose interim CallProgress reported more whole seconds than their final CallMeasured."""
    from callgauge_bus.codec import decode_payload
    from callgauge_eventstore.factory import open_event_store
    from callgauge_proto.callgauge.events.v1 import billing_pb2, media_pb2

    expected = {row["callId"]: _expected_seconds(row) for row in rows}
    charged: dict[str, int] = {}
    sources: dict[str, int] = {}
    progress_max: dict[str, int] = {}
    for namespace in ("billing", "media-engine"):
        store = open_event_store(url, namespace)
        try:
            after = 0
            while batch := await store.read_all(after, 5000):
                after = batch[-1].position
                for ev in batch:
                    if ev.type.endswith(".UsageCharged"):
                        e = billing_pb2.UsageCharged.FromString(ev.data)
                        if e.run_id == run_id and e.kind == "call_seconds":
                            charged[e.call_id] = charged.get(e.call_id, 0) + e.quantity
                            sources[e.source_event_id] = sources.get(e.source_event_id, 0) + 1
                    elif ev.type.endswith(".CallProgress"):
                        p = decode_payload(ev.type, ev.data)
                        if isinstance(p, media_pb2.CallProgress) and p.run_id == run_id:
                            progress_max[p.call_id] = max(progress_max.get(p.call_id, 0), p.up_ms // 1000)
        finally:
            await store.close()
    over = {c: q - expected.get(c, 0) for c, q in charged.items() if q > expected.get(c, 0)}
    under = {c: e - charged.get(c, 0) for c, e in expected.items() if charged.get(c, 0) < e}
    return {
        "calls_over": len(over), "units_over": sum(over.values()),
        "calls_over_not_answered": sum(1 for c in over if expected.get(c, 0) == 0),
        "calls_under": len(under), "units_under": sum(under.values()),
        "sources_charged_twice": sum(1 for n in sources.values() if n > 1),
        "progress_above_final": sum(1 for c, s in progress_max.items() if s > expected.get(c, 0)),
        "over_explained_by_progress": sum(1 for c in over if progress_max.get(c, 0) >= charged[c]),
    }


def timed_get(api: httpx.Client, path: str, **params) -> float:
    t0 = time.perf_counter()
    r = api.get(path, params=params or None)
    r.raise_for_status()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=5000, help="calls of the big run (bound)")
    ap.add_argument("--rate", type=float, default=1000.0, help="calls/s asked of the SIPp driver (1..1000)")
    ap.add_argument("--talk-ms", type=int, default=1000, help="talk time per call")
    ap.add_argument("--probes", type=int, default=12, help="small runs for POST -> first INVITE, idle and during")
    ap.add_argument("--timeout-s", type=float, default=900.0, help="bound on the big run")
    ap.add_argument("--driver", choices=("sipp", "pjsua"), default="sipp",
                    help="sipp: signalling only; pjsua: full-media pjsua2 calls (PCMU tone) to sipp -rtp_echo")
    ap.add_argument("--concurrency", type=int, default=0, help="the load's max_concurrency (0: 10,000)")
    ap.add_argument("--eventstore-url", default="", help="e.g. postgresql://127.0.0.1:5432/test (default: SQLite)")
    a = ap.parse_args(argv)
    require_sipp()
    rate = min(max(a.rate, 0.1), 1000.0)
    print(f"# pipeline bench, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: {a.calls} calls at up to "
          f"{rate:g}/s ({a.driver} driver), talk {a.talk_ms} ms, store {a.eventstore_url or 'SQLite (embedded default)'}; "
          f"load average {_loadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="callgauge-bench-pipeline-") as tmp:
        work = Path(tmp)
        # prepaid: the bench checks that billing charged exactly the answered call-seconds
        overrides: dict = {"billing_mode": "prepaid", "quota_concurrent_calls": 10_000,  # the big run asks 10,000
                           "quota_planned_calls_per_run": max(100_000, a.calls + 1_000)}
        fresh_db = None
        if a.eventstore_url:
            url = a.eventstore_url
            if url.startswith("postgresql://"):
                # a fresh database on that server (the services' schemas in `test` hold other runs),
                # dropped at the end
                fresh_db, url = _create_database(url)
                print(f"# fresh database {fresh_db}", flush=True)
            overrides["eventstore_url"] = url
            overrides["kafka_topic_prefix"] = f"bench{uuid.uuid4().hex[:6]}."
        stack = Stack.on_free_ports(work / "data", **overrides)
        uas = SippUas(work, rtp_echo=a.driver == "pjsua", realtime=a.driver == "pjsua").start()
        sniffer = InviteSniffer()
        try:
            stack.start(timeout=120)
            return _bench(a, rate, stack, uas, sniffer, fresh_db)
        finally:
            sniffer.close()
            uas.stop()
            stack.stop()
            if fresh_db:
                _drop_database(a.eventstore_url, fresh_db)


def _bench(a, rate: float, stack: Stack, uas: SippUas, sniffer: InviteSniffer, fresh_db: str | None) -> int:
    pids = {c.name: c.proc.pid for c in stack.children}
    api = httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1", timeout=120,
                       headers={"Authorization": f"Bearer {stack.settings.api_key}"})
    project = api.post("/projects", json={"name": "pipeline bench"}).json()["data"]
    pid = project["id"]
    load = {"type": "load", "driver": a.driver, "dial_destination": uas.uri, "cps": rate, "max_total_calls": a.calls,
            "hold_s": int(a.calls / rate) + 30, "duration_ms": a.talk_ms,
            "max_concurrency": a.concurrency or 10_000, "setup_timeout_ms": 10_000}
    if a.driver == "pjsua":
        load["codec"] = "PCMU"  # full media: a 440 Hz tone to `sipp -rtp_echo`, measured per call
    if a.calls > MAX_CALLS_PER_ACTION:
        # one action takes at most 100,000 in max_total_calls: a bigger run is a load shaped by its
        # duration alone (rate x hold_s calls), as a user would write it
        del load["max_total_calls"]
        load["hold_s"] = math.ceil(a.calls / rate)
        print(f"# {a.calls} calls > {MAX_CALLS_PER_ACTION} per action: a {load['hold_s']} s hold at {rate:g}/s "
              "without max_total_calls", flush=True)
    big = api.post(f"/projects/{pid}/tests", json={"name": "big", "steps": [{"actions": [load]}]})
    if big.status_code >= 300:
        raise SystemExit(f"the big test was refused: {big.status_code} {big.text[:800]}")
    big = big.json()["data"]
    probe = api.post(f"/projects/{pid}/tests", json={"name": "probe", "steps": [{"actions": [{
        "type": "call", "dial_destination": sniffer.uri("x"), "duration_ms": 100, "setup_timeout_ms": 500}]}]}
        ).json()["data"]
    # enough money for the run (live key: billing is part of what is measured)
    from callgauge_billing.settings import BillingSettings

    price = BillingSettings(**stack.settings.model_dump()).billing_price_call_second_minor
    need = (a.calls * math.ceil(a.talk_ms / 1000) + 100) * price * 2
    api.post("/billing/top-ups", json={"amount_minor": need}).raise_for_status()
    before = api.get("/billing/wallet").json()["data"]

    idle = post_to_invite(api, pid, probe["id"], sniffer, a.probes, "idle")
    print(f"POST -> first INVITE, idle: p50 {_ms(_pct(idle, 50))} ms, p99 {_ms(_pct(idle, 99))} ms "
          f"({len(idle)}/{a.probes} seen)", flush=True)
    time.sleep(3)  # let the probe runs end

    # CPU seconds of the services (and, on PostgreSQL, of the server's processes serving them) from
    # the POST of the big run to its COMPLETED: less noisy than rates on a shared machine
    pg_pids = _pg_backends(a.eventstore_url, fresh_db) if fresh_db else []
    cpu0 = {name: proc_cpu_seconds([p]) for name, p in pids.items()}
    pg_cpu0 = {p: proc_cpu_seconds([p]) for p in pg_pids}
    runs_metrics = f"http://127.0.0.1:{stack.settings.runs_http_port}/metrics"
    gateway_metrics = f"{stack.settings.gateway_url()}/metrics"
    get_hist0 = grpc_histogram(runs_metrics, "GetRun")
    lag0 = {"runs": loop_lag(runs_metrics), "gateway": loop_lag(gateway_metrics)}
    r = api.post(f"/projects/{pid}/tests/{big['id']}/run")
    if r.status_code >= 300:
        raise SystemExit(f"the big run was refused: {r.status_code} {r.text[:500]}")
    started = r.json()["data"]
    run_id = started["testRunId"]
    t_post = time.time()
    base = f"/projects/{pid}/test-runs/{run_id}"
    samples: list[tuple[float, int]] = []
    get_during, page_during, rss = [], [], {"runs": 0, "billing": 0}
    during: list[float] = []
    loads: list[float] = []
    probe_thread = None
    completed_seen = None
    deadline = time.monotonic() + a.timeout_s
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        r = api.get(base)
        get_during.append(time.perf_counter() - t0)
        run = r.json()["data"]
        samples.append((time.time(), int(run.get("callsRecorded") or 0)))
        page_during.append(timed_get(api, f"{base}/calls", perPage=100))
        loads.append(float(_loadavg().split()[0]))
        for name in rss:
            if name in pids:
                rss[name] = max(rss[name], rss_kib([pids[name]]))
        if probe_thread is None and samples[-1][1] > 0:
            def probes() -> None:
                with httpx.Client(base_url=api.base_url, headers=api.headers, timeout=60) as api2:
                    during.extend(post_to_invite(api2, pid, probe["id"], sniffer, a.probes, "busy"))
            probe_thread = threading.Thread(target=probes, daemon=True)
            probe_thread.start()
        if run["status"] in TERMINAL:
            completed_seen = time.time()
            break
        time.sleep(0.25)
    get_served_p95 = window_quantile(get_hist0, grpc_histogram(runs_metrics, "GetRun"), 0.95)
    lag_p95 = {name: window_quantile(lag0[name], loop_lag(url), 0.95)
               for name, url in (("runs", runs_metrics), ("gateway", gateway_metrics))}
    # the wallet from the run's end on, while the figures below are measured: when billing settled is
    # read off these samples once the answered call-seconds are known (not after the exports)
    wallet_samples: list[tuple[float, int, int]] = []
    wallet_stop = threading.Event()

    def watch_wallet() -> None:
        with httpx.Client(base_url=api.base_url, headers=api.headers, timeout=60) as api3:
            until = time.monotonic() + 120
            while not wallet_stop.is_set() and time.monotonic() < until:
                w = api3.get("/billing/wallet").json()["data"]
                wallet_samples.append((time.time(), int(w["reservedMinor"] or 0), int(w["balanceMinor"])))
                wallet_stop.wait(0.2)

    wallet_thread = threading.Thread(target=watch_wallet, daemon=True)
    wallet_thread.start()
    cpu = {name: proc_cpu_seconds([p]) - cpu0[name] for name, p in pids.items()}
    pg_cpu = None
    if fresh_db:  # connections opened during the run count from zero
        pg_cpu = sum(proc_cpu_seconds([p]) - pg_cpu0.get(p, 0.0) for p in _pg_backends(a.eventstore_url, fresh_db))
    if probe_thread is not None:
        probe_thread.join(120)
    run = api.get(base).json()["data"]
    summary = run.get("summary") or {}
    print(f"run {run_id}: {run['status']} {run.get('resultDescription', '')!r}; recorded {run.get('callsRecorded')}"
          f" of {summary.get('callsAttempted')} attempted ({a.calls} planned)", flush=True)

    # after: GET run and first page of calls
    get_after = [timed_get(api, base) for _ in range(50)]
    page_after = [timed_get(api, f"{base}/calls", perPage=100) for _ in range(50)]

    # exports
    t0 = time.perf_counter()
    csv_resp = api.get(f"{base}/calls.csv", timeout=600)
    csv_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    parquet_resp = api.get(f"{base}/calls.parquet", timeout=600)
    parquet_s = time.perf_counter() - t0
    rows = list(csv.DictReader(io.StringIO(csv_resp.text)))
    ended = [t for t in (_ts(row["endedAt"] or None) for row in rows) if t]
    last_call = max(ended) if ended else None
    stopped = _ts(run.get("stoppedAt"))

    # recording rate, two honest windows from the same samples of `callsRecorded`:
    # - steady middle: calls recorded per second between 10 % and 90 % of the recorded calls;
    # - whole run: (calls recorded - 1) / time from the first recorded call to the last one (any
    #   backlog the pipeline drains after the engine's end lowers it; nothing flatters it).
    n = samples[-1][1] if samples else 0
    lo = next((s for s in samples if s[1] >= 0.1 * n), None)
    hi = next((s for s in samples if s[1] >= 0.9 * n), None)
    recording = (hi[1] - lo[1]) / (hi[0] - lo[0]) if lo and hi and hi[0] > lo[0] else None
    first_rec = next((s for s in samples if s[1] > 0), None)
    last_rec = next((s for s in samples if s[1] >= n), None)
    recording_whole = (n - first_rec[1]) / (last_rec[0] - first_rec[0]) \
        if first_rec and last_rec and last_rec[0] > first_rec[0] else None
    # how far the recording trails the calls: at each sample, n calls recorded, against the time the
    # n-th call ended (a pipeline that keeps up trails by a steady fraction of a second; one that
    # falls behind trails by more and more as the run goes on)
    ends = sorted(ended)
    lags = [t - ends[k - 1] for t, k in samples if 0 < k <= len(ends) and k < n]
    seconds = api.get(f"{base}/seconds").json()["data"]
    per_second: dict[str, int] = {}
    for s in seconds:
        per_second[s["at"][:19]] = per_second.get(s["at"][:19], 0) + int(s.get("attempts") or 0)
    driver_peak = max(per_second.values()) if per_second else None
    starts = sorted(t for t in (_ts(row["startedAt"] or None) for row in rows) if t)
    driver_mean = (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 and starts[-1] > starts[0] else None
    # the driver over the same steady middle as the recording rate: attempts/s between its 10 %
    # and 90 % call (a pipeline that keeps up records at this rate, never above it for long)
    driver_mid = None
    if len(starts) > 10:
        a_lo, a_hi = starts[len(starts) // 10], starts[(len(starts) * 9) // 10]
        driver_mid = ((len(starts) * 9) // 10 - len(starts) // 10) / (a_hi - a_lo) if a_hi > a_lo else None

    # the report page in headless Chromium: navigation to its load event
    report_s, report_status = None, None
    try:
        from chromium_cdp import CHROMIUM, Browser  # tests/ on sys.path (python -m tests.bench...)
    except ImportError:
        from tests.chromium_cdp import CHROMIUM, Browser
    if CHROMIUM is not None:
        with Browser(timeout=120) as browser:
            browser.set_header("Authorization", f"Bearer {stack.settings.api_key}")
            url = f"{stack.settings.gateway_url()}/reports/runs/{run_id}"
            browser.navigate(url, settle=0)  # warm: the browser's own start is not the page's
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                load = browser.navigate(url, settle=0)
                times.append(time.perf_counter() - t0)
                report_status = load.status
            report_s = statistics.median(times)

    # billing: charges of this run against its answered call-seconds, and when it settled
    answered_s = sum(math.ceil(float(row["durationMs"]) / 1000 - 1e-9) for row in rows
                     if row["outcome"] == "SUCCESS" and row["durationMs"])
    settle_deadline = time.monotonic() + 60
    wallet = api.get("/billing/wallet").json()["data"]
    while (wallet["reservedMinor"] or before["balanceMinor"] - wallet["balanceMinor"] < answered_s * price) \
            and time.monotonic() < settle_deadline:
        time.sleep(0.2)
        wallet = api.get("/billing/wallet").json()["data"]
    wallet_stop.set()
    wallet_thread.join(30)
    settled_at = next((t for t, reserved, balance in wallet_samples
                       if not reserved and before["balanceMinor"] - balance >= answered_s * price), time.time())
    settled_after = settled_at - (stopped or completed_seen or settled_at)
    charged = before["balanceMinor"] - wallet["balanceMinor"]

    # the media topic: each CallMeasured once
    counts = asyncio.run(callmeasured_counts(stack.settings.kafka_bootstrap, stack.settings.topic("media"), run_id,
                                             len(rows), limit_s=120))
    dupes = sum(1 for v in counts.values() if v > 1)
    breakdown = asyncio.run(billing_breakdown(stack.settings.eventstore_url_for(), run_id, rows))
    per_k = 1000 / max(len(rows), 1)
    cpu_cells = ", ".join(f"{name} {cpu[name] * per_k:.2f}"
                          for name in ("runs", "billing", "media-engine", "gateway", "tansu") if name in cpu)
    if pg_cpu is not None:
        cpu_cells += f", postgres {pg_cpu * per_k:.2f}"

    print()
    print(table([
        ["calls planned / attempted / recorded", f"{a.calls} / {summary.get('callsAttempted')} / {len(rows)}"],
        ["media: MOS mean / min / p5, loss % max, jitter ms max (full-media calls; – for signalling only)",
         " / ".join(_num(summary.get(k)) for k in ("mosMean", "mosMin", "mosP5")) + ", "
         + _num(summary.get("lossPctMax")) + ", " + _num(summary.get("jitterMsMax"))],
        ["calls up at once, at most (the run's peak concurrency)", str(summary.get("peakConcurrency", "–"))],
        ["recording rate, steady middle 10-90 % / first to last recorded call (calls/s)",
         (f"{recording:.0f}" if recording else "–") + " / " + (f"{recording_whole:.0f}" if recording_whole else "–")],
        ["SIPp driver: highest 1 s / steady middle 10-90 % / mean (attempts/s)", f"{driver_peak} / "
         + (f"{driver_mid:.0f}" if driver_mid else "–") + " / " + (f"{driver_mean:.0f}" if driver_mean else "–")],
        ["HEADLINE recording (10-90 %) / driver's highest 1 s", f"{recording / driver_peak:.2f}"
         if recording and driver_peak else "–"],
        ["recording (10-90 %) / driver (10-90 %)", f"{recording / driver_mid:.2f}" if recording and driver_mid
         else "–"],
        ["recording (first-last) / driver mean", f"{recording_whole / driver_mean:.2f}"
         if recording_whole and driver_mean else "–"],
        ["recording behind the calls' ends during the run: median / p95 / max (s)",
         f"{statistics.median(lags):.2f} / {_pct(lags, 95):.2f} / {max(lags):.2f}" if lags else "–"],
        ["engine's last call -> COMPLETED (s)", f"{stopped - last_call:.1f}" if stopped and last_call else "–"],
        ["POST -> COMPLETED (s)", f"{(stopped or completed_seen) - t_post:.1f}" if (stopped or completed_seen) else "–"],
        ["peak RSS runs / billing (MiB)", f"{rss['runs'] / 1024:.0f} / {rss['billing'] / 1024:.0f}"],
        ["GET run p95 during / after (ms)", f"{_ms(_pct(get_during, 95))} / {_ms(_pct(get_after, 95))}"],
        ["GetRun p95 during, as the runs service served it (ms, upper bound of its histogram bucket)",
         f"{get_served_p95 * 1000:g}" if get_served_p95 is not None else "–"],
        ["event-loop lag p95 during: runs / gateway (ms, upper bound of the histogram bucket)",
         " / ".join(f"{v * 1000:g}" if v is not None else "–" for v in lag_p95.values())],
        ["first calls page p95 during / after (ms)", f"{_ms(_pct(page_during, 95))} / {_ms(_pct(page_after, 95))}"],
        ["report page in headless Chromium, to load event (s, median of 3)",
         f"{report_s:.2f} (HTTP {report_status})" if report_s is not None else "– (no chromium)"],
        ["CSV export (s, MiB, rows)", f"{csv_s:.1f}, {len(csv_resp.content) / 2**20:.1f}, {len(rows)}"],
        ["Parquet export (s, MiB)", f"{parquet_s:.1f}, {len(parquet_resp.content) / 2**20:.1f}"],
        ["billing: charged / answered call-seconds x price", f"{charged} / {answered_s * price}"],
        ["billing per call: calls over (not answered) / units over / calls under / units under",
         f"{breakdown['calls_over']} ({breakdown['calls_over_not_answered']}) / {breakdown['units_over']} / "
         f"{breakdown['calls_under']} / {breakdown['units_under']}"],
        ["billing: sources charged twice / calls with CallProgress above the final / over-charges at that "
         "CallProgress", f"{breakdown['sources_charged_twice']} / {breakdown['progress_above_final']} / "
         f"{breakdown['over_explained_by_progress']}"],
        ["CPU seconds per 1,000 recorded calls, POST -> COMPLETED", cpu_cells],
        ["billing settled after COMPLETED (s)", f"{settled_after:.1f}" + ("" if not wallet["reservedMinor"]
                                                                        else " (still reserved)")],
        ["CallMeasured on the media topic: calls / duplicated", f"{len(counts)} / {dupes}"],
        ["POST -> first INVITE idle p50 / p99 (ms)", f"{_ms(_pct(idle, 50))} / {_ms(_pct(idle, 99))}"],
        ["POST -> first INVITE during p50 / p99 (ms)", f"{_ms(_pct(during, 50))} / {_ms(_pct(during, 99))} "
         f"({len(during)} runs)"],
        ["GET run samples during the run", f"{len(get_during)} (median {_ms(statistics.median(get_during))} ms)"
         if get_during else "0"],
        ["load average (1 min) during the run: min / max", f"{min(loads):.1f} / {max(loads):.1f}" if loads else "–"],
        ["load average at the end (1/5/15 min)", _loadavg()],
    ], ["figure", "value"]))
    api.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
