"""Recommendations: generators over the cache, ranked by money per month, with dismiss/snooze/note state."""

from finops_tui.recommend.engine import (
    Found,
    RecFilter,
    RunResult,
    dismiss,
    find,
    keep,
    last_results,
    note,
    present,
    refresh,
    restore,
    run_all,
    snooze,
    store_results,
)
from finops_tui.recommend.model import Context, DailyPoint, JumpTarget, Recommendation, Scope, Thresholds

__all__ = [
    "Context",
    "DailyPoint",
    "Found",
    "JumpTarget",
    "RecFilter",
    "Recommendation",
    "RunResult",
    "Scope",
    "Thresholds",
    "dismiss",
    "find",
    "keep",
    "last_results",
    "note",
    "present",
    "refresh",
    "restore",
    "run_all",
    "snooze",
    "store_results",
]
