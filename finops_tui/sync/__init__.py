"""Azure Cost Management → cache: incremental, throttle-aware month windows (headless or in a worker thread)."""

from finops_tui.sync.engine import (
    SyncOptions,
    SyncProgress,
    SyncResult,
    WindowFailure,
    cache_age,
    options_from_config,
    run_sync,
    sync_due,
)

__all__ = [
    "SyncOptions",
    "SyncProgress",
    "SyncResult",
    "WindowFailure",
    "cache_age",
    "options_from_config",
    "run_sync",
    "sync_due",
]
