"""The status bar names where the cache's cost came from (an export in storage, a FinOps hub) and how fresh it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from finops_tui.sync.exports import EXPORT_KIND
from finops_tui.sync.hub import HUB_KIND
from tests.ui_fixtures import async_test, build_ui_cache, make_app, opened, screen_text, settle

SIZE = (160, 48)


@pytest.mark.parametrize(("kind", "source"), [(EXPORT_KIND, "an export"), (HUB_KIND, "the hub")])
@async_test
async def test_the_status_bar_names_the_source_and_its_freshness(kind: str, source: str, tmp_path: Path) -> None:
    path = build_ui_cache(tmp_path / f"{kind}.duckdb", kind=kind)
    with opened(path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            text = screen_text(app)
    assert f"data through 2026-11-25, synced 3 h ago from {source}" in text
