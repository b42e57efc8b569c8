"""The tagging queue on resource keys gives exactly the answer of the string-id query it replaced."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from finops_tui.allocation.effective import TagPolicy
from finops_tui.allocation.queue import UnallocatedQueue, unallocated_queue
from finops_tui.basis.dimensions import cached_providers, provider_qualified_sql
from finops_tui.basis.metrics import metric_column
from finops_tui.basis.periods import Period
from finops_tui.ingest.demo import build_demo
from finops_tui.store import open_cache
from tests.splits_data import HOST, NIGHTLY_ETL, imported_splits
from tests.ui_fixtures import two_currency_cache_path

DEMO_END = dt.date(2026, 11, 26)
pytestmark = pytest.mark.today(DEMO_END + dt.timedelta(days=1))

# The query the queue ran before it grouped on resource keys: by the owning resource's id string.
REFERENCE_RC = """
    CREATE OR REPLACE TEMP TABLE _ref_rc AS
    WITH by_host AS (
        SELECT coalesce(c.AllocatedResourceId, c.ResourceId) AS ResourceId,
               CASE WHEN c.AllocatedResourceId IS NOT NULL THEN c.ResourceId END AS host, sum(c.{col}) AS cost
        FROM charges c
        WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e AND c.BillingCurrency = $cur
        GROUP BY 1, 2
    )
    SELECT ResourceId, sum(cost) AS cost, arg_max(host, (cost, host)) FILTER (WHERE host IS NOT NULL) AS host_id
    FROM by_host GROUP BY 1
"""
REFERENCE_QUEUE = """
    CREATE OR REPLACE TEMP TABLE _ref_queue AS
    SELECT rc.ResourceId, rc.cost, r.ResourceName, r.ResourceType, r.x_ResourceGroupName, r.SubAccountId,
           {account_sql} AS SubAccountName, rc.host_id
    FROM _ref_rc rc LEFT JOIN resources r ON r.ResourceId = rc.ResourceId
    WHERE rc.ResourceId IS NOT NULL AND rc.cost <> 0
      AND rc.ResourceId NOT IN (SELECT ResourceId FROM resource_tags WHERE tag_key = ?)
"""
REFERENCE_SIBLINGS = """
    WITH tagged AS (
        SELECT r.SubAccountId AS sub, lower(r.x_ResourceGroupName) AS rg, t.tag_value AS value,
               count(*) AS n, coalesce(sum(rc.cost), 0) AS cost
        FROM resource_tags t JOIN resources r ON r.ResourceId = t.ResourceId
        LEFT JOIN _ref_rc rc ON rc.ResourceId = t.ResourceId
        WHERE t.tag_key = $key
          AND (r.SubAccountId, lower(r.x_ResourceGroupName)) IN (
              SELECT (SubAccountId, lower(x_ResourceGroupName)) FROM _ref_shown)
        GROUP BY 1, 2, 3
    ), best AS (
        SELECT sub, rg, arg_max(value, (cost, n, value)) AS value, arg_max(n, (cost, n, value)) AS n,
               arg_max(cost, (cost, n, value)) AS cost, sum(n) AS siblings, sum(cost) AS siblings_cost
        FROM tagged GROUP BY 1, 2
    )
    SELECT q.ResourceId, b.value, b.n, b.siblings, b.cost, b.siblings_cost, q.x_ResourceGroupName
    FROM _ref_shown q JOIN best b ON b.sub IS NOT DISTINCT FROM q.SubAccountId
                                  AND b.rg = lower(q.x_ResourceGroupName)
