"""The import's round-4 fast paths give what the general queries give (resources, resource keys, MAP columns)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.ingest.files import inspect
from finops_tui.ingest.importer import import_paths
from finops_tui.store import open_cache
from finops_tui.store.sources import OWNING_RESOURCE_SQL, PROVIDER_SPLIT_SQL
from finops_tui.store.tag_sets import join_sql, row_tags_sql
from tests.allocation_data import Charge, load, rid
from tests.import_helpers import parquet_with_one_more_row, query, write_focus_variant
from tests.splits_data import imported_splits

# What `resources` holds, as the aggregate over every charge row states it: each resource's latest non-null value
# of each attribute (a consumer of a provider split described by its Allocated* columns, its host by its own).
REFERENCE_RESOURCES = f"""
    WITH described AS (
        SELECT {OWNING_RESOURCE_SQL} AS ResourceId,
               CASE WHEN {PROVIDER_SPLIT_SQL} THEN c.AllocatedResourceName ELSE c.ResourceName END AS ResourceName,
               CASE WHEN {PROVIDER_SPLIT_SQL} THEN NULL ELSE c.ResourceType END AS ResourceType,
               CASE WHEN {PROVIDER_SPLIT_SQL} THEN c.AllocatedTags ELSE {row_tags_sql()} END AS Tags,
               c.x_ResourceGroupName, c.SubAccountId, c.SubAccountName, c.RegionId, c.ServiceName, c.ProviderName,
               c.ChargePeriodStart, c.x_ChargeDate
        FROM charges c {join_sql()} WHERE {OWNING_RESOURCE_SQL} IS NOT NULL
        UNION ALL
        SELECT c.ResourceId, c.ResourceName, c.ResourceType, {row_tags_sql()}, c.x_ResourceGroupName, c.SubAccountId,
               c.SubAccountName, c.RegionId, c.ServiceName, c.ProviderName, c.ChargePeriodStart, c.x_ChargeDate
        FROM charges c {join_sql()} WHERE {PROVIDER_SPLIT_SQL} AND c.ResourceId IS NOT NULL
    )
    SELECT ResourceId,
           arg_max(ResourceName, ChargePeriodStart) FILTER (WHERE ResourceName IS NOT NULL),
           arg_max(ResourceType, ChargePeriodStart) FILTER (WHERE ResourceType IS NOT NULL),
           arg_max(x_ResourceGroupName, ChargePeriodStart) FILTER (WHERE x_ResourceGroupName IS NOT NULL),
           arg_max(SubAccountId, ChargePeriodStart) FILTER (WHERE SubAccountId IS NOT NULL),
           arg_max(SubAccountName, ChargePeriodStart) FILTER (WHERE SubAccountName IS NOT NULL),
           arg_max(RegionId, ChargePeriodStart) FILTER (WHERE RegionId IS NOT NULL),
           arg_max(ServiceName, ChargePeriodStart) FILTER (WHERE ServiceName IS NOT NULL),
           arg_max(ProviderName, ChargePeriodStart) FILTER (WHERE ProviderName IS NOT NULL),
           arg_max(Tags, ChargePeriodStart) FILTER (WHERE Tags IS NOT NULL),
           min(x_ChargeDate), max(x_ChargeDate)
    FROM described GROUP BY ResourceId ORDER BY ResourceId
"""
STORED_RESOURCES = "SELECT * FROM resources ORDER BY ResourceId"
# Each id the cache's rows name (owning resources and hosts of splits) with its key, and no other.
REFERENCE_KEY_IDS = f"""
    SELECT DISTINCT id FROM (SELECT {OWNING_RESOURCE_SQL} FROM charges c
                             UNION ALL SELECT c.ResourceId FROM charges c WHERE {PROVIDER_SPLIT_SQL}) AS ids(id)
    WHERE id IS NOT NULL ORDER BY id
