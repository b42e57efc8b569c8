"""`finops-tui import` of FOCUS files: the real sample, 1.2 / 1.3 / Parquet / gzip variants, idempotence."""

from __future__ import annotations

import gzip
import shutil
from decimal import Decimal

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from finops_tui.store.tag_sets import join_sql, row_tags_sql
from tests.import_helpers import (
    EA_ACTUAL,
    FOCUS_SAMPLE,
    cache_totals,
    checksum,
    python_totals,
    query,
    read_rows,
    run_import,
    shifted_focus_rows,
    write_csv,
    write_focus_variant,
)


def _sample_totals(skip: set[int]) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    return python_totals(
        FOCUS_SAMPLE, currency="BillingCurrency", billed="BilledCost", effective="EffectiveCost", skip_rows=skip
    )


def test_sample_imports_the_good_rows_and_totals_match_an_independent_sum(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    shifted = shifted_focus_rows()
    assert len(shifted) == 51  # every Microsoft row of the sample: AvailabilityZone holds the unit price

    code, out, err = run_import(capsys, cache, FOCUS_SAMPLE, skip=True)

    assert code == 0
    assert "focus_sample.csv: 949 rows, 2024-09-01..2024-09-30" in out
    assert "FOCUS 1.0, metric focus" in out
    assert "skipped 51 bad rows (AvailabilityZone 51)" in err
    for row in shifted[:5]:  # the first few are listed with the field and the value found
        assert f"row {row}, AvailabilityZone" in err
    assert cache_totals(cache) == _sample_totals(set(shifted))
    assert query(cache, "SELECT count(*), count(DISTINCT source_id) FROM charges") == [(949, 1)]


def test_shifted_rows_refuse_the_import_and_leave_the_cache_unchanged(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    assert run_import(capsys, cache, EA_ACTUAL)[0] == 0
    before = checksum(cache)

    code, out, err = run_import(capsys, cache, FOCUS_SAMPLE)

    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    first = shifted_focus_rows()[0]
    assert f"focus_sample.csv: row {first}, AvailabilityZone: expected a name" in err
    assert "found '0.05'" in err and "51 bad rows" in err and "--skip-bad-rows" in err
    assert checksum(cache) == before


def test_reimporting_the_same_file_replaces_its_rows(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    run_import(capsys, cache, FOCUS_SAMPLE, skip=True)
    first = cache_totals(cache)

    code, out, _ = run_import(capsys, cache, FOCUS_SAMPLE, skip=True)

    assert code == 0 and "949 rows" in out
    assert cache_totals(cache) == first
    assert query(cache, "SELECT count(*) FROM charges") == [(949,)]
    assert query(cache, "SELECT count(*), sum(row_count) FROM sources") == [(1, 949)]


def test_hourly_rows_are_kept_and_dated_by_their_start(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    run_import(capsys, cache, FOCUS_SAMPLE, skip=True)
    hourly = query(
        cache,
        "SELECT count(*) FROM charges WHERE ChargePeriodEnd - ChargePeriodStart = INTERVAL 1 HOUR "
        "AND x_ChargeDate = CAST(ChargePeriodStart AS DATE)",
    )
    assert hourly[0][0] > 500


def test_null_literals_become_nulls_and_tags_become_maps(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    run_import(capsys, cache, FOCUS_SAMPLE, skip=True)
    literal = "SELECT count(*) FROM charges WHERE upper(ResourceName) = 'NULL' OR ResourceName = ''"
    assert query(cache, literal) == [(0,)]
    assert query(cache, "SELECT count(*) FROM charges WHERE ResourceName IS NULL")[0][0] > 900
    raw = read_rows(FOCUS_SAMPLE)[1]  # a row with tags
    tags = query(cache, f"SELECT {row_tags_sql()} FROM charges c {join_sql()} WHERE c.ResourceId = lower(?) LIMIT 1",
                 [raw["ResourceId"]])
    assert tags[0][0]["application"] == "BrightLensMatrix"


def test_gzip_csv_imports_like_the_plain_csv(tmp_path, capsys):
    packed = tmp_path / "focus_sample.csv.gz"
    with FOCUS_SAMPLE.open("rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    cache = tmp_path / "cache.duckdb"

    code, out, _ = run_import(capsys, cache, packed, skip=True)

    assert code == 0 and "949 rows" in out
    assert cache_totals(cache) == _sample_totals(set(shifted_focus_rows()))


@pytest.mark.parametrize(("version", "label"), [("1.2", "FOCUS 1.2"), ("1.3", "FOCUS 1.3")])
def test_microsoft_focus_exports_of_each_version(tmp_path, capsys, version, label):
    export = write_focus_variant(tmp_path / f"focus_{version}.csv", version)
    cache = tmp_path / "cache.duckdb"

    code, out, err = run_import(capsys, cache, export)

    assert code == 0, err
    assert "949 rows" in out and label in out
    assert cache_totals(cache) == _sample_totals(set(shifted_focus_rows()))
    # 1.3 names the provider ServiceProviderName; either way it lands in ProviderName.
    assert query(cache, "SELECT DISTINCT ProviderName FROM charges ORDER BY 1") == [("AWS",), ("Oracle",)]


def test_parquet_with_text_columns_and_null_literals(tmp_path, capsys):
    export = write_focus_variant(
        tmp_path / "focus_1_2.parquet", "1.2", fmt="parquet", drop_shifted=False, extra=("AvailabilityZone",)
    )
    cache = tmp_path / "cache.duckdb"

    code, out, err = run_import(capsys, cache, export, skip=True)

    assert code == 0
    assert "949 rows" in out and "FOCUS 1.2" in out
    assert "skipped 51 bad rows" in err and "row 947, AvailabilityZone" in err
    assert cache_totals(cache) == _sample_totals(set(shifted_focus_rows()))
    assert query(cache, "SELECT count(*) FROM charges WHERE upper(ResourceName) = 'NULL'") == [(0,)]


def test_typed_parquet_matches_the_csv(tmp_path, capsys):
    """A Parquet file with real types (decimal costs, timestamps) as pyarrow writes it."""
    export = write_focus_variant(tmp_path / "focus_1_2.csv", "1.2")
    table = pa_csv.read_csv(
        export,
        convert_options=pa_csv.ConvertOptions(
            null_values=["", "NULL"],
            strings_can_be_null=True,
            column_types={
                "BilledCost": pa.decimal128(38, 12),
                "EffectiveCost": pa.decimal128(38, 12),
                "ListCost": pa.decimal128(38, 12),
                "ContractedCost": pa.decimal128(38, 12),
                "ChargePeriodStart": pa.timestamp("us"),
                "ChargePeriodEnd": pa.timestamp("us"),
                "ConsumedQuantity": pa.float64(),
            },
        ),
    )
    parquet = tmp_path / "focus_typed.parquet"
    pq.write_table(table, parquet)
    csv_cache, parquet_cache = tmp_path / "csv.duckdb", tmp_path / "parquet.duckdb"

    run_import(capsys, csv_cache, export)
    code, _, err = run_import(capsys, parquet_cache, parquet)

    assert code == 0, err
    assert cache_totals(parquet_cache) == cache_totals(csv_cache)
    assert query(parquet_cache, "SELECT min(ChargePeriodStart), max(ChargePeriodEnd) FROM charges") == query(
        csv_cache, "SELECT min(ChargePeriodStart), max(ChargePeriodEnd) FROM charges"
    )


def test_money_is_exact_and_scientific_notation_parses(tmp_path, capsys):
    rows = read_rows(FOCUS_SAMPLE)
    header = list(rows[0])
    first = dict(rows[0], BilledCost="1.2E-05", EffectiveCost="0.1000000000001", BillingAccountId="acct-sci")
    second = dict(rows[0], BilledCost="0.2", EffectiveCost="123456789012345.123456789012", BillingAccountId="acct-sci")
    path = tmp_path / "sci.csv"
    write_csv(path, header, [first, second])
    cache = tmp_path / "cache.duckdb"

    assert run_import(capsys, cache, path)[0] == 0
    assert query(cache, "SELECT sum(BilledCost), sum(EffectiveCost) FROM charges") == [
        (Decimal("0.200012000000"), Decimal("123456789012345.223456789012"))
    ]


def test_timestamps_with_offsets_are_converted_to_utc(tmp_path, capsys):
    row = dict(
        read_rows(FOCUS_SAMPLE)[0],
        ChargePeriodStart="2024-09-18T23:30:00-02:00",
        ChargePeriodEnd="2024-09-19T00:30:00-02:00",
    )
    path = write_csv(tmp_path / "offset.csv", list(row), [row])
    cache = tmp_path / "cache.duckdb"
    assert run_import(capsys, cache, path)[0] == 0
    start, day = query(cache, "SELECT ChargePeriodStart, x_ChargeDate FROM charges")[0]
    assert str(start) == "2024-09-19 01:30:00" and str(day) == "2024-09-19"


def test_version_1_0r2_is_told_by_seconds_in_microsoft_timestamps(tmp_path, capsys):
    export = write_focus_variant(tmp_path / "focus_1_2.csv", "1.2")
    rows = read_rows(export)
    newer = {
        "InvoiceId",
        "PricingCurrency",
        "ServiceSubcategory",
        "CapacityReservationId",
        "SkuMeter",
        "CapacityReservationStatus",
        "CommitmentDiscountQuantity",
        "CommitmentDiscountUnit",
        "SkuPriceDetails",
    }
    header = [c for c in rows[0] if c not in newer] + ["x_SkuDetails"]
    trimmed = [{k: r.get(k, "") for k in header} for r in rows]
    path = write_csv(tmp_path / "focus_1_0r2.csv", header, trimmed)
    cache = tmp_path / "cache.duckdb"
    code, out, _ = run_import(capsys, cache, path)
    assert code == 0 and "FOCUS 1.0r2" in out


def test_empty_focus_file_with_header_only_is_zero_rows(tmp_path, capsys):
    path = tmp_path / "empty_focus.csv"
    path.write_text(FOCUS_SAMPLE.read_text().splitlines()[0] + "\n")
    cache = tmp_path / "cache.duckdb"
    code, out, _ = run_import(capsys, cache, path)
    assert code == 0 and "empty_focus.csv: 0 rows" in out
