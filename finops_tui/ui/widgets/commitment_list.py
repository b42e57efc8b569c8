"""Commitments table (type, scope, term, utilization with a sparkline, unused, savings) and the utilization chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip

from finops_tui.basis.money import money
from finops_tui.report.commitments import Commitment, DailyUse
from finops_tui.ui.formatting import truncate
from finops_tui.ui.widgets.alloc_sparkline import BLOCKS, buckets
from finops_tui.ui.widgets.cursor_list import DrawnRows, cursor_bindings
from finops_tui.ui.widgets.daily_chart import BarLayout, DailyChart, axis_ticks

NOT_COMPUTED = "n/a"
SPARK_WIDTH = 14
ZERO = Decimal(0)
HUNDRED = Decimal(100)


def utilization_text(ratio: Decimal | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.1f}%"


def saving_text(amount: Decimal | None) -> str:
    return NOT_COMPUTED if amount is None else money(amount)


def utilization_sparkline(days: Sequence[DailyUse], width: int) -> str:
    """Daily utilization on a fixed 0–100% scale (a sparkline scaled to its own peak would make 60% look full);
    days without commitment cost are blank."""
    ratios = [d.utilization if d.utilization is not None else Decimal(-1) for d in days]
    out = []
    for value in buckets(ratios, width):
        if value < 0:
            out.append(" ")
            continue
        level = -int(-(value * len(BLOCKS)) // 1) - 1  # ceil(value * 8) - 1: any use shows as ▁
        out.append(BLOCKS[max(0, min(len(BLOCKS) - 1, level))])
    return "".join(out)


@dataclass(frozen=True)
class _Column:
    title: str
    width: int
    right: bool = False


class CommitmentList(DrawnRows[Commitment]):
    """Commitments by amortized cost; the cursor's one fills the detail pane, `enter` opens what it covered."""

    HELP_GROUP = "Commitments"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Covered by team", id="list.open",
                tooltip="Open what the commitment covered in the allocation tree, by team"),
        *cursor_bindings("commitment"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "commitment-list--header", "commitment-list--cursor", "commitment-list--muted", "commitment-list--waste",
    }

    DEFAULT_CSS = """
    CommitmentList { height: 1fr; overflow-x: hidden; scrollbar-size-vertical: 1; }
    CommitmentList > .commitment-list--header { color: $text; text-style: bold; background: $panel; }
    CommitmentList > .commitment-list--cursor { background: $block-cursor-blurred-background; }
    CommitmentList:focus > .commitment-list--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
    }
    CommitmentList > .commitment-list--muted { color: $text-muted; }
    CommitmentList > .commitment-list--waste { color: $text-warning; }
    """

    @dataclass
    class Highlighted(Message):
        commitment: Commitment | None

    @dataclass
    class Chosen(Message):
        commitment: Commitment

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[Commitment] = []
        self._empty_text = "loading…"
        self._strips: dict[tuple[int, int, bool], Strip] = {}
        self._styles: dict[str, Style] = {}
        self._columns: tuple[int, list[_Column]] | None = None

    def show(self, rows: Sequence[Commitment], *, empty_text: str, keep: str | None = None) -> None:
        """Replace the rows; the cursor stays on the commitment `keep` (an id, any case) when it is listed."""
        self.rows = list(rows)
        self._empty_text = empty_text
        self._strips.clear()
        self._columns = None
        self.virtual_size = Size(self.size.width, 1 + max(1, len(self.rows)))
        index = next((i for i, c in enumerate(self.rows) if keep and c.id.lower() == keep.lower()), None)
        target = index if index is not None else min(self.cursor_row, max(0, len(self.rows) - 1))
        if target != self.cursor_row:
            self.cursor_row = target
        else:
            self.post_message(self.Highlighted(self.current))
        self.refresh()

    @property
    def current(self) -> Commitment | None:
        return self.rows[self.cursor_row] if 0 <= self.cursor_row < len(self.rows) else None

    def watch_cursor_row(self, old: int, new: int) -> None:
        self._strips = {key: strip for key, strip in self._strips.items() if key[0] not in (old, new)}
        super().watch_cursor_row(old, new)
        self.post_message(self.Highlighted(self.current))

    def action_choose(self) -> None:
        if self.current is not None:
            self.post_message(self.Chosen(self.current))

    def open_row(self) -> None:
        self.action_choose()

    # drawing --------------------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            base = self.rich_style
            style = self._styles[name] = base if name == "base" else \
                base + self.get_component_rich_style(f"commitment-list--{name}")
        return style

    def _layout(self, width: int) -> list[_Column]:
        if self._columns is not None and self._columns[0] == width:
            return self._columns[1]
        rows = self.rows
        unused = max([len("Unused"), *(len(money(c.unused)) for c in rows)])
        savings = max([len("Savings"), *(len(saving_text(c.realized_savings)) for c in rows)])
        fixed = [_Column("Util.", 6, right=True), _Column("Daily", SPARK_WIDTH), _Column("Unused", unused, right=True),
                 _Column("Savings", savings, right=True)]
        optional = [_Column("Type", max([4, *(len(c.type or "") for c in rows)])),
                    _Column("Term", max([4, *(len(c.term or "") for c in rows)])),
                    _Column("Scope", min(20, max([5, *(len(c.scope or "") for c in rows)])))]
        used = sum(c.width + 2 for c in fixed)
        name_width = max([10, *(len(c.label) for c in rows)])
        kept: list[_Column] = []
        for column in optional:  # the name keeps at least 16 cells; then type, term, scope as they fit
            if width - used - (column.width + 2) - 2 >= min(name_width, 16):
                kept.append(column)
                used += column.width + 2
        if width - used - 2 < 12:  # very narrow: the sparkline goes before the name does
            fixed = [c for c in fixed if c.title != "Daily"]
            used -= SPARK_WIDTH + 2
        columns = [_Column("Commitment", max(8, min(name_width, width - used - 2))), *kept, *fixed]
        self._columns = (width, columns)
        return columns

    def _cells(self, row: Commitment, columns: list[_Column]) -> list[str]:
        values = {
            "Commitment": row.label, "Type": row.type or "—", "Term": row.term or "—", "Scope": row.scope or "—",
            "Util.": utilization_text(row.utilization), "Daily": utilization_sparkline(row.daily, SPARK_WIDTH),
            "Unused": money(row.unused), "Savings": saving_text(row.realized_savings),
        }
        return [values[c.title] for c in columns]

    def _header(self, width: int) -> Strip:
        columns = self._layout(width)
        return self._strip([c.title for c in columns], columns, self._style("header"), width)

    def _line(self, row: Commitment, width: int, cursor: bool) -> Strip:
        columns = self._layout(width)
        style = self._style("cursor") if cursor else self._style("base")
        return self._strip(self._cells(row, columns), columns, style, width,
                           waste=None if cursor or not row.unused else self._style("waste"))

    @staticmethod
    def _strip(cells: list[str], columns: list[_Column], style: Style, width: int, *,
               waste: Style | None = None) -> Strip:
        segments = []
        for cell, column in zip(cells, columns, strict=True):
            text = truncate(cell, column.width)
            padded = text.rjust(column.width) if column.right else text.ljust(column.width)
            own = waste if waste is not None and column.title == "Unused" else style
            segments.append(Segment(f" {padded} ", own))
        return Strip(segments).crop_extend(0, width, style)