"""
UNKEYED_ROWS = (
    "SELECT count(*) FROM charges c LEFT JOIN resource_keys k ON k.ResourceId = coalesce(c.AllocatedResourceId, "
    "c.ResourceId) WHERE c.x_ResourceKey IS DISTINCT FROM k.resource_key"
)
D = Decimal
DAY = dt.date(2026, 10, 1)
VM_A = rid("sub-a", "rg-a", "vm-a")
VM_B = rid("sub-a", "rg-b", "vm-b")


def _resources_match_reference(cache: Path) -> list[tuple[object, ...]]:
    stored = query(cache, STORED_RESOURCES)
    assert stored == query(cache, REFERENCE_RESOURCES)
    return stored


def test_a_resources_latest_attributes_come_from_its_latest_row_holding_each(tmp_path: Path) -> None:
    """An attribute missing from the latest rows (no tags, no name since) is taken from the latest row that has it."""
    charges = [
        Charge(DAY, VM_A, D("1"), name="vm-a-old", tags={"team": "web"}),
        Charge(DAY + dt.timedelta(days=1), VM_A, D("1"), name="vm-a", tags={"team": "api", "env": "prod"}),
        Charge(DAY + dt.timedelta(days=2), VM_A, D("1"), name="unnamed-later", tags=None),
        Charge(DAY, VM_B, D("2"), name="vm-b", tags=None, resource_type="Disk"),
        Charge(DAY + dt.timedelta(days=3), VM_B, D("2"), name="vm-b-renamed", tags={"team": "data"}),
        Charge(DAY, None, D("5"), category="Purchase"),
    ]
    cache = load(tmp_path / "cache.duckdb", charges)
    with cache.write() as cur:  # the latest row names no resource name, as some exports' late rows do
        cur.execute("UPDATE charges SET ResourceName = NULL WHERE ResourceName = 'unnamed-later'")
        refresh_derived(cur, TagPolicy())
    cache.close()
    stored = _resources_match_reference(tmp_path / "cache.duckdb")
    by_id = {row[0]: row for row in stored}
    assert set(by_id) == {VM_A, VM_B}
    assert by_id[VM_A][1] == "vm-a" and by_id[VM_A][9] == {"team": "api", "env": "prod"}
    assert by_id[VM_A][10:] == (DAY, DAY + dt.timedelta(days=2))
    assert by_id[VM_B][1] == "vm-b-renamed" and by_id[VM_B][9] == {"team": "data"}


def test_split_hosts_and_consumers_are_described_as_the_reference_says(tmp_path: Path) -> None:
    cache = imported_splits(tmp_path)
    stored = _resources_match_reference(cache)
    assert len(stored) > 2
    assert query(cache, UNKEYED_ROWS) == [(0,)]
    assert [row[0] for row in query(cache, "SELECT ResourceId FROM resource_keys ORDER BY ResourceId")] == [
        row[0] for row in query(cache, REFERENCE_KEY_IDS)
    ]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_imported_focus_file_has_the_reference_resources_and_keys(tmp_path: Path, fmt: str) -> None:
    file = write_focus_variant(tmp_path / f"focus.{fmt}", "1.2", fmt=fmt)
    with open_cache(tmp_path / "cache.duckdb") as cache:
        import_paths(cache, TagPolicy(), [file])
    _resources_match_reference(tmp_path / "cache.duckdb")
    keys = query(tmp_path / "cache.duckdb", "SELECT ResourceId, resource_key FROM resource_keys ORDER BY ResourceId")
    assert [row[0] for row in keys] == [row[0] for row in query(tmp_path / "cache.duckdb", REFERENCE_KEY_IDS)]
    assert [row[1] for row in keys] == list(range(1, len(keys) + 1))  # numbered in id order
    assert query(tmp_path / "cache.duckdb", UNKEYED_ROWS) == [(0,)]


def test_a_skipped_bad_rows_resource_gets_no_key(tmp_path: Path) -> None:
    """Ids seen only on rows an import drops (bad rows skipped) are not registered."""
    file = write_focus_variant(tmp_path / "focus.parquet", "1.2", fmt="parquet")
    bad = parquet_with_one_more_row(
        file, tmp_path / "bad.parquet",
        "'/subscriptions/x/resourcegroups/rg/providers/microsoft.compute/virtualmachines/only-on-a-bad-row' "
        "AS ResourceId, 'XYZ1' AS BillingCurrency",
    )
    cache = tmp_path / "cache.duckdb"
    with open_cache(cache) as opened:
        import_paths(opened, TagPolicy(), [bad], skip_bad_rows=True)
    assert query(cache, "SELECT count(*) FROM resource_keys WHERE ResourceId LIKE '%only-on-a-bad-row'") == [(0,)]
    assert [row[0] for row in query(cache, "SELECT ResourceId FROM resource_keys ORDER BY 1")] == [
        row[0] for row in query(cache, REFERENCE_KEY_IDS)
    ]


def test_map_typed_tag_columns_of_a_parquet_file_import_as_they_are(tmp_path: Path) -> None:
    """Tags and AllocatedTags stored as MAP in the file (no text to parse) arrive unchanged, NULLs included."""
    csv_file = write_focus_variant(tmp_path / "focus.csv", "1.3")
    typed = tmp_path / "typed.parquet"
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (SELECT * REPLACE (TRY_CAST(TRY_CAST(Tags AS JSON) AS MAP(VARCHAR, VARCHAR)) AS Tags),
                     CASE WHEN row_number() OVER () % 3 = 0 THEN MAP {{'team': 'split-' || (row_number() OVER () % 2)}}
                          END AS AllocatedTags
              FROM read_csv('{csv_file}', all_varchar = true, header = true)) TO '{typed}' (FORMAT parquet)
        """
    )
    expected = con.execute(f"SELECT Tags, AllocatedTags FROM read_parquet('{typed}') ORDER BY ALL").fetchall()
    con.close()
    with open_cache(tmp_path / "cache.duckdb") as cache:
        import_paths(cache, TagPolicy(), [typed])
    assert query(tmp_path / "cache.duckdb", "SELECT Tags, AllocatedTags FROM charges ORDER BY ALL") == expected
    assert any(row[1] for row in expected) and any(row[0] for row in expected)
    _resources_match_reference(tmp_path / "cache.duckdb")


def test_parquet_statistics_rule_out_only_columns_that_cannot_hold_a_null_text(tmp_path: Path) -> None:
    """A NULL spelling or an empty text in any row group is still found; a column whose statistics rule them
    out in every row group is not read at all for it."""
    file = tmp_path / "texts.parquet"
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (SELECT CASE WHEN i % 2 = 0 THEN 'apple' ELSE 'banana' END AS clean,
                     CASE WHEN i = 150 THEN 'NULL' ELSE 'x-' || i END AS late_null,
                     CASE WHEN i = 299 THEN '' ELSE 'y' END AS late_empty,
                     CASE WHEN i = 10 THEN 'nUlL' ELSE 'm' || i END AS mixed_case,
                     CASE WHEN i < 200 THEN NULL ELSE 'Zulu' END AS partly_null,
                     CASE WHEN i % 3 = 0 THEN 'Nil' ELSE 'Nope' END AS near_miss
              FROM range(300) t(i)) TO '{file}' (FORMAT parquet, ROW_GROUP_SIZE 100)
        """
    )
    con.close()
    assert inspect(file).null_text_columns == {"late_null", "late_empty", "mixed_case"}
