"""Tagging dialogs: set a tag on resources, make a rule from a selection, list rules and what they allocate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, DataTable, Input, Label, OptionList
from textual.widgets.option_list import Option

from finops_tui.allocation.rules import Rule, RuleAllocation
from finops_tui.allocation.tag_limits import key_problem, value_problem
from finops_tui.basis.money import money
from finops_tui.report.tags import TagKeyCoverage
from finops_tui.ui.dialogs.dialog_box import DialogBox, dialog_css
from finops_tui.ui.dialogs.period import VimOptionList


def tag_dialog_css(name: str) -> str:
    """The CSS of the tagging dialogs: a field dialog 72 cells wide, with hints and an error line."""
    return dialog_css(name, 72) + f"""
    {name} Label.field {{ margin-top: 1; color: $text-muted; }}
    {name} .hint {{ color: $text-muted; height: auto; width: 100%; }}
    {name} #error {{ color: $text-error; height: auto; }}
"""


def tag_input_problem(key: str, value: str) -> str | None:
    """Why Azure would refuse the tag being typed (checked on each keystroke), or None; empty fields are not
    a problem yet, only not ready."""
    problem = key_problem(key.strip().lower()) if key.strip() else None
    if problem is None and value.strip():
        problem = value_problem(value.strip())
    return f"Azure would refuse this tag: {problem}." if problem else None


@dataclass(frozen=True)
class TagChoice:
    key: str
    value: str


class TagDialog(ModalScreen[TagChoice | None]):
    """Key and value for the marked resources; the value autocompletes from the key's existing values (→ accepts)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Tag nothing"),
    ]
    DEFAULT_CSS = tag_dialog_css("TagDialog")

    def __init__(self, *, key: str, resources: int, cost: str, values: Sequence[str], value: str = "") -> None:
        super().__init__()
        self._key = key
        self._resources = resources
        self._cost = cost
        self._values = list(values)
        self._value = value

    def compose(self) -> ComposeResult:
        noun = "resource" if self._resources == 1 else "resources"
        with DialogBox() as box:
            box.border_title = f"Tag {self._resources:,} {noun} ({self._cost})"
            yield Label("Key", classes="field")
            yield Input(self._key, id="key")
            yield Label("Value", classes="field")
            yield Input(self._value, placeholder="a value, e.g. payments", id="value",
                        suggester=SuggestFromList(self._values, case_sensitive=False))
            known = ", ".join(self._values[:8]) + (", …" if len(self._values) > 8 else "")
            yield Label(f"Known values: {known}" if known else "No value yet for this key.", classes="hint",
                        markup=False)
            yield Label("", id="error", markup=False)
            yield Label("enter applies to every marked resource, over all cached history · → accepts the suggestion "
                        "· esc cancels · u undoes afterwards", classes="hint")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Apply", variant="primary", id="apply")

    def on_mount(self) -> None:
        self.query_one("#value", Input).focus()
        self._check()

    @on(Input.Changed)
    def _check(self) -> None:
        """Says at once why Azure would refuse the tag, and keeps Apply disabled until it would not."""
        key = self.query_one("#key", Input).value
        value = self.query_one("#value", Input).value
        problem = tag_input_problem(key, value)
        self.query_one("#error", Label).update(problem or "")
        self.query_one("#apply", Button).disabled = problem is not None or not (key.strip() and value.strip())

    @on(Input.Submitted, "#key")
    def _next_field(self) -> None:
        self.query_one("#value", Input).focus()

    @on(Input.Submitted, "#value")
    @on(Button.Pressed, "#apply")
    def _apply(self) -> None:
        key = self.query_one("#key", Input).value.strip()
        value = self.query_one("#value", Input).value.strip()
        problem = tag_input_problem(key, value) or (None if key and value else "Give a key and a value.")
        if problem:
            self.query_one("#error", Label).update(problem)
            return
        self.dismiss(TagChoice(key.lower(), value))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class RuleDialog(ModalScreen[Rule | None]):
    """A rule from a selection: resource groups matching a glob get key=value wherever nothing else sets it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Make no rule"),
    ]
    DEFAULT_CSS = tag_dialog_css("RuleDialog")

    def __init__(self, *, pattern: str, key: str, value: str, values: Sequence[str], examples: Sequence[str],
                 examples_from: str = "the marked rows") -> None:
        super().__init__()
        self._pattern = pattern
        self._key = key
        self._value = value
        self._values = list(values)
        self._examples = list(examples)
        self._examples_from = examples_from  # where the groups came from: the marks, or the cursor's row

    def compose(self) -> ComposeResult:
        with DialogBox() as box:
            box.border_title = "New allocation rule"
            yield Label("Resource groups matching (glob: * and ?, any case)", classes="field")
            yield Input(self._pattern, id="pattern")
            examples = ", ".join(self._examples[:4]) + (", …" if len(self._examples) > 4 else "")
            if examples:
                yield Label(f"From {self._examples_from}: {examples}", classes="hint", markup=False)
            yield Label("Subscription (optional: id or name glob)", classes="field")
            yield Input("", id="subscription")
            yield Label("Set key", classes="field")
            yield Input(self._key, id="key")
            yield Label("to value", classes="field")
            yield Input(self._value, id="value", suggester=SuggestFromList(self._values, case_sensitive=False))
            yield Label("Name (optional)", classes="field")
            yield Input("", id="name")
            yield Label("", id="error", markup=False)
            yield Label("Saved to rules.toml; applies to every matching resource without a provider tag or manual "
                        "edit for the key, over all cached history.", classes="hint")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Save rule", variant="primary", id="save")

    def on_mount(self) -> None:
        self.query_one("#value" if self._pattern and not self._value else "#pattern", Input).focus()
        self._check()

    @on(Input.Changed, "#key, #value")
    def _check(self) -> None:
        """The tag the rule sets is checked as it is typed: Save stays disabled while Azure would refuse it."""
        problem = tag_input_problem(self.query_one("#key", Input).value, self.query_one("#value", Input).value)
        self.query_one("#error", Label).update(problem or "")
        self.query_one("#save", Button).disabled = problem is not None

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        fields = {name: self.query_one(f"#{name}", Input).value.strip()
                  for name in ("pattern", "subscription", "key", "value", "name")}
        problem = tag_input_problem(fields["key"], fields["value"])
        if problem:
            self.query_one("#error", Label).update(problem)
            return
        if not fields["pattern"] and not fields["subscription"]:
            self.query_one("#error", Label).update("Give a resource group pattern or a subscription.")
            return
        if not fields["key"] or not fields["value"]:
            self.query_one("#error", Label).update("Give the key and the value to set.")
            return
        self.dismiss(Rule({fields["key"].lower(): fields["value"]}, name=fields["name"] or None,
                          resource_group=fields["pattern"] or None, subscription=fields["subscription"] or None))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class RulesDialog(ModalScreen[None]):
    """Every rule in file order with the resources it tags and the spend it allocates in the period."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", id="dialog.close", tooltip="Close the rules"),
    ]
    DEFAULT_CSS = tag_dialog_css("RulesDialog") + """
    RulesDialog > DialogBox { width: 110; }
    RulesDialog DataTable { height: auto; max-height: 24; }
    """

    def __init__(self, allocations: Sequence[RuleAllocation], *, period: str, path: str) -> None:
        super().__init__()
        self._allocations = list(allocations)
        self._period = period
        self._path = path

    def compose(self) -> ComposeResult:
        with DialogBox() as box:
            box.border_title = f"Allocation rules: spend allocated, {self._period}"
            if not self._allocations:
                yield Label("No rules yet: mark rows in the queue and press r to make one.", classes="hint")
            else:
                currency = self._allocations[0].currency
                table: DataTable[str | Text] = DataTable(cursor_type="row", zebra_stripes=True)
                table.add_columns("#", "Rule", "Resources", f"Allocates ({currency})", "By key")
                for allocation in self._allocations:
                    by_key = ", ".join(f"{k} {money(v)}" for k, v in allocation.cost_by_key.items())
                    table.add_row(str(allocation.rule.index), Text(allocation.rule.label),  # Text: never markup
                                  Text(f"{allocation.resources:,}", justify="right"),
                                  Text(money(allocation.cost), justify="right",
                                       style="" if allocation.resources else "dim"),
                                  Text(by_key) if by_key else Text("allocates nothing", style="dim"))
                yield table
            yield Label(f"Rules live in {self._path}; earlier rules win. esc closes.", classes="hint", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)


