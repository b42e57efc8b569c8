"""The clock is aware UTC whatever the local time zone; stored timestamps stay naive UTC."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from finops_tui import clock
from finops_tui.store import open_cache
from finops_tui.sync.engine import cache_age


@pytest.fixture
def far_from_utc() -> Iterator[str]:
    """A local time zone whose date differs from UTC's right now (UTC+14 late in the UTC day, UTC-12 early)."""
    zone = "Etc/GMT-14" if dt.datetime.now(dt.UTC).hour >= 10 else "Etc/GMT+12"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", zone)
        time.tzset()
        assert dt.date.today() != dt.datetime.now(dt.UTC).date(), "the fixture must pick a zone on another date"
        yield zone
    time.tzset()


def test_now_is_aware_utc_when_the_local_date_differs(far_from_utc: str) -> None:
    real = dt.datetime.now(dt.UTC)
    now = clock.now()
    assert now.tzinfo is not None and now.utcoffset() == dt.timedelta(0)
    assert abs(now - real) < dt.timedelta(minutes=1)  # was off by a whole day: local date + UTC time
    assert now.astimezone().date() == clock.today() == dt.date.today()


def test_a_pinned_day_moves_now_to_that_local_day(far_from_utc: str) -> None:
    pinned = dt.date(2026, 3, 1)
    clock.pin(pinned)
    try:
        now = clock.now()
        assert now.utcoffset() == dt.timedelta(0)
        assert now.astimezone().date() == pinned == clock.today()
        shown, local_now = now.astimezone(), dt.datetime.now().astimezone()
        apart = abs(_seconds_of_day(shown) - _seconds_of_day(local_now))
        assert min(apart, 86400 - apart) < 60  # the time of day is the real one
    finally:
        clock.pin(None)


def _seconds_of_day(moment: dt.datetime) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def test_as_utc_reads_naive_stored_values_as_utc() -> None:
    stored = dt.datetime(2026, 1, 1, 12, 0)
    assert clock.as_utc(stored) == dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    aware = dt.datetime(2026, 1, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert clock.as_utc(aware) == dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def test_the_cache_stores_and_casts_in_utc_whatever_the_local_zone(far_from_utc: str, tmp_path: Path) -> None:
    moment = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    with open_cache(tmp_path / "c.duckdb") as cache, cache.cursor() as cur:
        cur.execute("CREATE TABLE t (happened TIMESTAMP)")
        cur.execute("INSERT INTO t VALUES (?)", [moment])
        assert cur.execute("SELECT happened FROM t").fetchone() == (dt.datetime(2026, 1, 1, 12, 0),)
        # Imports read FOCUS timestamps with an offset through TIMESTAMPTZ: the day must not move.
        midnight = cur.execute("SELECT CAST(TRY_CAST('2026-01-01T00:00:00Z' AS TIMESTAMPTZ) AS TIMESTAMP)").fetchone()
        assert midnight == (dt.datetime(2026, 1, 1, 0, 0),)


def test_cache_age_compares_utc_with_utc(far_from_utc: str, tmp_path: Path) -> None:
    two_hours_ago = clock.now() - dt.timedelta(hours=2)
    with open_cache(tmp_path / "c.duckdb") as cache:
        with cache.cursor() as cur:
            cur.execute(
                "INSERT INTO sync_state (scope, metric, window_start, window_end, status, rows, api_path, last_success)"
                " VALUES ('/subscriptions/x', 'actual', DATE '2026-01-01', DATE '2026-02-01', 'done', 1, 'query', ?)",
                [two_hours_ago],
            )
        age = cache_age(cache)
    assert age is not None and dt.timedelta(hours=1, minutes=59) < age < dt.timedelta(hours=2, minutes=1)
