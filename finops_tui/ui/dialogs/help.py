"""Help: the keys active on the current screen, with what each does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Label

WIDE = 110  # terminal columns from which the id gets its own column; below, it goes beside the action


@dataclass(frozen=True)
class KeyHelp:
    """One row of the help table."""

    where: str
    keys: str
    action: str
    detail: str
    binding_id: str = ""


class KeyRows(Widget):
    """The rows, grouped by where the keys act; descriptions wrap rather than being cut."""

    DEFAULT_CSS = """
    KeyRows { height: auto; }
    """

    def __init__(self, rows: list[KeyHelp]) -> None:
        super().__init__()
        self.rows = rows

    def render(self) -> RenderableType:
        wide = self.app.size.width >= WIDE
        table = Table(box=None, expand=True, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0),
                      header_style="bold")
        table.add_column("Keys", no_wrap=True, style="bold")
        table.add_column("Action", no_wrap=True)
        if wide:
            table.add_column("Id", no_wrap=True, style="dim")
        table.add_column("What it does", ratio=1, overflow="fold")
        where = None
        for row in self.rows:
            if row.where != where:
                where = row.where
                table.add_row(Text(where, style="bold underline"), *([""] * (3 if wide else 2)))
            # Text, never markup: descriptions and remapped keys ("[") are shown as they are.
            if wide:
                table.add_row(Text(row.keys), Text(row.action), Text(row.binding_id), Text(row.detail))
            else:
                action = Text.assemble(row.action, "\n", (row.binding_id, "dim"))
                table.add_row(Text(row.keys), action, Text(row.detail))
        return table

    def on_resize(self) -> None:
        self.refresh(layout=True)


class HelpTable(VerticalScroll):
    """The scrolling list of keys (j/k, arrows and page keys)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", id="list.down", show=False, tooltip="Scroll down"),
        Binding("k", "scroll_up", "Up", id="list.up", show=False, tooltip="Scroll up"),
    ]


class HelpDialog(ModalScreen[None]):
    """A modal list of the active bindings; `esc`, `q` or `?` closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss_help", "Close", id="dialog.close", tooltip="Close the help"),
    ]

    DEFAULT_CSS = """
    HelpDialog { align: center middle; }
    HelpDialog > Vertical {
        width: 95%;
        max-width: 140;
        height: auto;
        max-height: 95%;
        border: round $primary;
        border-title-color: $text;
        background: $surface;
        padding: 0 1;
    }
    HelpDialog HelpTable { height: auto; max-height: 100%; }
    HelpDialog .hint { color: $text-muted; height: auto; dock: bottom; }
    """

    def __init__(self, title: str, rows: list[KeyHelp]) -> None:
        super().__init__()
        self._title = title
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"Keys: {self._title}"
            box.border_subtitle = "j/k scroll · esc closes"
            yield Label('Remap in config.toml [keys] by id, e.g. "view.metric" = "M"', classes="hint", markup=False)
            with HelpTable():
                yield KeyRows(self.rows)

    def on_mount(self) -> None:
        self.query_one(HelpTable).focus()

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
