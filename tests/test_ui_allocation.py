"""Allocation screen: drill-down and back by keyboard, figures equal `report allocation`, hierarchies, filter."""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from finops_tui.basis.money import money
from finops_tui.cli import main
from finops_tui.config import load_config
from finops_tui.store import open_cache
from finops_tui.ui.dialogs.hierarchy import HierarchyDialog
from finops_tui.ui.screens.allocation import AllocationScreen, level_title, slice_hierarchy
from finops_tui.ui.screens.overview import OverviewScreen
from finops_tui.ui.screens.resource_detail import ResourceDetailScreen
from finops_tui.ui.screens.tagging import TaggingScreen
from finops_tui.ui.widgets.alloc_sparkline import sparkline
from finops_tui.ui.widgets.alloc_tree import AllocTree, Branch
from tests.allocation_data import Charge, days, load, rid
from tests.ui_fixtures import TODAY, async_test, make_app, opened, screen_text, settle, usd_cache_path, without_prefetch

SIZE = (120, 40)
Doc = dict[str, Any]


pytestmark = pytest.mark.today(TODAY)


@pytest.fixture(autouse=True)
def _quiet_overview(monkeypatch: pytest.MonkeyPatch) -> None:
    # The overview's background guesses (other periods and metrics) only slow these tests down.
    without_prefetch(monkeypatch, "overview")


def report_json(capsys: pytest.CaptureFixture[str], path: Path, by: str, period: str = "mtd",
                metric: str = "effective") -> Doc:
    assert main(["report", "allocation", "--cache", str(path), "--by", by, "--format", "json", "--period", period,
                 "--metric", metric]) == 0
    document: Doc = json.loads(capsys.readouterr().out)
    return document


async def open_tree(pilot: Pilot[Any]) -> AllocationScreen:
    await settle(pilot)
    await pilot.press("2")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, AllocationScreen)
    return screen


async def expand_everything(pilot: Pilot[Any], tree: AllocTree) -> None:
    """Expand every node, level by level (each expansion is the real lazy path: message, cache or worker)."""
    while todo := [row.branch for row in tree.rows
                   if row.kind == "node" and row.branch is not None and row.branch.expandable
                   and not row.branch.expanded]:
        for branch in todo:
            tree.reveal(branch.path)
        await settle(pilot)


def assert_tree_matches(tree: AllocTree, document: Doc) -> int:
    """Every node of the report (figures, share, order by cost) is on screen with the same figures."""
    [currency] = document["currencies"]
    assert (format(tree.total, "f"), format(tree.total_previous, "f")) == (currency["cost"], currency["previous_cost"])
    checked = 0

    def walk(children: list[Doc], shown: list[Branch]) -> None:
        nonlocal checked
        assert [(c["dimension"], c["key"], c["label"]) for c in children] == \
            [(b.node.dimension, b.node.key, b.label) for b in shown]
        for child, branch in zip(children, shown, strict=True):
            assert format(branch.cost, "f") == child["cost"], branch.path
            assert format(branch.previous, "f") == child["previous_cost"], branch.path
            assert format(branch.change, "f") == child["change"], branch.path
            share = branch.node.share
            assert (format(share.quantize(Decimal("0.0001")), "f") if share is not None else None) == child["share"]
            assert branch.node.is_unallocated == child["unallocated"]
            checked += 1
            if child.get("children"):
                assert branch.children is not None
                walk(child["children"], tree.level_branches(branch.path))

    walk(currency["children"], tree.level_branches(()))
    return checked


# --------------------------------------------------------------------------------------------------


