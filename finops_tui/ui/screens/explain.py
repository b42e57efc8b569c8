"""Explain screen: why a node's cost changed, as a waterfall of buckets and the resources behind the chosen one."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import duckdb
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Header, Static

from finops_tui.basis.money import cents, change_percent, money, shown_change
from finops_tui.basis.periods import Period
from finops_tui.report.explain import (
    KIND_HINTS,
    KIND_TITLES,
    Contributor,
    CurrencyExplanation,
    Explanation,
    ScopePart,
    explain,
)
from finops_tui.store.sources import Freshness
from finops_tui.ui.commands import PaletteCommand
from finops_tui.ui.formatting import truncate
from finops_tui.ui.screens.cost_view import CostViewScreen, level_title, pick_currency, resolve_view
from finops_tui.ui.views import ScopeStep
from finops_tui.ui.widgets.context_bar import ContextBar
from finops_tui.ui.widgets.key_footer import KeyFooter
from finops_tui.ui.widgets.status_bar import StatusBar
from finops_tui.ui.widgets.waterfall import Step, Waterfall

CONTRIBUTORS = 50  # per bucket: the table scrolls; the rest is one "(N more)" line


@dataclass(frozen=True)
class ExplainRequest:
    serial: int
    scope: tuple[ScopePart, ...]
    period: str
    metric: str
    currency: str | None


@dataclass
class ExplainLoaded(Message):
    request: ExplainRequest
    period: Period
    freshness: Freshness
    currencies: list[str]
    currency: str
    explanation: Explanation


def load_explanation(cur: duckdb.DuckDBPyConnection, request: ExplainRequest) -> ExplainLoaded:
    """The screen's one query: the period on this cache, then every currency's explanation of the scope."""
    period, fresh, _codes, _currency = resolve_view(cur, request.period, request.metric, request.currency)
    result = explain(cur, request.scope, period, period.previous(), request.metric, top=CONTRIBUTORS)
    codes = [c.currency for c in result.currencies]
    return ExplainLoaded(request, period, fresh, codes, pick_currency(request.currency, codes), result)


def waterfall_steps(result: CurrencyExplanation, *, skip_zero: bool = False) -> list[Step]:
    """Before, the buckets (those that read 0.00 left out with `skip_zero`), after."""
    steps = [Step("before", "Before", result.before, is_total=True)]
    steps += [Step(b.kind, KIND_TITLES[b.kind], b.amount) for b in result.buckets if cents(b.amount) or not skip_zero]
    steps.append(Step("after", "After", result.after, is_total=True))
    return steps


class ContributorTable(DataTable[str | Text]):
    """The resources and meters behind the chosen bucket; `enter` opens one."""

    HELP_GROUP = "Contributors"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", id="list.down", show=False, tooltip="Next contributor"),
        Binding("k", "cursor_up", "Up", id="list.up", show=False, tooltip="Previous contributor"),
        Binding("enter", "select_cursor", "Open", id="list.open",
                tooltip="Open the resource's detail (charges of no resource: the scope in the allocation tree)"),
    ]


class ExplainScreen(CostViewScreen):
    """Pushed over any view by `x`: the change of one node between the period and the one before it."""

    VIEW_TITLE = "Explain"
    QUERY_GROUP = "explain"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="view.back", tooltip="Back to where you pressed x"),
        Binding("ctrl+s", "export", "Export", id="view.export",
                tooltip="Save the buckets and their contributors as CSV in the exports folder"),
    ]

    DEFAULT_CSS = """
    ExplainScreen #notice { height: auto; padding: 0 1; display: none; }
    ExplainScreen #breadcrumbs {
        height: 1; padding: 0 1; background: $boost; text-wrap: nowrap; text-overflow: ellipsis;
    }
    ExplainScreen #figures { height: auto; padding: 0 1; }
    ExplainScreen #content { height: 1fr; }
    ExplainScreen Waterfall, ExplainScreen ContributorTable {
        border: round $panel-lighten-2; border-title-color: $text; border-title-style: bold; background: $surface;
    }
    ExplainScreen Waterfall:focus, ExplainScreen ContributorTable:focus { border: round $primary; }
    ExplainScreen ContributorTable { height: 1fr; }
    ExplainScreen.-wide #content { layout: horizontal; }
    ExplainScreen.-wide Waterfall { width: 1fr; }
    ExplainScreen.-wide ContributorTable { width: 1fr; }
    """
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (140, "-wide")]  # noqa: RUF012 (Textual's type)
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]  # noqa: RUF012

    def __init__(self, scope: Sequence[ScopeStep] = (), *, root: str = "") -> None:
        super().__init__()
        self.scope = tuple(ScopePart(dimension, key, label) for dimension, key, label in scope)
        self.root = root
        self.explanation: Explanation | None = None
        self.kind: str | None = None  # the bucket whose contributors are listed
        self.contributors: list[Contributor] = []
        self._serial = 0

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        yield ContextBar(self.app.current_mode)
        yield Static("", id="notice")
        yield Static("", id="breadcrumbs")
        yield Static("", id="figures")
        with Container(id="content"):
            yield Waterfall(id="waterfall")
            yield ContributorTable(id="contributors", cursor_type="row", zebra_stripes=True)
        yield StatusBar()
        yield KeyFooter()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(Waterfall).border_title = "Change, bucket by bucket"
        self.query_one(ContributorTable).border_title = "Contributors"
        self._show_breadcrumbs()
        self.show_status()
        self.query_one(Waterfall).focus()
        self.request_view()

    def on_resize(self) -> None:
        self._show_breadcrumbs()
        if self.explanation is not None:
            self._show_all()

    # the query ------------------------------------------------------------------------------------

    def request_view(self) -> None:
        state = self.finops.view_state
        self._serial += 1
        request = ExplainRequest(self._serial, self.scope, state.period, state.metric, state.currency)
        self.begin_query(request)
        self._load(request)

    @work(thread=True, exclusive=True, group="explain", exit_on_error=False, name="explain query")
    def _load(self, request: ExplainRequest) -> None:
        self.run_query(lambda cur: load_explanation(cur, request))

    def loading_target(self) -> Widget:
        return self.query_one("#content")

    @on(ExplainLoaded)
    def _loaded(self, message: ExplainLoaded) -> None:
        if message.request.serial != self._serial:
            return
        self.end_query(self.query_one(Waterfall))
        self.take_answer(message)
        self.previous = message.explanation.vs
        self.explanation = message.explanation
        self._show_all()

    @property
    def shown(self) -> CurrencyExplanation | None:
        if self.explanation is None or self.currency is None:
            return None
        return self.explanation.currency(self.currency)

    # drawing --------------------------------------------------------------------------------------

    def _show_all(self) -> None:
        self.show_context()
        self._show_breadcrumbs()
        shown = self.shown
        self._show_figures(shown)
        short = self.size.height < 34
        steps = waterfall_steps(shown, skip_zero=short) if shown is not None else []
        self.query_one(Waterfall).show_steps(steps, self.currency or "", keep=self.kind,
                                             empty_text="no cost in either period")
        self._show_contributors()
        self.show_status()

    def _show_breadcrumbs(self) -> None:
        parts = [Content.styled(self.root or "Explain", "$text-muted")]
        for part in self.scope:
            style = "bold $text-warning" if part.key is None else "bold"
            parts.append(Content.assemble(Content.styled(f"{level_title(part.dimension)} ", "$text-muted"),
                                          Content.styled(part.label, style)))
        if not self.scope:
            parts.append(Content.styled("all cost", "bold"))
        room = max(20, self.size.width - 2)
        while len(parts) > 2 and sum(len(p.plain) + 3 for p in parts) > room:
            parts = [Content.styled("…", "$text-muted"), *parts[2:]]
        self.query_one("#breadcrumbs", Static).update(Content.styled(" › ", "$text-muted").join(parts))

    def _show_figures(self, shown: CurrencyExplanation | None) -> None:
        figures = self.query_one("#figures", Static)
        if shown is None or self.explanation is None:
            figures.update(Content.styled("No cost in this scope in either period.", "$text-muted"))
            return
        change = shown_change(shown.after, shown.before)
        style = "$text-error" if change > 0 else "$text-success" if change < 0 else "$text"
        vs = self.explanation.vs
        figures.update(Content.assemble(
            Content.styled("Before ", "$text-muted"), Content.styled(money(shown.before, shown.currency), "bold"),
            Content.styled(f" ({vs.start} .. {vs.end})  after ", "$text-muted"),
            Content.styled(money(shown.after, shown.currency), "bold"),
            Content.styled("  change ", "$text-muted"),
            Content.styled(f"{money(change, signed=True)} ({change_percent(shown.after, shown.before)})",
                           f"bold {style}"),
        ))

    @on(Waterfall.Highlighted)
    def _bucket_highlighted(self, event: Waterfall.Highlighted) -> None:
        step = event.step
        if step is not None and not step.is_total:
            self.kind = step.kind
        elif step is not None:
            self.kind = None
        self._show_contributors()

    def _show_contributors(self) -> None:
        table = self.query_one(ContributorTable)
        table.clear(columns=True)
        shown = self.shown
        kind = self.kind
        self.contributors = []
        if shown is None or kind is None:
            table.border_title = "Contributors"
            table.add_column("")
            table.add_row(Text("pick a bucket (j/k) to see what is behind it", style="dim italic"))
            return
        bucket = shown.bucket(kind)
        table.border_title = Content(f"{KIND_TITLES[kind]}: {money(bucket.amount, signed=True)}")
        table.border_subtitle = Content(KIND_HINTS[kind])
        self.contributors = list(bucket.top)
        amount_width = max([len("Change"), *(len(money(c.amount, signed=True)) for c in bucket.top)])
        width = self.size.width // 2 if self.size.width >= 140 else self.size.width
        room = max(12, width - amount_width - 10)
        rows: list[tuple[str | Text, Text]] = [
            (Text(money(c.amount, signed=True), justify="right"),
             Text(truncate(c.name if not c.meter else f"{c.name} · {c.meter}", room))) for c in bucket.top]
        if bucket.rest_count:
            rows.append((Text(money(bucket.rest, signed=True), justify="right"),
                         Text(f"({bucket.rest_count} more)", style="dim")))
        elif bucket.rest:
            rows.append((Text(money(bucket.rest, signed=True), justify="right"),
                         Text("(amounts under a cent each)", style="dim")))
        if not bucket.top and not bucket.rest:
            rows.append(("", Text("nothing in this bucket", style="dim italic")))
        # Set widths: the table measures its rows when idle, and the contributors are shown twice in a row (the
        # answer, then the waterfall's highlight), so a screen painted in between showed the headers' widths
        # (6 and 25) and cut the cents and the names.
        header = Text("Resource · meter / charge")
        table.add_column(Text("Change", justify="right"), width=amount_width)
        table.add_column(header, width=max(label.cell_len for label in [header, *(row[1] for row in rows)]))
        for row in rows:
            table.add_row(*row)

    # actions --------------------------------------------------------------------------------------

    @on(DataTable.RowSelected, "#contributors")
    def _contributor_chosen(self, event: DataTable.RowSelected) -> None:
        self.open_contributor(event.cursor_row)

    def open_contributor(self, index: int) -> None:
        """The contributor's resource detail; charges of no resource open the scope in the allocation tree."""
        if not 0 <= index < len(self.contributors):
            return
        chosen = self.contributors[index]
        if chosen.resource_id:
            trail = [(level_title(p.dimension), p.label) for p in self.scope if p.dimension != "resource"]
            self.finops.open_resource(chosen.resource_id, trail=trail, root="Explain")
        elif self.scope:
            self.finops.open_allocation(self.scope[-1].dimension, self.scope[-1].key)
        else:
            self.notify("These charges belong to no resource: nothing to open.", timeout=4)

    def action_back(self) -> None:
        self.app.pop_screen()

    def can_export(self) -> bool:
        return self.explanation is not None and self.period is not None

    def export_csv(self, folder: Path) -> Path:
        result, period = self.explanation, self.period
        assert result is not None and period is not None
        where = "-".join(p.label for p in self.scope).replace("/", "-")[:60] or "all"
        path = folder / f"finops-explain-{where}-{period.start}..{period.end}-{result.metric}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["currency", "section", "kind", "resource_id", "name", "meter", "amount"])
            for cur in result.currencies:
                writer.writerow([cur.currency, "total", "before", "", "", "", format(cur.before, "f")])
                writer.writerow([cur.currency, "total", "after", "", "", "", format(cur.after, "f")])
                for b in cur.buckets:
                    writer.writerow([cur.currency, "bucket", b.kind, "", "", "", format(b.amount, "f")])
                    for c in b.top:
                        writer.writerow([cur.currency, "contributor", b.kind, c.resource_id or "", c.name,
                                         c.meter or "", format(c.amount, "f")])
                    if b.rest_count or b.rest:
                        writer.writerow([cur.currency, "rest", b.kind, "", f"({b.rest_count} more)", "",
                                         format(b.rest, "f")])
        return path

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield from self.view_palette_commands()
        yield PaletteCommand("Export explanation to CSV", "Buckets and contributors (ctrl+s)", self.action_export)
        yield PaletteCommand("Back", "Return to where you pressed x (esc)", self.action_back)
