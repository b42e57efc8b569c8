"""Recommendations screen: the report's order, last results first, dismiss/snooze/note in the cache, filters, jumps."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import threading
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

import finops_tui.ui.screens.recommendations as rec_screen
from finops_tui import clock
from finops_tui.allocation.effective import TagPolicy
from finops_tui.cli import main
from finops_tui.config import Config
from finops_tui.errors import UserError
from finops_tui.ingest.demo import build_demo
from finops_tui.recommend import Context, RecFilter, Recommendation, Scope, last_results, refresh
from finops_tui.recommend.generators import KIND_TITLES
from finops_tui.store import Cache, open_cache
from finops_tui.ui import app as app_module
from finops_tui.ui.app import FinopsApp
from finops_tui.ui.dialogs.rec_note import MinImpactDialog, NoteDialog, SnoozeDialog
from finops_tui.ui.screens.base import FinopsScreen
from finops_tui.ui.screens.recommendations import ListFilter, RecommendationsScreen, cycle, matches
from finops_tui.ui.screens.tagging import TaggingScreen
from finops_tui.ui.widgets.rec_detail import COMMITMENT_KINDS, RecDetail
from finops_tui.ui.widgets.rec_list import RecList
from tests.ui_fixtures import async_test, opened, screen_text, settle, wait_until, without_prefetch

DATA_END = dt.date(2026, 3, 31)
TODAY = DATA_END + dt.timedelta(days=1)
SIZE = (120, 36)
_ROOT = Path(tempfile.mkdtemp(prefix="finops-rec-ui-"))
SnapCompare = Callable[..., bool]


@cache
def demo_path() -> Path:
    """The demo estate (5 months to 2026-03-31) with one stored run, built once per test process;
    tests that write use a copy."""
    path = _ROOT / "demo.duckdb"
    build_demo(path, TagPolicy(), end=DATA_END, months=5, seed=42)
    with open_cache(path) as cache_file:
        with cache_file.cursor() as cur:
            ctx = Context.from_cache(cur)
        assert ctx is not None
        refresh(cache_file, ctx)
    return path


def demo_copy(folder: Path) -> Path:
    copy = folder / "demo.duckdb"
    shutil.copyfile(demo_path(), copy)
    return copy


pytestmark = pytest.mark.today(TODAY)


@pytest.fixture(autouse=True)
def _quiet_overview(monkeypatch: pytest.MonkeyPatch) -> None:
    # The overview is only the way in: its background prefetch would make every test wait for it.
    without_prefetch(monkeypatch, "overview")


@pytest.fixture
def stored_run_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The screen shows the stored run and does not run the generators again (for tests about acting on it)."""
    without_prefetch(monkeypatch, "recommendations")


def make_app(cache_file: Cache) -> FinopsApp:
    # `now` follows the pinned clock, as the data layer stamps runs with it: "last run just now".
    return FinopsApp(cache_file, config=Config(), now=clock.now, demo_end=DATA_END)


async def open_screen(pilot: Pilot[Any]) -> RecommendationsScreen:
    """From the overview to the recommendations (key 3), with every worker done."""
    await settle(pilot)
    await pilot.press("3")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, RecommendationsScreen)
    return screen


