"""Comparing two runs of a project: the caller's runs as GetRun sees them, compared by the pure
domain/compare.py."""

from __future__ import annotations

from callgauge_runs.domain import compare
from callgauge_runs.domain import run as run_model
from callgauge_runs.handlers.app import RunsApp


async def compare_runs(runs: RunsApp, account_id: str, mode: str, project_id: str, base_run_id: str, run_id: str,
                       tolerances: dict[str, float]
                       ) -> tuple[run_model.Run, run_model.Run, list[compare.MetricDelta]]:
    compare.check_request(base_run_id, run_id, tolerances)
    base = await runs.get_run(account_id, mode, project_id, base_run_id)
    run = await runs.get_run(account_id, mode, project_id, run_id)
    return base, run, compare.compare_runs(base, run, tolerances)
