"""The detail pane of one recommendation: what, how much, what to do, its evidence table and chart, its target."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from finops_tui.basis.money import cents, money
from finops_tui.recommend import JumpTarget, Recommendation
from finops_tui.recommend.generators import KIND_PURCHASE, KIND_TITLES, KIND_UNUSED
from finops_tui.recommend.model import EvidenceValue
from finops_tui.report.explain import KIND_TITLES as EXPLAIN_TITLES
from finops_tui.report.explain import CurrencyExplanation
from finops_tui.ui.widgets.rec_chart import RecChart

# What the monthly figure means, after "45,461.26 USD / month".
IMPACT_WORDS = {
    "savings": "could be saved",
    "waste": "wasted",
    "increase": "more than before",
    "unallocated": "with no owner",
    "affected": "affected",
    "overrun": "over budget",
}
DIMENSION_WORDS = {"resource-group": "resource group", "sku": "SKU"}
MAX_LABEL_WIDTH = 34


def evidence_text(value: EvidenceValue) -> str:
    """Evidence values as people read them: dates in ISO, numbers with separators, text as is."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def dimension_words(dimension: str) -> str:
    if dimension.startswith("tag:"):
        return f"tag {dimension[4:]}"
    return DIMENSION_WORDS.get(dimension, dimension)


# Findings about commitments open the Commitments view (5), on the commitment when the finding names one.
COMMITMENT_KINDS = frozenset({KIND_UNUSED, KIND_PURCHASE})


def target_words(jump: JumpTarget | None) -> str:
    """`Allocation: subscription › resource group` or `Tagging: fill 'team'`: where `enter` goes."""
    if jump is None:
        return "nothing to open for this finding"
    if jump.screen == "tagging":
        where = " › ".join(dimension_words(dim) for dim, _ in jump.path)
        key = f"fill '{jump.tag_key}'" if jump.tag_key else "the unallocated queue"
        return f"Tagging: {key}" + (f" in this {where}" if where else "")
    return "Allocation: " + " › ".join(dimension_words(dim) for dim, _ in jump.path)


