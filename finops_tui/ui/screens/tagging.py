"""Tagging screen: the unallocated queue for a tag key, ranked by cost; mark, tag, undo, make rules, push."""

from __future__ import annotations

import csv
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import ClassVar

import duckdb
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Header, Input, Static
from textual.worker import get_current_worker

from finops_tui.allocation import assign, journal
from finops_tui.allocation.effective import load_tag_policy
from finops_tui.allocation.push import PushItem, preview, refusal_line
from finops_tui.allocation.queue import QueueGroup, QueueItem, QueueSubscription, UnallocatedQueue, unallocated_queue
from finops_tui.allocation.rules import Rule, RuleAllocation, load_rules, rule_allocations, rules_path
from finops_tui.basis.money import money, percent
from finops_tui.basis.periods import Period
from finops_tui.report.overview import currency_totals
from finops_tui.report.tags import TagKeyCoverage, tag_values
from finops_tui.store.sources import Freshness
from finops_tui.ui.commands import PaletteCommand
from finops_tui.ui.messages import EditReverted, TagsApplied, TagsChanged
from finops_tui.ui.queries import QueryGate
from finops_tui.ui.screens.cost_view import CostViewScreen, FilterInput, TagKeysLoaded, level_title, resolve_view
from finops_tui.ui.views import ScopeStep
from finops_tui.ui.widgets.alloc_queue import ItemFilter, QueueTable
from finops_tui.ui.widgets.context_bar import ContextBar
from finops_tui.ui.widgets.key_footer import KeyFooter
from finops_tui.ui.widgets.status_bar import StatusBar

QUEUE_LIMIT = 5000  # resources listed (costliest first); subtotals and counts still cover every one
LISTED_PAINT_WAIT = 0.3  # seconds the suggestions wait at most for the rows to be painted
ZERO = Decimal(0)


# --------------------------------------------------------------------------------------------------
# queue requests and results


@dataclass(frozen=True)
class QueueRequest:
    serial: int
    key: str
    period: str
    metric: str
    currency: str | None
    # Set once the queue's rows are painted (or the request is superseded): the worker works out the suggestions
    # after that, so their Python work does not hold the GIL while the UI thread paints the rows.
    listed_painted: threading.Event = field(default_factory=threading.Event, compare=False)


@dataclass
class QueueLoaded(Message):
    request: QueueRequest
    period: Period
    freshness: Freshness
    currencies: list[str]
    currency: str
    queue: UnallocatedQueue
    values: list[str]  # the key's existing values, most used first (autocomplete)
    total: Decimal  # the period's cost in the currency, for the unallocated share
    pending_pushes: int


@dataclass
class RulesLoaded(Message):
    allocations: list[RuleAllocation]


@dataclass
class RuleSaved(Message):
    rule: Rule
    allocation: RuleAllocation | None


@dataclass
class PushPreviewed(Message):
    items: list[PushItem]


def scope_filter(scope: Sequence[ScopeStep]) -> tuple[ItemFilter | None, list[str]]:
    """A filter for the queue from the tree's path; the dimensions a queue row cannot be filtered by."""
    checks: list[Callable[[QueueItem], bool]] = []
    unsupported: list[str] = []
    for dim, key, _label in scope:
        if dim == "subscription":
            checks.append(partial(_same, "subscription_id", key, False))
        elif dim == "resource-group":
            checks.append(partial(_same, "resource_group", key, True))
        elif dim == "resource-type":
            checks.append(partial(_same, "resource_type", key, False))
        elif dim == "resource":
            checks.append(partial(_same, "resource_id", key, False))
        else:
            unsupported.append(dim)
    if not checks:
        return None, unsupported
    return (lambda s, g, i: all(check(i) for check in checks)), unsupported


def _same(field: str, wanted: str | None, fold: bool, item: QueueItem) -> bool:
    value = getattr(item, field)
    if fold:
        return (value.lower() if value else None) == (wanted.lower() if wanted else None)
    return bool(value == wanted)


