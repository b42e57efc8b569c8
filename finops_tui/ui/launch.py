"""Entry point from the command line: open the cache, run the app, reopen it on another cache on request."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from finops_tui.config import load_config_or_defaults
from finops_tui.store import Cache, open_cache

CLOSE_ATTEMPTS = 100  # × 20 ms: an interrupted query returns its cursor within milliseconds


def run_explorer(cache_path: Path) -> int:
    """Run the explorer on `cache_path` until the user quits; returns the process exit code.

    Opening errors (locked, too new, unreadable) are UserErrors raised before the app starts, so the
    command line prints them as one line. The welcome screen's demo estate lives in its own file: the
    app then exits with `ReopenCache` and starts again on that file.
    """
    from finops_tui.ui.app import FinopsApp, ReopenCache

    config, config_problem = load_config_or_defaults()  # the explorer starts anyway and says why
    path = cache_path
    while True:
        # Read-only between writes: `report` and other readers work while the explorer is open.
        cache = open_cache(path, shared=True)
        try:
            app = FinopsApp(cache, config=config, config_problem=config_problem, mount_ahead=True)
            result = app.run()
        finally:
            close_when_idle(cache)
        if isinstance(result, ReopenCache):
            path = result.path
            continue
        return app.return_code or 0


def close_when_idle(cache: Cache) -> None:
    """Close the cache once worker threads have returned their cursors.

    Quitting cancels the app's workers, but a thread worker's query only stops when interrupted;
    until its cursor is returned, DuckDB refuses to close the connection ("connection is busy").
    `Cache.close` interrupts the open cursors, so a retry a few milliseconds later succeeds.
    """
    for attempt in range(CLOSE_ATTEMPTS):
        try:
            cache.close()
            return
        except duckdb.Error:
            if attempt == CLOSE_ATTEMPTS - 1:
                raise
            time.sleep(0.02)
