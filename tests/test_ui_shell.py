"""App shell: views, welcome screen, keymap, help, palette, theme, NO_COLOR, launch."""

from __future__ import annotations

import asyncio
import time
import tomllib
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.command import CommandList, CommandPalette
from textual.filter import Monochrome
from textual.screen import Screen
from textual.widgets import Label

from finops_tui import paths
from finops_tui.cli import main
from finops_tui.config import Config, load_config
from finops_tui.ui import app as app_module
from finops_tui.ui import launch
from finops_tui.ui.app import VIEWS_BY_MODE, WELCOME_MODE, FinopsApp, ReopenCache
from finops_tui.ui.dialogs.help import HelpDialog
from finops_tui.ui.dialogs.period import CustomPeriodDialog, PeriodDialog, VimOptionList
from finops_tui.ui.screens import welcome
from finops_tui.ui.screens.base import FinopsScreen
from finops_tui.ui.screens.overview import OverviewScreen
from finops_tui.ui.widgets.cost_table import CostTable
from finops_tui.ui.widgets.daily_chart import DailyChart
from finops_tui.ui.widgets.path_input import PathSuggester
from tests.ui_fixtures import (
    DATA_END,
    TODAY,
    async_test,
    build_ui_cache,
    empty_cache_path,
    make_app,
    opened,
    screen_text,
    settle,
    usd_cache_path,
)

SIZE = (120, 40)


pytestmark = pytest.mark.today(TODAY)


class StubRecommendations(FinopsScreen):
    """Stands in for a view (the app makes each view's screen from `VIEW_SCREENS`)."""

    VIEW_TITLE = "Recommendations"


class StubAllocation(FinopsScreen):
    VIEW_TITLE = "Allocation"
    opened_slices: list[tuple[str, str | None]] = []  # noqa: RUF012 (test recorder)

    def open_slice(self, dimension: str, key: str | None) -> None:
        self.opened_slices.append((dimension, key))


def plug(monkeypatch: pytest.MonkeyPatch, mode: str, screen: type[FinopsScreen]) -> None:
    monkeypatch.setitem(app_module.VIEW_SCREENS, mode, screen)


def notices(app: FinopsApp) -> list[str]:
    return [n.message for n in app._notifications]


@async_test
async def test_views_switch_and_keep_their_state(monkeypatch: pytest.MonkeyPatch) -> None:
    plug(monkeypatch, "recommendations", StubRecommendations)
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.current_mode == "overview"
            await pilot.press("3")
            await pilot.pause()
            assert app.current_mode == "recommendations" and isinstance(app.screen, StubRecommendations)
            await pilot.press("1")
            await pilot.pause()
            assert app.current_mode == "overview" and isinstance(app.screen, OverviewScreen)
            assert app.screen.overview is not None, "the overview keeps its state across view switches"


@async_test
async def test_enter_on_a_row_opens_the_slice_in_allocation(monkeypatch: pytest.MonkeyPatch) -> None:
    plug(monkeypatch, "allocation", StubAllocation)
    StubAllocation.opened_slices.clear()
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert isinstance(app.focused, CostTable) and app.focused.id == "by-service"
            table = app.screen.query_one("#by-team", CostTable)
            table.focus()
            await pilot.press("j", "enter")
            await pilot.pause()
            assert app.current_mode == "allocation"
            assert StubAllocation.opened_slices == [("tag:team", table.rows_shown[1].key)]


@async_test
async def test_empty_cache_opens_the_welcome_screen(tmp_path: Path) -> None:
    with opened(empty_cache_path(tmp_path)) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.current_mode == WELCOME_MODE
            text = screen_text(app)
            assert "has no cost data yet" in text
            assert "Open the demo estate" in text and "Import a file" in text
            assert "az login" in text and "finops-tui sync --scope /subscriptions/<subscription-id>" in text
            await pilot.press("1")
            await pilot.pause()
            assert app.current_mode == WELCOME_MODE
            assert any("This cache is empty" in n for n in notices(app))


@async_test
async def test_welcome_demo_builds_in_a_worker_then_reopens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Path] = []

    def fake_build(path: Path, end: object, policy: object) -> Path:
        assert end == DATA_END
        built.append(build_ui_cache(path, days=20))
        return path

    monkeypatch.setattr(welcome, "build_demo_cache", fake_build)
    with opened(empty_cache_path(tmp_path)) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("d")
            # The worker posts the built cache's path, then returns: the app may take the answer and exit,
            # cancelling the worker, before its thread has returned. So wait for the exit, not the worker.
            deadline = time.monotonic() + 30
            while app.return_value is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
    assert built == [paths.demo_cache_path()]
    assert app.return_value == ReopenCache(paths.demo_cache_path())


@async_test
async def test_welcome_import_errors_in_one_line(tmp_path: Path) -> None:
    with opened(empty_cache_path(tmp_path)) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("i", *"/no/such/export.csv", "enter")
            await settle(pilot)
            message = str(app.screen.query_one("#import-error", Label).render())
            assert message == "/no/such/export.csv: no such file or folder"


@async_test
async def test_path_suggester_completes_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "cost-2026-11.csv").write_text("x")
    (tmp_path / ".hidden.csv").write_text("x")
    suggester = PathSuggester()
    assert await suggester.get_suggestion(f"{tmp_path}/co") == f"{tmp_path}/cost-2026-11.csv"
    assert await suggester.get_suggestion(f"{tmp_path}/ex") == f"{tmp_path}/exports/"
    assert await suggester.get_suggestion(f"{tmp_path}/.hid") == f"{tmp_path}/.hidden.csv"
    assert await suggester.get_suggestion(f"{tmp_path}/zz") is None
    assert await suggester.get_suggestion("/no/such/dir/x") is None


