"""Benchmark: cold first looks (no result cache, no prefetch) answered from the summary tables vs from `charges`.

Each scenario runs the read models as the screens call them, once reading the summaries (as shipped) and once
inside `summaries.charges_only()` (the figures before the summaries: what the issue measured), alternately so
a busy machine slows both alike. `raw_ms` is the `charges` figure, so `ratio` < 1 is the speed-up. Also: the
summary's build cost (a full rebuild and one month's window settle) and a tag edit on 1,000 resources.

    python bench/run.py --rows 1000000 --only scale         # through the harness (it builds the cache)
    python bench/bench_scale.py bench/out/demo-1000000.duckdb   # one cache the harness built
"""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from finops_tui.allocation.effective import TagPolicy
from finops_tui.allocation.journal import apply_tags, undo
from finops_tui.basis.metrics import currencies
from finops_tui.basis.periods import resolve_period
from finops_tui.report import overview, shared_tree, tree
from finops_tui.store import open_cache, summaries
from finops_tui.store.sources import Window, begin_window, finish_window

REPEATS = 7
LIMIT = 200
HIERARCHY = ("tag:team", "subscription", "resource-group", "resource")
SCREEN_BREAKDOWNS = ("service", "subscription", "resource-group", "region", "tag:team")


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 2 else samples[0]


