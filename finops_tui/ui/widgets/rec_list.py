"""Ranked recommendations list: impact per month, currency, kind and title, drawn line by line; Vim keys.

A Line API widget like the overview's CostTable: a few hundred findings repaint in well under a
millisecond, and the cursor row is the only one redrawn when it moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip

from finops_tui.basis.money import money
from finops_tui.recommend import Recommendation
from finops_tui.recommend.generators import KIND_TITLES
from finops_tui.ui.formatting import truncate
from finops_tui.ui.widgets.cursor_list import CursorList, cursor_bindings

MIN_TITLE_WIDTH = 72  # below this the kind column is dropped: titles say what the finding is
STATE_WORDS = {"dismissed": "dismissed", "snoozed": "snoozed", "noted": "note"}


def impact_text(rec: Recommendation) -> str:
    """`45,461.26`, or `~4,388.97` when the figure is a rule-of-thumb estimate rather than measured."""
    return ("~" if rec.estimate else "") + money(rec.monthly_impact)


@dataclass(frozen=True)
class Column:
    title: str
    width: int
    right: bool = False


class RecList(CursorList):
    """Findings in rank order; the cursor row is the one the detail pane shows."""

    HELP_GROUP = "List"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Open target", id="list.open",
                tooltip="Open the finding's target (allocation tree or tagging queue)"),
        *cursor_bindings("finding"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "rec-list--header", "rec-list--cursor", "rec-list--empty", "rec-list--hidden", "rec-list--muted",
    }

    DEFAULT_CSS = """
    RecList {
        height: 1fr;
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
    }
    RecList > .rec-list--header { color: $text; text-style: bold; background: $panel; }
    RecList > .rec-list--cursor { background: $block-cursor-blurred-background; }
    RecList:focus > .rec-list--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    RecList > .rec-list--empty { color: $text-muted; text-style: italic; }
    RecList > .rec-list--hidden { color: $text-disabled; }
    RecList > .rec-list--muted { color: $text-muted; }
    """

    @dataclass
    class Highlighted(Message):
        """The cursor is on another finding (None: the list is empty)."""

        rec_list: RecList
        recommendation: Recommendation | None

    @dataclass
    class Chosen(Message):
        """`enter` (or a double click) on a finding: open its target."""

        rec_list: RecList
        recommendation: Recommendation

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.recommendations: list[Recommendation] = []
        self._empty_text = ""
        self._strips: dict[tuple[int, int, bool], Strip] = {}
        self._layout: tuple[int, list[Column]] | None = None  # (width, columns) the strips were drawn for

    # content --------------------------------------------------------------------------------------

    def show(self, recs: Sequence[Recommendation], *, empty_text: str, keep: str | None = None) -> None:
        """Replace the rows; the cursor follows the finding `keep` (an id) when it is still there,
        else stays on the same index, so dismissing a finding lands on the next one."""
        self.recommendations = list(recs)
        self._empty_text = empty_text
        index = next((i for i, rec in enumerate(self.recommendations) if rec.id == keep), None) if keep else None
        target = index if index is not None else min(self.cursor_row, max(0, len(self.recommendations) - 1))
        self.virtual_size = Size(self.size.width, 1 + max(1, len(self.recommendations)))
        self._strips.clear()
        self._layout = None
        if target != self.cursor_row:
            self.cursor_row = target  # the watcher posts Highlighted
        else:
            self._keep_cursor_visible()
            self.post_message(self.Highlighted(self, self.current))
        self.refresh()

    @property
    def current(self) -> Recommendation | None:
        if 0 <= self.cursor_row < len(self.recommendations):
            return self.recommendations[self.cursor_row]
        return None

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # theme or focus changed: colours are baked into the drawn lines

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, 1 + max(1, len(self.recommendations)))

    # drawing --------------------------------------------------------------------------------------

    def _columns(self, width: int) -> list[Column]:
        if self._layout is not None and self._layout[0] == width:
            return self._layout[1]
        recs = self.recommendations
        impact = max([len("Impact/mo"), *(len(impact_text(r)) for r in recs)])
        columns = [Column("#", max(2, len(str(len(recs)))), right=True), Column("Impact/mo", impact, right=True),
                   Column("Cur", 3)]
        if any(r.state for r in recs):
            # As wide as its title too: "note" alone would cut the header to "Sta…".
            columns.append(Column("State", max(len("State"), *(len(STATE_WORDS.get(r.state or "", "")) for r in recs))))
        used = sum(c.width + 2 for c in columns)
        kind = max([4, *(len(KIND_TITLES.get(r.kind, r.kind)) for r in recs)])
        if width - used - (kind + 2) - 2 >= MIN_TITLE_WIDTH:
            columns.append(Column("Kind", kind))
            used += kind + 2
        columns.append(Column("Finding", max(8, width - used - 2)))
        self._layout = (width, columns)
        return columns

    @staticmethod
    def _cells(number: int, rec: Recommendation, columns: list[Column]) -> list[str]:
        values = {
            "#": str(number), "Impact/mo": impact_text(rec), "Cur": rec.currency,
            "State": STATE_WORDS.get(rec.state or "", ""), "Kind": KIND_TITLES.get(rec.kind, rec.kind),
            "Finding": rec.title,
        }
        return [values[column.title] for column in columns]

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        columns = self._columns(width)
        if y == 0:
            header = [c.title if c.title != "#" else "" for c in columns]
            return self._strip(header, columns, base + self.get_component_rich_style("rec-list--header"), width)
        index = y - 1 + self.scroll_offset.y
        missing = self.line_without_row(index, width, base, self._empty_text,
                                        lambda: base + self.get_component_rich_style("rec-list--empty"))
        if missing is not None:
            return missing
        cursor = index == self.cursor_row
        key = (index, width, cursor)
        strip = self._strips.get(key)
        if strip is None:
            rec = self.recommendations[index]
            style = base
            if rec.state in ("dismissed", "snoozed"):
                style += self.get_component_rich_style("rec-list--hidden")
            if cursor:
                style += self.get_component_rich_style("rec-list--cursor")
            muted = None if cursor else base + self.get_component_rich_style("rec-list--muted")
            strip = self._strips[key] = self._strip(self._cells(index + 1, rec, columns), columns, style, width,
                                                    muted=muted)
        return strip

    @staticmethod
    def _strip(cells: list[str], columns: list[Column], style: Style, width: int, *,
               muted: Style | None = None) -> Strip:
        """One line: each cell padded to its column, one space either side; the rank number muted."""
        segments: list[Segment] = []
        for cell, column in zip(cells, columns, strict=True):
            text = truncate(cell, column.width)
            padded = text.rjust(column.width) if column.right else text.ljust(column.width)
            own = muted if muted is not None and column.title in ("#", "Cur") else style
            segments.append(Segment(f" {padded} ", own))
        return Strip(segments).crop_extend(0, width, style)

    def watch_cursor_row(self, old: int, new: int) -> None:
        self._strips = {key: strip for key, strip in self._strips.items() if key[0] not in (old, new)}
        super().watch_cursor_row(old, new)
        self.post_message(self.Highlighted(self, self.current))

    # keys and mouse -------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.recommendations)

    def action_choose(self) -> None:
        rec = self.current
        if rec is not None:
            self.post_message(self.Chosen(self, rec))

    def open_row(self) -> None:
        self.action_choose()
