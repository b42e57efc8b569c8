"""The bordered box of a dialog: on a short terminal its fields scroll, and its buttons stay in view."""

from __future__ import annotations

from typing import Any

from textual.containers import VerticalScroll
from textual.geometry import Offset, Region


class DialogBox(VerticalScroll, can_focus=False):
    """A dialog's box. Its buttons row is docked at the bottom (`dock: bottom` in the dialog's CSS), so at
    80x24 the fields scroll while Send/Apply/Cancel stay on screen; the box never takes the focus itself
    (Tab goes from field to field, scrolling each into view)."""

    def scroll_to_region(self, region: Region, *args: Any, **kwargs: Any) -> Offset:
        # Textual centres a field focused before the first layout; in a dialog that hides the title and
        # labels above the first field. The least scroll that shows the field keeps them in view.
        kwargs["center"] = False
        return super().scroll_to_region(region, *args, **kwargs)


def dialog_css(name: str, width: int, *, border: str = "$primary", title: str | None = "$text") -> str:
    """The CSS every dialog of fields shares: screen `name` centres its DialogBox (`width` cells, a `border`
    colour, its title in `title` colour or the border's when None), whose buttons row (a Horizontal) is docked
    at its bottom, buttons on the right."""
    title_color = "" if title is None else f"\n        border-title-color: {title};"
    return f"""
    {name} {{ align: center middle; }}
    {name} > DialogBox {{
        width: {width};
        max-width: 95%;
        height: auto;
        max-height: 95%;
        border: round {border};{title_color}
        background: $surface;
        padding: 0 1;
    }}
    {name} Horizontal {{ height: auto; align-horizontal: right; margin-top: 1; dock: bottom; }}
    {name} Button {{ margin-left: 1; }}
"""
