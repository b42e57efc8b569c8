"""Allocation tree: children sum to parents, the unallocated node, alias folding, report formats, detail."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finops_tui.basis.dimensions import UNALLOCATED
from finops_tui.basis.money import ROUNDING_LABEL, cents
from finops_tui.basis.periods import Period, parse_period
from finops_tui.cli import main
from finops_tui.commands.report import allocation_report
from finops_tui.config import Config
from finops_tui.errors import UserError
from finops_tui.report.resource import resource_detail
from finops_tui.report.tags import folded_keys, tag_keys
from finops_tui.report.tree import TreeNode, allocation_tree, children
from tests.allocation_data import END, TODAY, Charge, load, rid
from tests.report_helpers import build_small_cache

HIERARCHY = ["tag:team", "subscription", "resource-group", "resource"]
ZERO = Decimal(0)
CENT = Decimal("0.01")


pytestmark = pytest.mark.today(TODAY)


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_cache(tmp_path_factory.mktemp("tree") / "cache.duckdb")


def _sql(path: Path, query: str, params: list[Any] | dict[str, Any]) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()


def _period(spec: str = "30d") -> Period:
    return parse_period(spec, today=TODAY, data_end=END)


def test_unallocated_node_is_total_minus_allocated(small_cache: Path) -> None:
    period = _period()
    with duckdb.connect(str(small_cache), read_only=True) as con:
        nodes = children(con, HIERARCHY, [], period, "effective", "USD")
    total = _sql(small_cache, "SELECT sum(EffectiveCost) FROM charges WHERE BillingCurrency = 'USD' "
                 "AND x_ChargeDate >= ? AND x_ChargeDate < ?", [period.start, period.end])[0][0]
    allocated = _sql(small_cache, """
        SELECT sum(c.EffectiveCost) FROM charges c JOIN resource_tags t ON t.ResourceId = c.ResourceId
        WHERE t.tag_key = 'team' AND c.BillingCurrency = 'USD' AND c.x_ChargeDate >= ? AND c.x_ChargeDate < ?
        """, [period.start, period.end])[0][0]
    unallocated = [n for n in nodes if n.is_unallocated]
    assert len(unallocated) == 1
    assert unallocated[0].label == UNALLOCATED and unallocated[0].key is None
    assert unallocated[0].cost == total - allocated
    assert sum((n.cost for n in nodes), ZERO) == total
    assert [n.cost for n in nodes] == sorted((n.cost for n in nodes), reverse=True)


def test_every_figure_equals_independent_sql(small_cache: Path) -> None:
    period = _period("mtd")
    prev = period.previous()
    with duckdb.connect(str(small_cache), read_only=True) as con:
        teams = children(con, HIERARCHY, [], period, "billed", "USD")
        payments = next(n for n in teams if n.key == "payments")
        subs = children(con, HIERARCHY, [payments.step], period, "billed", "USD")
        sub = subs[0]
        groups = children(con, HIERARCHY, [payments.step, sub.step], period, "billed", "USD")
        group = groups[0]
        resources = children(con, HIERARCHY, [payments.step, sub.step, group.step], period, "billed", "USD")

    def independent(start: dt.date, end: dt.date) -> dict[str, Decimal]:
        rows = _sql(small_cache, """
            SELECT c.ResourceId, sum(c.BilledCost) FROM charges c
            JOIN resource_tags t ON t.ResourceId = c.ResourceId AND t.tag_key = 'team' AND t.tag_value = 'payments'
            WHERE c.BillingCurrency = 'USD' AND c.SubAccountId = ? AND c.x_ResourceGroupName = ?
              AND c.x_ChargeDate >= ? AND c.x_ChargeDate < ? GROUP BY 1
            """, [sub.key, group.key, start, end])
        return {r[0]: r[1] for r in rows}

    now, before = independent(period.start, period.end), independent(prev.start, prev.end)
    assert {n.key: n.cost for n in resources} == now
    assert {n.key: n.previous_cost for n in resources} == {k: before.get(k, ZERO) for k in now}
    for node in resources:
        assert len(node.daily) == period.days
        assert sum(node.daily, ZERO) == node.cost
        daily = dict(_sql(small_cache, "SELECT x_ChargeDate, sum(BilledCost) FROM charges WHERE ResourceId = ? "
                          "AND x_ChargeDate >= ? AND x_ChargeDate < ? GROUP BY 1",
                          [node.key, period.start, period.end]))
        assert node.daily == [daily.get(period.start + dt.timedelta(days=i), ZERO) for i in range(period.days)]
        assert node.change == node.cost - node.previous_cost
    # Each level sums to the node above it, and shares add up to one.
    assert sum((n.cost for n in subs), ZERO) == payments.cost
    assert sum((n.cost for n in groups), ZERO) == sub.cost
    assert sum((n.cost for n in resources), ZERO) == group.cost
    assert sum((n.share or ZERO for n in subs), ZERO) == pytest.approx(Decimal(1))


def test_tree_figures_equal_children(small_cache: Path) -> None:
    period = _period("90d")
    with duckdb.connect(str(small_cache), read_only=True) as con:
        tree = allocation_tree(con, HIERARCHY, period, "effective", "USD", depth=3)

        def check(items: list[TreeNode], path: list[tuple[str, str | None]]) -> None:
            expected = children(con, HIERARCHY, path, period, "effective", "USD")
            assert [(n.key, n.label, n.cost, n.previous_cost, n.share, n.is_unallocated) for n in expected] == [
                (t.node.key, t.node.label, t.node.cost, t.node.previous_cost, t.node.share, t.node.is_unallocated)
                for t in items
            ]
            for item in items:
                if item.children:
                    check(item.children, [*path, item.node.step])

        check(tree, [])


def test_several_currencies_need_a_choice(small_cache: Path) -> None:
    with duckdb.connect(str(small_cache), read_only=True) as con, pytest.raises(UserError, match="USD"):
        children(con, HIERARCHY, [], _period(), "effective")


def test_limit_folds_the_tail_but_keeps_unallocated(small_cache: Path) -> None:
    period = _period()
    with duckdb.connect(str(small_cache), read_only=True) as con:
        everything = children(con, ["resource"], [], period, "effective", "USD")
        limited = children(con, ["resource"], [], period, "effective", "USD", limit=5)  # the top-N query
        teams_all = children(con, ["tag:team"], [], period, "effective", "USD")
        teams = children(con, ["tag:team"], [], period, "effective", "USD", limit=1)
    figures = [(n.key, n.label, n.cost, n.previous_cost, n.daily, n.share) for n in everything[:5]]
    assert [(n.key, n.label, n.cost, n.previous_cost, n.daily, n.share) for n in limited[:5]] == figures
    other = limited[-1]
    assert len(limited) == 6 and other.is_other and other.folded_count == len(everything) - 5
    assert other.cost == sum((n.cost for n in everything[5:]), ZERO)
    assert other.previous_cost == sum((n.previous_cost for n in everything[5:]), ZERO)
    assert other.daily == [sum((n.daily[i] for n in everything[5:]), ZERO) for i in range(period.days)]
    with pytest.raises(ValueError, match="cannot be expanded"):
        _ = other.step
    assert any(n.is_unallocated for n in teams) and len(teams) == 3
    assert sum((n.cost for n in teams), ZERO) == sum((n.cost for n in teams_all), ZERO)


def test_alias_folding_counts_every_spelling_as_one_key(tmp_path: Path) -> None:
    day = END - dt.timedelta(days=1)
    charges = [
        Charge(day, rid("s1", "rg", "a"), Decimal("10.00"), tags={"Team": "payments"}),
        Charge(day, rid("s1", "rg", "b"), Decimal("20.00"), tags={"TEAM": "payments"}),
        Charge(day, rid("s1", "rg", "c"), Decimal("30.00"), tags={"team": "search"}),
        Charge(day, rid("s1", "rg", "d"), Decimal("40.00"), tags={"owner_team": "search"}),
        Charge(day, rid("s1", "rg", "e"), Decimal("50.00"), tags={"env": "prod"}),
        Charge(day, None, Decimal("5.00")),
    ]
    with load(tmp_path / "c.duckdb", charges, aliases={"owner_team": "team"}) as cache, cache.cursor() as cur:
        nodes = children(cur, ["tag:team"], [], _period(), "effective", "USD")
        assert {n.label: n.cost for n in nodes} == {
            "search": Decimal("70.00"), "payments": Decimal("30.00"), UNALLOCATED: Decimal("55.00"),
        }
        assert set(folded_keys(cur, "team")) == {"Team", "TEAM", "team", "owner_team"}
        coverage = {c.key: c for c in tag_keys(cur, _period(), "effective", "USD")}
        assert coverage["team"].resources == 4
        assert coverage["team"].cost == Decimal("100.00")
        assert coverage["team"].cost_share == Decimal("100.00") / Decimal("155.00")
        assert coverage["env"].resources == 1


def test_resource_detail(tmp_path: Path) -> None:
    resource = rid("s1", "rg-Pay", "vm-1")
    charges = [
        Charge(END - dt.timedelta(days=2), resource, Decimal("1.50"), rg="rg-Pay", name="VM-1",
               tags={"Team": "payments", "CostCenter": "cc-1"}, meter="D2s v3"),
        Charge(END - dt.timedelta(days=1), resource, Decimal("2.25"), rg="rg-Pay", name="VM-1",
               tags={"Team": "payments", "CostCenter": "cc-1"}, meter="P10 disk", category="Usage"),
        Charge(END - dt.timedelta(days=1), resource, Decimal("0.25"), rg="rg-Pay", name="VM-1",
               tags={"Team": "payments", "CostCenter": "cc-1"}, meter="D2s v3", category="Tax"),
        Charge(END - dt.timedelta(days=40), resource, Decimal("9.00"), rg="rg-Pay", name="VM-1",
               tags={"Team": "payments", "CostCenter": "cc-1"}),
    ]
    period = _period("30d")
    with load(tmp_path / "c.duckdb", charges) as cache, cache.cursor() as cur:
        detail = resource_detail(cur, resource.upper(), period, rules=())
    assert detail.resource_id == resource
    assert detail.arm_id == "/subscriptions/s1/resourceGroups/rg-Pay/providers/microsoft.compute/virtualmachines/VM-1"
    assert detail.name == "VM-1" and detail.resource_group == "rg-Pay" and detail.subscription_id == "s1"
    assert detail.cost == Decimal("4.00") and detail.previous_cost == Decimal("9.00")
    assert detail.daily[-3:] == [Decimal("1.50"), Decimal("2.50"), ZERO] and sum(detail.daily, ZERO) == Decimal("4.00")
    assert [(m.label, m.cost) for m in detail.by_meter] == [("Compute / P10 disk", Decimal("2.25")),
                                                            ("Compute / D2s v3", Decimal("1.75"))]
    assert [(c.label, c.cost) for c in detail.by_charge_category] == [("Usage", Decimal("3.75")),
                                                                      ("Tax", Decimal("0.25"))]
    assert [(t.key, t.value, t.origin, t.raw_key) for t in detail.tags] == [
        ("costcenter", "cc-1", "provider", "CostCenter"), ("team", "payments", "provider", "Team")]
    assert detail.provider_tags == {"Team": "payments", "CostCenter": "cc-1"}


# --- Property: at every node the children sum to the parent -------------------------------------

# Sub-cent amounts (unit prices, amortized purchases) so rounded figures do not always foot by themselves.
_money = st.decimals(min_value=Decimal("-50"), max_value=Decimal("500"), places=6, allow_nan=False,
                     allow_infinity=False)
_charge = st.builds(
    lambda day, sub, rg, name, team, env, cost, currency, no_resource: Charge(
        END - dt.timedelta(days=day), None if no_resource else rid(sub, rg, name), cost, sub=sub,
        rg=None if no_resource else rg,
        tags=({k: v for k, v in (("team", team), ("Env", env)) if v} or None),
        currency=currency,
    ),
    day=st.integers(0, 70), sub=st.sampled_from(["s1", "s2", "s3"]), rg=st.sampled_from(["rg-a", "rg-b", "RG-C"]),
    name=st.sampled_from(["vm1", "vm2", "db", "kv"]), team=st.sampled_from([None, "pay", "search", "Pay"]),
    env=st.sampled_from([None, "prod", "dev"]), cost=_money, currency=st.sampled_from(["USD", "USD", "EUR"]),
    no_resource=st.booleans(),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(charges=st.lists(_charge, min_size=1, max_size=40),
       hierarchy=st.sampled_from([HIERARCHY, ["subscription", "tag:env", "resource"],
                                  ["tag:env", "tag:team", "resource-group"], ["service", "resource"]]))
def test_children_sum_to_parent_at_every_node(charges: list[Charge], hierarchy: list[str]) -> None:
    period = _period("30d")
    with load(None, charges) as cache, cache.cursor() as cur:
        for currency in ("USD", "EUR"):
            rows = cur.execute(
                "SELECT sum(EffectiveCost) FILTER (WHERE x_ChargeDate >= $s AND x_ChargeDate < $e), "
                "sum(EffectiveCost) FILTER (WHERE x_ChargeDate >= $ps AND x_ChargeDate < $pe) "
                "FROM charges WHERE BillingCurrency = $c",
                {"s": period.start, "e": period.end, "ps": period.previous().start, "pe": period.previous().end,
                 "c": currency},
            ).fetchone()
            assert rows is not None
            total, previous_total = rows[0] or ZERO, rows[1] or ZERO

            def walk(path: list[tuple[str, str | None]], cost: Decimal, previous: Decimal) -> None:
                nodes = children(cur, hierarchy, path, period, "effective", currency)  # noqa: B023
                assert sum((n.cost for n in nodes), ZERO) == cost
                assert sum((n.previous_cost for n in nodes), ZERO) == previous
                assert len({n.key for n in nodes}) == len(nodes)
                for node in nodes:
                    assert sum(node.daily, ZERO) == node.cost
                    if len(path) + 1 < len(hierarchy):
                        walk([*path, node.step], node.cost, node.previous_cost)

            walk([], total, previous_total)
            tree = allocation_tree(cur, hierarchy, period, "effective", currency)

            def tree_sums(items: list[TreeNode], cost: Decimal) -> None:
                assert sum((t.node.cost for t in items), ZERO) == cost
                for item in items:
                    if item.children:
                        tree_sums(item.children, item.node.cost)

            tree_sums(tree, total if tree else ZERO)
            # Printed, every node shows its own exact figure to the cent, and at every level the printed
            # children plus the printed "(rounding)" line (when there is one) equal the printed parent.
            args = argparse.Namespace(by=",".join(hierarchy), depth=None, period=f"{period.start}..{period.end}",
                                      metric="effective",
                                      currency=currency, top=None, format="csv")
            printed = list(csv.DictReader(io.StringIO(allocation_report(cache, args, Config()))))
            exact = _depth_first(tree)
            assert [(int(r["level"]), Decimal(r["cost"]), Decimal(r["previous_cost"])) for r in printed
                    if r["label"] != ROUNDING_LABEL] == [
                (level, cents(t.node.cost), cents(t.node.previous_cost)) for level, t in exact
            ]
            _assert_printed_levels_foot(printed, cents(total) if tree else ZERO)


def _depth_first(items: list[TreeNode], level: int = 0) -> list[tuple[int, TreeNode]]:
    out: list[tuple[int, TreeNode]] = []
    for item in items:
        out.append((level, item))
        out.extend(_depth_first(item.children, level + 1))
    return out


def _assert_printed_levels_foot(rows: list[dict[str, str]], total: Decimal) -> None:
    """Rows in print order (a node, then its children, then their rounding line): each parent's printed
    cost and previous cost equal the sum of the printed rows directly under it, its rounding line included."""
    sums: dict[tuple[int, ...], list[Decimal]] = {(): [ZERO, ZERO]}
    figures: dict[tuple[int, ...], list[Decimal]] = {(): [total, sum((Decimal(r["previous_cost"]) for r in rows
                                                                       if r["level"] == "0"), ZERO)]}
    stack: list[tuple[int, ...]] = [()]
    for index, row in enumerate(rows):
        level = int(row["level"])
        del stack[level + 1:]
        parent = stack[level]
        sums[parent][0] += Decimal(row["cost"])
        sums[parent][1] += Decimal(row["previous_cost"])
        if row["label"] != ROUNDING_LABEL:
            node = (*parent, index)
            stack.append(node)
            sums[node] = [ZERO, ZERO]
            figures[node] = [Decimal(row["cost"]), Decimal(row["previous_cost"])]
            # A rounding line is at most half a cent per row it closes.
        else:
            siblings = sum(1 for r in rows if r["level"] == row["level"] and r["path"] == row["path"])
            assert abs(Decimal(row["cost"])) <= Decimal("0.005") * siblings
    assert sums[()][0] == total
    for node, (cost, previous) in sums.items():
        has_children = any(len(other) == len(node) + 1 and other[: len(node)] == node for other in figures)
        if has_children:
            assert [cost, previous] == figures[node], node


# --- `finops-tui report allocation` ---------------------------------------------------------------


def _report(capsys: pytest.CaptureFixture[str], cache: Path, *args: str) -> str:
    assert main(["report", "allocation", "--cache", str(cache), *args]) == 0
    return capsys.readouterr().out


def test_report_json_is_nested_and_matches_children(capsys: pytest.CaptureFixture[str], small_cache: Path) -> None:
    out = _report(capsys, small_cache, "--by", "tag:team,subscription,resource-group", "--format", "json",
                  "--period", "30d")
    assert "\x1b" not in out
    doc = json.loads(out)
    assert doc["hierarchy"] == ["tag:team", "subscription", "resource-group"]
    assert [c["currency"] for c in doc["currencies"]] == ["USD", "EUR"]
    period = _period("30d")
    with duckdb.connect(str(small_cache), read_only=True) as con:
        for block in doc["currencies"]:
            code = block["currency"]
            top = children(con, HIERARCHY, [], period, "effective", code)
            # Each printed figure is the exact one children() returns, to the cent; the printed children
            # plus the rounding line (when the cents do not foot by themselves) equal the printed parent.
            assert [c["key"] for c in block["children"]] == [n.key for n in top]
            for printed, node in zip(block["children"], top, strict=True):
                assert Decimal(printed["cost"]) == cents(node.cost)
                assert Decimal(printed["previous_cost"]) == cents(node.previous_cost)

            def foots(parent: dict[str, Any]) -> bool:
                rounding = Decimal(parent.get("rounding", {}).get("cost", "0"))
                return Decimal(parent["cost"]) == sum((Decimal(c["cost"]) for c in parent["children"]), rounding)

            assert foots(block)
            for team in block["children"]:
                assert foots(team)
                for sub in team["children"]:
                    assert "children" in sub and all("children" not in g for g in sub["children"])
    unallocated = [c for c in doc["currencies"][0]["children"] if c["unallocated"]]
    assert len(unallocated) == 1 and unallocated[0]["label"] == UNALLOCATED and unallocated[0]["key"] is None


def test_report_csv_has_a_path_column(capsys: pytest.CaptureFixture[str], small_cache: Path) -> None:
    out = _report(capsys, small_cache, "--by", "tag:team,resource-group", "--format", "csv", "--currency", "usd",
                  "--period", "30d")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["currency"] for r in rows} == {"USD"}
    top = [r for r in rows if r["level"] == "0" and r["label"] != ROUNDING_LABEL]
    assert all(r["path"] == "" for r in top)
    nested = [r for r in rows if r["level"] == "1"]  # a team's rounding line too, when it has one
    assert nested and all(r["path"].startswith("tag:team=") for r in nested)
    for team in top:
        below = [Decimal(r["cost"]) for r in nested if r["path"] == f"tag:team={team['label']}"]
        assert sum(below, ZERO) == Decimal(team["cost"])


def test_report_table_and_markdown(capsys: pytest.CaptureFixture[str], small_cache: Path) -> None:
    table = _report(capsys, small_cache, "--by", "tag:team,subscription", "--currency", "USD", "--period", "30d")
    assert "Allocation by tag:team > subscription" in table
    assert UNALLOCATED in table
    assert "\n  Prod" in table or "\n  Dev" in table or "\n  Shared" in table  # indented children
    md = _report(capsys, small_cache, "--by", "tag:team,subscription", "--depth", "1", "--format", "md",
                 "--currency", "USD", "--period", "30d")
    assert md.startswith("## Allocation by tag:team")
    assert "| tag:team |" in md and "· " not in md  # depth 1: no children rows


def test_report_uses_configured_default_hierarchy(capsys: pytest.CaptureFixture[str], small_cache: Path) -> None:
    doc = json.loads(_report(capsys, small_cache, "--format", "json", "--depth", "2", "--currency", "EUR"))
    assert doc["hierarchy"] == ["tag:team", "subscription"]
