"""Benchmark: the commitments read models against raw DuckDB running the same aggregations, and screen 5's first
paint (key 5 pressed → KPIs, table and detail painted), as shipped."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import duckdb
from textual.worker import WorkerCancelled

from finops_tui.basis.periods import resolve_period
from finops_tui.report.commitments import commitments
from finops_tui.store import open_cache

REPEATS = 7
PAINTS = 5


def _p50(fn: Callable[[], Any]) -> float:
    fn()  # warm the buffer cache, as a user's second look would
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


# The same aggregations the read model runs, written plainly: per commitment, per day, covered resources, and
# the eligible usage of the services and regions commitments applied to.
_RAW = """
SELECT BillingCurrency, CommitmentDiscountId, max(CommitmentDiscountName), max(CommitmentDiscountType),
       sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Used'),
       sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Unused'),
       sum(BilledCost) FILTER (WHERE ChargeCategory = 'Purchase'),
       sum(ListCost - EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Used'),
       sum(ListCost - ContractedCost) FILTER (WHERE CommitmentDiscountStatus = 'Used'),
       count(DISTINCT ResourceId) FILTER (WHERE CommitmentDiscountStatus = 'Used')
FROM charges WHERE x_ChargeDate >= $s AND x_ChargeDate < $e AND CommitmentDiscountId IS NOT NULL GROUP BY 1, 2;
SELECT BillingCurrency, CommitmentDiscountId, x_ChargeDate,
       sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Used'),
       sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Unused')
FROM charges WHERE x_ChargeDate >= $s AND x_ChargeDate < $e AND CommitmentDiscountStatus IN ('Used', 'Unused')
GROUP BY 1, 2, 3;
SELECT BillingCurrency, CommitmentDiscountId, ResourceId, sum(EffectiveCost) AS used
FROM charges WHERE x_ChargeDate >= $s AND x_ChargeDate < $e AND CommitmentDiscountStatus = 'Used'
GROUP BY 1, 2, 3 QUALIFY row_number() OVER (PARTITION BY 1, 2 ORDER BY used DESC) <= 20;
SELECT c.BillingCurrency, sum(c.ListCost) FILTER (WHERE c.CommitmentDiscountStatus = 'Used'), sum(c.ListCost),
       sum(c.EffectiveCost)
FROM charges c JOIN (SELECT DISTINCT BillingCurrency, ServiceName, RegionId FROM charges
                     WHERE x_ChargeDate >= $s AND x_ChargeDate < $e AND CommitmentDiscountStatus = 'Used') a
  ON a.BillingCurrency = c.BillingCurrency AND a.ServiceName = c.ServiceName AND a.RegionId = c.RegionId
WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e AND c.ChargeCategory = 'Usage'
  AND coalesce(c.CommitmentDiscountStatus, '') <> 'Unused' GROUP BY 1
"""


def _raw(cur: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> None:
    for statement in _RAW.split(";"):
        cur.execute(statement, params).fetchall()


async def _first_paints(cache: Path) -> list[float]:
    """Milliseconds from key 5 to the commitments painted, on a fresh app each time (the view's first open)."""
    from finops_tui.config import Config
    from finops_tui.ui import app as app_module
    from finops_tui.ui.app import FinopsApp
    from finops_tui.ui.launch import close_when_idle
    from finops_tui.ui.screens.commitments import CommitmentsScreen

    painted = asyncio.Event()
    marks: dict[str, float] = {}

    class TimedCommitments(CommitmentsScreen):
        def _show_all(self) -> None:
            super()._show_all()
            self.call_after_refresh(self._painted)

        def _painted(self) -> None:
            marks["painted"] = time.perf_counter()
            painted.set()

    samples = []
    for _ in range(PAINTS):
        app_module.VIEW_SCREENS["commitments"] = TimedCommitments
        store = open_cache(cache, shared=True)
        try:
            app = FinopsApp(store, config=Config())
            async with app.run_test(size=(160, 48)) as pilot:
                await pilot.pause()
                with suppress(WorkerCancelled):  # the overview's prefetch, stopped by a newer one
                    await app.workers.wait_for_complete()
                await pilot.pause()
                painted.clear()
                marks["pressed"] = time.perf_counter()
                await pilot.press("5")
                await asyncio.wait_for(painted.wait(), 60)
                samples.append((marks["painted"] - marks["pressed"]) * 1000)
        finally:
            close_when_idle(store)  # the app's last workers may still hold a cursor
    app_module.VIEW_SCREENS["commitments"] = CommitmentsScreen
    return samples


def run(cache: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with open_cache(cache, read_only=True) as store, store.cursor() as cur:
        count = cur.execute("SELECT count(*) FROM charges").fetchone()
        rows = int(count[0]) if count else 0
        for spec in ("mtd", "90d"):
            period, _ = resolve_period(cur, spec)
            params = {"s": period.start, "e": period.end}
            app_ms = _p50(lambda period=period: commitments(cur, period))
            raw_ms = _p50(lambda params=params: _raw(cur, params))
            results.append({"name": f"commitments {spec}: read models", "rows": rows, "app_ms": round(app_ms, 2),
                            "raw_ms": round(raw_ms, 2), "ratio": round(app_ms / raw_ms, 2) if raw_ms else None})
    paints = asyncio.run(_first_paints(cache))
    results.append({"name": "commitments: first paint after key 5 (p50)", "rows": rows,
                    "app_ms": round(statistics.median(paints), 1), "raw_ms": None, "ratio": None,
                    "max_ms": round(max(paints), 1)})
    return results


if __name__ == "__main__":
    import sys

    for result in run(Path(sys.argv[1])):
        print(result)
