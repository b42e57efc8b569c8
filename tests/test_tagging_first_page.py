"""The tagging queue answers in two steps: every listed resource with exact totals first, then the suggestions."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from textual.pilot import Pilot

from finops_tui.allocation import queue as queue_module
from finops_tui.allocation.journal import list_edits
from finops_tui.allocation.queue import UnallocatedQueue, unallocated_queue
from finops_tui.basis.money import money
from finops_tui.basis.periods import Period
from finops_tui.store import open_cache
from finops_tui.ui.screens.tagging import TaggingScreen
from tests.test_queue_speed import _reference
from tests.ui_fixtures import (
    TODAY,
    async_test,
    make_app,
    opened,
    screen_text,
    settle,
    usd_cache_copy,
    usd_cache_path,
    wait_until,
    without_prefetch,
)

pytestmark = pytest.mark.today(TODAY)

SIZE = (160, 48)
END = dt.date(2026, 11, 25)
PERIOD = Period(END - dt.timedelta(days=29), END + dt.timedelta(days=1), "30d", END)


def _shape(queue: UnallocatedQueue) -> dict[str, Any]:
    """Everything the screen shows of a queue but the suggestions."""
    return {
        "total": queue.total, "without_resource": queue.without_resource, "resources": queue.resources,
        "currency": queue.currency,
        "items": [(i.resource_id, i.cost, i.name, i.resource_type, i.resource_group, i.subscription_id,
                   i.subscription_name, i.host_id) for i in queue.items],
        "subscriptions": [(s.subscription_id, s.subscription_name, s.cost, s.resources,
                           [(g.resource_group, g.cost, g.resources, [i.resource_id for i in g.items])
                            for g in s.groups]) for s in queue.subscriptions],
    }


def _suggestions(queue: UnallocatedQueue) -> dict[str, list[tuple[str, str, str]]]:
    return {i.resource_id: [(s.value, s.kind, s.reason) for s in i.suggestions] for i in queue.items}


def _independent_total(cur: duckdb.DuckDBPyConnection, key: str, period: Period) -> Decimal:
    """The period's USD cost of every charge whose owning resource has no value for `key` (or no resource)."""
    row = cur.execute(
        """SELECT sum(c.EffectiveCost) FROM charges c
           WHERE c.x_ChargeDate >= ? AND c.x_ChargeDate < ? AND c.BillingCurrency = 'USD'
             AND NOT EXISTS (SELECT 1 FROM resource_tags t WHERE t.resource_key = c.x_ResourceKey AND t.tag_key = ?)""",
        [period.start, period.end, key],
    ).fetchone()
    assert row is not None
    return Decimal(row[0])


# --------------------------------------------------------------------------------------------------
# the read model


@pytest.mark.parametrize("limit", [None, 7])
def test_the_listed_step_has_every_figure_but_the_suggestions(limit: int | None) -> None:
    listed: list[UnallocatedQueue] = []
    with open_cache(usd_cache_path(), read_only=True) as cache, cache.cursor() as cur:
        queue = unallocated_queue(cur, "team", PERIOD, "effective", "USD", limit=limit, on_listed=listed.append)
        plain = unallocated_queue(cur, "team", PERIOD, "effective", "USD", limit=limit)
        independent = _independent_total(cur, "team", PERIOD)
    [first] = listed
    assert not first.suggested and queue.suggested and plain.suggested
    assert all(item.suggestions == () for item in first.items)
    assert _shape(first) == _shape(queue) == _shape(plain)
    assert _suggestions(queue) == _suggestions(plain)
    assert any(item.suggestions for item in queue.items)
    # Exact from the first step: the total is an independent SQL sum, to the cent and beyond.
    assert first.total == independent
    assert first.total == sum((s.cost for s in first.subscriptions), Decimal(0)) + first.without_resource
    if limit is not None:
        assert len(first.items) == limit < first.resources


def test_costs_keep_the_scale_duckdb_gives_them() -> None:
    """A cost read as text keeps its twelve decimals (the CSV export writes `format(cost, "f")`)."""
    with open_cache(usd_cache_path(), read_only=True) as cache, cache.cursor() as cur:
        queue = unallocated_queue(cur, "team", PERIOD, "effective", "USD", limit=20)
        reference = _reference(cur, "team", PERIOD, "effective", "USD", 20)
    assert [str(item.cost) for item in queue.items] == [str(row[1]) for row in reference["rows"]]
    assert [str(g.cost) for s in queue.subscriptions for g in s.groups]  # subtotals are Decimals too
    assert all(isinstance(g.cost, Decimal) for s in queue.subscriptions for g in s.groups)


def test_a_caller_that_stops_after_the_listed_step_leaves_no_temp_tables() -> None:
    class Stop(Exception):
        pass

    def stop(queue: UnallocatedQueue) -> None:
        raise Stop

    with open_cache(usd_cache_path(), read_only=True) as cache, cache.cursor() as cur:
        with pytest.raises(Stop):
            unallocated_queue(cur, "team", PERIOD, "effective", "USD", limit=5, on_listed=stop)
        temp = cur.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    assert temp == []


