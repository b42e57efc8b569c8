"""Benchmark: allocation tree expansions and tagging against raw DuckDB running the same SQL."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import duckdb

from finops_tui.allocation.effective import TagPolicy
from finops_tui.allocation.journal import apply_tags, undo
from finops_tui.allocation.queue import unallocated_queue
from finops_tui.basis.metrics import currencies
from finops_tui.basis.periods import resolve_period
from finops_tui.report.tree import children, expansion_sql, resolve_hierarchy
from finops_tui.store import open_cache

REPEATS = 30
LIMIT = 200  # children per expansion, as the tree screen asks for (the tail folds into one row)
HIERARCHY = ("tag:team", "subscription", "resource-group", "resource")
OTHER_HIERARCHIES = (("service", "region", "resource"), ("subscription", "tag:env", "resource-group"))


def _p95(fn: Callable[[], Any], repeats: int = REPEATS) -> float:
    fn()  # warm the buffer cache, as a user's second look would
    samples = [_timed(fn) for _ in range(repeats)]
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 2 else samples[0]


def _paired_p95(app: Callable[[], Any], raw: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, float]:
    """p95 of both, run alternately so a busy machine slows both alike and the ratio stays fair."""
    app(), raw()
    app_samples, raw_samples = [], []
    for _ in range(repeats):
        app_samples.append(_timed(app))
        raw_samples.append(_timed(raw))
    return statistics.quantiles(app_samples, n=20)[-1], statistics.quantiles(raw_samples, n=20)[-1]


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _fetch(cur: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> Any:
    return cur.execute(sql, params).fetchall()


def _result(name: str, rows: int, app_ms: float, raw_ms: float | None) -> dict[str, Any]:
    return {"name": name, "rows": rows, "app_ms": round(app_ms, 2), "raw_ms": round(raw_ms, 2) if raw_ms else None,
            "ratio": round(app_ms / raw_ms, 2) if raw_ms else None}


def run(cache: Path) -> list[dict[str, Any]]:
    # Tagging writes to the cache: work on a copy so the benchmark leaves the caller's file as it was.
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "bench.duckdb"
        shutil.copyfile(cache, copy)
        return _run(copy)


def _run(cache: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with open_cache(cache) as store:
        with store.cursor() as cur:
            row = cur.execute("SELECT count(*) FROM charges").fetchone()
            rows = int(row[0]) if row else 0
            period, _ = resolve_period(cur, "mtd")
            previous = period.previous()
            currency = (currencies(cur, period) or ["USD"])[0]  # the main currency; others are separate trees
            for hierarchy in (HIERARCHY, *OTHER_HIERARCHIES):
                dims = resolve_hierarchy(hierarchy)
                path: list[tuple[str, str | None]] = []
                for level, dim in enumerate(dims):
                    app = partial(children, cur, dims, list(path), period, "effective", currency, previous=previous,
                                  limit=LIMIT)
                    sql, params = expansion_sql(
                        dim, [(d, k) for d, (_, k) in zip(dims, path, strict=False)], "effective", period,
                        previous, currency, limit=LIMIT,
                    )
                    raw = partial(_fetch, cur, sql, params)
                    nodes = app()
                    label = " > ".join(hierarchy[: level + 1])
                    folded = nodes[-1].folded_count if nodes and nodes[-1].is_other else 0
                    shown = f"{len(nodes)} children" + (f", {folded} folded" if folded else "")
                    results.append(_result(f"expand level {level} ({label}, {shown})", rows,
                                           *_paired_p95(app, raw)))
                    # Drill into the largest allocated child, as a user would.
                    chosen = next((n for n in nodes if not n.is_unallocated and not n.is_other and n.key is not None),
                                  None)
                    if chosen is None:
                        break
                    path.append(chosen.step)
                if hierarchy[0].startswith("tag:"):
                    dims = resolve_hierarchy(hierarchy)
                    unalloc: list[tuple[str, str | None]] = [(hierarchy[0], None)]
                    sql, params = expansion_sql(dims[1], [(dims[0], None)], "effective", period, previous, currency)
                    results.append(_result(
                        f"expand (unallocated) > {hierarchy[1]}", rows,
                        *_paired_p95(partial(children, cur, dims, unalloc, period, "effective", currency,
                                             previous=previous, limit=LIMIT), partial(_fetch, cur, sql, params)),
                    ))
            # Every resource with its sparkline (no limit): what an export of the whole level costs.
            dims = resolve_hierarchy(["resource"])
            sql, params = expansion_sql(dims[0], [], "effective", period, previous, currency)
            results.append(_result(
                "expand resource level, no limit (every resource + daily)", rows,
                *_paired_p95(partial(children, cur, dims, [], period, "effective", currency, previous=previous),
                             partial(_fetch, cur, sql, params), 5),
            ))
            # Switching hierarchy = expanding the new root.
            hierarchies = [HIERARCHY, *OTHER_HIERARCHIES]
            state = {"i": 0}

            def switch() -> Any:
                state["i"] = (state["i"] + 1) % len(hierarchies)
                return children(cur, hierarchies[state["i"]], [], period, "effective", currency, previous=previous,
                                limit=LIMIT)

            results.append(_result("switch hierarchy (new root)", rows, _p95(switch), None))
            results.append(_result(
                "unallocated queue tag:team (top 500)", rows,
                _p95(lambda: unallocated_queue(cur, "team", period, "effective", currency, limit=500), 5), None,
            ))
            untagged = [r[0] for r in cur.execute(
                "SELECT ResourceId FROM resources WHERE ResourceId NOT IN "
                "(SELECT ResourceId FROM resource_tags WHERE tag_key = 'team') ORDER BY ResourceId LIMIT 1000"
            ).fetchall()]
        # Tag 1,000 resources, then repaint the top level: the figure a user waits for after pressing enter.
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            apply_tags(store, TagPolicy(), untagged, "team", "bench-team")
            with store.cursor() as cur:
                children(cur, HIERARCHY, [], period, "effective", currency, previous=previous, limit=LIMIT)
            samples.append((time.perf_counter() - start) * 1000)
            undo(store, TagPolicy())
        results.append(_result(f"tag {len(untagged)} resources + recompute top level", rows, max(samples), None))
    return results


if __name__ == "__main__":
    import sys

    for result in run(Path(sys.argv[1])):
        print(result)
