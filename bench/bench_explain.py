"""Benchmark: explaining a change month over month (whole cache, a team, a subscription, a resource) against raw
DuckDB running the same aggregation: `line_query`, the scan of both periods grouped per currency, class, resource
and meter that the read model's one statement starts from.

"raw" consumes that aggregation inside DuckDB (a hash over every column, so no aggregate is pruned and no Python
object is made); "raw fetchall" is the definition of earlier runs, the same rows fetched into Python, which costs
~26k rows of Decimals at 10M and so flattered the ratio once the app stopped fetching lines. All three are timed
alternately, so a machine shared with other jobs slows them alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finops_tui.basis.periods import resolve_period
from finops_tui.ingest.demo import PLANTED
from finops_tui.report.explain import ScopePart, explain, line_query
from finops_tui.store import open_cache

REPEATS = 7
TARGETS_MS = {"whole cache": 1500, "team": 500, "subscription": 500, "resource": 100}  # at 10M rows


def _ms(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _p50_alternating(fns: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Median time of each function, run in turn (forwards one round, backwards the next)."""
    for fn in fns.values():
        fn()  # warm the buffer cache, as a user's second look would
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(REPEATS):
        order = list(fns.items())
        for name, fn in order if round_ % 2 == 0 else reversed(order):
            samples[name].append(_ms(fn))
    return {name: statistics.median(values) for name, values in samples.items()}


def run(cache: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with open_cache(cache, read_only=True) as store, store.cursor() as cur:
        count = cur.execute("SELECT count(*) FROM charges").fetchone()
        rows = int(count[0]) if count else 0
        period, _fresh = resolve_period(cur, "last-month")
        vs = period.previous()
        team = cur.execute(
            "SELECT t.tag_value FROM charges c JOIN resource_tags t ON t.resource_key = c.x_ResourceKey "
            "AND t.tag_key = 'team' WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e "
            "GROUP BY 1 ORDER BY sum(c.EffectiveCost) DESC LIMIT 1",
            {"s": period.start, "e": period.end},
        ).fetchone()
        scopes = {
            "whole cache": [],
            "team": [ScopePart("tag:team", team[0] if team else None, "largest team")],
            "subscription": [ScopePart("subscription", PLANTED.step_subscription, "prod-data")],
            "resource": [ScopePart("resource", PLANTED.new_sku_resource_id, "vm-ml-training-01")],
        }
        for name, scope in scopes.items():
            sql, params = line_query(scope, period, vs, "effective")
            in_duckdb = f"SELECT count(*), sum(hash(COLUMNS(*))) FROM ({sql})"
            ms = _p50_alternating({
                "app": lambda scope=scope: explain(cur, scope, period, vs, "effective"),
                "raw": lambda in_duckdb=in_duckdb, params=params: cur.execute(in_duckdb, params).fetchall(),
                "raw fetchall": lambda sql=sql, params=params: cur.execute(sql, params).fetchall(),
            })
            app_ms, raw_ms, fetchall_ms = ms["app"], ms["raw"], ms["raw fetchall"]
            results.append({
                "name": f"explain last month vs the one before: {name}", "rows": rows, "app_ms": round(app_ms, 2),
                "raw_ms": round(raw_ms, 2), "ratio": round(app_ms / raw_ms, 2) if raw_ms else None,
                "raw_fetchall_ms": round(fetchall_ms, 2),
                "ratio_fetchall": round(app_ms / fetchall_ms, 2) if fetchall_ms else None,
                "target_ms_at_10M": TARGETS_MS[name],
            })
    return results


if __name__ == "__main__":
    import sys

    for result in run(Path(sys.argv[1])):
        print(result)
