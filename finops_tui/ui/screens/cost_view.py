"""The base of every cost view: the shared period, metric and currency, the main query, bars, filter, export."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import ClassVar, NamedTuple, Protocol

import duckdb
from textual import work
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input, Static

from finops_tui import clock
from finops_tui.basis.metrics import currencies
from finops_tui.basis.periods import Period, resolve_period
from finops_tui.report.tags import TagKeyCoverage, tag_keys
from finops_tui.store.sources import Freshness
from finops_tui.ui.commands import PaletteCommand
from finops_tui.ui.dialogs.period import CUSTOM, CustomPeriodDialog, PeriodDialog
from finops_tui.ui.formatting import METRIC_LABELS, PERIOD_CHOICES, freshness_line, old_data_notice, short_path
from finops_tui.ui.queries import QueryGate
from finops_tui.ui.screens.base import FinopsScreen
from finops_tui.ui.widgets.context_bar import ContextBar, cost_context
from finops_tui.ui.widgets.status_bar import StatusBar

LOADING_DELAY = 0.1  # seconds before a pending query shows the loading state
NARROW = 100  # columns under which the screens drop secondary text

ViewKey = tuple[str, str, str | None]  # (period spec, metric, currency asked for)


def pick_currency(asked: str | None, found: Sequence[str]) -> str:
    """The currency the user chose if it has cost in the period, else the largest one."""
    if asked and asked in found:
        return asked
    return found[0] if found else (asked or "USD")


class ViewBasis(NamedTuple):
    """What a view's query resolves before it reads figures: the period, the data's freshness, the currencies
    with cost in the period (largest first) and the one shown."""

    period: Period
    freshness: Freshness
    currencies: list[str]
    currency: str


def resolve_view(cur: duckdb.DuckDBPyConnection, period_spec: str, metric: str, asked: str | None) -> ViewBasis:
    """The period of `period_spec` on this cache, and the currency shown in it (`asked` when it has cost)."""
    period, fresh = resolve_period(cur, period_spec)
    codes = currencies(cur, period, metric)
    return ViewBasis(period, fresh, codes, pick_currency(asked, codes))


@dataclass
class TagKeysLoaded(Message):
    """The tag keys with cost in the view's period, with their coverage (for the hierarchy and key dialogs)."""

    keys: list[TagKeyCoverage]


class ViewRequest(Protocol):
    """What a view's main query was asked for."""

    @property
    def period(self) -> str: ...
    @property
    def metric(self) -> str: ...
    @property
    def currency(self) -> str | None: ...


class ViewAnswer(Protocol):
    """A view's main query's answer: its request and the basis it resolved."""

    @property
    def request(self) -> ViewRequest: ...
    @property
    def period(self) -> Period: ...
    @property
    def freshness(self) -> Freshness: ...
    @property
    def currencies(self) -> list[str]: ...
    @property
    def currency(self) -> str: ...


def level_title(name: str) -> str:
    """`tag:team` → `team`, `resource-group` → `resource group`: how a level reads in bars and crumbs."""
    return name[4:] if name.startswith("tag:") else name.replace("-", " ")


class FilterInput(Input):
    """The `/` filter of a view (id `filter`, hidden until `/`); `esc` clears it."""


class CostScreen(FinopsScreen):
    """What every screen of cost shares: the `/` filter (a FilterInput with id `filter`), a loading state shown
    only when an answer is slow, and the status line. Views of the shared period build on CostViewScreen;
    the recommendations, which have no period and may show every currency, build on this directly."""

    def __init__(self) -> None:
        super().__init__()
        self._loading_timer: Timer | None = None

    @property
    def narrow(self) -> bool:
        return self.size.width < NARROW

    def arm_loading(self, show: Callable[[], None]) -> None:
        """Call `show` after LOADING_DELAY unless `disarm_loading()` comes first."""
        if self._loading_timer is not None:
            self._loading_timer.stop()
        self._loading_timer = self.set_timer(LOADING_DELAY, show)

    def disarm_loading(self) -> None:
        if self._loading_timer is not None:
            self._loading_timer.stop()

    def action_filter(self) -> None:
        self.open_filter()

    def open_filter(self, value: str | None = None) -> None:
        """Show the `/` filter (with `value` when given) and type into it."""
        field = self.query_one(FilterInput)
        if value is not None:
            field.value = value
        field.display = True
        field.focus()

    def close_filter(self) -> None:
        """Empty and hide the `/` filter (its Input.Changed handler sees the empty text)."""
        field = self.query_one(FilterInput)
        field.value = ""
        field.display = False

    @property
    def filter_open(self) -> bool:
        return bool(self.query_one(FilterInput).display)

    def show_status_line(self, line: str) -> None:
        """`line` on the status bar, beside the cache's path (its name alone on narrow screens)."""
        path = self.finops.cache.path
        self.query_one(StatusBar).show(line, path.name if self.narrow and path else short_path(path))


