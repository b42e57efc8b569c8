"""Unallocated queue table: resources by cost, grouped by subscription and resource group, with marks; Vim keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip

from finops_tui.allocation.queue import QueueGroup, QueueItem, QueueSubscription, UnallocatedQueue
from finops_tui.basis.money import money
from finops_tui.ui.formatting import truncate
from finops_tui.ui.widgets.cursor_list import DrawnRows, cursor_bindings

ZERO = Decimal(0)
ItemFilter = Callable[[QueueSubscription, QueueGroup, QueueItem], bool]


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs twice as much, and a queue has 5,000 rows
class QueueRow:
    """A subscription header, a resource group header (with subtotals), or one resource."""

    kind: str  # subscription | group | item
    subscription: QueueSubscription
    group: QueueGroup | None = None
    item: QueueItem | None = None
    cost: Decimal = ZERO  # subtotal of a header row
    resources: int = 0  # resources under a header row
    listed: int = 0  # of which listed here (a filter or the queue's limit may list fewer)


@dataclass(frozen=True)
class QueueColumns:
    name: int
    type: int  # 0: hidden (narrow terminals)
    group: int
    cost: int
    value: int
    reason: int


def subscription_title(sub: QueueSubscription) -> str:
    return sub.subscription_name or sub.subscription_id or "(no subscription)"


def host_name(item: QueueItem) -> str:
    """The shared resource an allocated resource's cost was split from, by its name (its id's last segment)."""
    return (item.host_id or "").rstrip("/").rsplit("/", 1)[-1]


def short_type(resource_type: str | None) -> str:
    """`microsoft.compute/virtualmachinescalesets` → `virtualmachinescalesets`: the part that tells them apart."""
    return (resource_type or "").rsplit("/", 1)[-1]


class QueueTable(DrawnRows[QueueRow]):
    """`space` marks, shift+↑/↓ marks a range, `a` marks the resource group; `enter` opens the resource."""

    HELP_GROUP = "Queue"

    SCROLL_IMMEDIATELY = True
    CURSOR_NEEDS_FOCUS = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_mark", "Mark ↓", id="tagging.mark",
                tooltip="Mark or unmark the resource and move down to the next one, so space marks a run of rows "
                        "(on a header: every resource under it, the cursor stays)"),
        Binding("shift+down", "mark_down", "Mark down", id="tagging.mark_down", show=False,
                tooltip="Mark this row and the next (a range)"),
        Binding("shift+up", "mark_up", "Mark up", id="tagging.mark_up", show=False,
                tooltip="Mark this row and the previous (a range)"),
        Binding("a", "mark_group", "Mark group", id="tagging.mark_group",
                tooltip="Mark every listed resource of the resource group under the cursor (again: unmark)"),
        Binding("enter", "open_row", "Open", id="list.open", show=False,
                tooltip="Open the resource's cost detail and tags"),
        *cursor_bindings(),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "queue-table--header", "queue-table--cursor", "queue-table--subscription", "queue-table--group",
        "queue-table--marked", "queue-table--muted", "queue-table--value",
    }

    DEFAULT_CSS = """
    QueueTable {
        height: 1fr;
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
    }
    QueueTable > .queue-table--header { color: $text; text-style: bold; background: $panel; }
    QueueTable > .queue-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    QueueTable > .queue-table--subscription { color: $text-accent; text-style: bold; }
    QueueTable > .queue-table--group { color: $text; text-style: bold; }
    QueueTable > .queue-table--marked { background: $accent 10%; }
    QueueTable > .queue-table--muted { color: $text-muted; }
    QueueTable > .queue-table--value { color: $text-success; }
    """

    @dataclass
    class MarksChanged(Message):
        count: int
        cost: Decimal

    @dataclass
    class Opened(Message):
        item: QueueItem

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.queue: UnallocatedQueue | None = None
        self.rows: list[QueueRow] = []
        self.marked: set[str] = set()
        self.currency = ""
        self._filter: ItemFilter | None = None
        self._empty_text = "loading…"  # until the first queue: then the filter's own (`set_filter`)
        self._filtered_empty_text = "nothing unallocated"
        self._cost_width = 10
        self._widths = {"name": 24, "type": 16, "group": 16, "value": 14}
        self._strips: dict[tuple[int, int, bool], Strip] = {}
        self._styles: dict[str, Style] = {}
        self._columns: tuple[int, QueueColumns] | None = None

    # ----------------------------------------------------------------------------------------------
    # content

    def show_queue(self, queue: UnallocatedQueue, *, keep_marks: bool = False, from_top: bool = False) -> None:
        """Replace the content; the cursor stays on the same resource (or row index) when it can. With
        `from_top` (another queue) the cursor and the scroll start again at the top."""
        current = None if from_top else self.cursor_item
        self.queue = queue
        self.currency = queue.currency
        self._empty_text = self._filtered_empty_text
        if keep_marks:
            listed = {item.resource_id for item in queue.items}
            self.marked &= listed
        else:
            self.marked.clear()
        if from_top:
            self.cursor_row = 0
        self._rebuild(current)
        if from_top:
            self.scroll_to(y=0, animate=False, immediate=True)
        self._marks_changed()

    def set_filter(self, keep: ItemFilter | None, empty_text: str) -> None:
        """`empty_text`: what the list says when nothing is left (once a queue is shown; "loading…" until then)."""
        self._filter = keep
        self._filtered_empty_text = empty_text
        if self.queue is not None:
            self._empty_text = empty_text
        self._rebuild(self.cursor_item)

    def _rebuild(self, keep: QueueItem | None = None) -> None:
        queue, check = self.queue, self._filter
        widest = len(f"Cost ({self.currency})")
        blocks: list[tuple[QueueRow, list[QueueRow]]] = []  # a subscription's header and its rows
        for sub in queue.subscriptions if queue else []:
            groups: list[tuple[Decimal, list[QueueRow]]] = []
            sub_cost, sub_listed = ZERO, 0
            for group in sub.groups:
                items = group.items if check is None else [i for i in group.items if check(sub, group, i)]
                if not items:
                    continue
                complete = check is None and len(items) == group.resources
                cost = group.cost if complete else sum((i.cost for i in items), ZERO)
                header = QueueRow("group", sub, group, None, cost, group.resources if complete else len(items),
                                  len(items))
                groups.append((cost, [header, *[QueueRow("item", sub, group, item) for item in items]]))
                sub_cost += cost
                sub_listed += len(items)
                # A figure's width grows with its size (and a sign): the largest and the smallest are the widest.
                costs = [i.cost for i in items]
                widest = max(widest, len(money(cost)), len(money(max(costs))), len(money(min(costs))))
            if not groups:
                continue
            complete = check is None and sub_listed == sub.resources
            # Costliest first by what is listed: a filter changes the subtotals, so the order follows them.
            groups.sort(key=lambda block: block[0], reverse=True)
            header = QueueRow("subscription", sub, None, None, sub.cost if complete else sub_cost,
                              sub.resources if complete else sub_listed, sub_listed)
            blocks.append((header, [row for _, group_rows in groups for row in group_rows]))
        blocks.sort(key=lambda block: block[0].cost, reverse=True)
        rows = [row for header, sub_rows in blocks for row in (header, *sub_rows)]
        self.rows = rows
        self._cost_width = widest
        items = [row.item for row in rows if row.item is not None]
        self._widths = {
            "name": min(40, max([10, *(len(i.name or i.resource_id) for i in items)])),
            "type": min(20, max([4, *(len(short_type(i.resource_type)) for i in items)])),
            "group": min(20, max([14, *(len(i.resource_group or "") for i in items)])),
            "value": min(20, max([9, *(len(i.suggestion.value) for i in items if i.suggestion)])),
        }
        self._strips.clear()
        self._columns = None
        self.virtual_size = Size(self.size.width, 1 + max(1, len(rows)))
        index = next((n for n, row in enumerate(rows) if keep is not None and row.item is not None
                      and row.item.resource_id == keep.resource_id), None)
        if index is None:
            index = min(self.cursor_row, max(0, len(rows) - 1))
            # Land on a resource rather than a header (on the first load, or when the old one was just tagged).
            while index < len(rows) - 1 and rows[index].kind != "item":
                index += 1
        self._set_cursor(index)
        self.refresh()

    @property
    def cursor_item(self) -> QueueItem | None:
        if 0 <= self.cursor_row < len(self.rows):
            return self.rows[self.cursor_row].item
        return None

    @property
    def cursor(self) -> QueueRow | None:
        return self.rows[self.cursor_row] if 0 <= self.cursor_row < len(self.rows) else None

    def listed_items(self) -> list[QueueItem]:
        return [row.item for row in self.rows if row.item is not None]

    def marked_items(self) -> list[QueueItem]:
        return [item for item in self.listed_items() if item.resource_id in self.marked]

    def _set_cursor(self, index: int) -> None:
        if index == self.cursor_row:
            self._keep_cursor_visible()
        self.cursor_row = index

    # ----------------------------------------------------------------------------------------------
    # marks

    def _rows_under(self, row: QueueRow) -> list[QueueItem]:
        if row.item is not None:
            return [row.item]
        return [r.item for r in self.rows if r.item is not None and r.subscription is row.subscription
                and (row.kind == "subscription" or r.group is row.group)]

    def _toggle(self, items: list[QueueItem]) -> None:
        ids = {item.resource_id for item in items}
        if ids <= self.marked:
            self.marked -= ids
        else:
            self.marked |= ids
        self._strips.clear()
        self.refresh()
        self._marks_changed()

    def _mark(self, row: QueueRow | None) -> None:
        if row is not None and row.item is not None:
            self.marked.add(row.item.resource_id)

    def _marks_changed(self) -> None:
        items = self.marked_items()
        self.post_message(self.MarksChanged(len(items), sum((i.cost for i in items), ZERO)))

    def clear_marks(self) -> None:
        self.marked.clear()
        self._strips.clear()
        self.refresh()
        self._marks_changed()

    def action_toggle_mark(self) -> None:
        row = self.cursor
        if row is not None:
            self._toggle(self._rows_under(row))
            if row.kind == "item":
                self.action_cursor_down()

    def action_mark_group(self) -> None:
        row = self.cursor
        if row is None:
            return
        if row.kind == "subscription":
            self._toggle(self._rows_under(row))
            return
        group_row = QueueRow("group", row.subscription, row.group)
        self._toggle(self._rows_under(group_row))

    def _mark_range(self, step: int) -> None:
        self._mark(self.cursor)
        self.cursor_row = max(0, min(len(self.rows) - 1, self.cursor_row + step))
        self._mark(self.cursor)
        self._strips.clear()
        self.refresh()
        self._marks_changed()

    def action_mark_down(self) -> None:
        self._mark_range(1)

    def action_mark_up(self) -> None:
        self._mark_range(-1)

    # ----------------------------------------------------------------------------------------------
    # drawing

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            base = self.rich_style
            style = base if name == "base" else base + self.get_component_rich_style(f"queue-table--{name}")
            self._styles[name] = style
        return style

    def _foreground(self, name: str) -> Style:
        key = f"fg-{name}"
        style = self._styles.get(key)
        if style is None:
            full = self.get_component_rich_style(f"queue-table--{name}")
            style = self._styles[key] = Style(color=full.color, bold=full.bold, italic=full.italic)
        return style

    def columns(self, width: int) -> QueueColumns:
        if self._columns is not None and self._columns[0] == width:
            return self._columns[1]
        widths = self._widths
        cost = self._cost_width
        value = widths["value"]
        fixed = 6 + (2 + cost) + (2 + value)
        # The type from 110 columns, the resource group (also its header row) from 140: the reason needs room.
        kind = widths["type"] if width >= 110 else 0
        group = widths["group"] if width >= 140 else 0
        fixed += (2 + kind if kind else 0) + (2 + group if group else 0)
        room = width - fixed - 2
        # Names as wide as the longest listed one (up to 40), leaving the suggestion's reason some room.
        name = max(12, min(widths["name"], room - (24 if width >= 110 else 16)))
        reason = max(0, room - name)
        columns = QueueColumns(name, kind, group, cost, value, reason)
        self._columns = (width, columns)
        return columns

    def _header(self, width: int) -> Strip:
        cols = self.columns(width)
        cells = ["      ", "Resource".ljust(cols.name)]
        if cols.type:
            cells += ["  ", "Type".ljust(cols.type)]
        if cols.group:
            cells += ["  ", "Resource group".ljust(cols.group)]
        cells += ["  ", f"Cost ({self.currency})".rjust(cols.cost), "  ", "Suggested".ljust(cols.value)]
        if cols.reason:
            cells += ["  ", "Why"]
        style = self._style("header")
        return Strip([Segment("".join(cells), style)]).crop_extend(0, width, style)

    def _line(self, row: QueueRow, width: int, cursor: bool) -> Strip:
        cols = self.columns(width)
        marked = row.item is not None and row.item.resource_id in self.marked
        base = self._style("cursor") if cursor else self._style("marked") if marked else self._style("base")

        def styled(name: str) -> Style:
            # The component's colour and weight over the row's background (a marked row keeps its tint).
            return base if cursor else base + self._foreground(name)

        label_width = cols.name + ((2 + cols.type) if cols.type else 0) + ((2 + cols.group) if cols.group else 0)
        if row.kind != "item" or row.item is None:
            noun = "resource" if row.resources == 1 else "resources"
            count = f"{row.resources:,} {noun}" + (f", {row.listed:,} listed" if row.listed < row.resources else "")
            if row.kind == "subscription":
                label = truncate(f"{subscription_title(row.subscription)}", label_width + 4)
                segments = [Segment(" " + label.ljust(label_width + 5), styled("subscription"))]
            else:
                assert row.group is not None
                label = truncate(row.group.resource_group or "(no resource group)", label_width + 2)
                segments = [Segment("   " + label.ljust(label_width + 3), styled("group"))]
            segments += [Segment("  " + money(row.cost).rjust(cols.cost), styled("group")),
                         Segment("  " + count, styled("muted"))]
            return Strip(segments).crop_extend(0, width, base)
        item = row.item
        suggestion = item.suggestion
        host = f"on {host_name(item)}" if item.is_allocated else ""
        name = item.name or item.resource_id
        if host and not cols.reason:
            name = f"{name} ({host})"  # no Why column on a narrow terminal: the host follows the name
        segments = [Segment("   " + ("✓ " if marked else "  ") + " ", base),
                    Segment(truncate(name, cols.name).ljust(cols.name), base)]
        if cols.type:
            segments.append(Segment("  " + truncate(short_type(item.resource_type), cols.type).ljust(cols.type),
                                    styled("muted")))
        if cols.group:
            segments.append(Segment("  " + truncate(item.resource_group or "", cols.group).ljust(cols.group),
                                    styled("muted")))
        segments.append(Segment("  " + money(item.cost).rjust(cols.cost), base))
        pending = self.queue is not None and not self.queue.suggested
        value = truncate(suggestion.value, cols.value) if suggestion else "…" if pending else "—"
        segments.append(Segment("  " + value.ljust(cols.value), styled("value") if suggestion else styled("muted")))
        why = "; ".join(part for part in (host, suggestion.reason if suggestion else "") if part)
        if cols.reason and why:
            segments.append(Segment("  " + truncate(why, cols.reason), styled("muted")))
        return Strip(segments).crop_extend(0, width, base)

    # ----------------------------------------------------------------------------------------------
    # cursor

    def on_focus(self) -> None:
        self._strips.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._strips.clear()
        self.refresh()

    def action_open_row(self) -> None:
        item = self.cursor_item
        if item is not None:
            self.post_message(self.Opened(item))

    def open_row(self) -> None:
        self.action_open_row()
