"""Base of the widgets drawn whole (charts): every line made at once, kept until the data, size or theme change."""

from __future__ import annotations

from textual.strip import Strip
from textual.widget import Widget


class DrawnLines(Widget):
    """A widget whose lines `_draw(width, height)` makes all at once; they are kept while the size and
    `lines_key()` stay the same and the theme does not change. Subclasses set `_lines = []` and
    `_lines_key = None` in `__init__` (and `_lines_key = None` to draw again)."""

    _lines: list[Strip]
    _lines_key: tuple[object, ...] | None

    def lines_key(self) -> tuple[object, ...]:
        """What the drawn lines depend on besides the size (override)."""
        raise NotImplementedError

    def _draw(self, width: int, height: int) -> list[Strip]:
        raise NotImplementedError

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines_key = None  # theme or focus changed the colours

    def render_line(self, y: int) -> Strip:
        width, height = self.content_size.width, self.content_size.height
        key = (width, height, *self.lines_key())
        if key != self._lines_key:
            self._lines = self._draw(width, height)
            self._lines_key = key
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(width, self.rich_style)
