"""Reporting periods: parsing `--period`, anchoring relative periods on the last day with data."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

import duckdb

from finops_tui import clock
from finops_tui.errors import UsageError
from finops_tui.store.sources import Freshness, freshness

ONE_DAY = dt.timedelta(days=1)
RELATIVE_PERIODS = ("mtd", "last-month", "30d", "90d", "all")


@dataclass(frozen=True)
class Period:
    """Days [start, end): END is exclusive, as in FOCUS."""

    start: dt.date
    end: dt.date
    spec: str  # what the user asked for: mtd, last-month, 30d, 90d, all, or START..END
    anchor: dt.date  # the last day relative periods count back from
    anchored_on_data: bool = False  # True when the data ends before yesterday and periods moved with it

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def last_day(self) -> dt.date:
        return self.end - ONE_DAY

    def previous(self) -> Period:
        """The comparable span just before: month-aligned periods compare with the previous month."""
        if self.spec == "mtd":
            prev_start = _add_months(self.start, -1)
            month_days = calendar.monthrange(prev_start.year, prev_start.month)[1]
            prev_end = prev_start + dt.timedelta(days=min(self.days, month_days))
            return Period(prev_start, prev_end, "previous", self.anchor)
        if self.spec == "last-month" or (self.start.day == 1 and self.end == _add_months(self.start, 1)):
            return Period(_add_months(self.start, -1), self.start, "previous", self.anchor)
        return Period(self.start - dt.timedelta(days=self.days), self.start, "previous", self.anchor)

    def label(self) -> str:
        if self.spec == "mtd":
            return f"{self.start:%B %Y} to date"
        if self.spec == "last-month":
            return f"{self.start:%B %Y}"
        if self.spec in ("30d", "90d"):
            return f"last {self.days} days"
        return f"{self.start.isoformat()} .. {self.end.isoformat()}"

    def describe(self) -> str:
        """e.g. "November 2026 to date (2026-11-01 .. 2026-11-27)": END shown exclusive; a range once."""
        dates = f"{self.start.isoformat()} .. {self.end.isoformat()}"
        label = self.label()
        if self.spec == "all":
            return f"all data ({dates})"
        return dates if label == dates else f"{label} ({dates})"  # START..END: the label is the range already


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def anchor_day(today: dt.date, data_end: dt.date | None) -> tuple[dt.date, bool]:
    """The last day periods count back from, and whether it moved because the data is old.

    Cost data normally lags a day, so fresh data ends yesterday; data that ends earlier (a colleague's
    snapshot, an old export) anchors periods on its own last day so they are not empty.
    """
    yesterday = today - ONE_DAY
    if data_end is None or data_end >= yesterday:
        return yesterday, False
    return data_end, True


def parse_period(
    spec: str, *, today: dt.date, data_start: dt.date | None = None, data_end: dt.date | None = None
) -> Period:
    text = spec.strip().lower()
    anchor, anchored = anchor_day(today, data_end)
    if text == "mtd":
        return Period(anchor.replace(day=1), anchor + ONE_DAY, "mtd", anchor, anchored)
    if text in ("last-month", "lastmonth", "lm"):
        this_month = anchor.replace(day=1)
        return Period(_add_months(this_month, -1), this_month, "last-month", anchor, anchored)
    if text.endswith("d") and text[:-1].isdigit():
        days = int(text[:-1])
        if days <= 0:
            raise UsageError(f"--period {spec}: the number of days must be positive, e.g. 30d")
        end = anchor + ONE_DAY
        return Period(end - dt.timedelta(days=days), end, f"{days}d", anchor, anchored)
    if text == "all":
        start = data_start or anchor
        end = (data_end + ONE_DAY) if data_end else anchor + ONE_DAY
        return Period(start, end, "all", anchor, False)
    if ".." in text:
        left, right = text.split("..", 1)
        try:
            start, end = dt.date.fromisoformat(left), dt.date.fromisoformat(right)
        except ValueError:
            raise UsageError(
                f"--period {spec}: expected START..END as YYYY-MM-DD..YYYY-MM-DD (END exclusive)"
            ) from None
        if end <= start:
            raise UsageError(f"--period {spec}: END must be after START (END is exclusive)")
        return Period(start, end, f"{start}..{end}", anchor, False)
    raise UsageError(
        f"--period {spec}: expected mtd, last-month, 30d, 90d, all or START..END (YYYY-MM-DD, END exclusive)"
    )


def resolve_period(cur: duckdb.DuckDBPyConnection, spec: str) -> tuple[Period, Freshness]:
    """`spec` as a period of this cache: relative periods anchor on its last day with data when that is old."""
    fresh = freshness(cur)
    return parse_period(spec, today=clock.today(), data_start=fresh.data_start, data_end=fresh.data_end), fresh
