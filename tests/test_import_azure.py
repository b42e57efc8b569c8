"""`finops-tui import` of Azure cost details (EA and MCA, actual and amortized) and export folders."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from decimal import Decimal
from pathlib import Path

from finops_tui.store.tag_sets import join_sql, row_tags_sql
from tests.import_helpers import (
    CENT,
    EA_ACTUAL,
    EA_AMORTIZED,
    EA_NO_ROWS,
    cache_totals,
    checksum,
    header_of,
    python_totals,
    query,
    read_rows,
    run_import,
    write_csv,
)

ACTUAL_TOTALS = python_totals(EA_ACTUAL, currency="BillingCurrency", billed="Cost", effective=None)
AMORTIZED_TOTALS = python_totals(EA_AMORTIZED, currency="BillingCurrency", billed=None, effective="Cost")

# EA header -> the MCA (camelCase) spelling of the same column.
MCA_NAMES = {
    "Cost": "costInBillingCurrency",
    "BillingCurrency": "billingCurrency",
    "ResourceGroup": "resourceGroupName",
    "SubscriptionId": "subscriptionId",
    "SubscriptionName": "subscriptionName",
    "Date": "date",
    "MeterCategory": "meterCategory",
    "ResourceId": "ResourceId",
    "Tags": "tags",
    "ChargeType": "chargeType",
    "PricingModel": "pricingModel",
}


def test_ea_actual_fills_billed_cost_only(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    code, out, _ = run_import(capsys, cache, EA_ACTUAL)
    assert code == 0
    assert "EA_ActualCost_Small.csv: 11 rows, 2023-09-04..2023-09-21, Microsoft, Azure EA cost details" in out
    assert "metric actual" in out
    assert cache_totals(cache) == {"USD": (ACTUAL_TOTALS["USD"][0], None)}
    assert query(cache, "SELECT kind, scope, metric, period_start, period_end, row_count FROM sources") == [
        # The window is the billing period (BillingPeriodStartDate..EndDate), not the days charged.
        ("azure-export", "8611537", "actual", dt.date(2023, 9, 1), dt.date(2023, 10, 1), 11)
    ]


def test_ea_amortized_fills_effective_cost_only(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    code, out, _ = run_import(capsys, cache, EA_AMORTIZED)
    assert code == 0 and "28 rows" in out and "metric amortized" in out
    assert cache_totals(cache) == {"USD": (None, AMORTIZED_TOTALS["USD"][1])}


def test_actual_and_amortized_together_are_never_double_counted(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    code, out, _ = run_import(capsys, cache, EA_ACTUAL, EA_AMORTIZED, EA_NO_ROWS)
    assert code == 0
    assert "EA_NoRows.csv: 0 rows" in out
    assert cache_totals(cache) == {"USD": (ACTUAL_TOTALS["USD"][0], AMORTIZED_TOTALS["USD"][1])}
    assert query(cache, "SELECT count(*) FROM charges WHERE BilledCost IS NOT NULL AND EffectiveCost IS NOT NULL") == [
        (0,)
    ]


def test_no_rows_export_is_zero_rows_not_an_error(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    code, out, err = run_import(capsys, cache, EA_NO_ROWS)
    assert (code, err) == (0, "")
    assert out.strip() == "EA_NoRows.csv: 0 rows (Azure EA cost details); nothing to import"
    assert not cache.exists()  # nothing written, so no empty cache file


def test_mapping_follows_microsofts_focus_conversion(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    run_import(capsys, cache, EA_ACTUAL, EA_AMORTIZED)

    purchase = query(
        cache,
        "SELECT ChargeCategory, PricingCategory, CommitmentDiscountType, CommitmentDiscountCategory, "
        "CommitmentDiscountStatus, ServiceName, ChargeFrequency FROM charges WHERE ChargeCategory = 'Purchase'",
    )
    assert purchase == [("Purchase", "Committed", "Reservation", "Usage", None, "Azure Reservations", "Recurring")]
    savings_plan_usage = query(
        cache,
        "SELECT PricingCategory, CommitmentDiscountType, CommitmentDiscountCategory, CommitmentDiscountStatus "
        "FROM charges WHERE CommitmentDiscountId ILIKE '%/microsoft.billingbenefits/%'",
    )
    assert savings_plan_usage == [("Committed", "Savings Plan", "Spend", "Used")]
    vault = query(
        cache,
        "SELECT ResourceId, ResourceType, ServiceName, ServiceCategory, x_ResourceGroupName, SubAccountId, "
        "ChargePeriodEnd - ChargePeriodStart, BillingPeriodStart, BillingPeriodEnd, ProviderName "
        "FROM charges WHERE ResourceName = 'FTK-MICFLA-5PD7GDO37OOZC' AND BilledCost IS NOT NULL",
    )
    assert vault == [
        (
            "/subscriptions/64e355d7-997c-491d-b0c1-8414dccfcf42/resourcegroups/ftk-micflan-darkslate2/providers/"
            "microsoft.keyvault/vaults/ftk-micfla-5pd7gdo37oozc",
            "microsoft.keyvault/vaults",
            "Key Vault",
            "Security",
            "FTK-MICFLAN-DARKSLATE2",
            "/subscriptions/64e355d7-997c-491d-b0c1-8414dccfcf42",
            dt.timedelta(days=1),
            dt.datetime(2023, 9, 1),
            dt.datetime(2023, 10, 1),
            "Microsoft",
        )
    ]
    regions = dict(query(cache, "SELECT DISTINCT RegionId, RegionName FROM charges WHERE RegionId IS NOT NULL"))
    assert regions["eastus"] == "East US" and regions["uksouth"] == "UK South"
    tags = query(cache, f"SELECT {row_tags_sql()} FROM charges c {join_sql()} "
                        "WHERE c.ResourceName = 'dbstoragewp6hglwvvrad2' LIMIT 1")[0][0]
    assert tags["application"] == "databricks" and tags["CostCenter"] == "1234"


def test_resource_ids_are_compared_case_insensitively(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    run_import(capsys, cache, EA_ACTUAL)
    raw_ids = {r["ResourceId"] for r in read_rows(EA_ACTUAL) if r["ResourceId"]}
    assert len({i.lower() for i in raw_ids}) < len(raw_ids) or any(i != i.lower() for i in raw_ids)
    assert query(cache, "SELECT count(*) FROM charges WHERE ResourceId <> lower(ResourceId)") == [(0,)]
    assert query(cache, "SELECT count(*) FROM resources") == query(
        cache, "SELECT count(DISTINCT lower(ResourceId)) FROM charges"
    )


def _mca_copy(target: Path) -> Path:
    header = [MCA_NAMES.get(name, name[0].lower() + name[1:]) for name in header_of(EA_ACTUAL)]
    rows = [dict(zip(header, r.values(), strict=True)) for r in read_rows(EA_ACTUAL)]
    return write_csv(target, header, rows)


def test_mca_headers_are_matched_case_insensitively(tmp_path, capsys):
    mca = _mca_copy(tmp_path / "MCA_ActualCost.csv")
    cache = tmp_path / "cache.duckdb"
    code, out, _ = run_import(capsys, cache, mca)
    assert code == 0 and "Azure MCA cost details" in out and "11 rows" in out
    assert cache_totals(cache) == {"USD": (ACTUAL_TOTALS["USD"][0], None)}
    raw = read_rows(EA_ACTUAL)
    groups = len({r["ResourceGroup"] for r in raw if r["ResourceGroup"]})
    subscriptions = len({r["SubscriptionId"].lower() for r in raw})
    assert query(cache, "SELECT count(DISTINCT x_ResourceGroupName), count(DISTINCT SubAccountId) FROM charges") == [
        (groups, subscriptions)
    ]


def test_iso_dates_work_like_us_dates(tmp_path, capsys):
    rows = read_rows(EA_ACTUAL)
    for row in rows:
        for column in ("Date", "BillingPeriodStartDate", "BillingPeriodEndDate"):
            month, day, year = row[column].split("/")
            row[column] = f"{year}-{month}-{day}"
    iso = write_csv(tmp_path / "ActualCost_iso.csv", header_of(EA_ACTUAL), rows)
    cache = tmp_path / "cache.duckdb"
    code, out, _ = run_import(capsys, cache, iso)
    assert code == 0 and "2023-09-04..2023-09-21" in out
    assert cache_totals(cache) == {"USD": (ACTUAL_TOTALS["USD"][0], None)}


def test_metric_from_content_when_the_name_does_not_say(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    actual, amortized = tmp_path / "export_a.csv", tmp_path / "export_b.csv"
    shutil.copy(EA_ACTUAL, actual)  # has a reservation purchase with a cost
    shutil.copy(EA_AMORTIZED, amortized)  # has reservation-covered usage with a cost
    code, out, err = run_import(capsys, cache, actual, amortized)
    assert code == 0 and err == ""
    assert "export_a.csv: 11 rows" in out and "metric actual" in out.splitlines()[0]
    assert "metric amortized" in out.splitlines()[1]


def test_ambiguous_metric_is_imported_as_actual_with_a_note(tmp_path, capsys):
    rows = [r for r in read_rows(EA_ACTUAL) if r["PricingModel"] == "OnDemand"]
    path = write_csv(tmp_path / "export.csv", header_of(EA_ACTUAL), rows)
    cache = tmp_path / "cache.duckdb"
    code, out, err = run_import(capsys, cache, path)
    assert code == 0 and "metric actual" in out
    assert "cannot tell actual from amortized" in err and "imported as actual" in err


def test_newer_export_of_the_same_scope_and_period_replaces_the_older(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    run_import(capsys, cache, EA_ACTUAL)
    rows = read_rows(EA_ACTUAL)
    for row in rows:
        row["Cost"] = str(Decimal(row["Cost"]) * 2)
    newer = write_csv(tmp_path / "EA_ActualCost_newer.csv", header_of(EA_ACTUAL), rows)

    code, _, _ = run_import(capsys, cache, newer)

    assert code == 0
    newer_totals = python_totals(newer, currency="BillingCurrency", billed="Cost", effective=None)
    assert cache_totals(cache) == {"USD": (newer_totals["USD"][0], None)}
    assert query(cache, "SELECT count(*) FROM charges") == [(11,)]
    assert query(cache, "SELECT count(*), min(path) LIKE '%newer.csv' FROM sources") == [(1, True)]


def _export_folder(tmp_path: Path, *, drop_part: bool = False, wrong_count: bool = False) -> Path:
    """An amortized export split in two parts (CSV and CSV.GZ) with a Cost Management manifest."""
    folder = tmp_path / "amortized-export"
    folder.mkdir()
    rows, header = read_rows(EA_AMORTIZED), header_of(EA_AMORTIZED)
    write_csv(folder / "part_0_0001.csv", header, rows[:15])
    plain = write_csv(tmp_path / "part_1.csv", header, rows[15:])
    with plain.open("rb") as src, gzip.open(folder / "part_1_0002.csv.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    if drop_part:
        (folder / "part_1_0002.csv.gz").unlink()
    manifest = {
        "manifestVersion": "2024-04-01",
        "byteCount": 1,
        "blobCount": 2,
        "dataRowCount": len(rows),
        "exportConfig": {
            "exportName": "daily-amortized",
            "resourceId": "/providers/Microsoft.Billing/billingAccounts/8611537/providers/"
            "Microsoft.CostManagement/exports/daily-amortized",
            "dataVersion": "2023-12-01-preview",
            "apiVersion": "2023-07-01-preview",
            "type": "AmortizedCost",
            "timeFrame": "MonthToDate",
            "granularity": "Daily",
        },
        "deliveryConfig": {"partitionData": True, "fileFormat": "Csv", "compressionMode": "gzip"},
        "runInfo": {
            "executionType": "Scheduled",
            "submittedTime": "2023-10-01T05:00:00Z",
            "runId": "c0ffee",
            "startDate": "2023-09-01T00:00:00",
            "endDate": "2023-09-30T00:00:00",
        },
        "blobs": [
            {
                "blobName": "exports/daily-amortized/20230901-20230930/c0ffee/part_0_0001.csv",
                "byteCount": 1,
                "dataRowCount": 15,
            },
            {
                "blobName": "exports/daily-amortized/20230901-20230930/c0ffee/part_1_0002.csv.gz",
                "byteCount": 1,
                "dataRowCount": len(rows) - 15 + (1 if wrong_count else 0),
            },
        ],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_export_folder_is_one_window_from_its_manifest(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    code, out, err = run_import(capsys, cache, _export_folder(tmp_path))
    assert code == 0, err
    assert "amortized-export: 28 rows" in out and "metric amortized" in out
    assert cache_totals(cache) == {"USD": (None, AMORTIZED_TOTALS["USD"][1])}
    assert query(cache, "SELECT scope, metric, period_start, period_end, row_count FROM sources") == [
        (
            "/providers/microsoft.billing/billingaccounts/8611537",
            "amortized",
            dt.date(2023, 9, 1),
            dt.date(2023, 10, 1),
            28,
        )
    ]


def test_export_folder_with_a_missing_part_is_refused(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    run_import(capsys, cache, EA_ACTUAL)
    before = checksum(cache)
    code, _, err = run_import(capsys, cache, _export_folder(tmp_path, drop_part=True))
    assert code == 1
    assert "part file part_1_0002.csv.gz listed in manifest.json is missing" in err
    assert checksum(cache) == before


def test_export_part_shorter_than_its_manifest_is_refused(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    code, _, err = run_import(capsys, cache, _export_folder(tmp_path, wrong_count=True))
    assert code == 1
    assert "manifest.json says 14 rows, the file has 13" in err
    assert not cache.exists()  # nothing written, so no empty cache file


def test_cent_rounding_matches_for_long_decimals(tmp_path, capsys):
    """Amortized rows carry up to 28 decimals; the cache keeps 12, which is exact to the cent."""
    cache = tmp_path / "cache.duckdb"
    run_import(capsys, cache, EA_AMORTIZED)
    exact = sum(Decimal(r["Cost"]) for r in read_rows(EA_AMORTIZED))
    assert query(cache, "SELECT sum(EffectiveCost) FROM charges")[0][0].quantize(CENT) == exact.quantize(CENT)


def test_manifest_path_stands_for_its_folder_and_reimport_replaces(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    folder = _export_folder(tmp_path)
    assert run_import(capsys, cache, folder)[0] == 0
    code, out, _ = run_import(capsys, cache, folder / "manifest.json")
    assert code == 0 and "amortized-export: 28 rows" in out
    assert query(cache, "SELECT count(*), sum(EffectiveCost) IS NOT NULL FROM charges") == [(28, True)]
    assert query(cache, "SELECT count(*) FROM sources") == [(1,)]
