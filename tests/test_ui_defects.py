"""Issue 10, the explorer: palette keys, esc across views, 80x24 layout, markup, key remapping, exports."""

from __future__ import annotations

import csv
import io
import itertools
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import platformdirs
import pytest
from rich.cells import cell_len
from textual.command import CommandPalette
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widgets import Button, Input, Label
from textual.widgets._footer import FooterKey
from textual.widgets._toast import Toast

from finops_tui import paths
from finops_tui.allocation.push import PushItem
from finops_tui.basis.periods import parse_period
from finops_tui.cli import main
from finops_tui.config import Config
from finops_tui.recommend import Context, JumpTarget, Recommendation, Scope
from finops_tui.recommend.generators import unallocated
from finops_tui.store import open_cache
from finops_tui.ui.app import FinopsApp
from finops_tui.ui.dialogs.help import HelpDialog, KeyRows
from finops_tui.ui.dialogs.hierarchy import HierarchyDialog
from finops_tui.ui.dialogs.period import CustomPeriodDialog, PeriodDialog, VimOptionList
from finops_tui.ui.dialogs.push_preview import PushPreviewDialog
from finops_tui.ui.dialogs.tag_dialog import RuleDialog, TagKeyDialog
from finops_tui.ui.keymap import resolve_keymap
from finops_tui.ui.screens.allocation import AllocationScreen
from finops_tui.ui.screens.overview import OverviewScreen
from finops_tui.ui.screens.recommendations import RecommendationsScreen
from finops_tui.ui.screens.resource_detail import ResourceDetailScreen
from finops_tui.ui.screens.tagging import TaggingScreen
from finops_tui.ui.widgets.alloc_queue import QueueTable
from finops_tui.ui.widgets.alloc_tree import AllocTree
from finops_tui.ui.widgets.context_bar import ContextBar
from finops_tui.ui.widgets.key_footer import KeyFooter
from finops_tui.ui.widgets.rec_list import RecList
from finops_tui.ui.widgets.view_tabs import ViewTabs
from tests.ui_fixtures import (
    TODAY,
    async_test,
    build_ui_cache,
    empty_cache_path,
    make_app,
    opened,
    screen_text,
    settle,
    settle_footer,
    usd_cache_path,
    without_prefetch,
)

SMALL = (80, 24)
LARGE = (160, 48)


pytestmark = pytest.mark.today(TODAY)


@pytest.fixture(autouse=True)
def _no_prefetch(monkeypatch: pytest.MonkeyPatch) -> None:
    without_prefetch(monkeypatch, "overview", "allocation")


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    """A copy of the shared small cache, for tests that write (tags, recommendation runs)."""
    path = tmp_path / "usd.duckdb"
    shutil.copyfile(usd_cache_path(), path)
    return path


def notices(app: FinopsApp) -> list[str]:
    return [n.message for n in app._notifications]


def toasts(app: FinopsApp) -> list[str]:
    """The text of the notifications on screen, as drawn."""
    return [toast.render().plain for toast in app.screen.query(Toast)]


async def show(pilot: Pilot[Any], *keys: str) -> None:
    """Press `keys` one at a time, letting every worker finish after each (views load in workers)."""
    for key in keys:
        await pilot.press(key)
        await settle_footer(pilot)


async def open_recommendations(pilot: Pilot[Any]) -> RecommendationsScreen:
    """Key 3, then wait for the fresh run the screen starts once the stored one is shown."""
    await show(pilot, "3")
    screen = pilot.app.screen
    assert isinstance(screen, RecommendationsScreen)
    for _ in range(50):
        if not screen.running and screen.run is not None:
            return screen
        await settle(pilot)
    raise AssertionError(f"no run: {screen.failure or screen.status_text()}")


# --------------------------------------------------------------------------------------------------
# 19: ctrl+p and : both open the command palette


@async_test
async def test_ctrl_p_and_colon_both_open_the_command_palette() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            for key in ("ctrl+p", "colon"):
                await pilot.press(key)
                await pilot.pause()
                assert isinstance(app.screen, CommandPalette), key
                await pilot.press("escape")
                await pilot.pause()
                assert isinstance(app.screen, OverviewScreen)