# --------------------------------------------------------------------------------------------------
# the screen


@pytest.fixture(autouse=True)
def _no_prefetch(monkeypatch: pytest.MonkeyPatch) -> None:
    without_prefetch(monkeypatch, "overview")


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return usd_cache_copy(tmp_path)


class HeldSuggestions:
    """Holds the screen's suggestion steps (the second; in the app's worker threads) until `release()`; the listed
    step runs as shipped, and so does the test's own reading of the queue."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.go = threading.Event()
        shipped = queue_module._suggest
        test_thread = threading.get_ident()

        def held(cur: duckdb.DuckDBPyConnection, key: str) -> Any:
            if threading.get_ident() != test_thread:
                self.entered.set()
                self.go.wait(30)
            return shipped(cur, key)

        monkeypatch.setattr(queue_module, "_suggest", held)

    def release(self) -> None:
        self.go.set()


async def _open_listed(app: Any, pilot: Pilot[Any]) -> TaggingScreen:
    """Key 4 from the overview, once the Tagging screen holds its queue's listed step."""
    await settle(pilot)
    await pilot.press("4")
    await wait_until(pilot, lambda: isinstance(app.screen, TaggingScreen) and app.screen.queue is not None,
                     "the listed step")
    screen = app.screen
    assert isinstance(screen, TaggingScreen)
    return screen


def _notes(app: Any) -> str:
    return " ".join(str(n.message) for n in app._notifications)


@async_test
async def test_the_queue_paints_before_its_suggestions(cache_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    held = HeldSuggestions(monkeypatch)
    with opened(cache_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            screen = await _open_listed(app, pilot)
            assert screen.queue is not None
            assert held.entered.is_set() and not screen.queue.suggested
            assert screen.period is not None
            with cache.cursor() as cur:
                complete = unallocated_queue(cur, "team", screen.period, "effective", "USD", limit=5000)
                independent = _independent_total(cur, "team", screen.period)
            # Every listed row and the exact totals are on screen; the suggestions are pending, not "none".
            assert _shape(screen.queue) == _shape(complete)
            assert screen.queue.total == independent
            assert not screen.table.loading
            await pilot.pause()
            text = screen_text(app)
            assert money(complete.total, "USD") in text
            assert "tagged resources in" not in text and "…" in text

            # Keys work on the listed rows: a mark and the cursor survive the suggestions' arrival.
            await pilot.press("space")
            marked = set(screen.table.marked)
            cursor = screen.table.cursor_item
            assert len(marked) == 1 and cursor is not None
            await pilot.press("y")  # nothing is applied from suggestions not yet known
            await pilot.pause()
            assert "still" in _notes(app)
            with cache.cursor() as cur:
                assert list_edits(cur) == []

            held.release()
            await wait_until(pilot, lambda: screen.queue is not None and screen.queue.suggested, "the suggestions")
            await settle(pilot)
            assert _suggestions(screen.queue) == _suggestions(complete)
            assert screen.table.marked == marked
            assert screen.table.cursor_item is not None and screen.table.cursor_item.resource_id == cursor.resource_id
            assert "tagged resources in" in screen_text(app)


@async_test
async def test_the_suggestions_of_a_superseded_request_never_land(cache_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    held = HeldSuggestions(monkeypatch)
    with opened(cache_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            screen = await _open_listed(app, pilot)
            await pilot.press("m")  # BilledCost: a newer request
            held.release()
            await settle(pilot)
            assert screen.queue is not None and screen.queue.suggested and screen.period is not None
            with cache.cursor() as cur:
                billed = unallocated_queue(cur, "team", screen.period, "billed", "USD", limit=5000)
            assert _shape(screen.queue) == _shape(billed)
            assert _suggestions(screen.queue) == _suggestions(billed)
            assert screen.shown_state is not None and screen.shown_state[1] == "billed"


@async_test
async def test_the_first_load_reads_loading_not_an_empty_queue(cache_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """No overlay before the first answer (it cost two footer rebuilds): the empty table itself says "loading…"."""
    import finops_tui.ui.screens.tagging as tagging

    go = threading.Event()
    shipped = tagging.tag_values

    def held(cur: duckdb.DuckDBPyConnection, key: str) -> list[str]:
        go.wait(30)
        return shipped(cur, key)

    monkeypatch.setattr(tagging, "tag_values", held)
    with opened(cache_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("4")
            await wait_until(pilot, lambda: isinstance(app.screen, TaggingScreen), "the tagging screen")
            screen = app.screen
            assert isinstance(screen, TaggingScreen)
            try:
                await pilot.pause(0.3)  # past the loading delay
                text = screen_text(app)
                assert screen.queue is None and not screen.table.loading
                assert "has a value for team" not in text
                assert screen.table.render_line(1).text.strip() == "loading…"
            finally:
                go.set()
            await wait_until(pilot, lambda: screen.queue is not None and screen.queue.suggested, "the queue")
            assert screen.table.render_line(1).text.strip() != "loading…"
