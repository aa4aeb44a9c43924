"""A run as a JUnit XML file: one testcase per assertion and one per failed call, so CI systems
show each as its own line. Written with the standard library's ElementTree."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from pathlib import Path

from callgauge_client import AssertionResult, CallMeasurement, Run

_TERMINAL_OK = "COMPLETED"


def _seconds(run: Run) -> float:
    if run.started_at and run.stopped_at:
        return max(0.0, (run.stopped_at - run.started_at).total_seconds())
    return 0.0


def call_label(c) -> str:
    return f"call {c.index} (step {c.step}, action {c.action}) to {c.destination or '?'}"


FAILED_OUTCOMES = ("REGISTRATION_FAILED", "CALL_FAILED", "NEGOTIATION_FAILED", "TIMEOUT")
MAX_FAILED_CASES = 1000  # failed calls listed as test cases (a big load run can fail many more)


def build(run: Run, assertions: list[AssertionResult], failed: list[CallMeasurement] = (),
          failed_total: int = 0) -> ET.ElementTree:
    """`failed`: the run's failed calls to list (the first MAX_FAILED_CASES of them, from
    GET …/calls?outcome=…); `failed_total`: how many failed in all."""
    name = run.test_name or run.test_id or "callgauge run"
    suite_cls = "callgauge." + "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")
    cases: list[ET.Element] = []
    for a in assertions:
        case = ET.Element("testcase", classname=f"{suite_cls}.assertions", name=a.name, time="0")
        if not a.passed:
            fail = ET.SubElement(case, "failure", message=a.message, type="AssertionFailed")
            fail.text = a.message
        cases.append(case)
    for c in failed:
        case = ET.Element("testcase", classname=f"{suite_cls}.calls", name=call_label(c),
                          time=f"{(c.duration_ms or 0) / 1000:.3f}")
        msg = f"{c.outcome} {c.sip_code or ''} {c.sip_reason}".strip()
        fail = ET.SubElement(case, "failure", message=msg, type=c.outcome)
        lines = [msg]
        if c.detail:
            lines.append(c.detail)
        setup = "—" if c.setup_time_ms is None else f"{c.setup_time_ms:.1f} ms"  # None: never answered
        lines.append(f"setup {setup}, started {c.started_at}, ended {c.ended_at}")
        ladder = (c.model_extra or {}).get("sipLadder") or (c.model_extra or {}).get("sip_ladder") or []
        for m in ladder if isinstance(ladder, list) else []:
            if isinstance(m, dict):
                lines.append(f"  {m.get('direction', '')} {m.get('summary') or m.get('firstLine') or ''}".rstrip())
        fail.text = "\n".join(lines)
        cases.append(case)
    if failed_total > len(failed):
        case = ET.Element("testcase", classname=f"{suite_cls}.calls", name="more failed calls", time="0")
        more = f"{failed_total - len(failed)} more failed calls are not listed (see the report or `callgauge runs calls`)"
        ET.SubElement(case, "failure", message=more, type="CALL_FAILED").text = more
        cases.append(case)
    if run.status != _TERMINAL_OK and not any(case.find("failure") is not None for case in cases):
        # The run failed for a reason no assertion or call shows (engine error, cancelled): say so.
        case = ET.Element("testcase", classname=f"{suite_cls}.run", name="run", time=f"{_seconds(run):.3f}")
        ET.SubElement(case, "failure", message=run.result_description or run.status, type=run.status).text = (
            run.result_description or run.status)
        cases.append(case)
    failures = sum(1 for case in cases if case.find("failure") is not None)
    root = ET.Element("testsuites", name="callgauge", tests=str(len(cases)), failures=str(failures),
                      errors="0", time=f"{_seconds(run):.3f}")
    suite = ET.SubElement(root, "testsuite", name=name, tests=str(len(cases)), failures=str(failures),
                          errors="0", skipped="0", time=f"{_seconds(run):.3f}",
                          timestamp=(run.started_at or run.created_at).isoformat() if (run.started_at or run.created_at)
                          else "", hostname=socket.gethostname())
    props = ET.SubElement(suite, "properties")
    summary = run.summary or {}
    for key, value in (("run_id", run.id), ("status", run.status), ("passed", str(run.passed).lower()),
                       ("report_url", run.report_url), ("asr", summary.get("asr")),
                       ("mos_mean", summary.get("mosMean")), ("setup_p95_ms", summary.get("setupP95Ms"))):
        if value not in (None, ""):
            ET.SubElement(props, "property", name=key, value=str(value))
    suite.extend(cases)
    out = ET.SubElement(suite, "system-out")
    out.text = run.result_description
    ET.indent(root)
    return ET.ElementTree(root)


def write(path: Path, run: Run, assertions: list[AssertionResult], failed: list[CallMeasurement] = (),
          failed_total: int = 0) -> None:
    build(run, assertions, failed, failed_total).write(path, encoding="utf-8", xml_declaration=True)
