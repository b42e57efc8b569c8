"""Commitments view (5) on the demo estate: KPIs and table equal `report commitments`, enter opens the tree by
team, the commitment findings link here; SVG snapshots at 160x48 and 80x24."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from finops_tui.allocation.effective import TagPolicy
from finops_tui.cli import main
from finops_tui.ingest.demo import PLANTED, build_demo
from finops_tui.recommend.engine import run_all
from finops_tui.recommend.model import Context
from finops_tui.store import open_cache
from finops_tui.ui.screens.allocation import AllocationScreen
from finops_tui.ui.screens.commitments import CommitmentsScreen
from finops_tui.ui.screens.recommendations import RecommendationsScreen
from finops_tui.ui.widgets.commitment_list import CommitmentList
from tests.ui_fixtures import (
    DATA_END,
    LOADED_AT,
    TODAY,
    async_test,
    make_app,
    opened,
    screen_text,
    settle,
    without_prefetch,
)

SnapCompare = Callable[..., bool]
pytestmark = pytest.mark.today(TODAY)


@cache
def demo_path() -> Path:
    """Three months of the demo estate ending on the UI tests' data end (built once per process)."""
    path = Path(tempfile.mkdtemp(prefix="finops-commitments-")) / "demo.duckdb"
    build_demo(path, TagPolicy(), end=DATA_END, months=3)
    with open_cache(path) as cache_file, cache_file.write() as cur:
        # "built 3 h ago" in every snapshot: the build's own time would read "just now" after 09:29 UTC only.
        cur.execute("UPDATE sources SET imported_at = ?", [LOADED_AT])
    return path


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    without_prefetch(monkeypatch, "overview", "allocation", "recommendations")
    monkeypatch.setenv("HOME", str(demo_path().parent))  # the status bar shows the path relative to home


async def _on_commitments(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("5")
    await settle(pilot)


def _report(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["report", "commitments", "--cache", str(demo_path()), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@async_test
async def test_key_5_shows_the_reservation_with_the_report_figures(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _report(capsys)
    (usd,) = doc["currencies"]
    (item,) = [c for c in usd["commitments"] if c["id"] == PLANTED.reservation.id]
    assert item["utilization"] == "0.6667"  # November: 20 of the 30 reserved VMs run
    with opened(demo_path()) as cache_file:
        app = make_app(cache_file)
        async with app.run_test(size=(160, 48)) as pilot:
            await _on_commitments(pilot)
            screen = app.screen
            assert isinstance(screen, CommitmentsScreen)
            shown = screen.shown
            assert shown is not None and shown.currency == "USD"
            # The screen's figures are the report's, to the cent.
            assert f"{shown.unused:.2f}" == usd["unused"]
            assert f"{shown.realized_savings:.2f}" == usd["realized_savings"]
            listed = screen.query_one(CommitmentList).current
            assert listed is not None and listed.id == PLANTED.reservation.id
            assert (f"{listed.used:.2f}", f"{listed.unused:.2f}", f"{listed.purchase:.2f}") == (
                item["used"], item["unused"], item["purchase"])
            text = screen_text(app)
            assert "66.7%" in text and PLANTED.reservation.name in text
            assert f"{float(usd['unused']):,.2f} USD" in text  # the waste card
            assert "Daily utilization" in text and "Covered: 20 resources" in text


@async_test
async def test_enter_opens_what_it_covered_by_team() -> None:
    with opened(demo_path()) as cache_file:
        app = make_app(cache_file)
        async with app.run_test(size=(160, 48)) as pilot:
            await _on_commitments(pilot)
            await pilot.press("enter")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, AllocationScreen)
            assert screen.hierarchy[:2] == ["commitment", "tag:team"]
            assert PLANTED.reservation.name in screen_text(app)
            await pilot.press("escape")
            await settle(pilot)
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, CommitmentsScreen)


@async_test
async def test_the_unused_commitment_finding_opens_this_view_on_its_commitment() -> None:
    with open_cache(demo_path(), read_only=True) as cache_file, cache_file.cursor() as cur:
        ctx = Context.from_cache(cur)
        assert ctx is not None
        (rec,) = [r for r in run_all(cur, ctx) if r.kind == "unused-commitment"]
    with opened(demo_path()) as cache_file:
        app = make_app(cache_file)
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await pilot.press("3")
            await settle(pilot)
            recs = app.screen
            assert isinstance(recs, RecommendationsScreen)
            recs.open_target(rec)
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, CommitmentsScreen)
            current = screen.query_one(CommitmentList).current
            assert current is not None and current.id.lower() == rec.scope.key
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, RecommendationsScreen)  # esc goes back to the finding


@async_test
async def test_m_keeps_amortized_cost_and_the_filter_narrows_the_list() -> None:
    with opened(demo_path()) as cache_file:
        app = make_app(cache_file)
        async with app.run_test(size=(160, 48)) as pilot:
            await _on_commitments(pilot)
            await pilot.press("m")
            await settle(pilot)
            assert "EffectiveCost" in screen_text(app)
            await pilot.press("slash", *"nothing-like-this")
            await settle(pilot)
            assert "no match" in screen_text(app)


def test_commitments_160x48(snap_compare: SnapCompare) -> None:
    with opened(demo_path()) as cache_file:
        assert snap_compare(make_app(cache_file), terminal_size=(160, 48), run_before=_on_commitments)


def test_commitments_80x24(snap_compare: SnapCompare) -> None:
    with opened(demo_path()) as cache_file:
        assert snap_compare(make_app(cache_file), terminal_size=(80, 24), run_before=_on_commitments)
