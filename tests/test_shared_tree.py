"""The allocation tree with shared costs: children sum to the parent at every node, totals never move."""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finops_tui.allocation.rules import Rule
from finops_tui.allocation.shared import Pool, apply_pools, refresh_shared
from finops_tui.basis.periods import Period
from finops_tui.report import shared_tree, tree
from finops_tui.report.shared_nodes import PoolKey
from finops_tui.report.tree import Node
from tests.allocation_data import Charge, load

START = dt.date(2026, 11, 1)
PERIOD = Period(START, START + dt.timedelta(days=4), "2026-11-01..2026-11-05", START)
TEAMS = ("payments", "search", "checkout", None)
GROUPS = ("rg-hub", "rg-pay", "rg-search", "rg-misc")
HIERARCHIES = (
    ["tag:team", "subscription", "resource-group", "resource"],
    ["subscription", "tag:team", "resource"],
    ["resource-group", "service"],
)


def _pools() -> list[Pool]:
    return [
        Pool("hub", "team", "proportional", Rule(set_tags={}, resource_group="rg-hub"), index=1),
        Pool("untagged", "team", "even", Rule(set_tags={}), unallocated=True, index=2),
        Pool("fixed", "team", "fixed", Rule(set_tags={}, service="Support"),
             weights=(("payments", Decimal(1)), ("search", Decimal(2))), index=3),
    ]


def _walk(cur: object, hierarchy: list[str], path: list[tuple[str, str | None]], parent: Decimal,
          currency: str) -> int:
    nodes = shared_tree.children(cur, hierarchy, path, PERIOD, "effective", currency)  # type: ignore[arg-type]
    assert sum((n.cost for n in nodes), Decimal(0)) == parent, (hierarchy, path)
    checked = 1
    for node in nodes:
        if node.is_other or (node.shared is not None and not node.shared.expandable):
            continue
        if len(path) + 1 < len(hierarchy):
            checked += _walk(cur, hierarchy, [*path, node.step], node.cost, currency)
    return checked


charge_strategy = st.builds(
    lambda day, group, team, n, cost, currency, service: Charge(
        START + dt.timedelta(days=day),
        f"/subscriptions/sub-{n % 2}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/vm{n}-{team}",
        cost, tags={"team": team} if team else None, currency=currency, service=service, billed=cost / 2,
    ),
    st.integers(0, 3), st.sampled_from(GROUPS), st.sampled_from(TEAMS), st.integers(0, 5),
    st.decimals(min_value=Decimal("-5"), max_value=Decimal("500"), places=6, allow_nan=False),
    st.sampled_from(("USD", "EUR")), st.sampled_from(("Virtual Machines", "Support")),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(charge_strategy, min_size=1, max_size=25))
def test_children_sum_to_parent_and_totals_hold(charges: list[Charge]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        cache = load(Path(folder) / "c.duckdb", charges)
        try:
            with cache.cursor() as cur:
                plain = {c: sum((n.cost for n in tree.children(cur, HIERARCHIES[0], [], PERIOD, "effective", c)),
                                Decimal(0)) for c in ("USD", "EUR")}
            with cache.write() as cur:  # not apply_pools: a pool nobody can take must stay "(unallocated)" here
                refresh_shared(cur, _pools())
            with cache.cursor() as cur:
                for hierarchy in HIERARCHIES:
                    for currency in ("USD", "EUR"):
                        _walk(cur, hierarchy, [], plain[currency], currency)
                        whole = shared_tree.allocation_tree(cur, hierarchy, PERIOD, "effective", currency, depth=2)
                        assert sum((t.node.cost for t in whole), Decimal(0)) == plain[currency]
                        for item in whole:
                            if item.children:
                                assert sum((c.node.cost for c in item.children), Decimal(0)) == item.node.cost
        finally:
            cache.close()


@pytest.fixture
def hub_cache(tmp_path: Path):  # type: ignore[no-untyped-def]
    day = START
    charges = [
        Charge(day, "/subscriptions/s/resourceGroups/rg-pay/providers/x/y/vm-pay", Decimal("30"),
               tags={"team": "payments"}),
        Charge(day, "/subscriptions/s/resourceGroups/rg-search/providers/x/y/vm-search", Decimal("10"),
               tags={"team": "search"}),
        Charge(day, "/subscriptions/s/resourceGroups/rg-hub/providers/x/y/lb", Decimal("8"),
               tags={"team": "platform"}),
        Charge(day, "/subscriptions/s/resourceGroups/rg-misc/providers/x/y/st", Decimal("2")),
    ]
    cache = load(tmp_path / "c.duckdb", charges)
    apply_pools(cache, _pools()[:1])
    yield cache
    cache.close()


def test_team_first_gets_shared_children(hub_cache) -> None:  # type: ignore[no-untyped-def]
    hierarchy = ["tag:team", "resource-group"]
    with hub_cache.cursor() as cur:
        top = {n.label: n for n in shared_tree.children(cur, hierarchy, [], PERIOD, "effective", "USD")}
        assert {k: v.cost for k, v in top.items()} == {
            "payments": Decimal("36.00"), "search": Decimal("12.00"), "(unallocated)": Decimal("2")}
        kids = shared_tree.children(cur, hierarchy, [top["payments"].step], PERIOD, "effective", "USD")
    labels = {n.label: n for n in kids}
    assert set(labels) == {"rg-pay", "shared: hub"}
    share = labels["shared: hub"]
    assert share.cost == Decimal("6.00") and share.shared is not None
    assert share.shared.method == "proportional" and share.shared.fraction(share.cost) == Decimal("0.75")
    with pytest.raises(ValueError):
        _ = share.step


def test_pool_is_its_own_node_above_the_key(hub_cache) -> None:  # type: ignore[no-untyped-def]
    hierarchy = ["subscription", "tag:team"]
    with hub_cache.cursor() as cur:
        top = shared_tree.children(cur, hierarchy, [], PERIOD, "effective", "USD")
        pool_node = next(n for n in top if n.shared is not None)
        assert isinstance(pool_node.key, PoolKey) and pool_node.label == "shared: hub"
        assert pool_node.cost == Decimal("8")
        assert [n.cost for n in top if n.shared is None] == [Decimal("42")]
        shares = shared_tree.children(cur, hierarchy, [pool_node.step], PERIOD, "effective", "USD")
    assert {n.label: n.cost for n in shares} == {"payments": Decimal("6.00"), "search": Decimal("2.00")}
    assert all(isinstance(n, Node) and n.shared is not None for n in shares)
