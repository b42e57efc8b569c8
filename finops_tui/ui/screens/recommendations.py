"""Recommendations screen: findings ranked by money per month, filters, evidence, dismiss/snooze/note, jumps."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal

import duckdb
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.content import Content
from textual.message import Message
from textual.widgets import Header, Input, Static
from textual.worker import Worker, get_current_worker

from finops_tui import clock
from finops_tui.basis.money import money
from finops_tui.recommend import (
    Context,
    Found,
    JumpTarget,
    RecFilter,
    Recommendation,
    RunResult,
    dismiss,
    find,
    keep,
    last_results,
    note,
    present,
    restore,
    snooze,
)
from finops_tui.recommend.generators import KIND_TITLES
from finops_tui.recommend.generators.anomalies import anomaly_days
from finops_tui.report.explain import CurrencyExplanation, ScopePart, explain, week_aligned_before
from finops_tui.ui.commands import PaletteCommand
from finops_tui.ui.dialogs.rec_note import MinImpactDialog, NoteDialog, SnoozeDialog
from finops_tui.ui.formatting import METRIC_LABELS, METRIC_SHORT, ago, truncate
from finops_tui.ui.messages import CacheFoundEmpty
from finops_tui.ui.queries import QueryGate
from finops_tui.ui.screens.cost_view import CostScreen, FilterInput
from finops_tui.ui.widgets.context_bar import ContextBar
from finops_tui.ui.widgets.key_footer import KeyFooter
from finops_tui.ui.widgets.rec_detail import COMMITMENT_KINDS, RecDetail
from finops_tui.ui.widgets.rec_list import RecList
from finops_tui.ui.widgets.status_bar import StatusBar

STATUS_TICK = 30.0  # seconds between repaints of "last run N min ago"
# The workers fetch every finding with its state; the screen filters in memory (a few hundred at most),
# so changing a filter, dismissing or restoring never waits for a query.
EVERYTHING = RecFilter(include_dismissed=True, include_snoozed=True)
HIDING_STATES = ("dismissed", "snoozed")
StateChange = Literal["dismiss", "snooze", "note", "restore"]


@dataclass
class RecommendationsLoaded(Message):
    """A worker read the stored last run (`fresh=False`, None when none was ever stored) or finished a new run."""

    serial: int
    result: RunResult | None
    fresh: bool


@dataclass
class AnomalyExplained(Message):
    """What moved on an anomaly's days (None: no cost in its currency there), for the evidence pane."""

    rec_id: str
    result: CurrencyExplanation | None
    compared: str


@dataclass(frozen=True)
class ListFilter:
    """What the list shows, besides the shared view's currency."""

    kind: str | None = None
    team: str | None = None
    min_impact: Decimal | None = None
    text: str = ""
    show_hidden: bool = False  # dismissed and snoozed findings too

    @property
    def narrowed(self) -> bool:
        return bool(self.kind or self.team or self.min_impact or self.text)


@dataclass(frozen=True)
class StateEdit:
    """A state change made on this screen: it wins over a run whose worker read the states before it landed."""

    state: str | None
    until: dt.date | None
    note: str | None


def matches(rec: Recommendation, flt: ListFilter, currency: str | None) -> bool:
    """Whether `rec` passes the filters; hidden states count only when `show_hidden` is off."""
    if rec.state in HIDING_STATES and not flt.show_hidden:
        return False
    if flt.kind is not None and rec.kind != flt.kind:
        return False
    if flt.team is not None and (rec.team or "").lower() != flt.team.lower():
        return False
    if flt.min_impact is not None and rec.monthly_impact < flt.min_impact:
        return False
    if currency is not None and rec.currency != currency:
        return False
    if flt.text:
        haystack = " ".join((rec.title, rec.scope.label, KIND_TITLES.get(rec.kind, rec.kind), rec.team or ""))
        if flt.text not in haystack.lower():
            return False
    return True


