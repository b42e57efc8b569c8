"""Period dialogs: a picker for the usual periods and a custom START..END range (END exclusive)."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option

from finops_tui import clock
from finops_tui.basis.periods import parse_period
from finops_tui.errors import UserError
from finops_tui.ui.dialogs.dialog_box import DialogBox, dialog_css
from finops_tui.ui.formatting import PERIOD_CHOICES

CUSTOM = "custom"


class VimOptionList(OptionList):
    """An OptionList that also moves with j/k."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", id="list.down", show=False, tooltip="Next choice"),
        Binding("k", "cursor_up", "Up", id="list.up", show=False, tooltip="Previous choice"),
    ]


class PeriodDialog(ModalScreen[str | None]):
    """Choose a period; returns its spec (`mtd`, `30d`, …), `custom` for a range, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Keep the current period"),
    ]

    DEFAULT_CSS = """
    PeriodDialog { align: center middle; }
    PeriodDialog > VimOptionList {
        width: 40;
        height: auto;
        border: round $primary;
        background: $surface;
    }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self._current = current

    def compose(self) -> ComposeResult:
        options = [Option(label, id=spec) for spec, label in PERIOD_CHOICES]
        options.append(Option("Custom range…", id=CUSTOM))
        option_list = VimOptionList(*options)
        option_list.border_title = "Period"
        yield option_list

    def on_mount(self) -> None:
        option_list = self.query_one(VimOptionList)
        specs = [spec for spec, _ in PERIOD_CHOICES]
        option_list.highlighted = specs.index(self._current) if self._current in specs else len(specs)

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class CustomPeriodDialog(ModalScreen[str | None]):
    """Two dates: START and END, END exclusive (as in FOCUS); returns `START..END` or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Keep the current period"),
    ]

    DEFAULT_CSS = dialog_css("CustomPeriodDialog", 56, title=None) + """
    CustomPeriodDialog Label.field { margin-top: 1; }
    CustomPeriodDialog #error { color: $text-error; height: auto; width: 100%; }
    """

    def __init__(self, start: dt.date, end: dt.date) -> None:
        super().__init__()
        self._start = start
        self._end = end

    def compose(self) -> ComposeResult:
        with DialogBox() as box:
            box.border_title = "Custom period"
            yield Label("Start (first day, YYYY-MM-DD)", classes="field")
            yield Input(self._start.isoformat(), placeholder="2026-09-01", id="start")
            yield Label("End (exclusive: the day after the last, YYYY-MM-DD)", classes="field")
            yield Input(self._end.isoformat(), placeholder="2026-10-01", id="end")
            yield Label("", id="error", markup=False)
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Apply", variant="primary", id="apply")

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#start")
    def _next_field(self) -> None:
        self.query_one("#end", Input).focus()

    @on(Input.Submitted, "#end")
    @on(Button.Pressed, "#apply")
    def _apply(self) -> None:
        error = self.query_one("#error", Label)
        dates: dict[str, dt.date] = {}
        for field, name, example in (("start", "Start", "2026-09-01"), ("end", "End", "2026-10-01")):
            text = self.query_one(f"#{field}", Input).value.strip()
            try:
                dates[field] = dt.date.fromisoformat(text)
            except ValueError:
                # This dialog's words, not the command line's START..END: the user sees two fields here.
                shown = f"“{text}” is not a date" if text else "is empty"
                error.update(f"{name} {shown}: type it as YYYY-MM-DD, e.g. {example}.")
                self.query_one(f"#{field}", Input).focus()
                return
        if dates["end"] <= dates["start"]:
            error.update("End must be after Start: End is the day after the last day shown.")
            self.query_one("#end", Input).focus()
            return
        try:
            period = parse_period(f"{dates['start']}..{dates['end']}", today=clock.today())
        except UserError as exc:
            error.update(str(exc).split(": ", 1)[-1])
            return
        self.dismiss(period.spec)
