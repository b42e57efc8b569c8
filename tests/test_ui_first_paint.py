"""A view's first paint: it never waits for its queries, views mounted ahead show their figures at once, and a
view shown again keeps its styles unless something outside it changed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from textual.css.stylesheet import Stylesheet
from textual.widgets._footer import FooterKey

from finops_tui.config import Config
from finops_tui.store import Cache
from finops_tui.ui import launch
from finops_tui.ui.app import VIEW_SCREENS, VIEWS, FinopsApp
from finops_tui.ui.queries import QueryGate
from finops_tui.ui.screens.cost_view import CostViewScreen
from finops_tui.ui.screens.recommendations import RecommendationsScreen
from finops_tui.ui.widgets.context_bar import ContextBar
from finops_tui.ui.widgets.status_bar import StatusBar
from tests.ui_fixtures import (
    DATA_END,
    TODAY,
    async_test,
    fixed_now,
    make_app,
    opened,
    screen_text,
    settle,
    usd_cache_path,
)

SIZE = (160, 48)
OTHER_VIEWS = [view for view in VIEWS if view.mode != "overview"]

pytestmark = pytest.mark.today(TODAY)


def ahead_app(cache: Cache) -> FinopsApp:
    """The app as the command line starts it: the other views mounted behind the overview."""
    return FinopsApp(cache, config=Config(), now=fixed_now, demo_end=DATA_END, mount_ahead=True)


async def all_mounted_ahead(app: FinopsApp, pilot: Any) -> None:
    """Wait until every view is mounted behind the overview and the app is idle again."""
    while not app.views_mounted_ahead:
        await pilot.pause(0.05)
    await settle(pilot)


def answered(screen: Any) -> bool:
    """Whether the screen shows its main answer (not waiting for its query)."""
    if isinstance(screen, RecommendationsScreen):
        return not screen.query_one("RecList").loading and screen._stored_worker is not None \
            and screen._stored_worker.is_finished
    assert isinstance(screen, CostViewScreen)
    return screen._pending is None and screen.shown_state is not None


@contextmanager
def queries_held(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Every screen query waits (in its worker thread) until the event is set; set on the way out."""
    release = threading.Event()
    release.set()
    shipped: Callable[..., Any] = QueryGate.run

    def held(self: QueryGate, cache: Cache, query: Callable[..., Any]) -> Any:
        assert release.wait(30), "the test never released the queries"
        return shipped(self, cache, query)

    monkeypatch.setattr(QueryGate, "run", held)
    try:
        yield release
    finally:
        release.set()


@async_test
async def test_every_view_paints_its_frame_while_its_queries_are_held(monkeypatch: pytest.MonkeyPatch) -> None:
    with opened(usd_cache_path()) as cache, queries_held(monkeypatch) as release:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            release.clear()
            for view in OTHER_VIEWS:
                await pilot.press(view.key)
                screen = app.screen
                assert isinstance(screen, VIEW_SCREENS[view.mode])
                assert not answered(screen), f"{view.mode}: its query is held, so it cannot have its figures"
                text = screen_text(app)
                # The frame is on screen: the header, the context bar with the views' keys, the status line.
                assert screen.query_one(ContextBar).is_mounted and screen.query_one(StatusBar).is_mounted
                assert all(f"{other.key} {other.title}" in text for other in VIEWS), view.mode
            release.set()
            await settle(pilot)
            assert answered(app.screen)


@async_test
async def test_views_mounted_ahead_show_their_figures_on_the_first_switch() -> None:
    with opened(usd_cache_path()) as cache:
        app = ahead_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await all_mounted_ahead(app, pilot)
            behind = {view.mode: app._screen_stacks[view.mode][0] for view in OTHER_VIEWS}
            assert all(answered(screen) for screen in behind.values()), "each view queried while behind"
            rec = behind["recommendations"]
            assert isinstance(rec, RecommendationsScreen) and rec._serial == 0, \
                "the generators wait until the recommendations are shown"
            for view in OTHER_VIEWS:
                await pilot.press(view.key)
                assert app.screen is behind[view.mode], "the screen mounted ahead is the one shown"
                assert answered(app.screen)
            await settle(pilot)
            assert rec._serial == 1 and rec.showing_fresh, "shown once, the recommendations ran"


@async_test
async def test_a_view_mounted_ahead_follows_the_period_chosen_before_its_first_switch() -> None:
    with opened(usd_cache_path()) as cache:
        app = ahead_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await all_mounted_ahead(app, pilot)
            overview = app.screen
            assert isinstance(overview, CostViewScreen)
            overview.set_period("last-month")
            await settle(pilot)
            await pilot.press("2")
            await settle(pilot)
            allocation = app.screen
            assert isinstance(allocation, CostViewScreen) and allocation.shown_state is not None
            assert allocation.shown_state[0] == "last-month"
            assert allocation.period is not None and allocation.period.start.month == 10


def test_the_command_line_mounts_the_views_ahead(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    made: list[bool] = []

    def fake_run(self: FinopsApp) -> None:
        made.append(self.mount_ahead)

    monkeypatch.setattr(FinopsApp, "run", fake_run)
    assert launch.run_explorer(usd_cache_path()) == 0
    assert made == [True]


@async_test
async def test_a_view_shown_again_is_not_restyled_unless_the_theme_changed() -> None:
    restyled: list[int] = []
    shipped = Stylesheet.update_nodes

    def counting(self: Stylesheet, nodes: Any, animate: bool = False) -> None:
        nodes = list(nodes)
        restyled.append(len(nodes))
        shipped(self, nodes, animate=animate)

    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("2")
            await settle(pilot)
            Stylesheet.update_nodes = counting  # type: ignore[method-assign]
            try:
                await pilot.press("1")
                await settle(pilot)
                assert sum(restyled) < 10, f"restyled {sum(restyled)} nodes to show the overview again"
            finally:
                Stylesheet.update_nodes = shipped  # type: ignore[method-assign]
            app.theme = "textual-light"
            await settle(pilot)
            await pilot.press("2")
            await settle(pilot)
            overview_bar = app._screen_stacks["overview"][0].query_one(ContextBar)
            allocation_bar = app.screen.query_one(ContextBar)
            assert allocation_bar.styles.background == overview_bar.styles.background, \
                "a view hidden during a theme change shows the new theme"


@pytest.mark.parametrize(("width", "compact"), [(160, False), (80, True)])
def test_footer_keys_are_born_with_the_footers_compactness(width: int, compact: bool) -> None:
    @async_test
    async def check() -> None:
        with opened(usd_cache_path()) as cache:
            app = make_app(cache)
            async with app.run_test(size=(width, 30)) as pilot:
                await settle(pilot)
                await pilot.press("2")
                await settle(pilot)
                await app.screen.wait_for_refresh()
                await pilot.pause()
                keys = list(app.screen.query(FooterKey))
                assert keys, "the footer shows keys"
                assert all(key.compact is compact and key.has_class("-compact") is compact for key in keys)

    check()


@async_test
async def test_a_switch_to_a_screen_already_made_paints_without_textuals_hold() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            app.action_switch_view("allocation")
            assert app._batch_count > 0, "a screen made on the switch is hidden while it is built"
            await settle(pilot)
            app.action_switch_view("overview")
            assert app._batch_count == 0, "the overview exists: it paints at once"
            await settle(pilot)
            assert isinstance(app.screen, VIEW_SCREENS["overview"]) and "Top services" in screen_text(app)
