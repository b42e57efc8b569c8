"""`sync --hub` receives each month's resource attributes once per variant (a first result table) and rows carrying
only their variant's number (a second), and writes exactly the rows the hub summarised."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from finops_tui.store.cache import open_cache
from finops_tui.store.tag_sets import join_sql, row_tags_sql
from finops_tui.sync.hub import ATTRIBUTES, GRAIN, window_query
from tests.fake_kusto import FakeKusto
from tests.test_sync_hub import FEB, JAN, MAR, cached, pull, served

TODAY = dt.date(2025, 3, 15)
pytestmark = pytest.mark.today(TODAY)
APR = dt.date(2025, 4, 1)
CHECKED = ("x_ChargeDate", "SubAccountId", "SubAccountName", "BillingCurrency", "ServiceName", "ResourceId",
           "ResourceName", "RegionName", "x_ResourceGroupName", "SkuId", "Tags", "BilledCost", "EffectiveCost",
           "ListCost", "PricingQuantity")


@pytest.fixture
def hub() -> Iterator[FakeKusto]:
    with FakeKusto(rows_per_month=300) as fake:
        yield fake


def served_rows(fake: FakeKusto, start: dt.date, end: dt.date) -> list[tuple[Any, ...]]:
    rows = []
    for row in fake.month_rows(start, end):
        values: list[Any] = []
        for column in CHECKED:
            value = row[column]
            if column == "x_ChargeDate":
                values.append(dt.date.fromisoformat(value[:10]))
            elif column == "ResourceId":
                values.append(value.lower())
            elif column == "Tags":
                values.append(sorted((k, v if isinstance(v, str) else json.dumps(v))
                                     for k, v in json.loads(value).items()))
            elif column in ("BilledCost", "EffectiveCost", "ListCost", "PricingQuantity"):
                values.append(Decimal(value).normalize())
            else:
                values.append(value)
        rows.append(tuple(values))
    return sorted(rows, key=repr)


def cached_rows(cache_path: Path, start: dt.date, end: dt.date) -> list[tuple[Any, ...]]:
    with open_cache(cache_path) as cache, cache.cursor() as cur:
        # A row's tags read through its tag set (store.tag_sets).
        columns = ", ".join(row_tags_sql() if column == "Tags" else f"c.{column}" for column in CHECKED)
        found = cur.execute(f"SELECT {columns} FROM charges c {join_sql()} "
                            "WHERE c.x_ChargeDate >= ? AND c.x_ChargeDate < ?", [start, end]).fetchall()
    rows = []
    for row in found:
        values = list(row)
        tags = values[CHECKED.index("Tags")]
        values[CHECKED.index("Tags")] = sorted(tags.items())
        for column in ("BilledCost", "EffectiveCost", "ListCost", "PricingQuantity"):
            values[CHECKED.index(column)] = Decimal(values[CHECKED.index(column)]).normalize()
        rows.append(tuple(values))
    return sorted(rows, key=repr)


def test_the_query_is_a_batch_answering_the_variants_then_the_rows() -> None:
    from finops_tui.sync.hub import parse_hub

    query = window_query(parse_hub("https://hub.westeurope.kusto.windows.net/Hub"), MAR, APR, 500)

    statements = query.split(";\n")
    assert [s.split("\n")[0] for s in statements] == ["let Summarised = materialize(Costs()",
                                                      "let Variants = materialize(Summarised", "Variants",
                                                      "Summarised"]
    attributes = ", ".join(ATTRIBUTES)
    assert f"| summarize by {attributes}\n| serialize Variant = row_number());" in query
    assert f"| lookup kind=inner Variants on {attributes}\n" in query
    assert "| project Chunk, RowCount, Attributes = gzip_compress_to_base64_string(" in statements[2]
    assert "| project Chunk, RowCount, Rows = gzip_compress_to_base64_string(" in statements[3]
    # The rows carry none of the attribute columns, only their variant's number.
    rows_line = next(line for line in statements[3].split("\n") if line.startswith("| project Line"))
    assert rows_line.endswith(", Variant)") and "ResourceId" not in rows_line and "Tags" not in rows_line
    assert all(column in rows_line for column, _, _ in GRAIN if column not in ATTRIBUTES)


def test_every_row_arrives_whole_with_its_variant_s_attributes(hub: FakeKusto, tmp_path: Path) -> None:
    hub.awkward_text = True  # quotes, commas and line breaks in names; tags that are not text
    cache_path = tmp_path / "c.duckdb"

    result, _ = pull(hub, cache_path, months=2, chunk_rows=7)  # variants spread over several chunks

    assert (result.windows_done, result.rows, result.failures) == (2, 600, [])
    assert cached_rows(cache_path, MAR, APR) == served_rows(hub, MAR, APR)
    assert cached_rows(cache_path, FEB, MAR) == served_rows(hub, FEB, MAR)
    assert cached(cache_path) == served(hub, [FEB, MAR])
    with open_cache(cache_path) as cache, cache.cursor() as cur:
        # Each row under its own month's source, never another month's variant.
        assert cur.execute("SELECT count(*) FROM charges c JOIN sources s USING (source_id) "
                           "WHERE c.x_ChargeDate < s.period_start OR c.x_ChargeDate >= s.period_end").fetchone() == (0,)


def test_the_wire_carries_each_variant_once(hub: FakeKusto) -> None:
    hub.rows_per_month = 10_000

    whole = sum(len(piece) for piece in hub.rendered(MAR, APR, 500, gzipped=True))
    split = sum(len(piece) for piece in hub.rendered(MAR, APR, 500, gzipped=True, attributes=ATTRIBUTES))

    variants = {tuple(row[c] for c in ATTRIBUTES) for row in hub.month_rows(MAR, APR)}
    assert len(variants) < 10_000 / 4
    assert split < whole * 0.9  # gzipped chunks either way: the repeated attributes compressed well already


def test_a_variant_missing_from_the_attributes_fails_its_month_alone(hub: FakeKusto, tmp_path: Path) -> None:
    hub.lost_variant_month = FEB
    cache_path = tmp_path / "c.duckdb"

    result, _ = pull(hub, cache_path, months=3)

    assert result.windows_done == 2
    [failure] = result.failures
    assert failure.window == FEB and "rows but" in failure.error and "\n" not in failure.error
    assert cached(cache_path) == served(hub, [JAN, MAR])
    assert cached_rows(cache_path, FEB, MAR) == []


def test_an_answer_of_whole_rows_fails_its_month_with_one_line(hub: FakeKusto, tmp_path: Path) -> None:
    hub.whole_rows_month = FEB
    cache_path = tmp_path / "c.duckdb"

    result, _ = pull(hub, cache_path, months=3)

    assert result.windows_done == 2
    [failure] = result.failures
    assert failure.window == FEB and "expected a table of Chunk, RowCount, Attributes" in failure.error
    assert "\n" not in failure.error and len(failure.error) < 400
    assert cached(cache_path) == served(hub, [JAN, MAR])
