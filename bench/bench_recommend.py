"""Benchmark: every recommendation generator over a cache, and the whole run as the screen's worker does it."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

from finops_tui.recommend.engine import generate
from finops_tui.recommend.generators import GENERATORS
from finops_tui.recommend.model import Context
from finops_tui.recommend.prepare import drop_prepared, ensure_prepared
from finops_tui.store import open_cache

REPEATS = 5


def _result(name: str, rows: int, app_ms: float) -> dict[str, Any]:
    # No raw-DuckDB twin: a run is many queries plus Python; the figure to watch is the total under 3 s.
    return {"name": name, "rows": rows, "app_ms": round(app_ms, 2), "raw_ms": None, "ratio": None}


def run(cache: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with open_cache(cache) as opened, opened.cursor() as cur:
        row = cur.execute("SELECT count(*) FROM charges").fetchone()
        rows = int(row[0]) if row else 0
        ctx = Context.from_cache(cur)
        if ctx is None:
            return results
        generate(cur, ctx)  # warm the buffer cache, as the screen's second run would find it
        totals: list[float] = []
        per_step: dict[str, list[float]] = {name: [] for name in ["prepare", *GENERATORS]}
        for _ in range(REPEATS):
            started = time.perf_counter()
            _recs, _timings = generate(cur, ctx)
            totals.append((time.perf_counter() - started) * 1000)
            # The same steps one by one, with the shared aggregates timed on their own.
            drop_prepared(cur)
            started = time.perf_counter()
            ensure_prepared(cur, ctx)
            per_step["prepare"].append((time.perf_counter() - started) * 1000)
            for name, (generator, _kinds) in GENERATORS.items():
                started = time.perf_counter()
                generator(cur, ctx)
                per_step[name].append((time.perf_counter() - started) * 1000)
            drop_prepared(cur)
        results.append(_result("recommend: all generators (run_all)", rows, statistics.median(totals)))
        for name, samples in per_step.items():
            results.append(_result(f"recommend: {name}", rows, statistics.median(samples)))
    return results


if __name__ == "__main__":
    for item in run(Path(sys.argv[1])):
        print(f"{item['name']:45} {item['rows']:>12,} rows {item['app_ms']:>10.1f} ms")
