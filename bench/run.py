"""Benchmark harness: builds demo caches (1M and 10M rows), then runs every bench_*.py scenario module on each."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from finops_tui.allocation.effective import TagPolicy
from finops_tui.ingest.demo import DemoParams, build_demo, existing_summary

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))  # run as a script: the scenario modules sit beside it

from compare import compare, load_baseline, render, save_baseline  # noqa: E402

DEFAULT_OUT = BENCH_DIR / "out"
DEFAULT_SIZES = (1_000_000, 10_000_000)
# A fixed end date: the same cache (and figures) every day, so runs compare.
END = dt.date(2026, 11, 26)
# Scenario modules beside this file, in run order. bench_import also gets a scratch directory.
SCENARIOS = ("bench_import", "bench_reports", "bench_ui", "bench_allocation", "bench_ui_allocation",
             "bench_recommend", "bench_ui_recommend", "bench_sync", "bench_splits", "bench_explain",
             "bench_commitments", "bench_export", "bench_shared", "bench_sync_exports", "bench_scale",
             "bench_ui_keys")
COLUMNS = ("name", "rows", "app_ms", "raw_ms", "ratio")

Result = dict[str, Any]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__)
    parser.add_argument("--rows", type=int, action="append", metavar="N",
                        help="cache size in charge rows (repeatable; default 1,000,000 and 10,000,000)")
    parser.add_argument("--json", action="store_true", help="one JSON object per scenario per line")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only these scenarios: demo, import, reports, ui, allocation, ui_allocation, "
                             "recommend, ui_recommend, sync, splits, explain, commitments, export, shared, "
                             "sync_exports, scale, ui_keys")
    parser.add_argument("--force", action="store_true", help="rebuild the demo caches even if they match")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where caches live (default {DEFAULT_OUT})")
    parser.add_argument("--compare", type=Path, metavar="BASELINE",
                        help="print each scenario's change against a stored baseline; >20%% worse is flagged")
    parser.add_argument("--save-baseline", type=Path, metavar="PATH", help="store this run as a baseline")
    return parser.parse_args(argv)


def _selected(only: list[str] | None, name: str) -> bool:
    return only is None or name.removeprefix("bench_") in only


def demo_cache(out: Path, rows: int, *, force: bool) -> tuple[Path, Result]:
    """The demo cache of about `rows` rows under `out`, built unless one with the same parameters exists."""
    path = out / f"demo-{rows}.duckdb"
    params = DemoParams(end=END, rows=rows)
    summary = None if force else existing_summary(path, params)
    if summary is not None:
        return path, {"name": "demo build (reused; --force rebuilds)", "rows": summary.rows,
                      "app_ms": None, "raw_ms": None, "ratio": None}
    started = time.perf_counter()
    summary = build_demo(path, TagPolicy(), end=params.end, months=params.months, rows=params.rows, seed=params.seed)
    seconds = time.perf_counter() - started
    return path, {"name": f"demo build ({summary.rows / seconds:,.0f} rows/s)", "rows": summary.rows,
                  "app_ms": round(seconds * 1000, 1), "raw_ms": None, "ratio": None,
                  "rows_per_s": round(summary.rows / seconds)}


def _scenario_runner(module_name: str) -> Callable[[Path, Path], list[Result]] | str:
    """The module's run function, adapted to (cache, scratch dir); a string says why it is skipped."""
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return f"skipped: bench/{module_name}.py does not exist yet"
        raise
    run = getattr(module, "run", None)
    if run is None:
        return f"skipped: bench/{module_name}.py has no run()"
    if module_name == "bench_import":
        return lambda cache, scratch: list(run(cache, scratch))
    return lambda cache, scratch: list(run(cache))


def _normalized(result: Result, cache_rows: int) -> Result:
    row = {key: result.get(key) for key in COLUMNS}
    row.update({k: v for k, v in result.items() if k not in row})
    if row["ratio"] is None and row["app_ms"] and row["raw_ms"]:
        row["ratio"] = round(row["app_ms"] / row["raw_ms"], 2)
    row["cache_rows"] = cache_rows
    return row


def _format(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if column == "rows":
        return f"{value:,}"
    if column in ("app_ms", "raw_ms"):
        return f"{value:,.1f}"
    if column == "ratio":
        return f"{value:.2f}x"
    return str(value)


def print_table(results: list[Result], notes: list[str]) -> None:
    header = ("cache", *COLUMNS)
    body = [(f"{r['cache_rows']:,}", *(_format(r.get(c), c) for c in COLUMNS)) for r in results]
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(header)]
    right = {"cache", "rows", "app_ms", "raw_ms", "ratio"}

    def line(cells: Sequence[str]) -> str:
        padded = (c.rjust(w) if h in right else c.ljust(w) for c, w, h in zip(cells, widths, header, strict=True))
        return "  ".join(padded)

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in body:
        print(line(row))
    for note in notes:
        print(f"note: {note}")


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS); this harness runs on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / ".gitignore").write_text("*\n")  # caches are gigabytes: never commit them
    results: list[Result] = []
    notes: list[str] = []
    failed = False

    def emit(result: Result) -> None:
        results.append(result)
        if args.json:
            print(json.dumps(result, default=str), flush=True)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    for rows in args.rows or DEFAULT_SIZES:
        say(f"cache of {rows:,} rows …")
        path, build = demo_cache(out, rows, force=args.force)
        cache_rows = int(build["rows"])
        if _selected(args.only, "demo"):
            emit(_normalized(build, cache_rows))
        for module_name in SCENARIOS:
            if not _selected(args.only, module_name):
                continue
            try:
                runner = _scenario_runner(module_name)
                if isinstance(runner, str):
                    if runner not in notes:
                        notes.append(runner)
                    continue
                say(f"  {module_name} …")
                with tempfile.TemporaryDirectory(dir=out, prefix=f"{module_name}-") as scratch:
                    for result in runner(path, Path(scratch)):
                        emit(_normalized(result, cache_rows))
            except Exception as exc:
                failed = True
                notes.append(f"{module_name} on {rows:,} rows failed: {exc!r}")
                traceback.print_exc(file=sys.stderr)

    notes.append(f"peak RSS {_peak_rss_mb():,.0f} MB")
    if args.json:
        for note in notes:
            say(f"note: {note}")
    else:
        print_table(results, notes)
    if args.save_baseline:
        save_baseline(args.save_baseline, results)
        say(f"baseline saved to {args.save_baseline}")
    if args.compare:
        print(render(compare(load_baseline(args.compare), results)), end="")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
