"""Dialogs of the recommendations screen: a note on a finding, snooze for N days, the minimum impact shown."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import ClassVar, Generic, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from finops_tui.ui.dialogs.dialog_box import DialogBox, dialog_css

T = TypeVar("T")

MAX_SNOOZE_DAYS = 366
DEFAULT_SNOOZE_DAYS = 7


class RecFieldDialog(ModalScreen[T | None], Generic[T]):
    """One labelled input, an error line, Cancel and OK; `esc` cancels (None), `enter` submits."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Close without changing anything"),
    ]

    DEFAULT_CSS = dialog_css("RecFieldDialog", 64) + """
    RecFieldDialog .subject { color: $text-muted; margin-top: 1; width: 100%; }
    RecFieldDialog Label.field { margin-top: 1; }
    RecFieldDialog #error { color: $text-error; height: auto; width: 100%; }
    """

    TITLE_TEXT: ClassVar[str] = ""
    FIELD_LABEL: ClassVar[str] = ""
    OK_LABEL: ClassVar[str] = "OK"

    def __init__(self, subject: str, value: str, placeholder: str = "") -> None:
        super().__init__()
        self._subject = subject
        self._value = value
        self._placeholder = placeholder

    def compose(self) -> ComposeResult:
        with DialogBox() as box:
            box.border_title = self.TITLE_TEXT
            if self._subject:
                yield Label(self._subject, classes="subject", markup=False)
            yield Label(self.FIELD_LABEL, classes="field", markup=False)
            yield Input(self._value, placeholder=self._placeholder, id="value")
            yield Label("", id="error")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button(self.OK_LABEL, variant="primary", id="ok")

    def parse(self, text: str) -> T:
        """The answer for `text`; raise ValueError with a message for the user when it is not valid."""
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#value")
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        try:
            answer = self.parse(self.query_one("#value", Input).value)
        except ValueError as exc:
            self.query_one("#error", Label).update(str(exc))
            return
        self.dismiss(answer)


class NoteDialog(RecFieldDialog[str]):
    """A note on a finding (who looked, what was decided); returns the text, "" removes the note, None cancels."""

    TITLE_TEXT = "Note"
    FIELD_LABEL = "Note (empty removes it)"
    OK_LABEL = "Save"

    def __init__(self, subject: str, current: str | None) -> None:
        super().__init__(subject, current or "", "e.g. owner asked, planned until June")

    def parse(self, text: str) -> str:
        return text.strip()


class SnoozeDialog(RecFieldDialog[int]):
    """How many days to hide a finding for; returns the days, or None to cancel."""

    TITLE_TEXT = "Snooze"
    FIELD_LABEL = "Hide it for how many days?"
    OK_LABEL = "Snooze"

    def __init__(self, subject: str, days: int = DEFAULT_SNOOZE_DAYS) -> None:
        super().__init__(subject, str(days), str(DEFAULT_SNOOZE_DAYS))

    def parse(self, text: str) -> int:
        try:
            days = int(text.strip())
        except ValueError:
            raise ValueError("a whole number of days, e.g. 7") from None
        if not 1 <= days <= MAX_SNOOZE_DAYS:
            raise ValueError(f"between 1 and {MAX_SNOOZE_DAYS} days")
        return days


class MinImpactDialog(RecFieldDialog[Decimal]):
    """The smallest monthly impact to list; returns it (0: no minimum), or None to cancel."""

    TITLE_TEXT = "Minimum impact"
    FIELD_LABEL = "Hide findings worth less than this per month (empty or 0: show all)"

    def __init__(self, current: Decimal | None) -> None:
        super().__init__("", "" if not current else format(current.normalize(), "f"), "e.g. 500")

    def parse(self, text: str) -> Decimal:
        cleaned = text.strip().replace(",", "").replace("_", "")
        if not cleaned:
            return Decimal(0)
        multiplier = Decimal(1)
        if cleaned[-1] in "kK":
            cleaned, multiplier = cleaned[:-1], Decimal(1000)
        try:
            amount = Decimal(cleaned) * multiplier
        except InvalidOperation:
            raise ValueError("an amount, e.g. 500 or 2k") from None
        if not amount.is_finite() or amount < 0:
            raise ValueError("an amount of zero or more")
        return amount
