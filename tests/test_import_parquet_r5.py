"""Round 5's import path: rows of resources the cache knows take their keys in the INSERT; nothing else changes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from finops_tui.allocation.effective import TagPolicy
from finops_tui.errors import UserError
from finops_tui.ingest import focus
from finops_tui.ingest.files import inspect
from finops_tui.ingest.importer import import_paths
from finops_tui.store import open_cache, summaries
from tests.import_helpers import parquet_with_one_more_row, query, write_focus_variant
from tests.test_import_speed_r4 import REFERENCE_KEY_IDS, UNKEYED_ROWS

KEYS = "SELECT ResourceId, resource_key FROM resource_keys ORDER BY ResourceId"


def _import(cache: Path, *files: Path, skip: bool = False) -> None:
    with open_cache(cache) as opened:
        import_paths(opened, TagPolicy(), list(files), skip_bad_rows=skip)


def test_the_insert_stamps_the_key_of_a_resource_already_known(tmp_path: Path) -> None:
    """A row whose owning resource has a key gets it from the INSERT itself (no UPDATE of the written rows)."""
    file = write_focus_variant(tmp_path / "focus.parquet", "1.2", fmt="parquet")
    source = inspect(file)
    mapping = focus.build_mapping(source)
    with open_cache(tmp_path / "cache.duckdb") as cache, cache.write() as cur:
        cur.execute(
            "INSERT INTO resource_keys SELECT id, 41 + row_number() OVER (ORDER BY id) FROM "
            f"(SELECT DISTINCT lower(ResourceId) AS id FROM read_parquet('{file}')) "
            "WHERE id IS NOT NULL AND id <> 'null'"
        )
        cur.execute("SET TimeZone = 'UTC'")
        cur.execute(mapping.insert_sql(source.reader_sql(), ok_id=1, warn_id=-1, bad_id=-2, known_keys=True))
        rows = cur.execute(
            "SELECT count(*), count(x_ResourceKey), min(x_ResourceKey) FROM charges "
            "WHERE coalesce(AllocatedResourceId, ResourceId) IS NOT NULL"
        ).fetchone()
        unkeyed = cur.execute(UNKEYED_ROWS).fetchone()
        cur.execute("ROLLBACK")
        cur.execute("BEGIN TRANSACTION")
    assert rows is not None and rows[0] > 10 and rows[1] == rows[0] and rows[2] == 42
    assert unkeyed == (0,)


def test_a_parquet_import_keys_rows_as_its_csv_twin_does(tmp_path: Path) -> None:
    """Same rows, as Parquet and as CSV, into empty caches (keyed after the INSERT): the same keys, numbered in id
    order, every row keyed to its owning resource, and the same summary."""
    caches = {}
    for fmt in ("csv", "parquet"):
        cache = tmp_path / f"{fmt}.duckdb"
        _import(cache, write_focus_variant(tmp_path / f"focus.{fmt}", "1.3", fmt=fmt))
        caches[fmt] = cache
        keys = query(cache, KEYS)
        assert [row[0] for row in keys] == [row[0] for row in query(cache, REFERENCE_KEY_IDS)]
        assert [row[1] for row in keys] == list(range(1, len(keys) + 1))
        assert query(cache, UNKEYED_ROWS) == [(0,)]
    assert query(caches["csv"], KEYS) == query(caches["parquet"], KEYS)
    summary = f"SELECT * FROM {summaries.SUMMARY_TABLE} ORDER BY ALL"
    assert query(caches["csv"], summary) == query(caches["parquet"], summary)


def test_a_reimport_keeps_every_key_and_the_summary_true(tmp_path: Path) -> None:
    """Importing the same Parquet file again (its ids known: keyed in the INSERT) and a CSV of the same rows keeps
    each id's key, every row keyed, and the summary true."""
    cache = tmp_path / "cache.duckdb"
    parquet = write_focus_variant(tmp_path / "focus.parquet", "1.2", fmt="parquet")
    _import(cache, parquet)
    first = query(cache, KEYS)
    _import(cache, parquet)
    _import(cache, write_focus_variant(tmp_path / "focus.csv", "1.2"))
    assert query(cache, KEYS) == first
    assert query(cache, UNKEYED_ROWS) == [(0,)]
    with open_cache(cache) as opened, opened.write() as cur:
        assert summaries.differences(cur) == []


def test_ids_named_only_by_skipped_rows_get_no_key(tmp_path: Path) -> None:
    """A resource whose only row is bad for another field (a date outside 2000-2100) gets no key, into a cache that
    knows other resources (the INSERT joins keys) as into an empty one; the others keep keys in id order."""
    file = write_focus_variant(tmp_path / "focus.parquet", "1.2", fmt="parquet")
    bad = parquet_with_one_more_row(
        file, tmp_path / "bad.parquet",
        "'/subscriptions/x/resourcegroups/rg/providers/microsoft.compute/virtualmachines/aaa-only-on-a-bad-row' "
        "AS ResourceId, '1899-01-01T00:00:00Z' AS ChargePeriodStart",
    )
    for name, first in (("empty", None), ("known", write_focus_variant(tmp_path / "other.csv", "1.3"))):
        cache = tmp_path / f"{name}.duckdb"
        if first is not None:
            _import(cache, first)
        _import(cache, bad, skip=True)
        keys = query(cache, KEYS)
        assert not any("only-on-a-bad-row" in str(row[0]) for row in keys)
        assert [row[0] for row in keys] == [row[0] for row in query(cache, REFERENCE_KEY_IDS)]
        assert query(cache, UNKEYED_ROWS) == [(0,)]


def test_a_refused_parquet_import_leaves_no_key(tmp_path: Path) -> None:
    """A refused import (a bad row, no --skip-bad-rows) into a cache with keys leaves them as they were."""
    cache = tmp_path / "cache.duckdb"
    _import(cache, write_focus_variant(tmp_path / "good.csv", "1.2"))
    before = query(cache, KEYS)
    file = write_focus_variant(tmp_path / "focus.parquet", "1.2", fmt="parquet")
    bad = tmp_path / "bad.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * REPLACE ('/subscriptions/y/resourcegroups/rg/providers/microsoft.compute/virtualmachines/'"
        f" || row_number() OVER () AS ResourceId, CASE WHEN row_number() OVER () = 3 THEN 'XYZ1' ELSE "
        f"BillingCurrency END AS BillingCurrency) FROM read_parquet('{file}')) TO '{bad}' (FORMAT parquet)"
    )
    con.close()
    with pytest.raises(UserError, match="XYZ1"):
        _import(cache, bad)
    assert query(cache, KEYS) == before

