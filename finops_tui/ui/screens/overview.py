"""Overview screen: total vs previous period, forecast, untagged share, daily chart, top tables, movers."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import ClassVar

import duckdb
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Header, Input, Static

from finops_tui import clock
from finops_tui.basis.dimensions import dimension
from finops_tui.basis.money import change_percent, money, percent
from finops_tui.report.overview import BreakdownRow, Overview
from finops_tui.ui.commands import PaletteCommand
from finops_tui.ui.formatting import (
    METRIC_SHORT,
    PERIOD_CHOICES,
    short_path,
    span_text,
)
from finops_tui.ui.messages import (
    CacheFoundEmpty,
    OverviewLoaded,
    OverviewPrefetched,
    OverviewRequest,
    SliceChosen,
)
from finops_tui.ui.queries import QueryGate
from finops_tui.ui.result_cache import ResultCache
from finops_tui.ui.screens.cost_view import CostViewScreen, FilterInput
from finops_tui.ui.screens.overview_data import (
    CurrencyView,
    EmptyCache,
    ResultKey,
    currency_view,
    load_overview,
)
from finops_tui.ui.widgets.context_bar import ContextBar, cost_context
from finops_tui.ui.widgets.cost_table import CostTable, TableShape
from finops_tui.ui.widgets.daily_chart import DailyChart
from finops_tui.ui.widgets.key_footer import KeyFooter
from finops_tui.ui.widgets.status_bar import StatusBar
from finops_tui.ui.widgets.summary import SummaryCard, SummaryRow

TOP_ROWS = 10
FILTERED_ROWS = 50
FORECAST_LABEL = "run rate, weekday-aware"  # under the title "Month-end forecast"
RESULT_CACHE_SIZE = 16  # overviews kept: every usual period in both metrics


class OverviewScreen(CostViewScreen):
    """Where the money goes, for one period, metric and currency."""

    VIEW_TITLE = "Overview"
    QUERY_GROUP = "overview"
    # The top list, not the first focusable child (the chart): Textual's auto focus on resume and the focus
    # asked for in on_mount otherwise race, and under load the chart sometimes won.
    AUTO_FOCUS = "#by-service"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (140, "-wide")]  # noqa: RUF012 (Textual's type)
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]  # noqa: RUF012

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "explain", "Explain", id="view.explain",
                tooltip="Why the row's cost (all cost from the chart) changed, bucket by bucket"),
        Binding("S", "toggle_shared", "Shared", id="view.shared",
                tooltip="Team figures with shared costs (direct cost + each pool's share), or without"),
        Binding("slash", "filter", "Filter", id="view.filter", tooltip="Filter the tables by name"),
        Binding("ctrl+s", "export", "Export", id="view.export",
                tooltip="Save the visible tables as CSV in the exports folder"),
        Binding("escape", "clear_filter", "Back", id="view.back", show=False,
                tooltip="Clear the table filter, else back to the view you came from"),
    ]

    def __init__(self, *, prefetch: bool = True, result_cache_size: int = RESULT_CACHE_SIZE) -> None:
        """`prefetch`: compute the likely next periods and metric while the user reads (off: fewer queries on a
        slow machine). `result_cache_size`: answers kept in memory (0: every request runs its query)."""
        super().__init__()
        self.prefetch = prefetch
        self.overview: Overview | None = None  # every currency, as the read model returned it
        self.view: CurrencyView | None = None  # the currency on screen
        self.shown_request: OverviewRequest | None = None
        self.filter_text = ""
        self._prefetch_gate = QueryGate()
        self._results: ResultCache[ResultKey, Overview] = ResultCache(result_cache_size)
        self._generation = 0  # bumped when the cache file changes (reload)
        self._serial = 0
        self._focus_before_loading: Widget | None = None
        self._shape = TableShape()
        self._narrow = False

    # ----------------------------------------------------------------------------------------------
    # layout

    def compose(self) -> ComposeResult:
        team = self.finops.config.team_key.lower()
        yield Header(icon="≡")
        yield ContextBar("overview")
        yield Static("", id="notice")
        with Vertical(id="content"):
            yield SummaryRow()
            yield DailyChart(id="chart")
            yield FilterInput(placeholder="filter tables by name (esc clears)", id="filter")
            with Container(id="tables"):
                yield CostTable("service", "Top services", id="by-service")
                yield CostTable("subscription", "Top subscriptions", id="by-subscription")
                yield CostTable(f"tag:{team}", f"Top teams (tag {team})", id="by-team")
                yield CostTable("resource-group", "Top movers (resource groups)", kind="movers", id="movers")
        yield StatusBar()
        yield KeyFooter()

    def on_mount(self) -> None:
        super().on_mount()
        self._shape = self._table_shape()
        self._narrow = self.size.width < 100
        self.query_one(StatusBar).show("loading…", short_path(self.finops.cache.path))
        self._show_context()
        self.query_one("#by-service", CostTable).focus()
        self.request_overview()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # While the first layout still gives the top list no room, Textual hides it and hands its focus to the
        # next widget, the chart; the user did not choose the chart, so the list takes focus back once shown.
        table = self.query_one("#by-service", CostTable)
        if isinstance(event.widget, DailyChart) and not table.region.area:
            self._focus_top_list_when_shown(tries=20)

    def _focus_top_list_when_shown(self, tries: int) -> None:
        table = self.query_one("#by-service", CostTable)
        if not isinstance(self.focused, DailyChart) or tries <= 0:
            return
        if table.region.area and table.focusable:
            table.focus()
        else:
            self.call_after_refresh(self._focus_top_list_when_shown, tries - 1)

    def on_resize(self) -> None:
        shape = self._table_shape()
        narrow = self._narrow
        self._narrow = self.size.width < 100
        if shape != self._shape:
            self._shape = shape
            self._show_tables()
        if narrow != self._narrow and self.view is not None:
            self._show_summary()
            self.show_status()

    def _table_shape(self) -> TableShape:
        """Column budget per table: one table across under 100 columns, two side by side above."""
        width = self.size.width
        table_width = width - 4 if width < 100 else (width - 3) // 2
        # cells: cost 12, share 6, change 12, change % 8, plus one cell of padding each side and a border
        if table_width - 52 >= 22:
            return TableShape(compact=False, name_width=min(48, table_width - 52))
        return TableShape(compact=True, name_width=max(14, table_width - 38))

    # ----------------------------------------------------------------------------------------------
    # queries: one thread worker; a newer request interrupts the older one on its own cursor

    @staticmethod
    def _result_key(period: str, metric: str, shared: bool) -> ResultKey:
        return (period, metric, clock.today(), shared)

    def request_overview(self) -> None:
        """Show the shared period and metric: from the result cache, else from a query worker."""
        state = self.finops.view_state
        self._serial += 1
        request = OverviewRequest(self._serial, state.period, state.metric, state.shared)
        cached = self._results.get(self._result_key(request.period, request.metric, request.shared))
        if cached is not None:
            self.answer_from_memory()
            self._show_overview(request, cached)
            return
        self.begin_query(request)
        self._load(request)

    def request_view(self) -> None:
        self.request_overview()

    def query_groups(self) -> list[tuple[str, QueryGate]]:
        # The user's request gets the CPU: stop the running query and any background prefetch.
        return [(self.QUERY_GROUP, self.query_gate), ("overview-prefetch", self._prefetch_gate)]

    def reload(self) -> None:
        """The cache changed (an import, a sync): forget cached results and query again."""
        self._results.clear()
        self._generation += 1  # results computed before now, still in flight, are dropped
        self.request_overview()

    def loading_target(self) -> Widget:
        return self.query_one("#content")

    def show_loading(self) -> None:
        if self._pending is not None:
            # A loading container drops focus; remember it so the user's place survives a reload.
            self._focus_before_loading = self.focused or self._focus_before_loading
        super().show_loading()

    def _hide_loading(self) -> None:
        was_loading = self.loading_target().loading
        # Nothing focused yet (a slow first load): the top list, as on a fast one, not the first child.
        self.end_query(self._focus_before_loading or self.query_one("#by-service", CostTable))
        if was_loading:
            self._focus_before_loading = None

    @work(thread=True, exclusive=True, group="overview", exit_on_error=False, name="overview query")
    def _load(self, request: OverviewRequest) -> None:
        team_key = self.finops.config.team_key
        result = self.query_gate.run(self.finops.cache, lambda cur: self.read_overview(cur, request, team_key))
        if result is None:
            return  # superseded by a newer request
        if isinstance(result, EmptyCache):
            self.post_message(CacheFoundEmpty())
        else:
            self.post_message(OverviewLoaded(request, result))

    def read_overview(self, cur: duckdb.DuckDBPyConnection, request: OverviewRequest,
                      team_key: str) -> Overview | EmptyCache:
        """The read model for `request` (runs in the query worker, on the worker's cursor)."""
        return load_overview(cur, request.period, request.metric, team_key, request.shared)

    @on(OverviewLoaded)
    def _overview_loaded(self, message: OverviewLoaded) -> None:
        if message.request.serial != self._serial:
            return  # a newer request is on its way; never show a stale answer
        self._results.put(self._result_key(message.request.period, message.request.metric, message.request.shared),
                          message.overview)
        self._hide_loading()
        self._show_overview(message.request, message.overview)

    @on(CacheFoundEmpty)
    def _cache_found_empty(self) -> None:
        self._hide_loading()

    def _show_overview(self, request: OverviewRequest, result: Overview) -> None:
        self.overview = result
        self.shown_request = request
        self.view = currency_view(result, self.finops.view_state.currency)
        self._show_all()
        self._prefetch_next()

    # prefetch: while the user reads, compute what they are likely to ask for next --------------

    def _likely_next(self) -> list[tuple[str, str]]:
        """The other metric of this period first, then the other usual periods in both metrics.

        "all" is left out: thirteen months of rows for a view people rarely open.
        """
        state = self.finops.view_state
        other = "billed" if state.metric == "effective" else "effective"
        periods = [spec for spec, _ in PERIOD_CHOICES if spec not in (state.period, "all")]
        return [(state.period, other), *((spec, metric) for metric in (state.metric, other) for spec in periods)]

    def _prefetch_next(self) -> None:
        if not self.prefetch or self._results.size <= 0:
            return
        shared = self.finops.view_state.shared
        for period, metric in self._likely_next():
            if self._result_key(period, metric, shared) not in self._results:
                self._prefetch(period, metric, self._generation, shared)
                return

    @work(thread=True, exclusive=True, group="overview-prefetch", exit_on_error=False, name="overview prefetch")
    def _prefetch(self, period: str, metric: str, generation: int, shared: bool) -> None:
        team_key = self.finops.config.team_key
        day = clock.today()
        try:
            result = self._prefetch_gate.run(
                self.finops.cache, lambda cur: load_overview(cur, period, metric, team_key, shared)
            )
        except Exception:  # a failed guess costs nothing: the real request will report the problem
            return
        if isinstance(result, Overview):
            self.post_message(OverviewPrefetched(period, metric, day, generation, result, shared))

    @on(OverviewPrefetched)
    def _overview_prefetched(self, message: OverviewPrefetched) -> None:
        if message.day == clock.today() and message.generation == self._generation:
            self._results.put(self._result_key(message.period, message.metric, message.shared), message.overview)
        # Hidden, the guesses would take the CPU from the view the user went to: they go on when it is back.
        if self._pending is None and self.is_current:
            self._prefetch_next()

    def suspended(self) -> None:
        pass  # a query still running when hidden finishes: the overview is the view most often returned to

    def resumed(self) -> None:
        # Another view may have changed the shared period or metric meanwhile.
        latest = self._pending if isinstance(self._pending, OverviewRequest) else self.shown_request
        state = self.finops.view_state
        if latest is not None and (latest.period, latest.metric, latest.shared) != (state.period, state.metric,
                                                                                    state.shared):
            self.request_overview()
            return
        if self.overview is not None and self.view is not None and self.view.currency != state.currency \
                and state.currency is not None:
            self._show_currency()
        prefetching = any(worker.group == "overview-prefetch" and not worker.is_finished for worker in self.workers)
        if self._pending is None and self.overview is not None and not prefetching:
            self.call_after_refresh(self._prefetch_next)  # the guesses left when the overview was hidden

    # ----------------------------------------------------------------------------------------------
    # rendering

    def _show_all(self) -> None:
        overview = self.overview
        assert overview is not None
        self.period, self.previous, self.freshness = overview.period, overview.previous, overview.freshness
        self.known_currencies = [total.currency for total in overview.totals]
        self.currency = self.view.currency if self.view is not None else None
        self.show_context()
        self._show_summary()
        self._show_chart()
        self._show_tables()
        self.show_status()

    def _show_currency(self) -> None:
        """Another currency of the same overview: no query, the read model kept them apart."""
        assert self.overview is not None
        self.view = currency_view(self.overview, self.finops.view_state.currency)
        self._show_all()

    def _show_context(self) -> None:
        """Period, comparison, metric and currency: always visible above everything else."""
        self.query_one(ContextBar).show(self.context_forms())

    def context_forms(self) -> list[Content]:
        state = self.finops.view_state
        return cost_context(self.period, state.period, state.metric, self.currency, previous=self.previous,
                            shared=state.shared)

    def _show_summary(self) -> None:
        assert self.overview is not None
        ov, view, narrow = self.overview, self.view, self._narrow
        currency = view.currency if view else ""
        cost = view.total.cost if view else Decimal(0)
        previous = view.total.previous if view else Decimal(0)
        self.query_one("#card-total", SummaryCard).show(
            "Total" if narrow else f"Total ({METRIC_SHORT[ov.metric]})",
            money(cost, currency) if view else Content.styled("no cost", "bold $text-muted"),
            f"{ov.period.days} days" if narrow else f"{ov.period.days} days · {span_text(ov.period, year=False)}",
        )
        change = cost - previous
        style = "$text-error" if change > 0 else "$text-success" if change < 0 else "$text"
        detail = Content.styled(change_percent(cost, previous), style)
        if not narrow:
            detail = Content.assemble(detail, Content.styled(f" · was {money(previous)}", "$text-muted"))
        self.query_one("#card-change", SummaryCard).show(
            "vs previous" if narrow else "vs previous period",
            Content.styled(money(change, None if narrow else currency or None, signed=True), f"bold {style}"),
            detail,
        )
        forecast = view.forecast if view else None
        forecast_card = self.query_one("#card-forecast", SummaryCard)
        if forecast is not None:
            forecast_card.show("Forecast" if narrow else "Month-end forecast",
                               money(forecast.total, None if narrow else currency),
                               "run rate" if narrow else FORECAST_LABEL)
        else:
            forecast_card.show("Forecast" if narrow else "Month-end forecast",
                               Content.styled("—", "bold $text-muted"),
                               "mtd only" if narrow else "for month to date only")
        self._show_allocation_card()

    def _show_allocation_card(self) -> None:
        """The FinOps Framework's allocation KPIs for the period: the share allocated (by tags, aliases and rules;
        by shared cost pools), what is left unallocated, and the maturity band (crawl < 80% ≤ walk ≤ 90% < run)."""
        assert self.overview is not None
        ov, view, narrow = self.overview, self.view, self._narrow
        kpi = view.allocation if view else None
        card = self.query_one("#card-untagged", SummaryCard)
        title = "Allocated" if narrow else f"Allocated ({ov.team_key})"
        allocated = kpi.allocated_share if kpi is not None else None
        if kpi is None or allocated is None:
            card.show(title, Content.styled("—", "bold $text-muted"), "no cost" if narrow else "no cost to allocate")
            return
        band = kpi.maturity or ""
        style = {"run": "$text-success", "walk": "$text-warning", "crawl": "$text-error"}.get(band, "$text")
        value = Content.assemble(Content.styled(f"{allocated * 100:.1f}%", "bold"),
                                 Content.styled(f" · {band}", f"bold {style}"))
        tags, pools = percent(kpi.by_metadata, kpi.total), percent(kpi.by_pools, kpi.total)
        left = percent(kpi.unallocated, kpi.total)
        card.show(title, value, f"pools {pools}" if narrow else
                  f"tags {tags} · pools {pools} · left {left}")

    def _show_chart(self) -> None:
        view = self.view
        self.query_one(DailyChart).show_series(view.daily if view else [], view.currency if view else "")

    def _visible_rows(self, table: CostTable) -> list[BreakdownRow]:
        if self.view is None:
            return []
        rows = self.view.movers if table.kind == "movers" else self.view.breakdowns.get(table.dimension, [])
        if self.filter_text:
            return [r for r in rows if self.filter_text in r.name.lower()][:FILTERED_ROWS]
        return rows[:TOP_ROWS]

    def _show_tables(self) -> None:
        if self.overview is None:
            return
        view = self.view
        teams = self.query_one("#by-team", CostTable)
        teams.title = f"Top teams (tag {self.overview.team_key}{', with shared costs' if self.overview.shared else ''})"
        teams.border_title = Content(teams.title)  # the team key comes from config.toml: never markup
        for table in self.query(CostTable):
            table.show_rows(
                self._visible_rows(table), currency=view.currency if view else "",
                total=view.total.cost if view else Decimal(0), shape=self._shape,
                empty_text="no match" if self.filter_text else
                ("no increases" if table.kind == "movers" else "no cost in this period"),
            )

    # ----------------------------------------------------------------------------------------------
    # actions

    def set_period(self, spec: str) -> None:
        self.finops.view_state.period = spec
        self._show_context()
        self.request_overview()

    def set_metric(self, metric: str) -> None:
        self.finops.view_state.metric = metric
        self._show_context()
        self.request_overview()

    def set_currency(self, currency: str) -> None:
        self.finops.view_state.currency = currency
        if self.overview is not None:
            self._show_currency()

    def set_shared(self, on: bool) -> None:
        self.finops.view_state.shared = on
        self._show_context()
        self.request_overview()

    def action_toggle_shared(self) -> None:
        """`S`: the team table (and every view) with or without each shared cost pool's share."""
        self.set_shared(not self.finops.view_state.shared)

    def action_clear_filter(self) -> None:
        """`esc`: clear the filter, else back to the view the user came from."""
        if not self.filter_open and not self.filter_text:
            self.finops.go_back()
            return
        self.close_filter()
        self.filter_text = ""
        self._show_tables()
        self.query_one("#by-service", CostTable).focus()

    def action_explain(self) -> None:
        """`x`: why the cost of the focused table's row changed (anywhere else: all cost)."""
        table = self.focused
        if isinstance(table, CostTable) and 0 <= table.cursor_row < len(table.rows_shown):
            row = table.rows_shown[table.cursor_row]
            self.finops.open_explain([(dimension(table.dimension).name, row.key, row.name)], root="Overview")
        else:
            self.finops.open_explain((), root="Overview")

    @on(SliceChosen)
    def _open_slice(self, message: SliceChosen) -> None:
        self.finops.open_allocation(message.dimension, message.key)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip().lower()
        self._show_tables()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one("#by-service", CostTable).focus()

    def can_export(self) -> bool:
        return self.overview is not None and self.view is not None

    def export_csv(self, folder: Path) -> Path:
        """Write the visible tables (exact figures) to a CSV file in `folder`; returns its path."""
        assert self.overview is not None and self.view is not None
        ov, view = self.overview, self.view
        path = folder / f"finops-overview-{ov.period.start}..{ov.period.end}-{ov.metric}-{view.currency}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["table", "name", "key", "currency", "cost", "previous_cost", "change", "share_percent"])
            for table in self.query(CostTable):
                writer.writerows(table.csv_rows(view.currency, view.total.cost))
        return path

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield from self.view_palette_commands()
        on = self.finops.view_state.shared
        yield PaletteCommand(f"Shared costs: {'off' if on else 'on'}",
                             "Team figures with or without each shared cost pool's share (S)",
                             partial(self.set_shared, not on))
        yield PaletteCommand("Filter tables", "Filter the top tables by name", self.action_filter)
        yield PaletteCommand("Export view to CSV", "Save the visible tables in the exports folder (ctrl+s)",
                             self.action_export)
        yield PaletteCommand("Daily chart: move the cursor", "Focus the chart (left/right or h/l)",
                             lambda: self.query_one(DailyChart).focus())
