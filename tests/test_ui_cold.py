"""Cold paths of the explorer: one resource detail screen re-targeted from resource to resource (made ahead with
the views), the heap settled while the app is idle, a hidden view's background run stopped, and the detail's read
model on the integer resource key."""

from __future__ import annotations

import gc
import shutil
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from textual.widgets import DataTable

import finops_tui.ui.screens.recommendations as rec_screen
from finops_tui.basis.money import money
from finops_tui.basis.periods import Period, resolve_period
from finops_tui.config import Config
from finops_tui.report.resource import resource_detail
from finops_tui.store import open_cache
from finops_tui.ui.app import AHEAD_QUIET_SECONDS, FinopsApp
from finops_tui.ui.screens.recommendations import RecommendationsScreen
from finops_tui.ui.screens.resource_detail import ResourceDetailScreen
from finops_tui.ui.widgets.view_tabs import ViewTabs
from tests.test_ui_first_paint import all_mounted_ahead, queries_held
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
    wait_for_text,
)

SIZE = (160, 48)
R12 = "/subscriptions/sub-0/resourcegroups/rg-ml/providers/x/r12"
R89 = "/subscriptions/sub-2/resourcegroups/rg-ml/providers/x/r89"

pytestmark = pytest.mark.today(TODAY)


def month_to_date_cost(path: Path, resource_id: str) -> str:
    """The resource's month-to-date EffectiveCost summed straight from `charges`, as the detail shows it."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(
            "SELECT sum(EffectiveCost) FROM charges WHERE ResourceId = ? AND x_ChargeDate >= ? AND x_ChargeDate <= ?",
            [resource_id, DATA_END.replace(day=1), DATA_END],
        ).fetchone()
    finally:
        con.close()
    assert row is not None and row[0] is not None
    return money(Decimal(row[0]), "USD")


async def wait_for_detail(pilot: Any, screen: ResourceDetailScreen) -> None:
    """Until the detail shows its answer for the resource it is pointed at."""
    while screen.detail is None or screen.detail.resource_id != screen.resource_id:
        await settle(pilot)
        await pilot.pause(0.02)


@async_test
async def test_a_second_resource_is_shown_on_the_same_detail_screen_with_its_own_figures() -> None:
    path = usd_cache_path()
    with opened(path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            app.open_resource(R12, trail=[("team", "ml")])
            first = app.screen
            assert isinstance(first, ResourceDetailScreen)
            await wait_for_detail(pilot, first)
            await wait_for_text(pilot, "res-12", month_to_date_cost(path, R12))
            await pilot.press("escape")
            await settle(pilot)
            app.open_resource(R89, trail=[("team", "ml")])
            reused = app.screen is first
            assert reused, "the detail screen is re-targeted, not composed again"
            await wait_for_detail(pilot, first)
            text = await wait_for_text(pilot, "res-89", month_to_date_cost(path, R89))
            assert "res-89" in text and month_to_date_cost(path, R89) in text
            assert "res-12" not in text and month_to_date_cost(path, R12) not in text
            assert first.query_one("#meters", DataTable).row_count > 0  # the tables were filled again, with columns


@async_test
async def test_a_retargeted_detail_paints_its_skeleton_not_the_previous_resource(
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = usd_cache_path()
    with opened(path) as cache, queries_held(monkeypatch) as release:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            app.open_resource(R12)
            screen = app.screen
            assert isinstance(screen, ResourceDetailScreen)
            await wait_for_detail(pilot, screen)
            await pilot.press("escape")
            await settle(pilot)
            release.clear()
            app.open_resource(R89)
            await pilot.pause(0.05)
            reused = app.screen is screen
            assert reused and screen.detail is None
            text = screen_text(app)
            assert "r89" in text  # the breadcrumbs name the resource at once
            assert "res-12" not in text and month_to_date_cost(path, R12) not in text
            release.set()
            await wait_for_detail(pilot, screen)
            await wait_for_text(pilot, "res-89")


@async_test
async def test_a_detail_opened_over_a_detail_gets_a_screen_of_its_own() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            app.open_resource(R12)
            under = app.screen
            assert isinstance(under, ResourceDetailScreen)
            await wait_for_detail(pilot, under)
            app.open_resource(R89)
            over = app.screen
            assert isinstance(over, ResourceDetailScreen) and over is not under
            await wait_for_detail(pilot, over)
            await pilot.press("escape")
            await settle(pilot)
            back = app.screen is under
            assert back and under.detail is not None and under.detail.resource_id == R12
            assert "res-12" in screen_text(app)


@async_test
async def test_the_detail_highlights_the_view_it_was_opened_over() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            app.open_resource(R12)
            screen = app.screen
            assert isinstance(screen, ResourceDetailScreen)
            await wait_for_detail(pilot, screen)
            assert screen.query_one(ViewTabs).current == "overview"
            await pilot.press("escape")
            await pilot.press("4")
            await settle(pilot)
            app.open_resource(R89, root="Tagging")
            reused = app.screen is screen
            assert reused
            await wait_for_detail(pilot, screen)
            assert screen.query_one(ViewTabs).current == "tagging"


@async_test
async def test_the_command_line_app_makes_the_detail_ahead_and_settles_the_heap() -> None:
    path = usd_cache_path()
    with opened(path) as cache:
        app = FinopsApp(cache, config=Config(), now=fixed_now, demo_end=DATA_END, mount_ahead=True)
        async with app.run_test(size=SIZE) as pilot:
            await all_mounted_ahead(app, pilot)
            while app._resource_screen is None or not app._resource_screen.is_mounted:
                await pilot.pause(0.05)
            made = app._resource_screen
            await settle(pilot)
            # Everything alive once the views and the detail were made is left out of later collections.
            assert gc.get_freeze_count() > 0
            app.open_resource(R89)
            reused = app.screen is made
            assert reused
            await wait_for_detail(pilot, made)
            await wait_for_text(pilot, "res-89", month_to_date_cost(path, R89))
        assert gc.get_freeze_count() == 0, "the app's objects are collectable again once it has quit"


def test_the_detail_reads_the_same_figures_by_resource_key_as_by_id(tmp_path: Path) -> None:
    # A resource without an integer key (never the case after a write) is read by its id string: same figures.
    keyless = tmp_path / "keyless.duckdb"
    shutil.copyfile(usd_cache_path(), keyless)
    with open_cache(keyless) as cache, cache.write() as cur:
        cur.execute("DELETE FROM resource_keys WHERE ResourceId = ?", [R89])
    details = []
    for path in (usd_cache_path(), keyless):
        con = duckdb.connect(str(path), read_only=True)
        try:
            period, _ = resolve_period(con, "mtd")
            assert isinstance(period, Period)
            details.append([resource_detail(con, rid, period, "effective", None, rules=[]) for rid in (R12, R89)])
        finally:
            con.close()
    assert details[0] == details[1]
    assert details[0][1].cost > 0 and details[0][1].daily and details[0][1].by_meter


@async_test
async def test_the_run_on_open_of_the_recommendations_stops_when_the_user_leaves_and_starts_again_on_return(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cache.duckdb"
    shutil.copyfile(usd_cache_path(), path)  # a run stores its findings
    runs: list[str] = []
    release = threading.Event()
    shipped_find = rec_screen.find

    def held_find(cur: Any, ctx: Any, *, should_stop: Any) -> Any:
        runs.append("started")
        while not release.wait(0.01):
            if should_stop():
                runs.append("stopped")
                break
        return shipped_find(cur, ctx, should_stop=should_stop)

    monkeypatch.setattr(rec_screen, "find", held_find)
    with opened(path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            try:
                await settle(pilot)
                await pilot.press("3")
                screen = app.screen
                assert isinstance(screen, RecommendationsScreen)
                for _ in range(250):
                    if runs:
                        break
                    await pilot.pause(0.02)
                await pilot.press("question_mark")  # a dialog over the view: the run goes on
                await pilot.pause(0.1)
                assert runs == ["started"]
                await pilot.press("escape")
                await pilot.press("4")  # another view: the run stops, to start again on return
                for _ in range(250):
                    if runs == ["started", "stopped"]:
                        break
                    await pilot.pause(0.02)
                assert runs == ["started", "stopped"] and screen.running and screen._rerun_when_shown
                release.set()
                await pilot.press("3")
                await settle(pilot)
            finally:
                release.set()
            assert runs == ["started", "stopped", "started"]
            assert screen.showing_fresh and not screen.running


@async_test
async def test_work_ahead_waits_for_a_pause_in_the_keys() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.pause(AHEAD_QUIET_SECONDS)
            assert app._idle()
            pressed = time.monotonic()
            await pilot.press("question_mark")  # no query: only the key itself holds work ahead back
            assert app._last_key_at >= pressed
            app._last_key_at = time.monotonic()  # as if pressed this instant (a loaded machine may take longer)
            assert not app._idle()
            app._last_key_at = time.monotonic() - AHEAD_QUIET_SECONDS
            assert app._idle()
