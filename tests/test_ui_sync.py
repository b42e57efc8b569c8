"""The explorer's background sync against the loopback fake ARM, signed in through a fake `az` on PATH."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from finops_tui import clock
from finops_tui.azure import NOT_SIGNED_IN
from finops_tui.cli import main
from finops_tui.config import load_config, save_setting
from finops_tui.store import Cache
from finops_tui.sync import SyncProgress
from finops_tui.ui.app import WELCOME_MODE, FinopsApp
from finops_tui.ui.screens.overview import OverviewScreen
from finops_tui.ui.sync_worker import progress_line
from tests import fake_arm
from tests.fake_arm import MONTHS, SUB, TODAY, FakeArm, ScriptedResponse, install_fake_az, month_total
from tests.ui_fixtures import (
    async_test,
    build_ui_cache,
    empty_cache_path,
    opened,
    screen_text,
    settle,
    wait_until,
    without_prefetch,
)

pytestmark = pytest.mark.today(fake_arm.TODAY)
arm = fake_arm.arm

SIZE = (120, 40)
MARCH, FEBRUARY = MONTHS[0], MONTHS[1]
THROTTLE_SECONDS = "30"  # long enough that only a cancel ends the wait within the test


@pytest.fixture(autouse=True)
def _quiet_overview(monkeypatch: pytest.MonkeyPatch) -> None:
    without_prefetch(monkeypatch, "overview")  # fewer workers to wait for


def configure(arm: FakeArm, *, months: int = 1, max_age_hours: float | None = None) -> None:
    """config.toml in the test's config dir: the fake's scope and endpoint."""
    save_setting("sync", "scopes", [SUB])
    save_setting("sync", "arm_endpoint", arm.base_url)
    save_setting("sync", "months", months)
    if max_age_hours is not None:
        save_setting("sync", "max_age_hours", max_age_hours)


def explorer(cache: Cache) -> FinopsApp:
    """The app as `finops-tui` builds it: settings from config.toml, the real (pinned) clock."""
    return FinopsApp(cache, config=load_config(), now=clock.now, demo_end=TODAY - dt.timedelta(days=1))


def notices(app: FinopsApp) -> list[str]:
    return [n.message for n in app._notifications]


def cents(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def throttle_reports(arm: FakeArm, match: Callable[[str, str], bool]) -> None:
    """429 with Cost Management's own retry-after headers (no standard Retry-After) for matching requests."""
    arm.throttle(1000, match, **{
        "x-ms-ratelimit-microsoft.costmanagement-clienttype-retry-after": THROTTLE_SECONDS,
        "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": THROTTLE_SECONDS,
    })


def sync_api_calls(arm: FakeArm) -> int:
    return len([r for r in arm.requests if "/providers/microsoft.costmanagement/" in r.path.lower()])


