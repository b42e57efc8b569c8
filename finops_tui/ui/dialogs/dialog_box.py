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
