"""The footer fitted to the terminal: whole keys only, with `?` Help and `q` Quit always in view at the right."""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalGroup
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # not exported; the footer's own key widget, kept as is

PINNED_IDS = ("app.help", "app.quit")  # the keys that explain the others and leave: never cut
COMPACT_BELOW = 100  # columns under which keys drop their padding


class KeyFooter(Footer):
    """Textual's footer, except that a key that does not fit whole is left out (`?` lists every key),
    rather than cut mid-word with Help and Quit pushed off the edge."""

    DEFAULT_CSS = """
    KeyFooter #pinned { dock: right; width: auto; height: 1; }
    """

    def __init__(self) -> None:
        super().__init__(show_command_palette=False)
        self._width = 0
        self._composed: tuple[object, ...] | None = None  # what the keys on show were made from

    def _shown_bindings(self) -> dict[str, tuple[Binding, bool, str]]:
        shown: dict[str, tuple[Binding, bool, str]] = {}  # one key per action, as Textual's footer shows them
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show:
                shown.setdefault(binding.action, (binding, enabled, tooltip))
        return shown

    def _signature(self, shown: dict[str, tuple[Binding, bool, str]]) -> tuple[object, ...]:
        width = self.size.width or self.app.size.width
        keys = tuple((binding.key, binding.description, binding.id, enabled, tooltip)
                     for binding, enabled, tooltip in shown.values())
        return (width, self.compact, keys)

    def bindings_changed(self, screen: Screen[object]) -> None:
        # Textual's footer rebuilds its keys on every focus change and every refresh_bindings; mounting those
        # widgets (CSS, layout) was most of a view switch. Rebuild only when the keys on show change.
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            if screen is screen.app.screen:
                self.call_after_refresh(self._recompose_if_changed)
            else:  # a screen made ahead, hidden: it is not refreshed until shown, and its keys are known now
                self.call_later(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if not self.is_attached or self._signature(self._shown_bindings()) == self._composed:
            return
        await self.recompose()

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        width = self.size.width or self.app.size.width
        shown = self._shown_bindings()
        self._composed = self._signature(shown)
        pinned = [entry for entry in shown.values() if entry[0].id in PINNED_IDS]
        room = width - sum(self.key_width(binding) for binding, _, _ in pinned)
        for binding, enabled, tooltip in shown.values():
            if binding.id in PINNED_IDS:
                continue
            needed = self.key_width(binding)
            if needed > room:
                break  # the rest stay in `?`: a footer in the same order on every width reads better
            room -= needed
            yield self._key(binding, enabled, tooltip)
        with HorizontalGroup(id="pinned"):
            for binding, enabled, tooltip in pinned:
                yield self._key(binding, enabled, tooltip)

    def _key(self, binding: Binding, enabled: bool, tooltip: str) -> FooterKey:
        # Born with the footer's compactness (its class and its reactive), not bound to it: a bound key starts
        # compact, then follows the footer, restyling itself twice on mount (most of a first view switch's
        # footer). A change of compactness recomposes the footer anyway (on_resize).
        key = FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                        disabled=not enabled, tooltip=tooltip or binding.description,
                        classes="-compact" if self.compact else "")
        key.set_reactive(FooterKey.compact, self.compact)
        return key

    def key_width(self, binding: Binding) -> int:
        """Cells one key takes: its key, a space, its description and the gap after it (see FooterKey's CSS)."""
        text = cell_len(self.app.get_key_display(binding)) + cell_len(binding.description)
        return text + 2 if self.compact else text + 3

    def on_resize(self) -> None:
        width = self.size.width
        if width == self._width:
            return
        self._width = width
        self.compact = width < COMPACT_BELOW
        if self._bindings_ready:  # only when the keys that fit changed: the first size is usually the one composed for
            self.call_after_refresh(self._recompose_if_changed)
