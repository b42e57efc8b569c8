"""Benchmark: each overview read model against raw DuckDB running the same aggregation."""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from finops_tui.basis.dimensions import dimension
from finops_tui.basis.periods import resolve_period
from finops_tui.report.overview import (
    breakdown,
    currency_totals,
    daily_series,
    month_end_forecast,
    overview,
    untagged_cost,
)
from finops_tui.store import open_cache

REPEATS = 7


def _p50(fn: Callable[[], Any]) -> float:
    fn()  # warm the buffer cache, as a user's second look would
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _period_results(cur: duckdb.DuckDBPyConnection, spec: str, rows: int) -> list[dict[str, Any]]:
    period, fresh = resolve_period(cur, spec)
    prev = period.previous()
    window = {"s": period.start, "e": period.end, "ps": prev.start, "pe": prev.end}
    current = {"s": period.start, "e": period.end}

    def raw(sql: str, params: dict[str, Any] = window) -> Callable[[], Any]:
        return lambda: cur.execute(sql, params).fetchall()

    both = (
        "sum(EffectiveCost) FILTER (WHERE x_ChargeDate >= $s AND x_ChargeDate < $e), "
        "sum(EffectiveCost) FILTER (WHERE x_ChargeDate >= $ps AND x_ChargeDate < $pe)"
    )
    span = "x_ChargeDate >= least($s, $ps) AND x_ChargeDate < greatest($e, $pe)"
    scenarios: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("totals", lambda: currency_totals(cur, period, "effective", prev),
         raw(f"SELECT BillingCurrency, {both} FROM charges WHERE {span} GROUP BY 1")),
        ("daily", lambda: daily_series(cur, period, "effective"),
         raw("SELECT BillingCurrency, x_ChargeDate, sum(EffectiveCost) FROM charges "
             "WHERE x_ChargeDate >= $s AND x_ChargeDate < $e GROUP BY 1, 2", current)),
        ("untagged", lambda: untagged_cost(cur, period, "effective", "team"),
         raw("SELECT c.BillingCurrency, sum(c.EffectiveCost) FROM charges c LEFT JOIN resource_tags t "
             "ON t.resource_key = c.x_ResourceKey AND t.tag_key = 'team' WHERE c.x_ChargeDate >= $s "
             "AND c.x_ChargeDate < $e AND t.tag_value IS NULL GROUP BY 1", current)),
        ("forecast", lambda: month_end_forecast(cur, period.last_day, "effective"),
         raw("SELECT BillingCurrency, x_ChargeDate, sum(EffectiveCost) FROM charges "
             "WHERE x_ChargeDate >= least($hs, $ms) AND x_ChargeDate <= $a GROUP BY 1, 2",
             {"hs": period.last_day - dt.timedelta(days=27), "ms": period.last_day.replace(day=1),
              "a": period.last_day})),
    ]
    for name, column in (("service", "ServiceName"), ("subscription", "SubAccountId"),
                         ("resource-group", "x_ResourceGroupName"), ("region", "RegionId"), ("tag:team", None)):
        dim = dimension(name)
        if column is None:
            sql = (f"SELECT t0.tag_value, c.BillingCurrency, {both.replace('EffectiveCost', 'c.EffectiveCost')} "
                   f"FROM charges c{dim.join_sql()} WHERE {span.replace('x_ChargeDate', 'c.x_ChargeDate')} "
                   "GROUP BY 1, 2")
        else:
            sql = f"SELECT {column}, BillingCurrency, {both} FROM charges WHERE {span} GROUP BY 1, 2"
        scenarios.append(
            (f"by {name}", lambda dim=dim: breakdown(cur, dim, period, "effective", previous=prev), raw(sql))
        )
    results = []
    for name, app_fn, raw_fn in scenarios:
        app_ms, raw_ms = _p50(app_fn), _p50(raw_fn)
        results.append({"name": f"overview {spec}: {name}", "rows": rows, "app_ms": round(app_ms, 2),
                        "raw_ms": round(raw_ms, 2), "ratio": round(app_ms / raw_ms, 2) if raw_ms else None})
    whole = _p50(lambda: overview(cur, period, "effective", top=10, fresh=fresh))
    results.append({"name": f"overview {spec}: whole screen (all read models)", "rows": rows,
                    "app_ms": round(whole, 2), "raw_ms": None, "ratio": None})
    return results


def run(cache: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with open_cache(cache) as store, store.cursor() as cur:
        count = cur.execute("SELECT count(*) FROM charges").fetchone()
        rows = int(count[0]) if count else 0
        for spec in ("mtd", "90d"):
            results += _period_results(cur, spec, rows)
    return results


if __name__ == "__main__":
    import sys

    for result in run(Path(sys.argv[1])):
        print(result)