"""


def _reference(cur: duckdb.DuckDBPyConnection, key: str, period: Period, metric: str, currency: str,
               limit: int | None) -> dict[str, Any]:
    """The old query's answer: listed rows, subtotal rows, cost without a resource, siblings' evidence."""
    account_sql = (provider_qualified_sql("r.SubAccountName", "r.ProviderName")
                   if len(cached_providers(cur)) > 1 else "r.SubAccountName")
    cur.execute(REFERENCE_RC.format(col=metric_column(metric)), {"s": period.start, "e": period.end, "cur": currency})
    cur.execute(REFERENCE_QUEUE.format(account_sql=account_sql), [key])
    limit_sql = f" LIMIT {int(limit)}" if limit is not None else ""
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _ref_shown AS SELECT * FROM _ref_queue "
                f"ORDER BY cost DESC, ResourceId{limit_sql}")
    try:
        orphan = cur.execute("SELECT sum(cost) FROM _ref_rc WHERE ResourceId IS NULL").fetchone()
        siblings: dict[str, tuple[str, str]] = {}
        for rid, value, n, count, cost, siblings_cost, rg in cur.execute(REFERENCE_SIBLINGS, {"key": key}).fetchall():
            share = f", {cost / siblings_cost:.0%} of their cost" if siblings_cost > 0 else ""
            siblings[rid] = (value, f"{n} of {count} tagged resources in {rg} have {key}={value}{share}")
        return {
            "rows": cur.execute("SELECT * FROM _ref_shown ORDER BY cost DESC, ResourceId").fetchall(),
            "groups": sorted(cur.execute(
                "SELECT SubAccountId, lower(x_ResourceGroupName), sum(cost), count(*) FROM _ref_queue GROUP BY 1, 2"
            ).fetchall(), key=repr),
            "without_resource": orphan[0] if orphan and orphan[0] is not None else Decimal(0),
            "siblings": siblings,
        }
    finally:
        for table in ("_ref_rc", "_ref_queue", "_ref_shown"):
            cur.execute(f"DROP TABLE IF EXISTS {table}")


def _answer(queue: UnallocatedQueue) -> dict[str, Any]:
    """The new function's answer, in the reference's shape."""
    return {
        "rows": [(i.resource_id, i.cost, i.name, i.resource_type, i.resource_group, i.subscription_id,
                  i.subscription_name, i.host_id) for i in queue.items],
        "groups": sorted(((s.subscription_id, g.resource_group.lower() if g.resource_group else None, g.cost,
                           g.resources) for s in queue.subscriptions for g in s.groups), key=repr),
        "without_resource": queue.without_resource,
        "siblings": {i.resource_id: (s.value, s.reason) for i in queue.items for s in i.suggestions
                     if s.kind == "siblings"},
    }


def _assert_same(path: Path, key: str, period: Period, *, metric: str = "effective", currency: str = "USD",
                 limit: int | None = None) -> UnallocatedQueue:
    with open_cache(path, read_only=True) as cache, cache.cursor() as cur:
        queue = unallocated_queue(cur, key, period, metric, currency, limit=limit)
        expected = _reference(cur, key, period, metric, currency, limit)
        temp = cur.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    assert _answer(queue) == expected
    assert queue.total == sum((g[2] for g in expected["groups"]), Decimal(0)) + expected["without_resource"]
    assert temp == []  # nothing left behind on the caller's connection
    return queue


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return imported_splits(tmp_path_factory.mktemp("splits"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo(path, TagPolicy(), end=DEMO_END, months=2)
    return path


MAY = Period(dt.date(2026, 5, 1), dt.date(2026, 5, 4), "2026-05-01..2026-05-04", dt.date(2026, 5, 3))
DEMO_MONTH = Period(dt.date(2026, 11, 1), DEMO_END + dt.timedelta(days=1), "mtd", DEMO_END)
DEMO_ALL = Period(dt.date(2026, 9, 1), DEMO_END + dt.timedelta(days=1), "all", DEMO_END)


@pytest.mark.parametrize("metric", ["effective", "billed"])
def test_provider_split_consumers_keep_their_host_and_cost(splits, metric):
    queue = _assert_same(splits, "team", MAY, metric=metric)
    items = {i.resource_id: i for i in queue.items}
    assert items[NIGHTLY_ETL].host_id == HOST


@pytest.mark.parametrize("key", ["team", "env", "costcenter", "no-such-key"])
def test_the_splits_fixture_answers_alike_for_any_key(splits, key):
    _assert_same(splits, key, MAY)


@pytest.mark.parametrize("period", [DEMO_MONTH, DEMO_ALL], ids=["mtd", "all"])
@pytest.mark.parametrize("limit", [None, 25])
@pytest.mark.parametrize("key", ["team", "env", "costcenter"])
def test_the_demo_answers_alike(demo, period, limit, key):
    queue = _assert_same(demo, key, period, limit=limit)
    if limit is not None:
        assert len(queue.items) <= limit


@pytest.mark.parametrize("currency", ["USD", "EUR"])
@pytest.mark.parametrize("limit", [None, 3])
def test_a_currency_filter_and_a_limit_answer_alike(currency, limit):
    end = dt.date(2026, 11, 25)
    period = Period(end - dt.timedelta(days=29), end + dt.timedelta(days=1), "30d", end)
    queue = _assert_same(two_currency_cache_path(), "team", period, currency=currency, limit=limit)
    assert queue.currency == currency
    assert queue.resources > 0


def test_hosts_ties_direct_rows_and_zero_cost_answer_alike(tmp_path):
    """Consumers split from two hosts (one main, one tie broken by id), with rows of their own, one netting to
    zero, one tagged, and cost that belongs to no resource."""
    from finops_tui.allocation.effective import refresh_derived
    from finops_tui.store.sources import Window, begin_window, finish_window

    sub = "/subscriptions/0a0a0a0a-2222-4222-8222-222222222222/resourcegroups/rg-k8s/providers/"
    host_a, host_b = f"{sub}microsoft.compute/virtualmachines/node-a", f"{sub}microsoft.compute/virtualmachines/node-b"
    main, tie, zero, tagged = (f"{sub}k8s/workloads/{name}" for name in ("main", "tie", "zero", "tagged"))
    rows = [
        (host_a, main, "3.00", None), (host_b, main, "5.00", None), (main, None, "1.25", None),
        (host_b, tie, "2.00", None), (host_a, tie, "2.00", None),
        (host_a, zero, "4.00", None), (zero, None, "-4.00", None),
        (host_a, tagged, "7.00", {"team": "search"}),
        (host_a, None, "9.00", None), (None, None, "11.11", None),
    ]
    path = tmp_path / "cache.duckdb"
    with open_cache(path) as cache, cache.write() as cur:
        sid = begin_window(cur, Window("focus-file", "hosts", "focus", MAY.start, MAY.end))
        cur.executemany(
            """
            INSERT INTO charges (ChargePeriodStart, x_ChargeDate, ResourceId, AllocatedResourceId, EffectiveCost,
                                 BilledCost, BillingCurrency, AllocatedTags, ChargeCategory, source_id)
            VALUES ('2026-05-02', '2026-05-02', ?, ?, ?, ?, 'USD', ?, 'Usage', ?)
            """,
            [[rid, alloc, Decimal(cost), Decimal(cost), tags, sid] for rid, alloc, cost, tags in rows],
        )
        finish_window(cur, sid)
        refresh_derived(cur, TagPolicy())
    queue = _assert_same(path, "team", MAY)
    assert {i.resource_id: (i.cost, i.host_id) for i in queue.items} == {
        main: (Decimal("9.25"), host_b), tie: (Decimal("4.00"), host_b), host_a: (Decimal("9.00"), None),
    }
    assert queue.without_resource == Decimal("11.11")
