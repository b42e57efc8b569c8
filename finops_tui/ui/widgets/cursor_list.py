"""Base of the line-drawn lists: a header line over rows, a row cursor moved by j/k, g/G, page keys and clicks."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Generic, TypeVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

RowT = TypeVar("RowT")


def cursor_bindings(row: str = "row") -> list[Binding]:
    """The keys that move a list's cursor (ids `list.*`, hidden from the footer); `row` names what it lists."""
    return [
        Binding("down,j", "cursor_down", "Down", id="list.down", show=False, tooltip=f"Next {row}"),
        Binding("up,k", "cursor_up", "Up", id="list.up", show=False, tooltip=f"Previous {row}"),
        Binding("home,g", "first_row", "Top", id="list.top", show=False, tooltip=f"First {row}"),
        Binding("end,G", "last_row", "Bottom", id="list.bottom", show=False, tooltip=f"Last {row}"),
        Binding("pagedown", "page_down", "Page down", id="list.page_down", show=False, tooltip="One page down"),
        Binding("pageup", "page_up", "Page up", id="list.page_up", show=False, tooltip="One page up"),
    ]


class CursorList(ScrollView, can_focus=True):
    """A focusable list whose rows the cursor walks; subclasses draw the rows and bind the keys.

    Line 0 of the viewport is a header, so the rows occupy lines 1..height-1. Subclasses say how many rows
    there are (`row_count`), what a double click opens (`open_row`), and may hook `move_cursor_to` and
    `row_clicked` (the tree forgets the place a reload would restore once the user moves).
    """

    SCROLL_IMMEDIATELY: ClassVar[bool] = False  # scroll in this refresh rather than the next one

    cursor_row: reactive[int] = reactive(0)

    @property
    def row_count(self) -> int:
        raise NotImplementedError

    def open_row(self) -> None:
        """What a double click on the cursor's row does (override)."""
        raise NotImplementedError

    def row_clicked(self, index: int) -> bool:
        """Whether a click on row `index` moves the cursor there."""
        return True

    def on_click(self, event: events.Click) -> None:
        index = event.y - 1 + self.scroll_offset.y
        if event.y >= 1 and 0 <= index < self.row_count and self.row_clicked(index):
            if index == self.cursor_row and event.chain >= 2:
                self.open_row()
            self.cursor_row = index

    def watch_cursor_row(self, old: int, new: int) -> None:
        self.refresh_line(old + 1 - self.scroll_offset.y)
        self.refresh_line(new + 1 - self.scroll_offset.y)
        self._keep_cursor_visible()

    def _keep_cursor_visible(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)  # line 0 is the header
        top = self.scroll_offset.y
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=self.SCROLL_IMMEDIATELY)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=self.SCROLL_IMMEDIATELY)

    def line_without_row(
        self, index: int, width: int, base: Style, empty_text: str, empty: Callable[[], Style]
    ) -> Strip | None:
        """The line of row `index` when no row stands there: `empty_text` on the first line of an empty list,
        else blank; None when the row exists."""
        if not self.row_count:
            if index == 0:
                return Strip([Segment(f" {empty_text}", empty())]).crop_extend(0, width, base)
            return Strip.blank(width, base)
        if index >= self.row_count:
            return Strip.blank(width, base)
        return None

    def move_cursor_to(self, row: int) -> None:
        self.cursor_row = max(0, min(row, self.row_count - 1))

    def _page(self) -> int:
        return max(1, self.size.height - 2)  # the header line and one row of overlap

    def action_cursor_down(self) -> None:
        self.move_cursor_to(self.cursor_row + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor_to(self.cursor_row - 1)

    def action_first_row(self) -> None:
        self.move_cursor_to(0)

    def action_last_row(self) -> None:
        self.move_cursor_to(self.row_count - 1)

    def action_page_down(self) -> None:
        self.move_cursor_to(self.cursor_row + self._page())

    def action_page_up(self) -> None:
        self.move_cursor_to(self.cursor_row - self._page())


class DrawnRows(CursorList, Generic[RowT]):
    """A CursorList of `rows` under a header line, each row drawn once per (row, width, cursor) and kept until
    the rows, the size or the theme change.

    Subclasses set `rows`, `_empty_text`, `_strips`, `_styles` and `_columns` (None: measure again) in their
    `__init__`, and draw the header (`_header`) and a row (`_line`) with their named styles (`_style`, at
    least "base" and "muted").
    """

    CURSOR_NEEDS_FOCUS: ClassVar[bool] = False  # draw the cursor only while the list has focus

    rows: list[RowT]
    _empty_text: str
    _strips: dict[tuple[int, int, bool], Strip]
    _styles: dict[str, Style]
    _columns: object | None

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def _style(self, name: str) -> Style:
        raise NotImplementedError

    def _header(self, width: int) -> Strip:
        raise NotImplementedError

    def _line(self, row: RowT, width: int, cursor: bool) -> Strip:
        raise NotImplementedError

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # theme changed: colours are baked into the drawn lines
        self._styles.clear()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            return self._header(width)
        index = y - 1 + self.scroll_offset.y
        base = self._style("base")
        missing = self.line_without_row(index, width, base, self._empty_text, lambda: self._style("muted"))
        if missing is not None:
            return missing
        cursor = index == self.cursor_row and (self.has_focus or not self.CURSOR_NEEDS_FOCUS)
        key = (index, width, cursor)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._line(self.rows[index], width, cursor)
        return strip

    def on_resize(self) -> None:
        self._columns = None
        self._strips.clear()
        self.virtual_size = Size(self.size.width, 1 + max(1, len(self.rows)))
