"""SVG snapshots of the overview at 80x24 and 160x48 (pinned clock and data); review diffs like code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.ui_fixtures import TODAY, make_app, opened, settle, usd_cache_path

SnapCompare = Callable[..., bool]


pytestmark = pytest.mark.today(TODAY)


@pytest.fixture(autouse=True)
def _home_beside_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # The status bar shows the cache path relative to home: make it the same on every machine.
    monkeypatch.setenv("HOME", str(usd_cache_path().parent))


async def _loaded(pilot: Pilot[Any]) -> None:
    await settle(pilot)


class TestOverviewSnapshots:
    def test_overview_80x24(self, snap_compare: SnapCompare) -> None:
        with opened(usd_cache_path()) as cache:
            assert snap_compare(make_app(cache), terminal_size=(80, 24), run_before=_loaded)

    def test_overview_160x48(self, snap_compare: SnapCompare) -> None:
        with opened(usd_cache_path()) as cache:
            assert snap_compare(make_app(cache), terminal_size=(160, 48), run_before=_loaded)
