"""Benchmark: export sync from Azurite vs `import` of the same local files; re-sync with nothing new; hub ingest.

Scenarios (the cache handed in by bench/run.py is ignored: each builds its own in a scratch directory):
- `import` of M monthly FOCUS Parquet export folders (manifest + parts) from local disk: rows/s;
- `sync --export` of the same runs laid out in Azurite (the npm emulator on 127.0.0.1): rows/s and its ratio to
  the import (the target is at least 0.7x);
- the same export sync again with nothing new: seconds (target under 2 s) and bytes downloaded (0);
- hub sync of M months from the fake Kusto cluster (tests/fake_kusto.py, served from a child process that renders
  every answer's bytes before the timer starts, gzipped like a cluster's, so the figure is the client's alone):
  rows/s of wall time and of this process's CPU time, and the share spent loading into DuckDB (target at least 200k
  rows/s); raw_ms is DuckDB alone loading the same rows from gzipped CSV (one file a month, the same 41 typed
  columns) into a bare table, timed right after the sync: the ratio holds on a loaded machine where rows/s do not.

`python bench/bench_sync_exports.py [--months M] [--rows-per-month N]`; bench/run.py calls `run(cache)`. Sizes
also come from FINOPS_BENCH_EXPORT_MONTHS / FINOPS_BENCH_EXPORT_ROWS (default 13 × 1,000,000). Without npm
(Azurite cannot be installed) the export scenarios are skipped with a message; the hub scenario still runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from finops_tui import clock  # noqa: E402
from finops_tui.allocation.effective import TagPolicy  # noqa: E402
from finops_tui.ingest.importer import import_in_transaction, import_paths  # noqa: E402
from finops_tui.store.cache import open_cache  # noqa: E402
from finops_tui.sync.exports import ExportOptions, sync_exports  # noqa: E402
from finops_tui.sync.hub import HubOptions, sync_hub  # noqa: E402
from finops_tui.sync.windows import add_months  # noqa: E402
from tests import azurite  # noqa: E402
from tests.fake_arm import FakeCredential  # noqa: E402

TODAY = dt.date(2026, 11, 26)  # bench/run.py's fixed end date
PART_ROWS = 500_000  # rows per part file, as Cost Management splits large exports

_memo: dict[tuple[int, int], list[dict[str, Any]]] = {}


def _months(count: int) -> list[dt.date]:
    current = TODAY.replace(day=1)
    return [add_months(current, -back) for back in range(count)]


def _local_runs(scratch: Path, months: int, rows_per_month: int) -> list[tuple[dt.date, list[Path], list[int]]]:
    runs = []
    for month in _months(months):
        parts, counts, offset = [], [], 0
        while offset < rows_per_month:
            count = min(PART_ROWS, rows_per_month - offset)
            path = scratch / "parts" / f"{month:%Y%m}-{len(parts)}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            azurite.write_focus_part(path, month, count, fmt="parquet", seed=month.month, offset=offset)
            parts.append(path)
            counts.append(count)
            offset += count
        runs.append((month, parts, counts))
    return runs


def _serve_hub(rows_per_month: int, months: int, queue: Any) -> None:
    from finops_tui.sync import hub
    from tests.fake_kusto import FakeKusto

    with FakeKusto(rows_per_month=rows_per_month) as fake:
        # The answer's shape the client asks for: variants and rows (two tables), or whole rows before them.
        fake.prerender(_months(months), hub.CHUNK_ROWS, shapes=(getattr(hub, "ATTRIBUTES", ()),))
        queue.put(fake.url)
        time.sleep(3600)


class _HubPhases:
    """Seconds from each window's "writing" to its "written": the DuckDB load and commit."""

    def __init__(self) -> None:
        self.load = 0.0
        self._writing: float | None = None

    def __call__(self, p: Any) -> None:
        if p.state == "writing":
            self._writing = time.perf_counter()
        elif p.state == "written" and self._writing is not None:
            self.load += time.perf_counter() - self._writing
            self._writing = None


