"""Import defects of issue 10: billing-period windows, literal paths, date range, manifest shape, messages."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.import_helpers import (
    EA_ACTUAL,
    EA_AMORTIZED,
    FOCUS_SAMPLE,
    cache_totals,
    checksum,
    header_of,
    python_totals,
    query,
    read_rows,
    run_import,
    write_csv,
)

FOCUS_HEADER = header_of(FOCUS_SAMPLE)
_TEMPLATE = next(r for r in read_rows(FOCUS_SAMPLE) if r["ProviderName"] == "AWS")


def _focus_row(charged: dt.datetime, billing_month: dt.date, cost: str, **overrides: str) -> dict[str, str]:
    next_month = (billing_month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    row = dict(
        _TEMPLATE,
        ChargePeriodStart=charged.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ChargePeriodEnd=(charged + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        BillingPeriodStart=f"{billing_month:%Y-%m-%d}T00:00:00Z",
        BillingPeriodEnd=f"{next_month:%Y-%m-%d}T00:00:00Z",
        BilledCost=cost,
        EffectiveCost=cost,
    )
    row.update(overrides)
    return row


def _month_rows(month: dt.date, cost: str) -> list[dict[str, str]]:
    """One row a day for the whole billing month, each charged inside it."""
    rows, day = [], month
    while day.month == month.month:
        rows.append(_focus_row(dt.datetime.combine(day, dt.time(12)), month, cost))
        day += dt.timedelta(days=1)
    return rows


def _focus_file(path: Path, rows: list[dict[str, str]]) -> Path:
    return write_csv(path, FOCUS_HEADER, rows)


def _by_charge_month(cache: Path) -> dict[str, tuple[int, Decimal]]:
    rows = query(
        cache, "SELECT strftime(x_ChargeDate, '%Y-%m'), count(*), sum(BilledCost) FROM charges GROUP BY 1 ORDER BY 1"
    )
    return {str(m): (int(n), Decimal(s).quantize(Decimal("0.01"))) for m, n, s in rows}  # type: ignore[arg-type]


def _by_billing_month(cache: Path) -> dict[str, int]:
    rows = query(cache, "SELECT strftime(BillingPeriodStart, '%Y-%m'), count(*) FROM charges GROUP BY 1 ORDER BY 1")
    return {str(m): int(n) for m, n in rows}  # type: ignore[call-overload]


def _refused(capsys: pytest.CaptureFixture[str], cache: Path, *paths: Path) -> str:
    before = checksum(cache)
    code, out, err = run_import(capsys, cache, *paths)
    assert code == 1, (out, err)
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("finops-tui: ")
    assert checksum(cache) == before
    return err


def _seeded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    cache = tmp_path / "cache.duckdb"
    assert run_import(capsys, cache, EA_AMORTIZED)[0] == 0
    return cache


# ---------------------------------------------------------------- 1: the window is the billing period


JAN, FEB, MAR = dt.date(2025, 1, 1), dt.date(2025, 2, 1), dt.date(2025, 3, 1)


def test_a_march_file_with_a_january_adjustment_replaces_only_march(tmp_path, capsys):
    jan = _focus_file(tmp_path / "jan.csv", _month_rows(JAN, "1.00"))
    feb = _focus_file(tmp_path / "feb.csv", _month_rows(FEB, "2.00"))
    adjustment = _focus_row(dt.datetime(2025, 1, 15, 12), MAR, "-5.00", ChargeCategory="Adjustment")
    mar = _focus_file(tmp_path / "mar.csv", [*_month_rows(MAR, "3.00"), adjustment])
    cache = tmp_path / "cache.duckdb"
    expected = {"2025-01": (32, Decimal("26.00")), "2025-02": (28, Decimal("56.00")), "2025-03": (31, Decimal("93.00"))}

    for path in (jan, feb, mar):
        assert run_import(capsys, cache, path)[0] == 0
    assert _by_charge_month(cache) == expected

    # Re-importing any month, in any order, replaces that billing period only: never another month's rows.
    for path in (mar, feb, jan, mar):
        code, out, _ = run_import(capsys, cache, path)
        assert code == 0
        assert _by_charge_month(cache) == expected, path.name
    assert "billing period 2025-03" in out
    assert query(cache, "SELECT period_start, period_end, row_count FROM sources ORDER BY 1") == [
        (JAN, FEB, 31),
        (FEB, MAR, 28),
        (MAR, dt.date(2025, 4, 1), 32),
    ]


def test_a_stray_row_of_the_next_billing_period_does_not_replace_it(tmp_path, capsys):
    """Like the FOCUS sample's Oracle row: charged on the last evening of September, billed in October."""
    sep_month, oct_month = dt.date(2024, 9, 1), dt.date(2024, 10, 1)
    october = _focus_file(tmp_path / "oct.csv", _month_rows(oct_month, "1.00"))
    stray = _focus_row(dt.datetime(2024, 9, 30, 22), oct_month, "0.24")
    september = _focus_file(tmp_path / "sep.csv", [*_month_rows(sep_month, "2.00"), stray])
    cache = tmp_path / "cache.duckdb"

    assert run_import(capsys, cache, october)[0] == 0
    for path in (september, september, october, september):
        assert run_import(capsys, cache, path)[0] == 0
        assert _by_billing_month(cache) == {"2024-09": 30, "2024-10": 32}, path.name

    assert _by_charge_month(cache) == {"2024-09": (31, Decimal("60.24")), "2024-10": (31, Decimal("31.00"))}
    assert query(cache, "SELECT period_start, period_end, row_count FROM sources ORDER BY 1") == [
        (sep_month, oct_month, 31),
        (oct_month, dt.date(2024, 11, 1), 31),
    ]


