"""What every aggregate of the runs service shares: ownership by account and mode, and the checks of
fields every resource carries (mode, metadata)."""

from __future__ import annotations

from callgauge_runs.domain.errors import ValidationCollector


def owned(state, account_id: str, mode: str) -> bool:
    """The aggregate exists, is not deleted and belongs to this account and mode."""
    return (state is not None and not getattr(state, "deleted", False) and state.account_id == account_id
            and state.mode == (mode or "live"))


def check_mode(mode: str, v: ValidationCollector) -> None:
    if mode not in ("live", "test"):
        v.add(["mode"], "live or test")


def validate_metadata(md: dict[str, str], v: ValidationCollector) -> None:
    if len(md) > 50:
        v.add(["metadata"], "at most 50 keys")
    for k, val in md.items():
        if not k or len(k) > 40:
            v.add(["metadata", k], "keys are 1 to 40 characters")
        if len(val) > 500:
            v.add(["metadata", k], "values are at most 500 characters")
