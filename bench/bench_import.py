"""Benchmark: `finops-tui import` of FOCUS CSV and Parquet against raw DuckDB reading the same file.

`run(source_cache, workdir)` exports the `charges` of an existing cache (the demo cache, say) as a FOCUS
1.2 CSV and a Parquet file, then times (a) the importer's Python API into a fresh cache and (b) a plain
`CREATE TABLE t AS SELECT * FROM read_csv/read_parquet(...)` into a fresh DuckDB file, and measures the
peak RSS of an import in a child process. `python bench/bench_import.py [--rows N]` builds a synthetic
cache of N rows when no cache is given.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from finops_tui.allocation.effective import TagPolicy
from finops_tui.ingest.importer import import_paths
from finops_tui.store.cache import open_cache
from finops_tui.store.schema import CHARGE_COLUMNS
from finops_tui.store.tag_sets import join_sql, row_tags_sql

# FOCUS 1.2 columns the importer does not keep still belong in a realistic export (they cost parse time).
_EXTRA_FOCUS_12 = {
    "BillingAccountType": "'Billing Profile'",
    "CapacityReservationId": "NULL",
    "CapacityReservationStatus": "NULL",
    "CommitmentDiscountQuantity": "NULL",
    "CommitmentDiscountUnit": "NULL",
    "ContractedUnitPrice": "round(ContractedCost / nullif(PricingQuantity, 0), 6)",
    "InvoiceId": "'G' || strftime(BillingPeriodStart, '%Y%m')",
    "ListUnitPrice": "round(ListCost / nullif(PricingQuantity, 0), 6)",
    "PricingCurrency": "BillingCurrency",
    "SkuMeter": "x_SkuMeterName",
    "SkuPriceDetails": "NULL",
    "SubAccountType": "'Subscription'",
}


def export_focus(source_cache: Path, csv_path: Path, parquet_path: Path) -> int:
    """Write the cache's charges as FOCUS 1.2 files (Tags as JSON, ISO UTC timestamps); return the row count."""
    con = duckdb.connect(str(source_cache), read_only=True)
    try:
        # A row's tags: its tag set's (schema 8, store.tag_sets), else the MAP on the row (the demo's, older caches).
        has_tag_sets = bool(con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'tag_sets'").fetchone()[0])  # type: ignore[index]
        tags = row_tags_sql("charges") if has_tag_sets else '"Tags"'
        source = f"charges {join_sql('charges')}" if has_tag_sets else "charges"
        csv_items, parquet_items = [], []
        for name, kind in CHARGE_COLUMNS:
            if name in ("x_ChargeDate", "source_id"):
                continue
            if name == "Tags":
                item = f'CAST(to_json({tags}) AS VARCHAR) AS "Tags"'
                csv_items.append(item)
                parquet_items.append(item)
            elif kind == "TIMESTAMP":
                # CSV gets ISO 8601 UTC text as exporters write it; Parquet keeps native timestamps.
                csv_items.append(f'strftime("{name}", \'%Y-%m-%dT%H:%M:%SZ\') AS "{name}"')
                parquet_items.append(f'"{name}"')
            else:
                csv_items.append(f'"{name}"')
                parquet_items.append(f'"{name}"')
        extra = [f'{sql} AS "{name}"' for name, sql in _EXTRA_FOCUS_12.items()]
        csv_select = f"SELECT {', '.join(csv_items + extra)} FROM {source}"
        parquet_select = f"SELECT {', '.join(parquet_items + extra)} FROM {source}"
        con.execute(f"COPY ({csv_select}) TO '{csv_path}' (HEADER, DELIMITER ',')")
        con.execute(f"COPY ({parquet_select}) TO '{parquet_path}' (FORMAT parquet)")
        row = con.execute("SELECT count(*) FROM charges").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def _fresh(path: Path) -> Path:
    for suffix in ("", ".wal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_app(file: Path, cache_path: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of importing `file` into a fresh cache through the Python API."""
    started, cpu = time.perf_counter(), _cpu()
    with open_cache(_fresh(cache_path)) as cache:
        outcome = import_paths(cache, TagPolicy(), [file])
    elapsed = time.perf_counter() - started, _cpu() - cpu
    assert outcome.results and outcome.results[0].rows > 0
    return elapsed


def time_raw(file: Path, db_path: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of DuckDB reading `file` into a table of a fresh database file."""
    reader = "read_parquet" if file.suffix == ".parquet" else "read_csv"
    started, cpu = time.perf_counter(), _cpu()
    con = duckdb.connect(str(_fresh(db_path)))
    try:
        con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}('{file}')")
    finally:
        con.close()
    return time.perf_counter() - started, _cpu() - cpu


def peak_rss_of_import(file: Path, cache_path: Path) -> int:
    """Peak RSS (bytes) of a fresh child process importing `file` into a fresh cache.

    The child reports its own VmHWM: getrusage's ru_maxrss survives fork and exec, so a child of this
    (by then large) benchmark process would report the parent's peak instead of its own.
    """
    code = (
        "import re, sys; from pathlib import Path; from finops_tui.store.cache import open_cache; "
        "from finops_tui.allocation.effective import TagPolicy; from finops_tui.ingest.importer import import_paths\n"
        "with open_cache(Path(sys.argv[2])) as c: import_paths(c, TagPolicy(), [Path(sys.argv[1])])\n"
        "print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(file), str(_fresh(cache_path))], check=True, capture_output=True, text=True
    )
    return int(done.stdout.split()[-1]) * 1024


def run(source_cache: Path, workdir: Path, *, repeats: int = 3) -> list[dict[str, object]]:
    """Export, then time app vs raw for CSV and Parquet, alternating; best of `repeats` for each.

    CPU seconds (all DuckDB threads) are reported beside wall time: on a shared machine they are the
    steadier measure of the work each side does.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = workdir / "focus_1_2.csv", workdir / "focus_1_2.parquet"
    rows = export_focus(source_cache, csv_path, parquet_path)
    results: list[dict[str, object]] = []
    for name, file, target in (("import focus csv", csv_path, 1.67), ("import focus parquet", parquet_path, 1.25)):
        apps, raws = [], []
        for _ in range(repeats):  # alternate, so that a burst of load elsewhere hits both sides
            raws.append(time_raw(file, workdir / "raw.duckdb"))
            apps.append(time_app(file, workdir / "app.duckdb"))
        app, raw = min(w for w, _ in apps), min(w for w, _ in raws)
        app_cpu, raw_cpu = min(c for _, c in apps), min(c for _, c in raws)
        results.append(
            {
                "name": name,
                "rows": rows,
                "file_mb": round(file.stat().st_size / 1e6, 1),
                "app_ms": round(app * 1000),
                "raw_ms": round(raw * 1000),
                "ratio": round(app / raw, 2),
                "target_ratio": target,
                "app_cpu_ms": round(app_cpu * 1000),
                "raw_cpu_ms": round(raw_cpu * 1000),
                "cpu_ratio": round(app_cpu / raw_cpu, 2),
                "peak_rss_mb": round(peak_rss_of_import(file, workdir / "rss.duckdb") / 1e6),
            }
        )
    return results


def make_synthetic_cache(path: Path, rows: int) -> None:
    """A cache with `rows` daily resource charges (5,000 resources over 120 days, 2 currencies, 3 tags)."""
    with open_cache(_fresh(path)) as cache, cache.write() as cur:
        cur.execute(
            f"""
            INSERT INTO charges
            WITH r AS (SELECT range AS i, range % 5000 AS res, range // 5000 AS d FROM range({rows}))
            SELECT
              TIMESTAMP '2024-01-01' + INTERVAL (d % 120) DAY, TIMESTAMP '2024-01-01' + INTERVAL (d % 120 + 1) DAY,
              date_trunc('month', TIMESTAMP '2024-01-01' + INTERVAL (d % 120) DAY),
              date_trunc('month', TIMESTAMP '2024-01-01' + INTERVAL (d % 120) DAY) + INTERVAL 1 MONTH,
              '/providers/microsoft.billing/billingaccounts/8611537', 'Contoso',
              '/subscriptions/' || md5('sub' || (res % 20)), 'sub-' || (res % 20),
              ((i * 7919) % 100000) / 1000.0, ((i * 7919) % 100000) / 1000.0 * 0.9,
              ((i * 7919) % 100000) / 1000.0 * 1.1, ((i * 7919) % 100000) / 1000.0,
              CASE WHEN res % 10 = 0 THEN 'EUR' ELSE 'USD' END,
              'Usage', NULL, 'Usage-Based', 'Compute hours for vm ' || res, 'Standard', 24.0, 'Hours', 24.0, 'Hours',
              ['Virtual Machines', 'Storage Accounts', 'Azure SQL Database', 'Azure Kubernetes Service'][res % 4 + 1],
              ['Compute', 'Storage', 'Databases', 'Compute'][res % 4 + 1], NULL, 'Microsoft', 'Microsoft', 'Microsoft',
              '/subscriptions/' || md5('sub' || (res % 20)) || '/resourcegroups/rg-' || (res % 200)
                || '/providers/microsoft.compute/virtualmachines/vm-' || res,
              'vm-' || res, 'Virtual machine', 'eastus', 'East US', NULL, NULL, NULL, NULL, NULL, NULL,
              'sku' || (res % 50), NULL,
              MAP {{'team': 'team-' || (res % 12), 'env': ['prod', 'dev', 'test'][res % 3 + 1],
                    'CostCenter': 'cc-' || (res % 30)}},
              'rg-' || (res % 200), 'Virtual Machines', 'D2s v3',
              CAST(TIMESTAMP '2024-01-01' + INTERVAL (d % 120) DAY AS DATE), 1
            FROM r
            """
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="cache to export (default: a synthetic one)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the synthetic cache")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_import_"))
    source = args.cache
    if source is None:
        source = workdir / "synthetic.duckdb"
        make_synthetic_cache(source, args.rows)
    for result in run(source, workdir):
        print(json.dumps(result))


if __name__ == "__main__":
    main()