@async_test
async def test_r_fills_an_empty_cache_and_the_overview_equals_the_report(
    arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install_fake_az(tmp_path / "bin", monkeypatch)
    arm.add_scope(SUB, 10, cost_details="ea")
    path = empty_cache_path(tmp_path)
    with opened(path) as cache:
        app = explorer(cache)  # no config.toml yet: nothing starts by itself
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.current_mode == WELCOME_MODE and app.sync_worker is None
            status_lines: list[str] = []
            app.watch(app, "sync_status", lambda line: status_lines.append(line), init=False)

            configure(arm, months=2)  # written while the app runs: R reads it again
            await pilot.press("R")
            await settle(pilot)

            assert app.current_mode == "overview", screen_text(app)
            screen = app.screen
            assert isinstance(screen, OverviewScreen) and screen.overview is not None
            shown = screen.overview
            text = screen_text(app)
            assert "data through 2025-03-14, synced just now" in text
            assert any(n.startswith("Synced 4 month windows") for n in notices(app)), notices(app)
    assert {r.authorization for r in arm.requests if not r.path.startswith("/blobs/")} == {"Bearer cli-fake-token"}
    progress = [line for line in status_lines if line]
    assert any(line.startswith("syncing /subscriptions/00000000… 2025-03 actual · ") and " rows" in line
               for line in progress), progress
    assert any("2025-02 amortized" in line for line in progress), progress
    assert status_lines[-1] == "", "the progress line gives way to the freshness line at the end"

    assert main(["report", "overview", "--cache", str(path), "--format", "json"]) == 0
    [expected] = json.loads(capsys.readouterr().out)["totals"]
    total = shown.total_for("USD")
    assert total is not None
    assert (cents(total.cost), cents(total.previous)) == (expected["cost"], expected["previous_cost"])
    assert total.cost == arm.total(SUB, "amortized", MARCH)  # month to date: everything the fake has for March
    with opened(path) as cache:
        assert month_total(cache, "BilledCost", FEBRUARY) == arm.total(SUB, "actual", FEBRUARY)


@async_test
async def test_progress_and_throttling_show_then_r_twice_cancels_and_keeps_finished_windows(
    arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake_az(tmp_path / "bin", monkeypatch)
    arm.add_scope(SUB, 10, cost_details="ea")
    configure(arm, months=2)

    def after_the_first_report(method: str, path: str) -> bool:
        # The first window (March, actual) goes through; every later report request is throttled.
        return method == "POST" and path.lower().endswith("/generatecostdetailsreport") \
            and len(arm.requests_to("/generateCostDetailsReport", "POST")) > 1

    throttle_reports(arm, after_the_first_report)
    path = empty_cache_path(tmp_path)
    with opened(path) as cache:
        app = explorer(cache)  # an empty cache with scopes configured: the sync starts on launch
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "throttled, retrying in 30 s" in app.sync_status, "the throttled line")
            started = time.monotonic()
            assert app.sync_status == (
                "syncing /subscriptions/00000000… 2025-03 amortized · throttled, retrying in 30 s (1/4)"
            )
            await pilot.pause()
            text = screen_text(app)
            assert "throttled, retrying in 30 s" in text, "the status bar shows it"
            assert "Cancel sync" in text, "the footer offers the cancel key while a sync runs"

            await pilot.press("R")
            await pilot.pause()
            assert app.syncing and "press R again (or ctrl+x) to cancel" in notices(app)[-1]
            await pilot.press("R")
            await settle(pilot)

            assert time.monotonic() - started < 10, "the cancel ends the throttling wait at once"
            assert not app.syncing and app.sync_status == ""
            assert "Sync cancelled: 1 month window" in notices(app)[-1]
            assert app.current_mode == "overview", "the finished window is shown"
            await pilot.press("m")  # the app is still at the user's command
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, OverviewScreen) and screen.overview is not None
            assert screen.overview.metric == "billed"
            total = screen.overview.total_for("USD")
            assert total is not None and total.cost == arm.total(SUB, "actual", MARCH)
            assert "Cancel sync" not in screen_text(app)
    with opened(path) as cache, cache.cursor() as cur:
        assert month_total(cache, "BilledCost", MARCH) == arm.total(SUB, "actual", MARCH)
        assert month_total(cache, "EffectiveCost", MARCH) == 0, "the cancelled window left nothing behind"
        states = cur.execute("SELECT metric, window_start, status FROM sync_state ORDER BY ALL").fetchall()
        assert states == [("actual", MARCH, "done")]


