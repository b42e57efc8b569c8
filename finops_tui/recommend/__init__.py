"""Recommendations: generators over the cache, ranked by money per month, with dismiss/snooze/note state."""

from finops_tui.recommend.engine import (
    RecFilter,
    RunResult,
    dismiss,
    last_results,
    note,
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
    "JumpTarget",
    "RecFilter",
    "Recommendation",
    "RunResult",
    "Scope",
    "Thresholds",
    "dismiss",
    "last_results",
    "note",
    "refresh",
    "restore",
    "run_all",
    "snooze",
    "store_results",
]