def measure(months: int, rows_per_month: int, note: Any = print, only: str | None = None) -> list[dict[str, Any]]:
    clock.pin(TODAY)
    results: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-exports-") as tmp:
            scratch = Path(tmp)
            if only in (None, "exports"):
                results += _exports(scratch, months, rows_per_month, note)
            if only in (None, "hub"):
                results += _hub(scratch, months, rows_per_month, note)
    finally:
        clock.pin(None)
    return results


def _exports(scratch: Path, months: int, rows_per_month: int, note: Any) -> list[dict[str, Any]]:
    try:
        azurite.ensure_installed()
    except azurite.AzuriteUnavailable as exc:
        note(f"export sync skipped: {exc}")
        return [{"name": f"export sync: skipped ({exc})", "rows": None, "app_ms": None, "raw_ms": None}]
    note(f"writing {months} × {rows_per_month:,} rows of FOCUS Parquet …")
    runs = _local_runs(scratch, months, rows_per_month)
    local = azurite.LocalFolder(scratch / "local")
    folders = []
    for month, parts, counts in runs:
        run = azurite.upload_run(local, "costs", "focus-monthly", month, parts, counts, run_id=f"run-{month:%Y%m}")
        folders.append(scratch / "local" / run.folder)
    total = months * rows_per_month

    note("import of the local export folders …")
    started = time.perf_counter()
    with open_cache(scratch / "import.duckdb") as cache:
        import_paths(cache, TagPolicy(), folders)
    import_s = time.perf_counter() - started

    with azurite.running_azurite() as emulator:
        container = emulator.service().create_container("exports")
        for month, parts, counts in runs:
            azurite.upload_run(container, "costs", "focus-monthly", month, parts, counts, run_id=f"run-{month:%Y%m}")
        url = f"{emulator.account_url}/exports/costs?{emulator.container_sas('exports')}"
        options = ExportOptions([url], importer=import_in_transaction)
        note("export sync from Azurite …")
        started = time.perf_counter()
        with open_cache(scratch / "export.duckdb") as cache:
            first = sync_exports(cache, options, TagPolicy())
        sync_s = time.perf_counter() - started
        started = time.perf_counter()
        with open_cache(scratch / "export.duckdb") as cache:
            again = sync_exports(cache, options, TagPolicy())
        resync_s = time.perf_counter() - started
    assert first.rows == total and not first.failures, first.failures
    ratio = (total / sync_s) / (total / import_s)
    return [
        {"name": f"import {months} local export folders ({total / import_s:,.0f} rows/s)", "rows": total,
         "app_ms": round(import_s * 1000, 1), "raw_ms": None, "rows_per_s": round(total / import_s)},
        {"name": f"export sync from Azurite ({total / sync_s:,.0f} rows/s, {ratio:.2f}x import; target 0.7x)",
         "rows": total, "app_ms": round(sync_s * 1000, 1), "raw_ms": round(import_s * 1000, 1),
         "rows_per_s": round(total / sync_s), "mb": round(first.bytes_downloaded / 1e6, 1)},
        {"name": f"export re-sync, nothing new ({again.bytes_downloaded} bytes downloaded; target < 2 s)",
         "rows": 0, "app_ms": round(resync_s * 1000, 1), "raw_ms": None},
    ]