# --------------------------------------------------------------------------------------------------
# 20: esc goes back across views


@async_test
async def test_esc_returns_to_the_overview_after_enter_opened_a_slice() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            await show(pilot, "enter")  # the costliest service, in the allocation tree
            assert app.current_mode == "allocation"
            await show(pilot, "escape")
            assert app.current_mode == "overview"
            await show(pilot, "escape")  # nothing left to go back to: stays
            assert app.current_mode == "overview"


@async_test
async def test_esc_after_drilling_in_a_slice_goes_up_first_then_back() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            await show(pilot, "enter", "j", "enter")  # into the slice, then into one of its children
            tree = app.screen.query_one(AllocTree)
            assert tree.cursor_branch is not None and tree.cursor_branch.depth == 2
            await show(pilot, "escape")
            assert app.current_mode == "allocation", "esc goes up one level first"
            await show(pilot, "escape", "escape")
            assert app.current_mode == "overview"


@async_test
async def test_a_view_picked_by_its_key_has_no_way_back() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            await show(pilot, "enter", "2")  # a slice, then the same view by its key: a fresh start
            await show(pilot, "escape", "escape", "escape")
            assert app.current_mode == "allocation"


@async_test
async def test_esc_returns_to_the_recommendations_after_open_target(cache_path: Path) -> None:
    with opened(cache_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            screen = await open_recommendations(pilot)
            target = next(r for r in screen.shown if r.jump and r.jump.screen == "allocation")
            screen.query_one(RecList).cursor_row = screen.shown.index(target)
            await show(pilot, "enter")
            assert app.current_mode == "allocation" and isinstance(app.screen, AllocationScreen)
            await show(pilot, "escape")
            assert app.current_mode == "recommendations" and app.screen is screen

            # A finding about one resource opens its detail; esc there comes straight back too.
            resource = "/subscriptions/sub-1/resourcegroups/rg-search/providers/x/r1"
            rec = Recommendation("test", "new-sku", "A new meter on res-1", Scope("resource", resource, "res-1"),
                                 Decimal("12.50"), "USD", "high", "increase", "Look at it.",
                                 jump=JumpTarget("allocation", (("subscription", "sub-1"),
                                                                ("resource-group", "rg-search"),
                                                                ("resource", resource))))
            screen.open_target(rec)
            await settle(pilot)
            await pilot.pause()
            assert isinstance(app.screen, ResourceDetailScreen) and app.screen.resource_id == resource
            await show(pilot, "escape")
            assert app.current_mode == "recommendations" and app.screen is screen
            await show(pilot, "2")
            assert isinstance(app.screen, AllocationScreen), "the detail does not linger over the tree"


# --------------------------------------------------------------------------------------------------
# 21: every screen usable at 80x24; nothing cut at 160x48


def assert_footer_whole(app: FinopsApp) -> None:
    footer = app.screen.query_one(KeyFooter)
    keys = list(footer.query(FooterKey))
    shown = {key.key_display for key in keys}
    assert {"?", "q"} <= shown, (type(app.screen).__name__, shown)
    for key in keys:
        assert key.region.width > 0 and key.region.right <= footer.region.right, (key.key_display, key.region)
    regions = sorted((key.region.x, key.region.right) for key in keys)
    assert all(right <= x for (_, right), (x, _) in itertools.pairwise(regions)), "keys overlap"


@async_test
async def test_footer_keeps_help_and_quit_and_whole_keys_on_every_screen_at_80x24(cache_path: Path) -> None:
    with opened(cache_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SMALL) as pilot:
            await show(pilot, "tab")
            assert_footer_whole(app)
            for keys, screen_type in ((("2",), AllocationScreen), (("enter", "enter", "enter", "enter"),
                                                                     ResourceDetailScreen),
                                      (("escape", "3"), RecommendationsScreen), (("4",), TaggingScreen)):
                await show(pilot, *keys)
                assert isinstance(app.screen, screen_type)
                assert_footer_whole(app)
    with opened(empty_cache_path(cache_path.parent)) as cache:
        app = make_app(cache)
        async with app.run_test(size=SMALL) as pilot:
            await show(pilot, "tab")
            assert_footer_whole(app)


@async_test
async def test_view_tabs_stay_on_screen_at_80_and_100_columns() -> None:
    for size in (SMALL, (100, 30)):
        with opened(usd_cache_path()) as cache:
            app = make_app(cache)
            async with app.run_test(size=size) as pilot:
                for key in ("1", "2", "3", "4"):
                    await show(pilot, key)
                    tabs = app.screen.query_one(ViewTabs)
                    assert tabs.display and tabs.region.width > 0 and tabs.region.right <= size[0], (size, key)
                    bar = app.screen.query_one(ContextBar)
                    assert cell_len(bar.shown) + tabs.region.width <= size[0] - 2, (size, key, bar.shown)


def help_columns(dialog: HelpDialog) -> tuple[str, str]:
    """The help's text as drawn: its description column (lines joined), and everything."""
    rows = dialog.query_one(KeyRows)
    lines = [strip.text for strip in rows.render_lines(Region(0, 0, rows.size.width, rows.size.height))]
    column = lines[0].index("What it does")
    descriptions = " ".join(" ".join(line[column:].split()) for line in lines[1:])
    return descriptions, " ".join(" ".join(line.split()) for line in lines)


@async_test
async def test_help_descriptions_are_whole_at_80x24_and_160x48() -> None:
    for size in (SMALL, LARGE):
        with opened(usd_cache_path()) as cache:
            app = make_app(cache)
            async with app.run_test(size=size) as pilot:
                await show(pilot, "question_mark")
                dialog = app.screen
                assert isinstance(dialog, HelpDialog)
                descriptions, everything = help_columns(dialog)
                for row in dialog.rows:
                    assert row.detail in descriptions, (size, row.detail)
                    assert f" {row.binding_id} " in f" {everything} ", (size, row.binding_id)
                assert dialog.query_one(KeyRows).region.right <= size[0]


@async_test
async def test_push_preview_buttons_stay_on_screen_at_80x24(cache_path: Path) -> None:
    items = [PushItem(f"/subscriptions/s/resourcegroups/rg/providers/a.b/c/vm-{n}",
                      f"/subscriptions/s/resourceGroups/rg/providers/a.b/c/vm-{n}", f"vm-{n}",
                      {"team": "payments"}, (n,)) for n in range(40)]
    with opened(cache_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            await app.push_screen(PushPreviewDialog(items, cache=cache, endpoint=None, credential_mode="cli"))
            await pilot.pause()
            for button in app.screen.query(Button):
                assert button.region.y >= 0 and button.region.bottom <= SMALL[1], (button.id, button.region)
                assert button.region.width > 0
            await pilot.press("tab")  # from Cancel (the safe choice has the focus) to Send
            await pilot.pause()
            focused = app.focused
            assert isinstance(focused, Button) and focused.id == "send"
            assert focused.region.y >= 0 and focused.region.bottom <= SMALL[1]


@async_test
async def test_status_bar_parts_do_not_run_together_at_80x24(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "a-long-folder-name-for-the-cache" / "and-another-one"
    folder.mkdir(parents=True)
    path = build_ui_cache(folder / "a-cache-file-with-a-long-name.duckdb", kind="focus-file")
    monkeypatch.setenv("HOME", str(tmp_path))
    with opened(path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SMALL) as pilot:
            for key in ("1", "2"):
                await show(pilot, key)
                freshness = app.screen.query_one("#freshness", Label)
                cache_file = app.screen.query_one("#cache-file", Label)
                assert freshness.region.right < cache_file.region.x, (freshness.region, cache_file.region)
                assert cache_file.region.right <= SMALL[0]


@async_test
async def test_short_periods_keep_the_trend_title_whole_at_160x48() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        app.view_state.period = "2026-11-20..2026-11-26"
        async with app.run_test(size=LARGE) as pilot:
            await show(pilot, "2")
            tree = app.screen.query_one(AllocTree)
            header = tree.render_line(0).text
            assert "Daily, 6 d" in header, header


@async_test
async def test_the_context_bar_keeps_the_currency_on_custom_and_all_periods_at_160x48(tmp_path: Path) -> None:
    # Periods across a new year spell both years, and so does their comparison: the longest context lines.
    path = build_ui_cache(tmp_path / "long.duckdb", days=420)
    for spec in ("all", "2025-12-01..2026-02-15"):
        with opened(path) as cache:
            app = make_app(cache)
            app.view_state.period = spec
            async with app.run_test(size=LARGE) as pilot:
                for key in ("1", "2", "4"):
                    await show(pilot, key)
                    bar = app.screen.query_one(ContextBar)
                    tabs = bar.query_one(ViewTabs)
                    assert bar.shown.endswith("USD"), (spec, key, bar.shown)
                    assert cell_len(bar.shown) + 1 + tabs.region.width <= bar.region.width - 2, (spec, key, bar.shown)
                    assert tabs.display and tabs.region.width > 0 and tabs.region.right <= LARGE[0]


def test_the_state_column_title_is_whole() -> None:
    rec = Recommendation("r1", "cost-spike", "A finding", Scope("team", "web", "web"), Decimal("10"), "USD", "high",
                         "increase", "Look.", state="noted", note="seen")
    rec_list = RecList()
    rec_list.recommendations = [rec]
    columns = {column.title: column.width for column in rec_list._columns(150)}
    assert columns["State"] >= len("State")


# --------------------------------------------------------------------------------------------------
# 22: user-facing text is never read as markup


@async_test
async def test_messages_file_names_and_values_keep_their_brackets(tmp_path: Path) -> None:
    with opened(empty_cache_path(tmp_path)) as cache:
        app = make_app(cache)
        async with app.run_test(size=LARGE, notifications=True) as pilot:
            await show(pilot, "a")  # connect Azure: the toast names the [sync] section of config.toml
            assert any("[sync] scopes in config.toml" in text for text in toasts(app)), toasts(app)
    path = build_ui_cache(tmp_path / "imported.duckdb", kind="focus-file")
    with opened(path) as cache, cache.write() as cur:
        cur.execute("UPDATE sources SET path = '/exports/cost[2026-11].csv'")
    with opened(path) as cache:
        app = make_app(cache)
        async with app.run_test(size=LARGE, notifications=True) as pilot:
            await settle(pilot)
            assert "imported from cost[2026-11].csv" in screen_text(app)
            app.screen.notify("Set [b]x[/b] in [sync]")
            await pilot.pause()
            assert any("Set [b]x[/b] in [sync]" in text for text in toasts(app)), toasts(app)


# --------------------------------------------------------------------------------------------------
# 23: one id per action on every screen; a remap that takes another key is refused with a warning


@async_test
async def test_one_id_remaps_the_action_on_every_screen(cache_path: Path) -> None:
    for entry in ("view.metric", "overview.metric"):  # today's id, and the README's old example
        with opened(cache_path) as cache:
            app = make_app(cache, config=Config(keymap={entry: "M"}))
            async with app.run_test(size=SMALL) as pilot:
                await settle(pilot)
                for view in ("1", "2", "4", "3"):
                    await show(pilot, view)
                    before = app.view_state.metric
                    await show(pilot, "m")
                    assert app.view_state.metric == before, (entry, view)
                    await show(pilot, "M")
                    assert app.view_state.metric != before, (entry, view)
                assert not notices(app)


@async_test
async def test_a_remap_that_takes_another_key_is_refused_with_a_warning() -> None:
    config = Config(keymap={"view.metric": "p", "view.period": "o", "no.such.id": "x", "view.filter": "f"})
    with opened(usd_cache_path()) as cache:
        app = make_app(cache, config=config)
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            messages = notices(app)
            assert any('"view.filter" = "f"' in m and "Kind (recommendations.kind)" in m for m in messages), messages
            assert any('"no.such.id"' in m for m in messages), messages
            assert not any('"view.metric"' in m for m in messages), "p is free once Period moved to P"
            await show(pilot, "p")
            assert app.view_state.metric == "billed"
            await show(pilot, "o")
            assert isinstance(app.screen, PeriodDialog)


@async_test
async def test_a_remap_onto_a_key_in_use_keeps_both_bindings() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache, config=Config(keymap={"view.metric": "p"}))
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            [warning] = notices(app)
            assert '"view.metric" = "p" is ignored' in warning and "Period (view.period)" in warning
            await show(pilot, "m")
            assert app.view_state.metric == "billed", "metric keeps its key"
            await show(pilot, "p")
            assert isinstance(app.screen, PeriodDialog), "period keeps its key"


def test_every_old_id_names_an_action_of_today() -> None:
    from finops_tui.ui.keymap import RENAMED_IDS, binding_chains

    result = resolve_keymap({old: "f12" for old in RENAMED_IDS}, binding_chains(FinopsApp))
    assert not [p for p in result.problems if "no key has the id" in p]
    known = {b.id for chain in binding_chains(FinopsApp) for cls in chain
             for bs in cls._merge_bindings().key_to_bindings.values() for b in bs}
    assert set(RENAMED_IDS.values()) <= known


# --------------------------------------------------------------------------------------------------
# 24: the walk-through's smaller findings


@async_test
async def test_recommendations_export_the_listed_findings(cache_path: Path) -> None:
    with opened(cache_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            screen = await open_recommendations(pilot)
            await show(pilot, "ctrl+s")
            [path] = paths.exports_dir().glob("finops-recommendations-*.csv")
            rows = list(csv.DictReader(path.open(encoding="utf-8")))
            assert [(r["id"], Decimal(r["monthly_impact"])) for r in rows] == \
                [(rec.id, rec.monthly_impact) for rec in screen.shown]
            assert any(f"Saved {path}" in n for n in notices(app))


@async_test
async def test_another_tag_key_starts_its_queue_at_the_top(cache_path: Path) -> None:
    with opened(cache_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            await show(pilot, "4", "G")
            screen = app.screen
            assert isinstance(screen, TaggingScreen)
            table = screen.query_one(QueueTable)
            assert table.scroll_offset.y > 0
            await show(pilot, "K")
            dialog = app.screen
            assert isinstance(dialog, TagKeyDialog)
            options = dialog.query_one(VimOptionList)
            options.highlighted = options.get_option_index("env")
            await show(pilot, "enter")
            assert screen.key == "env" and screen.queue is not None
            assert table.scroll_offset.y == 0, "the new queue starts at its top"
            assert table.rows[0].kind == "subscription"
            assert table.cursor is not None and table.cursor.kind == "item"
            first_item = next(i for i, row in enumerate(table.rows) if row.kind == "item")
            assert table.cursor_row == first_item


@async_test
async def test_costliest_first_holds_under_a_filter() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=LARGE) as pilot:
            await settle(pilot)
            await show(pilot, "4")
            screen = app.screen
            assert isinstance(screen, TaggingScreen)
            table = screen.query_one(QueueTable)
            # Two resources whose groups' whole costs rank the other way round (rg-data 707 > rg-checkout 526).
            table.set_filter(lambda sub, group, item: item.name in ("res-63", "res-72"), "no match")
            await pilot.pause()
            assert [row.item.name for row in table.rows if row.item] == ["res-63", "res-72"]
            groups = [row.cost for row in table.rows if row.kind == "group"]
            subscriptions = [row.cost for row in table.rows if row.kind == "subscription"]
            assert len(groups) > 1
            assert groups == sorted(groups, reverse=True), groups
            assert subscriptions == sorted(subscriptions, reverse=True)


@async_test
async def test_the_rule_dialog_says_where_its_groups_came_from(cache_path: Path) -> None:
    with opened(cache_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=LARGE) as pilot:
            await settle(pilot)
            await show(pilot, "4", "r")
            assert isinstance(app.screen, RuleDialog)
            text = screen_text(app)
            assert "From the marked rows" not in text and "From the row under the cursor" in text
            await show(pilot, "escape", "a", "r")
            assert "From the marked rows" in screen_text(app)


@async_test
async def test_space_says_that_it_moves_down() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=LARGE) as pilot:
            await settle(pilot)
            await show(pilot, "4")
            assert "space Mark ↓" in screen_text(app)
            rows = {row.binding_id: row for row in app.key_help(app.screen)}
            assert "move down" in rows["tagging.mark"].detail


@async_test
async def test_the_hierarchy_builder_keeps_a_highlight() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            await show(pilot, "2", "H")
            dialog = app.screen
            assert isinstance(dialog, HierarchyDialog)
            options = dialog.query_one(VimOptionList)
            for _ in range(3):
                highlighted = options.highlighted
                assert highlighted is not None and not options.get_option_at_index(highlighted).disabled
                await show(pilot, "enter")
            await show(pilot, "ctrl+u", "enter", "enter")
            highlighted = options.highlighted
            assert highlighted is not None and not options.get_option_at_index(highlighted).disabled


@async_test
async def test_the_custom_period_dialog_speaks_of_its_own_fields() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            await show(pilot, "p", "end", "enter")
            dialog = app.screen
            assert isinstance(dialog, CustomPeriodDialog)
            start = dialog.query_one("#start", Input)
            end = dialog.query_one("#end", Input)
            error = dialog.query_one("#error", Label)
            for start_text, end_text, expected in (("2026-13-01", "2026-11-01", "Start “2026-13-01” is not a date"),
                                                   ("2026-10-01", "", "End is empty"),
                                                   ("2026-10-05", "2026-10-01", "End must be after Start")):
                start.value, end.value = start_text, end_text
                end.focus()
                await pilot.press("enter")
                await pilot.pause()
                message = str(error.render())
                assert message.startswith(expected), message
                assert "START" not in message and "END" not in message and "--period" not in message


def test_table_reports_use_thousands_separators(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "overview", "--cache", str(usd_cache_path()), "--period", "all"]) == 0
    out = capsys.readouterr().out
    totals = out.splitlines()[5].split()
    assert totals[0] == "USD" and "," in totals[1] and totals[1].replace(",", "").replace(".", "").isdigit(), totals
    assert main(["report", "overview", "--cache", str(usd_cache_path()), "--period", "all", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and all("," not in row["cost"] for row in rows), "CSV stays plain for spreadsheets"


def test_period_all_names_its_range_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "overview", "--cache", str(usd_cache_path()), "--period", "all"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.count("2026-06-29 ..") == 1, header
    period = parse_period("2026-09-01..2026-10-15", today=TODAY)
    assert period.describe() == "2026-09-01 .. 2026-10-15"
    assert parse_period("mtd", today=TODAY).describe() == "November 2026 to date (2026-11-01 .. 2026-11-26)"


def test_one_small_resource_group_is_singular() -> None:
    with open_cache(usd_cache_path()) as cache, cache.cursor() as cur:
        ctx = Context.from_cache(cur)
    assert ctx is not None
    one = unallocated._sub_rec(ctx, "USD", "sub-1", "Development", Decimal(1), Decimal(1), Decimal(2), 3, 1)
    two = unallocated._sub_rec(ctx, "USD", "sub-1", "Development", Decimal(1), Decimal(1), Decimal(2), 3, 2)
    assert "over 1 small resource group in" in one.title
    assert "over 2 small resource groups in" in two.title


# --------------------------------------------------------------------------------------------------
# 25: exports go to the exports folder, never the current directory


@async_test
async def test_exports_land_in_the_exports_folder_with_the_full_path(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SMALL) as pilot:
            await settle(pilot)
            await show(pilot, "ctrl+s", "2", "ctrl+s", "enter", "enter", "enter", "enter", "ctrl+s")
            await show(pilot, "4", "ctrl+s")
            saved = sorted(p.name.split("-")[1] for p in paths.exports_dir().glob("finops-*.csv"))
            assert saved == ["allocation", "overview", "resource", "unallocated"], saved
            for path in paths.exports_dir().glob("finops-*.csv"):
                assert path.is_absolute() and f"Saved {path}" in notices(app), path
    assert not list(tmp_path.glob("*.csv")), "nothing in the current directory"


def test_the_exports_folder_is_finops_tui_in_the_documents_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FINOPS_TUI_EXPORTS_DIR")
    assert paths.exports_dir() == platformdirs.user_documents_path() / "finops-tui"
    monkeypatch.setenv("FINOPS_TUI_EXPORTS_DIR", "/tmp/somewhere")
    assert paths.exports_dir() == Path("/tmp/somewhere")