def report_ids(capsys: pytest.CaptureFixture[str], path: Path) -> list[str]:
    assert main(["report", "recommendations", "--cache", str(path), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    return [rec["id"] for rec in document["recommendations"]]


def stored(path: Path) -> dict[str, Recommendation]:
    """Every finding of the stored run with its state, read after the app closed the file."""
    with open_cache(path) as cache_file, cache_file.cursor() as cur:
        result = last_results(cur, RecFilter(include_dismissed=True, include_snoozed=True))
    assert result is not None
    return {rec.id: rec for rec in result.recommendations}


# --------------------------------------------------------------------------------------------------
# order and first paint


@async_test
async def test_list_is_the_report_order(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = demo_copy(tmp_path)
    expected = report_ids(capsys, path)
    assert len(expected) > 20
    with opened(path) as cache_file:
        app = make_app(cache_file)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(pilot)
            assert screen.showing_fresh and not screen.running
            assert [rec.id for rec in screen.shown] == expected
            assert [rec.id for rec in screen.query_one(RecList).recommendations] == expected
            text = screen_text(app)
            first = screen.shown[0]
            assert first.title in text and "USD" in text  # each row names its currency
            assert "last run just now" in text and "on data through 2026-03-31" in text
            # The detail pane shows the first finding's evidence.
            detail = screen.query_one(RecDetail)
            assert detail.recommendation is not None and detail.recommendation.id == first.id
            for label, _value in first.evidence[:3]:
                assert label.split(" (")[0] in text  # long labels wrap in their column


@async_test
async def test_last_results_show_before_the_run_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = demo_copy(tmp_path)
    with opened(path) as cache_file:  # a first run leaves its results in the cache
        app = make_app(cache_file)
        async with app.run_test(size=SIZE) as pilot:
            first_run = [rec.id for rec in (await open_screen(pilot)).shown]

    release = threading.Event()
    real_refresh = rec_screen.find

    def slow_refresh(*args: Any, **kwargs: Any) -> Any:
        assert release.wait(20), "the test never released the run"
        return real_refresh(*args, **kwargs)

    monkeypatch.setattr(rec_screen, "find", slow_refresh)
    with opened(path) as cache_file:
        app = make_app(cache_file)
        async with app.run_test(size=SIZE) as pilot:
            try:
                await settle(pilot)
                await pilot.press("3")
                screen = app.screen
                assert isinstance(screen, RecommendationsScreen)
                # The stored run arrives while the new one is held back (no `settle`: it would wait for that one).
                await wait_until(pilot, lambda: screen.run is not None, "the stored run")
                assert screen.running and not screen.showing_fresh
                assert [rec.id for rec in screen.shown] == first_run
                await wait_until(pilot, lambda: "last run just now · running…" in screen_text(app), "the status")
            finally:
                release.set()
            await settle(pilot)
            assert screen.showing_fresh and not screen.running
            assert "running" not in screen_text(app)
            assert [rec.id for rec in screen.shown] == first_run  # same data, same findings


@async_test
async def test_a_failed_run_says_so_and_keeps_the_last_results(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_refresh(*args: Any, **kwargs: Any) -> Any:
        raise UserError("the cache is being rebuilt")

    monkeypatch.setattr(rec_screen, "find", failing_refresh)
    with opened(demo_path()) as cache_file:
        app = make_app(cache_file)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(pilot)
            assert not screen.running and screen.run is not None and screen.shown
            assert "run failed: the cache is being rebuilt" in screen_text(app)


# --------------------------------------------------------------------------------------------------
# state kept in the cache


@async_test
async def test_dismiss_survives_a_restart_and_D_shows_it(tmp_path: Path) -> None:
    path = demo_copy(tmp_path)
    with opened(path) as cache_file:
        app = make_app(cache_file)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(pilot)
            await pilot.press("j")  # vim keys on the list
            target = screen.query_one(RecList).current
            assert target is not None and target.id == screen.shown[1].id
            following = screen.shown[2]
            await pilot.press("d")
            await settle(pilot)
            assert target.id not in [rec.id for rec in screen.shown]
            assert screen.query_one(RecList).current == following  # the cursor lands on the next one
            assert "1 dismissed/snoozed hidden (D shows)" in screen_text(app)
    assert stored(path)[target.id].state == "dismissed"

    with opened(path) as cache_file:  # the app again on the same file
        app = make_app(cache_file)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(pilot)
            assert target.id not in [rec.id for rec in screen.shown]
            await pilot.press("D")
            shown = {rec.id: rec for rec in screen.shown}
            assert shown[target.id].state == "dismissed"
            assert "dismissed" in screen_text(app)
            # u restores it: back in the list with D off, and in the cache.
            await _move_to(pilot, screen, shown[target.id])
            await pilot.press("u", "D")
            await settle(pilot)
            assert target.id in [rec.id for rec in screen.shown]
    assert stored(path)[target.id].state is None


@async_test
async def test_snooze_for_the_default_and_for_n_days(tmp_path: Path, stored_run_only: None) -> None:
    path = demo_copy(tmp_path)
    with opened(path) as cache_file:
        app = make_app(cache_file)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(pilot)
            first = screen.shown[0]
            await pilot.press("z")
            dialog = app.screen
            assert isinstance(dialog, SnoozeDialog)
            assert dialog.query_one(Input).value == "7"
            await pilot.press("enter")
            await settle(pilot)
            second = screen.shown[0]
            assert first.id != second.id
            await pilot.press("z")
            field = app.screen.query_one(Input)
            field.value = "0"
            await pilot.press("enter")
            assert isinstance(app.screen, SnoozeDialog)  # refused: stays open with the reason
            assert "between 1 and" in str(app.screen.query_one("#error", Static).render())
            field.value = "30"
            await pilot.press("enter")
            await settle(pilot)
            assert second.id not in [rec.id for rec in screen.shown]
    states = stored(path)
    assert (states[first.id].state, states[first.id].snoozed_until) == ("snoozed", TODAY + dt.timedelta(days=7))
    assert (states[second.id].state, states[second.id].snoozed_until) == ("snoozed", TODAY + dt.timedelta(days=30))


@async_test
async def test_note_is_kept_and_shown(tmp_path: Path, stored_run_only: None) -> None:
    path = demo_copy(tmp_path)
    with opened(path) as cache_file:
        app = make_app(cache_file)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(pilot)
            first = screen.shown[0]
            await pilot.press("n")
            assert isinstance(app.screen, NoteDialog)
            app.screen.query_one(Input).value = "owner says planned"
            await pilot.press("enter")
            await settle(pilot)
            assert screen.shown[0].id == first.id  # a note does not hide the finding
            assert screen.shown[0].note == "owner says planned"
            assert "owner says planned" in screen_text(app)
    assert stored(path)[first.id].note == "owner says planned"

    with opened(path) as cache_file:
        app = make_app(cache_file)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(pilot)
            assert screen.shown[0].note == "owner says planned"
            assert "note" in screen_text(app)  # the list's state column


# --------------------------------------------------------------------------------------------------
# filters


@async_test
async def test_filters_kind_team_min_impact_text_and_currency(tmp_path: Path, stored_run_only: None) -> None:
    path = demo_copy(tmp_path)
    with opened(path) as cache_file:
        app = make_app(cache_file)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(pilot)
            everything = list(screen.shown)
            kinds = [kind for kind in KIND_TITLES if kind in {rec.kind for rec in everything}]

            await pilot.press("f")
            assert screen.list_filter.kind == kinds[0]
            assert screen.shown == [rec for rec in everything if rec.kind == kinds[0]]
            await pilot.press("f")
            assert {rec.kind for rec in screen.shown} == {kinds[1]}
            assert f"kind {KIND_TITLES[kinds[1]]}" in screen_text(app)
            await pilot.press(*["f"] * (len(kinds) - 1))
            assert screen.list_filter.kind is None and screen.shown == everything

            await pilot.press("T")
            team = screen.list_filter.team
            assert team is not None and screen.shown
            assert all((rec.team or "").lower() == team.lower() for rec in screen.shown)
            await pilot.press("escape")  # no text filter: esc clears the others
            assert screen.shown == everything

            await pilot.press("i")
            assert isinstance(app.screen, MinImpactDialog)
            await pilot.press(*"2k", "enter")
            assert screen.list_filter.min_impact == Decimal(2000)
            assert screen.shown and all(rec.monthly_impact >= 2000 for rec in screen.shown)
            assert len(screen.shown) < len(everything)
            await pilot.press("escape")

            await pilot.press("slash", *"rg-poc")
            assert screen.shown and all("rg-poc" in rec.title.lower() or "rg-poc" in rec.scope.label.lower()
                                        for rec in screen.shown)
            await pilot.press("enter")  # back to the list, filter kept
            assert isinstance(app.focused, RecList) and screen.list_filter.text == "rg-poc"
            await pilot.press("escape")
            assert screen.shown == everything

            # Every key is listed in the help with its id (remappable), and the palette offers the actions.
            ids = {row.binding_id for row in app.key_help(screen)}
            assert {"recommendations.kind", "recommendations.dismiss", "recommendations.snooze",
                    "recommendations.note", "recommendations.show_hidden", "recommendations.rerun",
                    "list.open", "list.down"} <= ids
            names = [command.name for command in app.palette_commands(screen)]
            assert "Recommendations: run again" in names and f"Show kind: {KIND_TITLES[kinds[0]]}" in names

            # The shared view's currency: the demo bills in USD only.
            screen.set_currency("EUR")
            assert screen.shown == [] and "No finding matches the filters" in screen_text(app)
            screen.set_currency("USD")
            assert screen.shown == everything


def _rec(rec_id: str, impact: str, *, kind: str = "cost-spike", currency: str = "USD", team: str | None = None,
         state: str | None = None) -> Recommendation:
    return Recommendation(rec_id, kind, f"finding {rec_id}", Scope("resource-group", rec_id, f"rg-{rec_id}"),
                          Decimal(impact), currency, "high", "increase", "act", team=team, state=state)


def test_matches_keeps_currencies_apart_and_hides_states() -> None:
    usd, eur = _rec("a", "100"), _rec("b", "900", currency="EUR")
    dismissed = _rec("c", "50", state="dismissed")
    assert [r.id for r in (usd, eur, dismissed) if matches(r, ListFilter(), None)] == ["a", "b"]
    assert [r.id for r in (usd, eur, dismissed) if matches(r, ListFilter(), "EUR")] == ["b"]
    assert matches(dismissed, ListFilter(show_hidden=True), None)
    assert not matches(usd, ListFilter(min_impact=Decimal(101)), None)
    assert matches(_rec("d", "1", team="Search"), ListFilter(team="search"), None)
    assert cycle(["x", "y"], None) == "x" and cycle(["x", "y"], "x") == "y" and cycle(["x", "y"], "y") is None


# --------------------------------------------------------------------------------------------------
# jumps


class FakeSliceAllocationScreen(FinopsScreen):
    """Stands in for the allocation view: records the slices `open_slice(dimension, key)` was asked for."""

    opened: list[tuple[Any, ...]] = []  # noqa: RUF012

    def open_slice(self, dimension: str, key: str | None) -> None:
        FakeSliceAllocationScreen.opened.append((dimension, key))


async def _move_to(pilot: Pilot[Any], screen: RecommendationsScreen, rec: Recommendation) -> None:
    screen.query_one(RecList).cursor_row = screen.shown.index(rec)  # j/k are tested elsewhere; this is quicker
    await pilot.pause()


def _targets(screen: RecommendationsScreen) -> tuple[Recommendation, Recommendation]:
    """A finding that opens a tree path of several levels, and one that opens the tagging queue of a group."""
    # Commitment findings open the Commitments view instead (tests/test_ui_commitments.py).
    to_tree = next(r for r in screen.shown if r.jump and r.jump.screen == "allocation" and len(r.jump.path) > 1
                   and r.kind not in COMMITMENT_KINDS)
    to_tagging = next(r for r in screen.shown if r.jump and r.jump.screen == "tagging" and len(r.jump.path) == 2)
    return to_tree, to_tagging


@async_test
async def test_enter_opens_the_deepest_slice_and_a_scoped_queue(monkeypatch: pytest.MonkeyPatch,
                                                                 stored_run_only: None) -> None:
    monkeypatch.setitem(app_module.VIEW_SCREENS, "allocation", FakeSliceAllocationScreen)
    FakeSliceAllocationScreen.opened.clear()
    with opened(demo_path()) as cache_file:
        app = make_app(cache_file)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(pilot)
            to_tree, to_tagging = _targets(screen)
            assert to_tree.jump is not None and to_tagging.jump is not None
            await _move_to(pilot, screen, to_tree)
            await pilot.press("enter")
            await pilot.pause()
            assert app.current_mode == "allocation"
            assert FakeSliceAllocationScreen.opened == [to_tree.jump.path[-1]]  # the deepest step
            await pilot.press("3")
            await pilot.pause()
            await _move_to(pilot, screen, to_tagging)
            await pilot.press("enter")
            await pilot.pause()
            queue = app.screen
            assert app.current_mode == "recommendations" and isinstance(queue, TaggingScreen)
            subscription_name = to_tagging.scope.label.rsplit(" (", 1)[1].rstrip(")")
            assert queue.key == to_tagging.jump.tag_key
            assert queue.scope == [("subscription", to_tagging.scope.subscription_id, subscription_name),
                                   ("resource-group", to_tagging.scope.resource_group,
                                    to_tagging.scope.resource_group)]


# --------------------------------------------------------------------------------------------------
# snapshot


class TestRecommendationsSnapshots:
    def test_recommendations_with_detail_120x36(self, snap_compare: SnapCompare,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
        # The status bar shows the cache path relative to home: make it the same on every machine.
        monkeypatch.setenv("HOME", str(demo_path().parent))

        async def run_before(pilot: Pilot[Any]) -> None:
            await open_screen(pilot)

        with opened(demo_path()) as cache_file:
            assert snap_compare(make_app(cache_file), terminal_size=SIZE, run_before=run_before)
