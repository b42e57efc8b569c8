"""Allocation tree widget: lazily expanded cost nodes with share, change and a sparkline; Vim keys.

A Line API widget like CostTable: the visible nodes are a flat list of rows redrawn line by line, so a
level of 200 children expands without building 200 widgets. The widget owns the tree's shape
(expanded nodes, sort, per-level filters, cursor); the screen owns the queries and answers
`ChildrenWanted` with `set_children`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip

from finops_tui.basis.money import ROUNDING_LABEL, RoundingLine, cents, change_percent, money, rounding_line
from finops_tui.report.tree import Node
from finops_tui.ui.formatting import change_styles, truncate
from finops_tui.ui.widgets.alloc_sparkline import sparkline
from finops_tui.ui.widgets.cursor_list import DrawnRows, cursor_bindings

Step = tuple[str, str | None]
NodePath = tuple[Step, ...]
OTHER_KEY = "\x00other"  # the step of a folded "(N more)" node: identifies it, never queried
LOADING_DELAY = 0.1  # seconds before an expansion still loading shows a "loading…" row
SORT_MODES = ("cost", "change", "name")
SORT_TITLES = {"cost": "cost", "change": "change (largest increase first)", "name": "name"}
ZERO = Decimal(0)


@dataclass(eq=False)
class Branch:
    """One node on screen: the read model's node, its figures in whole cents, its children once loaded.

    `cost` and `previous` are the node's own exact sums rounded half-even, exactly as every report and
    screen prints them; where siblings do not add up to their parent's cents, a rounding row says so.
    """

    node: Node
    path: NodePath  # the steps from the root to this node, itself included
    parent: Branch | None
    cost: Decimal
    previous: Decimal
    expandable: bool
    children: list[Branch] | None = None  # None until loaded
    expanded: bool = False
    loading_since: float | None = None
    drill: bool = False  # move the cursor into the children when they arrive

    @property
    def depth(self) -> int:
        return len(self.path) - 1

    @property
    def change(self) -> Decimal:
        return self.cost - self.previous

    @property
    def label(self) -> str:
        return self.node.label

    @property
    def trail(self) -> list[Branch]:
        """This branch and its ancestors, root first."""
        out: list[Branch] = []
        branch: Branch | None = self
        while branch is not None:
            out.append(branch)
            branch = branch.parent
        return out[::-1]


@dataclass(frozen=True)
class Row:
    """One drawn line under the header: a node, a "loading…" placeholder, "no match" for a filter, or the
    rounding line that closes a level whose rounded figures miss their parent's by a cent or so."""

    kind: str  # node | loading | empty | rounding
    depth: int
    branch: Branch | None = None  # for a rounding line: the parent (None at the top level)
    text: str = ""
    rounding: RoundingLine | None = None


@dataclass(frozen=True)
class Columns:
    """Cell widths for one terminal width (0 hides a column)."""

    name: int
    cost: int
    share: int
    change: int
    percent: int
    trend: int
    previous: int = 0  # wide terminals only


def branch_path(parent: NodePath, node: Node) -> NodePath:
    if node.is_other:
        return (*parent, (node.dimension, OTHER_KEY))
    if node.shared is not None and not node.shared.expandable:
        return (*parent, (node.dimension, node.key))  # a leaf share: identifies it, never queried
    return (*parent, node.step)


def expands(node: Node) -> bool:
    """Whether a node has children of its own (given a level below it): not a folded tail, not a pool's share."""
    return not node.is_other and (node.shared is None or node.shared.expandable)


def sort_key(mode: str) -> Callable[[Branch], tuple[object, ...]]:
    """Siblings in `mode` order; the folded "(N more)" node always last."""
    if mode == "change":
        return lambda b: (b.node.is_other, -b.change, -b.cost, b.label.casefold())
    if mode == "name":
        return lambda b: (b.node.is_other, b.label.casefold())
    return lambda b: (b.node.is_other, -b.cost, -b.previous, b.label.casefold())


@dataclass
class _Measures:
    cost: int = 0
    previous: int = 0
    change: int = 0
    days: int = 0


