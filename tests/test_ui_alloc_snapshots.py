"""SVG snapshots of the allocation tree, the resource detail and the tagging queue (pinned clock and data)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.ui_fixtures import TODAY, make_app, opened, settle, settle_footer, usd_cache_path, without_prefetch

SnapCompare = Callable[..., bool]


pytestmark = pytest.mark.today(TODAY)


@pytest.fixture(autouse=True)
def _steady_screens(monkeypatch: pytest.MonkeyPatch) -> None:
    # The status bar shows the cache path relative to home: make it the same on every machine.
    monkeypatch.setenv("HOME", str(usd_cache_path().parent))
    without_prefetch(monkeypatch, "overview")


async def _tree_drilled(pilot: Pilot[Any]) -> None:
    """Team → subscription → resource group: two levels below the top, the cursor on a resource group."""
    await settle(pilot)
    await pilot.press("2")
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)


async def _resource(pilot: Pilot[Any]) -> None:
    await _tree_drilled(pilot)
    await pilot.press("enter", "enter")
    await settle(pilot)


async def _tagging(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("4")
    await settle(pilot)
    await pilot.press("a")  # the costliest resource's group, marked
    await settle_footer(pilot)


class TestAllocationSnapshots:
    def test_tree_drilled_120x40(self, snap_compare: SnapCompare) -> None:
        with opened(usd_cache_path()) as cache:
            assert snap_compare(make_app(cache), terminal_size=(120, 40), run_before=_tree_drilled)

    def test_tree_drilled_80x24(self, snap_compare: SnapCompare) -> None:
        with opened(usd_cache_path()) as cache:
            assert snap_compare(make_app(cache), terminal_size=(80, 24), run_before=_tree_drilled)

    def test_resource_detail_120x40(self, snap_compare: SnapCompare) -> None:
        with opened(usd_cache_path()) as cache:
            assert snap_compare(make_app(cache), terminal_size=(120, 40), run_before=_resource)


class TestTaggingSnapshots:
    def test_tagging_queue_120x40(self, snap_compare: SnapCompare) -> None:
        with opened(usd_cache_path()) as cache:
            assert snap_compare(make_app(cache), terminal_size=(120, 40), run_before=_tagging)