def common_pattern(names: Sequence[str]) -> str:
    """`rg-payments-prod`, `rg-payments-dev` → `rg-payments-*`: the glob a rule for these groups needs."""
    names = sorted({n for n in names if n})
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    lowered = [n.lower() for n in names]
    length = 0
    while all(len(n) > length and n[length] == lowered[0][length] for n in lowered):
        length += 1
    return f"{names[0][:length]}*" if length else "*"


# --------------------------------------------------------------------------------------------------
# the screen


class TaggingScreen(CostViewScreen):
    """What to tag next: the resources without a value for one tag key, the costliest first."""

    VIEW_TITLE = "Tagging"
    AUTO_FOCUS = "#queue"  # what on_mount focuses: no detour through the hidden filter (two restyles)
    QUERY_GROUP = "tagging-queue"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "tag", "Tag", id="view.tag", tooltip="Set the key's value on the marked resources"),
        Binding("y", "accept", "Accept", id="tagging.accept",
                tooltip="Apply the suggested value of the marked resources (or the one under the cursor)"),
        Binding("u", "undo", "Undo", id="tagging.undo", tooltip="Undo the last tag edit (not once pushed)"),
        Binding("ctrl+r", "redo", "Redo", id="tagging.redo", tooltip="Redo the last undone tag edit"),
        Binding("r", "new_rule", "Rule", id="tagging.rule",
                tooltip="Make an allocation rule from the marked resource groups"),
        Binding("L", "list_rules", "Rules", id="tagging.rules", tooltip="The rules and the spend each allocates"),
        Binding("P", "push", "Push", id="tagging.push", tooltip="Preview the tag merges for Azure, then confirm"),
        Binding("K", "choose_key", "Key", id="tagging.key", tooltip="Show the queue of another tag key"),
        Binding("slash", "filter", "Filter", id="view.filter", tooltip="Filter by name, type or resource group"),
        Binding("ctrl+s", "export", "Export", id="view.export",
                tooltip="Save the queue as CSV in the exports folder"),
        Binding("escape", "back", "Back", id="view.back", show=False,
                tooltip="Clear the filter, then the marks, then go back to where you came from"),
    ]

    DEFAULT_CSS = """
    TaggingScreen #notice { height: auto; padding: 0 1; display: none; }
    TaggingScreen #summary { height: auto; padding: 0 1; }
    TaggingScreen #scope { height: auto; padding: 0 1; color: $text-muted; display: none; }
    TaggingScreen #marks { height: 1; padding: 0 1; background: $boost; text-wrap: nowrap; text-overflow: ellipsis; }
    TaggingScreen #filter { display: none; margin: 0 1; }
    TaggingScreen QueueTable { background: $surface; }
    """
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (140, "-wide")]  # noqa: RUF012 (Textual's type)

    def __init__(self, *, key: str | None = None, scope: Sequence[ScopeStep] = ()) -> None:
        super().__init__()
        self.key = (key or self.finops.config.team_key).strip().lower()
        self.scope = list(scope)
        self.queue: UnallocatedQueue | None = None
        self.values: list[str] = []
        self.total = ZERO
        self.pending_pushes = 0
        self.filter_text = ""
        self.tag_key_coverage: list[TagKeyCoverage] | None = None
        self._serial = 0
        self._request: QueueRequest | None = None
        self._listed_serial = 0  # the request whose rows are on screen (its suggestions may still come)
        self._marked_count = 0
        self._marked_cost = ZERO
        self._keep_marks = False
        self._new_key = False
        self._local_tagged = 0  # allocated resources in the tag edit under way (their tags stay local)

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        yield ContextBar("tagging")
        yield Static("", id="notice")
        yield Static("", id="summary")
        yield Static("", id="scope")
        yield Static("", id="marks")
        yield FilterInput(placeholder="filter by name, type or resource group (enter keeps it, esc clears)",
                          id="filter")
        yield QueueTable(id="queue")
        yield StatusBar()
        yield KeyFooter()

    @property
    def table(self) -> QueueTable:
        return self.query_one(QueueTable)

    @property
    def is_pushed(self) -> bool:
        """Opened over the allocation tree (esc goes back to it) rather than as view 4."""
        return self.app.screen_stack[0] is not self

    def on_mount(self) -> None:
        super().on_mount()
        self.show_status()
        self._apply_filters()
        self.table.focus()
        self.request_view()

    def on_resize(self) -> None:
        if self.queue is not None:
            self._show_bars()

    # ----------------------------------------------------------------------------------------------
    # the queue

    def request_view(self) -> None:
        state = self.finops.view_state
        self._serial += 1
        if self._request is not None:
            self._request.listed_painted.set()  # superseded: nothing of it will be painted
        request = self._request = QueueRequest(self._serial, self.key, state.period, state.metric, state.currency)
        self.begin_query(request)
        self._load(request)

    def reload(self) -> None:
        self._keep_marks = True  # tags changed elsewhere: keep the marks of resources still unallocated
        self.request_view()

    @work(thread=True, exclusive=True, group="tagging-queue", exit_on_error=False, name="unallocated queue")
    def _load(self, request: QueueRequest) -> None:
        worker = get_current_worker()

        def query(cur: duckdb.DuckDBPyConnection) -> QueueLoaded:
            period, fresh, codes, currency = resolve_view(cur, request.period, request.metric, request.currency)
            values = tag_values(cur, request.key)
            total = next((t.cost for t in currency_totals(cur, period, request.metric) if t.currency == currency),
                         ZERO)
            pending = len(journal.pending_edits(cur))

            def answer(queue: UnallocatedQueue) -> QueueLoaded:
                return QueueLoaded(request, period, fresh, codes, currency, queue, values, total, pending)

            def listed(queue: UnallocatedQueue) -> None:
                # The rows and their exact totals paint now; the suggestions (half the query) follow.
                if not worker.is_cancelled:
                    self.post_message(answer(queue))
                    request.listed_painted.wait(LISTED_PAINT_WAIT)

            return answer(unallocated_queue(cur, request.key, period, request.metric, currency, limit=QUEUE_LIMIT,
                                            on_listed=listed))

        self.run_query(query)

    @on(QueueLoaded)
    def _queue_loaded(self, message: QueueLoaded) -> None:
        if message.request.serial != self._serial:
            return
        table = self.table
        if message.queue.suggested and self._listed_serial == message.request.serial:
            # The same queue with its suggestions: the cursor, the marks and the scroll stay where the user left them.
            self.queue = message.queue
            table.show_queue(message.queue, keep_marks=True)
            return
        self._listed_serial = message.request.serial
        if not message.queue.suggested:
            if self.app.screen is self:
                self.call_after_refresh(message.request.listed_painted.set)
            else:  # made ahead, hidden: not painted before it is shown
                message.request.listed_painted.set()
        self.end_query()
        self.take_answer(message)
        self.queue, self.values, self.total = message.queue, message.values, message.total
        self.pending_pushes = message.pending_pushes
        table.show_queue(message.queue, keep_marks=self._keep_marks, from_top=self._new_key)
        self._keep_marks = self._new_key = False
        self._show_bars()
        self.show_status()

    def loading_target(self) -> Widget:
        return self.table

    def show_loading(self) -> None:
        # Before its first answer the empty table already reads "loading…": no overlay. Mounting one, and the
        # focus leaving the table and coming back, rebuilt the footer twice in the first switch to the view.
        if self.queue is not None:
            super().show_loading()

    # ----------------------------------------------------------------------------------------------
    # bars

    def _show_bars(self) -> None:
        self.show_context()
        self._show_summary()
        self._show_scope()
        self._show_marks()

    def _show_summary(self) -> None:
        queue = self.queue
        if queue is None:
            return
        currency = self.currency or ""
        share = percent(queue.total, self.total) if self.total else "—"
        parts = [
            Content.styled("Unallocated for tag ", "$text-muted"), Content.styled(self.key, "bold $text-accent"),
            Content.styled(": ", "$text-muted"), Content.styled(money(queue.total, currency), "bold $text-warning"),
            Content.styled(f"  {share} of {money(self.total)}", "bold"),
            Content.styled(f"  ·  {queue.resources:,} resources" + ("" if self.narrow else ", costliest first"),
                           "$text-muted"),
        ]
        if queue.without_resource and not self.narrow:
            parts.append(Content.styled(f"  ·  {money(queue.without_resource)} on no resource (cannot be tagged)",
                                        "$text-muted"))
        if len(queue.items) < queue.resources:
            parts.append(Content.styled(f"  ·  listing the top {len(queue.items):,}", "$text-muted"))
        self.query_one("#summary", Static).update(Content.assemble(*parts))

    def _show_scope(self) -> None:
        scope = self.query_one("#scope", Static)
        _, unsupported = scope_filter(self.scope)
        parts: list[Content] = []
        if self.scope:
            where = " › ".join(f"{level_title(dim)} {label}" for dim, _key, label in self.scope
                               if dim not in unsupported)
            if where:
                parts.append(Content.assemble(Content.styled("Scope: ", "$text-muted"), Content.styled(where, "bold"),
                                              Content.styled("  (from the allocation tree)", "$text-muted")))
            if unsupported:
                names = ", ".join(level_title(dim) for dim in unsupported)
                parts.append(Content.styled(f"Not filtered by {names}: the queue lists resources by subscription "
                                            "and resource group.", "$text-muted"))
        if self.filter_text:
            parts.append(Content.assemble(Content.styled("Filter: ", "$text-muted"),
                                          Content.styled(f"“{self.filter_text}”", "bold $text-accent"),
                                          Content.styled("  (esc clears)", "$text-muted")))
        scope.update(Content("\n").join(parts) if parts else "")
        scope.display = bool(parts)

    def _show_marks(self) -> None:
        parts: list[Content] = []
        if self._marked_count:
            parts.append(Content.styled(f"{self._marked_count:,} marked · {money(self._marked_cost, self.currency)}",
                                        "bold $text-accent"))
        else:
            parts.append(Content.styled("nothing marked", "$text-muted"))
        # The edits waiting for a push come before the key hints, which the line's end may cut.
        if self.pending_pushes:
            parts.append(Content.styled(f"   {self.pending_pushes:,} edits to push (P)", "$text-warning"))
        hint = "space mark ↓ · a group · t tag · y accept · r rule" if self.narrow else \
            "space mark ↓ · shift+↑↓ range · a group · t tag · y accept · u undo · r rule · P push"
        parts.append(Content.styled(f"   {hint}", "$text-muted"))
        self.query_one("#marks", Static).update(Content.assemble(*parts))

    @on(QueueTable.MarksChanged)
    def _marks_changed(self, message: QueueTable.MarksChanged) -> None:
        self._marked_count, self._marked_cost = message.count, message.cost
        self._show_marks()

    # ----------------------------------------------------------------------------------------------
    # filters: the tree's scope and the `/` text

    def _apply_filters(self) -> None:
        scoped, _ = scope_filter(self.scope)
        text = self.filter_text.casefold()

        def by_text(s: QueueSubscription, g: QueueGroup, i: QueueItem) -> bool:
            return any(text in (field or "").casefold() for field in (i.name, i.resource_id, i.resource_type,
                                                                       i.resource_group))

        checks = [check for check in (scoped, by_text if text else None) if check is not None]
        keep: ItemFilter | None = (lambda s, g, i: all(c(s, g, i) for c in checks)) if checks else None
        empty = "no resource matches the filter (esc clears)" if text else \
            "nothing unallocated here: every resource with cost has a value for this key" if scoped else \
            f"every resource with cost in this period has a value for {self.key}"
        self.table.set_filter(keep, empty)

    def action_filter(self) -> None:
        self.open_filter(self.filter_text)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._apply_filters()
        self._show_scope()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one(FilterInput).display = False
        self.table.focus()

    def action_back(self) -> None:
        """`esc`: clear the filter, then the marks, then go back to the tree (when opened from it)."""
        if self.filter_open or self.filter_text:
            self.close_filter()
            self.filter_text = ""
            self._apply_filters()
            self._show_scope()
            self.table.focus()
        elif self.table.marked:
            self.table.clear_marks()
        elif self.is_pushed:
            self.app.pop_screen()
        else:
            self.finops.go_back()

    # ----------------------------------------------------------------------------------------------
    # tagging

    def _selection(self) -> list[QueueItem]:
        """The marked resources, else the one under the cursor."""
        table = self.table
        marked = table.marked_items()
        if marked:
            return marked
        return [table.cursor_item] if table.cursor_item is not None else []

    def action_tag(self) -> None:
        from finops_tui.ui.dialogs.tag_dialog import TagChoice, TagDialog

        items = self._selection()
        if not items:
            self.notify("Nothing to tag: move to a resource or mark some (space, a).", timeout=3)
            return
        suggested = {item.suggestion.value if item.suggestion else None for item in items}
        value = next(iter(suggested)) if len(suggested) == 1 else None
        cost = money(sum((i.cost for i in items), ZERO), self.currency)

        def chosen(choice: TagChoice | None) -> None:
            if choice is not None:
                self._apply({choice.value: [i.resource_id for i in items]}, choice.key, items)

        self.app.push_screen(TagDialog(key=self.key, resources=len(items), cost=cost, values=self.values,
                                       value=value or ""), chosen)

    def action_accept(self) -> None:
        items = self._selection()
        assignments: dict[str, list[str]] = {}
        for item in items:
            if item.suggestion is not None:
                assignments.setdefault(item.suggestion.value, []).append(item.resource_id)
        if not assignments:
            if self.queue is not None and not self.queue.suggested:
                self.notify("The suggestions are still being worked out: press y again in a moment, or t to choose "
                            "a value.", timeout=4)
                return
            self.notify("No suggestion for the selected resources: press t to choose a value.", timeout=4)
            return
        self._apply(assignments, self.key, [i for i in items if i.suggestion is not None])

    def _apply(self, assignments: dict[str, list[str]], key: str, items: Sequence[QueueItem]) -> None:
        # An allocated resource (a Kubernetes workload…) is no Azure resource: the toast says its tag stays here.
        self._local_tagged = sum(1 for item in items if item.is_allocated)
        self._write_tags(assignments, key)

    @work(thread=True, group="tag-edit", exit_on_error=False, name="tag edit")
    def _write_tags(self, assignments: dict[str, list[str]], key: str) -> None:
        policy = load_tag_policy(self.finops.config)
        self.post_message(TagsApplied(assign.assign_tags(self.finops.cache, policy, assignments, key)))

    @on(TagsApplied)
    def _tags_applied(self, message: TagsApplied) -> None:
        local, self._local_tagged = self._local_tagged, 0
        note = ""
        if local and message.edit.batches:
            noun = "it is an allocated resource" if local == 1 else f"{local} are allocated resources"
            note = (f"\nThe tag stays local where {noun} (split from a shared host, not an Azure resource): "
                    "push never sends it.")
        self.notify(message.describe() + note, title="Tagged", timeout=8 if note else 6)
        if message.edit.batches:
            self.app.post_message(TagsChanged(message.edit.key, message.edit.resources))
            self.request_view()

    def action_undo(self) -> None:
        self._revert("undo")

    def action_redo(self) -> None:
        self._revert("redo")

    @work(thread=True, group="tag-edit", exit_on_error=False, name="undo")
    def _revert(self, verb: str) -> None:
        batch = assign.revert(self.finops.cache, load_tag_policy(self.finops.config), verb)
        self.post_message(EditReverted(verb, batch))

    @on(EditReverted)
    def _reverted(self, message: EditReverted) -> None:
        self.notify(message.describe(), timeout=5)
        if message.batch is not None:
            self.app.post_message(TagsChanged(message.batch.tag_key, message.batch.resources))
            self._keep_marks = True
            self.request_view()

    # rules ---------------------------------------------------------------------------------------

    def action_new_rule(self) -> None:
        from finops_tui.ui.dialogs.tag_dialog import RuleDialog

        items = self._selection()
        groups = sorted({item.resource_group for item in items if item.resource_group})
        if not groups and self.table.cursor is not None and self.table.cursor.group is not None:
            groups = [self.table.cursor.group.resource_group or ""]
        suggestions = Counter(item.suggestion.value for item in items if item.suggestion)
        value = suggestions.most_common(1)[0][0] if suggestions else ""

        def chosen(rule: Rule | None) -> None:
            if rule is not None:
                self._save_rule(rule)

        source = "the marked rows" if self.table.marked_items() else "the row under the cursor"
        self.app.push_screen(RuleDialog(pattern=common_pattern(groups), key=self.key, value=value, values=self.values,
                                        examples=groups, examples_from=source), chosen)

    @work(thread=True, group="tag-edit", exit_on_error=False, name="save rule")
    def _save_rule(self, rule: Rule) -> None:
        saved = assign.add_rule(self.finops.cache, rule, partial(load_tag_policy, self.finops.config))
        allocation = None
        if self.period is not None:
            period, metric, currency = self.period, self.finops.view_state.metric, self.currency
            with self.finops.cache.cursor() as cur:
                found = rule_allocations(cur, period, metric, currency, rules=load_rules())
            allocation = next((a for a in found if a.rule.index == saved.index), None)
        self.post_message(RuleSaved(saved, allocation))

    @on(RuleSaved)
    def _rule_saved(self, message: RuleSaved) -> None:
        allocation = message.allocation
        spend = f"; allocates {money(allocation.cost, allocation.currency)} on {allocation.resources:,} resources" \
            if allocation is not None else ""
        self.notify(f"Rule {message.rule.index} saved: {message.rule.describe()}{spend}", title="Rule", timeout=6)
        key = next(iter(message.rule.set_tags))
        self.app.post_message(TagsChanged(key, allocation.resources if allocation else 0))
        self.request_view()

    def action_list_rules(self) -> None:
        self._load_rules()

    @work(thread=True, exclusive=True, group="tagging-rules", exit_on_error=False, name="rules")
    def _load_rules(self) -> None:
        period, metric, currency = self.period, self.finops.view_state.metric, self.currency
        if period is None:
            return
        found = QueryGate().run(
            self.finops.cache, lambda cur: rule_allocations(cur, period, metric, currency, rules=load_rules())
        )
        if found is not None:
            self.post_message(RulesLoaded(found))

    @on(RulesLoaded)
    def _rules_loaded(self, message: RulesLoaded) -> None:
        from finops_tui.ui.dialogs.tag_dialog import RulesDialog

        label = self.period.label() if self.period else ""
        self.app.push_screen(RulesDialog(message.allocations, period=label, path=str(rules_path())))

    # push ----------------------------------------------------------------------------------------

    def action_push(self) -> None:
        self._preview_push()

    @work(thread=True, exclusive=True, group="tagging-push-preview", exit_on_error=False, name="push preview")
    def _preview_push(self) -> None:
        items = QueryGate().run(self.finops.cache, preview)
        if items is not None:
            self.post_message(PushPreviewed(items))

    @on(PushPreviewed)
    def _push_previewed(self, message: PushPreviewed) -> None:
        from finops_tui.ui.dialogs.push_preview import PushOutcome, PushPreviewDialog

        if not message.items:
            self.notify("Nothing to push: no pending tag edits.", timeout=3)
            return
        items = [item for item in message.items if item.refusal is None]
        refused = [item for item in message.items if item.refusal is not None]
        if refused:
            line = refusal_line(refused, sendable=len(items))
            self.notify(line[:1].upper() + line[1:] + ".", title="Push", severity="warning", timeout=10,
                        markup=False)
        if not items:
            return
        config = self.finops.config
        mode = config.credential

        def closed(outcome: PushOutcome | None) -> None:
            if outcome is not None:
                self.notify(f"Pushed {outcome.pushed:,}, failed {outcome.failed:,}.", title="Push",
                            severity="warning" if outcome.failed else "information", timeout=6)
                self._keep_marks = True
                self.request_view()

        self.app.push_screen(PushPreviewDialog(items, cache=self.finops.cache, endpoint=config.arm_endpoint,
                                               credential_mode=mode), closed)

    # another key ----------------------------------------------------------------------------------

    def action_choose_key(self) -> None:
        self.load_tag_keys()

    @on(TagKeysLoaded)
    def _tag_keys_listed(self, message: TagKeysLoaded) -> None:
        from finops_tui.ui.dialogs.tag_dialog import TagKeyDialog

        self.tag_key_coverage = message.keys
        self.app.push_screen(TagKeyDialog(self.key, message.keys, self.finops.config.tag_keys), self.set_key)

    def set_key(self, key: str | None) -> None:
        if key and key != self.key:
            self.key = key.lower()
            self._new_key = True  # another queue: it starts at its top, not at the old queue's scroll
            self.request_view()

    # other ---------------------------------------------------------------------------------------

    @on(QueueTable.Opened)
    def _open_resource(self, message: QueueTable.Opened) -> None:
        item = message.item
        trail = [("tagging", f"{self.key} (unallocated)"), ("resource group", item.resource_group or "(none)")]
        self.finops.open_resource(item.resource_id, trail=trail, root="Tagging")

    def can_export(self) -> bool:
        return self.queue is not None and self.queue.suggested and self.period is not None

    def export_csv(self, folder: Path) -> Path:
        """The listed queue (after filters) with exact figures and the suggestions."""
        assert self.period is not None and self.shown_state is not None
        path = folder / (f"finops-unallocated-{self.key}-{self.period.start}..{self.period.end}-"
                         f"{self.shown_state[1]}-{self.currency}.csv")
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["subscription", "resource_group", "resource_id", "name", "type", "currency", "cost",
                             "suggested_value", "reason"])
            for item in self.table.listed_items():
                suggestion = item.suggestion
                writer.writerow([item.subscription_id or "", item.resource_group or "", item.arm_id, item.name or "",
                                 item.resource_type or "", self.currency, format(item.cost, "f"),
                                 suggestion.value if suggestion else "", suggestion.reason if suggestion else ""])
        return path

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield PaletteCommand("Tag the marked resources…", "Set the key's value (t)", self.action_tag)
        yield PaletteCommand("Accept suggestions", "Apply the suggested values (y)", self.action_accept)
        yield PaletteCommand("Undo the last tag edit", "u", self.action_undo)
        yield PaletteCommand("Redo", "ctrl+r", self.action_redo)
        yield PaletteCommand("New rule from the selection…", "r", self.action_new_rule)
        yield PaletteCommand("Rules and the spend they allocate", "L", self.action_list_rules)
        yield PaletteCommand("Push tags to Azure (preview)…", "P", self.action_push)
        yield PaletteCommand("Tag key…", "Show the queue of another tag key (K)", self.action_choose_key)
        yield from self.view_palette_commands()
        yield PaletteCommand("Export queue to CSV", "Save the listed queue in the exports folder (ctrl+s)",
                             self.action_export)
