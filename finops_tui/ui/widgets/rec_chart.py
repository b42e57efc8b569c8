"""A recommendation's evidence chart: cost per day (or week) as bars, with the expected cost where there is one.

Bars reuse the daily chart's layout and axis (eighth blocks, one scale per tick); the part of a bar above
the expected cost is drawn in the warning colour, and `╌` marks the expected level where the bar is lower.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from finops_tui.recommend import DailyPoint
from finops_tui.ui.widgets.daily_chart import EIGHTHS, axis_ticks, layout_bars
from finops_tui.ui.widgets.drawn_lines import DrawnLines

BASELINE_MARK = "╌"


def eighths_of(value: Decimal, peak: Decimal, plot_height: int) -> int:
    """How many eighths of a row `value` reaches on a chart whose top row is `peak`."""
    if peak <= 0 or value <= 0:
        return 0
    return math.ceil(float(value / peak) * plot_height * 8)


class RecChart(DrawnLines):
    """Bars of `DailyPoint`s; not focusable: it illustrates the finding the list's cursor is on."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "rec-chart--bar", "rec-chart--over", "rec-chart--baseline", "rec-chart--axis", "rec-chart--title",
    }

    DEFAULT_CSS = """
    RecChart { height: 10; }
    RecChart > .rec-chart--bar { color: $primary; }
    RecChart > .rec-chart--over { color: $warning; }
    RecChart > .rec-chart--baseline { color: $text-muted; }
    RecChart > .rec-chart--axis { color: $text-muted; }
    RecChart > .rec-chart--title { color: $text; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: tuple[DailyPoint, ...] = ()
        self.currency = ""
        self._lines: list[Strip] = []
        self._lines_key: tuple[object, ...] | None = None

    def show_points(self, points: tuple[DailyPoint, ...], currency: str) -> None:
        self.points = points
        self.currency = currency
        self._lines_key = None
        self.refresh()

    @property
    def weekly(self) -> bool:
        """Growth findings carry one point per week."""
        return len(self.points) >= 2 and (self.points[1].day - self.points[0].day).days >= 7

    @property
    def has_baseline(self) -> bool:
        return any(p.baseline is not None for p in self.points)

    def lines_key(self) -> tuple[object, ...]:
        return (id(self.points),)

    def _style(self, name: str) -> Style:
        return self.rich_style + self.get_component_rich_style(f"rec-chart--{name}")

    def _title(self) -> list[Segment]:
        unit = "Weekly cost" if self.weekly else "Daily cost"
        segments = [Segment(f"{unit} ({self.currency})", self._style("title"))]
        if self.has_baseline:
            segments += [Segment("   ", self.rich_style), Segment("█", self._style("bar")),
                         Segment(" cost  ", self._style("axis")), Segment("█", self._style("over")),
                         Segment(" above expected  ", self._style("axis")),
                         Segment(BASELINE_MARK * 2, self._style("baseline")),
                         Segment(" expected", self._style("axis"))]
        return segments

    def _draw(self, width: int, height: int) -> list[Strip]:
        base = self.rich_style
        if not self.points:
            return []
        # Looked up once per drawing: `rich_style` walks the ancestors on every call.
        styles = {name: self._style(name) for name in ("bar", "over", "baseline", "axis")}
        axis = styles["axis"]
        values = [max(Decimal(0), p.cost) for p in self.points]
        baselines = [None if p.baseline is None else max(Decimal(0), p.baseline) for p in self.points]
        peak = max([*values, *(b for b in baselines if b is not None)])
        plot_height = height - 2
        ticks = axis_ticks(peak, plot_height)
        label_width = max([4, *(len(label) for label in ticks.values())])
        layout = layout_bars(len(values), max(1, width - label_width - 2), len(values) - 1)
        shown = range(layout.first, layout.first + layout.count)
        bars = [eighths_of(values[i], peak, plot_height) for i in shown]
        marks = [None if baselines[i] is None else eighths_of(baselines[i] or Decimal(0), peak, plot_height)
                 for i in shown]
        gap = " " * (layout.slot - layout.bar)
        lines: list[list[Segment]] = [self._title()]
        for row in range(max(0, plot_height)):
            level = plot_height - 1 - row  # row 0 is the top of the plot
            label = ticks.get(row)
            line = [Segment((label or "").rjust(label_width) + " " + ("┤" if label is not None else "│"), axis)]
            for bar, mark in zip(bars, marks, strict=True):
                line.append(self._cell(bar, mark, level, layout.bar, styles, base))
                if gap:
                    line.append(Segment(gap, base))
            lines.append(line)
        if plot_height >= 1:
            first, last = self.points[layout.first].day, self.points[layout.first + layout.count - 1].day
            span = f"{first:%b} {first.day}"
            end = f"{last:%b} {last.day}"
            room = layout.count * layout.slot - len(span) - len(end)
            lines.append([Segment(" " * (label_width + 2), base),
                          Segment(span + " " * max(1, room) + end if room > 0 else span, axis)])
        return [Strip(segments).crop_extend(0, width, base) for segments in lines]

    @staticmethod
    def _cell(bar: int, mark: int | None, level: int, bar_width: int, styles: dict[str, Style], base: Style) -> Segment:
        """One row of one bar: cost in eighths, coloured by whether this row sits above the expected level."""
        floor = level * 8
        fill = min(8, max(0, bar - floor))
        if fill == 0:
            if mark is not None and floor < mark <= floor + 8:
                return Segment(BASELINE_MARK * bar_width, styles["baseline"])
            return Segment(" " * bar_width, base)
        over = mark is not None and floor >= mark
        return Segment(EIGHTHS[fill] * bar_width, styles["over" if over else "bar"])
