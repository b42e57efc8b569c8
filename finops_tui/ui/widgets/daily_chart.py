"""Daily cost bar chart drawn with Unicode eighth blocks, with a day cursor (left/right or h/l)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip

from finops_tui.basis.money import money
from finops_tui.ui.widgets.drawn_lines import DrawnLines

EIGHTHS = " ▁▂▃▄▅▆▇█"
WEEKEND = (5, 6)


@dataclass(frozen=True)
class BarLayout:
    """Which days are drawn and where: one slot per day, `bar` cells wide plus a gap."""

    first: int  # index of the first visible day
    count: int  # visible days
    bar: int  # cells per bar
    slot: int  # cells per day (bar + gap)


def layout_bars(days: int, width: int, cursor: int, first: int | None = None) -> BarLayout:
    """Fit `days` bars into `width` cells; when they cannot all fit, show a window holding the cursor.

    Wide bars read better than thin ones, so bars widen up to 6 cells with a one-cell gap; when the
    period has more days than cells, the chart scrolls with the cursor instead of merging days.
    """
    if days <= 0 or width <= 0:
        return BarLayout(0, 0, 1, 1)
    if days * 2 <= width:
        slot = min(12, width // days)
        return BarLayout(0, days, slot - 1, slot)
    if days <= width:
        return BarLayout(0, days, 1, 1)
    count = width
    # The window stays put while the cursor moves inside it and starts on the latest days.
    start = days - count if first is None else first
    if cursor < start:
        start = cursor
    elif cursor >= start + count:
        start = cursor - count + 1
    return BarLayout(max(0, min(start, days - count)), count, 1, 1)


def axis_label(value: Decimal, peak: Decimal) -> str:
    """One scale for every tick: `12.5k` when the peak is in thousands, `1.2M` in millions, else `850`."""
    if peak >= 1_000_000:
        return f"{value / 1_000_000:,.1f}M"
    if peak >= 10_000:
        return f"{value / 1000:,.1f}k"
    if peak >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def axis_ticks(peak: Decimal, plot_height: int) -> dict[int, str]:
    """Labelled rows (row 0 at the top): the peak, zero, and the middle on charts of six rows or more."""
    if plot_height < 1:
        return {}
    ticks = {0: axis_label(peak, peak)}
    if plot_height >= 2:
        ticks[plot_height - 1] = "0"
    if plot_height >= 6:
        middle = plot_height // 2
        # a row stands for the values up to its top edge
        ticks[middle] = axis_label(peak * (plot_height - middle) / plot_height, peak)
    return ticks


class DailyChart(DrawnLines, can_focus=True):
    """Cost per day as vertical bars scaled to the widget's height; weekends drawn dimmer."""

    HELP_GROUP = "Daily chart"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left,h", "move(-1)", "Prev day", id="chart.previous_day", tooltip="Move the cursor one day back"),
        Binding("right,l", "move(1)", "Next day", id="chart.next_day", tooltip="Move the cursor one day forward"),
        Binding("home,g", "jump(0)", "First day", id="chart.first_day", show=False,
                tooltip="Move the cursor to the first day of the period"),
        Binding("end,G", "jump(-1)", "Last day", id="chart.last_day", show=False,
                tooltip="Move the cursor to the last day of the period"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "daily-chart--bar",
        "daily-chart--weekend",
        "daily-chart--cursor",
        "daily-chart--axis",
        "daily-chart--title",
        "daily-chart--value",
    }

    DEFAULT_CSS = """
    DailyChart {
        height: 10;
        padding: 0 1;
    }
    DailyChart > .daily-chart--bar { color: $primary; }
    DailyChart > .daily-chart--weekend { color: $primary-darken-2; }
    DailyChart > .daily-chart--cursor { color: $accent; }
    DailyChart > .daily-chart--axis { color: $text-muted; }
    DailyChart > .daily-chart--title { color: $text; text-style: bold; }
    DailyChart > .daily-chart--value { color: $accent; text-style: bold; }
    DailyChart:focus { background: $boost; }
    """

    cursor: reactive[int] = reactive(-1)

    @dataclass
    class CursorMoved(Message):
        """The cursor is on another day."""

        day: dt.date
        value: Decimal

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._series: list[tuple[dt.date, Decimal]] = []
        self._window_first: int | None = None
        self._lines: list[Strip] = []
        self._lines_key: tuple[object, ...] | None = None
        self.currency = ""

    @property
    def series(self) -> list[tuple[dt.date, Decimal]]:
        return self._series

    def show_series(self, series: list[tuple[dt.date, Decimal]], currency: str) -> None:
        """Replace the data; the cursor lands on the last day (the most recent one)."""
        self._series = list(series)
        self._window_first = None
        self.currency = currency
        self.cursor = len(self._series) - 1
        self.refresh()

    @property
    def cursor_day(self) -> tuple[dt.date, Decimal] | None:
        if 0 <= self.cursor < len(self._series):
            return self._series[self.cursor]
        return None

    def validate_cursor(self, value: int) -> int:
        if not self._series:
            return -1
        return max(0, min(value, len(self._series) - 1))

    def watch_cursor(self, value: int) -> None:
        day = self.cursor_day
        if day is not None:
            self.post_message(self.CursorMoved(day[0], day[1]))
        self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def action_move(self, step: int) -> None:
        self.cursor += step

    def action_jump(self, index: int) -> None:
        self.cursor = index if index >= 0 else len(self._series) - 1

    def lines_key(self) -> tuple[object, ...]:
        return (self.cursor, id(self._series), self.has_focus)

    def _draw(self, width: int, height: int) -> list[Strip]:
        """Every line of the chart as strips: built once per data, size or cursor change."""
        base = self.rich_style
        title_style = base + self.get_component_rich_style("daily-chart--title")
        value_style = base + self.get_component_rich_style("daily-chart--value")
        axis_style = base + self.get_component_rich_style("daily-chart--axis")
        values = [max(Decimal(0), v) for _, v in self._series]
        peak = max(values) if values else Decimal(0)
        plot_height = height - 2
        ticks = axis_ticks(peak, plot_height)
        label_width = max([4, *(len(label) for label in ticks.values())])
        layout = layout_bars(len(values), max(1, width - label_width - 2), max(0, self.cursor), self._window_first)
        self._window_first = layout.first

        lines = [self._title_line(width, layout, len(values), title_style, value_style, axis_style)]
        if not self._series:
            lines.append([Segment("no cost in this period", axis_style)])
        elif plot_height >= 1:
            lines += self._plot(values, peak, ticks, label_width, layout, plot_height, axis_style)
        return [Strip(segments).crop_extend(0, width, base) for segments in lines]

    def _title_line(
        self, width: int, layout: BarLayout, days: int, title_style: Style, value_style: Style, axis_style: Style
    ) -> list[Segment]:
        """`Daily cost (USD)   Wed 2026-11-25  10,590.91 USD`; the scroll hint only where it fits."""
        title = [Segment(f"Daily cost ({self.currency})" if self.currency else "Daily cost", title_style)]
        caption: list[Segment] = []
        day = self.cursor_day
        if day is not None:
            caption = [Segment(f"{day[0]:%a} {day[0].isoformat()}  ", axis_style),
                       Segment(money(day[1], self.currency), value_style)]
        used = sum(len(s.text) for s in title) + sum(len(s.text) for s in caption)
        if layout.count < days:
            for hint in (f"  {layout.count} of {days} days · ←/h for earlier", f"  {layout.count}/{days} days"):
                if used + len(hint) + 2 <= width:
                    title.append(Segment(hint, axis_style))
                    used += len(hint)
                    break
        gap = width - used
        if gap < 1:  # very narrow: the cursor's day matters more than the title
            return caption
        return [*title, Segment(" " * gap, self.rich_style), *caption]

    def _plot(
        self, values: list[Decimal], peak: Decimal, ticks: dict[int, str], label_width: int, layout: BarLayout,
        plot_height: int, axis_style: Style,
    ) -> list[list[Segment]]:
        base = self.rich_style
        bar_style = base + self.get_component_rich_style("daily-chart--bar")
        weekend_style = base + self.get_component_rich_style("daily-chart--weekend")
        cursor_style = base + self.get_component_rich_style("daily-chart--cursor")
        # Bars are measured in eighths of a row so their tops are smooth.
        eighths = [
            math.ceil(float(v / peak) * plot_height * 8) if peak > 0 and v > 0 else 0
            for v in values[layout.first : layout.first + layout.count]
        ]
        styles = [
            cursor_style if layout.first + offset == self.cursor
            else weekend_style if self._series[layout.first + offset][0].weekday() in WEEKEND
            else bar_style
            for offset in range(layout.count)
        ]
        gap = " " * (layout.slot - layout.bar)
        lines: list[list[Segment]] = []
        for row in range(plot_height):
            level = plot_height - 1 - row
            label = ticks.get(row)
            line = [Segment((label or "").rjust(label_width) + " " + ("┤" if label is not None else "│"), axis_style)]
            for height8, style in zip(eighths, styles, strict=True):
                fill = min(8, max(0, height8 - level * 8))
                line.append(Segment(EIGHTHS[fill] * layout.bar, style))
                if gap:
                    line.append(Segment(gap, base))
            lines.append(line)
        axis = self._axis_labels(layout, axis_style)
        lines.append([Segment(" " * (label_width + 2), base), Segment(axis.plain, axis_style)])
        return lines

    def _axis_labels(self, layout: BarLayout, style: Style) -> Text:
        """Date labels under the bars, as many as fit without touching: the first day, then evenly."""
        labels = [" "] * (layout.count * layout.slot)
        next_free = 0
        for offset in range(layout.count):
            day = self._series[layout.first + offset][0]
            text = f"{day:%b} {day.day}"
            position = offset * layout.slot
            if position < next_free or position + len(text) > len(labels):
                continue
            if offset and day.day != 1 and day.weekday() != 0 and layout.count > 14:
                continue  # on long spans only Mondays and month starts are labelled
            labels[position : position + len(text)] = list(text)
            next_free = position + len(text) + 2
        return Text("".join(labels).rstrip(), style=style)
