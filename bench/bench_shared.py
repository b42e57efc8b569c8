"""Benchmark: shared cost pools (five of them): applying them, tree expansions with shared costs on vs off,
one month's chargeback, and the overview with shared costs on."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finops_tui.allocation.rules import Rule
from finops_tui.allocation.shared import Pool, apply_pools, demo_pools
from finops_tui.basis.metrics import currencies
from finops_tui.basis.periods import resolve_period
from finops_tui.report import shared_nodes, shared_tree, tree
from finops_tui.report.chargeback import chargeback
from finops_tui.report.overview import overview
from finops_tui.store import open_cache

REPEATS = 50  # p95 of 50 alternating pairs: 20 left it to the two slowest samples on a busy machine
LIMIT = 200
HIERARCHY = ("tag:team", "subscription", "resource-group", "resource")


def five_pools() -> list[Pool]:
    """The demo's three pools, plus the AKS system node pool (proportional to compute) and untagged dev cost."""
    extra = [
        Pool("aks system", "team", "proportional", Rule(set_tags={}, resource_group="mc_rg-aks-*"),
             basis=Rule(set_tags={}, service="Virtual Machines"), index=4),
        Pool("untagged dev", "team", "even", Rule(set_tags={}, subscription="dev-sandbox"), unallocated=True,
             index=5),
    ]
    return [*demo_pools(), *extra]


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _paired_p95(on: Callable[[], Any], off: Callable[[], Any]) -> tuple[float, float]:
    """p95 of both, run alternately so a busy machine slows both alike."""
    on(), off()
    on_ms, off_ms = [], []
    for _ in range(REPEATS):
        on_ms.append(_timed(on))
        off_ms.append(_timed(off))
    return statistics.quantiles(on_ms, n=20)[-1], statistics.quantiles(off_ms, n=20)[-1]


def _result(name: str, rows: int, app_ms: float, raw_ms: float | None) -> dict[str, Any]:
    return {"name": name, "rows": rows, "app_ms": round(app_ms, 2), "raw_ms": round(raw_ms, 2) if raw_ms else None,
            "ratio": round(app_ms / raw_ms, 2) if raw_ms else None}


def run(cache: Path) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as scratch:  # applying pools writes: leave the caller's file alone
        copy = Path(scratch) / "bench.duckdb"
        shutil.copyfile(cache, copy)
        return _run(copy)


def _run(path: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with open_cache(path) as store:
        with store.cursor() as cur:
            row = cur.execute("SELECT count(*) FROM charges").fetchone()
            rows = int(row[0]) if row else 0
        started = time.perf_counter()
        apply_pools(store, five_pools())
        results.append(_result("shared: apply five pools (marker + splits, one write)", rows,
                               (time.perf_counter() - started) * 1000, None))
        with store.cursor() as cur:
            period, _ = resolve_period(cur, "mtd")
            last_month, _ = resolve_period(cur, "last-month")
            currency = (currencies(cur, period) or ["USD"])[0]
            top_off = tree.children(cur, HIERARCHY, [], period, "effective", currency, limit=LIMIT)
            team = next(n for n in top_off if n.key == "payments") if any(
                n.key == "payments" for n in top_off) else top_off[0]
            for name, path in (("top level", []), ("a team", [team.step])):
                on_ms, off_ms = _paired_p95(
                    lambda p=path: shared_tree.children(cur, HIERARCHY, p, period, "effective", currency, limit=LIMIT),
                    lambda p=path: tree.children(cur, HIERARCHY, p, period, "effective", currency, limit=LIMIT),
                )
                results.append(_result(f"shared: tree expansion p95, {name}, on vs off (ratio = on/off)", rows,
                                       on_ms, off_ms))

            def cold(p: list[Any]) -> None:  # the first expansion after a write reads this version of the splits
                shared_nodes.MEMO.clear()
                shared_tree.children(cur, HIERARCHY, p, period, "effective", currency, limit=LIMIT)

            on_ms, off_ms = _paired_p95(
                lambda: cold([team.step]),
                lambda: tree.children(cur, HIERARCHY, [team.step], period, "effective", currency, limit=LIMIT),
            )
            results.append(_result("shared: tree expansion p95, a team, first after a write, on vs off", rows,
                                   on_ms, off_ms))
            month = last_month.start.strftime("%Y-%m")
            samples = [_timed(lambda: chargeback(cur, month, "effective", "team")) for _ in range(5)]
            results.append(_result(f"shared: chargeback {month} (median)", rows, statistics.median(samples), None))
            on_ms, off_ms = _paired_p95(
                lambda: overview(cur, period, "effective", shared=True),
                lambda: overview(cur, period, "effective"),
            )
            results.append(_result("shared: overview p95, shared on vs off (ratio = on/off)", rows, on_ms, off_ms))
    return results
