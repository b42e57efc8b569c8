"""Command palette (`:` or ctrl+p): every action of the app and of the current screen, searchable."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape
from textual.screen import Screen


@dataclass(frozen=True)
class PaletteCommand:
    """One palette entry: what the user reads, a line of help, and what runs."""

    name: str
    help: str
    run: Callable[[], object]


class HasPaletteCommands(Protocol):
    def palette_commands(self, screen: Screen[object]) -> Iterable[PaletteCommand]: ...


class ViewCommands(Provider):
    """Lists `app.palette_commands(screen)`: views, theme, help, and the screen's own actions."""

    def _commands(self) -> list[PaletteCommand]:
        app: HasPaletteCommands = self.app  # type: ignore[assignment]
        return list(app.palette_commands(self.screen))

    # Names and help carry data (team names, hierarchy levels, currency codes): the palette reads strings
    # as markup, so they go in escaped, or as Content.

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(Content(command.name), command.run, text=command.name, help=escape(command.help))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.name)
            if score > 0:
                yield Hit(score, matcher.highlight(escape(command.name)), command.run, text=command.name,
                          help=escape(command.help))
