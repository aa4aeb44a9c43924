"""`callgauge demo`'s run, as a user does it through the REST API with the Python client
(callgauge_client): a project, a test that calls the destination, a run, polled until it ends."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from callgauge_client import CallMeasurement, Client, Run

DEMO_TEST: dict[str, Any] = {
    "name": "Echo call with a tone",
    "steps": [{"actions": [{"type": "call", "dial_destination": "", "duration_ms": 5000, "tone_hz": 440,
                            "codec": "PCMU", "setup_timeout_ms": 10000}]}],
    "assertions": [{"metric": "asr", "op": ">=", "value": 1.0}, {"metric": "mos_min", "op": ">=", "value": 4.0}],
}


def demo_test(destination: str) -> dict[str, Any]:
    """DEMO_TEST calling `destination`."""
    action = {**DEMO_TEST["steps"][0]["actions"][0], "dial_destination": destination}
    return {**DEMO_TEST, "steps": [{"actions": [action]}]}


def run_demo(client: Client, destination: str, timeout: float = 120.0,
             out: TextIO = sys.stdout) -> tuple[Run, list[CallMeasurement]]:
    """The run (finished) and its first 100 calls. Each status change is printed to `out`;
    callgauge_client errors (ApiError, TransportError) and TimeoutError propagate."""
    project = client.create_project(f"Demo {time.strftime('%Y-%m-%d %H:%M:%S')}")
    test = client.create_test(project.id, demo_test(destination))
    started = client.start_run(project.id, test.id)
    run_id = started.test_run_id
    print(f"run {run_id}: {started.status}", file=out, flush=True)
    last = [started.status]

    def said(run: Run) -> None:
        if run.status != last[0]:
            print(f"run {run_id}: {run.status}", file=out, flush=True)
            last[0] = run.status

    run = client.wait_for_run(project.id, run_id, timeout=timeout, poll=0.25, on_update=said)
    return run, client.run_calls_page(project.id, run_id, per_page=100).items


def _f(v: float | None, width: int, digits: int, scale: float = 1.0, unit: str = "") -> str:
    """A figure right-aligned in ``width``; "—" when it was not measured (None)."""
    text = "—" if v is None else f"{float(v) / scale:.{digits}f}{unit}"
    return f"{text:>{width}}"


def format_run(run: Run, calls: list[CallMeasurement]) -> str:
    s = run.summary or {}
    asr = s.get("asr")
    lines = [
        f"Run {run.id} — {run.status} ({'passed' if run.passed else 'not passed'})",
        f"  {run.result_description}",
        f"  calls {s.get('callsAnswered', 0)}/{s.get('callsAttempted', 0)} answered, "
        f"ASR {'—' if asr is None else f'{asr:.0%}'}, "
        f"MOS mean {_f(s.get('mosMean'), 0, 2)}, setup p95 {_f(s.get('setupP95Ms'), 0, 1, unit=' ms')}",
        "",
        f"  {'#':>3} {'outcome':<18} {'SIP':>4} {'setup ms':>9} {'PDD ms':>7} {'codec':<6} {'talk s':>6} "
        f"{'tx pkts':>8} {'rx pkts':>8} {'loss %':>6} {'jitter ms':>9} {'RTT ms':>7} {'MOS':>5}",
    ]
    for c in calls:
        talk = c.duration_ms if c.outcome == "SUCCESS" else None
        lines.append(
            f"  {c.index:>3} {c.outcome:<18} {c.sip_code:>4} {_f(c.setup_time_ms, 9, 1)} "
            f"{_f(c.post_dial_delay_ms, 7, 1)} {c.codec:<6} {_f(talk, 6, 1, 1000)} "
            f"{_f(c.tx_packets, 8, 0)} {_f(c.rx_packets, 8, 0)} {_f(c.loss_pct, 6, 2)} "
            f"{_f(c.jitter_ms, 9, 2)} {_f(c.rtt_ms, 7, 2)} {_f(c.mos, 5, 2)}"
            + (f"  {c.detail}" if c.detail else "")
        )
    return "\n".join(lines)
