"""Top-N cost table: name, cost, share and change, drawn line by line; Vim keys; `enter` opens the slice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from finops_tui.basis.money import money
from finops_tui.report.overview import BreakdownRow
from finops_tui.ui.formatting import change_cells, change_styles, money_cell, truncate
from finops_tui.ui.messages import SliceChosen
from finops_tui.ui.widgets.cursor_list import CursorList, cursor_bindings


@dataclass(frozen=True)
class TableShape:
    """How much the table shows at the current terminal size."""

    compact: bool = False  # half-width tables or a narrow terminal: no absolute change column
    name_width: int = 36


class CostTable(CursorList):
    """Ranked cost rows of one dimension (`kind="breakdown"`) or the largest increases (`kind="movers"`).

    A Line API widget rather than a DataTable: its lines are cached strips, where DataTable's per-cell
    Rich rendering took most of the time of an overview repaint (measured: 37 of 64 ms).
    """

    HELP_GROUP = "Tables"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_row", "Open slice", id="list.open", tooltip="Open this row in the allocation view"),
        *cursor_bindings(),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {"cost-table--header", "cost-table--cursor", "cost-table--empty"}

    DEFAULT_CSS = """
    CostTable {
        height: auto;
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
    }
    CostTable > .cost-table--header { color: $text; text-style: bold; background: $panel; }
    CostTable > .cost-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    CostTable > .cost-table--empty { color: $text-muted; text-style: italic; }
    """

    def __init__(self, dimension: str, title: str, *, kind: str = "breakdown", id: str | None = None) -> None:
        super().__init__(id=id)
        self.dimension = dimension
        self.kind = kind
        self.title = title
        self.border_title = Content(title)  # the team key in it comes from config.toml: never markup
        self.rows_shown: list[BreakdownRow] = []
        self._header: list[Text] = []
        self._body: list[list[Text]] = []
        self._widths: list[int] = []
        self._empty_text = ""
        self._strips: dict[tuple[int, int, bool], Strip] = {}  # (row, width, cursor) -> drawn line
        self._base_style: Style | None = None

    # content --------------------------------------------------------------------------------------

    def show_rows(
        self,
        rows: Sequence[BreakdownRow],
        *,
        currency: str,
        total: Decimal,
        shape: TableShape,
        empty_text: str = "nothing in this period",
    ) -> None:
        """Replace the content; the cursor stays on the same row index when it can."""
        self.rows_shown = list(rows)
        increase, decrease = change_styles(self.app)
        if self.kind == "movers":
            labels = ["Resource group", "Previous", f"Cost ({currency})", "Increase", "Change %"]
            keep = [0, 2, 3] if shape.compact else [0, 1, 2, 3, 4]
        else:
            labels = ["Name", f"Cost ({currency})", "Share", "Change", "Change %"]
            keep = [0, 1, 2, 4] if shape.compact else [0, 1, 2, 3, 4]
        body: list[list[Text]] = []
        for row in rows:
            name = Text(truncate(row.name, shape.name_width))
            change, change_pct = change_cells(row.cost, row.previous, increase=increase, decrease=decrease)
            if self.kind == "movers":
                cells = [name, money_cell(row.previous), money_cell(row.cost), change, change_pct]
            else:
                share = Text(f"{row.cost / total * 100:.1f}%" if total else "—", justify="right")
                cells = [name, money_cell(row.cost), share, change, change_pct]
            body.append([cells[i] for i in keep])
        self._header = [Text(labels[i], justify="left" if i == 0 else "right") for i in keep]
        self._body = body
        self._widths = [max(cell.cell_len for cell in column) for column in zip(self._header, *body, strict=False)]
        self._empty_text = empty_text
        width = sum(self._widths) + 2 * len(self._widths)
        self.virtual_size = Size(width, 1 + max(1, len(body)))
        self.cursor_row = min(self.cursor_row, max(0, len(body) - 1))
        self._strips.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # theme changed: colours are baked into the drawn lines
        self._base_style = None

    @property
    def _base(self) -> Style:
        # `rich_style` walks the ancestors each time; a repaint asks for it once per line.
        if self._base_style is None:
            self._base_style = self.rich_style
        return self._base_style

    # drawing --------------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self._base
        if y == 0:
            return self._strip(self._header, self.get_component_rich_style("cost-table--header"), width)
        index = y - 1 + self.scroll_offset.y
        if not self._body:
            if index == 0:
                return Strip([Segment(f" {self._empty_text}".ljust(width)[:width],
                                      base + self.get_component_rich_style("cost-table--empty"))])
            return Strip.blank(width, base)
        if index >= len(self._body):
            return Strip.blank(width, base)
        cursor = index == self.cursor_row and self.has_focus
        key = (index, width, cursor)
        strip = self._strips.get(key)
        if strip is None:
            style = base + self.get_component_rich_style("cost-table--cursor") if cursor else base
            strip = self._strips[key] = self._strip(self._body[index], style, width, cursor=cursor)
        return strip

    def _strip(self, cells: list[Text], style: Style, width: int, *, cursor: bool = False) -> Strip:
        """One line: each cell padded to its column (numbers right-aligned), one space either side."""
        segments: list[Segment] = []
        for cell, cell_width in zip(cells, self._widths, strict=False):
            text = cell.plain if cell.cell_len <= cell_width else truncate(cell.plain, cell_width)
            padded = text.rjust(cell_width) if cell.justify == "right" else text.ljust(cell_width)
            own = cell.style if isinstance(cell.style, Style) else Style.parse(cell.style) if cell.style else None
            # On the cursor row the cursor's colours win, so the row reads as one bar.
            segments.append(Segment(f" {padded} ", style if cursor or own is None else style + own))
        return Strip(segments).crop_extend(0, width, style)

    def _keep_cursor_visible(self) -> None:
        top = self.scroll_offset.y
        super()._keep_cursor_visible()
        container = self.parent
        if self.has_focus and isinstance(container, Widget) and container.allow_vertical_scroll:
            # In the narrow layout the tables scroll as one column: bring the cursor's line into view.
            line = self.virtual_region.y + self.styles.gutter.top + 1 + self.cursor_row - top
            container.scroll_to_region(Region(0, line, self.size.width, 1), animate=False, immediate=True)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # keys and mouse -------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._body)

    def action_open_row(self) -> None:
        if 0 <= self.cursor_row < len(self.rows_shown):
            row = self.rows_shown[self.cursor_row]
            self.post_message(SliceChosen(self.dimension, row.key, row.name))

    def open_row(self) -> None:
        self.action_open_row()

    # export ---------------------------------------------------------------------------------------

    def csv_rows(self, currency: str, total: Decimal) -> list[list[str]]:
        """The visible rows as exact figures (for `ctrl+s` export)."""
        return [
            [self.title or self.dimension, row.name, row.key or "", currency, format(row.cost, "f"),
             format(row.previous, "f"), money(row.change, signed=True).replace(",", ""),
             f"{row.cost / total * 100:.2f}" if total else ""]
            for row in self.rows_shown
        ]
