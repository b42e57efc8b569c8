"""Commitments screen (5): utilization, coverage, ESR, realized savings and waste; each commitment's days and
what it covered; `enter` opens the covered cost in the allocation tree by team."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Header, Input, Static

from finops_tui.basis.money import money
from finops_tui.report.commitments import Commitment, CommitmentsView, CurrencyCommitments, ratio_text
from finops_tui.ui.commands import PaletteCommand
from finops_tui.ui.screens.commitments_data import CommitmentsLoaded, CommitmentsRequest, load_commitments
from finops_tui.ui.screens.cost_view import CostViewScreen, FilterInput
from finops_tui.ui.widgets.commitment_list import (
    NOT_COMPUTED,
    CommitmentList,
    UtilizationChart,
    saving_text,
    utilization_text,
)
from finops_tui.ui.widgets.context_bar import ContextBar, cost_context
from finops_tui.ui.widgets.key_footer import KeyFooter
from finops_tui.ui.widgets.status_bar import StatusBar
from finops_tui.ui.widgets.summary import SummaryCard

COVERED_SHOWN = 8  # covered resources listed in the detail pane


class CommitmentsScreen(CostViewScreen):
    """Are we using what we bought, how much of the eligible usage it covers, and what it saved."""

    VIEW_TITLE = "Commitments"
    AUTO_FOCUS = "#list"  # what on_mount focuses: no detour through the hidden filter (two restyles)
    QUERY_GROUP = "commitments"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012 (Textual's type)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="view.filter", tooltip="Filter the commitments by name, id or type"),
        Binding("ctrl+s", "export", "Export", id="view.export",
                tooltip="Save the commitments and KPIs as CSV in the exports folder"),
        Binding("escape", "clear_filter", "Back", id="view.back", show=False,
                tooltip="Clear the filter, else back to the view you came from"),
    ]

    DEFAULT_CSS = """
    CommitmentsScreen #kpis { height: 3; }
    CommitmentsScreen #body { height: 1fr; }
    CommitmentsScreen #list { width: 3fr; border: round $primary-darken-2; }
    CommitmentsScreen #detail { width: 2fr; border: round $primary-darken-2; padding: 0 1; }
    CommitmentsScreen #detail-head { height: auto; }
    CommitmentsScreen #chart { height: 9; padding: 0; }
    CommitmentsScreen #covered { height: auto; }
    CommitmentsScreen #contracts { height: auto; max-height: 8; padding: 0 1; }
    CommitmentsScreen.-narrow #body { layout: vertical; }
    CommitmentsScreen.-narrow #list { width: 1fr; height: 7; }
    CommitmentsScreen.-narrow #detail { width: 1fr; height: 1fr; }
    CommitmentsScreen.-narrow #chart { height: 6; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.result: CommitmentsView | None = None
        self.shown: CurrencyCommitments | None = None
        self.filter_text = ""
        self._serial = 0
        self._focus_key: str | None = None  # a commitment to put the cursor on (a jump from a finding)

    # layout ---------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        yield ContextBar("commitments")
        yield Static("", id="notice")
        with Vertical(id="content"):
            with Horizontal(id="kpis"):
                for name in ("utilization", "coverage", "esr", "savings"):
                    yield SummaryCard(id=f"card-{name}")
                yield SummaryCard(id="card-waste", classes="-last")
            yield FilterInput(placeholder="filter commitments by name, id or type (esc clears)", id="filter")
            with Horizontal(id="body"):
                yield CommitmentList(id="list")
                with VerticalScroll(id="detail"):
                    yield Static("", id="detail-head")
                    yield UtilizationChart(id="chart")
                    yield Static("", id="covered")
            yield Static("", id="contracts")
        yield StatusBar()
        yield KeyFooter()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#filter").display = False
        self.query_one("#contracts").display = False
        self.query_one("#list", CommitmentList).border_title = "Commitments"
        self.query_one("#detail").border_title = "Detail"
        self.show_context()
        self.show_status()
        self.query_one(CommitmentList).focus()
        self.request_view()

    # the query ------------------------------------------------------------------------------------

    def request_view(self) -> None:
        state = self.finops.view_state
        self._serial += 1
        request = CommitmentsRequest(self._serial, state.period, state.metric, state.currency)
        self.begin_query(request)
        self._load(request)

    def loading_target(self) -> Widget:
        return self.query_one("#content")

    @work(thread=True, exclusive=True, group="commitments", exit_on_error=False, name="commitments query")
    def _load(self, request: CommitmentsRequest) -> None:
        self.run_query(lambda cur: load_commitments(cur, request))

    @on(CommitmentsLoaded)
    def _loaded(self, message: CommitmentsLoaded) -> None:
        if message.request.serial != self._serial:
            return  # a newer request is on its way
        self.take_answer(message)
        self.result = message.view
        self.shown = message.view.for_currency(message.currency)
        self.end_query(self.query_one(CommitmentList))
        self._show_all()

    def focus_commitment(self, key: str) -> None:
        """Put the cursor on commitment `key` (any case), now or when the data arrives."""
        self._focus_key = key
        if self.result is not None:
            self._show_list()

    # rendering ------------------------------------------------------------------------------------

    def context_forms(self) -> list[Content]:
        # Commitments are always amortized: used and unused hours exist only in EffectiveCost.
        return cost_context(self.period, self.finops.view_state.period, "effective", self.currency,
                            previous=self.previous)

    def notice_lines(self) -> list[Content]:
        lines = super().notice_lines()
        if self.result is not None:
            lines += [Content.styled(f"⚠ {note}", "$text-warning") for note in self.result.notes(self.currency)]
        return lines

    def _show_all(self) -> None:
        self.show_context()
        self._show_kpis()
        self._show_list()
        self._show_contracts()
        self.show_status()

    def _show_kpis(self) -> None:
        view, code, narrow = self.shown, self.currency or "", self.narrow
        unit = None if narrow else code or None

        def ratio_card(card: str, title: str, ratio: Decimal | None, detail: str) -> None:
            value = Content.styled(NOT_COMPUTED, "bold $text-muted") if ratio is None else f"{ratio * 100:.1f}%"
            self.query_one(f"#card-{card}", SummaryCard).show(title, value, detail)

        if view is None:
            for card, title in (("utilization", "Utilization"), ("coverage", "Coverage"), ("esr", "Savings rate"),
                                ("savings", "Realized savings"), ("waste", "Waste (unused)")):
                self.query_one(f"#card-{card}", SummaryCard).show(
                    title, Content.styled("—", "bold $text-muted"), "no commitment" if narrow else
                    "no commitment in this period")
            return
        ratio_card("utilization", "Utilization", view.utilization,
                   f"{money(view.used)} of {money(view.used + view.unused)}" if not narrow else "used / bought")
        ratio_card("coverage", "Coverage", view.coverage, "of eligible ListCost" if not narrow else "eligible")
        ratio_card("esr", "Effective savings rate" if self.size.width >= 150 else "ESR", view.effective_savings_rate,
                   "net of waste, vs ListCost" if self.size.width >= 150 else "net of waste")
        savings = view.realized_savings
        negotiated = view.negotiated_savings
        self.query_one("#card-savings", SummaryCard).show(
            "Realized savings" if not narrow else "Savings",
            Content.styled(NOT_COMPUTED, "bold $text-muted") if savings is None else
            Content.styled(money(savings, unit), "bold $text-success"),
            "no ListCost" if savings is None else
            (f"negotiated rate {saving_text(negotiated)}" if not narrow else f"rate {saving_text(negotiated)}"),
        )
        count = f"{len(view.commitments)} commitment" + ("s" if len(view.commitments) != 1 else "")
        self.query_one("#card-waste", SummaryCard).show(
            "Waste (unused)" if not narrow else "Waste",
            Content.styled(money(view.unused, unit), "bold $text-warning" if view.unused else "bold"),
            f"{count} · bought {money(view.purchase)}" if not narrow else count,
        )

    def _visible(self) -> list[Commitment]:
        rows = self.shown.commitments if self.shown is not None else []
        text = self.filter_text
        if text:
            rows = [c for c in rows if text in f"{c.label} {c.id} {c.type or ''}".lower()]
        return rows

    def _show_list(self) -> None:
        listing = self.query_one(CommitmentList)
        code = self.currency or "this currency"
        empty = "no match" if self.filter_text else f"no commitment discount billed in {code} in this period"
        current = listing.current
        keep = self._focus_key or (current.id if current is not None else None)
        listing.show(self._visible(), empty_text=empty, keep=keep)
        self._focus_key = None

    @on(CommitmentList.Highlighted)
    def _highlighted(self, event: CommitmentList.Highlighted) -> None:
        self._show_detail(event.commitment)

    def _show_detail(self, item: Commitment | None) -> None:
        head = self.query_one("#detail-head", Static)
        covered = self.query_one("#covered", Static)
        chart = self.query_one(UtilizationChart)
        chart.display = item is not None and bool(item.daily)
        detail = self.query_one("#detail")
        if item is None:
            detail.border_title = "Detail"
            head.update(Content.styled("Nothing selected.", "$text-muted"))
            covered.update("")
            return
        detail.border_title = Content(item.label)
        code = item.currency
        facts = [
            ("Type", " · ".join(p for p in (item.type, item.provider) if p) or "—"),
            ("Scope", item.scope or "—"),
            ("Term", item.term or "not in the data"),
            ("Utilization", f"{utilization_text(item.utilization)}  ({ratio_text(item.utilization) or '—'})"),
            ("Used / unused", f"{money(item.used)} / {money(item.unused, code)}"),
            ("Purchases billed", money(item.purchase, code)),
            ("Realized savings", saving_text(item.realized_savings)
             + ("" if item.realized_savings is not None else " (no ListCost on covered rows)")),
            ("Negotiated rate", saving_text(item.negotiated_savings)),
        ]
        width = max(len(k) for k, _ in facts)
        head.update(Content("\n").join(
            Content.assemble(Content.styled(f"{k.ljust(width)}  ", "$text-muted"), v) for k, v in facts))
        if item.daily:
            chart.show_utilization(item.daily)
        lines = [Content.styled(f"Covered: {item.covered_resource_count:,} resources (enter: by team)", "bold")]
        for resource in item.covered[:COVERED_SHOWN]:
            wide = self.size.width >= 150  # the group fits beside the name in a wide detail pane only
            where = f"  {resource.resource_group}" if resource.resource_group and wide else ""
            lines.append(Content.assemble(Content(f"{money(resource.used):>12}  "), Content(resource.name),
                                          Content.styled(where, "$text-muted")))
        if item.covered_resource_count > COVERED_SHOWN:
            lines.append(Content.styled(f"… and {item.covered_resource_count - COVERED_SHOWN:,} more", "$text-muted"))
        covered.update(Content("\n").join(lines))

    def _show_contracts(self) -> None:
        box = self.query_one("#contracts", Static)
        contracts = self.result.contracts if self.result is not None else []
        box.display = bool(contracts)
        if not contracts:
            return
        lines = [Content.styled("Contract commitments (FOCUS 1.3)", "bold")]
        for k in contracts:
            period = f"{k.start} .. {k.end}" if k.start and k.end else "—"
            spent = f" · billed {money(k.billed_in_period, k.currency)} in its period" \
                if k.billed_in_period is not None else ""
            lines.append(Content.assemble(
                Content(f"{k.id}  "), Content.styled(f"{k.category or '—'} {k.amount}  {period}  ", "$text-muted"),
                Content.styled(k.status, "$text-success" if k.status == "active" else "$text-muted"), Content(spent),
            ))
        box.update(Content("\n").join(lines))

    # actions --------------------------------------------------------------------------------------

    @on(CommitmentList.Chosen)
    def _chosen(self, event: CommitmentList.Chosen) -> None:
        self.finops.open_allocation("commitment", event.commitment.id)

    def action_toggle_metric(self) -> None:
        self.notify("Commitments are measured in amortized cost (EffectiveCost): m applies to the other views.",
                    timeout=4)

    def action_clear_filter(self) -> None:
        if not self.filter_open and not self.filter_text:
            self.finops.go_back()
            return
        self.close_filter()
        self.filter_text = ""
        self._show_list()
        self.query_one(CommitmentList).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip().lower()
        if self.result is not None:
            self._show_list()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one(CommitmentList).focus()

    def can_export(self) -> bool:
        return self.shown is not None

    def export_csv(self, folder: Path) -> Path:
        """The KPIs and the listed commitments with exact figures (ratios to 4 places)."""
        assert self.shown is not None and self.period is not None
        view, period = self.shown, self.period
        path = folder / f"finops-commitments-{period.start}..{period.end}-{view.currency}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["currency", "id", "name", "type", "scope", "term", "used", "unused", "utilization",
                             "purchase", "realized_savings", "negotiated_savings", "coverage",
                             "effective_savings_rate"])
            writer.writerow([view.currency, "", "(all commitments)", "", "", "", view.used, view.unused,
                             ratio_text(view.utilization), view.purchase, _cell(view.realized_savings),
                             _cell(view.negotiated_savings), ratio_text(view.coverage),
                             ratio_text(view.effective_savings_rate)])
            for c in self._visible():
                writer.writerow([c.currency, c.id, c.name or "", c.type or "", c.scope or "", c.term or "", c.used,
                                 c.unused, ratio_text(c.utilization), c.purchase, _cell(c.realized_savings),
                                 _cell(c.negotiated_savings), "", ""])
        return path

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield from self.view_palette_commands()
        yield PaletteCommand("Filter commitments", "Filter the commitments by name, id or type (/)", self.action_filter)
        yield PaletteCommand("Export view to CSV", "Save the commitments and KPIs in the exports folder (ctrl+s)",
                             self.action_export)


def _cell(amount: Decimal | None) -> str:
    return "" if amount is None else format(amount, "f")