@dataclass
class _Restore:
    """What a reload brings back once the nodes reappear: expanded paths and the cursor's path."""

    expanded: set[NodePath] = field(default_factory=set)
    cursor: NodePath | None = None


class AllocTree(DrawnRows[Row]):
    """The allocation tree: `enter` drills in, `l`/`h` expand and collapse, `j`/`k`/`g`/`G` move."""

    HELP_GROUP = "Tree"
    SCROLL_IMMEDIATELY = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "drill", "Drill in", id="list.open",
                tooltip="Expand and move into the children; open a resource; tag an (unallocated) node"),
        Binding("l,right", "expand", "Expand", id="allocation.expand", show=False,
                tooltip="Expand the node (again: move to its first child)"),
        Binding("h,left", "collapse", "Collapse", id="allocation.collapse", show=False,
                tooltip="Collapse the node (again: move to its parent)"),
        *cursor_bindings(),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "alloc-tree--header", "alloc-tree--cursor", "alloc-tree--unallocated", "alloc-tree--muted",
        "alloc-tree--spark", "alloc-tree--glyph", "alloc-tree--shared",
    }

    DEFAULT_CSS = """
    AllocTree {
        height: 1fr;
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
    }
    AllocTree > .alloc-tree--header { color: $text; text-style: bold; background: $panel; }
    AllocTree > .alloc-tree--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    AllocTree > .alloc-tree--unallocated { color: $text-warning; text-style: bold; }
    AllocTree > .alloc-tree--muted { color: $text-muted; text-style: italic; }
    AllocTree > .alloc-tree--spark { color: $primary-lighten-1; }
    AllocTree > .alloc-tree--glyph { color: $text-muted; }
    AllocTree > .alloc-tree--shared { color: $text-success; }
    """

    @dataclass
    class ChildrenWanted(Message):
        """A node was expanded whose children are not loaded: answer with `set_children` (or `children_failed`)."""

        branch: Branch

    @dataclass
    class Opened(Message):
        """`enter` on a node that does not expand here: a resource, an (unallocated) node, a folded tail."""

        branch: Branch

    @dataclass
    class CursorMoved(Message):
        branch: Branch | None

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.currency = ""
        self.levels = 1
        self.sort_mode = "cost"
        self.roots: list[Branch] = []
        self.total = ZERO
        self.total_previous = ZERO
        self.rows: list[Row] = []
        self.filters: dict[NodePath, str] = {}
        self._by_path: dict[NodePath, Branch] = {}
        self._restore = _Restore()
        self._measures = _Measures()
        self._strips: dict[tuple[int, int, bool], Strip] = {}
        self._columns: tuple[int, Columns] | None = None
        self._styles: dict[str, Style] = {}
        self._empty_text = "loading…"

    # ----------------------------------------------------------------------------------------------
    # content

    def show_root(self, nodes: Sequence[Node], *, levels: int, currency: str, days: int, keep_state: bool) -> None:
        """A new root level. With `keep_state` (a reload of the same hierarchy), expanded nodes and the
        cursor come back as their children load again; otherwise the tree starts collapsed."""
        if keep_state:
            self._restore = _Restore({path for path, b in self._by_path.items() if b.expanded},
                                     self.cursor_branch.path if self.cursor_branch else None)
        else:
            self._restore = _Restore()
            self.filters.clear()
        self.levels = levels
        self.currency = currency
        self._measures = _Measures(days=days)
        self._by_path.clear()
        self.total = cents(sum((n.cost for n in nodes), ZERO))
        self.total_previous = cents(sum((n.previous_cost for n in nodes), ZERO))
        self.roots = self._branches(nodes, None)
        self._empty_text = "no cost in this period"
        self._rebuild()
        for branch in self.roots:
            if branch.path in self._restore.expanded:
                self._expand(branch)

    def set_children(self, path: NodePath, nodes: Sequence[Node]) -> bool:
        """Fill a node's children; False when the node is no longer in the tree (a stale answer)."""
        branch = self._by_path.get(path)
        if branch is None:
            return False
        branch.children = self._branches(nodes, branch)
        branch.loading_since = None
        drill, branch.drill = branch.drill, False
        self._rebuild()
        if drill and branch.expanded:
            self._move_into(branch)
        for child in branch.children:
            if child.path in self._restore.expanded:
                self._expand(child)
        return True

    def children_failed(self, path: NodePath) -> None:
        """The query behind an expansion failed or was superseded: fold the node back."""
        branch = self._by_path.get(path)
        if branch is not None and branch.children is None:
            branch.expanded = branch.drill = False
            branch.loading_since = None
            self._rebuild()

    def set_sort(self, mode: str) -> None:
        self.sort_mode = mode
        self._rebuild()

    def set_filter(self, level: NodePath, text: str) -> None:
        """Show only the children of `level` whose name contains `text` (case-insensitive)."""
        text = text.strip()
        if text:
            self.filters[level] = text
        else:
            self.filters.pop(level, None)
        self._rebuild()
        current = self.cursor_branch
        if current is None or current.path[:-1] != level:
            self._cursor_to_level(level)

    def reveal(self, path: NodePath, *, expand: bool = True) -> Branch | None:
        """Put the cursor on the node at `path` (a root node) and expand it; None if there is no such node."""
        branch = self._by_path.get(path)
        if branch is None:
            return None
        self._cursor_to(branch)
        if expand:
            self._expand(branch)
        return branch

    def go_back(self) -> bool:
        """`esc`: up to the parent and fold it; False at the top level (nothing to go back to)."""
        current = self.cursor_branch
        if current is None or current.parent is None:
            return False
        parent = current.parent
        parent.expanded = False
        self._rebuild()
        self._cursor_to(parent)
        return True

    @property
    def cursor_branch(self) -> Branch | None:
        if 0 <= self.cursor_row < len(self.rows):
            row = self.rows[self.cursor_row]
            return row.branch if row.kind == "node" else None
        return None

    def cursor_level(self) -> NodePath:
        """The path of the level the cursor is in (its parent's path; () at the top)."""
        branch = self.cursor_branch
        return branch.path[:-1] if branch is not None else ()

    def level_branches(self, level: NodePath) -> list[Branch]:
        """A level's children as shown (sorted and filtered)."""
        if level == ():
            return self._arranged(self.roots, ())
        parent = self._by_path.get(level)
        return self._arranged(parent.children or [], level) if parent is not None else []

    def waiting_branches(self) -> list[Branch]:
        """Nodes expanded and still waiting for their children."""
        return [b for b in self._by_path.values() if b.children is None and b.loading_since is not None]

    def expanded_paths(self) -> list[NodePath]:
        return [path for path, branch in self._by_path.items() if branch.expanded]

    def branch(self, path: NodePath) -> Branch | None:
        return self._by_path.get(path)

    def _branches(self, nodes: Sequence[Node], parent: Branch | None) -> list[Branch]:
        parent_path = parent.path if parent is not None else ()
        depth = len(parent_path)
        out = []
        for node in nodes:
            path = branch_path(parent_path, node)
            branch = Branch(node, path, parent, cents(node.cost), cents(node.previous_cost),
                            expandable=expands(node) and depth + 1 < self.levels)
            self._by_path[path] = branch
            out.append(branch)
        return out

    def level_rounding(self, level: NodePath) -> RoundingLine:
        """What a level's children, each rounded, miss to make their parent's rounded figures (zero when
        they foot, or while the level is filtered: a part of a level is not meant to add up)."""
        if level in self.filters:
            return RoundingLine(ZERO, ZERO)
        if level == ():
            branches = self.roots
            cost = sum((b.node.cost for b in branches), ZERO)
            previous = sum((b.node.previous_cost for b in branches), ZERO)
        else:
            parent = self._by_path.get(level)
            if parent is None or parent.children is None:
                return RoundingLine(ZERO, ZERO)
            branches, cost, previous = parent.children, parent.node.cost, parent.node.previous_cost
        return rounding_line(cost, previous, ((b.node.cost, b.node.previous_cost) for b in branches))

    # ----------------------------------------------------------------------------------------------
    # shape: the flat list of visible rows

    def _arranged(self, branches: list[Branch], level: NodePath) -> list[Branch]:
        text = self.filters.get(level, "").casefold()
        shown = [b for b in branches if text in b.label.casefold() and not b.node.is_other] if text else branches
        return sorted(shown, key=sort_key(self.sort_mode))

    def _rebuild(self) -> None:
        """Recompute the visible rows; the cursor stays on the same node when it is still shown."""
        current = self.cursor_branch
        rows: list[Row] = []
        now = time.monotonic()
        measures = self._measures
        measures.cost = measures.previous = measures.change = 0

        def walk(branches: list[Branch], level: NodePath, depth: int) -> None:
            shown = self._arranged(branches, level)
            if not shown and level in self.filters:
                rows.append(Row("empty", depth, text=f"no name contains “{self.filters[level]}” (esc clears)"))
            for branch in shown:
                rows.append(Row("node", depth, branch))
                measures.cost = max(measures.cost, len(money(branch.cost)))
                measures.previous = max(measures.previous, len(money(branch.previous)))
                measures.change = max(measures.change, len(money(branch.change, signed=True)))
                if not branch.expanded:
                    continue
                if branch.children is not None:
                    walk(branch.children, branch.path, depth + 1)
                elif branch.loading_since is not None and now - branch.loading_since >= LOADING_DELAY:
                    rows.append(Row("loading", depth + 1, branch, "loading…"))
            if shown and (rounding := self.level_rounding(level)):
                rows.append(Row("rounding", depth, self._by_path.get(level), ROUNDING_LABEL, rounding))

        walk(self.roots, (), 0)
        self.rows = rows
        self._strips.clear()
        self._columns = None
        self.virtual_size = Size(self.size.width, 1 + max(1, len(rows)))
        target = self._restore.cursor
        if target is not None and target in self._by_path and self._index_of(self._by_path[target]) is not None:
            self._restore.cursor = None
            self._cursor_to(self._by_path[target])
        elif current is not None and (index := self._index_of(current)) is not None:
            self._set_cursor(index)
        else:
            self._set_cursor(self._off_rounding(min(self.cursor_row, max(0, len(rows) - 1)), -1))
        self.refresh()

    def _off_rounding(self, index: int, step: int) -> int:
        """The row at `index`, or the nearest row that is not a rounding line (`step` gives the way to look first)."""
        for direction in (step, -step):
            probe = index
            while 0 <= probe < len(self.rows):
                if self.rows[probe].kind != "rounding":
                    return probe
                probe += direction
        return index

    def _index_of(self, branch: Branch) -> int | None:
        for index, row in enumerate(self.rows):
            if row.kind == "node" and row.branch is branch:
                return index
        return None

    def _set_cursor(self, index: int) -> None:
        if index == self.cursor_row:
            self._keep_cursor_visible()
        self.cursor_row = index

    def _cursor_to(self, branch: Branch) -> None:
        index = self._index_of(branch)
        if index is not None:
            self._set_cursor(index)

    def _cursor_to_level(self, level: NodePath) -> None:
        shown = self.level_branches(level)
        if shown:
            self._cursor_to(shown[0])
        elif level and level in self._by_path:
            self._cursor_to(self._by_path[level])

    def _move_into(self, branch: Branch) -> None:
        shown = self._arranged(branch.children or [], branch.path)
        if shown:
            self._cursor_to(shown[0])

    def _expand(self, branch: Branch, *, drill: bool = False) -> None:
        if not branch.expandable:
            return
        branch.expanded = True
        if branch.children is not None:
            self._rebuild()
            if drill:
                self._move_into(branch)
            return
        branch.drill = branch.drill or drill
        if branch.loading_since is None:
            branch.loading_since = time.monotonic()
            self.post_message(self.ChildrenWanted(branch))
            self.set_timer(LOADING_DELAY, self._show_loading)
        self._rebuild()

    def _show_loading(self) -> None:
        if any(b.loading_since is not None and b.expanded for b in self._by_path.values()):
            self._rebuild()

    # ----------------------------------------------------------------------------------------------
    # drawing

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            base = self.rich_style
            if name == "base":
                style = base
            elif name in ("increase", "decrease"):
                increase, decrease = change_styles(self.app)
                style = base + (increase if name == "increase" else decrease)
            else:
                style = base + self.get_component_rich_style(f"alloc-tree--{name}")
            self._styles[name] = style
        return style

    def columns(self, width: int) -> Columns:
        """Widths at `width`: the name takes what the figures leave, the sparkline up to one cell a day."""
        if self._columns is not None and self._columns[0] == width:
            return self._columns[1]
        measures = self._measures
        cost = max(len(f"Cost ({self.currency})"), measures.cost)
        share = 6
        percent = 8
        change = max(len("Change"), measures.change) if width >= 100 else 0
        previous = max(len("Previous"), measures.previous) if width >= 150 else 0
        fixed = 1 + (2 + cost) + (2 + share) + (2 + percent) + ((2 + change) if change else 0) \
            + ((2 + previous) if previous else 0)
        min_name = 24 if width < 100 else 32
        room = width - fixed - min_name - 2
        # One cell a day, and at least its title's width on short periods ("Daily, 6 d" over 6 cells).
        trend = min(max(measures.days, len(f"Daily, {measures.days} d")), room) if room >= 6 else 0
        name = width - fixed - ((2 + trend) if trend else 0)
        if name > 64 and trend < measures.days:
            trend = min(measures.days, trend + name - 64)
            name = width - fixed - (2 + trend)
        name = min(name, 64) if trend else name
        result = Columns(max(8, name), cost, share, change, percent, trend, previous)
        self._columns = (width, result)
        return result

    def _header(self, width: int) -> Strip:
        cols = self.columns(width)
        style = self._style("header")
        cells = [" ", "Name".ljust(cols.name), "  ", f"Cost ({self.currency})".rjust(cols.cost), "  ",
                 "Share".rjust(cols.share)]
        if cols.previous:
            cells += ["  ", "Previous".rjust(cols.previous)]
        if cols.change:
            cells += ["  ", "Change".rjust(cols.change)]
        cells += ["  ", "Change %".rjust(cols.percent)]
        if cols.trend:
            days = self._measures.days
            # The longest title that fits whole: a cut one ("Daily,") reads as a mistake.
            trend = next((text for text in (f"Daily, {days} d", f"{days} d") if len(text) <= cols.trend), "")
            cells += ["  ", trend.ljust(cols.trend)]
        return Strip([Segment("".join(cells), style)]).crop_extend(0, width, style)

    def _line(self, row: Row, width: int, cursor: bool) -> Strip:
        cols = self.columns(width)
        base = self._style("cursor") if cursor else self._style("base")
        indent = "  " * row.depth
        if row.kind == "rounding" and row.rounding is not None:
            return self._rounding_line(row.rounding, indent, cols, width)
        if row.kind != "node" or row.branch is None:
            text = truncate(f" {indent}  {row.text}", width)
            return Strip([Segment(text, base if cursor else self._style("muted"))]).crop_extend(0, width, base)
        branch = row.branch
        node = branch.node

        def styled(name: str) -> Style:
            return base if cursor else self._style(name)

        glyph = ("▼ " if branch.expanded else "▶ ") if branch.expandable else "  "
        label_room = max(1, cols.name - len(indent) - len(glyph))
        label_style = styled("unallocated") if node.is_unallocated else styled("muted") if node.is_other \
            else styled("shared") if node.shared is not None else base
        share = f"{node.share * 100:.1f}%" if node.share is not None else "—"
        change = branch.change
        change_style = styled("increase") if change > 0 else styled("decrease") if change < 0 else base
        segments = [
            Segment(" " + indent, base), Segment(glyph, styled("glyph")),
            Segment(truncate(branch.label, label_room).ljust(label_room), label_style),
            Segment("  " + money(branch.cost).rjust(cols.cost), base),
            Segment("  " + share.rjust(cols.share), base),
        ]
        if cols.previous:
            segments.append(Segment("  " + money(branch.previous).rjust(cols.previous), styled("glyph")))
        if cols.change:
            segments.append(Segment("  " + money(change, signed=True).rjust(cols.change), change_style))
        segments.append(Segment("  " + change_percent(branch.cost, branch.previous).rjust(cols.percent), change_style))
        if cols.trend:
            segments.append(Segment("  " + sparkline(node.daily, cols.trend).ljust(cols.trend), styled("spark")))
        return Strip(segments).crop_extend(0, width, base)

    def _rounding_line(self, rounding: RoundingLine, indent: str, cols: Columns, width: int) -> Strip:
        """The cents a level's rounded figures miss to make their parent's, signed, in the figures' columns."""
        muted = self._style("muted")
        label_room = max(1, cols.name - len(indent) - 2)
        segments = [
            Segment(" " + indent + "  ", muted),
            Segment(truncate(ROUNDING_LABEL, label_room).ljust(label_room), muted),
            Segment("  " + money(rounding.cost, signed=True).rjust(cols.cost), muted),
            Segment("  " + "".rjust(cols.share), muted),
        ]
        if cols.previous:
            segments.append(Segment("  " + money(rounding.previous, signed=True).rjust(cols.previous), muted))
        if cols.change:
            segments.append(Segment("  " + money(rounding.change, signed=True).rjust(cols.change), muted))
        return Strip(segments).crop_extend(0, width, self._style("base"))

    # ----------------------------------------------------------------------------------------------
    # cursor and scrolling

    def watch_cursor_row(self, old: int, new: int) -> None:
        super().watch_cursor_row(old, new)
        self.post_message(self.CursorMoved(self.cursor_branch))

    # ----------------------------------------------------------------------------------------------
    # keys and mouse

    def _user_moved(self) -> None:
        self._restore.cursor = None  # the user took over: a reload no longer moves the cursor

    def move_cursor_to(self, row: int) -> None:
        self._user_moved()
        target = max(0, min(row, self.row_count - 1))
        # The cursor rests on nodes only: a rounding line is stepped over in the direction of travel.
        super().move_cursor_to(self._off_rounding(target, 1 if target > self.cursor_row else -1))

    def action_expand(self) -> None:
        branch = self.cursor_branch
        if branch is None or not branch.expandable:
            return
        self._user_moved()
        if branch.expanded and branch.children is not None:
            self._move_into(branch)
        else:
            self._expand(branch)

    def action_collapse(self) -> None:
        branch = self.cursor_branch
        if branch is None:
            return
        self._user_moved()
        if branch.expanded:
            branch.expanded = branch.drill = False
            self._rebuild()
        elif branch.parent is not None:
            self._cursor_to(branch.parent)

    def action_drill(self) -> None:
        branch = self.cursor_branch
        if branch is None:
            return
        self._user_moved()
        if branch.expandable and not branch.node.is_unallocated:
            self._expand(branch, drill=True)
        else:
            self.post_message(self.Opened(branch))

    def row_clicked(self, index: int) -> bool:
        if self.rows[index].kind == "rounding":
            return False
        self._user_moved()
        return True

    def open_row(self) -> None:
        self.action_drill()

    # ----------------------------------------------------------------------------------------------
    # export

    def csv_rows(self, level: NodePath) -> Iterable[list[str]]:
        """A level's rows as shown, in cents: path, dimension, key, label, cost, previous, change, share;
        then its rounding row when the rounded rows miss the parent's figures."""
        parent = self._by_path.get(level)
        trail = " > ".join(f"{b.node.dimension}={b.label}" for b in parent.trail) if parent else ""
        for branch in self.level_branches(level):
            node = branch.node
            yield [trail, node.dimension, node.key or "", branch.label, self.currency, format(branch.cost, "f"),
                   format(branch.previous, "f"), format(branch.change, "f"),
                   f"{node.share * 100:.2f}" if node.share is not None else "",
                   str(node.folded_count) if node.is_other else ""]
        if rounding := self.level_rounding(level):
            yield [trail, "", "", ROUNDING_LABEL, self.currency, format(rounding.cost, "f"),
                   format(rounding.previous, "f"), format(rounding.change, "f"), "", ""]