class RecDetail(VerticalScroll):
    """Everything about the finding under the list's cursor; `tab` focuses it to scroll long evidence."""

    HELP_GROUP = "Evidence"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", id="list.down", show=False, tooltip="Scroll the evidence down"),
        Binding("k", "scroll_up", "Up", id="list.up", show=False, tooltip="Scroll the evidence up"),
    ]

    DEFAULT_CSS = """
    RecDetail { padding: 0 1; }
    RecDetail #detail-title { text-style: bold; }
    RecDetail #detail-state { color: $text-warning; }
    RecDetail #detail-action { margin-top: 1; }
    RecDetail #detail-body { height: auto; margin-top: 1; }
    RecDetail #detail-evidence { height: auto; }
    RecDetail RecChart { margin-top: 1; }
    RecDetail #detail-empty { color: $text-muted; text-style: italic; }
    RecDetail #detail-explain { height: auto; margin-top: 1; display: none; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.recommendation: Recommendation | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="detail-empty")
        yield Static("", id="detail-title")
        yield Static("", id="detail-figure")
        yield Static("", id="detail-state")
        yield Static("", id="detail-action")
        with Container(id="detail-body"):
            yield Static("", id="detail-evidence")
            yield RecChart(id="detail-chart")
        yield Static("", id="detail-explain")

    def show(self, rec: Recommendation | None, empty_text: str = "") -> None:
        """Show `rec`, or `empty_text` when there is none (an empty list)."""
        self.recommendation = rec
        self.query_one("#detail-explain").display = False  # an anomaly's explanation arrives on its own
        parts = ("#detail-title", "#detail-figure", "#detail-state", "#detail-action", "#detail-body")
        empty = self.query_one("#detail-empty", Static)
        empty.display = rec is None
        for selector in parts:
            self.query_one(selector).display = rec is not None
        if rec is None:
            empty.update(empty_text)
            self.border_subtitle = ""
            return
        self.query_one("#detail-title", Static).update(Content(rec.title))
        self.query_one("#detail-figure", Static).update(self._figure(rec))
        state = self._state(rec)
        state_line = self.query_one("#detail-state", Static)
        state_line.update(state)
        state_line.display = bool(state)
        self.query_one("#detail-action", Static).update(
            Content.assemble(Content.styled("What to do  ", "bold $text-accent"), rec.action))
        self.query_one("#detail-evidence", Static).update(self._evidence(rec))
        chart = self.query_one(RecChart)
        chart.display = bool(rec.series)
        chart.show_points(rec.series, rec.currency)
        # Where `enter` goes, on the bottom border: it costs no line of the pane.
        # Content, not markup: the words name tag keys and dimensions from the data.
        where = "Commitments" if rec.kind in COMMITMENT_KINDS else target_words(rec.jump) if rec.jump else None
        self.border_subtitle = Content(f"enter opens {where}" if where else target_words(None))
        self.scroll_home(animate=False)

    def show_explanation(self, rec_id: str, result: CurrencyExplanation | None, compared: str) -> None:
        """What moved in an anomaly's scope on its days against `compared` (the same weekdays before), bucket by
        bucket with the largest contributor of each; ignored when another finding is on show meanwhile."""
        if self.recommendation is None or self.recommendation.id != rec_id:
            return
        pane = self.query_one("#detail-explain", Static)
        pane.display = result is not None
        if result is None:
            return
        table = Table(box=None, show_header=False, padding=(0, 1, 0, 0), expand=False,
                      title=f"What moved: {money(result.change, signed=True)} against {compared}",
                      title_justify="left", title_style="bold")
        table.add_column(style="dim", max_width=MAX_LABEL_WIDTH, overflow="fold")
        table.add_column(justify="right", no_wrap=True)
        table.add_column(overflow="fold")
        for bucket in result.buckets:
            if not cents(bucket.amount):
                continue
            lead = bucket.top[0] if bucket.top else None
            behind = "" if lead is None else (f"{lead.name} · {lead.meter}" if lead.meter else lead.name) + \
                f" {money(lead.amount, signed=True)}"
            table.add_row(Text(EXPLAIN_TITLES[bucket.kind]), Text(money(bucket.amount, signed=True)), Text(behind))
        pane.update(table)

    @staticmethod
    def _figure(rec: Recommendation) -> Content:
        words = IMPACT_WORDS.get(rec.impact_kind, rec.impact_kind)
        amount = ("~" if rec.estimate else "") + money(rec.monthly_impact, rec.currency)
        parts = [
            Content.styled(f"{amount} / month", "bold $text-accent"),
            Content.styled(f" {words}", "$text"),
            Content.styled("  ·  ", "$text-muted"),
            Content(KIND_TITLES.get(rec.kind, rec.kind)),
            Content.styled("  ·  ", "$text-muted"),
            Content(f"{rec.confidence} confidence" + (" (estimate)" if rec.estimate else "")),
        ]
        scope = f"{dimension_words(rec.scope.type)} {rec.scope.label}"
        parts += [Content.styled("\nScope  ", "$text-muted"), Content(scope)]
        if rec.team:
            parts += [Content.styled("  ·  team ", "$text-muted"), Content(rec.team)]
        return Content.assemble(*parts)

    @staticmethod
    def _state(rec: Recommendation) -> Content:
        lines: list[Content] = []
        if rec.state == "dismissed":
            lines.append(Content("Dismissed (u restores it)"))
        elif rec.state == "snoozed" and rec.snoozed_until is not None:
            lines.append(Content(f"Snoozed until {rec.snoozed_until.isoformat()} (u restores it)"))
        if rec.note:
            lines.append(Content.assemble(Content.styled("Note  ", "bold"), rec.note))
        return Content("\n").join(lines) if lines else Content("")

    @staticmethod
    def _evidence(rec: Recommendation) -> Table:
        table = Table(box=None, show_header=False, padding=(0, 1, 0, 0), expand=False)
        table.add_column(style="dim", max_width=MAX_LABEL_WIDTH, overflow="fold")
        table.add_column(overflow="fold")
        for label, value in rec.evidence:
            table.add_row(Text(label), Text(evidence_text(value)))
        return table