def scope_step_label(rec: Recommendation, dimension: str, key: str) -> str:
    """A person's name for one step of a finding's path: the subscription's name rather than its id."""
    if dimension == "subscription" and key == rec.scope.subscription_id:
        # Scope labels of resource groups read `rg-web (prod-core)`: the subscription's name is in brackets.
        label = rec.scope.label
        if rec.scope.type == "subscription" and rec.scope.key == key.lower():
            return label
        if label.endswith(")") and " (" in label:
            return label[label.rindex(" (") + 2 : -1]
    return key


def explain_scope(rec: Recommendation) -> list[tuple[str, str | None, str]]:
    """The node a finding is about, as explain steps: its resource, else the path its jump opens."""
    if rec.scope.type == "resource":
        return [("resource", rec.scope.key, rec.scope.label)]
    path = rec.jump.path if rec.jump is not None else ()
    return [(dim, key, scope_step_label(rec, dim, key)) for dim, key in path]


def cycle(options: Sequence[str], current: str | None) -> str | None:
    """The option after `current`; None (all) comes after the last one and before the first."""
    if current is None or current not in options:
        return options[0] if options else None
    index = options.index(current) + 1
    return options[index] if index < len(options) else None


class RecommendationsScreen(CostScreen):
    """Every finding on the cache's latest data, most money first, with its evidence and a way to act on it."""

    VIEW_TITLE = "Recommendations"
    AUTO_FOCUS = "#rec-list"  # what on_mount focuses: no detour through the hidden filter (two restyles)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (140, "-wide")]  # noqa: RUF012 (Textual's type)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "cycle_kind", "Kind", id="recommendations.kind",
                tooltip="Show one kind of finding, then the next"),
        Binding("T", "cycle_team", "Team", id="recommendations.team", show=False,
                tooltip="Show one team's findings, then the next"),
        Binding("i", "min_impact", "Min impact", id="recommendations.min_impact",
                tooltip="Hide findings worth less than an amount per month"),
        Binding("slash", "filter", "Filter", id="view.filter", tooltip="Filter by text"),
        Binding("d", "dismiss_finding", "Dismiss", id="recommendations.dismiss",
                tooltip="Hide this finding for good (kept in the cache; u restores)"),
        Binding("z", "snooze", "Snooze", id="recommendations.snooze", tooltip="Hide this finding for N days"),
        Binding("n", "note", "Note", id="recommendations.note", tooltip="Write a note on this finding"),
        Binding("x", "explain", "Explain", id="view.explain",
                tooltip="Why the cost of the finding's scope changed, bucket by bucket"),
        Binding("u", "restore", "Restore", id="recommendations.restore", show=False,
                tooltip="Bring back a dismissed or snoozed finding"),
        Binding("D", "toggle_hidden", "Hidden", id="recommendations.show_hidden",
                tooltip="Show or hide dismissed and snoozed findings"),
        Binding("r", "rerun", "Re-run", id="recommendations.rerun",
                tooltip="Run every generator again on the cache (R syncs)"),
        Binding("c", "cycle_currency", "Currency", id="view.currency", show=False,
                tooltip="One billing currency, the next, then all (never added together)"),
        Binding("m", "toggle_metric", "Metric", id="view.metric", show=False,
                tooltip="EffectiveCost (amortized) ↔ BilledCost (actual), and run again"),
        Binding("ctrl+s", "export", "Export", id="view.export",
                tooltip="Save the listed findings as CSV in the exports folder"),
        Binding("escape", "clear_filter", "Back", id="view.back", show=False,
                tooltip="Clear the text filter, then the other filters, then back to the view you came from"),
    ]

    DEFAULT_CSS = """
    RecommendationsScreen #filters { height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    RecommendationsScreen #filter { display: none; }
    RecommendationsScreen #main { height: 1fr; }
    RecommendationsScreen RecList {
        height: 2fr;
        border: round $panel-lighten-2;
        border-title-color: $text;
        border-title-style: bold;
        background: $surface;
    }
    RecommendationsScreen RecList:focus, RecommendationsScreen RecDetail:focus { border: round $primary; }
    RecommendationsScreen RecDetail {
        height: 3fr;
        border: round $panel-lighten-2;
        border-title-color: $text;
        border-title-style: bold;
    }
    RecommendationsScreen.-medium #detail-body { layout: horizontal; }
    RecommendationsScreen.-medium #detail-evidence { width: 1fr; }
    RecommendationsScreen.-medium RecChart { width: 1fr; margin: 0 0 0 2; }
    RecommendationsScreen.-wide #main { layout: horizontal; }
    RecommendationsScreen.-wide RecList { width: 1fr; height: 1fr; }
    RecommendationsScreen.-wide RecDetail { width: 42%; height: 1fr; }
    RecommendationsScreen.-wide RecChart { height: 14; }
    RecommendationsScreen.-narrow RecList { height: 1fr; }
    RecommendationsScreen.-narrow RecDetail { height: 1fr; }
    """

    def __init__(self, *, refresh_on_open: bool = True) -> None:
        """`refresh_on_open`: run the generators again once the stored run is on screen (off: the stored run
        stays, as tests about acting on it want)."""
        super().__init__()
        self.refresh_on_open = refresh_on_open
        self.run: RunResult | None = None  # the run on screen: every finding, with state
        self.recommendations: list[Recommendation] = []  # the run's findings with this screen's edits
        self.shown: list[Recommendation] = []  # what the list shows
        self.list_filter = ListFilter()
        self.running = False
        self.showing_fresh = False  # a run finished while this screen was open
        self.failure: str | None = None
        self._stored_gate = QueryGate()
        self._explain_gate = QueryGate()
        self._refresh_gate = QueryGate()
        self._edits: dict[str, StateEdit] = {}
        self._serial = 0
        self._stored_worker: Worker[None] | None = None
        self._rerun_when_shown = False  # the run on open waits until the screen is first shown
        self._run_on_open = 0  # the serial of the run started by opening the screen (not asked for with R)

    # ----------------------------------------------------------------------------------------------
    # layout

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        yield ContextBar("recommendations")
        yield Static("", id="filters")
        yield FilterInput(placeholder="filter by title, scope, kind or team (esc clears)", id="filter")
        with Container(id="main"):
            yield RecList(id="rec-list")
            yield RecDetail(id="detail")
        yield StatusBar()
        yield KeyFooter()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(RecList).border_title = "Findings (most money first)"
        self.query_one(RecDetail).border_title = "Evidence"
        self.query_one(RecList).focus()
        self._show_context()
        self._show_filters()
        self._show_status()
        self.query_one(RecDetail).show(None, "")
        self._load_stored()
        self.arm_loading(self._show_loading)
        self.set_interval(STATUS_TICK, self._show_status)
        if self.refresh_on_open:
            # Shown as running at once; the run itself starts when the stored one is on screen, because
            # the generators take every core and would delay that 4 ms read by most of a second.
            self.running = True
            self._show_status()

    def on_resize(self) -> None:
        self._show_status()

    # ----------------------------------------------------------------------------------------------
    # workers: the stored last run at once, a fresh run in the background

    def _load_stored(self) -> None:
        self._stored_worker = self._worker_load_stored()

    @work(thread=True, exclusive=True, group="rec-stored", exit_on_error=False, name="stored recommendations")
    def _worker_load_stored(self) -> None:
        result = self._stored_gate.run(self.finops.cache, lambda cur: last_results(cur, EVERYTHING))
        if not get_current_worker().is_cancelled:
            self.post_message(RecommendationsLoaded(0, result, fresh=False))

    def rerun(self) -> None:
        """Run every generator again in the background; the list keeps the last results meanwhile."""
        self._serial += 1
        self.workers.cancel_group(self, "rec-refresh")
        self._refresh_gate.interrupt_cancelled()
        self.running = True
        self.failure = None
        self._worker_refresh(self._serial, self.finops.view_state.metric)
        self._show_status()

    def reload(self) -> None:
        """The cache changed (an import, a sync): run again; the findings' states are kept by id."""
        self.rerun()

    @work(thread=True, exclusive=True, group="rec-refresh", exit_on_error=False, name="recommendations run")
    def _worker_refresh(self, serial: int, metric: str) -> None:
        worker = get_current_worker()
        config = self.finops.config

        def run(cur: duckdb.DuckDBPyConnection) -> Found | None:
            ctx = Context.from_cache(cur, metric="billed" if metric == "billed" else "effective",
                                     team_key=config.team_key, tag_keys=tuple(config.tag_keys))
            if ctx is None:
                return None
            return find(cur, ctx, should_stop=lambda: worker.is_cancelled)

        found = self._refresh_gate.run(self.finops.cache, run)
        if worker.is_cancelled:
            return  # a newer run replaced this one; never show a stale answer
        if found is None:
            self.post_message(CacheFoundEmpty())
            return
        keep(self.finops.cache, found)  # through the writer, after the read cursor is returned
        result = self._refresh_gate.run(self.finops.cache, lambda cur: present(cur, found, EVERYTHING))
        if result is None:
            return
        self.post_message(RecommendationsLoaded(serial, result, fresh=True))

    @on(RecommendationsLoaded)
    def _loaded(self, message: RecommendationsLoaded) -> None:
        if message.fresh:
            if message.serial != self._serial:
                return
            self.running = False
            self.showing_fresh = True
        elif self.showing_fresh:
            return  # a run already finished: the stored one is older
        self._hide_loading()
        if message.result is not None:
            self._show_run(message.result)
        elif self.run is None:
            self._show_list()  # never ran on this cache: the list says it is running for the first time
        self._show_status()
        if not message.fresh and self.refresh_on_open and self._serial == 0:
            if self.is_current:
                self.call_after_refresh(self._rerun_on_open)
            else:  # mounted ahead, behind another view: the generators would take the CPU from the one in use
                self._rerun_when_shown = True

    @on(CacheFoundEmpty)
    def _cache_found_empty(self) -> None:
        self.running = False
        self._hide_loading()

    def show_failure(self, worker: Worker[Any], text: str) -> None:
        """Called by the app when one of this screen's workers failed: say so where the run status is."""
        if worker.group == "rec-refresh":
            self.running = False
            self.failure = text
            self._hide_loading()
            self._show_status()
            self._show_list()
        else:
            self.notify(text, title=f"{worker.name or 'background task'} failed", severity="error", timeout=10)
            if worker.group == "rec-stored" and self.refresh_on_open and self._serial == 0:
                self.rerun()  # no stored run to show: a fresh one is all there is

    def _show_loading(self) -> None:
        # A finished worker's answer is already queued behind this timer: a spinner would only flicker.
        worker = self._stored_worker
        if self.run is None and worker is not None and not worker.is_finished:
            self.query_one(RecList).loading = True

    def _hide_loading(self) -> None:
        self.disarm_loading()
        rec_list = self.query_one(RecList)
        self.end_loading(rec_list)

    def _rerun_on_open(self) -> None:
        self.rerun()
        self._run_on_open = self._serial

    def on_screen_suspend(self) -> None:
        # Left for another view while the run on open is under way: its generators would take the CPU from the
        # view the user went to (a cold first switch waited most of a second for them). It starts again when this
        # view is shown. A dialog or a detail over this view (still in its stack) lets it run.
        left = self not in self.app.screen_stack
        if left and self.running and self._serial and self._serial == self._run_on_open:
            self.workers.cancel_group(self, "rec-refresh")
            self._refresh_gate.interrupt_cancelled()
            self._rerun_when_shown = True

    def on_screen_resume(self) -> None:
        if self._rerun_when_shown and self.is_current:
            self._rerun_when_shown = False
            self.call_after_refresh(self._rerun_on_open)  # after the stored run is painted: the run takes the CPU
        # Another view may have changed the shared metric or currency meanwhile.
        if self.run is not None and self.run.metric != self.finops.view_state.metric and not self.running:
            self.rerun()
        self._show_context()
        # Nothing changed while hidden (the usual case): the list, its cursor and the detail stay as they are,
        # rather than redrawn with the same rows (and the highlighted anomaly explained again).
        if self._matching() != self.shown:
            self._show_list()

    # ----------------------------------------------------------------------------------------------
    # rendering

    def _show_run(self, result: RunResult) -> None:
        self.run = result
        self.recommendations = [self._with_edit(rec) for rec in result.recommendations]
        self._show_context()
        self._show_list()

    def _with_edit(self, rec: Recommendation) -> Recommendation:
        edit = self._edits.get(rec.id)
        return rec if edit is None else rec.with_state(edit.state, edit.until, edit.note)

    @property
    def currency(self) -> str | None:
        """The shared view's currency: the list shows only it when set, every currency apart otherwise."""
        return self.finops.view_state.currency

    def _show_list(self, keep: str | None = None) -> None:
        rec_list = self.query_one(RecList)
        current = rec_list.current
        self.shown = self._matching()
        rec_list.show(self.shown, empty_text=self._empty_text(), keep=keep or (current.id if current else None))
        self._show_filters()

    def _matching(self) -> list[Recommendation]:
        return [rec for rec in self.recommendations if matches(rec, self.list_filter, self.currency)]

    def _empty_text(self) -> str:
        if self.run is None:
            if self.failure:
                return "The recommendations could not run (see the status line)."
            return "Running the recommendations for the first time…" if self.running else "No recommendations yet."
        if not self.recommendations:
            return "Nothing worth a line on this data: no recommendations."
        hidden = sum(1 for rec in self.recommendations if rec.state in HIDING_STATES)
        if self.list_filter.narrowed or self.currency:
            return "No finding matches the filters (esc clears them)."
        if hidden and not self.list_filter.show_hidden:
            return f"All {hidden} findings are dismissed or snoozed (D shows them)."
        return "No recommendations."

    @on(RecList.Highlighted)
    def _highlighted(self, event: RecList.Highlighted) -> None:
        self.query_one(RecDetail).show(event.recommendation, "")
        if event.recommendation is not None and anomaly_days(event.recommendation) is not None:
            metric = self.run.metric if self.run is not None else self.finops.view_state.metric
            self._explain_anomaly(event.recommendation, metric)

    @work(thread=True, exclusive=True, group="rec-explain", exit_on_error=False, name="explaining a jump")
    def _explain_anomaly(self, rec: Recommendation, metric: str) -> None:
        """The anomaly's days against the same weekdays before them, in its scope (an exclusive worker: moving
        the cursor on stops the previous one)."""
        days = anomaly_days(rec)
        assert days is not None
        later, earlier = week_aligned_before(days[0], days[1] + dt.timedelta(days=1))
        scope = [ScopePart(dim, key, label) for dim, key, label in explain_scope(rec)]

        def query(cur: duckdb.DuckDBPyConnection) -> AnomalyExplained:
            result = explain(cur, scope, later, earlier, metric, rec.currency, top=1)
            compared = f"{earlier.start} .. {earlier.last_day}"
            return AnomalyExplained(rec.id, result.currency(rec.currency), compared)

        answer = self._explain_gate.run(self.finops.cache, query)
        if answer is not None:
            self.post_message(answer)

    @on(AnomalyExplained)
    def _anomaly_explained(self, message: AnomalyExplained) -> None:
        self.query_one(RecDetail).show_explanation(message.rec_id, message.result, message.compared)

    def _show_context(self) -> None:
        """What the list ranks: the data it ran on, the metric and the currency (longest form first)."""
        metric = self.run.metric if self.run is not None else self.finops.view_state.metric
        title = Content.styled("Recommendations", "bold")
        data = []
        if self.run is not None and self.run.data_end is not None:
            data = [Content.styled(f"  on data through {self.run.data_end.isoformat()}", "$text-muted")]
        currency = Content.styled(self.currency or "every currency", "bold")

        def form(separator: str, labels: dict[str, str], *lead: Content) -> Content:
            bar = Content.styled(separator, "$text-muted")
            return Content.assemble(*lead, bar, Content.styled(labels.get(metric, metric), "bold $text-accent"), bar,
                                    currency)

        self.query_one(ContextBar).show([
            form("  │  ", METRIC_LABELS, title, *data), form("  │  ", METRIC_SHORT, title, *data),
            form(" │ ", METRIC_SHORT, title), form(" │ ", METRIC_SHORT, Content.styled("Findings", "bold")),
        ])

    def _show_filters(self) -> None:
        flt = self.list_filter

        def item(key: str, label: str, value: str, active: bool) -> Content:
            return Content.assemble(Content.styled(key, "bold $accent"), Content.styled(f" {label} ", "$text-muted"),
                                    Content.styled(value, "bold $text-accent" if active else "$text"), "  ")

        parts = [
            item("f", "kind", KIND_TITLES.get(flt.kind, flt.kind) if flt.kind else "all", flt.kind is not None),
            item("T", "team", flt.team or "all", flt.team is not None),
            item("i", "min", money(flt.min_impact) + "/mo" if flt.min_impact else "none", flt.min_impact is not None),
        ]
        if flt.text:
            parts.append(item("/", "text", f"“{truncate(flt.text, 20)}”", True))
        hidden = sum(1 for rec in self.recommendations if rec.state in HIDING_STATES)
        count = f"{len(self.shown)} of {len(self.recommendations)} shown" if self.run is not None else ""
        if hidden:
            count += f" · {hidden} dismissed/snoozed " + ("shown (D hides)" if flt.show_hidden else "hidden (D shows)")
        parts.append(Content.styled(f"│ {count}", "$text-muted"))
        self.query_one("#filters", Static).update(Content.assemble(*parts))

    def status_text(self) -> str:
        """`last run 3 min ago · running…` (the context bar says which data it ran on)."""
        run = self.run
        if run is None:
            line = "recommendations never ran on this cache"
        else:
            line = f"last run {ago(run.run_at, self.finops.now())}"
        if self.running:
            line += " · running…"
        elif self.failure:
            line += f" · run failed: {self.failure}"
        return line

    def _show_status(self) -> None:
        self.show_status_line(self.status_text())

    # ----------------------------------------------------------------------------------------------
    # filters

    def set_filter(self, **changes: Any) -> None:
        self.list_filter = replace(self.list_filter, **changes)
        self._show_list()

    def action_cycle_kind(self) -> None:
        present = {rec.kind for rec in self.recommendations}
        kinds = [kind for kind in KIND_TITLES if kind in present] + sorted(present - set(KIND_TITLES))
        self.set_filter(kind=cycle(kinds, self.list_filter.kind))

    def action_cycle_team(self) -> None:
        teams = sorted({rec.team for rec in self.recommendations if rec.team}, key=str.lower)
        if not teams:
            self.notify("No finding belongs to one team.", timeout=3)
            return
        self.set_filter(team=cycle(teams, self.list_filter.team))

    def action_min_impact(self) -> None:
        def chosen(amount: Decimal | None) -> None:
            if amount is not None:
                self.set_filter(min_impact=amount or None)

        self.app.push_screen(MinImpactDialog(self.list_filter.min_impact), chosen)

    def action_clear_filter(self) -> None:
        """`esc`: clear the text filter, then the other filters, then back to the view the user came from."""
        if self.filter_open or self.list_filter.text:
            self.close_filter()
            self.set_filter(text="")
        elif self.list_filter.narrowed:
            self.set_filter(kind=None, team=None, min_impact=None)
        elif self.finops.go_back():
            return
        self.query_one(RecList).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.set_filter(text=event.value.strip().lower())

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one(RecList).focus()

    def action_toggle_hidden(self) -> None:
        self.set_filter(show_hidden=not self.list_filter.show_hidden)

    def action_cycle_currency(self) -> None:
        codes = sorted({rec.currency for rec in self.recommendations})
        if len(codes) <= 1 and self.currency is None:
            self.notify(f"Every finding is in {codes[0] if codes else 'one currency'}.", timeout=3)
            return
        self.set_currency(cycle(codes, self.currency))

    def set_currency(self, currency: str | None) -> None:
        self.finops.view_state.currency = currency
        self._show_context()
        self._show_list()

    def action_toggle_metric(self) -> None:
        state = self.finops.view_state
        state.metric = "billed" if state.metric == "effective" else "effective"
        self._show_context()
        self.rerun()

    def action_rerun(self) -> None:
        self.rerun()

    def can_export(self) -> bool:
        return self.run is not None

    def export_csv(self, folder: Path) -> Path:
        """The listed findings (after the filters), in rank order, with exact monthly figures."""
        assert self.run is not None
        data_end = self.run.data_end.isoformat() if self.run.data_end else "no-data"
        currency = f"-{self.currency}" if self.currency else ""
        path = folder / f"finops-recommendations-{data_end}-{self.run.metric}{currency}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["rank", "id", "kind", "title", "scope_type", "scope", "team", "currency",
                             "monthly_impact", "estimate", "confidence", "state", "snoozed_until", "note"])
            for rank, rec in enumerate(self.shown, 1):
                writer.writerow([rank, rec.id, rec.kind, rec.title, rec.scope.type, rec.scope.label, rec.team or "",
                                 rec.currency, format(rec.monthly_impact, "f"), "yes" if rec.estimate else "no",
                                 rec.confidence, rec.state or "",
                                 rec.snoozed_until.isoformat() if rec.snoozed_until else "", rec.note or ""])
        return path

    # ----------------------------------------------------------------------------------------------
    # acting on a finding: the screen changes at once, a worker writes the cache

    def _selected(self) -> Recommendation | None:
        rec = self.query_one(RecList).current
        if rec is None:
            self.notify("No finding selected.", timeout=3)
        return rec

    def _edit(
        self, rec: Recommendation, edit: StateEdit, change: StateChange, *, days: int = 0, text: str = ""
    ) -> None:
        self._edits[rec.id] = edit
        self.recommendations = [self._with_edit(r) if r.id == rec.id else r for r in self.recommendations]
        self._show_list(keep=rec.id)
        self._worker_save_state(rec.id, change, days=days, text=text)

    def action_dismiss_finding(self) -> None:
        rec = self._selected()
        if rec is None:
            return
        if rec.state == "dismissed":
            self.notify("Already dismissed (u restores it).", timeout=3)
            return
        self._edit(rec, StateEdit("dismissed", None, rec.note), "dismiss")
        self.notify(f"Dismissed: {truncate(rec.title, 60)}", title="u restores · D shows dismissed", timeout=4)

    def action_snooze(self) -> None:
        rec = self._selected()
        if rec is None:
            return

        def chosen(days: int | None) -> None:
            if days is None:
                return
            until = clock.today() + dt.timedelta(days=days)
            self._edit(rec, StateEdit("snoozed", until, rec.note), "snooze", days=days)
            self.notify(f"Snoozed until {until.isoformat()}: {truncate(rec.title, 50)}", timeout=4)

        self.app.push_screen(SnoozeDialog(rec.title), chosen)

    def action_note(self) -> None:
        rec = self._selected()
        if rec is None:
            return

        def chosen(text: str | None) -> None:
            if text is None:
                return
            # A note alone marks the finding "noted"; removing it leaves a dismiss or snooze as it was.
            state: str | None = (rec.state or "noted") if text else (None if rec.state == "noted" else rec.state)
            self._edit(rec, StateEdit(state, rec.snoozed_until, text or None), "note", text=text)

        self.app.push_screen(NoteDialog(rec.title, rec.note), chosen)

    def action_restore(self) -> None:
        rec = self._selected()
        if rec is None:
            return
        if rec.state not in HIDING_STATES:
            self.notify("This finding is not dismissed or snoozed.", timeout=3)
            return
        self._edit(rec, StateEdit("noted" if rec.note else None, None, rec.note), "restore")
        self.notify(f"Restored: {truncate(rec.title, 60)}", timeout=3)

    @work(thread=True, group="rec-state", exit_on_error=False, name="saving a recommendation's state")
    def _worker_save_state(self, rec_id: str, change: StateChange, *, days: int, text: str) -> None:
        with self.finops.cache.write() as cur:
            if change == "dismiss":
                dismiss(cur, rec_id)
            elif change == "snooze":
                snooze(cur, rec_id, days)
            elif change == "note":
                note(cur, rec_id, text)
            else:
                restore(cur, rec_id)

    # ----------------------------------------------------------------------------------------------
    # jumps

    def action_explain(self) -> None:
        """`x`: why the cost of the finding's scope changed, month to date against the month before."""
        rec = self._selected()
        if rec is not None:
            self.finops.open_explain(explain_scope(rec), root="Recommendations")

    @on(RecList.Chosen)
    def _chosen(self, event: RecList.Chosen) -> None:
        self.open_target(event.recommendation)

    def open_target(self, rec: Recommendation) -> None:
        """The allocation tree at the finding's path, or the tagging queue for its key and scope."""
        jump = rec.jump
        if rec.kind in COMMITMENT_KINDS:
            self._open_commitments(rec)
        elif jump is None:
            self.notify("This finding has nothing to open.", timeout=3)
        elif jump.screen == "tagging":
            self._open_tagging(rec, jump)
        else:
            self._open_allocation(jump)

    def _open_allocation(self, jump: JumpTarget) -> None:
        if jump.path:
            # One slice only: the deepest step says the most about where to look (a resource opens its detail).
            self.finops.open_allocation(*jump.path[-1])
        else:
            self.finops.jump_to_view("allocation")

    def _open_commitments(self, rec: Recommendation) -> None:
        """The Commitments view, on the finding's commitment when it names one (esc comes back)."""
        if not self.finops.jump_to_view("commitments"):
            return
        focus = getattr(self.app.screen, "focus_commitment", None)
        if rec.scope.type == "commitment" and callable(focus):
            focus(rec.scope.key)

    def _open_tagging(self, rec: Recommendation, jump: JumpTarget) -> None:
        """The queue for the key and scope pushed over this screen (esc comes back), as the allocation tree
        opens it."""
        key = jump.tag_key or self.finops.config.team_key
        scope = [(dim, step_key, scope_step_label(rec, dim, step_key)) for dim, step_key in jump.path]
        self.finops.open_queue(key, scope)

    # ----------------------------------------------------------------------------------------------
    # palette

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield PaletteCommand("Recommendations: run again", "Run every generator on the cache (r)", self.rerun)
        present = {rec.kind for rec in self.recommendations}
        for kind, title in KIND_TITLES.items():
            if kind in present:
                yield PaletteCommand(f"Show kind: {title}", "Only this kind of finding",
                                     partial(self.set_filter, kind=kind))
        for team in sorted({rec.team for rec in self.recommendations if rec.team}, key=str.lower):
            yield PaletteCommand(f"Show team: {team}", "Only this team's findings", partial(self.set_filter, team=team))
        yield PaletteCommand("Minimum impact…", "Hide findings worth less per month (i)", self.action_min_impact)
        yield PaletteCommand("Export findings to CSV", "Save the listed findings in the exports folder (ctrl+s)",
                             self.action_export)
        yield PaletteCommand("Clear filters", "Every kind, team and amount",
                             partial(self.set_filter, kind=None, team=None, min_impact=None, text=""))
        shown = "Hide" if self.list_filter.show_hidden else "Show"
        yield PaletteCommand(f"{shown} dismissed and snoozed", "Toggle them in the list (D)", self.action_toggle_hidden)
        for code in sorted({rec.currency for rec in self.recommendations}):
            if code != self.currency:
                yield PaletteCommand(f"Currency: {code}", f"Only findings billed in {code}",
                                     partial(self.set_currency, code))
        if self.currency is not None:
            yield PaletteCommand("Currency: every currency", "Each finding in its own currency",
                                 partial(self.set_currency, None))
        if self.query_one(RecList).current is not None:
            yield PaletteCommand("Dismiss finding", "Hide the selected finding for good (d)",
                                 self.action_dismiss_finding)
            yield PaletteCommand("Snooze finding…", "Hide the selected finding for N days (z)", self.action_snooze)
            yield PaletteCommand("Note on finding…", "Write a note on the selected finding (n)", self.action_note)
            yield PaletteCommand("Open finding's target", "Allocation tree or tagging queue (enter)",
                                 lambda: self.query_one(RecList).action_choose())

