"""Per-assertion verdicts of a run, from the test's assertions and the run's summary. The runs
service decides pass/fail with the same rule (metric = the summary field of that name); this gives
each assertion its own line for reports and JUnit files."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic.alias_generators import to_camel

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
# Without assertions the runs service requires every call answered.
DEFAULT_ASSERTIONS = ({"metric": "asr", "op": ">=", "value": 1.0},)


@dataclass(frozen=True)
class AssertionResult:
    metric: str
    op: str
    expected: float
    actual: float | None
    passed: bool

    @property
    def name(self) -> str:
        return f"{self.metric} {self.op} {self.expected:g}"

    @property
    def message(self) -> str:
        if self.actual is None:
            return f"{self.name}: no value measured"
        return f"{self.name}: measured {self.actual:.4g} — {'held' if self.passed else 'FAILED'}"


def _metric(summary: Mapping[str, Any], metric: str) -> Any:
    if metric == "acd_s":  # the summary keeps ACD in ms
        ms = _metric(summary, "acd_ms")
        return None if ms is None else float(ms) / 1000.0
    return summary.get(metric, summary.get(to_camel(metric)))


def evaluate_assertions(assertions: list[Mapping[str, Any]] | None,
                        summary: Mapping[str, Any] | None) -> list[AssertionResult]:
    summary = summary or {}
    out = []
    for a in assertions or DEFAULT_ASSERTIONS:
        metric, op, expected = str(a.get("metric", "")), str(a.get("op", "")), float(a.get("value", 0))
        raw = _metric(summary, metric)
        attempted = summary.get("callsAttempted", summary.get("calls_attempted", 0)) or 0
        if raw is None or not attempted or op not in _OPS:
            out.append(AssertionResult(metric, op, expected, None, False))
            continue
        actual = float(raw)
        out.append(AssertionResult(metric, op, expected, actual, bool(_OPS[op](actual, expected))))
    return out
