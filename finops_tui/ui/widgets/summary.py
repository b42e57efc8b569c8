"""Summary cards: a title, one big figure and a line of detail (total, change, forecast, untagged)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Static


class SummaryCard(Static):
    """One figure with its title above and its context below."""

    DEFAULT_CSS = """
    SummaryCard {
        width: 1fr;
        height: 3;
        padding: 0 1;
        border-left: tall $primary;
        background: $boost;
        margin-right: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    SummaryCard.-last { margin-right: 0; }
    """

    def show(self, title: str, value: Content | str, detail: Content | str = "") -> None:
        self.update(Content.assemble(
            Content.styled(title, "$text-muted"), "\n",
            Content.styled(value, "bold") if isinstance(value, str) else value, "\n",
            Content.styled(detail, "$text-muted") if isinstance(detail, str) else detail,
        ))


class SummaryRow(Horizontal):
    """Four cards side by side."""

    DEFAULT_CSS = """
    SummaryRow { height: 3; }
    """

    def compose(self) -> ComposeResult:
        yield SummaryCard(id="card-total")
        yield SummaryCard(id="card-change")
        yield SummaryCard(id="card-forecast")
        yield SummaryCard(id="card-untagged", classes="-last")