@async_test
async def test_drill_down_to_a_resource_and_back_with_the_keyboard_alone() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_tree(pilot)
            tree = screen.tree_view
            assert [level_title(level) for level in screen.shown_hierarchy] == \
                ["team", "subscription", "resource group", "resource"]
            top = tree.cursor_branch
            assert top is not None and top.node.dimension == "tag:team"
            walked = [top.label]
            for dimension in ("subscription", "resource-group", "resource"):
                await pilot.press("enter")  # drills: expands and moves into the largest child
                await settle(pilot)
                branch = tree.cursor_branch
                assert branch is not None and branch.node.dimension == dimension
                assert branch.parent is not None and branch.parent.expanded
                walked.append(branch.label)
            text = screen_text(app)
            assert " › ".join(f"{level} {label}" for level, label in
                              zip(["team", "subscription", "resource group", "resource"], walked, strict=True)) in text
            resource = tree.cursor_branch
            assert resource is not None and resource.node.key is not None

            await pilot.press("enter")  # a resource opens its detail
            await settle(pilot)
            detail = app.screen
            assert isinstance(detail, ResourceDetailScreen) and detail.detail is not None
            assert detail.detail.resource_id == resource.node.key
            assert format(detail.detail.cost.quantize(Decimal("0.01")), "f") == format(resource.cost, "f")
            text = screen_text(app)
            assert f"team {walked[0]}" in text and f"resource {walked[-1]}" in text  # breadcrumbs
            assert "By meter / SKU" in text and "By charge category" in text and detail.detail.arm_id in text

            await pilot.press("escape")
            await settle(pilot)
            assert app.screen is screen and tree.cursor_branch is resource
            for expected in reversed(walked[:-1]):  # esc goes up one level at a time, folding it
                await pilot.press("escape")
                await pilot.pause()
                branch = tree.cursor_branch
                assert branch is not None and branch.label == expected and not branch.expanded
            await pilot.press("escape")  # at the top: nothing to go back to
            assert tree.cursor_branch is top and app.screen is screen


@async_test
async def test_vim_keys_expand_collapse_and_move() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_tree(pilot)
            tree = screen.tree_view
            first = tree.cursor_branch
            assert first is not None
            await pilot.press("l")
            await settle(pilot)
            assert first.expanded and tree.cursor_branch is first  # l expands, the cursor stays
            await pilot.press("l")
            assert tree.cursor_branch is not None and tree.cursor_branch.parent is first  # again: into it
            await pilot.press("h")
            assert tree.cursor_branch is first  # h on a folded node goes to the parent
            await pilot.press("h")
            assert not first.expanded
            await pilot.press("G")
            last = tree.cursor_branch
            assert last is not None and last.node.is_unallocated and last is tree.level_branches(())[-1]
            await pilot.press("g", "j", "k")
            assert tree.cursor_branch is first


@async_test
async def test_figures_equal_report_allocation(capsys: pytest.CaptureFixture[str]) -> None:
    by = "tag:team,subscription,resource-group,resource"
    document = report_json(capsys, usd_cache_path(), by)
    last_month_billed = report_json(capsys, usd_cache_path(), "service,region", "last-month", "billed")
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_tree(pilot)
            tree = screen.tree_view
            await expand_everything(pilot, tree)
            assert assert_tree_matches(tree, document) > 100
            await pilot.press("g")  # back to the top: the first rows on screen
            text = screen_text(app)
            assert money(tree.total, "USD") in text
            first = tree.level_branches(())[0]
            for branch in (first, *tree.level_branches(first.path)):  # the rows at the top of the screen
                assert money(branch.cost) in text and branch.label in text

            # Another hierarchy, period and metric: still the report's figures.
            screen.set_hierarchy(["service", "region"], None)
            await settle(pilot)
            await pilot.press("m")
            await settle(pilot)
            screen.set_period("last-month")
            await settle(pilot)
            assert screen.shown_state == ("last-month", "billed", None)
            await expand_everything(pilot, tree)
            assert assert_tree_matches(tree, last_month_billed) > 8
            assert "BilledCost (actual)" in screen_text(app)