@pytest.mark.parametrize(
    ("hours_old", "max_age_hours", "starts"),
    [(13, None, True), (13, 24, False), (1, None, False)],
    ids=["stale-by-default-12h", "fresh-within-configured-24h", "fresh"],
)
@async_test
async def test_launch_syncs_by_itself_only_when_the_cache_is_older_than_max_age(
    arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hours_old: int, max_age_hours: float | None,
    starts: bool,
) -> None:
    install_fake_az(tmp_path / "bin", monkeypatch)
    arm.add_scope(SUB, 5, cost_details="ea")
    configure(arm, max_age_hours=max_age_hours)
    path = tmp_path / "synced.duckdb"
    with opened(path) as cache:
        fake_arm.sync(arm, cache, months=1, extras=False)
        with cache.write() as cur:
            synced_at = clock.now() - dt.timedelta(hours=hours_old)
            cur.execute("UPDATE sync_state SET last_success = ?", [synced_at])
            cur.execute("UPDATE sources SET imported_at = ?", [synced_at])
    calls_before = sync_api_calls(arm)

    with opened(path) as cache:
        app = explorer(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.current_mode == "overview"
            synced = any(n.startswith("Synced ") for n in notices(app))
            assert (synced, sync_api_calls(arm) > calls_before) == (starts, starts), notices(app)
            # The overview on screen queried again after the sync: its freshness line says so.
            assert ("synced just now" in screen_text(app)) == starts


@async_test
async def test_quitting_mid_sync_stops_it_at_once(
    arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake_az(tmp_path / "bin", monkeypatch)
    arm.add_scope(SUB, 5, cost_details="ea")
    configure(arm)
    throttle_reports(arm, lambda method, path: path.lower().endswith("/generatecostdetailsreport"))
    path = empty_cache_path(tmp_path)
    with opened(path) as cache:
        app = explorer(cache)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "throttled, retrying in 30 s" in app.sync_status, "the throttled line")
            worker = app.sync_worker
            started = time.monotonic()
            await pilot.press("q")
        assert worker is not None and worker.cancelled_event.is_set(), "quitting told the sync thread to stop"
    assert time.monotonic() - started < 10, "the cache closed without waiting out the throttling"
    with opened(path) as cache, cache.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM sync_state WHERE status = 'done'").fetchone() == (0,)


@pytest.mark.parametrize(
    ("kind", "says"),
    [("demo", "This is the demo estate"), ("focus-file", "imported files only")],
)
@async_test
async def test_r_on_a_demo_or_imported_cache_says_what_to_configure_and_never_syncs(
    arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, says: str
) -> None:
    install_fake_az(tmp_path / "bin", monkeypatch)
    arm.add_scope(SUB, 5)
    configure(arm)  # scopes are set, and the cache is stale: still no sync by itself
    path = build_ui_cache(tmp_path / f"{kind}.duckdb", end=TODAY - dt.timedelta(days=1), days=30, kind=kind)
    with opened(path) as cache:
        app = explorer(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert notices(app) == []
            await pilot.press("R")
            await settle(pilot)
            [notice] = notices(app)
            assert says in notice and "[sync] scopes in " in notice
    assert arm.requests == []


@async_test
async def test_not_signed_in_is_one_line_and_the_app_keeps_working(
    arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake_az(tmp_path / "bin", monkeypatch, signed_in=False)
    arm.add_scope(SUB, 5)
    configure(arm)
    with opened(empty_cache_path(tmp_path)) as cache:
        app = explorer(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            errors = [n for n in app._notifications if n.severity == "error"]
            assert [(n.title, n.message) for n in errors] == [("Azure sync failed", NOT_SIGNED_IN)]
            assert app.current_mode == WELCOME_MODE and not app.syncing and app.sync_status == ""
            assert "has no cost data yet" in screen_text(app)
            await pilot.press("a")  # still at the user's command
            await pilot.pause()
            assert "Connect Azure" in [n.title for n in app._notifications]
    assert arm.requests == []


@async_test
async def test_no_access_to_the_scope_is_one_line_and_nothing_else_changes(
    arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake_az(tmp_path / "bin", monkeypatch)
    arm.add_scope(SUB, 5, cost_details="ea")
    configure(arm)
    arm.script.append(ScriptedResponse(
        lambda method, path: "/providers/microsoft.costmanagement/" in path.lower(), 403, {},
        {"error": {"code": "AuthorizationFailed", "message": "The client does not have authorization\nto read."}},
        1000,
    ))
    with opened(empty_cache_path(tmp_path)) as cache:
        app = explorer(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            [(severity, notice)] = [(n.severity, n.message) for n in app._notifications]
            assert severity == "error" and "\n" not in notice
            assert notice == ("Sync failed: /subscriptions/00000000… 2025-03 actual: "
                              "HTTP 403 AuthorizationFailed: The client does not have authorization to read.")
            assert app.current_mode == WELCOME_MODE and not app.syncing


def test_progress_line_names_the_window_rows_and_counter() -> None:
    def line(state: str, rows: int = 12_400) -> str:
        return progress_line(SyncProgress(SUB, "amortized", dt.date(2026, 10, 1), rows, state, 2, 6, "query"))

    assert line("downloading") == "syncing /subscriptions/00000000… 2026-10 amortized · 12,400 rows (2/6)"
    assert line("written") == "syncing /subscriptions/00000000… 2026-10 amortized · 12,400 rows written (2/6)"
    assert line("throttled, retrying in 12 s").endswith("· throttled, retrying in 12 s (2/6)")
    extras = SyncProgress(SUB, None, None, 0, "fetching budgets")
    assert progress_line(extras) == "syncing /subscriptions/00000000… · fetching budgets"
