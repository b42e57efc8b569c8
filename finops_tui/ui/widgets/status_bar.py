"""Status bar: data freshness on the left, the cache file in use on the right."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label


class StatusBar(Horizontal):
    """One line above the footer: where the numbers come from."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text-muted;
        padding: 0 1;
    }
    StatusBar #freshness { width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    StatusBar #cache-file { width: auto; max-width: 60%; text-align: right; }
    """

    def compose(self) -> ComposeResult:
        yield Label("", id="freshness")
        yield Label("", id="cache-file")

    def show(self, freshness: str, cache_file: str) -> None:
        self.query_one("#freshness", Label).update(freshness)
        self.query_one("#cache-file", Label).update(f"cache {cache_file}")
