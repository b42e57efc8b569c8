"""Period parsing, anchoring on the data's last day, and the comparison period."""

from __future__ import annotations

import datetime as dt

import pytest

from finops_tui.basis.periods import parse_period
from finops_tui.errors import UsageError

TODAY = dt.date(2026, 11, 27)
FRESH_END = dt.date(2026, 11, 26)


@pytest.mark.parametrize(
    ("spec", "start", "end", "prev_start", "prev_end"),
    [
        ("mtd", "2026-11-01", "2026-11-27", "2026-10-01", "2026-10-27"),
        ("last-month", "2026-10-01", "2026-11-01", "2026-09-01", "2026-10-01"),
        ("30d", "2026-10-28", "2026-11-27", "2026-09-28", "2026-10-28"),
        ("90d", "2026-08-29", "2026-11-27", "2026-05-31", "2026-08-29"),
        ("2026-01-01..2026-02-01", "2026-01-01", "2026-02-01", "2025-12-01", "2026-01-01"),
        ("2026-01-10..2026-01-20", "2026-01-10", "2026-01-20", "2025-12-31", "2026-01-10"),
    ],
)
def test_periods_on_fresh_data(spec: str, start: str, end: str, prev_start: str, prev_end: str) -> None:
    period = parse_period(spec, today=TODAY, data_start=dt.date(2025, 11, 1), data_end=FRESH_END)
    assert (period.start.isoformat(), period.end.isoformat()) == (start, end)
    previous = period.previous()
    assert (previous.start.isoformat(), previous.end.isoformat()) == (prev_start, prev_end)
    assert not period.anchored_on_data


def test_old_data_anchors_relative_periods() -> None:
    period = parse_period("mtd", today=TODAY, data_end=dt.date(2026, 5, 28))
    assert period.anchored_on_data
    assert (period.start, period.end) == (dt.date(2026, 5, 1), dt.date(2026, 5, 29))
    assert period.label() == "May 2026 to date"


def test_mtd_compares_with_at_most_the_whole_previous_month() -> None:
    period = parse_period("mtd", today=dt.date(2026, 3, 31), data_end=dt.date(2026, 3, 30))
    previous = period.previous()
    assert (previous.start, previous.end) == (dt.date(2026, 2, 1), dt.date(2026, 3, 1))


def test_all_covers_the_data() -> None:
    period = parse_period("all", today=TODAY, data_start=dt.date(2025, 1, 3), data_end=FRESH_END)
    assert (period.start, period.end) == (dt.date(2025, 1, 3), dt.date(2026, 11, 27))


@pytest.mark.parametrize("spec", ["yesterday", "2026-02-01..2026-01-01", "2026-13-01..2026-14-01", "0d"])
def test_bad_periods_say_what_is_expected(spec: str) -> None:
    with pytest.raises(UsageError, match="--period"):
        parse_period(spec, today=TODAY)