class TagKeyDialog(ModalScreen[str | None]):
    """Choose the tag key whose unallocated queue the tagging screen shows."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Keep the current key"),
    ]
    DEFAULT_CSS = """
    TagKeyDialog { align: center middle; }
    TagKeyDialog > VimOptionList {
        width: 60;
        max-width: 95%;
        height: auto;
        max-height: 80%;
        border: round $primary;
        background: $surface;
    }
    """

    def __init__(self, current: str, keys: Sequence[TagKeyCoverage], configured: Sequence[str]) -> None:
        super().__init__()
        self._current = current
        coverage = {k.key: k for k in keys}
        names = [*configured, *(k.key for k in keys if k.key not in configured)]
        self._options: list[tuple[str, str]] = []
        for name in dict.fromkeys(n.lower() for n in names):
            known = coverage.get(name)
            share = known.cost_share if known is not None else None
            text = f"{name}  ({share * 100:.0f}% of cost tagged)" if share is not None else name
            self._options.append((name, text))

    def compose(self) -> ComposeResult:
        options = VimOptionList(*(Option(Content(text), id=name) for name, text in self._options))  # keys are data
        options.border_title = "Tag key"
        yield options

    def on_mount(self) -> None:
        names = [name for name, _ in self._options]
        if self._current in names:
            self.query_one(VimOptionList).highlighted = names.index(self._current)

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
