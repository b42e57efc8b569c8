"""The fast paths behind the provider-splits speed target answer exactly as the plain ones, with split rows present.

The overview's breakdowns come from one pass over the summary, the tree names tag and key-labelled levels from
their keys, and the benchmark's split copy is rewritten as an import would leave it: each is compared here with
the answer it replaces, to the cent, on a demo cache where a fifth of the rows are provider splits.
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from functools import partial
from pathlib import Path

import duckdb
import pytest

from bench.bench_splits import make_split_rows
from finops_tui.allocation.effective import TagPolicy
from finops_tui.basis.dimensions import dimension, labelled_for_cache
from finops_tui.basis.metrics import currencies
from finops_tui.basis.periods import Period
from finops_tui.ingest.demo import build_demo
from finops_tui.report import overview, tree
from finops_tui.report.sources import source_for
from finops_tui.store import open_cache, summaries
from tests.allocation_data import Charge, load
from tests.summaries_check import EXTRA_BREAKDOWNS, assert_same, assert_summary_answers, check_overview, periods_of

DEMO_END = dt.date(2026, 11, 26)
TODAY = DEMO_END + dt.timedelta(days=1)
pytestmark = pytest.mark.today(TODAY)
BREAKDOWNS = (*overview.DEFAULT_BREAKDOWNS, "tag:team", "charge-category", "pricing-category", "provider",
              "resource-type", "commitment")
HIERARCHIES = (
    ("tag:team", "subscription", "resource-group", "resource"),
    ("tag:team", "tag:workload", "resource"),
    ("host", "allocated-resource"),
    ("service", "resource-type", "sku"),
    ("resource-group", "resource"),
)
ROW_ORDER = "SELECT x_ChargeDate, ResourceId, ChargePeriodStart, EffectiveCost, BilledCost FROM charges ORDER BY rowid"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo(path, TagPolicy(), end=DEMO_END, months=3)
    return path


@pytest.fixture(scope="module")
def split(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("split") / "split.duckdb"
    shutil.copyfile(demo, path)
    with open_cache(path) as cache, cache.write() as cur:
        make_split_rows(cur)
    return path


def test_the_bench_split_copy_keeps_every_row_in_its_stored_order(demo: Path, split: Path) -> None:
    with open_cache(demo, read_only=True) as plain, plain.cursor() as cur:
        before = cur.execute(ROW_ORDER).fetchall()
    with open_cache(split, read_only=True) as cache, cache.cursor() as cur:
        assert cur.execute(ROW_ORDER).fetchall() == before  # rewritten in place: no row moved, none lost
        share = cur.execute("SELECT avg((AllocatedResourceId IS NOT NULL)::INT) FROM charges").fetchone()
        assert share is not None and 0.1 < share[0] < 0.3
        assert_summary_answers(cur)  # derived tables rebuilt as an import does: the summary holds the split rows
        untagged_workloads = cur.execute(
            "SELECT count(*) FROM resource_tags WHERE tag_key = 'workload' AND ResourceId LIKE '%/workloads/w%'"
        ).fetchone()
        assert untagged_workloads is not None and untagged_workloads[0] > 0


def test_overview_breakdowns_in_one_pass_equal_each_breakdown(split: Path) -> None:
    with open_cache(split, read_only=True) as cache, cache.cursor() as cur:
        dims = labelled_for_cache(cur, [dimension(name) for name in BREAKDOWNS])
        for period in periods_of(cur, TODAY, ("mtd", "last-month", "90d")):
            previous = period.previous()
            for metric in ("effective", "billed"):
                for currency in [None, *currencies(cur, period, metric)]:
                    one_pass = overview.summary_breakdowns(cur, dims, period, metric, currency=currency,
                                                           previous=previous)
                    assert one_pass is not None
                    totals, breakdowns = one_pass
                    with summaries.charges_only():
                        expected = overview.currency_totals(cur, period, metric, previous)
                        assert totals == [t for t in expected if currency is None or t.currency == currency]
                        for dim in dims:
                            assert breakdowns[dim.name] == overview.breakdown(
                                cur, dim, period, metric, currency=currency, previous=previous), dim.name


def test_a_dimension_the_summary_lacks_leaves_the_others_in_one_pass(split: Path) -> None:
    with open_cache(split, read_only=True) as cache, cache.cursor() as cur:
        [period] = periods_of(cur, TODAY, ("mtd",))
        assert overview.summary_breakdowns(cur, [dimension("service"), dimension("tag:env")], period,
                                           "effective") is None
        assert not source_for(cur, [dimension("tag:env")]).is_summary
        for metric in ("effective", "billed"):
            check_overview(cur, period, metric)  # its extra breakdowns include tag:env
        shipped = overview.overview(cur, period, "effective", extra_breakdowns=EXTRA_BREAKDOWNS)
        assert set(shipped.breakdowns) >= {dimension(n).name for n in EXTRA_BREAKDOWNS}


def test_tree_levels_named_from_their_keys_equal_charges_and_the_whole_tree(split: Path) -> None:
    with open_cache(split, read_only=True) as cache, cache.cursor() as cur:
        for period in periods_of(cur, TODAY, ("mtd", "90d")):
            [currency, *_] = currencies(cur, period, "effective")
            for hierarchy in HIERARCHIES:
                whole = tree.allocation_tree(cur, list(hierarchy), period, "effective", currency, depth=2)
                nodes = assert_same(f"{hierarchy} level 0", partial(
                    tree.children, cur, list(hierarchy), [], period, "effective", currency, limit=200))
                by_key = {t.node.key: t for t in whole}
                for node in nodes:
                    if node.is_other:
                        continue
                    assert (node.label, node.cost, node.previous_cost) == (
                        by_key[node.key].node.label, by_key[node.key].node.cost, by_key[node.key].node.previous_cost)
                first = next(n for n in nodes if not n.is_other and n.key is not None)
                below = assert_same(f"{hierarchy} level 1", partial(
                    tree.children, cur, list(hierarchy), [first.step], period, "effective", currency, limit=200))
                whole_below = {t.node.key: t.node for t in by_key[first.key].children}
                for node in below:
                    if not node.is_other:
                        assert node.label == whole_below[node.key].label
                assert sum((n.cost for n in below), tree.ZERO) == first.cost


def _resources_of_largest_group(cur: duckdb.DuckDBPyConnection, period: Period, limit: int) -> tuple[
        list[tree.Node], dict[str | None, tree.Node]]:
    hierarchy = ["resource-group", "resource"]
    group = next(n for n in tree.children(cur, hierarchy, [], period, "effective", "USD") if n.key is not None)
    nodes = tree.children(cur, hierarchy, [group.step], period, "effective", "USD", limit=limit)
    [whole] = [t for t in tree.allocation_tree(cur, hierarchy, period, "effective", "USD") if t.node.key == group.key]
    return nodes, {t.node.key: t.node for t in whole.children}


@pytest.mark.parametrize("limit", [5, 200])
def test_the_resource_level_equals_the_whole_tree_keyed_or_not(split: Path, tmp_path: Path, limit: int) -> None:
    path = tmp_path / "unkeyed.duckdb"
    shutil.copyfile(split, path)
    with open_cache(path) as cache:
        with cache.cursor() as cur:
            [period] = periods_of(cur, TODAY, ("90d",))
        for unkeyed in (False, True):
            if unkeyed:  # a row written past the window functions has no key yet: it still counts for its resource
                with cache.write() as cur:
                    cur.execute("UPDATE charges SET x_ResourceKey = NULL WHERE rowid % 3 = 0")
            with cache.cursor() as cur:
                nodes, by_id = _resources_of_largest_group(cur, period, limit)
            shown = [n for n in nodes if not n.is_other]
            assert len(shown) == min(limit, len(by_id)) and len({n.key for n in shown}) == len(shown)
            for node in shown:
                expected = by_id[node.key]
                assert (node.label, node.cost, node.previous_cost) == (expected.label, expected.cost,
                                                                         expected.previous_cost)
                assert sum(node.daily, tree.ZERO) == node.cost
            rest = [n for n in nodes if n.is_other]
            assert sum((n.cost for n in rest), tree.ZERO) == sum(
                (n.cost for k, n in by_id.items() if k not in {s.key for s in shown}), tree.ZERO)


def test_equal_figures_in_two_currencies_come_in_one_order_from_either_table(tmp_path: Path) -> None:
    day = dt.date(2026, 11, 1)
    vm = "/subscriptions/sub-0/resourceGroups/rg-0/providers/x/y/vm0"
    cache = load(tmp_path / "c.duckdb", [
        Charge(day, vm, Decimal(0), tags={"team": "payments"}, currency=code) for code in ("USD", "USD", "EUR")])
    try:
        with cache.cursor() as cur:
            period = Period(day, day + dt.timedelta(days=6), "2026-11-01..2026-11-07", day)
            for metric in ("effective", "billed"):
                shipped = assert_same("overview", partial(overview.overview, cur, period, metric, shared=True))
                assert [r.currency for r in shipped.breakdowns["tag:team"]] == ["EUR", "USD"]
    finally:
        cache.close()
