"""Shared costs in the explorer: `S` everywhere, `$` makes a node a pool (preview = saved), `L` reorders and
deletes, `ctrl+s` exports the chargeback as `report chargeback` does; SVG snapshots (demo estate, pinned clock)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select

from finops_tui import paths
from finops_tui.allocation.effective import TagPolicy
from finops_tui.allocation.shared import load_pools, shared_path
from finops_tui.basis.periods import resolve_period
from finops_tui.cli import main
from finops_tui.ingest.demo import build_demo
from finops_tui.report.shared_nodes import PoolInfo, applied_pools, share_rows
from finops_tui.store import open_cache
from finops_tui.ui.dialogs.pool_dialog import PoolDialog, glob_literal, parse_weights, seed_from_trail
from finops_tui.ui.dialogs.pool_list import PoolListDialog
from finops_tui.ui.screens.allocation import AllocationScreen
from finops_tui.ui.screens.overview import OverviewScreen
from finops_tui.ui.widgets.context_bar import ContextBar
from finops_tui.ui.widgets.cost_table import CostTable
from tests.ui_fixtures import DATA_END, LOADED_AT, TODAY, async_test, make_app, opened, settle, without_prefetch

SnapCompare = Callable[..., bool]
ZERO = Decimal(0)

pytestmark = pytest.mark.today(TODAY)


@pytest.fixture(scope="module")
def demo_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shared") / "demo.duckdb"
    build_demo(path, TagPolicy(), end=DATA_END, months=2)  # no shared.toml: the demo's three pools apply
    with open_cache(path) as cache, cache.write() as cur:
        cur.execute("UPDATE sources SET imported_at = ?", [LOADED_AT])  # "built 3 h ago" in every snapshot
    return path


@pytest.fixture
def demo_path(demo_master: Path, tmp_path: Path) -> Path:
    """A copy of the demo cache per test: saving a pool writes to it."""
    home = tmp_path / "home"
    home.mkdir()
    path = home / "demo.duckdb"
    shutil.copy(demo_master, path)
    return path


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch, demo_path: Path) -> None:
    without_prefetch(monkeypatch, "overview", "allocation")
    monkeypatch.setenv("HOME", str(demo_path.parent))  # the status bar's path reads the same everywhere


def _team_figures_sql(path: Path, start: Any, end: Any) -> tuple[dict[str | None, Decimal], Decimal]:
    """Independently of the read models: each team's direct cost (rows no pool took) plus its shares, and the
    grand total of every USD row in the period."""
    with open_cache(path, read_only=True) as cache, cache.cursor() as cur:
        direct = cur.execute(
            """SELECT t.tag_value, sum(c.EffectiveCost) FROM charges c
               LEFT JOIN resource_tags t ON t.resource_key = c.x_ResourceKey AND t.tag_key = 'team'
               WHERE c.x_ChargeDate >= ? AND c.x_ChargeDate < ? AND c.BillingCurrency = 'USD'
                 AND c.x_SharedPool IS NULL GROUP BY 1""", [start, end]).fetchall()
        shares = cur.execute(
            """SELECT recipient, sum(effective) FROM shared_splits WHERE currency = 'USD' AND day >= ? AND day < ?
               GROUP BY 1""", [start, end]).fetchall()
        total = cur.execute("SELECT sum(EffectiveCost) FROM charges WHERE x_ChargeDate >= ? AND x_ChargeDate < ? "
                            "AND BillingCurrency = 'USD'", [start, end]).fetchone()
    figures: dict[str | None, Decimal] = {}
    for team, cost in [*direct, *shares]:
        figures[team] = figures.get(team, ZERO) + (cost or ZERO)
    return figures, total[0] if total else ZERO


def _roots(screen: AllocationScreen) -> dict[str | None, Decimal]:
    return {b.node.key: b.node.cost for b in screen.tree_view.roots if not b.node.is_other}


# --- S ---------------------------------------------------------------------------------------------------


def test_s_makes_every_team_figure_direct_plus_shares_and_totals_do_not_move(demo_path: Path) -> None:
    @async_test
    async def run() -> None:
        with opened(demo_path) as cache:
            app = make_app(cache)
            async with app.run_test(size=(160, 48)) as pilot:
                await settle(pilot)
                overview = app.screen
                assert isinstance(overview, OverviewScreen) and overview.view is not None
                plain_total = overview.view.total.cost
                plain_teams = {r.key: r.cost for r in overview.view.breakdowns["tag:team"]}
                kpi = overview.view.allocation
                assert kpi is not None and kpi.maturity in ("crawl", "walk", "run")
                assert "Allocated (team)" in overview.query_one("#card-untagged").render().plain  # type: ignore[attr-defined]

                await pilot.press("2")
                await settle(pilot)
                tree = app.screen
                assert isinstance(tree, AllocationScreen)
                plain = _roots(tree)
                plain_tree_total = tree.tree_view.total
                await pilot.press("S")
                await settle(pilot)
                assert tree.shown_shared and app.view_state.shared
                assert "with shared costs" in tree.query_one(ContextBar).shown
                shared = _roots(tree)
                assert tree.tree_view.total == plain_tree_total  # the totals do not move
                assert sum(shared.values(), ZERO) == sum(plain.values(), ZERO)
                assert tree.period is not None
                expected, grand = _team_figures_sql(demo_path, tree.period.start, tree.period.end)
                assert sum(shared.values(), ZERO) == grand
                for team, cost in shared.items():
                    assert cost == expected[team], team
                assert shared["payments"] > plain["payments"]  # the hub network, log analytics and support

                # A team's children: its direct cost by subscription, then "shared: <pool>" leaves.
                payments = next(b for b in tree.tree_view.roots if b.node.key == "payments")
                tree.tree_view.reveal(payments.path)
                await settle(pilot)
                assert payments.children is not None
                pools = [b for b in payments.children if b.node.shared is not None]
                assert {b.label for b in pools} == {"shared: hub network", "shared: log analytics", "shared: support"}
                assert all(not b.expandable for b in pools)
                assert sum((b.node.cost for b in payments.children), ZERO) == payments.node.cost
                tree.tree_view.cursor_row = next(i for i, r in enumerate(tree.tree_view.rows) if r.branch is pools[0])
                await pilot.pause()
                detail = str(tree.query_one("#shared-detail").render())
                assert pools[0].node.shared is not None and pools[0].node.shared.pool in detail

                # The overview follows: same total, team table with shares, the title says so.
                await pilot.press("1")
                await settle(pilot)
                assert overview.view is not None and overview.overview is not None and overview.overview.shared
                assert overview.view.total.cost == plain_total
                with_shares = {r.key: r.cost for r in overview.view.breakdowns["tag:team"]}
                assert sum(with_shares.values(), ZERO) == sum(plain_teams.values(), ZERO)
                assert with_shares["payments"] == shared["payments"]
                assert "with shared costs" in overview.query_one("#by-team", CostTable).title

                await pilot.press("S")  # off again, from the overview: the tree follows when shown
                await settle(pilot)
                await pilot.press("2")
                await settle(pilot)
                assert not tree.shown_shared and _roots(tree) == plain

    run()


# --- $ ---------------------------------------------------------------------------------------------------


def test_seed_from_trail_makes_each_step_a_condition() -> None:
    seed = seed_from_trail([("tag:team", None, "(unallocated)"), ("resource-group", "rg-a*b", "rg-a*b")])
    assert seed.match == {"unallocated": True, "resource_group": "rg-a[*]b"} and seed.to == "team"
    assert seed.name == "rg-a*b"
    seed = seed_from_trail([("tag:team", "payments", "payments"), ("service", "Storage", "Storage")])
    assert seed.match == {"tags": {"team": "payments"}, "service": "Storage"}
    with pytest.raises(ValueError, match="cannot match by sku"):
        seed_from_trail([("sku", "x", "x")])
    assert glob_literal("a?[b]") == "a[?][[]b]"
    assert parse_weights("payments=40, search = 60.5") == {"payments": 40, "search": 60.5}


async def _until(pilot: Pilot[Any], done: Callable[[], bool], seconds: float = 10.0) -> None:
    """Let the app run until `done()` (a debounced preview, a worker's answer), however busy the machine."""
    for _ in range(int(seconds / 0.05)):
        await settle(pilot)
        if done():
            return
        await pilot.pause(0.05)
    raise AssertionError("the screen never got there")


async def _pool_dialog_on_group(pilot: Pilot[Any], group: str = "rg-aks-prod") -> PoolDialog:
    await settle(pilot)
    await pilot.press("2")
    await settle(pilot)
    tree = pilot.app.screen
    assert isinstance(tree, AllocationScreen)
    tree.set_hierarchy(["resource-group", "resource"], None)
    await settle(pilot)
    branch = next((b for b in tree.tree_view.roots if b.node.key == group), None)
    if branch is None:  # a demo without that group: its largest one
        branch = next(b for b in tree.tree_view.roots if b.node.key and not b.node.is_other)
    tree.tree_view.reveal(branch.path, expand=False)
    await pilot.press("dollar_sign")
    await settle(pilot)
    dialog = pilot.app.screen
    assert isinstance(dialog, PoolDialog)
    # The preview starts once the fields stop changing, then runs in a worker.
    await _until(pilot, lambda: dialog.previewed is not None)
    return dialog


def test_dollar_previews_each_share_and_saving_gives_exactly_the_preview(demo_path: Path) -> None:
    seen: dict[str, Any] = {}

    @async_test
    async def run() -> None:
        with opened(demo_path) as cache:
            app = make_app(cache)
            async with app.run_test(size=(160, 48)) as pilot:
                dialog = await _pool_dialog_on_group(pilot)
                ready = dialog.previewed
                assert ready is not None and ready.preview is not None and ready.problem is None
                usd_cost, usd_shares = ready.preview.currencies["USD"]
                assert usd_cost > 0 and sum((s.amount for s in usd_shares), ZERO) == usd_cost
                seen.update(name=ready.pool.name if ready.pool else "", shares={s.recipient: s.amount
                                                                                for s in usd_shares})
                # Bad weights get one line naming the field, and Save waits.
                dialog.query_one("#method", Select).value = "fixed"
                dialog.query_one("#weights", Input).value = "payments=abc"
                await _until(pilot, lambda: "weights.payments" in str(dialog.query_one("#error").render()))
                assert dialog.previewed is None
                dialog.query_one("#method", Select).value = "proportional"
                dialog.query_one("#weights", Input).value = ""
                await _until(pilot, lambda: dialog.previewed is not None)
                await pilot.press("ctrl+s")
                await settle(pilot)
                tree = app.screen
                assert isinstance(tree, AllocationScreen) and app.view_state.shared  # shown with the new pool
                seen["period"] = (tree.period.start, tree.period.end) if tree.period else None

    run()
    text = shared_path().read_text(encoding="utf-8")
    assert "# The hub network" in text  # the demo pools were adopted with their comments
    pools = load_pools(team_key="team")
    assert pools is not None and [p.name for p in pools][:3] == ["hub network", "log analytics", "support"]
    assert pools[3].name == seen["name"] and pools[3].method == "proportional"
    start, end = seen["period"]
    with open_cache(demo_path, read_only=True) as cache, cache.cursor() as cur:
        info = applied_pools(cur)
        assert [p.name for p in info] == [p.name for p in pools]
        period, _ = resolve_period(cur, "mtd")
        assert (period.start, period.end) == (start, end)
        rows = share_rows(cur, [PoolInfo(4, seen["name"], "proportional", "team")], period, period.previous(), "USD",
                          "effective", daily=False)
    assert {r.recipient: r.cost for r in rows if r.cost} == {k: v for k, v in seen["shares"].items() if v}


# --- L ---------------------------------------------------------------------------------------------------


def test_l_lists_reorders_and_deletes_pools_keeping_comments(demo_path: Path) -> None:
    @async_test
    async def run() -> None:
        with opened(demo_path) as cache:
            app = make_app(cache)
            async with app.run_test(size=(160, 48)) as pilot:
                await settle(pilot)
                await pilot.press("2")
                await settle(pilot)
                await pilot.press("L")
                await settle(pilot)
                dialog = app.screen
                assert isinstance(dialog, PoolListDialog) and dialog.listing is not None
                assert dialog.listing.demo and [p.name for p in dialog.listing.pools] == [
                    "hub network", "log analytics", "support"]
                assert all(dialog.listing.costs.get(p.index, ZERO) > 0 for p in dialog.listing.pools)
                await pilot.press("right_square_bracket")  # hub network after log analytics
                await settle(pilot)
                assert [p.name for p in dialog.listing.pools] == ["log analytics", "hub network", "support"]
                assert dialog.cursor_index == 2
                await pilot.press("d")
                assert dialog.confirming == 2
                await pilot.press("escape")  # keeps it
                assert dialog.confirming is None and isinstance(app.screen, PoolListDialog)
                await pilot.press("down", "d", "y")  # deletes support
                await settle(pilot)
                assert [p.name for p in dialog.listing.pools] == ["log analytics", "hub network"]
                await pilot.press("escape")
                await settle(pilot)
                assert isinstance(app.screen, AllocationScreen) and app.view_state.shared

    run()
    text = shared_path().read_text(encoding="utf-8")
    assert "# The hub network" in text and "support" not in text.split("# The support plan")[-1].split("[[pool]]")[-1]
    pools = load_pools(team_key="team")
    assert pools is not None and [p.name for p in pools] == ["log analytics", "hub network"]
    with open_cache(demo_path, read_only=True) as cache, cache.cursor() as cur:
        assert [p.name for p in applied_pools(cur)] == ["log analytics", "hub network"]


# --- ctrl+s ----------------------------------------------------------------------------------------------


def test_ctrl_s_with_shared_costs_saves_the_chargeback_as_the_report_prints_it(
    demo_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    @async_test
    async def run() -> None:
        with opened(demo_path) as cache:
            app = make_app(cache)
            async with app.run_test(size=(160, 48)) as pilot:
                await settle(pilot)
                await pilot.press("2", "S")
                await settle(pilot)
                await pilot.press("ctrl+s")
                await settle(pilot)

    run()
    saved = paths.exports_dir() / "finops-chargeback-2026-11-team-effective.csv"
    assert saved.exists()
    capsys.readouterr()
    assert main(["report", "chargeback", "--cache", str(demo_path), "--month", "2026-11", "--format", "csv"]) == 0
    assert saved.read_text(encoding="utf-8") == capsys.readouterr().out


# --- snapshots -------------------------------------------------------------------------------------------


async def _tree_with_shared(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("2", "S")
    await settle(pilot)
    tree = pilot.app.screen
    assert isinstance(tree, AllocationScreen)
    payments = next(b for b in tree.tree_view.roots if b.node.key == "payments")
    tree.tree_view.reveal(payments.path)
    await settle(pilot)
    rows = tree.tree_view.rows
    tree.tree_view.cursor_row = next(i for i, r in enumerate(rows) if r.branch is not None
                                     and r.branch.label == "shared: hub network")
    await settle(pilot)


class TestSharedSnapshots:
    def test_tree_with_shared_costs_160x48(self, snap_compare: SnapCompare, demo_path: Path) -> None:
        with opened(demo_path) as cache:
            assert snap_compare(make_app(cache), terminal_size=(160, 48), run_before=_tree_with_shared)

    def test_tree_with_shared_costs_80x24(self, snap_compare: SnapCompare, demo_path: Path) -> None:
        with opened(demo_path) as cache:
            assert snap_compare(make_app(cache), terminal_size=(80, 24), run_before=_tree_with_shared)

    def test_pool_dialog_160x48(self, snap_compare: SnapCompare, demo_path: Path) -> None:
        with opened(demo_path) as cache:
            assert snap_compare(make_app(cache), terminal_size=(160, 48), run_before=_pool_dialog_on_group)

    def test_pool_dialog_80x24(self, snap_compare: SnapCompare, demo_path: Path) -> None:
        with opened(demo_path) as cache:
            assert snap_compare(make_app(cache), terminal_size=(80, 24), run_before=_pool_dialog_on_group)
