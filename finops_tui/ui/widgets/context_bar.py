"""The line under the header: what the figures are (period, metric, currency) and the keys of the views."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Static

from finops_tui.basis.periods import Period
from finops_tui.ui.formatting import METRIC_LABELS, METRIC_SHORT, PERIOD_CHOICES, period_title, span_text
from finops_tui.ui.widgets.view_tabs import FORMS, ViewTabs

SEPARATOR = "  │  "


SHARED_LONG = "with shared costs"
SHARED_SHORT = "+shared"


def cost_context(period: Period | None, spec: str, metric: str, currency: str | None, *,
                 previous: Period | None = None, shared: bool = False) -> list[Content]:
    """The context of a cost view, longest first: every form names the period, the metric and the currency
    (the figures mean nothing without them), and "with shared costs" when team figures include the pools'
    shares; shorter forms drop the dates, then the comparison."""
    def line(*parts: Content) -> Content:
        return Content.assemble(*parts)

    muted = "$text-muted"
    tail_long = [Content.styled(SEPARATOR, muted), Content.styled(METRIC_LABELS[metric], "bold $text-accent")]
    tail_short = [Content.styled(" │ ", muted), Content.styled(METRIC_SHORT[metric], "bold $text-accent")]
    if currency:
        tail_long += [Content.styled(SEPARATOR, muted), Content.styled(currency, "bold")]
        tail_short += [Content.styled(" │ ", muted), Content.styled(currency, "bold")]
    if shared:
        tail_long += [Content.styled(SEPARATOR, muted), Content.styled(SHARED_LONG, "bold $text-success")]
        tail_short += [Content.styled(" │ ", muted), Content.styled(SHARED_SHORT, "bold $text-success")]
    if period is None:
        title = Content.styled(dict(PERIOD_CHOICES).get(spec, spec), "bold")
        return [line(title, *tail_long), line(title, *tail_short)]
    title = Content.styled(period_title(period), "bold")
    # A custom range's title is its dates already; "All data" needs them.
    custom = ".." in period.spec
    dates = [] if custom else [Content.styled(f"  {span_text(period)}", muted)]
    short_dates = [] if custom else [Content.styled(f"  {span_text(period, year=False)}", muted)]
    versus = [Content.styled(f"  vs {span_text(previous or period.previous(), year=False)}", muted)]
    return [
        line(title, *dates, *versus, *tail_long),
        line(title, *dates, *tail_long),
        line(title, *short_dates, *tail_long),
        line(title, *short_dates, *tail_short),
        line(title, *tail_short),
    ]


class ContextBar(Horizontal):
    """Shows the longest form of the context that fits beside the views, shortening the views' titles
    before the context loses anything; the currency is never cut off."""

    DEFAULT_CSS = """
    ContextBar { height: 1; padding: 0 1; background: $panel; }
    ContextBar #context { width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    ContextBar ViewTabs { margin-left: 1; }
    """

    def __init__(self, view: str) -> None:
        super().__init__(id="context-bar")
        self._view = view
        self._forms: list[Content] = []
        self.shown = ""  # the plain text of the form on screen

    def compose(self) -> ComposeResult:
        yield Static("", id="context")
        yield ViewTabs(self._view, id="views")

    def show(self, forms: Sequence[Content]) -> None:
        """The context, longest form first."""
        self._forms = list(forms)
        self._fit()

    def set_view(self, view: str) -> None:
        """The view the screen sits over now (a screen re-used over another view)."""
        self._view = view
        if self.is_mounted:
            self.query_one(ViewTabs).set_current(view)
            self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        tabs = self.query_one(ViewTabs)
        width = self.size.width - 2  # the padding
        if width <= 0 or not self._forms:
            self._show(self._forms[0] if self._forms else Content(""), "full")
            return
        for form in self._forms:
            for tabs_form in FORMS:
                if form.cell_length + 1 + tabs.width_of(tabs_form) <= width:
                    self._show(form, tabs_form)
                    return
        self._show(self._forms[-1], FORMS[-1])

    def _show(self, form: Content, tabs_form: str) -> None:
        self.shown = form.plain
        self.query_one("#context", Static).update(form)
        self.query_one(ViewTabs).set_form(tabs_form)