@async_test
async def test_hierarchy_dialog_builds_saves_and_cycles(capsys: pytest.CaptureFixture[str]) -> None:
    document = report_json(capsys, usd_cache_path(), "service,tag:team")
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_tree(pilot)
            await pilot.press("H")
            await settle(pilot)
            dialog = app.screen
            assert isinstance(dialog, HierarchyDialog)
            assert dialog.levels == ["tag:team", "subscription", "resource-group", "resource"]
            await pilot.press("ctrl+u")  # start from nothing
            choices = [name for name, _ in dialog._choices]
            assert choices[0] == "tag:team" and "region" in choices and "charge-category" in choices
            for name in ("service", "tag:team"):
                await pilot.press("home", *["down"] * choices.index(name), "enter")
            assert dialog.levels == ["service", "tag:team"]
            await pilot.press("tab", *"by-service", "enter")  # the name field, then save
            await settle(pilot)
            assert app.screen is screen
            assert screen.hierarchy == ["service", "tag:team"] and screen.hierarchy_name == "by-service"
            assert load_config().hierarchies["by-service"] == ["service", "tag:team"]
            text = screen_text(app)
            assert "by-service" in text and "service › team" in text
            await expand_everything(pilot, screen.tree_view)
            assert_tree_matches(screen.tree_view, document)

            await pilot.press("v")  # cycles the saved hierarchies: back to the default
            await settle(pilot)
            assert screen.hierarchy_name == "default" and screen.shown_hierarchy[0] == "tag:team"
            await pilot.press("v")
            await settle(pilot)
            assert screen.hierarchy_name == "by-service"
            assert screen.shown_hierarchy == ("service", "tag:team")  # repainted (from memory or prefetched)


@async_test
async def test_filter_narrows_the_cursor_level_and_esc_clears_then_goes_back() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_tree(pilot)
            tree = screen.tree_view
            await pilot.press("slash", *"PAY")
            assert [b.label for b in tree.level_branches(())] == ["payments"]
            assert "filter “PAY”" in screen_text(app)
            await pilot.press("enter")  # keeps the filter, back in the tree
            assert tree.has_focus and tree.filters == {(): "PAY"}
            await pilot.press("escape")
            assert tree.filters == {} and len(tree.level_branches(())) == 6

            await pilot.press("enter")  # into the largest team's subscriptions
            await settle(pilot)
            team = tree.cursor_branch.parent if tree.cursor_branch else None
            assert team is not None
            await pilot.press("slash", *"dev")
            assert [b.label for b in tree.level_branches(team.path)] == ["Development"]
            assert len(tree.level_branches(())) == 6  # other levels are not filtered
            await pilot.press("slash", "ctrl+u", *"zzz")
            assert "no name contains “zzz”" in screen_text(app)
            await pilot.press("escape")  # clears the filter
            assert len(tree.level_branches(team.path)) == 3
            await pilot.press("escape")  # then goes back
            assert tree.cursor_branch is team and not team.expanded


@async_test
async def test_sort_cycles_cost_change_name() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_tree(pilot)
            tree = screen.tree_view
            by_cost = [b.cost for b in tree.level_branches(())]
            assert by_cost == sorted(by_cost, reverse=True)
            await pilot.press("s")
            assert tree.sort_mode == "change"
            changes = [b.change for b in tree.level_branches(())]
            assert changes == sorted(changes, reverse=True)
            await pilot.press("s")
            names = [b.label.casefold() for b in tree.level_branches(())]
            assert names == sorted(names)
            assert "sorted by name" in screen_text(app)


@async_test
async def test_overview_row_opens_its_slice_expanded() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            overview = app.screen
            assert isinstance(overview, OverviewScreen) and overview.view is not None
            top_service = overview.view.breakdowns["service"][0]
            await pilot.press("enter")  # the service table has the focus
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, AllocationScreen)
            assert screen.shown_hierarchy == ("service", "resource-group", "resource")
            branch = screen.tree_view.cursor_branch
            assert branch is not None and branch.node.key == top_service.key and branch.expanded
            assert branch.children and sum((c.cost for c in branch.children), Decimal(0)) == branch.cost
    assert slice_hierarchy("subscription", ["tag:team", "subscription", "resource-group", "resource"]) == \
        ["subscription", "resource-group", "resource"]
    assert slice_hierarchy("region", ["team", "rg"]) == ["region", "resource-group", "resource"]


