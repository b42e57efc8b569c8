"""Benchmark: provider splits (FOCUS 1.3 Allocated* rows) cost the tree and the overview almost nothing.

Two copies of a demo cache: one as built, one where about 20% of the rows become provider-split rows (their
resource stays the host, AllocatedResourceId names one of four workloads on it, AllocatedTags gives the
workload a team and a `workload` tag), made with SQL and rebuilt as an import would (keys, resources,
effective tags). The same expansions and the overview run on both, alternately; the ratio is split / plain.
Target (issue 19): within 1.2x at 10M rows.
"""

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

from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.basis.metrics import currencies
from finops_tui.basis.periods import Period, resolve_period
from finops_tui.report.overview import overview
from finops_tui.report.tree import Node, children
from finops_tui.store import open_cache

REPEATS = 20
LIMIT = 200  # children per expansion, as the tree screen asks for
HIERARCHIES = (("tag:team", "subscription", "resource-group", "resource"), ("tag:team", "tag:workload", "resource"))
SPLIT_SHARE = 5  # one resource in five becomes a host whose rows are split


def make_split_rows(cur: duckdb.DuckDBPyConnection) -> int:
    """Turn the rows of one resource in SPLIT_SHARE into rows a provider split to four workloads per host."""
    cur.execute(
        f"""
        UPDATE charges SET
            AllocatedResourceId = ResourceId || '/workloads/w' || (hash(x_ChargeDate, ChargePeriodStart) % 4),
            AllocatedResourceName = 'w' || (hash(x_ChargeDate, ChargePeriodStart) % 4) || '-'
                                    || regexp_extract(ResourceId, '[^/]+$'),
            AllocatedMethodId = 'proportional',
            AllocatedTags = CASE WHEN hash(ResourceId) % 7 = 0
                                 THEN MAP {{'workload': 'w' || (hash(x_ChargeDate, ChargePeriodStart) % 4)}}
                                 ELSE MAP {{'team': (SELECT list(DISTINCT tag_value ORDER BY tag_value)
                                                     FROM resource_tags WHERE tag_key = 'team')
                                                        [CAST(1 + hash(ResourceId, 'team') % 12 AS BIGINT)],
                                            'workload': 'w' || (hash(x_ChargeDate, ChargePeriodStart) % 4)}} END,
            x_ResourceKey = NULL
        WHERE ResourceId IS NOT NULL AND hash(ResourceId) % {SPLIT_SHARE} = 0
        """
    )
    row = cur.execute("SELECT count(*) FILTER (WHERE AllocatedResourceId IS NOT NULL) FROM charges").fetchone()
    assert row is not None
    refresh_derived(cur, TagPolicy())  # keys of the owning resources, resources, effective tags: as an import does
    return int(row[0])


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _paired_p95(split: Callable[[], Any], plain: Callable[[], Any]) -> tuple[float, float]:
    """p95 of both, run alternately so a busy machine slows both alike and the ratio stays fair."""
    split(), plain()
    split_samples, plain_samples = [], []
    for _ in range(REPEATS):
        split_samples.append(_timed(split))
        plain_samples.append(_timed(plain))
    return statistics.quantiles(split_samples, n=20)[-1], statistics.quantiles(plain_samples, n=20)[-1]


def _result(name: str, rows: int, split_ms: float, plain_ms: float) -> dict[str, Any]:
    # app_ms: the cache with split rows; raw_ms: the same cache without them (the ratio the target is about).
    return {"name": name, "rows": rows, "app_ms": round(split_ms, 2), "raw_ms": round(plain_ms, 2),
            "ratio": round(split_ms / plain_ms, 2) if plain_ms else None}


def run(cache: Path) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as scratch:
        plain_path, split_path = Path(scratch) / "plain.duckdb", Path(scratch) / "split.duckdb"
        shutil.copyfile(cache, plain_path)
        shutil.copyfile(cache, split_path)
        started = time.perf_counter()
        with open_cache(split_path) as store, store.write() as cur:
            split_rows = make_split_rows(cur)
        setup_ms = (time.perf_counter() - started) * 1000
        with open_cache(plain_path, read_only=True) as plain, open_cache(split_path, read_only=True) as split, \
                plain.cursor() as p_cur, split.cursor() as s_cur:
            return _measure(p_cur, s_cur, split_rows, setup_ms)


def _expand(cur: duckdb.DuckDBPyConnection, *, hierarchy: tuple[str, ...], steps: list[tuple[str, str | None]],
            period: Period, currency: str, previous: Period) -> list[Node]:
    return children(cur, hierarchy, steps, period, "effective", currency, previous=previous, limit=LIMIT)


def _measure(
    p_cur: duckdb.DuckDBPyConnection, s_cur: duckdb.DuckDBPyConnection, split_rows: int, setup_ms: float
) -> list[dict[str, Any]]:
    row = p_cur.execute("SELECT count(*) FROM charges").fetchone()
    rows = int(row[0]) if row else 0
    results = [{"name": f"make {split_rows:,} split rows ({split_rows / max(rows, 1):.0%}) + rebuild tags",
                "rows": rows, "app_ms": round(setup_ms, 1), "raw_ms": None, "ratio": None}]
    period, _ = resolve_period(p_cur, "mtd")
    previous = period.previous()
    currency = (currencies(p_cur, period) or ["USD"])[0]
    for hierarchy in HIERARCHIES:
        path: list[tuple[str, str | None]] = []
        for level in range(len(hierarchy)):
            expand = partial(_expand, hierarchy=hierarchy, steps=list(path), period=period, currency=currency,
                             previous=previous)
            split_ms, plain_ms = _paired_p95(partial(expand, s_cur), partial(expand, p_cur))
            label = " > ".join(hierarchy[: level + 1])
            results.append(_result(f"split/plain: expand level {level} ({label})", rows, split_ms, plain_ms))
            # Drill into the largest allocated child the two caches share, as a user would.
            plain_keys = {n.key for n in expand(p_cur) if n.key is not None and not n.is_other}
            chosen = next((n for n in expand(s_cur) if n.key in plain_keys), None)
            if chosen is None:
                break
            path.append(chosen.step)
    split_ms, plain_ms = _paired_p95(
        lambda: overview(s_cur, period, "effective", top=10), lambda: overview(p_cur, period, "effective", top=10)
    )
    results.append(_result("split/plain: overview (mtd, every breakdown)", rows, split_ms, plain_ms))
    hosts = children(s_cur, ["host", "allocated-resource"], [], period, "effective", currency, limit=LIMIT)
    host = next((n for n in hosts if n.key is not None), None)
    if host is not None:
        samples = [_timed(lambda: children(s_cur, ["host", "allocated-resource"], [host.step], period, "effective",
                                           currency, limit=LIMIT)) for _ in range(REPEATS)]
        results.append({"name": "split: expand host > allocated-resource", "rows": rows,
                        "app_ms": round(statistics.quantiles(samples, n=20)[-1], 2), "raw_ms": None, "ratio": None})
    return results