class UtilizationChart(DailyChart):
    """The daily chart of one commitment's utilization, in percent on a fixed 0–100 scale."""

    def show_utilization(self, days: Sequence[DailyUse]) -> None:
        series = [(d.day, (d.utilization or ZERO) * HUNDRED) for d in days]
        self.show_series(series, "%")

    def _plot(
        self, values: list[Decimal], peak: Decimal, ticks: dict[int, str], label_width: int, layout: BarLayout,
        plot_height: int, axis_style: Style,
    ) -> list[list[Segment]]:
        # A full-height bar is 100%, whatever the best day: scaled to its own peak, 60% would look full.
        return super()._plot(values, HUNDRED, axis_ticks(HUNDRED, plot_height), label_width, layout, plot_height,
                             axis_style)

    def _title_line(
        self, width: int, layout: BarLayout, days: int, title_style: Style, value_style: Style, axis_style: Style
    ) -> list[Segment]:
        day = self.cursor_day
        title = [Segment("Daily utilization", title_style)]
        caption: list[Segment] = []
        if day is not None:
            caption = [Segment(f"{day[0]:%a} {day[0].isoformat()}  ", axis_style),
                       Segment(f"{day[1]:.1f}%", value_style)]
        gap = width - sum(len(s.text) for s in (*title, *caption))
        if gap < 1:
            return caption
        return [*title, Segment(" " * gap, self.rich_style), *caption]
