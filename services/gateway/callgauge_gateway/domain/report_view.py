"""What a run report shows, computed from the run (as the API's JSON, which carries no calls), its
per-second statistics and the pages of its calls the gateway asked for (the table's page, the
failed calls whose ladders are shown, and — for a small run only — every call). Pure: no I/O.
The per-second series come from the media-engine's RunSecondStats when the runs service has them;
otherwise, for a run of at most SAMPLE_MAX calls, they are derived from the per-call measurements."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from typing import Any

from callgauge_client.assertions import evaluate_assertions
from callgauge_platform.run_states import TERMINAL
from callgauge_platform.timestamps import parse_iso

MAX_SERIES_SECONDS = 4 * 3600  # a report charts at most four hours, second by second
TABLE_PAGE = 100                # calls per page of the report's table (paged on the server)
MAX_LADDERS = 50                # failed calls whose SIP ladder the page shows
TABLE_SORTS = ("index", "-index", "setupMs", "-setupMs", "mos", "-mos")
SAMPLE_MAX = 1000               # a run with at most this many calls: every call is read for the charts


def _num(v: Any, default: float = 0.0) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default


def series_from_seconds(seconds: list[dict[str, Any]], calls: list[dict[str, Any]]) -> dict[str, list] | None:
    """Per-second series from RunSecondStats (one per engine per second: merged by wall-clock
    second). MOS per second is not in those events: it is the mean MOS of the calls that ended
    in that second."""
    buckets: dict[int, dict[str, Any]] = {}
    for s in seconds:
        at = parse_iso(s.get("at"))
        if at is None:
            continue
        key = int(at.timestamp())
        b = buckets.setdefault(key, {"active": 0, "attempts": 0, "answers": 0, "failures": 0, "jit": [],
                                     "jit_max": 0.0, "rx": 0, "lost": 0, "loss": []})
        b["active"] += int(_num(s.get("activeCalls")))
        b["attempts"] += int(_num(s.get("attempts")))
        b["answers"] += int(_num(s.get("answers")))
        b["failures"] += int(_num(s.get("failures")))
        if _num(s.get("jitterMsMean")) > 0 or _num(s.get("jitterMsMax")) > 0:
            b["jit"].append(_num(s.get("jitterMsMean")))
        b["jit_max"] = max(b["jit_max"], _num(s.get("jitterMsMax")))
        b["rx"] += int(_num(s.get("rxPackets")))
        b["lost"] += int(_num(s.get("lostPackets")))
        b["loss"].append(_num(s.get("lossPct")))
    if not buckets:
        return None
    t0, t1 = min(buckets), max(buckets)
    t1 = min(t1, t0 + MAX_SERIES_SECONDS)
    mos_by_second = _mos_by_second(calls, t0)
    out: dict[str, list] = {k: [] for k in ("t", "active", "attempts", "answers", "failures", "jitterMean",
                                            "jitterMax", "lossPct", "mos")}
    for sec in range(t0, t1 + 1):
        b = buckets.get(sec)
        out["t"].append(sec - t0)
        if b is None:
            for k in ("active", "attempts", "answers", "failures"):
                out[k].append(0)
            out["jitterMean"].append(None)
            out["jitterMax"].append(None)
            out["lossPct"].append(None)
        else:
            out["active"].append(b["active"])
            out["attempts"].append(b["attempts"])
            out["answers"].append(b["answers"])
            out["failures"].append(b["failures"])
            out["jitterMean"].append(round(sum(b["jit"]) / len(b["jit"]), 3) if b["jit"] else None)
            out["jitterMax"].append(round(b["jit_max"], 3) if b["jit"] else None)
            expected = b["rx"] + b["lost"]
            loss = 100.0 * b["lost"] / expected if expected else (max(b["loss"]) if b["loss"] else 0.0)
            out["lossPct"].append(round(loss, 3))
        out["mos"].append(mos_by_second.get(sec - t0))
    return out


def _mos_by_second(calls: list[dict[str, Any]], t0: int) -> dict[int, float]:
    acc: dict[int, list[float]] = defaultdict(list)
    for c in calls:
        end = parse_iso(c.get("endedAt"))
        if end is None or c.get("outcome") != "SUCCESS" or _num(c.get("mos")) <= 0:
            continue
        acc[int(end.timestamp()) - t0].append(_num(c.get("mos")))
    return {k: round(sum(v) / len(v), 3) for k, v in acc.items()}


def series_from_calls(calls: list[dict[str, Any]]) -> dict[str, list] | None:
    """Per-second series derived from per-call measurements: a call is an attempt in the second
    it started, an answer in the second its setup completed, active from answer to end, a failure
    in the second it ended unsuccessfully; jitter, loss and MOS of a second are those of the calls
    active in it (each call's whole-call values)."""
    spans = []
    for c in calls:
        start, end = parse_iso(c.get("startedAt")), parse_iso(c.get("endedAt"))
        if start is None:
            continue
        end = end or start
        ok = c.get("outcome") == "SUCCESS"
        answer = start.timestamp() + _num(c.get("setupTimeMs")) / 1000.0 if ok else None
        spans.append((start.timestamp(), answer, max(end.timestamp(), start.timestamp()), ok, c))
    if not spans:
        return None
    t0 = int(min(s[0] for s in spans))
    t1 = min(int(max(s[2] for s in spans)), t0 + MAX_SERIES_SECONDS)
    n = t1 - t0 + 1
    active = [0] * n
    attempts, answers, failures = [0] * n, [0] * n, [0] * n
    jit: list[list[float]] = [[] for _ in range(n)]
    loss: list[list[float]] = [[] for _ in range(n)]
    mos: list[list[float]] = [[] for _ in range(n)]

    def idx(t: float) -> int:
        return min(max(int(t) - t0, 0), n - 1)

    for start, answer, end, ok, c in spans:
        attempts[idx(start)] += 1
        if not ok:
            failures[idx(end)] += 1
            continue
        answers[idx(answer)] += 1
        for i in range(idx(answer), idx(end) + 1):
            active[i] += 1
            if c.get("jitterMs") is not None:  # not measured: left out, not a 0
                jit[i].append(_num(c.get("jitterMs")))
            if c.get("lossPct") is not None:
                loss[i].append(_num(c.get("lossPct")))
            if _num(c.get("mos")) > 0:
                mos[i].append(_num(c.get("mos")))

    def mean(xs: list[float]) -> float | None:
        return round(sum(xs) / len(xs), 3) if xs else None

    return {"t": list(range(n)), "active": active, "attempts": attempts, "answers": answers, "failures": failures,
            "jitterMean": [mean(x) for x in jit], "jitterMax": [round(max(x), 3) if x else None for x in jit],
            "lossPct": [mean(x) for x in loss], "mos": [mean(x) for x in mos]}


def _histogram(summary: dict[str, Any], key: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted((summary.get(key) or {}).items(), key=lambda kv: str(kv[0]))}


def build(run: dict[str, Any], assertions: list[dict[str, Any]] | None,
          seconds: list[dict[str, Any]] | None, table: dict[str, Any] | None = None,
          failed: list[dict[str, Any]] | None = None, failed_total: int = 0,
          sample: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The template's context: summary figures, assertion verdicts, series, SIP-code and outcome
    histograms (from the run's summary), one page of calls (`table`: {"calls", "total", "nextUrl",
    "firstUrl", "outcome", "sort", "sorts", "outcomes"}), the failed calls whose ladders are shown,
    and `sample` (every call of a small run, for charts when there are no per-second statistics)."""
    summary = run.get("summary") or {}
    counted = run.get("recorded") or summary  # the recorded calls' figures when the runs service has them
    calls = sorted(sample or [], key=lambda c: (_num(c.get("step")), _num(c.get("action")), _num(c.get("index"))))
    series = series_from_seconds(seconds or [], calls) if seconds else None
    source = "from the media engine's per-second statistics"
    if series is None:
        series = series_from_calls(calls)
        source = "derived from the per-call measurements"
    codes = _histogram(counted, "sipCodes") or _histogram(summary, "sipCodes")
    outcomes = _histogram(counted, "outcomes") or _histogram(summary, "outcomes")
    started, stopped = parse_iso(run.get("startedAt")), parse_iso(run.get("stoppedAt"))
    duration_s = (stopped - started).total_seconds() if started and stopped else None
    verdicts = evaluate_assertions(assertions, summary) if assertions is not None else []
    table = {"calls": [], "total": 0, "nextUrl": None, "firstUrl": None, "outcome": "", "sort": "index",
             "outcomeUrls": {"": "?"}, "sortUrls": {k: f"?sort={k}" for k in TABLE_SORTS}, **(table or {})}
    return {
        "run": run,
        "status": run.get("status", ""),
        "finished": run.get("status") in TERMINAL,
        "passed": bool(run.get("passed")) and run.get("status") == "COMPLETED",
        "summary": summary,
        "duration_s": duration_s,
        "assertions": verdicts,
        "table": table,
        "calls": table["calls"],
        "calls_total": table["total"],
        "failed_calls": (failed or [])[:MAX_LADDERS],
        "failed_total": max(failed_total, len(failed or [])),
        "outcomes": outcomes,
        "sip_codes": codes,
        "series": series,
        "series_source": source,
        "chart_data": {
            "series": series,
            "sipCodes": codes,
        },
    }
