"""Overview screen: figures equal `report overview`, periods, metric, currencies, cancellation, chart."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from textual.message import Message
from textual.worker import WorkerState

from finops_tui.basis.money import money, shown_change
from finops_tui.cli import main
from finops_tui.report.overview import Overview
from finops_tui.ui import app as app_module
from finops_tui.ui.dialogs.period import CustomPeriodDialog, PeriodDialog
from finops_tui.ui.messages import OverviewLoaded, OverviewRequest
from finops_tui.ui.screens.overview import RESULT_CACHE_SIZE, TOP_ROWS, OverviewScreen
from finops_tui.ui.screens.overview_data import EmptyCache
from finops_tui.ui.widgets.cost_table import CostTable
from finops_tui.ui.widgets.daily_chart import DailyChart, layout_bars
from tests.ui_fixtures import (
    TODAY,
    async_test,
    make_app,
    old_data_cache_path,
    opened,
    screen_text,
    settle,
    two_currency_cache_path,
    usd_cache_path,
)

SIZE = (120, 40)


pytestmark = pytest.mark.today(TODAY)


def report_json(capsys: pytest.CaptureFixture[str], path: Path, period: str, metric: str) -> dict[str, Any]:
    """`finops-tui report overview --format json` for the same inputs the screen gets."""
    assert main(["report", "overview", "--cache", str(path), "--format", "json", "--period", period,
                 "--metric", metric]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


QueryProbe = Callable[[duckdb.DuckDBPyConnection, OverviewRequest], None]


class ProbedOverview(OverviewScreen):
    """The overview as shipped, with a probe a test sets: called in the worker, on its cursor, before each query."""

    def __init__(self, *, prefetch: bool = True, result_cache_size: int = RESULT_CACHE_SIZE) -> None:
        super().__init__(prefetch=prefetch, result_cache_size=result_cache_size)
        self.before_query: QueryProbe | None = None

    def read_overview(self, cur: duckdb.DuckDBPyConnection, request: OverviewRequest,
                      team_key: str) -> Overview | EmptyCache:
        if self.before_query is not None:
            self.before_query(cur, request)
        return super().read_overview(cur, request, team_key)


class UncachedOverview(ProbedOverview):
    """Every request runs a query: for tests about the query itself."""

    def __init__(self) -> None:
        super().__init__(prefetch=False, result_cache_size=0)


def probed(monkeypatch: pytest.MonkeyPatch, screen: type[ProbedOverview] = ProbedOverview) -> None:
    monkeypatch.setitem(app_module.VIEW_SCREENS, "overview", screen)


def without_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    probed(monkeypatch, UncachedOverview)


def probed_screen(app: object) -> ProbedOverview:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, ProbedOverview)
    return screen


def cents(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def overview_screen(app: object) -> OverviewScreen:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, OverviewScreen)
    return screen


CASES = [("mtd", "effective"), ("last-month", "billed"), ("30d", "effective"), ("90d", "billed"),
         ("2026-08-15..2026-10-01", "effective")]


@async_test
async def test_figures_equal_report_overview(capsys: pytest.CaptureFixture[str]) -> None:
    documents = {case: report_json(capsys, usd_cache_path(), *case) for case in CASES}
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = overview_screen(app)
            for (period, metric), doc in documents.items():
                screen.finops.view_state.metric = metric
                screen.set_period(period)
                await settle(pilot)
                assert_screen_matches(app, screen, doc, period, metric)


def assert_screen_matches(app: Any, screen: OverviewScreen, doc: dict[str, Any], period: str, metric: str) -> None:
    assert screen.overview is not None and screen.view is not None
    ov = screen.overview
    assert (ov.period.spec, ov.metric) == (doc["period"]["spec"], metric)
    assert str(ov.period.start) == doc["period"]["start"] and str(ov.period.end) == doc["period"]["end"]
    [expected] = doc["totals"]
    total = ov.total_for("USD")
    assert total is not None
    assert (cents(total.cost), cents(total.previous)) == (expected["cost"], expected["previous_cost"]), period
    assert cents(ov.untagged["USD"]) == expected["untagged_cost"]
    for name in ("service", "subscription", "tag:team"):
        shown = [(r.name, cents(r.cost), cents(r.previous)) for r in ov.breakdowns[name]][:TOP_ROWS]
        wanted = [(r["name"], r["cost"], r["previous_cost"]) for r in doc["breakdowns"][name]][:TOP_ROWS]
        assert shown == wanted, (period, name)
    # A change reads as the shown cost minus the shown previous cost, on screen and in the report alike.
    assert [(r.name, format(shown_change(r.cost, r.previous), "f")) for r in screen.view.movers] == [
        (r["name"], r["change"]) for r in doc["top_movers"]
    ]
    table = screen.query_one("#by-service", CostTable)
    assert [r.name for r in table.rows_shown] == [r["name"] for r in doc["breakdowns"]["service"]][:TOP_ROWS]
    text = screen_text(app)
    assert money(total.cost, "USD") in text
    if expected["forecast_month_end"] is not None:
        assert ov.forecast and cents(ov.forecast[0].total) == expected["forecast_month_end"]
        assert "Month-end forecast" in text and "weekday-aware" in text
        assert money(ov.forecast[0].total, "USD") in text


@async_test
async def test_metric_key_and_period_dialog(capsys: pytest.CaptureFixture[str]) -> None:
    billed = report_json(capsys, usd_cache_path(), "mtd", "billed")
    last_month = report_json(capsys, usd_cache_path(), "last-month", "billed")
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert "EffectiveCost (amortized)" in screen_text(app)
            await pilot.press("m")
            await settle(pilot)
            screen = overview_screen(app)
            assert screen.overview is not None and screen.overview.metric == "billed"
            assert "BilledCost (actual)" in screen_text(app)
            assert cents(screen.overview.totals[0].cost) == billed["totals"][0]["cost"]

            await pilot.press("p")
            await pilot.pause()
            assert isinstance(app.screen, PeriodDialog)
            await pilot.press("down", "enter")  # month to date -> last month
            await settle(pilot)
            screen = overview_screen(app)
            assert screen.overview is not None and screen.overview.period.spec == "last-month"
            assert cents(screen.overview.totals[0].cost) == last_month["totals"][0]["cost"]
            assert "October 2026" in screen_text(app)


@async_test
async def test_custom_range_dialog_end_is_exclusive() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("p")
            await pilot.pause()
            await pilot.press("end", "enter")  # the last option: custom range
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, CustomPeriodDialog)
            dialog.query_one("#start").value = "2026-10-05"  # type: ignore[attr-defined]
            dialog.query_one("#end").value = "2026-10-03"  # type: ignore[attr-defined]
            await pilot.click("#apply")
            await pilot.pause()
            assert isinstance(app.screen, CustomPeriodDialog), "END before START is refused in the dialog"
            assert "End must be after Start" in screen_text(app)  # the dialog's words, not the command line's
            end_field = dialog.query_one("#end")
            end_field.value = "2026-10-12"  # type: ignore[attr-defined]
            end_field.focus()
            await pilot.press("enter")
            await settle(pilot)
            screen = overview_screen(app)
            assert screen.overview is not None
            period = screen.overview.period
            assert (period.start, period.end, period.days) == (dt.date(2026, 10, 5), dt.date(2026, 10, 12), 7)
            assert len(screen.query_one(DailyChart).series) == 7


@async_test
async def test_newer_request_cancels_and_interrupts_the_older_one(monkeypatch: pytest.MonkeyPatch) -> None:
    without_cache(monkeypatch)
    messages: list[Message] = []
    slow_started = threading.Event()
    interrupted: list[bool] = []

    def slow_first_query(cur: duckdb.DuckDBPyConnection, request: OverviewRequest) -> None:
        if request.period != "last-month":
            return
        slow_started.set()
        try:  # minutes of work unless interrupted
            cur.execute("SELECT sum(range) FROM range(100000000000)").fetchall()
        except duckdb.InterruptException:
            interrupted.append(True)
            raise

    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
            await settle(pilot)
            screen = probed_screen(app)
            screen.before_query = slow_first_query
            started = time.perf_counter()
            screen.set_period("last-month")
            [first] = [w for w in app.workers if w.group == "overview" and not w.is_finished]
            while not slow_started.is_set():
                await pilot.pause(0.01)
            screen.set_period("30d")
            await settle(pilot)
            assert time.perf_counter() - started < 10
            assert first.state == WorkerState.CANCELLED
            assert interrupted == [True], "the running statement was interrupted on its own cursor"
            assert screen.overview is not None and screen.overview.period.spec == "30d"
            loaded = [m.request.period for m in messages if isinstance(m, OverviewLoaded)]
            assert "last-month" not in loaded
            assert not [n for n in app._notifications if n.severity == "error"]


@async_test
async def test_slow_query_shows_loading_state_then_result(monkeypatch: pytest.MonkeyPatch) -> None:
    without_cache(monkeypatch)

    entered, release = threading.Event(), threading.Event()

    def slow(cur: duckdb.DuckDBPyConnection, request: OverviewRequest) -> None:
        if request.period == "90d":
            entered.set()
            release.wait(10)  # held until the test has seen the loading state

    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = probed_screen(app)
            screen.before_query = slow
            focused = app.focused
            screen.set_period("90d")
            content = screen.query_one("#content")
            deadline = time.monotonic() + 5
            while not (entered.is_set() and content.loading) and time.monotonic() < deadline:
                await pilot.pause()
            loading = content.loading
            release.set()
            assert loading, "a slow query shows the loading state"
            await settle(pilot)
            assert not screen.query_one("#content").loading
            assert screen.overview is not None and screen.overview.period.spec == "90d"
            assert app.focused is focused, "focus survives the loading state"


@async_test
async def test_worker_errors_become_one_notification(monkeypatch: pytest.MonkeyPatch) -> None:
    without_cache(monkeypatch)

    def broken(cur: duckdb.DuckDBPyConnection, request: OverviewRequest) -> None:
        raise RuntimeError("disk on fire\nsecond line of detail")

    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            probed_screen(app).before_query = broken
            await pilot.press("m")
            await settle(pilot)
            errors = [n for n in app._notifications if n.severity == "error"]
            assert [n.message for n in errors] == ["RuntimeError: disk on fire"]


@async_test
async def test_currency_switch_never_mixes_currencies(capsys: pytest.CaptureFixture[str]) -> None:
    doc = report_json(capsys, two_currency_cache_path(), "mtd", "effective")
    by_currency = {t["currency"]: t for t in doc["totals"]}
    assert set(by_currency) == {"USD", "EUR"}
    with opened(two_currency_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = overview_screen(app)
            assert screen.view is not None and screen.view.currency == "USD"
            text = screen_text(app)
            assert "showing USD; also billed in EUR" in text
            assert money(Decimal(by_currency["USD"]["cost"]), "USD") in text
            await pilot.press("c")
            await settle(pilot)
            assert screen.view.currency == "EUR"
            assert cents(screen.view.total.cost) == by_currency["EUR"]["cost"]
            assert screen.view.breakdowns["service"] and screen.view.movers
            assert all(r.currency == "EUR" for rows in screen.view.breakdowns.values() for r in rows)
            assert all(r.currency == "EUR" for r in screen.view.movers)
            assert money(screen.view.total.cost, "EUR") in screen_text(app)
            assert screen.query_one(DailyChart).currency == "EUR"
            text = screen_text(app)
            assert "showing EUR; also billed in USD" in text and "Cost (EUR)" in text
            await pilot.press("c")
            await settle(pilot)
            assert screen.view.currency == "USD"


@async_test
async def test_single_currency_says_so() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("c")
            await pilot.pause()
            assert any("Only USD" in n.message for n in app._notifications)
            assert "also billed in" not in screen_text(app)


@async_test
async def test_old_data_anchors_on_the_last_day_and_says_so() -> None:
    with opened(old_data_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = overview_screen(app)
            assert screen.overview is not None
            period = screen.overview.period
            assert period.anchored_on_data and (period.start, period.end) == (dt.date(2026, 5, 1), dt.date(2026, 5, 29))
            text = screen_text(app)
            assert "data ends 2026-05-28; showing May 2026 to date" in text
            assert "imported from contoso-focus-2026-05.csv" in text


@async_test
async def test_status_bar_names_freshness_and_cache_file() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            text = screen_text(app)
            assert "data through 2026-11-25, synced 3 h ago" in text
            assert "usd.duckdb" in text


@async_test
async def test_chart_cursor_moves_with_h_l_and_arrows() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            chart = app.screen.query_one(DailyChart)
            chart.focus()
            await pilot.pause()
            series = chart.series
            assert chart.cursor_day == series[-1]
            await pilot.press("h", "left")
            await pilot.pause()
            day, value = series[-3]
            assert chart.cursor_day == (day, value)
            assert f"{day:%a} {day.isoformat()}" in screen_text(app)
            assert money(value, "USD") in screen_text(app)
            await pilot.press("l", "g")
            await pilot.pause()
            assert chart.cursor == 0
            await pilot.press("right")
            assert chart.cursor == 1


@async_test
async def test_chart_fits_80x24_and_windows_long_periods() -> None:
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            overview_screen(app).set_period("90d")
            await settle(pilot)
            chart = app.screen.query_one(DailyChart)
            assert chart.size.height <= 8
            assert re.search(r"\d+(/| of )90 days", screen_text(app)), "90 days do not fit in 80 columns: it scrolls"
            chart.focus()
            await pilot.press("g")
            await pilot.pause()
            assert chart.cursor == 0


def test_layout_bars_widens_and_windows() -> None:
    assert layout_bars(10, 100, 9) == layout_bars(10, 100, 0)
    wide = layout_bars(10, 100, 9)
    assert (wide.first, wide.count, wide.slot, wide.bar) == (0, 10, 10, 9)
    dense = layout_bars(60, 70, 59)
    assert (dense.first, dense.count, dense.bar) == (0, 60, 1)
    window = layout_bars(90, 70, 89)
    assert (window.first, window.count) == (20, 70)
    moved = layout_bars(90, 70, 30, first=window.first)
    assert moved.first == 20, "the window stays put while the cursor is inside it"
    assert layout_bars(90, 70, 5, first=20).first == 5


@async_test
async def test_filter_and_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINOPS_TUI_EXPORTS_DIR", str(tmp_path))
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("slash", *"stor")
            await pilot.pause()
            services = app.screen.query_one("#by-service", CostTable)
            assert [r.name for r in services.rows_shown] == ["Storage"]
            await pilot.press("ctrl+s")
            await pilot.pause()
            [exported] = list(tmp_path.glob("finops-overview-*.csv"))
            assert exported.name == "finops-overview-2026-11-01..2026-11-26-effective-USD.csv"
            rows = list(csv.DictReader(exported.open(encoding="utf-8")))
            storage = [r for r in rows if r["table"] == "Top services"]
            assert [r["name"] for r in storage] == ["Storage"]
            assert Decimal(storage[0]["cost"]) == services.rows_shown[0].cost
            assert any(f"Saved {exported}" in n.message for n in app._notifications)
            await pilot.press("escape")
            await pilot.pause()
            assert len(services.rows_shown) > 1


@async_test
async def test_prefetched_and_cached_results_repaint_without_a_query(capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    probed(monkeypatch)
    billed = report_json(capsys, usd_cache_path(), "mtd", "billed")
    queried: list[tuple[str, str]] = []
    with opened(usd_cache_path()) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = probed_screen(app)
            screen.before_query = lambda cur, request: queried.append((request.period, request.metric))
            await pilot.press("m")  # prefetched while the first result was on screen
            await settle(pilot)
            assert screen.overview is not None and screen.overview.metric == "billed"
            assert cents(screen.overview.totals[0].cost) == billed["totals"][0]["cost"]
            await pilot.press("m")  # back: cached
            await settle(pilot)
            assert queried == []
            screen.set_period("2026-09-01..2026-09-08")  # never prefetched
            await settle(pilot)
            assert queried == [("2026-09-01..2026-09-08", "effective")]
            screen.reload()  # the cache file changed: forget everything
            await settle(pilot)
            assert queried[-1] == ("2026-09-01..2026-09-08", "effective") and len(queried) == 2
