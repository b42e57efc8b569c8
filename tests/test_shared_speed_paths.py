"""Tree expansions with shared costs on: one statement more than without, and figures equal to independent SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, cast

import duckdb
import pytest

from finops_tui.allocation.rules import Rule
from finops_tui.allocation.shared import Pool, refresh_shared
from finops_tui.basis.periods import Period
from finops_tui.report import shared_nodes, shared_tree, tree
from finops_tui.report.shared_nodes import split_column
from finops_tui.store import Cache
from tests.allocation_data import Charge, days, load

START = dt.date(2026, 11, 1)
PERIOD = Period(START, START + dt.timedelta(days=4), "2026-11-01..2026-11-05", START)
TEAM_FIRST = ["tag:team", "subscription", "resource-group"]
POOL_ABOVE_KEY = ["subscription", "tag:team"]
ZERO = Decimal(0)


def _vm(rg: str, name: str) -> str:
    return f"/subscriptions/sub-a/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"


def _charges() -> list[Charge]:
    """Amounts that a float or a narrower decimal would not carry: 12 places, 10^12, credits, two currencies."""
    out: list[Charge] = []
    for day in days(START - dt.timedelta(days=3), 7):  # the period and the previous one
        out += [
            Charge(day, _vm("rg-pay", "vm-pay"), Decimal("30.123456789012"), tags={"team": "payments"},
                   billed=Decimal("29.000000000001")),
            Charge(day, _vm("rg-search", "vm-search"), Decimal("10.000000000001"), tags={"team": "search"}),
            Charge(day, _vm("rg-hub", "fw"), Decimal("8.333333333333"), tags={"team": "platform"}),
            Charge(day, _vm("rg-misc", "st"), Decimal("2.2")),
        ]
    out += [
        Charge(START + dt.timedelta(days=1), _vm("rg-big", "vm-big"), Decimal("1234567890123.456789012345"),
               tags={"team": "checkout"}),
        Charge(START + dt.timedelta(days=2), _vm("rg-pay", "vm-pay"), Decimal("-5.5"), tags={"team": "payments"},
               category="Credit"),
        Charge(START, None, Decimal("100"), service="Support", category="Purchase"),
        Charge(START - dt.timedelta(days=2), None, Decimal("99.99"), service="Support", category="Purchase"),
        # EUR: the hub costs on a day no team has EUR cost, so its share stays "(unallocated)".
        Charge(START, _vm("rg-hub", "fw-eu"), Decimal("7.000000000007"), tags={"team": "platform"}, currency="EUR"),
        Charge(START + dt.timedelta(days=1), _vm("rg-pay", "vm-pay-eu"), Decimal("3"), tags={"team": "payments"},
               currency="EUR"),
        Charge(START + dt.timedelta(days=1), _vm("rg-hub", "fw-eu"), Decimal("1.5"), tags={"team": "platform"},
               currency="EUR"),
    ]
    return out


def _pools() -> list[Pool]:
    return [
        Pool("hub", "team", "proportional", Rule(set_tags={}, resource_group="rg-hub"), index=1),
        Pool("support", "team", "fixed", Rule(set_tags={}, service="Support"),
             weights=(("payments", Decimal(1)), ("search", Decimal(2))), index=2),
        Pool("untagged", "team", "even", Rule(set_tags={}), unallocated=True, index=3),
    ]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cache]:
    store = load(tmp_path_factory.mktemp("speed") / "c.duckdb", _charges())
    with store.write() as cur:  # not apply_pools: the EUR hub share nobody can take stays "(unallocated)"
        refresh_shared(cur, _pools())
    yield store
    store.close()


class CountingCursor:
    """A cursor that counts the statements a read model runs on it."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.cur = cur
        self.statements = 0

    def execute(self, *args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        self.statements += 1
        return self.cur.execute(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cur, name)


def _statements(cur: duckdb.DuckDBPyConnection, fn: Any, *args: Any) -> int:
    counting = CountingCursor(cur)
    fn(cast(duckdb.DuckDBPyConnection, counting), *args, PERIOD, "effective", "USD", limit=200)
    return counting.statements


@pytest.mark.parametrize(("hierarchy", "path"), [
    (TEAM_FIRST, []),
    (TEAM_FIRST, [("tag:team", "payments")]),
    (TEAM_FIRST, [("tag:team", None)]),
    (TEAM_FIRST, [("tag:team", "payments"), ("subscription", "sub-a")]),
    (POOL_ABOVE_KEY, []),
    (POOL_ABOVE_KEY, [("subscription", "sub-a")]),
])
def test_shared_costs_cost_one_statement_more_than_the_plain_expansion(
    cache: Cache, hierarchy: list[str], path: list[tuple[str, str | None]]
) -> None:
    shared_nodes.MEMO.clear()
    with cache.cursor() as cur:
        off = _statements(cur, tree.children, hierarchy, path)
        cold = _statements(cur, shared_tree.children, hierarchy, path)
        warm = _statements(cur, shared_tree.children, hierarchy, path)
    assert cold <= off + 2  # the first read of this version of the splits loads them
    assert warm <= off + 1


def test_a_pool_node_expands_in_one_statement(cache: Cache) -> None:
    with cache.cursor() as cur:
        top = shared_tree.children(cur, POOL_ABOVE_KEY, [], PERIOD, "effective", "USD")
        pool_node = next(n for n in top if n.shared is not None)
        assert _statements(cur, shared_tree.children, POOL_ABOVE_KEY, [pool_node.step]) == 1


def _sql(cur: duckdb.DuckDBPyConnection, sql: str, currency: str, period: Period) -> list[tuple[Any, ...]]:
    return cur.execute(sql, {"cur": currency, "s": period.start, "e": period.end}).fetchall()


def _direct(cur: duckdb.DuckDBPyConnection, metric: str, currency: str, period: Period) -> dict[Any, Decimal]:
    """Each team's cost that no pool took, straight from the facts (key: (team, day))."""
    col = "EffectiveCost" if metric == "effective" else "BilledCost"
    rows = _sql(cur, f"""
        SELECT t.tag_value, c.x_ChargeDate, sum(c.{col}) FROM charges c
        LEFT JOIN resource_tags t ON t.resource_key = c.x_ResourceKey AND t.tag_key = 'team'
        WHERE c.BillingCurrency = $cur AND c.x_ChargeDate >= $s AND c.x_ChargeDate < $e AND c.x_SharedPool IS NULL
        GROUP BY 1, 2""", currency, period)
    return {(team, day): cost for team, day, cost in rows}


def _shares(cur: duckdb.DuckDBPyConnection, metric: str, currency: str, period: Period) -> dict[Any, Decimal]:
    """Each (pool name, recipient, day) share, from shared_splits."""
    rows = _sql(cur, f"""
        SELECT p.name, s.recipient, s.day, sum(s.{split_column(metric)}) FROM shared_splits s
        JOIN shared_pools p USING (pool_index)
        WHERE s.currency = $cur AND s.day >= $s AND s.day < $e GROUP BY 1, 2, 3""", currency, period)
    return {(pool, who, day): cost for pool, who, day, cost in rows}


def _total(figures: dict[Any, Decimal], keep: Any) -> Decimal:
    return sum((v for k, v in figures.items() if keep(k)), ZERO)


def _daily(figures: dict[Any, Decimal], keep: Any, period: Period) -> list[Decimal]:
    return [_total(figures, lambda k, day=day: keep(k) and k[-1] == day) for day in days(period.start, period.days)]


@pytest.mark.parametrize("metric", ["effective", "billed"])
@pytest.mark.parametrize("currency", ["USD", "EUR"])
def test_team_first_figures_equal_direct_plus_shares_from_sql(cache: Cache, metric: str, currency: str) -> None:
    previous = PERIOD.previous()
    with cache.cursor() as cur:
        direct = _direct(cur, metric, currency, PERIOD)
        shares = _shares(cur, metric, currency, PERIOD)
        direct_before = _direct(cur, metric, currency, previous)
        shares_before = _shares(cur, metric, currency, previous)
        top = shared_tree.children(cur, TEAM_FIRST, [], PERIOD, metric, currency)
        plain = tree.children(cur, TEAM_FIRST, [], PERIOD, metric, currency)
        assert sum((n.cost for n in top), ZERO) == sum((n.cost for n in plain), ZERO)
        teams = {k[0] for k in direct} | {k[1] for k in shares}
        assert {n.key for n in top} == teams
        for node in top:
            def mine(k: Any, team: str | None = node.key) -> bool:
                return bool(k[0] == team)

            def received(k: Any, team: str | None = node.key) -> bool:
                return bool(k[1] == team)

            assert node.cost == _total(direct, mine) + _total(shares, received), node.label
            assert node.previous_cost == _total(direct_before, mine) + _total(shares_before, received), node.label
            assert node.daily == [
                a + b for a, b in zip(_daily(direct, mine, PERIOD), _daily(shares, received, PERIOD), strict=True)
            ], node.label
            kids = shared_tree.children(cur, TEAM_FIRST, [node.step], PERIOD, metric, currency)
            assert sum((k.cost for k in kids), ZERO) == node.cost
            got = {k.label.removeprefix("shared: "): k for k in kids if k.shared is not None}
            want = {pool for pool, who, _day in shares if who == node.key}
            want |= {pool for pool, who, _day in shares_before if who == node.key}
            assert set(got) == want, node.label
            for pool, share in got.items():
                def of_pool(k: Any, team: str | None = node.key, pool: str = pool) -> bool:
                    return bool(k[0] == pool and k[1] == team)

                assert share.cost == _total(shares, of_pool)
                assert share.previous_cost == _total(shares_before, of_pool)
                assert share.daily == _daily(shares, of_pool, PERIOD)
                assert share.shared is not None
                assert share.shared.pool_cost == _total(shares, lambda k, pool=pool: k[0] == pool)


@pytest.mark.parametrize("metric", ["effective", "billed"])
@pytest.mark.parametrize("currency", ["USD", "EUR"])
def test_pool_nodes_above_the_key_equal_sql(cache: Cache, metric: str, currency: str) -> None:
    previous = PERIOD.previous()
    with cache.cursor() as cur:
        shares = _shares(cur, metric, currency, PERIOD)
        shares_before = _shares(cur, metric, currency, previous)
        top = shared_tree.children(cur, POOL_ABOVE_KEY, [], PERIOD, metric, currency)
        plain = tree.children(cur, POOL_ABOVE_KEY, [], PERIOD, metric, currency)
        assert sum((n.cost for n in top), ZERO) == sum((n.cost for n in plain), ZERO)
        pools = {n.label.removeprefix("shared: "): n for n in top if n.shared is not None}
        assert set(pools) == {k[0] for k in shares} | {k[0] for k in shares_before}
        for name, node in pools.items():
            def of_pool(k: Any, name: str = name) -> bool:
                return bool(k[0] == name)

            assert node.cost == _total(shares, of_pool)
            assert node.previous_cost == _total(shares_before, of_pool)
            assert node.daily == _daily(shares, of_pool, PERIOD)
            recipients = shared_tree.children(cur, POOL_ABOVE_KEY, [node.step], PERIOD, metric, currency)
            assert sum((r.cost for r in recipients), ZERO) == node.cost
            for r in recipients:
                def received(k: Any, name: str = name, who: str | None = r.key) -> bool:
                    return bool(k[0] == name and k[1] == who)

                assert r.cost == _total(shares, received) and r.previous_cost == _total(shares_before, received)
                assert r.daily == _daily(shares, received, PERIOD)
                assert r.shared is not None and r.shared.pool_cost == node.cost


def test_eur_hub_share_nobody_could_take_is_unallocated(cache: Cache) -> None:
    with cache.cursor() as cur:
        top = {n.key: n for n in shared_tree.children(cur, TEAM_FIRST, [], PERIOD, "effective", "EUR")}
        kids = shared_tree.children(cur, TEAM_FIRST, [top[None].step], PERIOD, "effective", "EUR")
    hub = next(k for k in kids if k.label == "shared: hub")
    assert hub.cost == Decimal("7.000000000007")
    assert top["payments"].cost == Decimal("3") + Decimal("1.5")


def test_twelve_places_and_trillions_survive(cache: Cache) -> None:
    with cache.cursor() as cur:
        top = {n.key: n for n in shared_tree.children(cur, TEAM_FIRST, [], PERIOD, "effective", "USD")}
    assert top["checkout"].cost.as_tuple().exponent == -12
    assert top["checkout"].cost > Decimal("1234567890123")



def _walk(cur: duckdb.DuckDBPyConnection, hierarchy: list[str], currency: str, metric: str) -> list[Any]:
    """Every node of the tree with shared costs on, expanded level by level."""
    seen: list[Any] = []
    paths: list[list[Any]] = [[]]
    while paths:
        path = paths.pop()
        nodes = shared_tree.children(cur, hierarchy, path, PERIOD, metric, currency)
        seen.append((path, nodes))
        for node in nodes:
            expandable = not node.is_other and (node.shared is None or node.shared.expandable)
            if expandable and len(path) + 1 < len(hierarchy):
                paths.append([*path, node.step])
    return seen


def test_splits_without_a_version_read_the_same_from_sql(tmp_path: Any) -> None:
    store = load(tmp_path / "c.duckdb", _charges())
    try:
        with store.write() as cur:
            refresh_shared(cur, _pools())
        walks = {}
        for versioned in (True, False):
            if not versioned:  # as a cache written before versions: one statement reads pools and shares
                with store.write() as cur:
                    cur.execute("COMMENT ON TABLE shared_splits IS NULL")
            with store.cursor() as cur:
                walks[versioned] = [_walk(cur, hierarchy, currency, metric)
                                    for hierarchy in (TEAM_FIRST, POOL_ABOVE_KEY, ["resource-group", "tag:team"])
                                    for currency in ("USD", "EUR") for metric in ("effective", "billed")]
        assert walks[True] == walks[False]
    finally:
        store.close()


def test_a_write_gives_the_splits_a_new_version(tmp_path: Any) -> None:
    store = load(tmp_path / "c.duckdb", _charges())
    try:
        with store.write() as cur:
            refresh_shared(cur, _pools())
        with store.cursor() as cur:
            payments = shared_tree.children(cur, TEAM_FIRST, [("tag:team", "payments")], PERIOD, "effective", "USD")
            version = cur.execute(shared_nodes.SPLITS_VERSION_SQL).fetchone()
        assert "shared: support" in {n.label for n in payments}
        with store.write() as cur:
            refresh_shared(cur, _pools()[:1])
        with store.cursor() as cur:
            kids = shared_tree.children(cur, TEAM_FIRST, [("tag:team", "payments")], PERIOD, "effective", "USD")
            assert cur.execute(shared_nodes.SPLITS_VERSION_SQL).fetchone() != version
            shares = _shares(cur, "effective", "USD", PERIOD)
        assert {k.label for k in kids if k.shared is not None} == {"shared: hub"}
        hub = next(k for k in kids if k.shared is not None)
        assert hub.cost == _total(shares, lambda k: k[0] == "hub" and k[1] == "payments")
    finally:
        store.close()
