"""Help: the keys active on the current screen, with what each does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label


@dataclass(frozen=True)
class KeyHelp:
    """One row of the help table."""

    where: str
    keys: str
    action: str
    detail: str
    binding_id: str = ""


class HelpDialog(ModalScreen[None]):
    """A modal list of the active bindings; `esc`, `q` or `?` closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss_help", "Close", id="help.close", tooltip="Close the help"),
    ]

    DEFAULT_CSS = """
    HelpDialog { align: center middle; }
    HelpDialog > Vertical {
        width: 95%;
        max-width: 130;
        height: auto;
        max-height: 90%;
        border: round $primary;
        border-title-color: $text;
        background: $surface;
        padding: 0 1;
    }
    HelpDialog DataTable { height: auto; max-height: 40; }
    HelpDialog .hint { color: $text-muted; height: 1; }
    """

    def __init__(self, title: str, rows: list[KeyHelp]) -> None:
        super().__init__()
        self._title = title
        self._rows = rows

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"Keys: {self._title}"
            table: DataTable[str | Text] = DataTable(cursor_type="none", zebra_stripes=False)
            # The id (what config.toml remaps) comes before the long description, which may be clipped.
            table.add_columns("Keys", "Action", "Id", "What it does")
            where = None
            for row in self._rows:
                if row.where != where:
                    where = row.where
                    table.add_row(Text(where, style="bold underline"), "", "", "")
                table.add_row(Text(row.keys, style="bold"), row.action, Text(row.binding_id, style="dim"), row.detail)
            yield table
            yield Label('Remap a key in config.toml under [keys] by its id, e.g. "overview.metric" = "M". '
                        "esc closes.", classes="hint", markup=False)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
