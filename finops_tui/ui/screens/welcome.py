"""Welcome screen for an empty cache: open the demo estate, import a file, or connect Azure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Header, Label, LoadingIndicator, Static
from textual.worker import Worker

from finops_tui import clock, paths
from finops_tui.allocation.effective import TagPolicy, load_tag_policy
from finops_tui.errors import UserError
from finops_tui.store import Cache
from finops_tui.ui.formatting import short_path
from finops_tui.ui.messages import DemoBuilt, FileImported
from finops_tui.ui.screens.base import FinopsScreen
from finops_tui.ui.views import ReopenCache
from finops_tui.ui.widgets.key_footer import KeyFooter
from finops_tui.ui.widgets.path_input import PathInput
from finops_tui.ui.widgets.status_bar import StatusBar

SYNC_COMMAND = "finops-tui sync --scope /subscriptions/<subscription-id>"


def build_demo_cache(path: Path, end: dt.date, policy: TagPolicy) -> Path:
    """Build (or reuse, when already built with the same parameters) the demo estate at `path`."""
    from finops_tui.ingest import demo  # imported on use: it is not needed to start the app

    params = demo.DemoParams(end=end, months=demo.DEFAULT_MONTHS, rows=None, seed=demo.DEFAULT_SEED)
    if demo.existing_summary(path, params) is None:
        demo.build_demo(path, policy, end=end)
    return path


def import_into(cache: Cache, path: Path, policy: TagPolicy) -> ImportSummary:
    """Import one file or export folder into the open cache (the same importer as `finops-tui import`)."""
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    from finops_tui.ingest.importer import import_paths  # imported on use: it is not needed to start the app

    outcome = import_paths(cache, policy, [path])
    rows = sum(result.rows for result in outcome.results)
    lines = [result.summary() for result in outcome.results] + outcome.skipped_files
    return ImportSummary(rows, lines[0] if len(lines) == 1 else f"{len(outcome.results)} windows, {rows:,} rows")


@dataclass(frozen=True)
class ImportSummary:
    rows: int
    line: str


class WelcomeScreen(FinopsScreen):
    """Three ways to get cost into an empty cache."""

    VIEW_TITLE = "Welcome"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "open_demo", "Demo estate", id="welcome.demo", tooltip="Build and open the demo estate"),
        Binding("i", "focus_import", "Import file", id="welcome.import", tooltip="Import a cost export file"),
        Binding("a", "connect_azure", "Azure", id="welcome.azure", tooltip="How to sync from Azure"),
    ]

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        with VerticalScroll(id="welcome"):
            yield Static(Content.styled("Welcome to finops-tui", "bold $accent"), id="welcome-title")
            yield Static(
                f"The cache {short_path(self.finops.cache.path)} has no cost data yet. Choose how to start:",
                id="welcome-intro", markup=False,  # a path is shown as it is, brackets included
            )
            with Vertical(id="choice-demo", classes="choice"):
                yield Static(Content.assemble(Content.styled("d", "bold $accent"),
                                              Content.styled("  Open the demo estate", "bold")), classes="choice-title")
                yield Static("A realistic synthetic Azure estate: 13 months, several subscriptions and teams, with "
                             "planted savings. Built locally in a few seconds; nothing leaves this machine.",
                             classes="choice-text")
                with Horizontal(classes="choice-actions"):
                    yield Button("Open demo estate", id="demo", variant="primary")
                    yield LoadingIndicator(id="demo-loading")
                yield Label("", id="demo-error", classes="error", markup=False)
            with Vertical(id="choice-import", classes="choice"):
                yield Static(Content.assemble(Content.styled("i", "bold $accent"),
                                              Content.styled("  Import a file", "bold")), classes="choice-title")
                yield Static("A FOCUS CSV / CSV.GZ / Parquet file, or an Azure cost export (a folder with "
                             "manifest.json). Tab completes the path.", classes="choice-text")
                with Horizontal(classes="choice-actions"):
                    yield PathInput(id="import-path")
                    yield Button("Import", id="import")
                    yield LoadingIndicator(id="import-loading")
                yield Label("", id="import-error", classes="error", markup=False)
            with Vertical(id="choice-azure", classes="choice"):
                yield Static(Content.assemble(Content.styled("a", "bold $accent"),
                                              Content.styled("  Connect Azure", "bold")), classes="choice-title")
                yield Static(Content.assemble(
                    "Sync needs the Cost Management Reader role on the scope and a signed-in Azure CLI:\n",
                    Content.styled("  az login\n", "bold $text-success"),
                    "Then set [sync] scopes in config.toml and press ", Content.styled("R", "bold $accent"),
                    " here, or quit and run:\n",
                    Content.styled(f"  {SYNC_COMMAND}", "bold $text-success"),
                ), classes="choice-text")
        yield StatusBar(only_while_syncing=True)  # the intro already names the cache and its emptiness
        yield KeyFooter()

    def on_mount(self) -> None:
        super().on_mount()
        for indicator in self.query(LoadingIndicator):
            indicator.display = False

    # demo -----------------------------------------------------------------------------------------

    @on(Button.Pressed, "#demo")
    def action_open_demo(self) -> None:
        self.query_one("#demo", Button).disabled = True
        self.query_one("#demo-loading").display = True
        self.query_one("#demo-error", Label).update("")
        end = self.finops.demo_end or clock.today() - dt.timedelta(days=1)
        self._build_demo(paths.demo_cache_path(), end)

    @work(thread=True, exclusive=True, group="welcome", exit_on_error=False, name="demo estate build")
    def _build_demo(self, path: Path, end: dt.date) -> None:
        self.post_message(DemoBuilt(build_demo_cache(path, end, load_tag_policy(self.finops.config))))

    @on(DemoBuilt)
    def _demo_built(self, message: DemoBuilt) -> None:
        self.app.exit(ReopenCache(message.path))

    # import ---------------------------------------------------------------------------------------

    def action_focus_import(self) -> None:
        self.query_one(PathInput).focus()

    @on(PathInput.Submitted, "#import-path")
    @on(Button.Pressed, "#import")
    def _start_import(self) -> None:
        path_input = self.query_one(PathInput)
        if not path_input.value.strip():
            self.query_one("#import-error", Label).update("Type the path of a file or export folder first.")
            path_input.focus()
            return
        self.query_one("#import", Button).disabled = True
        self.query_one("#import-loading").display = True
        self.query_one("#import-error", Label).update("")
        self._import(path_input.path)

    @work(thread=True, exclusive=True, group="welcome", exit_on_error=False, name="import")
    def _import(self, path: Path) -> None:
        summary = import_into(self.finops.cache, path, load_tag_policy(self.finops.config))
        if summary.rows == 0:
            raise UserError(summary.line)  # an export with no rows leaves the cache empty: say so here
        self.post_message(FileImported(summary.line))

    @on(FileImported)
    def _imported(self, message: FileImported) -> None:
        self._reset_buttons()
        self.notify(message.summary, title="Imported", timeout=8)
        self.finops.show_loaded_cache()

    # azure ----------------------------------------------------------------------------------------

    def action_connect_azure(self) -> None:
        self.query_one("#choice-azure").scroll_visible()
        self.notify(f"Run `az login`, then `{SYNC_COMMAND}`, or set [sync] scopes in config.toml and press R.",
                    title="Connect Azure", timeout=8)

    # errors: shown in one line beside the choice that failed --------------------------------------

    def show_failure(self, worker: Worker[Any], text: str) -> None:
        """Called by the app for this screen's failed workers: the reason goes under the choice."""
        self._reset_buttons()
        target = "#demo-error" if worker.name == "demo estate build" else "#import-error"
        self.query_one(target, Label).update(text)

    def _reset_buttons(self) -> None:
        for button in self.query(Button):
            button.disabled = False
        for indicator in self.query(LoadingIndicator):
            indicator.display = False
