"""Hierarchy dialog: pick the tree's levels in order from any dimension or tag key, optionally save them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from finops_tui.basis.dimensions import PLAIN_DIMENSIONS, dimension
from finops_tui.report.tags import TagKeyCoverage
from finops_tui.ui.dialogs.dialog_box import DialogBox, dialog_css
from finops_tui.ui.dialogs.period import VimOptionList

# The dimensions people group cost by, in the order the list offers them (the rest follow).
PREFERRED = ("subscription", "resource-group", "resource", "service", "service-category", "region",
             "resource-type", "charge-category", "pricing-category", "commitment")


@dataclass(frozen=True)
class HierarchyChoice:
    """The levels in order (dimension names such as `tag:team`), and a name to save them under, if any."""

    levels: tuple[str, ...]
    save_as: str | None


def level_label(name: str) -> str:
    return f"tag {name[4:]}" if name.startswith("tag:") else dimension(name).title.lower()


class HierarchyDialog(ModalScreen[HierarchyChoice | None]):
    """`enter` adds the highlighted dimension as the next level; `backspace` removes the last one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Keep the current hierarchy"),
        Binding("backspace", "remove_last", "Remove last", id="hierarchy.remove_last",
                tooltip="Remove the last level"),
        Binding("ctrl+u", "clear", "Clear", id="hierarchy.clear", tooltip="Remove every level"),
        Binding("ctrl+s", "apply", "Apply", id="hierarchy.apply", tooltip="Show the tree with these levels"),
    ]

    DEFAULT_CSS = dialog_css("HierarchyDialog", 72) + """
    HierarchyDialog #levels { height: auto; margin-bottom: 1; }
    HierarchyDialog VimOptionList { height: auto; max-height: 10; }
    HierarchyDialog Label.field { margin-top: 1; color: $text-muted; }
    HierarchyDialog #error { color: $text-error; height: auto; }
    HierarchyDialog .hint { color: $text-muted; height: auto; width: 100%; }
    """

    def __init__(self, levels: Sequence[str], tag_keys: Sequence[TagKeyCoverage], *, saved: Sequence[str] = ()) -> None:
        super().__init__()
        self.levels: list[str] = [dimension(level).name for level in levels]
        self._tag_keys = list(tag_keys)
        self._saved = list(saved)
        plain = [*PREFERRED, *(d for d in PLAIN_DIMENSIONS if d not in PREFERRED)]
        self._choices: list[tuple[str, str]] = [(f"tag:{k.key}", self._tag_text(k)) for k in self._tag_keys]
        self._choices += [(name, level_label(name)) for name in plain]

    @staticmethod
    def _tag_text(coverage: TagKeyCoverage) -> str:
        share = coverage.cost_share if coverage.cost_share is not None else coverage.resource_share
        what = "of cost" if coverage.cost_share is not None else "of resources"
        return f"tag {coverage.key}  ({share * 100:.0f}% {what} tagged)" if share is not None else f"tag {coverage.key}"

    def compose(self) -> ComposeResult:
        with DialogBox() as box:
            box.border_title = "Hierarchy: levels from top to bottom"
            yield Static("", id="levels")
            yield Label("Add a level (enter)", classes="field")
            yield VimOptionList(id="dimensions")
            yield Label("Save as (a name; empty: use without saving)", classes="field")
            yield Input(placeholder="e.g. by-service", id="name")
            yield Label("", id="error")
            yield Label("enter adds · backspace removes the last level · ctrl+u clears · ctrl+s applies · esc cancels",
                        classes="hint")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Apply", variant="primary", id="apply")

    def on_mount(self) -> None:
        self._refresh()
        self.query_one(VimOptionList).focus()

    def _refresh(self) -> None:
        if self.levels:
            text = Content.styled(" › ", "$text-muted").join(
                Content.styled(level_label(level), "bold") for level in self.levels)
        else:
            text = Content.styled("no levels yet: pick the top level below", "$text-muted")
        self.query_one("#levels", Static).update(text)
        options = self.query_one(VimOptionList)
        highlighted = options.highlighted
        options.clear_options()
        options.add_options([
            Option(Content(f"{text}  ✓ level {self.levels.index(name) + 1}" if name in self.levels else text), id=name,
                   disabled=name in self.levels)
            for name, text in self._choices
        ])
        # The highlight stays where it was, on the next choice still free: the one just added is disabled
        # now, and a disabled option shows no highlight at all.
        free = [index for index, (name, _) in enumerate(self._choices) if name not in self.levels]
        if free:
            start = highlighted or 0
            options.highlighted = next((index for index in free if index >= start), free[-1])
        self.query_one("#error", Label).update("")

    @on(OptionList.OptionSelected, "#dimensions")
    def _add(self, event: OptionList.OptionSelected) -> None:
        name = event.option.id
        if name and name not in self.levels:
            self.levels.append(name)
            self._refresh()

    def action_remove_last(self) -> None:
        if self.levels:
            self.levels.pop()
            self._refresh()

    def action_clear(self) -> None:
        self.levels.clear()
        self._refresh()

    @on(Input.Submitted, "#name")
    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        if not self.levels:
            self.query_one("#error", Label).update("Add at least one level.")
            return
        name = self.query_one("#name", Input).value.strip() or None
        self.dismiss(HierarchyChoice(tuple(self.levels), name))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
