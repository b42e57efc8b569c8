"""Base of the line-drawn lists: a row cursor moved by j/k, g/G and page keys."""

from __future__ import annotations

from textual.reactive import reactive
from textual.scroll_view import ScrollView


class CursorList(ScrollView, can_focus=True):
    """A focusable list whose rows the cursor walks; subclasses draw the rows and bind the keys.

    Subclasses say how many rows there are (`row_count`) and may hook `move_cursor_to` (the tree
    forgets the place a reload would restore once the user moves).
    """

    cursor_row: reactive[int] = reactive(0)

    @property
    def row_count(self) -> int:
        raise NotImplementedError

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
