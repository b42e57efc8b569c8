"""An Input that completes filesystem paths as the user types (tab or right arrow accepts)."""

from __future__ import annotations

import os
from pathlib import Path

from textual.suggester import Suggester
from textual.widgets import Input


class PathSuggester(Suggester):
    """Suggests the first directory entry that extends what was typed; directories end with `/`."""

    def __init__(self) -> None:
        # Directory listings change while the app runs (a file may be downloaded meanwhile): no cache.
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        expanded = os.path.expanduser(value)
        folder, prefix = os.path.split(expanded)
        try:
            entries = sorted(os.scandir(folder or "."), key=lambda e: e.name)
        except OSError:
            return None
        show_hidden = prefix.startswith(".")
        for entry in entries:
            if not entry.name.startswith(prefix) or (entry.name.startswith(".") and not show_hidden):
                continue
            if entry.name == prefix and not entry.is_dir():
                continue  # already complete
            completed = value[: len(value) - len(prefix)] + entry.name
            return completed + ("/" if entry.is_dir() else "")
        return None


class PathInput(Input):
    """A path field with completion from the filesystem."""

    def __init__(self, *, placeholder: str = "path to a cost export file or folder", id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, suggester=PathSuggester(), id=id)

    @property
    def path(self) -> Path:
        return Path(os.path.expanduser(self.value.strip()))
