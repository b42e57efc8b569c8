"""The Explain screen: `x` from the overview, the tree and a resource, `enter` on a contributor, agreement with
`report explain`, and SVG snapshots (the demo estate, pinned clock)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from finops_tui.allocation.effective import TagPolicy
from finops_tui.basis.money import cents
from finops_tui.cli import main
from finops_tui.ingest.demo import GPU_VM, PLANTED, build_demo
from finops_tui.store import open_cache
from finops_tui.ui.screens.explain import ContributorTable, ExplainScreen
from finops_tui.ui.screens.resource_detail import ResourceDetailScreen
from finops_tui.ui.widgets.cost_table import CostTable
from finops_tui.ui.widgets.waterfall import Waterfall
from tests.ui_fixtures import DATA_END, LOADED_AT, TODAY, async_test, make_app, opened, settle, without_prefetch

SnapCompare = Callable[..., bool]

pytestmark = pytest.mark.today(TODAY)


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("explain") / "demo.duckdb"
    build_demo(path, TagPolicy(), end=DATA_END, months=2)
    with open_cache(path) as cache, cache.write() as cur:
        cur.execute("UPDATE sources SET imported_at = ?", [LOADED_AT])  # "built 3 h ago" in every snapshot
    return path


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch, demo_path: Path) -> None:
    without_prefetch(monkeypatch, "overview", "allocation")
    monkeypatch.setenv("HOME", str(demo_path.parent))  # the status bar's path reads the same everywhere


async def _explain_subscription(pilot: Pilot[Any], name: str = "prod-data") -> None:
    await settle(pilot)
    table = pilot.app.screen.query_one("#by-subscription", CostTable)
    table.focus()
    table.cursor_row = next(i for i, row in enumerate(table.rows_shown) if row.name == name)
    await pilot.press("x")
    await settle(pilot)


def test_x_on_an_overview_row_explains_it_as_the_report_does(demo_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    seen: dict[str, Any] = {}

    @async_test
    async def run() -> None:
        with opened(demo_path) as cache:
            app = make_app(cache)
            async with app.run_test(size=(160, 48)) as pilot:
                await _explain_subscription(pilot)
                screen = app.screen
                assert isinstance(screen, ExplainScreen)
                assert [(p.dimension, p.key, p.label) for p in screen.scope] == [
                    ("subscription", PLANTED.step_subscription, "prod-data")]
                shown = screen.shown
                assert shown is not None
                seen.update(before=shown.before, after=shown.after,
                            buckets={b.kind: cents(b.amount) for b in shown.buckets},
                            steps=[s.kind for s in screen.query_one(Waterfall).steps])

    run()
    assert main(["report", "explain", "--cache", str(demo_path), "--scope", "subscription:prod-data",
                 "--format", "json"]) == 0
    [usd] = json.loads(capsys.readouterr().out)["currencies"]
    assert Decimal(usd["before"]) == cents(seen["before"]) and Decimal(usd["after"]) == cents(seen["after"])
    assert {b["kind"]: Decimal(b["amount"]) for b in usd["buckets"]} == seen["buckets"]
    assert seen["steps"][0] == "before" and seen["steps"][-1] == "after"
    assert seen["buckets"]["usage"] == max(seen["buckets"].values())  # the planted step: more usage


@async_test
async def test_x_on_the_tree_explains_the_node_under_the_cursor(demo_path: Path) -> None:
    with opened(demo_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await pilot.press("2")
            await settle(pilot)
            branch = app.screen.tree_view.cursor_branch  # type: ignore[attr-defined]
            await pilot.press("x")
            await settle(pilot)
            assert isinstance(app.screen, ExplainScreen)
            assert [(p.dimension, p.key) for p in app.screen.scope] == [(branch.node.dimension, branch.node.key)]
            await pilot.press("escape")
            assert type(app.screen).__name__ == "QuietAllocation"


@async_test
async def test_x_on_the_resized_vm_names_the_gpu_meter_and_enter_opens_the_resource(demo_path: Path) -> None:
    with opened(demo_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            app.open_resource(PLANTED.new_sku_resource_id)
            await settle(pilot)
            await pilot.press("x")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, ExplainScreen) and screen.shown is not None
            swap = screen.shown.bucket("sku_swap")
            assert swap.top[0].meter == GPU_VM.name and swap.amount > 0
            waterfall = screen.query_one(Waterfall)
            waterfall.cursor_row = [s.kind for s in waterfall.steps].index("sku_swap")
            await settle(pilot)
            assert screen.contributors[0].meter == GPU_VM.name
            screen.query_one(ContributorTable).focus()
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.screen, ResourceDetailScreen)
            assert app.screen.resource_id == PLANTED.new_sku_resource_id


@async_test
async def test_the_shared_metric_key_explains_again_in_the_other_metric(demo_path: Path) -> None:
    with opened(demo_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=(160, 48)) as pilot:
            await _explain_subscription(pilot)
            await pilot.press("m")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, ExplainScreen) and screen.explanation is not None
            assert screen.explanation.metric == "billed"
            shown = screen.shown
            assert shown is not None and sum((b.amount for b in shown.buckets), Decimal(0)) == shown.change


class TestExplainSnapshots:
    def test_explain_160x48(self, snap_compare: SnapCompare, demo_path: Path) -> None:
        with opened(demo_path) as cache:
            assert snap_compare(make_app(cache), terminal_size=(160, 48), run_before=_explain_subscription)

    def test_explain_80x24(self, snap_compare: SnapCompare, demo_path: Path) -> None:
        with opened(demo_path) as cache:
            assert snap_compare(make_app(cache), terminal_size=(80, 24), run_before=_explain_subscription)
