"""Shared UI test data: small realistic caches built with SQL, a pinned clock, and app factories."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import html
import re
import shutil
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Any, ParamSpec

import pytest
from textual.app import App, ScreenStackError
from textual.pilot import Pilot
from textual.widgets import Footer
from textual.worker import Worker, WorkerCancelled

from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.config import Config
from finops_tui.store import Cache, open_cache
from finops_tui.store.sources import Window, begin_window, finish_window
from finops_tui.ui import app as app_module
from finops_tui.ui.app import FinopsApp
from finops_tui.ui.launch import close_when_idle
from finops_tui.ui.screens.allocation import AllocationScreen
from finops_tui.ui.screens.base import FinopsScreen
from finops_tui.ui.screens.overview import OverviewScreen
from finops_tui.ui.screens.recommendations import RecommendationsScreen

TODAY = dt.date(2026, 11, 26)  # a Thursday; fresh data ends the day before
DATA_END = dt.date(2026, 11, 25)
OLD_DATA_END = dt.date(2026, 5, 28)
LOADED_AT = dt.datetime(2026, 11, 26, 6, 30)
NOW = dt.datetime(2026, 11, 26, 9, 30)  # three hours after the sync


def fixed_now() -> dt.datetime:
    return NOW


def build_ui_cache(path: Path, *, end: dt.date = DATA_END, days: int = 150, with_eur: bool = False,
                   kind: str = "sync-query") -> Path:
    """~90 resources over `days` days ending `end`: 8 services, 3 subscriptions, 7 resource groups,
    teams tagged on most resources, weekend dips, and one resource group growing in the last 3 weeks.
    With `with_eur`, a fourth subscription bills in EUR (never added to USD)."""
    start = end - dt.timedelta(days=days - 1)
    with open_cache(path) as cache_file, cache_file.write() as cur:
        export_path = "/exports/contoso-focus-2026-05.csv" if kind == "focus-file" else None
        window = Window(kind, "/subscriptions/test", "focus", start, end + dt.timedelta(days=1), path=export_path)
        source_id = begin_window(cur, window)
        cur.execute(
            """
            INSERT INTO charges (ChargePeriodStart, ChargePeriodEnd, x_ChargeDate, ResourceId, ResourceName,
                ServiceName, ServiceCategory, SubAccountId, SubAccountName, x_ResourceGroupName, RegionId,
                RegionName, BillingCurrency, EffectiveCost, BilledCost, ChargeCategory, Tags, source_id)
            SELECT d::TIMESTAMP, (d + 1)::TIMESTAMP, d,
                   '/subscriptions/sub-' || sub || '/resourcegroups/' || rg || '/providers/x/r' || r,
                   'res-' || r, service, category, 'sub-' || sub,
                   ['Production', 'Development', 'Shared Services', 'Europe'][sub + 1], rg,
                   'westeurope', 'West Europe', CASE WHEN sub = 3 THEN 'EUR' ELSE 'USD' END,
                   cost::DECIMAL(38, 12),
                   (cost * CASE WHEN service = 'Virtual Machines' THEN 1.25 ELSE 1 END)::DECIMAL(38, 12),
                   'Usage', tags, $sid
            FROM (
                SELECT r, d,
                       CASE WHEN $eur THEN r % 4 ELSE r % 3 END AS sub,
                       ['Virtual Machines', 'Storage', 'Azure SQL Database', 'Azure Kubernetes Service',
                        'Key Vault', 'Bandwidth', 'Azure Monitor', 'Azure Cosmos DB'][1 + r % 8] AS service,
                       ['Compute', 'Storage', 'Databases', 'Compute', 'Security', 'Networking',
                        'Management and Governance', 'Databases'][1 + r % 8] AS category,
                       ['rg-checkout', 'rg-search', 'rg-data', 'rg-platform', 'rg-web', 'rg-ml', 'rg-shared'][1 + r % 7]
                           AS rg,
                       CASE WHEN r % 9 = 0 THEN NULL::MAP(VARCHAR, VARCHAR)
                            ELSE MAP {'team': ['payments', 'search', 'data', 'platform', 'web'][1 + r % 5]} END AS tags,
                       round((2 + (r % 13) * 1.7) * (0.85 + (hash(r, d) % 300) / 1000.0)
                             * CASE WHEN dayofweek(d) IN (0, 6) THEN 0.7 ELSE 1 END
                             * CASE WHEN r % 7 = 5 AND d > $end - 21 THEN 2.5 ELSE 1 END, 4) AS cost
                FROM range(90) t(r), (SELECT ($start + i::INTEGER) AS d FROM range($days) u(i))
            )
            """,
            {"start": start, "end": end, "days": days, "sid": source_id, "eur": with_eur},
        )
        finish_window(cur, source_id)
        refresh_derived(cur, TagPolicy())
        cur.execute("UPDATE sources SET imported_at = ? WHERE source_id = ?", [LOADED_AT, source_id])
    return path


_ROOT = Path(tempfile.mkdtemp(prefix="finops-ui-tests-"))


@cache
def usd_cache_path() -> Path:
    """Built once per test process (xdist workers each build their own)."""
    return build_ui_cache(_ROOT / "usd.duckdb")


def usd_cache_copy(folder: Path) -> Path:
    """A copy of the shared small USD cache in `folder`, for a test that writes (tags, edits)."""
    path = folder / "usd.duckdb"
    shutil.copyfile(usd_cache_path(), path)
    return path


@cache
def two_currency_cache_path() -> Path:
    return build_ui_cache(_ROOT / "usd-eur.duckdb", with_eur=True)


@cache
def old_data_cache_path() -> Path:
    return build_ui_cache(_ROOT / "old.duckdb", end=OLD_DATA_END, days=90, kind="focus-file")


def empty_cache_path(folder: Path) -> Path:
    path = folder / "empty.duckdb"
    open_cache(path).close()
    return path


class QuietOverview(OverviewScreen):
    """The overview without prefetch: fewer workers for a test to wait for."""

    def __init__(self) -> None:
        super().__init__(prefetch=False)


class QuietAllocation(AllocationScreen):
    """The allocation tree without prefetch: each expansion runs its own query."""

    def __init__(self) -> None:
        super().__init__(prefetch=False)


class StoredRecommendations(RecommendationsScreen):
    """The recommendations showing the stored run, without running the generators again on open."""

    def __init__(self) -> None:
        super().__init__(refresh_on_open=False)


QUIET_SCREENS: dict[str, type[FinopsScreen]] = {
    "overview": QuietOverview, "allocation": QuietAllocation, "recommendations": StoredRecommendations,
}


def without_prefetch(monkeypatch: pytest.MonkeyPatch, *modes: str) -> None:
    """The app makes the views of `modes` without background work (their screens registered in `VIEW_SCREENS`):
    the overview and the allocation tree without prefetch, the recommendations without a run on open."""
    for mode in modes:
        monkeypatch.setitem(app_module.VIEW_SCREENS, mode, QUIET_SCREENS[mode])


def make_app(cache_file: Cache, *, config: Config | None = None) -> FinopsApp:
    return FinopsApp(cache_file, config=config or Config(), now=fixed_now, demo_end=DATA_END)


@contextmanager
def opened(path: Path) -> Iterator[Cache]:
    """The cache at `path` as the explorer opens it (read-only between writes), closed afterwards."""
    cache_file = open_cache(path, shared=True)
    try:
        yield cache_file
    finally:
        close_when_idle(cache_file)


async def settle(pilot: Pilot[Any]) -> None:
    """Let every worker finish (a cancelled one counts as finished) and the screen repaint, until no worker runs.

    One round is not enough: a worker's answer is handled during the repaint and may start the next worker
    (the allocation tree loads a slice, then expands it), and `pause` only waits while the process looks busy.
    Nor is a finished worker: its answer may post messages that bubble up (the explain screen's waterfall
    highlights a bucket, then the screen lists its contributors), so it also waits until no message waits.
    """
    await pilot.pause()
    for _ in range(_SETTLE_ROUNDS):
        if not (_running(pilot.app) or _messages_waiting(pilot.app)):
            return
        await wait_for_workers(pilot.app)
        await pilot.pause()


async def settle_footer(pilot: Pilot[Any]) -> None:
    """`settle`, then the two refreshes the footer needs to show the screen's keys: the screen republishes its
    bindings after one refresh, and the footer recomposes after the next."""
    await settle(pilot)
    await pilot.app.screen.wait_for_refresh()
    for footer in pilot.app.screen.query(Footer):
        await footer.wait_for_refresh()
    await pilot.pause()


async def wait_for_workers(app: App[Any]) -> None:
    """Wait for the running workers, including the ones they start (a prefetch chain), not cancelled ones."""
    while running := _running(app):
        with suppress(WorkerCancelled):  # cancelled while we waited: it no longer matters
            await app.workers.wait_for_complete(running)
        await asyncio.sleep(0)


def _running(app: App[Any]) -> list[Worker[Any]]:
    return [w for w in app.workers if not w.is_finished and not w.is_cancelled]


_SETTLE_ROUNDS = 200  # a blinking cursor or a spinner posts now and then: never wait for them forever


def _messages_waiting(app: App[Any]) -> bool:
    """Whether the app or a widget of its screen has a message not yet handled (Textual has no public way to ask)."""
    try:
        nodes = [app, *app.screen.walk_children(with_self=True)]
    except ScreenStackError:  # the app is closing: nothing is left to wait for
        return False
    return any(not node._message_queue.empty() for node in nodes)


def screen_text(app: App[Any]) -> str:
    """The text on screen (from the SVG screenshot), for `in` checks of rendered figures.

    Runs of whitespace, line breaks included, become one space: a sentence wrapped at the screen's
    edge still matches.
    """
    svg = app.export_screenshot()
    body = svg[svg.find("<g"):] if "<g" in svg else svg
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", body)).replace("\xa0", " ").split())


async def wait_for_text(pilot: Pilot[Any], *texts: str, timeout: float = 20.0) -> str:
    """The screen's text once it shows every one of `texts` (a worker's answer may be handled after `settle`
    returns, when the worker is finished but its message not yet painted); fails after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await settle(pilot)
        text = screen_text(pilot.app)
        if all(t in text for t in texts) or asyncio.get_running_loop().time() > deadline:
            return text
        await pilot.pause(0.05)


async def wait_until(pilot: Pilot[Any], condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Let the app run until `condition()` holds, without waiting for the workers (for a test that holds one
    back); fails after `timeout` seconds naming `what` and the screen's text."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; on screen: {screen_text(pilot.app)}")
        await pilot.pause(0.02)


P = ParamSpec("P")


def async_test(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an `async def` test on a fresh event loop (no pytest-asyncio needed); fixtures still apply."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return run
