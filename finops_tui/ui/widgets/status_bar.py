"""Status bar: data freshness (or the running sync's progress) on the left, the cache file in use on the right."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label


class StatusBar(Horizontal):
    """One line above the footer: where the numbers come from, and how a sync under way is doing."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text-muted;
        padding: 0 1;
    }
    StatusBar #freshness { width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    StatusBar #sync { width: 1fr; display: none; color: $text-accent; text-wrap: nowrap; text-overflow: ellipsis; }
    StatusBar #cache-file {
        width: auto; max-width: 45%; margin-left: 3; text-align: right; text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    def __init__(self, *, only_while_syncing: bool = False) -> None:
        super().__init__()
        self.only_while_syncing = only_while_syncing  # a screen with nothing else to say here (the welcome)

    def compose(self) -> ComposeResult:
        # File names and sync messages come from outside: shown as they are, never read as markup.
        yield Label("", id="freshness", markup=False)
        yield Label("", id="sync", markup=False)
        yield Label("", id="cache-file", markup=False)

    def on_mount(self) -> None:
        # The app owns the one sync line; every screen's bar follows it (hidden screens too, so a view
        # shown mid-sync is current at once).
        if hasattr(self.app, "sync_status"):
            self.watch(self.app, "sync_status", self._show_sync)
        elif self.only_while_syncing:
            self.display = False

    def show(self, freshness: str, cache_file: str) -> None:
        self.query_one("#freshness", Label).update(freshness)
        self.query_one("#cache-file", Label).update(f"cache {cache_file}")

    def _show_sync(self, line: str) -> None:
        """While a sync runs, its progress takes the whole line (throttling waits are at its end); the
        freshness and the cache file come back, updated, when it ends."""
        sync = self.query_one("#sync", Label)
        sync.update(line)
        sync.display = bool(line)
        self.query_one("#freshness", Label).display = not line
        self.query_one("#cache-file", Label).display = not line
        if self.only_while_syncing:
            self.display = bool(line)