class CostViewScreen(CostScreen):
    """A view of cost for the shared period, metric and currency (`p`, `m`, `c`), reloaded when they change.

    Subclasses implement `request_view()` (which calls `begin_query` and starts the worker of group
    QUERY_GROUP through `query_gate`) and `loading_target()`, and set `period`, `freshness`, `currency`,
    `known_currencies` and `shown_state` when their data arrives. `ctrl+s` saves `export_csv(folder)` once
    `can_export()`.
    """

    QUERY_GROUP: ClassVar[str] = ""  # the worker group of the screen's main query

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "choose_period", "Period", id="view.period",
                tooltip="Month to date, last month, 30/90 days, all, custom (shared by every view)"),
        Binding("m", "toggle_metric", "Metric", id="view.metric",
                tooltip="EffectiveCost (amortized) ↔ BilledCost (actual)"),
        Binding("c", "cycle_currency", "Currency", id="view.currency",
                tooltip="Next billing currency (never added to another)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.period: Period | None = None
        self.previous: Period | None = None  # the comparison period when it is not `period.previous()`
        self.freshness: Freshness | None = None
        self.currency: str | None = None  # the currency on screen (resolved)
        self.known_currencies: list[str] = []
        self.shown_state: ViewKey | None = None  # (period, metric, currency) asked for
        self.requested_state: ViewKey | None = None
        self._stopped_while_hidden = False
        self.query_gate = QueryGate()  # runs the screen's main query (worker group QUERY_GROUP)
        self._pending: object | None = None  # the main query's request while it runs

    def state_key(self) -> ViewKey:
        state = self.finops.view_state
        return (state.period, state.metric, state.currency)

    def request_view(self) -> None:
        """Query what the screen shows for the shared state (override)."""
        raise NotImplementedError

    def reload(self) -> None:
        """The data changed (tags edited elsewhere): query again."""
        self.request_view()

    # the main query --------------------------------------------------------------------------------

    def loading_target(self) -> Widget:
        """The widget that shows the loading state while the main query runs (override)."""
        raise NotImplementedError

    def query_groups(self) -> list[tuple[str, QueryGate]]:
        """The worker groups a new request stops, with the gate each runs through: the main query's, and
        any background work the user's request should not wait behind (override to add some)."""
        return [(self.QUERY_GROUP, self.query_gate)]

    def stop_queries(self) -> None:
        """Stop every running query of `query_groups()`."""
        for group, gate in self.query_groups():
            self.workers.cancel_group(self, group)
            gate.interrupt_cancelled()

    def begin_query(self, request: object) -> None:
        """`request` supersedes the running queries, which stop; slow answers show a loading state.

        The caller starts its worker (group QUERY_GROUP, through `query_gate`) right after.
        """
        self.requested_state = self.state_key()
        self.stop_queries()
        self._pending = request
        self.arm_loading(self.show_loading)

    def run_query(self, query: Callable[[duckdb.DuckDBPyConnection], Message | None]) -> None:
        """In the main query's worker: run `query` through `query_gate`, post its answer (none once stopped)."""
        result = self.query_gate.run(self.finops.cache, query)
        if result is not None:
            self.post_message(result)

    @work(thread=True, exclusive=True, group="tag-keys", exit_on_error=False, name="tag keys")
    def load_tag_keys(self) -> None:
        """Post TagKeysLoaded with the tag keys of the period, metric and currency on screen."""
        period, metric, currency = self.period, self.finops.view_state.metric, self.currency
        keys = QueryGate().run(self.finops.cache, lambda cur: tag_keys(cur, period, metric, currency))
        if keys is not None:
            self.post_message(TagKeysLoaded(keys))

    def take_answer(self, answer: ViewAnswer) -> None:
        """The main query's answer is on screen: its period, freshness and currencies are the view's now."""
        request = answer.request
        self.period, self.freshness = answer.period, answer.freshness
        self.known_currencies, self.currency = answer.currencies, answer.currency
        self.shown_state = (request.period, request.metric, request.currency)

    def answer_from_memory(self) -> None:
        """The request was answered without a query: the queries stopped, nothing is pending."""
        self.requested_state = self.state_key()
        self.stop_queries()
        self._pending = None

    def end_query(self, focus: Widget | None = None) -> None:
        """The main query's answer arrived: leave the loading state, focus back on `focus`."""
        self._pending = None
        self.disarm_loading()
        self.end_loading(self.loading_target(), focus)

    def show_loading(self) -> None:
        if self._pending is not None:
            self.loading_target().loading = True

    def cancel_pending(self) -> bool:
        """Stop the main query if it still runs; True if one was stopped."""
        if self._pending is None:
            return False
        self.workers.cancel_group(self, self.QUERY_GROUP)
        self.query_gate.interrupt_cancelled()
        self._pending = None
        return True

    def on_screen_suspend(self) -> None:
        self.suspended()

    def on_screen_resume(self) -> None:
        self.resumed()

    def suspended(self) -> None:
        # Hidden: whatever is still loading would only slow the view the user went to. Load it on return.
        if self.cancel_pending():
            self._stopped_while_hidden = True

    def resumed(self) -> None:
        seen = self._tags_version_seen
        if seen is not None and seen != self.finops.tags_version:
            self._stopped_while_hidden = False
            return  # tags changed meanwhile: FinopsScreen calls `reload()`, which queries everything again
        # Another view may have changed the shared period, metric or currency meanwhile.
        stale = self.requested_state is not None and self.requested_state != self.state_key()
        if stale or self._stopped_while_hidden:
            self._stopped_while_hidden = False
            self.request_view()

    # the shared period, metric and currency -------------------------------------------------------

    def set_period(self, spec: str) -> None:
        self.finops.view_state.period = spec
        self.request_view()

    def set_metric(self, metric: str) -> None:
        self.finops.view_state.metric = metric
        self.request_view()

    def set_currency(self, currency: str) -> None:
        self.finops.view_state.currency = currency
        self.request_view()

    def action_toggle_metric(self) -> None:
        self.set_metric("billed" if self.finops.view_state.metric == "effective" else "effective")

    def action_choose_period(self) -> None:
        def chosen(spec: str | None) -> None:
            if spec == CUSTOM:
                self.ask_custom_period()
            elif spec:
                self.set_period(spec)

        self.app.push_screen(PeriodDialog(self.finops.view_state.period), chosen)

    def ask_custom_period(self) -> None:
        period = self.period
        if period is not None:
            start, end = period.start, period.end
        else:
            end = clock.today()
            start = end.replace(day=1)
        self.app.push_screen(CustomPeriodDialog(start, end), lambda spec: self.set_period(spec) if spec else None)

    def action_cycle_currency(self) -> None:
        codes, current = self.known_currencies, self.currency
        if len(codes) <= 1:
            self.notify(f"Only {codes[0] if codes else 'no'} cost in this period.", timeout=3)
            return
        following = codes[(codes.index(current) + 1) % len(codes)] if current in codes else codes[0]
        self.set_currency(following)

    def view_palette_commands(self) -> Iterable[PaletteCommand]:
        state = self.finops.view_state
        for spec, label in PERIOD_CHOICES:
            yield PaletteCommand(f"Period: {label}", f"Show {label.lower()}", partial(self.set_period, spec))
        yield PaletteCommand("Period: custom range…", "Pick START and END (END exclusive)", self.ask_custom_period)
        other = "billed" if state.metric == "effective" else "effective"
        yield PaletteCommand(f"Metric: {METRIC_LABELS[other]}", "Switch the cost metric",
                             partial(self.set_metric, other))
        for code in self.known_currencies:
            if code != self.currency:
                yield PaletteCommand(f"Currency: {code}", f"Show the cost billed in {code}",
                                     partial(self.set_currency, code))

    # shared bars ----------------------------------------------------------------------------------

    def context_forms(self) -> list[Content]:
        """Period, comparison, metric and currency, longest first: always visible at the top."""
        state = self.finops.view_state
        return cost_context(self.period, state.period, state.metric, self.currency, previous=self.previous)

    def notice_lines(self) -> list[Content]:
        """Old data and other currencies: one line each, shown under the context bar."""
        lines: list[Content] = []
        if self.period is not None and self.freshness is not None:
            old = old_data_notice(self.period, self.freshness)
            if old:
                lines.append(Content.styled(f"⚠ {old}", "$text-warning"))
        others = [code for code in self.known_currencies if code != self.currency]
        if self.currency and others:
            lines.append(Content.assemble(
                Content.styled(f"◆ showing {self.currency}; also billed in {', '.join(others)}", "$text-accent"),
                Content.styled(" (press c to switch; currencies are never added up)", "$text-muted"),
            ))
        return lines

    def show_context(self) -> None:
        """The context bar and, under it, the notices (a Static with id `notice`)."""
        self.query_one(ContextBar).show(self.context_forms())
        notice = self.query_one("#notice", Static)
        lines = self.notice_lines()
        notice.update(Content("\n").join(lines) if lines else "")
        notice.display = bool(lines)

    def show_status(self) -> None:
        self.show_status_line(freshness_line(self.freshness, self.finops.now()) if self.freshness else "loading…")

    # opening a slice from another view while this screen sits over the tree ------------------------

    def open_slice(self, dimension_name: str, key: str | None) -> None:
        """Back to the view under this screen, which opens the slice (the allocation tree overrides this)."""
        base = self.app.screen_stack[0]
        if base is not self and isinstance(base, CostViewScreen):
            while self.app.screen is not base and len(self.app.screen_stack) > 1:
                self.app.pop_screen()
            base.open_slice(dimension_name, key)