@async_test
async def test_keymap_from_config_remaps_bindings() -> None:
    config = Config(keymap={"overview.metric": "M", "app.view.overview": "f1"})
    with opened(usd_cache_path()) as cache:
        app = make_app(cache, config=config)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, OverviewScreen)
            await pilot.press("m")
            await settle(pilot)
            assert app.view_state.metric == "effective"
            await pilot.press("M")
            await settle(pilot)
            assert app.view_state.metric == "billed"
            assert screen.overview is not None and screen.overview.metric == "billed"


@async_test
async def test_keymap_is_read_from_config_toml() -> None:
    config_file = paths.config_path()
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text('[keys]\n"view.period" = "O"\n', encoding="utf-8")  # P is Push on the tagging view
    with opened(usd_cache_path()) as cache:
        app = FinopsApp(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("p")
            await pilot.pause()
            assert not isinstance(app.screen, PeriodDialog)
            await pilot.press("O")
            await pilot.pause()
            assert isinstance(app.screen, PeriodDialog)


@async_test
async def test_help_lists_the_active_keys() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpDialog)
            rows = app.screen.rows
            keys = {(row.keys, row.action, row.binding_id) for row in rows}
            assert {("m", "Metric", "view.metric"), ("p", "Period", "view.period"),
                    ("c", "Currency", "view.currency"), ("q", "Quit", "app.quit"),
                    ("?", "Help", "app.help"), (":, ^p", "Commands", "app.command_palette")} <= keys
            assert ("⏎", "Open slice", "list.open") in keys, "the focused table's keys too"
            assert any("amortized" in row.detail for row in rows), "tooltips explain each key"
            assert list(dict.fromkeys(row.where for row in rows)) == ["Overview", "Tables", "App"], \
                "grouped, screen first"
            text = screen_text(app)
            assert "Overview" in text and "view.metric" in text and "EffectiveCost (amortized)" in text
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, OverviewScreen)


@async_test
async def test_command_palette_offers_the_screens_actions() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            names = [c.name for c in app.palette_commands(app.screen)]
            for expected in ("Period: Last month", "Period: custom range…", "Metric: BilledCost (actual)",
                             "View: Allocation", "Theme…", "Export view to CSV", "Help: keys"):
                assert expected in names
            await pilot.press("colon")
            await pilot.pause()
            assert isinstance(app.screen, CommandPalette)
            await pilot.press(*"last month")
            await settle(pilot)  # the palette searches in a worker
            assert app.screen.query_one(CommandList).option_count
            await pilot.press("enter")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, OverviewScreen)
            assert screen.overview is not None and screen.overview.period.spec == "last-month"


@async_test
async def test_theme_is_remembered_in_config() -> None:
    with opened(usd_cache_path()) as cache:
        app = FinopsApp(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert not paths.config_path().exists(), "opening the app writes nothing"
            app.theme = "nord"
            await pilot.pause()
        assert tomllib.loads(paths.config_path().read_text(encoding="utf-8"))["theme"] == "nord"
        again = FinopsApp(cache, config=load_config())
        assert again.theme == "nord"


@async_test
async def test_no_color_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.no_color
            assert any(isinstance(f, Monochrome) for f in app._filters)


@async_test
async def test_sync_key_explains_what_to_do() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("R")
            await settle(pilot)  # the sync worker decides off the UI thread (it reads the cache)
            assert any("finops-tui sync --list-scopes" in n for n in notices(app))


def test_every_binding_has_an_id_and_a_tooltip() -> None:
    classes: list[type] = [FinopsApp, OverviewScreen, welcome.WelcomeScreen, DailyChart, CostTable, HelpDialog,
                           PeriodDialog, CustomPeriodDialog, VimOptionList]
    for cls in classes:
        actions: dict[str, str] = {}  # one id per action: two keys of one action may share it (`:`, ctrl+p)
        for binding in cls.__dict__.get("BINDINGS", []):
            assert isinstance(binding, Binding), cls
            assert binding.id and binding.tooltip, (cls.__name__, binding.key)
            assert actions.setdefault(binding.id, binding.action) == binding.action, (cls.__name__, binding.id)


def test_unreadable_cache_is_one_line_before_the_app_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "not-a-cache.duckdb"
    bad.write_text("hello")
    assert main(["--cache", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("finops-tui: ") and err.count("\n") == 1


def test_run_explorer_reopens_on_the_demo_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = build_ui_cache(tmp_path / "demo.duckdb", days=10)
    seen: list[Path | None] = []

    def fake_run(self: FinopsApp) -> ReopenCache | None:
        seen.append(self.cache.path)
        return ReopenCache(demo) if len(seen) == 1 else None

    monkeypatch.setattr(app_module.FinopsApp, "run", fake_run)
    assert launch.run_explorer(empty_cache_path(tmp_path)) == 0
    assert seen == [tmp_path / "empty.duckdb", demo]


def test_every_view_has_its_screen() -> None:
    assert set(app_module.VIEW_SCREENS) == set(VIEWS_BY_MODE)
    assert all(issubclass(screen, Screen) for screen in app_module.VIEW_SCREENS.values())


@async_test
async def test_welcome_import_loads_the_file_then_shows_the_overview(tmp_path: Path) -> None:
    export = Path(__file__).parent / "fixtures" / "azure-exports" / "EA_AmortizedCost_Small.csv"
    with opened(empty_cache_path(tmp_path)) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("i", *str(export), "enter")
            await settle(pilot)
            await settle(pilot)
            assert app.current_mode == "overview", screen_text(app)
            screen = app.screen
            assert isinstance(screen, OverviewScreen) and screen.overview is not None
            assert screen.overview.totals, "the imported cost is on screen"
            assert any("EA_AmortizedCost_Small.csv" in n for n in notices(app))
