"""The equality guard: every read model answers the same from the summary tables as from `charges`, to the cent.

`check_cache` walks a grid of periods, metrics, currencies and hierarchies (with and without shared costs)
and compares each answer computed as shipped (summaries where they can answer) with the same answer computed
inside `store.summaries.charges_only()`. It also checks that the summary actually answered where it should,
so a silent fall back to `charges` cannot make the guard pass vacuously.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import duckdb

from finops_tui.basis.dimensions import dimension
from finops_tui.basis.metrics import currencies
from finops_tui.basis.periods import Period, parse_period
from finops_tui.report import overview, shared_tree, tree
from finops_tui.report.sources import source_for
from finops_tui.store import Cache, summaries
from finops_tui.store.sources import freshness

T = TypeVar("T")

PERIODS = ("mtd", "last-month", "30d", "90d")
METRICS = ("effective", "billed")
HIERARCHIES: tuple[tuple[str, ...], ...] = (
    ("tag:team", "subscription", "resource-group", "resource"),
    ("subscription", "tag:team", "resource-group"),
    ("service", "region", "pricing-category"),
    ("resource-group", "tag:team", "service-category"),
    ("tag:env", "subscription"),  # a tag the summary does not hold: falls back to charges
)
EXTRA_BREAKDOWNS = ("charge-category", "pricing-category", "provider", "resource-type", "commitment", "tag:env")


def assert_same(what: str, read: Callable[[], T]) -> T:
    """The answer as shipped, after checking it equals the answer from `charges` only."""
    shipped = read()
    with summaries.charges_only():
        plain = read()
    assert shipped == plain, f"{what}: summaries and charges disagree"
    return shipped


def periods_of(cur: duckdb.DuckDBPyConnection, today: dt.date, specs: Sequence[str] = PERIODS) -> list[Period]:
    fresh = freshness(cur)
    return [parse_period(s, today=today, data_start=fresh.data_start, data_end=fresh.data_end) for s in specs]


def check_overview(cur: duckdb.DuckDBPyConnection, period: Period, metric: str, team_key: str = "team") -> int:
    """Every overview figure (totals, daily, forecast, every breakdown incl. tag:team, movers, KPIs)."""
    checked = 0
    for currency in [None, *currencies(cur, period, metric)]:
        for shared in (False, True):
            assert_same(f"overview {period.spec} {metric} {currency} shared={shared}",
                        lambda c=currency, s=shared: overview.overview(  # type: ignore[misc]
                            cur, period, metric, team_key=team_key, currency=c, extra_breakdowns=EXTRA_BREAKDOWNS,
                            shared=s, top=8))
            checked += 1
    return checked


def _walk(
    cur: duckdb.DuckDBPyConnection, children: Callable[..., list[tree.Node]], hierarchy: Sequence[str],
    path: list[Any], period: Period, metric: str, currency: str, depth: int, limit: int | None,
) -> int:
    nodes = assert_same(f"children {hierarchy} {path} {period.spec} {metric} {currency}",
                        lambda: children(cur, list(hierarchy), path, period, metric, currency, limit=limit))
    checked = 1
    if len(path) + 1 >= min(depth, len(hierarchy)):
        return checked
    # The largest few and the unallocated node: where users drill.
    for node in [n for n in nodes if not n.is_other][:3] + [n for n in nodes if n.is_unallocated][:1]:
        if node.shared is not None and not node.shared.expandable:
            continue
        checked += _walk(cur, children, hierarchy, [*path, node.step], period, metric, currency, depth, limit)
    return checked


def check_tree(cur: duckdb.DuckDBPyConnection, period: Period, metric: str, *, depth: int = 4) -> int:
    checked = 0
    for currency in currencies(cur, period, metric):
        for hierarchy in HIERARCHIES:
            for children, whole in ((tree.children, tree.allocation_tree),
                                    (shared_tree.children, shared_tree.allocation_tree)):
                checked += _walk(cur, children, hierarchy, [], period, metric, currency, depth, limit=200)
                assert_same(f"allocation_tree {hierarchy} {period.spec} {metric} {currency}",
                            lambda h=hierarchy, w=whole, c=currency: w(  # type: ignore[misc]
                                cur, list(h), period, metric, c, depth=min(3, len(h)), top=10))
                checked += 1
    return checked


def assert_summary_answers(cur: duckdb.DuckDBPyConnection, team_key: str = "team") -> None:
    """The summary is current and answers the dimensions it holds (the guard compares two real paths)."""
    assert summaries.current(cur) is not None, "the summary is stale or was never built"
    for name in ("service", "subscription", "resource-group", "region", f"tag:{team_key}"):
        assert source_for(cur, [dimension(name)]).is_summary, name
    assert not source_for(cur, [dimension("resource")]).is_summary
    assert summaries.differences(cur) == []


def check_cache(cache: Cache, today: dt.date, *, periods: Sequence[str] = PERIODS,
                metrics: Sequence[str] = METRICS, tree_depth: int = 4) -> int:
    """The whole grid on one cache; returns how many answers were compared."""
    checked = 0
    with cache.cursor() as cur:
        assert_summary_answers(cur)
        for period in periods_of(cur, today, periods):
            for metric in metrics:
                checked += check_overview(cur, period, metric)
                checked += check_tree(cur, period, metric, depth=tree_depth)
    return checked


def as_wide_summary_cache(con: duckdb.DuckDBPyConnection) -> None:
    """Turn a cache back into its schema-8 shape: the summary and the no-team rollup as wide tables (what the
    views show), without the star-shaped tables, version 9 unrecorded. Opening it again runs migration 9."""
    for stored in (summaries.SUMMARY, *(r for r in summaries.ROLLUPS if r.facts)):
        con.execute(f"CREATE TABLE _wide AS SELECT * FROM {stored.table}")
        con.execute(f"DROP VIEW {stored.table}")
        con.execute(f"ALTER TABLE _wide RENAME TO {stored.table}")
        con.execute(f"DROP TABLE {stored.stored}")
    con.execute(f"DROP TABLE {summaries.GROUPS_TABLE}")
    con.execute("DELETE FROM schema_version WHERE version >= 9")
