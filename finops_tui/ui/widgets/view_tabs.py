"""The row of views with their keys (1 Overview  2 Allocation …), the current one highlighted."""

from __future__ import annotations

import importlib.util

from textual.content import Content
from textual.widgets import Static


def screen_module_exists(screen_path: str) -> bool:
    """Whether the view's module is installed (cheap: finds it without importing it)."""
    module_name = screen_path.partition(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


class ViewTabs(Static):
    """Key hints for switching views; views not built yet are dimmed."""

    DEFAULT_CSS = """
    ViewTabs { width: auto; height: 1; }
    """

    def __init__(self, current: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.current = current

    def on_mount(self) -> None:
        from finops_tui.ui.app import VIEWS

        parts: list[Content] = []
        for view in VIEWS:
            if view.mode == self.current:
                parts.append(Content.styled(f" {view.key} {view.title} ", "bold $text on $primary"))
            elif screen_module_exists(view.screen):
                parts.append(Content.assemble(Content.styled(f" {view.key}", "bold $accent"), f" {view.title} "))
            else:
                parts.append(Content.styled(f" {view.key} {view.title} ", "$text-disabled"))
        self.update(Content.assemble(*parts))
