"""The import's fast paths give exactly what the general paths give (timestamps, Parquet texts, keys)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from finops_tui.allocation.effective import TagPolicy
from finops_tui.ingest.importer import import_paths
from finops_tui.ingest.mapping import parse_timestamp
from finops_tui.store.cache import open_cache
from tests.import_helpers import write_focus_variant

# Texts a cost export may hold in a timestamp column, valid or not.
TIMESTAMP_TEXTS = [
    "2024-01-01T00:00:00Z",
    "2024-01-01T00:00Z",
    "2024-01-01T23:59:59.123456Z",
    "2024-01-01 00:00:00Z",
    "2024-01-01Z",
    "2024-01-01T00:00:00+02:00",
    "2024-01-01T00:00:00-0500",
    "2024-01-01T00:00:00+02",
    "2024-01-01T00:00:00+00:00Z",
    "2024-01-01T00:00:00 America/New_York",
    "2024-01-01T00:00:00 UTC",
    "2024-01-01T00:00:00",
    "2024-01-01",
    "2024-01-01T00:00:00z",
    "2024-02-30T00:00:00Z",
    "Z",
    "",
    "12.5Z",
    "not a date",
    None,
]


@pytest.mark.parametrize("text", TIMESTAMP_TEXTS)
def test_timestamp_text_parses_as_through_timestamptz(text: str | None) -> None:
    """The cheap path for texts in UTC ('Z') gives what the offset-aware cast gives, valid or not."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        fast, can_fail = parse_timestamp("t", "VARCHAR")
        reference = "CAST(TRY_CAST(t AS TIMESTAMPTZ) AS TIMESTAMP)"
        row = con.execute(f"SELECT {fast}, {reference} FROM (SELECT CAST(? AS VARCHAR) AS t)", [text]).fetchone()
    finally:
        con.close()
    assert can_fail
    assert row is not None
    assert row[0] == row[1]


def test_a_parquet_file_of_texts_imports_like_its_csv(tmp_path: Path) -> None:
    """NULL literals and empty texts in Parquet become nulls where the file holds them, as CSV reading does,
    whichever column they sit in (copied as text, parsed, or a fallback like ServiceProviderName)."""
    csv_file = write_focus_variant(tmp_path / "focus.csv", "1.3")
    parquet_file = write_focus_variant(tmp_path / "focus.parquet", "1.3", fmt="parquet")
    tables = {}
    for file in (csv_file, parquet_file):
        with open_cache(tmp_path / f"{file.suffix[1:]}.duckdb") as cache:
            import_paths(cache, TagPolicy(), [file])
            with cache.cursor() as cur:
                tables[file.suffix] = [
                    cur.execute(f"SELECT {columns} FROM {table} ORDER BY ALL").fetchall()
                    for table, columns in (
                        ("charges", "* EXCLUDE (source_id)"), ("resources", "*"), ("resource_keys", "*"),
                        ("daily_summary", "*"),
                    )
                ]
    assert tables[".parquet"] == tables[".csv"]
    assert any(row is not None for row in tables[".csv"][0])


def test_parquet_rows_get_the_key_of_their_resource(tmp_path: Path) -> None:
    """Every row carries the key of its owning resource; keys continue in id order for the ids a file adds."""
    first = write_focus_variant(tmp_path / "first.parquet", "1.2", fmt="parquet")
    with open_cache(tmp_path / "cache.duckdb") as cache:
        import_paths(cache, TagPolicy(), [first])
        with cache.cursor() as cur:
            known = cur.execute("SELECT max(resource_key) FROM resource_keys").fetchone()
        second = tmp_path / "second.parquet"
        con = duckdb.connect()
        con.execute(
            f"COPY (SELECT * REPLACE (ResourceId || '-new' AS ResourceId, BillingAccountId || '-b' AS BillingAccountId)"
            f" FROM read_parquet('{first}')) TO '{second}' (FORMAT parquet)"
        )
        con.close()
        import_paths(cache, TagPolicy(), [second])
        with cache.cursor() as cur:
            unkeyed = cur.execute(
                "SELECT count(*) FROM charges c LEFT JOIN resource_keys k "
                "ON k.ResourceId = coalesce(c.AllocatedResourceId, c.ResourceId) "
                "WHERE c.x_ResourceKey IS DISTINCT FROM k.resource_key"
            ).fetchone()
            new_keys = cur.execute(
                "SELECT list(resource_key ORDER BY ResourceId) = list(resource_key ORDER BY resource_key), "
                "min(resource_key) FROM resource_keys WHERE ResourceId LIKE '%-new'"
            ).fetchone()
    assert unkeyed == (0,)
    assert known is not None and new_keys == (True, known[0] + 1)
