"""The one clock: "today" comes from here so tests and demos can pin it."""

from __future__ import annotations

import datetime as dt
import os

_pinned: dt.date | None = None


def today() -> dt.date:
    """Today's date, pinned by `pin()` or the FINOPS_TUI_TODAY environment variable (ISO date)."""
    if _pinned is not None:
        return _pinned
    env = os.environ.get("FINOPS_TUI_TODAY")
    if env:
        return dt.date.fromisoformat(env)
    return dt.date.today()


def now() -> dt.datetime:
    """The current UTC time, naive, consistent with `today()` when that is pinned."""
    real = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    pinned = today()
    if pinned != real.date():
        return dt.datetime.combine(pinned, real.time())
    return real


def pin(day: dt.date | None) -> None:
    """Pin today's date (None unpins)."""
    global _pinned
    _pinned = day
