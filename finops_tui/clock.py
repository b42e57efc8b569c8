"""The one clock: aware UTC instants and the user's "today", both pinnable for tests and demos.

Timestamps are aware UTC in Python and naive UTC in the cache's TIMESTAMP columns (the cache's cursors run
with TimeZone UTC, so an aware value is stored as its UTC wall time); `as_utc` reads a stored value back.
Local time is for display only.
"""

from __future__ import annotations

import datetime as dt
import os

from finops_tui.errors import UserError

_pinned: dt.date | None = None


def today() -> dt.date:
    """The user's local calendar date, pinned by `pin()` or the FINOPS_TUI_TODAY environment variable (ISO)."""
    pinned = _pinned_day()
    return pinned if pinned is not None else dt.date.today()


def now() -> dt.datetime:
    """The current instant, aware UTC. With today pinned: the current local time of day on that local date."""
    real = dt.datetime.now(dt.UTC)
    pinned = _pinned_day()
    if pinned is None:
        return real
    local = real.astimezone()
    if local.date() == pinned:
        return real
    # A naive local wall time on the pinned day; astimezone() reads naive values as local time.
    return dt.datetime.combine(pinned, local.time()).astimezone(dt.UTC)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """An aware UTC datetime from a stored (naive UTC) or any aware value."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def pin(day: dt.date | None) -> None:
    """Pin today's date (None unpins)."""
    global _pinned
    _pinned = day


def _pinned_day() -> dt.date | None:
    if _pinned is not None:
        return _pinned
    env = os.environ.get("FINOPS_TUI_TODAY")
    if not env:
        return None
    try:
        return dt.date.fromisoformat(env)
    except ValueError:
        raise UserError(f"FINOPS_TUI_TODAY={env!r}: not a date; use YYYY-MM-DD or unset it") from None
