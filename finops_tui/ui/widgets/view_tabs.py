"""The row of views with their keys (1 Overview  2 Allocation …), the current one highlighted."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from finops_tui.ui.views import VIEWS

# How much of each title the row shows, longest first: the current view's title is always whole.
FORMS = ("full", "short", "keys")


class ViewTabs(Static):
    """Key hints for switching views. On narrow terminals the other views get short titles, then only their
    keys (`set_form`)."""

    DEFAULT_CSS = """
    ViewTabs { width: auto; height: 1; }
    """

    def __init__(self, current: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.current = current
        self.form = "full"
        self._forms: dict[str, Content] = {}

    def on_mount(self) -> None:
        self._forms = {form: self._render_form(form) for form in FORMS}
        self.update(self._forms[self.form])

    def _render_form(self, form: str) -> Content:
        parts: list[Content] = []
        for view in VIEWS:
            title = view.title if form == "full" or view.mode == self.current else \
                (view.short or view.title) if form == "short" else ""
            label = f" {title}" if title else ""
            if view.mode == self.current:
                parts.append(Content.styled(f" {view.key}{label} ", "bold $text on $primary"))
            else:
                parts.append(Content.assemble(Content.styled(f" {view.key}", "bold $accent"), f"{label} "))
        return Content.assemble(*parts)

    def set_current(self, current: str) -> None:
        """Highlight another view (a screen re-used over another view)."""
        if current != self.current:
            self.current = current
            self._forms = {form: self._render_form(form) for form in FORMS}
            self.update(self._forms[self.form])

    def width_of(self, form: str) -> int:
        """Cells the row takes in `form`."""
        content = self._forms.get(form) or self._render_form(form)
        return content.cell_length

    def set_form(self, form: str) -> None:
        if form != self.form:
            self.form = form
            self.update(self._forms.get(form) or self._render_form(form))
