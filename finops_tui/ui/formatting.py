"""Words and cells for people: freshness, relative times, periods, signed money and coloured changes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from rich.style import Style
from rich.text import Text
from textual.app import App
from textual.color import Color

from finops_tui import clock
from finops_tui.basis.money import change_percent, money, shown_change
from finops_tui.basis.periods import Period
from finops_tui.errors import UserError
from finops_tui.store.sources import Freshness

METRIC_LABELS = {"effective": "EffectiveCost (amortized)", "billed": "BilledCost (actual)"}
METRIC_SHORT = {"effective": "amortized", "billed": "actual"}
FILE_KINDS = ("focus-file", "azure-export", "file", "import")

PERIOD_CHOICES: tuple[tuple[str, str], ...] = (
    ("mtd", "Month to date"),
    ("last-month", "Last month"),
    ("30d", "Last 30 days"),
    ("90d", "Last 90 days"),
    ("all", "All data in the cache"),
)


def ago(then: dt.datetime, now: dt.datetime) -> str:
    """`just now`, `2 min ago`, `3 h ago`, `4 days ago` (naive values are UTC, as stored in the cache)."""
    seconds = (clock.as_utc(now) - clock.as_utc(then)).total_seconds()
    if seconds < 60:
        return "just now"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min ago"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h ago"
    return f"{hours // 24} days ago"


def freshness_line(fresh: Freshness, now: dt.datetime) -> str:
    """Where the data came from and how old it is, e.g. `data through 2026-11-25, synced 3 h ago`."""
    if fresh.data_end is None:
        return "no cost data yet"
    through = f"data through {fresh.data_end.isoformat()}"
    when = ago(fresh.last_loaded_at, now) if fresh.last_loaded_at else None
    kind = (fresh.last_kind or "").lower()
    if kind == "demo":
        return f"demo estate, {through}, built {when}" if when else f"demo estate, {through}"
    if kind.startswith("sync"):
        source = {"sync-export": "an export", "sync-hub": "the hub"}.get(kind, "the API")
        return f"{through}, synced {when} from {source}" if when else f"{through}, from {source}"
    if fresh.last_path:
        source = f"imported from {Path(fresh.last_path).name}"
        return f"{through}, {source}, {when}" if when else f"{through}, {source}"
    if kind in FILE_KINDS:
        return f"{through}, imported {when}" if when else through
    return f"{through}, loaded {when}" if when else through


def old_data_notice(period: Period, fresh: Freshness) -> str | None:
    """`data ends 2026-05-28; showing May 2026 to date` when relative periods moved back to the data."""
    if not period.anchored_on_data or fresh.data_end is None:
        return None
    return f"data ends {fresh.data_end.isoformat()}; showing {period.label()}"


def short_path(path: Path | None) -> str:
    """The cache path with the home directory shown as `~`."""
    if path is None:
        return "in-memory cache"
    try:
        return "~/" + str(path.expanduser().resolve().relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)


def span_text(period: Period, *, year: bool = True) -> str:
    """`Nov 1 – 25, 2026`: the days covered, END shown inclusive for people."""
    first, last = period.start, period.last_day
    suffix = f", {last.year}" if year else ""
    if first == last:
        return f"{first:%b} {first.day}{suffix}"
    if first.year != last.year:
        return f"{first:%b} {first.day}, {first.year} – {last:%b} {last.day}, {last.year}"
    if first.month == last.month:
        return f"{first:%b} {first.day} – {last.day}{suffix}"
    return f"{first:%b} {first.day} – {last:%b} {last.day}{suffix}"


def period_title(period: Period) -> str:
    """`November 2026 to date`, `Last 30 days`, `2026-09-01 .. 2026-10-15` (END exclusive, as typed)."""
    label = period.label()
    if period.spec == "all":
        return "All data"
    return label[:1].upper() + label[1:]


def truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def money_cell(amount: Decimal, *, style: Style | str = "") -> Text:
    """A right-aligned money cell with thousands separators and cents, so columns line up."""
    return Text(money(amount), style=style, justify="right")


def change_cells(current: Decimal, previous: Decimal, *, increase: Style, decrease: Style) -> tuple[Text, Text]:
    """The signed change and its percentage, coloured: cost going up is bad news, going down good.

    The change is the shown cost minus the shown previous cost (report.money), as in every report.
    """
    change = shown_change(current, previous)
    style = increase if change > 0 else decrease if change < 0 else Style()
    return (Text(money(change, signed=True), style=style, justify="right"),
            Text(change_percent(current, previous), style=style, justify="right"))


def change_styles(app: App[object]) -> tuple[Style, Style]:
    """(increase, decrease) styles from the theme: error and success colours, lighter on dark themes."""
    variables = app.theme_variables
    prefix = "text-" if app.current_theme.dark else ""
    return (
        Style(color=Color.parse(variables[f"{prefix}error"]).rich_color),
        Style(color=Color.parse(variables[f"{prefix}success"]).rich_color),
    )


def failure_line(error: BaseException | None) -> str:
    """A UserError's own message, else the error type and the first line of its message."""
    if error is None:
        return "failed"
    message = str(error).strip()
    if isinstance(error, UserError) and message:
        return message.splitlines()[0]
    return f"{type(error).__name__}: {message.splitlines()[0]}" if message else type(error).__name__
