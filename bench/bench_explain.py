"""Benchmark: explaining a change month over month (whole cache, a team, a subscription, a resource) against raw
DuckDB running the same aggregation (the read model's one query, without splitting it into buckets)."""

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

REPEATS = 5
TARGETS_MS = {"whole cache": 1500, "team": 500, "subscription": 500, "resource": 100}  # at 10M rows


def _p50(fn: Callable[[], Any]) -> float:
    fn()  # warm the buffer cache, as a user's second look would
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


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
            app_ms = _p50(lambda scope=scope: explain(cur, scope, period, vs, "effective"))
            raw_ms = _p50(lambda sql=sql, params=params: cur.execute(sql, params).fetchall())
            results.append({
                "name": f"explain last month vs the one before: {name}", "rows": rows, "app_ms": round(app_ms, 2),
                "raw_ms": round(raw_ms, 2), "ratio": round(app_ms / raw_ms, 2) if raw_ms else None,
                "target_ms_at_10M": TARGETS_MS[name],
            })
    return results


if __name__ == "__main__":
    import sys

    for result in run(Path(sys.argv[1])):
        print(result)
