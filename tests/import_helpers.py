"""Helpers for the import tests: run the CLI, checksum a cache, sum raw files independently, write variants."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finops_tui import cli

FIXTURES = Path(__file__).parent / "fixtures"
FOCUS_SAMPLE = FIXTURES / "focus-sample" / "focus_sample.csv"
EXPORTS = FIXTURES / "azure-exports"
EA_ACTUAL = EXPORTS / "EA_ActualCost_Small.csv"
EA_AMORTIZED = EXPORTS / "EA_AmortizedCost_Small.csv"
EA_NO_ROWS = EXPORTS / "EA_NoRows.csv"
FOCUS_12_SCHEMA = EXPORTS / "schemas" / "focuscost_1.2.json"
CENT = Decimal("0.01")


def run_import(
    capsys: pytest.CaptureFixture[str], cache: Path, *paths: Path, skip: bool = False
) -> tuple[int, str, str]:
    """`finops-tui import` through cli.main; returns (exit code, stdout, stderr)."""
    argv = ["import", "--cache", str(cache), "-q", *(str(p) for p in paths)]
    if skip:
        argv.append("--skip-bad-rows")
    capsys.readouterr()
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def checksum(cache: Path) -> str:
    """A digest of every table's rows (sorted), to prove a refused import changed nothing."""
    if not cache.exists():
        return "absent"
    digest = hashlib.sha256()
    con = duckdb.connect(str(cache), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        for table in tables:
            digest.update(table.encode())
            for row in con.execute(f'SELECT * FROM "{table}" ORDER BY ALL').fetchall():
                digest.update(repr(row).encode())
    finally:
        con.close()
    return digest.hexdigest()


def query(cache: Path, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(cache), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def cache_totals(cache: Path) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    """Per currency (sum BilledCost, sum EffectiveCost), rounded to the cent."""
    rows = query(cache, "SELECT BillingCurrency, sum(BilledCost), sum(EffectiveCost) FROM charges GROUP BY 1")
    return {
        str(c): (_cent(b), _cent(e))  # type: ignore[arg-type]
        for c, b, e in rows
    }


def _cent(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(CENT)


def read_rows(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:  # type: ignore[operator]
        return list(csv.DictReader(handle))


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def shifted_focus_rows(path: Path = FOCUS_SAMPLE) -> list[int]:
    """1-based data rows of the sample whose AvailabilityZone holds a number: the column-shifted rows."""
    return [i for i, row in enumerate(read_rows(path), start=1) if is_number(row["AvailabilityZone"])]


def python_totals(
    path: Path,
    *,
    currency: str,
    billed: str | None,
    effective: str | None,
    skip_rows: set[int] | frozenset[int] = frozenset(),
) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    """Independent per-currency sums of a raw CSV with csv + Decimal ('' and NULL count as nothing)."""
    sums: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for number, row in enumerate(read_rows(path), start=1):
        if number in skip_rows:
            continue
        totals = sums[row[currency]]
        for index, column in enumerate((billed, effective)):
            if column and row[column] not in ("", "NULL"):
                totals[index] += Decimal(row[column])
    return {
        c: (v[0].quantize(CENT) if billed else None, v[1].quantize(CENT) if effective else None)
        for c, v in sums.items()
    }


def focus_columns(version: str) -> list[str]:
    """FOCUS column names of a Microsoft export: 1.2 from its schema; 1.3 adds its new provider columns."""
    mappings = json.loads(FOCUS_12_SCHEMA.read_text())["translator"]["mappings"]
    columns = [m["source"]["name"] for m in mappings]
    if version == "1.3":
        columns += ["ServiceProviderName", "HostProviderName"]
    return columns


def write_focus_variant(
    target: Path, version: str, *, fmt: str = "csv", drop_shifted: bool = True, extra: tuple[str, ...] = ()
) -> Path:
    """The FOCUS sample re-shaped to a Microsoft FOCUS 1.2 / 1.3 export (its columns, in its order).

    Columns the sample lacks are empty; shifted rows are left out unless asked for. Parquet keeps
    the text values (like a CSV converted naively), so `NULL` literals survive into it. `extra` adds
    sample columns Microsoft's export lacks (AvailabilityZone, where the sample's shift shows).
    """
    con = duckdb.connect()
    try:
        sample_columns = {c.lower(): c for c in read_rows(FOCUS_SAMPLE)[0]}
        items = []
        for column in [*focus_columns(version), *extra]:
            if column == "ServiceProviderName":
                items.append('"ProviderName" AS "ServiceProviderName"')
            elif column == "x_ResourceGroupName":
                items.append('regexp_extract("ResourceId", \'/resourcegroups/([^/]+)\', 1) AS "x_ResourceGroupName"')
            elif column.lower() in sample_columns:
                items.append(f'"{sample_columns[column.lower()]}" AS "{column}"')
            else:
                items.append(f'NULL AS "{column}"')
        where = "WHERE TRY_CAST(AvailabilityZone AS DOUBLE) IS NULL" if drop_shifted else ""
        select = f"SELECT {', '.join(items)} FROM read_csv('{FOCUS_SAMPLE}', all_varchar = true) {where}"
        options = "(FORMAT parquet)" if fmt == "parquet" else "(HEADER, DELIMITER ',')"
        con.execute(f"COPY ({select}) TO '{target}' {options}")
    finally:
        con.close()
    return target


def write_csv(target: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return target


def header_of(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle))


def parquet_with_one_more_row(file: Path, out: Path, replace: str) -> Path:
    """`file` (Parquet) written to `out` with a copy of its first row whose columns `replace` changes (a DuckDB
    `REPLACE` list, e.g. `'XYZ1' AS BillingCurrency`)."""
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{file}') UNION ALL "
            f"(SELECT * REPLACE ({replace}) FROM read_parquet('{file}') LIMIT 1)) TO '{out}' (FORMAT parquet)"
        )
    return out