def _charges(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with summaries.charges_only():
            return fn()
    return run


def _pair(name: str, fns: list[Callable[[], Any]], rows: int, *, stat: str = "median") -> dict[str, Any]:
    """Every fn once per round, summaries and charges alternately; the median (or p95) over rounds and fns."""
    fast: list[float] = []
    slow: list[float] = []
    for fn in fns:  # one untimed pass of each: the buffer cache is warm in both modes, as for a user's second look
        fn()
        _charges(fn)()
    for _ in range(REPEATS):
        for fn in fns:
            fast.append(_timed(fn))
            slow.append(_timed(_charges(fn)))
    pick = _p95 if stat == "p95" else statistics.median
    app, raw = pick(fast), pick(slow)
    return {"name": f"{name} ({stat}; raw = from charges)", "rows": rows, "app_ms": round(app, 1),
            "raw_ms": round(raw, 1), "ratio": round(app / raw, 2) if raw else None}


def _overview_call(cur: duckdb.DuckDBPyConnection, spec: str, metric: str, currency: str) -> Callable[[], Any]:
    period, fresh = resolve_period(cur, spec)
    return lambda: overview.overview(cur, period, metric, currency=currency, fresh=fresh, shared=True,
                                     breakdown_names=SCREEN_BREAKDOWNS, top=10)


def _expansions(cur: duckdb.DuckDBPyConnection, currency: str, shared: bool) -> list[list[Callable[[], Any]]]:
    """Per level of HIERARCHY: calls expanding the top nodes of the level above (the first: the root)."""
    period, _ = resolve_period(cur, "mtd")
    children = shared_tree.children if shared else tree.children
    levels: list[list[Callable[[], Any]]] = []
    paths: list[list[tuple[str, str | None]]] = [[]]
    for depth in range(len(HIERARCHY)):
        calls = [lambda p=p: children(cur, list(HIERARCHY), p, period, "effective", currency, limit=LIMIT)
                 for p in paths]
        levels.append(calls)
        next_paths = []
        for path in paths[:2]:
            nodes = children(cur, list(HIERARCHY), path, period, "effective", currency, limit=LIMIT)
            next_paths += [[*path, n.step] for n in nodes[:3] if not n.is_other and
                           (n.shared is None or n.shared.expandable)]
        paths = next_paths
        if not paths or depth + 1 >= len(HIERARCHY):
            break
    return levels


def _tag_edit(source: Path, currency: str) -> list[dict[str, Any]]:
    """Tag 1,000 resources, then recompute what the screens repaint (team breakdown, tree's top level).

    `raw_ms`: raw DuckDB reading what any exact maintenance of the summary must read once, the edited resources'
    rows of `charges` grouped as the summary is, timed alternately with the edits so a busy machine slows both.
    """
    with tempfile.TemporaryDirectory(dir=source.parent) as scratch:
        path = Path(scratch) / "copy.duckdb"
        shutil.copyfile(source, path)
        with open_cache(path) as cache:
            with cache.cursor() as cur:
                ids = [r[0] for r in cur.execute(
                    "SELECT ResourceId FROM resources ORDER BY ResourceId LIMIT 1000").fetchall()]
                period, _ = resolve_period(cur, "mtd")
            raw_sql = f"""
                SELECT {", ".join(summaries.GROUP_COLUMNS)}, sum(EffectiveCost), sum(BilledCost), count(*)
                FROM charges WHERE x_ResourceKey IN (SELECT resource_key FROM resource_keys
                                                     WHERE ResourceId IN (SELECT unnest(?::VARCHAR[])))
                GROUP BY ALL
            """
            policy = TagPolicy()
            samples = []
            raw = []
            for round_ in range(5):
                started = time.perf_counter()
                apply_tags(cache, policy, ids, "team", f"bench-{round_}", push=False)
                with cache.cursor() as cur:
                    overview.breakdown(cur, tree.dimension("tag:team"), period, "effective", currency=currency)
                    tree.children(cur, list(HIERARCHY), [], period, "effective", currency, limit=LIMIT)
                samples.append((time.perf_counter() - started) * 1000)
                undo(cache, policy)
                with cache.cursor() as cur:
                    started = time.perf_counter()
                    cur.execute(raw_sql, [ids]).fetchall()
                    raw.append((time.perf_counter() - started) * 1000)
            with cache.cursor() as cur:
                ok = summaries.differences(cur) == []
    app, raw_ms = statistics.median(samples), statistics.median(raw)
    return [{"name": "tag 1,000 resources + repaint (team breakdown, tree top), median; raw = one grouped read of "
                     "their rows", "rows": len(ids), "app_ms": round(app, 1), "raw_ms": round(raw_ms, 1),
             "ratio": round(app / raw_ms, 2) if raw_ms else None, "summaries_match": ok}]


def _build_cost(source: Path) -> list[dict[str, Any]]:
    """The summary's cost on writes: a full rebuild (refresh_derived's share) and one month's window settle."""
    with tempfile.TemporaryDirectory(dir=source.parent) as scratch:
        path = Path(scratch) / "copy.duckdb"
        shutil.copyfile(source, path)
        with open_cache(path) as cache:
            with cache.cursor() as cur:
                total = int((cur.execute("SELECT count(*) FROM charges").fetchone() or (0,))[0])
                last = cur.execute("SELECT max(x_ChargeDate) FROM charges").fetchone()
                assert last is not None and last[0] is not None
                month = last[0].replace(day=1)
            with cache.write() as cur:
                full = _timed(lambda: summaries.rebuild(cur))
            # A window write as a sync does it: the month's rows rewritten under a new source, then finish_window.
            with cache.write() as cur:
                cur.execute("CREATE TEMP TABLE _month AS SELECT * FROM charges WHERE x_ChargeDate >= ?", [month])
                moved = int((cur.execute("SELECT count(*) FROM _month").fetchone() or (0,))[0])
                started = time.perf_counter()
                sid = begin_window(cur, Window("focus-file", "bench-window", "focus", month,
                                               last[0] + dt.timedelta(days=1)))
                cur.execute("DELETE FROM charges WHERE x_ChargeDate >= ?", [month])
                cur.execute("UPDATE _month SET source_id = ?", [sid])
                cur.execute("INSERT INTO charges SELECT * FROM _month")
                before_settle = time.perf_counter()
                finish_window(cur, sid)
                ended = time.perf_counter()
            settle_ms = (ended - before_settle) * 1000
            window_ms = (ended - started) * 1000
    return [
        {"name": "summary full rebuild (part of refresh_derived)", "rows": total, "app_ms": round(full, 1),
         "raw_ms": None, "ratio": None, "rows_per_s": round(total / (full / 1000)) if full else None},
        {"name": "one month's window write incl. finish_window (summary settle inside)", "rows": moved,
         "app_ms": round(window_ms, 1), "raw_ms": None, "ratio": None, "finish_window_ms": round(settle_ms, 1),
         "rows_per_s": round(moved / (window_ms / 1000)) if window_ms else None},
    ]


def run(cache_path: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with open_cache(cache_path, read_only=True) as cache, cache.cursor() as cur:
        rows = int((cur.execute("SELECT count(*) FROM charges").fetchone() or (0,))[0])
        held = int((cur.execute("SELECT count(*) FROM daily_summary").fetchone() or (0,))[0])
        results.append({"name": f"daily_summary rows ({rows / max(held, 1):.1f}x fewer than charges)", "rows": held,
                        "app_ms": None, "raw_ms": None, "ratio": None})
        period, _ = resolve_period(cur, "mtd")
        currency = currencies(cur, period)[0]
        for spec in ("mtd", "90d"):
            results.append(_pair(f"whole overview {spec}, cold", [_overview_call(cur, spec, "effective", currency)],
                                 rows))
        changes = [_overview_call(cur, spec, metric, currency)
                   for spec in ("mtd", "last-month", "30d", "90d") for metric in ("effective", "billed")]
        results.append(_pair("period/metric change, cold", changes, rows, stat="p95"))
        for shared in (False, True):
            for level, calls in enumerate(_expansions(cur, currency, shared)):
                name = f"tree expansion level {level} ({HIERARCHY[level]}){' shared' if shared else ''}, cold"
                results.append(_pair(name, calls, rows, stat="p95"))
    results += _tag_edit(cache_path, currency)
    results += _build_cost(cache_path)
    return results


if __name__ == "__main__":
    for result in run(Path(sys.argv[1])):
        print(result)
