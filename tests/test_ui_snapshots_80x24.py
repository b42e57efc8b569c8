"""SVG snapshots of every screen and dialog at 80x24 (pinned clock and data): each must be usable there."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from finops_tui.allocation.push import PushItem
from finops_tui.recommend import Context, store_results
from finops_tui.recommend.engine import generate
from finops_tui.ui.app import FinopsApp
from finops_tui.ui.dialogs.push_preview import PushPreviewDialog
from tests.ui_fixtures import (
    TODAY,
    empty_cache_path,
    make_app,
    opened,
    settle,
    settle_footer,
    usd_cache_path,
    without_prefetch,
)

SnapCompare = Callable[..., bool]
Steps = Callable[[Pilot[Any]], Awaitable[None]]
SIZE = (80, 24)


pytestmark = pytest.mark.today(TODAY)


@pytest.fixture(autouse=True)
def _steady_screens(monkeypatch: pytest.MonkeyPatch) -> None:
    # The status bar shows the cache path relative to home: make it the same on every machine.
    monkeypatch.setenv("HOME", str(usd_cache_path().parent))
    without_prefetch(monkeypatch, "overview", "allocation", "recommendations")  # the stored run, "3 min ago"


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    """A copy of the shared cache with a recommendations run stored 3 minutes before the pinned `now`."""
    path = tmp_path / "usd.duckdb"
    shutil.copyfile(usd_cache_path(), path)
    return path


async def press(pilot: Pilot[Any], *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle_footer(pilot)


async def store_a_run(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, FinopsApp)
    with app.cache.cursor() as cur:
        ctx = Context.from_cache(cur)
        assert ctx is not None
        found, _timings = generate(cur, ctx)
    store_results(app.cache, found, ctx, run_at=app.now() - dt.timedelta(minutes=3))


def steps(*keys: str, run: bool = False) -> Steps:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        if run:
            await store_a_run(pilot)
        await press(pilot, *keys)

    return run_before


async def push_preview(pilot: Pilot[Any]) -> None:
    """The preview of 12 merges (more than 80x24 shows: the list scrolls, Send and Cancel stay)."""
    await press(pilot, "4")
    app = pilot.app
    assert isinstance(app, FinopsApp)
    sub = "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-checkout"
    items = [PushItem(f"{sub.lower()}/providers/microsoft.compute/virtualmachines/vm-{n}",
                      f"{sub}/providers/Microsoft.Compute/virtualMachines/vm-{n}", f"vm-{n}",
                      {"team": "payments", "env": "prod"}, (n,)) for n in range(12)]
    await app.push_screen(PushPreviewDialog(items, cache=app.cache, endpoint=None, credential_mode="cli"))
    await settle_footer(pilot)


def snap(snap_compare: SnapCompare, path: Path, run_before: Steps) -> bool:
    with opened(path) as cache:
        return snap_compare(make_app(cache), terminal_size=SIZE, run_before=run_before)


class TestScreens80x24:
    def test_overview(self, snap_compare: SnapCompare) -> None:
        assert snap(snap_compare, usd_cache_path(), steps())

    def test_allocation(self, snap_compare: SnapCompare) -> None:
        assert snap(snap_compare, usd_cache_path(), steps("2", "enter", "enter"))

    def test_resource_detail(self, snap_compare: SnapCompare) -> None:
        assert snap(snap_compare, usd_cache_path(), steps("2", "enter", "enter", "enter", "enter"))

    def test_recommendations(self, snap_compare: SnapCompare, cache_path: Path) -> None:
        assert snap(snap_compare, cache_path, steps("3", run=True))

    def test_tagging(self, snap_compare: SnapCompare) -> None:
        assert snap(snap_compare, usd_cache_path(), steps("4", "a"))

    def test_welcome(self, snap_compare: SnapCompare) -> None:
        folder = usd_cache_path().parent / "welcome"  # under the pinned home: the intro names the cache as ~/…
        folder.mkdir(exist_ok=True)
        assert snap(snap_compare, empty_cache_path(folder), steps())


class TestDialogs80x24:
    def test_help(self, snap_compare: SnapCompare) -> None:
        assert snap(snap_compare, usd_cache_path(), steps("question_mark"))

    def test_period(self, snap_compare: SnapCompare) -> None:
        assert snap(snap_compare, usd_cache_path(), steps("p"))

    def test_custom_period(self, snap_compare: SnapCompare) -> None:
        assert snap(snap_compare, usd_cache_path(), steps("p", "end", "enter"))

    def test_hierarchy_builder(self, snap_compare: SnapCompare) -> None:
        assert snap(snap_compare, usd_cache_path(), steps("2", "H"))

    def test_tag_dialog(self, snap_compare: SnapCompare, cache_path: Path) -> None:
        assert snap(snap_compare, cache_path, steps("4", "a", "t"))

    def test_rule_dialog(self, snap_compare: SnapCompare, cache_path: Path) -> None:
        assert snap(snap_compare, cache_path, steps("4", "a", "r"))

    def test_push_preview(self, snap_compare: SnapCompare, cache_path: Path) -> None:
        assert snap(snap_compare, cache_path, push_preview)

    def test_rec_note(self, snap_compare: SnapCompare, cache_path: Path) -> None:
        assert snap(snap_compare, cache_path, steps("3", "n", run=True))