@async_test
async def test_unallocated_node_opens_the_tagging_queue_and_esc_comes_back() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_tree(pilot)
            await pilot.press("G")
            unallocated = screen.tree_view.cursor_branch
            assert unallocated is not None and unallocated.node.is_unallocated
            await pilot.press("enter")
            await settle(pilot)
            tagging = app.screen
            assert isinstance(tagging, TaggingScreen) and tagging.key == "team" and tagging.queue is not None
            assert format(tagging.queue.total.quantize(Decimal("0.01")), "f") == format(unallocated.cost, "f")
            await pilot.press("escape")
            assert app.screen is screen


@async_test
async def test_export_writes_the_cursor_level(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINOPS_TUI_EXPORTS_DIR", str(tmp_path))
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_tree(pilot)
            await pilot.press("enter")
            await settle(pilot)
            await pilot.press("ctrl+s")
            [path] = tmp_path.glob("finops-allocation-*.csv")
            assert "team-subscription-data-2026-11-01..2026-11-26-effective-USD" in path.name
            rows = list(csv.DictReader(path.open(encoding="utf-8")))
            shown = screen.tree_view.level_branches(screen.tree_view.cursor_level())
            nodes = rows[: len(shown)]
            assert [(r["label"], r["cost"]) for r in nodes] == [(b.label, format(b.cost, "f")) for b in shown]
            # Then a "(rounding)" row when the rounded rows miss their parent's rounded cost: the file foots.
            assert [r["label"] for r in rows[len(shown):]] in ([], ["(rounding)"])
            parent = screen.tree_view.branch(screen.tree_view.cursor_level())
            assert parent is not None and sum((Decimal(r["cost"]) for r in rows), Decimal(0)) == parent.cost
            assert rows[0]["parent"] == "tag:team=data"


@async_test
async def test_folded_tag_key_spellings_are_named(tmp_path: Path) -> None:
    start = TODAY - dt.timedelta(days=10)
    charges = [
        Charge(day, rid("s1", "rg-a", name), Decimal("3.00"), tags={spelling: value})
        for day in days(start, 10)
        for name, spelling, value in (("a", "team", "pay"), ("b", "Team", "pay"), ("c", "TEAM", "web"),
                                      ("d", "Team", "web"))
    ]
    path = tmp_path / "spellings.duckdb"
    load(path, charges).close()
    with open_cache(path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_tree(pilot)
            assert screen.folded["team"] == ["Team", "TEAM", "team"]
            assert "team ← Team, TEAM" in screen_text(app)
            assert [b.label for b in screen.tree_view.level_branches(())] == ["pay", "web"]


def test_sparkline_scales_to_the_peak_and_averages_long_periods() -> None:
    assert sparkline([Decimal(v) for v in (0, 1, 4, 8)], 10) == " ▁▄█"
    assert sparkline([Decimal(-2), Decimal(2)], 10) == " █"
    assert sparkline([Decimal(0)] * 3, 10) == "   "
    # 6 days in 4 cells: two of the buckets hold two days; averages keep a flat series flat.
    assert sparkline([Decimal(5)] * 6, 4) == "████"


@async_test
async def test_prefetch_answers_the_next_expansion_from_memory() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_tree(pilot)  # settled: the prefetch has run while the "user" read
            tree = screen.tree_view
            top = tree.cursor_branch
            assert top is not None and top.children is None
            await pilot.press("l")
            await pilot.pause()
            assert top.children is not None and not screen._expansions  # no query ran for it
            assert any(row.branch is not None and row.branch.parent is top for row in tree.rows)  # painted
            await settle(pilot)  # the user reads; the prefetch computes the new level's children
            await pilot.press("l", "l")  # into the subscription, expanded from memory too
            await pilot.pause()
            assert not screen._expansions
            assert tree.cursor_branch is not None and tree.cursor_branch.children is not None