def _hub(scratch: Path, months: int, rows_per_month: int, note: Any) -> list[dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    server = context.Process(target=_serve_hub, args=(rows_per_month, months, queue), daemon=True)
    server.start()
    try:
        note("hub: the fake cluster renders its answers …")
        url = queue.get(timeout=3600)
        note("hub sync from the fake cluster …")
        options = HubOptions(f"{url}/Hub", months=months, credential=FakeCredential())
        phases = _HubPhases()
        cpu_before = _process_cpu()
        started = time.perf_counter()
        with open_cache(scratch / "hub.duckdb") as cache:
            result = sync_hub(cache, options, TagPolicy(), progress=phases)
        hub_s = time.perf_counter() - started
        cpu_s = _process_cpu() - cpu_before
    finally:
        server.terminate()
        server.join()
    assert not result.failures, result.failures
    rows = result.rows
    raw_s, raw_cpu_s = _raw_hub_load(scratch, months)
    return [{"name": f"hub sync, {months} months ({rows / hub_s:,.0f} rows/s wall, {rows / cpu_s:,.0f} rows/s of "
                     f"client CPU; DuckDB load {phases.load / hub_s:.0%} of the time; raw DuckDB load of the same rows "
                     f"{rows / raw_s:,.0f} rows/s wall, {rows / raw_cpu_s:,.0f} of CPU; target 200k)",
             "rows": rows, "app_ms": round(hub_s * 1000, 1), "raw_ms": round(raw_s * 1000, 1),
             "rows_per_s": round(rows / hub_s), "cpu_ms": round(cpu_s * 1000, 1),
             "raw_cpu_ms": round(raw_cpu_s * 1000, 1), "load_ms": round(phases.load * 1000, 1)}]


def _raw_hub_load(scratch: Path, months: int) -> tuple[float, float]:
    """Seconds of wall and CPU for DuckDB alone to load the synced rows from gzipped CSV (one file a month, the
    wire's 41 columns and types) into a bare table and commit: the floor the hub sync is compared with."""
    import duckdb

    from finops_tui.store.tag_sets import join_sql, row_tags_sql
    from finops_tui.sync.hub import GRAIN, _wire_type

    folder = scratch / "raw-hub"
    folder.mkdir()
    with duckdb.connect(str(scratch / "hub.duckdb"), read_only=True) as con:
        # The tags as the wire sends them, read through the rows' tag sets (store.tag_sets).
        wire = ", ".join(f"to_json({row_tags_sql()})::VARCHAR" if column == "Tags" else f"c.{column}"
                         for column, _, _ in GRAIN)
        for month in _months(months):
            con.execute(f"COPY (SELECT {wire} FROM charges c {join_sql()} "
                        f"WHERE date_trunc('month', c.x_ChargeDate) = DATE '{month}') "
                        f"TO '{folder / f'{month:%Y-%m}.csv.gz'}' (HEADER false, COMPRESSION gzip)")
    fields = ", ".join(f"'{column}': '{_wire_type(column, kind)}'" for column, _, kind in GRAIN)
    cpu_before = _process_cpu()
    started = time.perf_counter()
    with duckdb.connect(str(scratch / "raw-hub.duckdb")) as con:
        con.execute(f"CREATE TABLE rows AS SELECT * FROM read_csv('{folder}/*.csv.gz', columns = {{{fields}}}, "
                    "header = false, auto_detect = false, compression = 'gzip')")
    return time.perf_counter() - started, _process_cpu() - cpu_before


def _process_cpu() -> float:
    """CPU seconds of this process, every thread (DuckDB's too); the fake cluster runs in another process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(cache: Path) -> list[dict[str, Any]]:
    """bench/run.py entry point; `cache` is not used (each scenario fills its own)."""
    months = int(os.environ.get("FINOPS_BENCH_EXPORT_MONTHS", "13"))
    rows = int(os.environ.get("FINOPS_BENCH_EXPORT_ROWS", "1000000"))
    key = (months, rows)
    if key not in _memo:
        _memo[key] = measure(months, rows, note=lambda s: print(s, file=sys.stderr, flush=True))
    return [dict(r) for r in _memo[key]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--months", type=int, default=13)
    parser.add_argument("--rows-per-month", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("exports", "hub"), help="run one of the two sources")
    args = parser.parse_args()
    for row in measure(args.months, args.rows_per_month, note=lambda s: print(s, file=sys.stderr, flush=True),
                       only=args.only):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
