"""Waterfall of a change: the earlier total, one floating bar per bucket, the later total; the cursor picks a bucket."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from rich.segment import Segment
from textual.binding import BindingType
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip

from finops_tui.basis.money import cents, money
from finops_tui.ui.formatting import change_styles, truncate
from finops_tui.ui.widgets.cursor_list import CursorList, cursor_bindings

ZERO = Decimal(0)
MIN_BAR_WIDTH = 10


@dataclass(frozen=True)
class Step:
    """One line of the waterfall: a total (`kind` "before" / "after") or a bucket moving the running total."""

    kind: str
    title: str
    amount: Decimal
    is_total: bool = False


def bar_span(start: Decimal, end: Decimal, low: Decimal, high: Decimal, width: int) -> tuple[int, int]:
    """The cells [first, last) a bar from `start` to `end` covers on an axis from `low` to `high` over `width`
    cells; a non-zero amount always gets at least one cell."""
    if high <= low or width <= 0:
        return 0, 0
    scale = Decimal(width) / (high - low)
    left, right = sorted((start, end))
    first = int(((left - low) * scale).to_integral_value())
    last = int(((right - low) * scale).to_integral_value())
    first = max(0, min(first, width - 1))
    last = max(first, min(last, width))
    if last == first and start != end:
        last = first + 1
    return first, last


def axis(steps: Sequence[Step]) -> tuple[Decimal, Decimal]:
    """The axis the bars are drawn on: from zero, unless the change is small beside the totals (then from a
    little under the lowest running total, so the buckets stay visible)."""
    running = ZERO
    points: list[Decimal] = []
    for step in steps:
        if step.is_total:
            running = step.amount
            points.append(running)
        else:
            running += step.amount
            points.append(running)
    if not points:
        return ZERO, ZERO
    low, high = min(points), max(points)
    if low <= 0 or (high - low) * 3 >= high:
        return min(low, ZERO), max(high, ZERO)
    return low - (high - low), high


class Waterfall(CursorList):
    """The change from the earlier total to the later one, bucket by bucket; `Highlighted` names the cursor's."""

    HELP_GROUP = "Buckets"

    BINDINGS: ClassVar[list[BindingType]] = [*cursor_bindings("bucket")]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "waterfall--header", "waterfall--cursor", "waterfall--empty", "waterfall--total", "waterfall--muted",
    }

    DEFAULT_CSS = """
    Waterfall { height: auto; overflow-x: hidden; scrollbar-size-vertical: 1; }
    Waterfall > .waterfall--header { color: $text; text-style: bold; background: $panel; }
    Waterfall > .waterfall--cursor { background: $block-cursor-blurred-background; }
    Waterfall:focus > .waterfall--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    Waterfall > .waterfall--empty { color: $text-muted; text-style: italic; }
    Waterfall > .waterfall--total { color: $accent; }
    Waterfall > .waterfall--muted { color: $text-muted; }
    """

    @dataclass
    class Highlighted(Message):
        """The cursor is on another line (None: no data)."""

        waterfall: Waterfall
        step: Step | None

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.steps: list[Step] = []
        self.currency = ""
        self._empty_text = "loading…"
        self._strips: dict[tuple[int, int, bool], Strip] = {}

    def show_steps(self, steps: Sequence[Step], currency: str, *, empty_text: str = "no cost in either period",
                   keep: str | None = None) -> None:
        """Replace the lines; the cursor stays on the bucket `keep` when it is still shown, else on the first."""
        self.steps = list(steps)
        self.currency = currency
        self._empty_text = empty_text
        kinds = [s.kind for s in self.steps]
        first_bucket = next((i for i, s in enumerate(self.steps) if not s.is_total), 0)
        target = kinds.index(keep) if keep in kinds else first_bucket
        self.virtual_size = Size(self.size.width, 1 + max(1, len(self.steps)))
        self.styles.height = 1 + max(1, len(self.steps)) + self.styles.gutter.height  # header, lines, border
        self._strips.clear()
        if target != self.cursor_row:
            self.cursor_row = target
        else:
            self.post_message(self.Highlighted(self, self.current))
        self.refresh()

    @property
    def current(self) -> Step | None:
        return self.steps[self.cursor_row] if 0 <= self.cursor_row < len(self.steps) else None

    @property
    def row_count(self) -> int:
        return len(self.steps)

    def open_row(self) -> None:
        return None  # the contributors beside it are what opens

    def watch_cursor_row(self, old: int, new: int) -> None:
        self._strips = {key: strip for key, strip in self._strips.items() if key[0] not in (old, new)}
        super().watch_cursor_row(old, new)
        self.post_message(self.Highlighted(self, self.current))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def on_resize(self) -> None:
        self._strips.clear()
        self.virtual_size = Size(self.size.width, 1 + max(1, len(self.steps)))

    def on_focus(self) -> None:
        self._strips.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._strips.clear()
        self.refresh()

    # drawing --------------------------------------------------------------------------------------

    def _columns(self, width: int) -> tuple[int, int, int]:
        title = max([6, *(len(s.title) for s in self.steps)])
        amount = max([len(f"Change ({self.currency})"), *(len(money(s.amount, signed=not s.is_total))
                                                          for s in self.steps)])
        title = min(title, max(8, width - amount - MIN_BAR_WIDTH - 6))
        bar = max(0, width - title - amount - 6)
        return title, amount, bar

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        title_w, amount_w, bar_w = self._columns(width)
        if y == 0:
            low, high = axis(self.steps)
            scale = f"axis {money(low)} .. {money(high)}" if low else ""
            text = f" {'Step'.ljust(title_w)}  {f'Change ({self.currency})'.rjust(amount_w)}  {truncate(scale, bar_w)}"
            return Strip([Segment(text, base + self.get_component_rich_style("waterfall--header"))]).crop_extend(
                0, width, base + self.get_component_rich_style("waterfall--header"))
        index = y - 1 + self.scroll_offset.y
        missing = self.line_without_row(index, width, base, self._empty_text,
                                        lambda: base + self.get_component_rich_style("waterfall--empty"))
        if missing is not None:
            return missing
        cursor = index == self.cursor_row
        key = (index, width, cursor)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._line(index, width, cursor, (title_w, amount_w, bar_w))
        return strip

    def _line(self, index: int, width: int, cursor: bool, columns: tuple[int, int, int]) -> Strip:
        title_w, amount_w, bar_w = columns
        step = self.steps[index]
        base = self.rich_style
        style = base + self.get_component_rich_style("waterfall--cursor") if cursor else base
        start = sum((s.amount for s in self.steps[:index] if not s.is_total), self._before())
        low, high = axis(self.steps)
        if step.is_total:
            first, last = bar_span(low, step.amount, low, high, bar_w)
            bar_style = base + self.get_component_rich_style("waterfall--total")
        else:
            # An amount under half a cent reads 0.00: no bar for it either.
            first, last = bar_span(start, start + step.amount, low, high, bar_w) if cents(step.amount) else (0, 0)
            increase, decrease = change_styles(self.app)
            bar_style = base + (increase if step.amount > 0 else decrease)
        amount = money(step.amount, signed=not step.is_total)
        muted = base + self.get_component_rich_style("waterfall--muted")
        title_style = style if step.amount or step.is_total or cursor else style + muted
        segments = [Segment(f" {truncate(step.title, title_w).ljust(title_w)}  ", title_style),
                    Segment(f"{amount.rjust(amount_w)}  ", title_style)]
        if bar_w:
            segments += [Segment(" " * first, base), Segment("█" * (last - first), bar_style),
                         Segment(" " * (bar_w - last), base)]
        return Strip(segments).crop_extend(0, width, base)

    def _before(self) -> Decimal:
        return next((s.amount for s in self.steps if s.is_total), ZERO)
