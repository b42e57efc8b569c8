"""One rounding rule everywhere: a node shows its exact sum to the cent (half-even) in every view, and a
"(rounding)" line, never a moved cent, makes the rounded children add up to the rounded parent."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from finops_tui.basis.money import ROUNDING_LABEL, cents, rounding_gap
from finops_tui.cli import main
from finops_tui.config import Config
from finops_tui.ui.screens.allocation import AllocationScreen
from finops_tui.ui.widgets.alloc_tree import AllocTree
from tests.allocation_data import END, TODAY, Charge, load, rid
from tests.ui_fixtures import async_test, make_app, opened, settle

# s1 costs 10.005973 (shown 10.01) in two resources that show 4.00 and 6.00; s2 costs 5.008 (shown 5.01).
# The total, 15.013973, shows 15.01: the rounded subscriptions make 15.02, the rounded resources of s1 10.00.
S1 = Decimal("10.005973")
S2 = Decimal("5.008")
DAY = END - dt.timedelta(days=1)


def _charges() -> list[Charge]:
    return [
        Charge(DAY, rid("s1", "rg-a", "vm-a"), Decimal("4.004")),
        Charge(DAY, rid("s1", "rg-a", "vm-b"), Decimal("6.001973")),
        Charge(DAY, rid("s2", "rg-b", "vm-c"), S2),
    ]


pytestmark = pytest.mark.today(TODAY)


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    path = tmp_path / "cache.duckdb"
    load(path, _charges()).close()
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_cents_round_half_even() -> None:
    assert cents(Decimal("0.125")) == Decimal("0.12")
    assert cents(Decimal("0.135")) == Decimal("0.14")
    assert cents(Decimal("24293.395973")) == Decimal("24293.40")
    assert cents(Decimal("-0.005")) == Decimal("-0.00")
    assert cents(None) == Decimal("0.00")


def test_rounding_gap_is_what_the_rounded_parts_miss() -> None:
    assert rounding_gap(S1 + S2, [S1, S2]) == Decimal("-0.01")
    assert rounding_gap(S1, [Decimal("4.004"), Decimal("6.001973")]) == Decimal("0.01")
    assert rounding_gap(Decimal("3.00"), [Decimal("1.00"), Decimal("2.00")]) == 0
    assert rounding_gap(Decimal(0), []) == 0


def test_overview_and_allocation_show_the_same_figure_for_a_node(
    capsys: pytest.CaptureFixture[str], cache_path: Path
) -> None:
    common = ("--cache", str(cache_path), "--period", "30d", "--format", "json")
    overview = json.loads(_run(capsys, "report", "overview", *common))
    allocation = json.loads(_run(capsys, "report", "allocation", "--by", "subscription,resource", *common))
    by_overview = {r["key"]: r["cost"] for r in overview["breakdowns"]["subscription"]}
    [block] = allocation["currencies"]
    by_allocation = {c["key"]: c["cost"] for c in block["children"]}
    assert by_overview == by_allocation == {"s1": "10.01", "s2": "5.01"}
    assert overview["totals"][0]["cost"] == block["cost"] == "15.01"
    # The JSON says what the rounded children miss, so a consumer can foot them too.
    assert block["rounding"] == {"cost": "-0.01", "previous_cost": "0.00", "change": "-0.01"}
    s1 = next(c for c in block["children"] if c["key"] == "s1")
    assert [c["cost"] for c in s1["children"]] == ["6.00", "4.00"]
    assert s1["rounding"]["cost"] == "0.01"
    s2 = next(c for c in block["children"] if c["key"] == "s2")
    assert "rounding" not in s2


def test_report_allocation_csv_foots_with_explicit_rounding_rows(
    capsys: pytest.CaptureFixture[str], cache_path: Path
) -> None:
    out = _run(capsys, "report", "allocation", "--cache", str(cache_path), "--by", "subscription,resource",
               "--period", "30d", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    rounding = [r for r in rows if r["label"] == ROUNDING_LABEL]
    assert [(r["path"], r["cost"]) for r in rounding] == [("subscription=Subscription S1", "0.01"), ("", "-0.01")]
    # Every parent equals its shown children plus its rounding row; the top level foots to the overview total.
    top = [r for r in rows if r["path"] == ""]
    assert sum((Decimal(r["cost"]) for r in top), Decimal(0)) == Decimal("15.01")
    for parent in (r for r in rows if r["level"] == "0" and r["label"] != ROUNDING_LABEL):
        below = [Decimal(r["cost"]) for r in rows if r["path"] == f"subscription={parent['label']}"]
        assert sum(below, Decimal(0)) == Decimal(parent["cost"])
    # The nodes themselves carry their own half-even figures, never a cent moved from a sibling.
    assert {r["label"]: r["cost"] for r in rows if r["label"] != ROUNDING_LABEL} == {
        "Subscription S1": "10.01", "Subscription S2": "5.01", "vm-b": "6.00", "vm-a": "4.00", "vm-c": "5.01",
    }


def test_report_allocation_table_and_markdown_show_the_rounding_line(
    capsys: pytest.CaptureFixture[str], cache_path: Path
) -> None:
    args = ("report", "allocation", "--cache", str(cache_path), "--by", "subscription,resource", "--period", "30d")
    table = _run(capsys, *args)
    lines = table.splitlines()
    total = next(line for line in lines if line.startswith("Total"))
    assert "15.01" in total
    assert any(line.startswith(f"  {ROUNDING_LABEL}") and "0.01" in line for line in lines)
    top_rounding = [line for line in lines if line.startswith(ROUNDING_LABEL)]
    assert len(top_rounding) == 1 and "-0.01" in top_rounding[0]
    md = _run(capsys, *args, "--format", "md")
    assert f"| · {ROUNDING_LABEL} | 0.01 |" in md and f"| {ROUNDING_LABEL} | -0.01 |" in md


def test_no_rounding_line_when_the_cents_foot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "whole-cents.duckdb"
    load(path, [Charge(DAY, rid("s1", "rg", "a"), Decimal("1.25")), Charge(DAY, rid("s2", "rg", "b"), Decimal("2.50"))]
         ).close()
    for fmt in ("table", "csv", "md", "json"):
        out = _run(capsys, "report", "allocation", "--cache", str(path), "--by", "subscription,resource",
                   "--period", "30d", "--format", fmt)
        assert ROUNDING_LABEL not in out and '"rounding"' not in out


# --- The explorer's tree shows the same figures and the same rounding lines ------------------------


def _tree_rows(tree: AllocTree) -> list[tuple[str, int, str, Any]]:
    out: list[tuple[str, int, str, Any]] = []
    for row in tree.rows:
        if row.kind == "node" and row.branch is not None:
            out.append(("node", row.depth, row.branch.label, row.branch.cost))
        elif row.kind == "rounding" and row.rounding is not None:
            out.append(("rounding", row.depth, row.text, row.rounding.cost))
    return out


@async_test
async def test_the_tree_shows_each_node_half_even_and_a_rounding_row(tmp_path: Path) -> None:
    path = tmp_path / "ui.duckdb"
    load(path, _charges()).close()
    config = Config(hierarchies={"default": ["subscription", "resource"]})
    with opened(path) as cache:
        app = make_app(cache, config=config)
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await pilot.press("2")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, AllocationScreen)
            tree = screen.tree_view
            assert tree.total == Decimal("15.01")
            s1 = next(b for b in tree.level_branches(()) if b.node.key == "s1")
            tree.reveal(s1.path)
            await settle(pilot)
            assert _tree_rows(tree) == [
                ("node", 0, "Subscription S1", Decimal("10.01")),
                ("node", 1, "vm-b", Decimal("6.00")),
                ("node", 1, "vm-a", Decimal("4.00")),
                ("rounding", 1, ROUNDING_LABEL, Decimal("0.01")),
                ("node", 0, "Subscription S2", Decimal("5.01")),
                ("rounding", 0, ROUNDING_LABEL, Decimal("-0.01")),
            ]
            # The cursor never rests on a rounding row: G goes to the last node, j steps over the line.
            await pilot.press("G")
            assert tree.cursor_branch is not None and tree.cursor_branch.label == "Subscription S2"
            await pilot.press("k")
            assert tree.cursor_branch is not None and tree.cursor_branch.label == "vm-a"
            await pilot.press("j")
            assert tree.cursor_branch is not None and tree.cursor_branch.label == "Subscription S2"
            # The export of a level carries its rounding row too, so the file foots.
            await pilot.press("k")
            exported = list(tree.csv_rows(tree.cursor_level()))
            assert [(r[3], r[5]) for r in exported] == [("vm-b", "6.00"), ("vm-a", "4.00"),
                                                        (ROUNDING_LABEL, "0.01")]
    assert cents(S1) == Decimal("10.01") and cents(S2) == Decimal("5.01")
