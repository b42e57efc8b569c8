"""Benchmark: provider splits (FOCUS 1.3 Allocated* rows) cost the tree and the overview almost nothing.

Two copies of a demo cache: one as built, one where about 20% of the rows become provider-split rows (their
resource stays the host, AllocatedResourceId names one of four workloads on it, AllocatedTags gives the
workload a team and a `workload` tag), made with SQL (the table rewritten in its stored order) and rebuilt as an
import would (keys, resources, effective tags, the shared pools' marks, the summary table). The same expansions
and the overview run on both, alternately (three hierarchies: team › subscription › resource group › resource;
team › workload, a tag only the split cache has; team › env › resource, a tag both have); the ratio is split /
plain p95 (`cpu_ratio`: of the median process CPU times, `median_ratio`: of the median wall times; both steadier
on a busy machine). Target (issue 19): within 1.2x at 10M rows.
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

REPEATS = 40  # a p95 of 20 samples is one slow sample on a loaded machine
LIMIT = 200  # children per expansion, as the tree screen asks for
# (hierarchy, first level timed, what the split and plain caches compare at its tag level). `env` is a tag both
# caches hold (only the split rows' workloads lack it): the like-for-like cost of split rows on a tag level. The
# plain cache has no `workload` tag at all, so there the workload level's tag join is empty: real work vs none.
# The third hierarchy's level 0 is the first's: not timed twice.
HIERARCHIES = (
    (("tag:team", "subscription", "resource-group", "resource"), 0, None),
    (("tag:team", "tag:workload", "resource"), 0,
     "tag:workload: the split cache's workloads have the tag, no resource of the plain cache has it (empty join)"),
    (("tag:team", "tag:env", "resource"), 1, "tag:env: a tag both caches hold (like for like)"),
)
SPLIT_SHARE = 5  # one resource in five becomes a host whose rows are split


def make_split_rows(cur: duckdb.DuckDBPyConnection) -> int:
    """Turn the rows of one resource in SPLIT_SHARE into rows a provider split to four workloads per host.

    The table is rewritten whole, in its stored order, rather than UPDATEd: an UPDATE of a MAP column deletes
    and re-appends the rows, leaving a fifth of the table deleted in place and appended out of date order
    (slower scans, no min/max from statistics). An import writes none of that, so neither may the bench. (The
    table has no constraints or defaults a CREATE TABLE AS could drop; a plain scan keeps its row order.)
    """
    split = f"ResourceId IS NOT NULL AND hash(ResourceId) % {SPLIT_SHARE} = 0"
    workload = "'w' || (hash(x_ChargeDate, ChargePeriodStart) % 4)"
    cur.execute(
        f"""
        CREATE OR REPLACE TABLE charges AS
        WITH teams AS (SELECT list(DISTINCT tag_value ORDER BY tag_value) AS names
                       FROM resource_tags WHERE tag_key = 'team')
        SELECT c.* REPLACE (
            CASE WHEN {split} THEN ResourceId || '/workloads/' || {workload} ELSE AllocatedResourceId END
                AS AllocatedResourceId,
            CASE WHEN {split} THEN {workload} || '-' || regexp_extract(ResourceId, '[^/]+$')
                 ELSE AllocatedResourceName END AS AllocatedResourceName,
            CASE WHEN {split} THEN 'proportional' ELSE AllocatedMethodId END AS AllocatedMethodId,
            CASE WHEN NOT ({split}) THEN AllocatedTags
                 WHEN hash(ResourceId) % 7 = 0 THEN MAP {{'workload': {workload}}}
                 ELSE MAP {{'team': teams.names[CAST(1 + hash(ResourceId, 'team') % 12 AS BIGINT)],
                            'workload': {workload}}} END AS AllocatedTags,
            CASE WHEN {split} THEN NULL ELSE x_ResourceKey END AS x_ResourceKey
        )
        FROM charges c, teams
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


def _paired_p95(split: Callable[[], Any], plain: Callable[[], Any]) -> tuple[float, float, float, float]:
    """p95 of both, run alternately so a busy machine slows both alike and the ratio stays fair; the ratio of
    their median process CPU times (DuckDB's threads included), which other jobs on the machine hardly move; and
    the ratio of their median wall times (a p95 of 20 samples is one slow sample on a loaded machine)."""
    split(), plain()
    split_samples: list[float] = []
    plain_samples: list[float] = []
    split_cpu: list[float] = []
    plain_cpu: list[float] = []
    for _ in range(REPEATS):
        for fn, samples, cpu in ((split, split_samples, split_cpu), (plain, plain_samples, plain_cpu)):
            started = time.process_time()
            samples.append(_timed(fn))
            cpu.append(time.process_time() - started)
    cpu_ratio = statistics.median(split_cpu) / statistics.median(plain_cpu) if statistics.median(plain_cpu) else 0.0
    median_ratio = statistics.median(split_samples) / statistics.median(plain_samples)
    return (statistics.quantiles(split_samples, n=20)[-1], statistics.quantiles(plain_samples, n=20)[-1],
            cpu_ratio, median_ratio)


def _result(name: str, rows: int, split_ms: float, plain_ms: float, cpu_ratio: float,
            median_ratio: float) -> dict[str, Any]:
    # app_ms: the cache with split rows; raw_ms: the same cache without them (the ratio the target is about).
    return {"name": name, "rows": rows, "app_ms": round(split_ms, 2), "raw_ms": round(plain_ms, 2),
            "ratio": round(split_ms / plain_ms, 2) if plain_ms else None, "cpu_ratio": round(cpu_ratio, 2),
            "median_ratio": round(median_ratio, 2)}


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
    for hierarchy, first_timed, compares in HIERARCHIES:
        path: list[tuple[str, str | None]] = []
        for level in range(len(hierarchy)):
            expand = partial(_expand, hierarchy=hierarchy, steps=list(path), period=period, currency=currency,
                             previous=previous)
            if level >= first_timed:
                paired = _paired_p95(partial(expand, s_cur), partial(expand, p_cur))
                label = " > ".join(hierarchy[: level + 1])
                result = _result(f"split/plain: expand level {level} ({label})", rows, *paired)
                if compares is not None and level > 0:
                    result["compares"] = compares
                results.append(result)
            # Drill into the largest allocated child the two caches share, as a user would.
            plain_keys = {n.key for n in expand(p_cur) if n.key is not None and not n.is_other}
            chosen = next((n for n in expand(s_cur) if n.key in plain_keys), None)
            if chosen is None:
                break
            path.append(chosen.step)
    paired = _paired_p95(
        lambda: overview(s_cur, period, "effective", top=10), lambda: overview(p_cur, period, "effective", top=10)
    )
    results.append(_result("split/plain: overview (mtd, every breakdown)", rows, *paired))
    hosts = children(s_cur, ["host", "allocated-resource"], [], period, "effective", currency, limit=LIMIT)
    host = next((n for n in hosts if n.key is not None), None)
    if host is not None:
        samples = [_timed(lambda: children(s_cur, ["host", "allocated-resource"], [host.step], period, "effective",
                                           currency, limit=LIMIT)) for _ in range(REPEATS)]
        results.append({"name": "split: expand host > allocated-resource", "rows": rows,
                        "app_ms": round(statistics.quantiles(samples, n=20)[-1], 2), "raw_ms": None, "ratio": None})
    return results
