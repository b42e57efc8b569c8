"""Allocation screen: the cost tree over a hierarchy of dimensions, expanded lazily, with breadcrumbs."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Header, Input, Static
from textual.worker import Worker, WorkerState

from finops_tui import clock
from finops_tui.basis.dimensions import dimension
from finops_tui.basis.money import money
from finops_tui.basis.periods import Period
from finops_tui.config import DEFAULT_HIERARCHY, save_setting
from finops_tui.errors import UserError
from finops_tui.report.chargeback import chargeback, chargeback_csv
from finops_tui.report.tags import TagKeyCoverage
from finops_tui.report.tree import Node, resolve_hierarchy
from finops_tui.ui.commands import PaletteCommand
from finops_tui.ui.formatting import period_title
from finops_tui.ui.messages import TagsChanged
from finops_tui.ui.queries import QueryGate
from finops_tui.ui.result_cache import ResultCache
from finops_tui.ui.screens.allocation_data import (
    CHILDREN_LIMIT,
    RESULT_CACHE_SIZE,
    ChargebackReady,
    ChildrenLoaded,
    ExpansionKey,
    ExpansionRequest,
    PoolsChanged,
    Prefetcher,
    TreeLoaded,
    TreeRequest,
    expansion_key,
    expansion_query,
    load_tree,
    plan_requests,
)
from finops_tui.ui.screens.cost_view import CostViewScreen, FilterInput, TagKeysLoaded, level_title, pick_currency
from finops_tui.ui.widgets.alloc_tree import SORT_MODES, SORT_TITLES, AllocTree, Branch, NodePath
from finops_tui.ui.widgets.context_bar import ContextBar, cost_context
from finops_tui.ui.widgets.key_footer import KeyFooter
from finops_tui.ui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from finops_tui.allocation.shared import Pool
    from finops_tui.ui.dialogs.hierarchy import HierarchyChoice

def slice_hierarchy(name: str, default: Sequence[str]) -> list[str]:
    """The hierarchy that opens one slice: from that level down in the default one, else slice › RG › resource
    (a commitment: what it covered over the whole default hierarchy, by team first)."""
    levels = [dimension(level).name for level in default]
    if name in levels:
        return levels[levels.index(name):]
    if name == "commitment":
        return [name, *levels]
    return [name, *(level for level in ("resource-group", "resource") if level != name)]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()[:60] or "all"


# --------------------------------------------------------------------------------------------------
# the screen


class AllocationScreen(CostViewScreen):
    """Where the money goes, level by level: team › subscription › resource group › resource by default."""

    VIEW_TITLE = "Allocation"
    AUTO_FOCUS = "#tree"  # what on_mount focuses: no detour through the hidden filter (two restyles)
    QUERY_GROUP = "alloc-root"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("H", "choose_hierarchy", "Hierarchy", id="allocation.hierarchy",
                tooltip="Build a hierarchy from any dimension or tag key, and save it"),
        Binding("v", "next_hierarchy", "Next hierarchy", id="allocation.next_hierarchy",
                tooltip="Cycle through the saved hierarchies"),
        Binding("s", "cycle_sort", "Sort", id="allocation.sort", tooltip="Sort by cost, change or name"),
        Binding("t", "tag", "Tag", id="view.tag",
                tooltip="Open the unallocated queue for this level's tag key, scoped to this branch"),
        Binding("x", "explain", "Explain", id="view.explain",
                tooltip="Why the node's cost changed, bucket by bucket"),
        Binding("S", "toggle_shared", "Shared", id="view.shared",
                tooltip="Team figures with shared costs (direct cost + each pool's share), or without"),
        Binding("dollar_sign", "make_pool", "Make pool", id="allocation.pool", show=False,
                tooltip="Make the node's cost a shared cost pool: method, recipients, a preview, then save"),
        Binding("L", "list_pools", "Pools", id="allocation.pools", show=False,
                tooltip="The shared cost pools with their cost: reorder or delete them"),
        Binding("slash", "filter", "Filter", id="view.filter", tooltip="Filter this level by name"),
        Binding("ctrl+s", "export", "Export", id="view.export",
                tooltip="Save this level as CSV in the exports folder (shared costs on: the month's chargeback)"),
        Binding("escape", "back", "Back", id="view.back", show=False,
                tooltip="Clear the filter, else go up one level, else back to the view you came from"),
    ]

    DEFAULT_CSS = """
    AllocationScreen #notice { height: auto; padding: 0 1; display: none; }
    AllocationScreen #hierarchy-bar { height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    AllocationScreen #breadcrumbs {
        height: 1; padding: 0 1; background: $boost; text-wrap: nowrap; text-overflow: ellipsis;
    }
    AllocationScreen #shared-detail {
        height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; display: none;
    }
    AllocationScreen #filter { display: none; margin: 0 1; }
    AllocationScreen AllocTree { height: 1fr; margin: 0 0 0 0; background: $surface; }
    """
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (140, "-wide")]  # noqa: RUF012 (Textual's type)

    def __init__(self, *, prefetch: bool = True) -> None:
        """`prefetch`: compute the expansions the user is likely to open next while they read (off: fewer
        queries on a slow machine; every expansion then runs its own)."""
        super().__init__()
        self.prefetch = prefetch
        # Screens are created inside the running app (the mode registry, push_screen): its config is readable.
        default = self.finops.config.hierarchies.get("default") or DEFAULT_HIERARCHY
        self.hierarchy: list[str] = [dimension(level).name for level in default]
        self.hierarchy_name: str | None = "default"
        self.shown_hierarchy: tuple[str, ...] = ()
        self.folded: dict[str, list[str]] = {}
        self.tag_key_coverage: list[TagKeyCoverage] | None = None
        self._results: ResultCache[ExpansionKey, list[Node]] = ResultCache(RESULT_CACHE_SIZE)
        self._currency_lists: dict[tuple[Period, str], list[str]] = {}
        self._expand_gate = QueryGate()
        self._prefetcher = Prefetcher()
        self._expansions: dict[Worker[None], NodePath] = {}
        self._generation = 0
        self._data_version = 0
        self._period_day: dt.date | None = None
        self._pending_slice: NodePath | None = None
        self._filter_level: NodePath = ()
        self._open_dialog_when_keys_load = False
        self.shown_shared = False  # the tree on screen has shared costs on
        self._requested_shared = False

    # ----------------------------------------------------------------------------------------------
    # layout

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        yield ContextBar("allocation")
        yield Static("", id="notice")
        yield Static("", id="hierarchy-bar")
        yield Static("", id="breadcrumbs")
        yield Static("", id="shared-detail")
        yield FilterInput(placeholder="filter this level by name (enter keeps it, esc clears)", id="filter")
        yield AllocTree(id="tree")
        yield StatusBar()
        yield KeyFooter()

    @property
    def tree_view(self) -> AllocTree:
        return self.query_one(AllocTree)

    def on_mount(self) -> None:
        super().on_mount()
        self.show_status()
        self.tree_view.focus()
        if not self.requested_state:
            self.request_view()

    def on_resize(self) -> None:
        self._show_bars()

    # ----------------------------------------------------------------------------------------------
    # the top level: one worker per request; a newer request interrupts the older one

    def request_view(self) -> None:
        self.request_tree(keep_state=self.shown_hierarchy == tuple(self.hierarchy))

    def reload(self) -> None:
        """Tags changed: every figure may have moved, so forget them all and load the open tree again."""
        self._data_version += 1
        self._results.clear()
        self.request_tree(keep_state=True)

    def request_tree(self, *, keep_state: bool) -> None:
        state = self.finops.view_state
        self._generation += 1
        request = TreeRequest(self._generation, self._data_version, tuple(self.hierarchy), state.period,
                              state.metric, state.currency, keep_state, state.shared)
        self._requested_shared = state.shared
        self._expansions.clear()
        self._prefetcher.plan.replace([])
        cached = self._cached_tree(request)
        if cached is not None:
            self.answer_from_memory()
            self._show_tree(cached)
            return
        self.begin_query(request)
        self._load_tree(request, dict(self.folded))

    def query_groups(self) -> list[tuple[str, QueryGate]]:
        # A new tree makes every expansion and guess in flight useless.
        return [(self.QUERY_GROUP, self.query_gate), ("alloc-expand", self._expand_gate),
                ("alloc-prefetch", self._prefetcher.gate)]

    def _cached_tree(self, request: TreeRequest) -> TreeLoaded | None:
        """The top level from memory when the period was resolved today and the level was loaded before."""
        period = self.period
        if period is None or period.spec != request.period or self._period_day != clock.today() \
                or self.freshness is None:
            return None
        codes = self._currency_lists.get((period, request.metric))
        if codes is None:
            return None
        currency = pick_currency(request.currency, codes)
        nodes = self._results.get(expansion_key(request.hierarchy, (), period, request.metric, currency,
                                                request.shared))
        if nodes is None or any(d.tag_key not in self.folded for d in resolve_hierarchy(request.hierarchy)
                                if d.tag_key is not None):
            return None
        return TreeLoaded(request, period, self.freshness, codes, currency, nodes, {})

    @work(thread=True, exclusive=True, group="alloc-root", exit_on_error=False, name="allocation query")
    def _load_tree(self, request: TreeRequest, known_folded: dict[str, list[str]]) -> None:
        self.run_query(lambda cur: load_tree(cur, request, known_folded))

    @on(TreeLoaded)
    def _tree_loaded(self, message: TreeLoaded) -> None:
        request = message.request
        if request.generation != self._generation:
            return  # a newer request is on its way; never show a stale answer
        self._period_day = clock.today()
        self._currency_lists[(message.period, request.metric)] = message.currencies
        self.folded.update(message.folded)
        if request.data_version == self._data_version:
            self._results.put(expansion_key(request.hierarchy, (), message.period, request.metric,
                                            message.currency, request.shared), message.nodes)
        self._show_tree(message)

    def _show_tree(self, loaded: TreeLoaded) -> None:
        request = loaded.request
        self.end_query()
        self.take_answer(loaded)
        self.shown_hierarchy = request.hierarchy
        self.shown_shared = request.shared
        tree = self.tree_view
        tree.show_root(loaded.nodes, levels=len(request.hierarchy), currency=loaded.currency,
                       days=loaded.period.days, keep_state=request.keep_state)
        if self._pending_slice is not None:
            path, self._pending_slice = self._pending_slice, None
            if tree.reveal(path) is None:
                dim, key = path[0]
                self.notify(f"No {level_title(dim)} {key or '(none)'} with cost in this period.", timeout=4)
        self._show_bars()
        self.show_status()
        self._plan_prefetch()

    def cancel_pending(self) -> bool:
        self._stop_prefetch()
        return super().cancel_pending()

    def _stop_prefetch(self) -> None:
        self.workers.cancel_group(self, "alloc-prefetch")
        self._prefetcher.gate.interrupt_cancelled()

    def loading_target(self) -> Widget:
        return self.tree_view

    # ----------------------------------------------------------------------------------------------
    # expansions: from memory, from a computation the prefetch already started, or from a new worker

    def _expansion(self, path: NodePath, hierarchy: Sequence[str] | None = None) -> ExpansionRequest | None:
        if self.period is None or self.currency is None or self.shown_state is None:
            return None
        levels = tuple(hierarchy if hierarchy is not None else self.shown_hierarchy)
        metric = self.shown_state[1]
        return ExpansionRequest(expansion_key(levels, path, self.period, metric, self.currency, self.shown_shared),
                                self._data_version, levels, path, self.period, metric, self.currency,
                                self.shown_shared)

    @on(AllocTree.ChildrenWanted)
    def _children_wanted(self, message: AllocTree.ChildrenWanted) -> None:
        branch = message.branch
        request = self._expansion(branch.path)
        if request is None:
            self.tree_view.children_failed(branch.path)
            return
        cached = self._results.get(request.key)
        if cached is not None:
            self._apply_children(branch, cached)
            return
        if self._prefetcher.computing(request.key):
            return  # the prefetch is computing exactly this: its answer fills the node
        # The user's request gets the CPU: stop the background work, start it again afterwards.
        self._stop_prefetch()
        worker = self._load_children(request)
        self._expansions[worker] = branch.path

    @work(thread=True, group="alloc-expand", exit_on_error=False, name="allocation expand")
    def _load_children(self, request: ExpansionRequest) -> None:
        nodes = self._expand_gate.run(self.finops.cache, partial(expansion_query, request))
        if nodes is not None:
            self.post_message(ChildrenLoaded(request, nodes, prefetched=False))

    @on(ChildrenLoaded)
    def _children_loaded(self, message: ChildrenLoaded) -> None:
        request = message.request
        if request.data_version != self._data_version:
            return  # computed before the tags changed
        self._results.put(request.key, message.nodes)
        current = self._expansion(request.path)
        if current is None or current.key != request.key:
            return  # the tree shows another hierarchy, period or currency now; the answer stays in memory
        branch = self.tree_view.branch(request.path)
        if branch is not None and branch.children is None and branch.loading_since is not None:
            self._apply_children(branch, message.nodes)
        elif not message.prefetched:
            self._plan_prefetch()

    def _apply_children(self, branch: Branch, nodes: list[Node]) -> None:
        self.tree_view.set_children(branch.path, nodes)
        self._show_breadcrumbs()
        self._plan_prefetch()

    @on(Worker.StateChanged)
    def _expansion_stopped(self, event: Worker.StateChanged) -> None:
        if event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            path = self._expansions.pop(event.worker, None)
            if path is not None:
                self.tree_view.children_failed(path)
        elif event.state == WorkerState.SUCCESS:
            self._expansions.pop(event.worker, None)
        if event.worker is not self._prefetcher.worker or not event.worker.is_finished:
            return
        self._load_waiting()
        if event.state == WorkerState.SUCCESS and self._prefetcher.plan.pending():
            # The plan grew after the worker saw it empty and left: start another one.
            self._plan_prefetch()

    def _load_waiting(self) -> None:
        """Nodes left waiting on a prefetch that stopped (cancelled, failed) get their own query.

        Called once the prefetch worker has finished, so nothing else will answer them.
        """
        if self._pending is not None:
            return  # a new top level is on its way: the tree's nodes are about to be replaced
        in_flight = set(self._expansions.values())
        for branch in self.tree_view.waiting_branches():
            request = self._expansion(branch.path)
            if branch.path in in_flight:
                continue
            if request is None:
                self.tree_view.children_failed(branch.path)
            elif (cached := self._results.get(request.key)) is not None:
                self._apply_children(branch, cached)
            else:
                self._expansions[self._load_children(request)] = branch.path

    # prefetch: while the user reads, compute the expansions they are likely to ask for next -------

    def _plan_prefetch(self) -> None:
        """Queue the unloaded expandable nodes on screen (the cursor's first), then other saved hierarchies."""
        if not self.prefetch or self._pending is not None:
            return
        tree = self.tree_view
        candidates: list[Branch] = []
        if tree.cursor_branch is not None:
            candidates.append(tree.cursor_branch)
        candidates += [row.branch for row in tree.rows if row.kind == "node" and row.branch is not None]
        nodes = (self._expansion(branch.path) for branch in candidates
                 if branch.expandable and branch.children is None and branch.loading_since is None)
        roots = (self._expansion((), [dimension(level).name for level in levels])
                 for levels in self.finops.config.hierarchies.values())
        requests = plan_requests(nodes, roots, self._results)
        self._prefetcher.plan.replace(requests)
        if requests and not self._prefetcher.running():
            self._prefetcher.worker = self._prefetch()

    @work(thread=True, exclusive=True, group="alloc-prefetch", exit_on_error=False, name="allocation prefetch")
    def _prefetch(self) -> None:
        self._prefetcher.run(self.finops.cache, self.post_message)

    # ----------------------------------------------------------------------------------------------
    # bars: hierarchy, folded tag keys, breadcrumbs

    def _show_bars(self) -> None:
        self.show_context()
        self._show_hierarchy_bar()
        self._show_breadcrumbs()
        self._show_shared_detail()

    def _show_hierarchy_bar(self) -> None:
        levels = self.shown_hierarchy or tuple(self.hierarchy)
        parts = [Content.styled("Hierarchy " if not self.narrow else "", "$text-muted"),
                 Content.styled(self.hierarchy_name or "custom", "bold $text-accent"),
                 Content.styled(": ", "$text-muted"),
                 Content.styled(" › ".join(level_title(level) for level in levels), "bold"),
                 Content.styled(f"  ·  sorted by {self.tree_view.sort_mode}", "$text-muted")]
        for level in levels:
            key = level[4:] if level.startswith("tag:") else None
            variants = [raw for raw in self.folded.get(key, []) if raw != key] if key else []
            if variants:
                parts.append(Content.styled(f"  ·  {key} ← {', '.join(variants)}", "$text-muted"))
        self.query_one("#hierarchy-bar", Static).update(Content.assemble(*parts))

    def _show_breadcrumbs(self) -> None:
        tree = self.tree_view
        crumbs: list[Content] = [Content.assemble(Content.styled("All ", "$text-muted"),
                                                  Content.styled(money(tree.total, self.currency), "bold"))]
        branch = tree.cursor_branch
        for step in branch.trail if branch is not None else []:
            label_style = "bold $text-warning" if step.node.is_unallocated else "bold"
            # A "shared: <pool>" node names itself; the level it sits at is not what it is.
            level_name = f"{level_title(step.node.dimension)} " if step.node.shared is None else ""
            crumbs.append(Content.assemble(Content.styled(level_name, "$text-muted"),
                                           Content.styled(step.label, label_style)))
        level = tree.cursor_level()
        if tree.filters.get(level):
            crumbs[-1] = Content.assemble(crumbs[-1], Content.styled(f"  (filter “{tree.filters[level]}”)",
                                                                     "$text-accent"))
        separator = Content.styled(" › ", "$text-muted")
        # Keep the end of the path when it does not fit: where the cursor is matters most.
        room = max(20, self.size.width - 2)
        while len(crumbs) > 1 and sum(len(c.plain) + 3 for c in crumbs) > room:
            crumbs = [Content.styled("…", "$text-muted"), *crumbs[2:]] if crumbs[0].plain != "…" else \
                [crumbs[0], *crumbs[2:]]
        self.query_one("#breadcrumbs", Static).update(separator.join(crumbs))

    @on(AllocTree.CursorMoved)
    def _cursor_moved(self) -> None:
        self._show_breadcrumbs()
        self._show_shared_detail()
        self._plan_prefetch()

    # ----------------------------------------------------------------------------------------------
    # opening things: resources, the tagging queue, slices from other views

    @on(AllocTree.Opened)
    def _opened(self, message: AllocTree.Opened) -> None:
        node = message.branch.node
        if node.shared is not None:
            self.notify(shared_detail(node, self.currency or node.currency).plain, timeout=6)
        elif node.is_other:
            self.notify(f"{node.label} smaller items are folded into this row: the tree lists the "
                        f"{CHILDREN_LIMIT} largest per level.", timeout=5)
        elif node.is_unallocated:
            self.open_tagging(message.branch)
        elif node.dimension == "resource" and node.key:
            self.open_resource(node.key, message.branch)
        else:
            self.notify("This is the last level of the hierarchy: press H to add levels.", timeout=4)

    def open_resource(self, resource_id: str, branch: Branch | None = None, *, jumped_to: bool = False) -> None:
        trail = [(level_title(b.node.dimension), b.label) for b in branch.trail[:-1]] if branch else []
        self.finops.open_resource(resource_id, trail=trail, jumped_to=jumped_to)

    def open_tagging(self, branch: Branch | None) -> None:
        """The unallocated queue for the tag key of the branch's level (else the first tag level, else the team
        key), scoped to the branch's plain-dimension steps where the queue can filter by them."""
        tag_levels = [level[4:] for level in self.shown_hierarchy if level.startswith("tag:")]
        key = None
        scope: list[tuple[str, str | None, str]] = []
        if branch is not None:
            if branch.node.dimension.startswith("tag:"):
                key = branch.node.dimension[4:]
            steps = branch.trail if not branch.node.is_other else branch.trail[:-1]
            scope = [(b.node.dimension, b.node.key, b.label) for b in steps if not b.node.dimension.startswith("tag:")]
        key = key or (tag_levels[0] if tag_levels else self.finops.config.team_key)
        self.finops.open_queue(key, scope)

    def open_slice(self, dimension_name: str, key: str | None) -> None:
        """From another view (the overview's "service = Storage"): a hierarchy starting at that dimension,
        with that node expanded under the cursor."""
        name = dimension(dimension_name).name
        if name == "resource" and key:
            self.open_resource(key, jumped_to=True)  # its esc returns to the view that opened it
            return
        default = self.finops.config.hierarchies.get("default") or DEFAULT_HIERARCHY
        self.hierarchy = slice_hierarchy(name, default)
        self.hierarchy_name = next((n for n, levels in self.finops.config.hierarchies.items()
                                    if [dimension(level).name for level in levels] == self.hierarchy), None)
        self._pending_slice = ((name, key),)
        self.request_tree(keep_state=False)

    # ----------------------------------------------------------------------------------------------
    # actions

    def set_hierarchy(self, levels: Sequence[str], name: str | None) -> None:
        try:
            self.hierarchy = [d.name for d in resolve_hierarchy(levels)]
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        self.hierarchy_name = name
        self.request_tree(keep_state=False)

    def action_next_hierarchy(self) -> None:
        saved = self.finops.config.hierarchies
        names = list(saved)
        if len(names) <= 1 and self.hierarchy_name in names:
            self.notify("Only one saved hierarchy: press H to build and save another.", timeout=4)
            return
        index = names.index(self.hierarchy_name) if self.hierarchy_name in names else -1
        following = names[(index + 1) % len(names)]
        self.set_hierarchy(saved[following], following)

    def action_choose_hierarchy(self) -> None:
        if self.tag_key_coverage is None:
            self._open_dialog_when_keys_load = True
            self.load_tag_keys()
            return
        self._open_hierarchy_dialog()

    @on(TagKeysLoaded)
    def _tag_keys_loaded(self, message: TagKeysLoaded) -> None:
        self.tag_key_coverage = message.keys
        if self._open_dialog_when_keys_load:
            self._open_dialog_when_keys_load = False
            self._open_hierarchy_dialog()

    def _open_hierarchy_dialog(self) -> None:
        from finops_tui.ui.dialogs.hierarchy import HierarchyDialog

        def chosen(choice: HierarchyChoice | None) -> None:
            if choice is None:
                return
            if choice.save_as:
                self.finops.config.hierarchies[choice.save_as] = list(choice.levels)
                try:
                    save_setting("hierarchies", choice.save_as, list(choice.levels))
                except (OSError, UserError) as exc:
                    self.notify(f"Hierarchy not saved: {exc}", severity="warning")
                else:
                    self.notify(f"Saved hierarchy “{choice.save_as}” in config.toml (v cycles).", timeout=4)
            self.set_hierarchy(choice.levels, choice.save_as)

        self.app.push_screen(
            HierarchyDialog(self.hierarchy, self.tag_key_coverage or [], saved=list(self.finops.config.hierarchies)),
            chosen,
        )

    def action_cycle_sort(self) -> None:
        tree = self.tree_view
        tree.set_sort(SORT_MODES[(SORT_MODES.index(tree.sort_mode) + 1) % len(SORT_MODES)])
        self._show_hierarchy_bar()
        self.notify(f"Sorted by {SORT_TITLES[tree.sort_mode]}", timeout=2)

    def action_tag(self) -> None:
        self.open_tagging(self.tree_view.cursor_branch)

    def action_explain(self) -> None:
        """`x`: why the cost of the node under the cursor changed (a folded "(N more)" row: its parent's)."""
        branch = self.tree_view.cursor_branch
        trail = branch.trail if branch is not None else []
        if any(b.node.shared is not None for b in trail):
            self.notify("Explain reads direct cost: move to a node that is not a shared cost pool's share.",
                        timeout=4)
            return
        if trail and trail[-1].node.is_other:
            trail = trail[:-1]
        self.finops.open_explain([(b.node.dimension, b.node.key, b.label) for b in trail], root="Allocation")

    def action_filter(self) -> None:
        tree = self.tree_view
        self._filter_level = tree.cursor_level()
        self.open_filter(tree.filters.get(self._filter_level, ""))

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.tree_view.set_filter(self._filter_level, event.value)
        self._show_breadcrumbs()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one(FilterInput).display = False
        self.tree_view.focus()

    def action_back(self) -> None:
        """`esc`: first clear the filter of this level, then go up one level, then back to the view the user
        came from (the overview or the recommendations that opened this slice)."""
        tree = self.tree_view
        level = self._filter_level if self.filter_open else tree.cursor_level()
        if self.filter_open or tree.filters.get(level):
            self.close_filter()
            tree.set_filter(level, "")
            tree.focus()
            self._show_breadcrumbs()
            return
        if not tree.go_back():
            self.finops.go_back()

    def can_export(self) -> bool:
        return self.period is not None and bool(self.tree_view.roots)

    def action_export(self) -> None:
        """`ctrl+s`: with shared costs on, the chargeback of the month in view; else the cursor's level."""
        if self.shown_shared and self.period is not None and self.shown_state is not None:
            self.export_chargeback()
        else:
            self.export_level()

    def export_level(self) -> None:
        super().action_export()

    def chargeback_month(self) -> str | None:
        """The month in view: the month of the period's last day (month to date: this month)."""
        return self.period.last_day.strftime("%Y-%m") if self.period is not None else None

    def export_chargeback(self) -> None:
        month = self.chargeback_month()
        if month is None or self.shown_state is None:
            self.notify("Nothing to export yet.", severity="warning")
            return
        self._load_chargeback(month, self.shown_state[1], self.finops.config.team_key)

    @work(thread=True, exclusive=True, group="chargeback-export", exit_on_error=False, name="chargeback export")
    def _load_chargeback(self, month: str, metric: str, team_key: str) -> None:
        report = QueryGate().run(self.finops.cache, lambda cur: chargeback(cur, month, metric, team_key))
        if report is not None:
            self.post_message(ChargebackReady(report))

    @on(ChargebackReady)
    def _chargeback_ready(self, message: ChargebackReady) -> None:
        report = message.report

        def write(folder: Path) -> Path:
            path = folder / f"finops-chargeback-{report.month}-{_slug(report.key)}-{report.metric}.csv"
            with path.open("w", newline="", encoding="utf-8") as handle:
                handle.write(chargeback_csv(report))
            return path

        self.save_export(write)

    # ----------------------------------------------------------------------------------------------
    # shared costs: S, $ and L

    def context_forms(self) -> list[Content]:
        state = self.finops.view_state
        return cost_context(self.period, state.period, state.metric, self.currency, previous=self.previous,
                            shared=state.shared)

    def resumed(self) -> None:
        # Another view may have switched shared costs meanwhile.
        if self.requested_state is not None and self._requested_shared != self.finops.view_state.shared:
            self.request_view()
            return
        super().resumed()

    def set_shared(self, on: bool) -> None:
        self.finops.view_state.shared = on
        self.show_context()
        self.request_view()

    def action_toggle_shared(self) -> None:
        self.set_shared(not self.finops.view_state.shared)

    def _show_shared_detail(self) -> None:
        detail = self.query_one("#shared-detail", Static)
        detail.display = self.shown_shared
        if not self.shown_shared:
            return
        branch = self.tree_view.cursor_branch
        if branch is not None and branch.node.shared is not None:
            detail.update(shared_detail(branch.node, self.currency or branch.node.currency))
        elif not any(level.startswith("tag:") for level in self.shown_hierarchy):
            detail.update(Content.styled("No pool applies here: pools split to a tag key, and this hierarchy has "
                                         "no tag level (H adds one).", "$text-warning"))
        else:
            detail.update(Content.styled("Team figures include each shared cost pool's share (green rows) · "
                                         "$ makes a node a pool · L lists pools · ctrl+s saves the chargeback",
                                         "$text-muted"))

    def action_make_pool(self) -> None:
        """`$`: the node under the cursor as a new shared cost pool (a dialog with a preview; saved on Save)."""
        from finops_tui.ui.dialogs.pool_dialog import PoolDialog, seed_from_trail

        branch = self.tree_view.cursor_branch
        if branch is None or self.period is None or self.shown_state is None:
            self.notify("Wait for the tree, then move to a node.", timeout=3)
            return
        if branch.node.is_other:
            self.notify("This row folds many nodes: filter (/) or move to one of them.", timeout=4)
            return
        if any(b.node.shared is not None for b in branch.trail):
            self.notify("This is a shared cost pool already: L lists, reorders and deletes pools.", timeout=4)
            return
        try:
            seed = seed_from_trail([(b.node.dimension, b.node.key, b.label) for b in branch.trail])
        except ValueError as exc:
            self.notify(str(exc), severity="warning", timeout=6)
            return

        def chosen(pool: Pool | None) -> None:
            if pool is not None:
                self._save_pool(pool)

        self.app.push_screen(PoolDialog(seed, cache=self.finops.cache, config=self.finops.config,
                                        start=self.period.start, end=self.period.end,
                                        period_text=period_title(self.period), metric=self.shown_state[1],
                                        currency=self.currency), chosen)

    @work(thread=True, exclusive=True, group="pool-write", exit_on_error=False, name="save pool")
    def _save_pool(self, pool: Pool) -> None:
        from finops_tui.allocation.shared import save_pool
        from finops_tui.ui.dialogs.pool_dialog import change_pools

        config = self.finops.config
        change_pools(self.finops.cache, config, lambda: save_pool(pool, team_key=config.team_key))
        self.post_message(PoolsChanged(f"Pool “{pool.name}” saved and applied: {pool.describe()}"))

    def action_list_pools(self) -> None:
        """`L`: the pools in order with their cost in the period; reorder or delete them."""
        from finops_tui.ui.dialogs.pool_list import PoolListDialog

        if self.period is None or self.shown_state is None or self.currency is None:
            self.notify("Wait for the tree first.", timeout=3)
            return

        def closed(changed: bool | None) -> None:
            if changed:
                self.post_message(PoolsChanged("Shared cost pools changed and applied."))

        self.app.push_screen(PoolListDialog(cache=self.finops.cache, config=self.finops.config, period=self.period,
                                            period_text=period_title(self.period), metric=self.shown_state[1],
                                            currency=self.currency), closed)

    @on(PoolsChanged)
    def _pools_changed(self, message: PoolsChanged) -> None:
        self.notify(message.text, title="Shared costs", timeout=6)
        self.app.post_message(TagsChanged(self.finops.config.team_key, 0))  # every view's figures may move
        self.finops.view_state.shared = True  # show what the pools did
        self.show_context()
        self.reload()

    def export_csv(self, folder: Path) -> Path:
        """Write the cursor's level (as shown: sorted, filtered) with exact figures to a CSV file in `folder`."""
        assert self.period is not None and self.shown_state is not None
        tree = self.tree_view
        level = tree.cursor_level()
        parent = tree.branch(level) if level else None
        levels = "-".join(_slug(level_title(name)) for name in self.shown_hierarchy[: len(level) + 1])
        where = "-" + "-".join(_slug(b.label) for b in parent.trail) if parent is not None else ""
        path = folder / (f"finops-allocation-{levels}{where}-{self.period.start}..{self.period.end}-"
                         f"{self.shown_state[1]}-{self.currency}.csv")
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["parent", "dimension", "key", "label", "currency", "cost", "previous_cost", "change",
                             "share_percent", "folded"])
            writer.writerows(tree.csv_rows(level))
        return path

    def palette_commands(self) -> Iterable[PaletteCommand]:
        for name, levels in self.finops.config.hierarchies.items():
            yield PaletteCommand(f"Hierarchy: {name}", " › ".join(level_title(level) for level in levels),
                                 partial(self.set_hierarchy, levels, name))
        yield PaletteCommand("Hierarchy: build…", "Pick the levels in order and save them",
                             self.action_choose_hierarchy)
        for mode in SORT_MODES:
            yield PaletteCommand(f"Sort: {mode}", f"Sort every level by {SORT_TITLES[mode]}",
                                 partial(self._sort_by, mode))
        yield from self.view_palette_commands()
        yield PaletteCommand("Filter this level", "Filter the cursor's level by name", self.action_filter)
        yield PaletteCommand("Tag unallocated…", "Open the unallocated queue for this level's tag key", self.action_tag)
        yield PaletteCommand("Export level to CSV", "Save the cursor's level in the exports folder",
                             self.export_level)
        on = self.finops.view_state.shared
        yield PaletteCommand(f"Shared costs: {'off' if on else 'on'}",
                             "Team figures with or without each shared cost pool's share (S)",
                             partial(self.set_shared, not on))
        yield PaletteCommand("Make this node a shared cost pool…", "Method, recipients and a preview ($)",
                             self.action_make_pool)
        yield PaletteCommand("Shared cost pools…", "List, reorder or delete the pools (L)", self.action_list_pools)
        if self.period is not None:
            yield PaletteCommand(f"Export chargeback {self.chargeback_month()}",
                                 "Per team: direct cost, each pool's share, total (CSV, as `report chargeback`)",
                                 self.export_chargeback)

    def _sort_by(self, mode: str) -> None:
        self.tree_view.set_sort(mode)
        self._show_hierarchy_bar()


def shared_detail(node: Node, currency: str) -> Content:
    """What a "shared: <pool>" node stands for: the pool, its method, and the share it holds of the pool."""
    from finops_tui.allocation.shared import METHOD_TITLES

    info = node.shared
    assert info is not None
    method = METHOD_TITLES.get(info.method, info.method)
    whole = money(info.pool_cost, currency)
    if info.whole:
        return Content.assemble(Content.styled(f"shared: {info.pool}", "bold $text-success"),
                                Content.styled(f" · {method} · {whole} split to {info.to_key}; expand for each "
                                               f"{info.to_key}'s share", "$text-muted"))
    fraction = info.fraction(node.cost)
    part = f" = {fraction * 100:.1f}% of {whole}" if fraction is not None else ""
    who = info.recipient if info.recipient is not None else f"no {info.to_key} (nobody could take it)"
    return Content.assemble(Content.styled(f"shared: {info.pool}", "bold $text-success"),
                            Content.styled(f" · {method} · {who}: ", "$text-muted"),
                            Content.styled(money(node.cost, currency), "bold"),
                            Content.styled(part, "$text-muted"))