def test_the_focus_sample_is_one_billing_period_and_reimports_in_place(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    october = _focus_file(
        tmp_path / "oracle_oct.csv",
        [
            _focus_row(
                dt.datetime(2024, 10, 2, 12), dt.date(2024, 10, 1), "9.00", BillingAccountId="20209880",
                ProviderName="Oracle", ResourceId="ocid1.instance.oc1.phx.abc",
            )
        ],
    )
    code, out, err = run_import(capsys, cache, FOCUS_SAMPLE, skip=True)
    assert code == 0, err
    assert "billing period 2024-09" in out
    assert query(cache, "SELECT period_start, period_end FROM sources") == [(dt.date(2024, 9, 1), dt.date(2024, 10, 1))]
    assert run_import(capsys, cache, FOCUS_SAMPLE, skip=True)[0] == 0
    assert query(cache, "SELECT count(*) FROM charges") == [(949,)]
    # Its one October-billed row does not make the sample replace October of a different file.
    assert run_import(capsys, cache, october)[0] == 0
    assert run_import(capsys, cache, FOCUS_SAMPLE, skip=True)[0] == 0
    assert query(cache, "SELECT count(*) FROM charges WHERE BilledCost = 9") == [(1,)]


def test_a_file_of_several_billing_periods_replaces_each_of_them_only(tmp_path, capsys):
    both = _focus_file(tmp_path / "jan_feb.csv", [*_month_rows(JAN, "1.00"), *_month_rows(FEB, "1.00")])
    feb = _focus_file(tmp_path / "feb.csv", _month_rows(FEB, "7.00"))
    cache = tmp_path / "cache.duckdb"

    code, out, _ = run_import(capsys, cache, both)
    assert code == 0 and "billing periods 2025-01..2025-02" in out
    assert run_import(capsys, cache, feb)[0] == 0
    assert _by_charge_month(cache) == {"2025-01": (31, Decimal("31.00")), "2025-02": (28, Decimal("196.00"))}

    assert run_import(capsys, cache, both)[0] == 0
    assert _by_charge_month(cache) == {"2025-01": (31, Decimal("31.00")), "2025-02": (28, Decimal("28.00"))}
    assert run_import(capsys, cache, feb)[0] == 0
    assert _by_charge_month(cache) == {"2025-01": (31, Decimal("31.00")), "2025-02": (28, Decimal("196.00"))}


def _ea_october(tmp_path: Path, *, keep_september_date: bool) -> Path:
    rows = read_rows(EA_ACTUAL)
    for index, row in enumerate(rows):
        row["BillingPeriodStartDate"], row["BillingPeriodEndDate"] = "10/01/2023", "10/31/2023"
        row["Date"] = "09/05/2023" if keep_september_date and index == 0 else row["Date"].replace("09/", "10/", 1)
        row["Cost"] = "1"
    return write_csv(tmp_path / "EA_ActualCost_October.csv", header_of(EA_ACTUAL), rows)


def test_legacy_export_window_is_its_billing_period(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    assert run_import(capsys, cache, EA_ACTUAL)[0] == 0
    september = cache_totals(cache)

    # An October invoice carrying a charge dated 5 September leaves September's rows alone.
    assert run_import(capsys, cache, _ea_october(tmp_path, keep_september_date=True))[0] == 0

    assert query(cache, "SELECT period_start, period_end, row_count FROM sources ORDER BY 1") == [
        (dt.date(2023, 9, 1), dt.date(2023, 10, 1), 11),
        (dt.date(2023, 10, 1), dt.date(2023, 11, 1), 11),
    ]
    sep_sum = query(cache, "SELECT sum(BilledCost) FROM charges WHERE BillingPeriodStart = '2023-09-01'")[0][0]
    assert Decimal(sep_sum).quantize(Decimal("0.01")) == september["USD"][0]  # type: ignore[arg-type]


def _manifest_folder(tmp_path: Path, name: str, rows: list[dict[str, str]], start: str, end: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    write_csv(folder / "part_0_0001.csv", header_of(EA_AMORTIZED), rows)
    manifest = {
        "manifestVersion": "2024-04-01",
        "exportConfig": {
            "exportName": "daily-amortized",
            "resourceId": "/providers/Microsoft.Billing/billingAccounts/8611537/providers/"
            "Microsoft.CostManagement/exports/daily-amortized",
            "type": "AmortizedCost",
        },
        "runInfo": {"startDate": start, "endDate": end},
        "blobs": [{"blobName": f"exports/{name}/part_0_0001.csv", "dataRowCount": len(rows)}],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_export_folder_window_is_the_manifest_period_never_widened(tmp_path, capsys):
    august_rows = [dict(r, Date="08/25/2023") for r in read_rows(EA_AMORTIZED)]
    august = _manifest_folder(tmp_path, "august", august_rows, "2023-08-01T00:00:00", "2023-08-31T00:00:00")
    september_rows = read_rows(EA_AMORTIZED)
    september_rows[0]["Date"] = "08/20/2023"  # a late charge in the September export
    september = _manifest_folder(tmp_path, "september", september_rows, "2023-09-01T00:00:00", "2023-09-30T00:00:00")
    cache = tmp_path / "cache.duckdb"

    assert run_import(capsys, cache, august)[0] == 0
    assert run_import(capsys, cache, september)[0] == 0
    assert run_import(capsys, cache, september)[0] == 0

    assert query(cache, "SELECT count(*) FROM charges WHERE x_ChargeDate = '2023-08-25'") == [(len(august_rows),)]
    assert query(cache, "SELECT period_start, period_end, row_count FROM sources ORDER BY 1") == [
        (dt.date(2023, 8, 1), dt.date(2023, 9, 1), len(august_rows)),
        (dt.date(2023, 9, 1), dt.date(2023, 10, 1), len(september_rows)),
    ]


# ---------------------------------------------------------------- 6: file names are literal paths


def test_a_file_name_with_glob_characters_is_read_literally(tmp_path, capsys):
    plain = tmp_path / "a1_ActualCost.csv"
    shutil.copy(EA_ACTUAL, plain)
    rows = read_rows(EA_ACTUAL)
    for row in rows:
        row["Cost"] = str(Decimal(row["Cost"]) * 3)
    bracketed = write_csv(tmp_path / "a[1]_ActualCost.csv", header_of(EA_ACTUAL), rows)
    starred = tmp_path / "a*_ActualCost.csv"
    shutil.copy(bracketed, starred)
    cache = tmp_path / "cache.duckdb"

    code, _, err = run_import(capsys, cache, bracketed)

    assert code == 0, err
    tripled = python_totals(bracketed, currency="BillingCurrency", billed="Cost", effective=None)
    assert cache_totals(cache) == {"USD": (tripled["USD"][0], None)}
    assert query(cache, "SELECT count(*), min(path) FROM sources") == [(1, str(bracketed.resolve()))]
    # A star in the name matches only itself, not every file beside it.
    assert run_import(capsys, cache, starred)[0] == 0
    assert query(cache, "SELECT count(*) FROM charges") == [(11,)]
    assert cache_totals(cache) == {"USD": (tripled["USD"][0], None)}


def test_a_parquet_name_with_glob_characters_is_read_literally(tmp_path, capsys):
    import duckdb

    sample = _focus_file(tmp_path / "source.csv", _month_rows(JAN, "1.00"))
    other = _focus_file(tmp_path / "other.csv", _month_rows(JAN, "5.00"))
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_csv('{sample}', all_varchar = true)) TO '{tmp_path / 'p[1].parquet'}' "
                "(FORMAT parquet)")
    con.execute(f"COPY (SELECT * FROM read_csv('{other}', all_varchar = true)) TO '{tmp_path / 'p1.parquet'}' "
                "(FORMAT parquet)")
    con.close()
    cache = tmp_path / "cache.duckdb"
    code, _, err = run_import(capsys, cache, tmp_path / "p[1].parquet")
    assert code == 0, err
    assert _by_charge_month(cache) == {"2025-01": (31, Decimal("31.00"))}


# ---------------------------------------------------------------- 8: dates outside 2000..2100


@pytest.mark.parametrize("value", ["9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-30"])
def test_focus_charge_dates_outside_the_sane_range_are_bad_rows(tmp_path, capsys, value):
    rows = _month_rows(JAN, "1.00")
    rows[2]["ChargePeriodStart"] = value
    path = _focus_file(tmp_path / "far.csv", rows)
    cache = _seeded(tmp_path, capsys)

    err = _refused(capsys, cache, path)

    assert "far.csv: row 3, ChargePeriodStart: expected an ISO 8601 date and time" in err
    assert "2000" in err and "2100" in err and repr(value) in err
    code, out, err = run_import(capsys, cache, path, skip=True)
    assert code == 0 and "far.csv: 30 rows" in out and "row 3, ChargePeriodStart" in err
    assert query(cache, "SELECT min(x_ChargeDate) >= '2000-01-01', max(x_ChargeDate) < '2101-01-01' FROM charges") == [
        (True, True)
    ]


def test_focus_billing_period_outside_the_sane_range_is_a_bad_row(tmp_path, capsys):
    rows = _month_rows(JAN, "1.00")
    rows[0]["BillingPeriodEnd"] = "9999-12-31T00:00:00Z"
    cache = _seeded(tmp_path, capsys)
    err = _refused(capsys, cache, _focus_file(tmp_path / "far_end.csv", rows))
    assert "row 1, BillingPeriodEnd" in err and "'9999-12-31T00:00:00Z'" in err


@pytest.mark.parametrize(("column", "value"), [("Date", "12/31/9999"), ("Date", "01/01/0001"),
                                                ("BillingPeriodEndDate", "12/31/9999")])
def test_ea_dates_outside_the_sane_range_are_bad_rows(tmp_path, capsys, column, value):
    rows = read_rows(EA_ACTUAL)
    rows[1][column] = value
    path = write_csv(tmp_path / "ActualCost_far.csv", header_of(EA_ACTUAL), rows)
    cache = _seeded(tmp_path, capsys)
    err = _refused(capsys, cache, path)
    assert f"row 2, {column}: expected a date (MM/DD/YYYY or YYYY-MM-DD) in the years 2000 to 2100" in err
    assert repr(value) in err


# ---------------------------------------------------------------- 9: manifest.json shape


Mutation = Callable[[dict[str, Any]], None]

_MANIFEST_MUTATIONS: list[tuple[str, Mutation, str]] = [
    ("nan-rows", lambda m: m["blobs"][0].update(dataRowCount=math.nan), "blobs[0].dataRowCount"),
    ("negative-rows", lambda m: m["blobs"][0].update(dataRowCount=-3), "blobs[0].dataRowCount"),
    ("fraction-rows", lambda m: m["blobs"][0].update(dataRowCount=1.5), "blobs[0].dataRowCount"),
    ("bool-rows", lambda m: m["blobs"][0].update(dataRowCount=True), "blobs[0].dataRowCount"),
    ("text-rows", lambda m: m["blobs"][0].update(dataRowCount="28"), "blobs[0].dataRowCount"),
    ("config-text", lambda m: m.update(exportConfig="oops"), "exportConfig"),
    ("run-number", lambda m: m.update(runInfo=7), "runInfo"),
    ("blob-number", lambda m: m.update(blobs=[7]), "blobs[0]"),
    ("blob-name-number", lambda m: m["blobs"][0].update(blobName=5), "blobs[0].blobName"),
    ("blob-name-dots", lambda m: m["blobs"][0].update(blobName="exports/.."), "blobs[0].blobName"),
    ("start-number", lambda m: m["runInfo"].update(startDate=7), "runInfo.startDate"),
    ("start-far", lambda m: m["runInfo"].update(startDate="0001-01-01T00:00:00"), "runInfo.startDate"),
    ("end-far", lambda m: m["runInfo"].update(endDate="9999-12-31T00:00:00"), "runInfo.endDate"),
    ("end-before-start", lambda m: m["runInfo"].update(endDate="2023-08-01T00:00:00"), "runInfo.endDate"),
    ("type-number", lambda m: m["exportConfig"].update(type=5), "exportConfig.type"),
    ("scope-list", lambda m: m["exportConfig"].update(resourceId=[]), "exportConfig.resourceId"),
    ("name-number", lambda m: m["exportConfig"].update(exportName=1), "exportConfig.exportName"),
    ("top-list", lambda m: m.clear(), '"blobs"'),
]


@pytest.mark.parametrize(("mutate", "key"), [(m, k) for _, m, k in _MANIFEST_MUTATIONS],
                         ids=[name for name, _, _ in _MANIFEST_MUTATIONS])
def test_a_malformed_manifest_gets_one_line_naming_the_key(tmp_path, capsys, mutate, key):
    folder = _manifest_folder(
        tmp_path, "export", read_rows(EA_AMORTIZED), "2023-09-01T00:00:00", "2023-09-30T00:00:00"
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    mutate(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    cache = _seeded(tmp_path, capsys)

    err = _refused(capsys, cache, folder)

    assert "manifest.json" in err and key in err


def test_a_manifest_that_is_a_list_is_refused(tmp_path, capsys):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "manifest.json").write_text("[1, 2]")
    cache = _seeded(tmp_path, capsys)
    assert "manifest.json" in _refused(capsys, cache, folder)


# ---------------------------------------------------------------- 11: import messages


def _good_focus_rows(count: int) -> list[dict[str, str]]:
    return _month_rows(JAN, "1.00")[:count]


def test_a_row_longer_than_2_mb_is_named_as_such(tmp_path, capsys):
    rows = _good_focus_rows(5)
    rows[2]["ChargeDescription"] = "x" * (3 * 1024 * 1024)
    cache = _seeded(tmp_path, capsys)
    err = _refused(capsys, cache, _focus_file(tmp_path / "long.csv", rows))
    assert "long.csv: row 3: the row is longer than 2 MB" in err


def test_a_gzip_of_one_huge_line_after_the_header_is_refused(tmp_path, capsys):
    header = ",".join(FOCUS_HEADER).encode() + b"\n"
    path = tmp_path / "huge.csv.gz"
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(header)
        for _ in range(80):
            handle.write(b"y" * (1 << 20))
    cache = _seeded(tmp_path, capsys)
    err = _refused(capsys, cache, path)
    assert "huge.csv.gz" in err and "longer than" in err and "nothing to import" not in err


def test_a_gzip_whose_first_line_never_ends_is_refused(tmp_path, capsys):
    path = tmp_path / "oneline.csv.gz"
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(",".join(FOCUS_HEADER).encode())
        for _ in range(3):
            handle.write(b"," * (1 << 20))
    cache = _seeded(tmp_path, capsys)
    err = _refused(capsys, cache, path)
    assert "oneline.csv.gz: the first line is longer than 1 MB" in err


def test_a_plain_file_with_a_huge_line_in_the_middle_is_refused(tmp_path, capsys):
    rows = _good_focus_rows(5)
    rows[2]["ChargeDescription"] = "x" * (40 * 1024 * 1024)  # past DuckDB's buffer: it would skip the row silently
    cache = _seeded(tmp_path, capsys)
    err = _refused(capsys, cache, _focus_file(tmp_path / "middle.csv", rows))
    assert "middle.csv" in err and "longer than" in err


def _lf_file(path: Path, rows: list[dict[str, str]], *, quote_cr: bool) -> Path:
    """A CSV with LF line ends; a CR in a value is quoted only when asked (Python's csv never quotes it here)."""
    special = ',"\n\r' if quote_cr else ',"\n'
    lines = [",".join(FOCUS_HEADER)]
    for row in rows:
        values = [row[name] for name in FOCUS_HEADER]
        lines.append(",".join('"' + v.replace('"', '""') + '"' if any(c in v for c in special) else v for v in values))
    path.write_bytes(("\n".join(lines) + "\n").encode())
    return path


def test_a_carriage_return_inside_a_quoted_field_imports(tmp_path, capsys):
    rows = _good_focus_rows(5)
    rows[1]["ChargeDescription"] = "line one\rline two"
    cache = tmp_path / "cache.duckdb"
    code, _, err = run_import(capsys, cache, _lf_file(tmp_path / "cr_quoted.csv", rows, quote_cr=True))
    assert code == 0, err
    assert query(cache, "SELECT count(*) FROM charges WHERE ChargeDescription = ?", ["line one\rline two"]) == [(1,)]


def test_a_lone_carriage_return_outside_quotes_names_the_row(tmp_path, capsys):
    rows = _good_focus_rows(5)
    rows[3]["ChargeDescription"] = "line one\rline two"
    cache = _seeded(tmp_path, capsys)
    err = _refused(capsys, cache, _lf_file(tmp_path / "cr.csv", rows, quote_cr=False))
    assert "cr.csv: row 4" in err and "carriage return" in err and "state machine" not in err


@pytest.mark.parametrize("twin", ["billedcost", "BilledCost", " BILLEDCOST "])
def test_a_column_spelled_twice_is_refused(tmp_path, capsys, twin):
    rows = [dict(r, **{"__twin": "999"}) for r in _good_focus_rows(3)]
    path = tmp_path / "twice.csv"
    write_csv(path, [*FOCUS_HEADER, "__twin"], rows)
    path.write_text(path.read_text().replace("__twin", twin, 1))
    cache = _seeded(tmp_path, capsys)
    err = _refused(capsys, cache, path)
    assert "twice.csv" in err and "BilledCost" in err and "twice" in err


def test_a_parquet_column_spelled_twice_is_refused(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _good_focus_rows(3)
    columns = [pa.array([r[name] for r in rows]) for name in FOCUS_HEADER]
    table = pa.Table.from_arrays([*columns, pa.array(["999"] * 3)], names=[*FOCUS_HEADER, "billedcost"])
    path = tmp_path / "twice.parquet"
    pq.write_table(table, path)
    cache = _seeded(tmp_path, capsys)
    err = _refused(capsys, cache, path)
    assert "twice.parquet: the header has the column BilledCost twice (BilledCost, billedcost)" in err


def test_per_field_bad_row_counts_count_rows_once(tmp_path, capsys):
    rows = _good_focus_rows(10)
    for row in rows[:4]:
        row["BilledCost"] = "abc"
    cache = _seeded(tmp_path, capsys)
    err = _refused(capsys, cache, _focus_file(tmp_path / "bad.csv", rows))
    assert "4 bad rows in all (BilledCost 4)" in err


def test_a_focus_contract_commitment_file_is_named_and_imported(tmp_path, capsys):
    header = [
        "BillingCurrency", "ContractCommitmentCategory", "ContractCommitmentCost", "ContractCommitmentDescription",
        "ContractCommitmentId", "ContractCommitmentPeriodEnd", "ContractCommitmentPeriodStart",
        "ContractCommitmentQuantity", "ContractCommitmentType", "ContractCommitmentUnit", "ContractId",
        "ContractPeriodEnd", "ContractPeriodStart",
    ]
    row = dict(zip(header, ["USD", "Spend", "120000", "MACC", "cc-1", "2026-01-01T00:00:00Z",
                            "2025-01-01T00:00:00Z", "", "Spend commitment", "", "contract-1",
                            "2026-01-01T00:00:00Z", "2025-01-01T00:00:00Z"], strict=True))
    cache = _seeded(tmp_path, capsys)
    code, out, err = run_import(capsys, cache, write_csv(tmp_path / "commitments.csv", header, [row]))
    # Imported beside the cost since the commitments view (tests/test_contract_commitments.py has the rest).
    assert code == 0, err
    assert "commitments.csv: 1 contract commitments (FOCUS 1.3 Contract Commitment)" in out


def test_the_skipped_rows_listing_keeps_its_lines(tmp_path, capsys):
    rows = _good_focus_rows(10)
    for row in rows[:3]:
        row["BilledCost"] = "abc"
    code, _, err = run_import(capsys, tmp_path / "cache.duckdb", _focus_file(tmp_path / "bad.csv", rows), skip=True)
    assert code == 0
    assert "\\n" not in err
    assert err.splitlines()[1:4] == [
        f"  row {n}, BilledCost: expected a decimal number (e.g. 12.34 or 1.2E-05), found 'abc'" for n in (1, 2, 3)
    ]
