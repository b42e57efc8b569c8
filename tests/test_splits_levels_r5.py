"""Tree levels under a tag node read `charges` joined once to the resources the path's tags select: every answer
equals an independent SQL sum (one LEFT JOIN per tag key, equality per step), to the cent, with split rows present.

Checked on a demo cache where a fifth of the rows are provider splits (the bench's copy, small) and on the crafted
FOCUS 1.3 file, for tag levels under tag nodes (team › workload, team › env), the levels below them, a tag node
with no value ("(unallocated)") in the path, and non-tag steps mixed in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from finops_tui.basis.dimensions import Dimension, dimension
from finops_tui.basis.metrics import currencies, metric_column
from finops_tui.basis.periods import Period
from finops_tui.report import tree
from finops_tui.report.sources import source_for
from finops_tui.store import open_cache
from tests.splits_data import SPLIT_DEMO_END, imported_splits, split_demo
from tests.summaries_check import periods_of

DEMO_END = SPLIT_DEMO_END
TODAY = DEMO_END + dt.timedelta(days=1)
pytestmark = pytest.mark.today(TODAY)
HIERARCHIES = (
    ("tag:team", "tag:workload", "resource"),
    ("tag:team", "tag:env", "resource"),
    ("tag:team", "tag:env", "tag:workload"),
    ("tag:team", "subscription", "resource-group", "resource"),
    ("subscription", "tag:team", "tag:workload"),
    ("tag:workload", "tag:team", "allocated-resource"),
)


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return split_demo(tmp_path_factory.mktemp("split") / "split.duckdb")


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return imported_splits(tmp_path_factory.mktemp("crafted"))


def independent(
    cur: duckdb.DuckDBPyConnection, hierarchy: Sequence[str], path: Sequence[tuple[str, str | None]],
    period: Period, metric: str, currency: str,
) -> dict[str | None, tuple[Decimal, Decimal]]:
    """Each child's (cost, previous cost) summed straight from `charges`: every tag read by its own LEFT JOIN on
    the owning resource's key, every step an equality (or IS NULL) on its dimension's value."""
    dims = [dimension(name, alias=f"x{i}") for i, name in enumerate(hierarchy[: len(path) + 1])]
    joins = "".join(d.join_sql(f"x{i}") for i, d in enumerate(dims))
    params: dict[str, Any] = {"s": period.start, "e": period.end, "ps": period.previous().start,
                              "pe": period.previous().end, "cur": currency}
    where = ""
    for i, (dim, (_name, key)) in enumerate(zip(dims, path, strict=False)):
        if key is None:
            where += f" AND {dim.key_sql} IS NULL"
        else:
            params[f"k{i}"] = key
            where += f" AND {dim.key_sql} = $k{i}"
    col = metric_column(metric)
    rows = cur.execute(
        f"""
        SELECT {dims[-1].key_sql}, sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e),
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $ps AND c.x_ChargeDate < $pe)
        FROM charges c{joins}
        WHERE c.BillingCurrency = $cur{where}
        GROUP BY 1
        HAVING count(*) FILTER (WHERE c.x_ChargeDate >= least($s, $ps) AND c.x_ChargeDate < greatest($e, $pe)) > 0
        """,
        params,
    ).fetchall()
    return {key: (cost or Decimal(0), previous or Decimal(0)) for key, cost, previous in rows}


def assert_level_equals_sql(
    cur: duckdb.DuckDBPyConnection, hierarchy: Sequence[str], path: list[tuple[str, str | None]],
    period: Period, metric: str, currency: str,
) -> list[tree.Node]:
    nodes = tree.children(cur, list(hierarchy), path, period, metric, currency)
    expected = independent(cur, hierarchy, path, period, metric, currency)
    got = {n.key: (n.cost, n.previous_cost) for n in nodes}
    assert got == expected, f"{hierarchy} {path} {period.spec} {metric} {currency}"
    for node in nodes:
        assert sum(node.daily, tree.ZERO) == node.cost
    limited = tree.children(cur, list(hierarchy), path, period, metric, currency, limit=3)
    assert sum((n.cost for n in limited), tree.ZERO) == sum((n.cost for n in nodes), tree.ZERO)
    for node in limited:
        if not node.is_other:
            assert (node.cost, node.previous_cost) == expected[node.key]
    return nodes


def walk(cur: duckdb.DuckDBPyConnection, hierarchy: Sequence[str], period: Period, metric: str,
         currency: str) -> int:
    """Every level down the largest two nodes and the unallocated / "(none)" one of each level; how many levels."""
    checked = 0
    frontier: list[list[tuple[str, str | None]]] = [[]]
    while frontier:
        path = frontier.pop()
        nodes = assert_level_equals_sql(cur, hierarchy, path, period, metric, currency)
        checked += 1
        if len(path) + 1 < len(hierarchy):
            chosen = [n for n in nodes if n.key is not None][:2] + [n for n in nodes if n.key is None][:1]
            frontier += [[*path, (n.dimension, n.key)] for n in chosen]
    return checked


@pytest.mark.parametrize("hierarchy", HIERARCHIES, ids=" > ".join)
def test_levels_under_tag_nodes_equal_an_independent_sum_with_split_rows(split: Path, hierarchy: Sequence[str]) -> None:
    with open_cache(split, read_only=True) as cache, cache.cursor() as cur:
        checked = 0
        for period in periods_of(cur, TODAY, ("mtd", "90d")):
            for metric in ("effective", "billed"):
                for currency in currencies(cur, period, metric):
                    checked += walk(cur, hierarchy, period, metric, currency)
        assert checked >= 8


@pytest.mark.parametrize("hierarchy", [*HIERARCHIES, ("host", "tag:team", "tag:workload")], ids=" > ".join)
def test_levels_under_tag_nodes_equal_an_independent_sum_on_the_crafted_file(
    crafted: Path, hierarchy: Sequence[str]
) -> None:
    with open_cache(crafted, read_only=True) as cache, cache.cursor() as cur:
        period = _whole(cur)
        for metric in ("effective", "billed"):
            for currency in currencies(cur, period, metric):
                assert walk(cur, hierarchy, period, metric, currency) >= 1


def _whole(cur: duckdb.DuckDBPyConnection) -> Period:
    row = cur.execute("SELECT min(x_ChargeDate), max(x_ChargeDate) FROM charges").fetchone()
    assert row is not None
    start, end = row[0], row[1] + dt.timedelta(days=1)
    return Period(start, end, f"{start}..{end}", end)


def test_the_team_step_and_the_tag_level_read_the_tags_in_one_join(split: Path) -> None:
    """The level's tag and the path's tags come from one subquery joined to `charges`: no semi-join per step, no
    second LEFT JOIN of `charges` (with split rows, the workload tags are a fifth of every resource's tags)."""
    with open_cache(split, read_only=True) as cache, cache.cursor() as cur:
        [period] = periods_of(cur, TODAY, ("mtd",))
        level = dimension("tag:workload")
        steps: list[tuple[Dimension, str | None]] = [(dimension("tag:team"), "payments"),
                                                     (dimension("tag:env"), "prod")]
        source = source_for(cur, [level, *(d for d, _k in steps)])
        assert not source.is_summary
        sql, _params = tree.expansion_sql(level, steps, "effective", period, period.previous(), "USD", source=source)
        assert " IN (SELECT" not in sql
        assert sql.count("JOIN") == 3  # the owners subquery: team, env (inner), workload (left); charges joins it


def test_an_unallocated_tag_step_still_keeps_rows_of_no_resource(split: Path) -> None:
    with open_cache(split, read_only=True) as cache, cache.cursor() as cur:
        [period] = periods_of(cur, TODAY, ("90d",))
        hierarchy = ("tag:team", "tag:workload")
        nodes = assert_level_equals_sql(cur, hierarchy, [("tag:team", None)], period, "effective", "USD")
        [top] = [n for n in tree.children(cur, list(hierarchy), [], period, "effective", "USD") if n.key is None]
        assert sum((n.cost for n in nodes), tree.ZERO) == top.cost
