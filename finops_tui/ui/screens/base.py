"""Base class of every view screen: typed app access, palette commands, worker errors sent to the app."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import ClassVar, cast

from textual import events, on
from textual._context import NoActiveAppError
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from finops_tui import paths
from finops_tui.ui.commands import PaletteCommand
from finops_tui.ui.views import Explorer


class FinopsScreen(Screen[None]):
    """Subclass this for a view: `self.finops` is the app (cache, config, shared view state)."""

    VIEW_TITLE: ClassVar[str] = ""
    _tags_version_seen: int | None = None  # app.tags_version when this screen last showed its data

    def __init__(self, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        # A new screen's styles are applied as its widgets mount, and our screens bring no screen-level CSS, so
        # the app's stylesheet is as current for it as for the others. Textual would otherwise re-parse every
        # CSS source and restyle the whole app twice on a view's first visit (about 90 ms each at 160x48).
        with suppress(NoActiveAppError):
            self._css_update_count = self.app._css_update_count
            self._take_breakpoint_classes()
        self._styled_for = self._style_inputs()

    def _take_breakpoint_classes(self) -> None:
        # Born with the classes of the terminal's size: Textual would otherwise add them on the first resize,
        # after the widgets mounted, and restyle the whole screen for it.
        app = self.app
        width, height = app.size
        horizontal = (app.HORIZONTAL_BREAKPOINTS if self.HORIZONTAL_BREAKPOINTS is None
                      else self.HORIZONTAL_BREAKPOINTS) or []
        vertical = (app.VERTICAL_BREAKPOINTS if self.VERTICAL_BREAKPOINTS is None else self.VERTICAL_BREAKPOINTS) or []
        classes = self._get_breakpoint_classes(width, horizontal) | self._get_breakpoint_classes(height, vertical)
        if classes:
            self.add_class(*classes, update=False)

    def _style_inputs(self) -> tuple[object, ...]:
        """What the styles of a hidden screen depend on outside it: the stylesheet and the app's classes."""
        try:
            app = self.app
        except NoActiveAppError:
            return ()
        return (app._css_update_count, app.classes, app.pseudo_classes)

    @on(events.ScreenSuspend)
    def _remember_style_inputs(self) -> None:
        self._styled_for = self._style_inputs()

    @on(events.ScreenResume)
    def _keep_styles_if_current(self, event: events.ScreenResume) -> None:
        # Textual restyles every widget of a screen when it is shown again (half of a view switch). Widgets
        # restyle themselves when their own classes or focus change, hidden or not; a screen only needs the full
        # pass when something outside it changed: the stylesheet (a theme) or the app's classes (focus, dark).
        if self._styled_for == self._style_inputs():
            event.refresh_styles = False

    @property
    def finops(self) -> Explorer:
        return cast("Explorer", self.app)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """A toast, its text shown as it is (see FinopsApp.notify)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def on_mount(self) -> None:
        if self.VIEW_TITLE:
            self.sub_title = self.VIEW_TITLE

    def data_changed(self) -> None:
        """New rows arrived while this screen is shown (a sync finished): query again now, not again on resume."""
        self._tags_version_seen = self.finops.tags_version
        reload = getattr(self, "reload", None)
        if callable(reload):
            reload()

    def end_loading(self, widget: Widget, focus: Widget | None = None) -> None:
        """Take `widget` out of its loading state and give focus back (to `focus`, or the widget itself).

        A loading widget gives up focus; the footer only shows the keys of the focused widget again
        once it is told that the bindings changed.
        """
        if not widget.loading:
            return
        widget.loading = False
        target = focus if focus is not None else widget
        if target.is_attached:
            target.focus()
        self.refresh_bindings()

    def palette_commands(self) -> Iterable[PaletteCommand]:
        """The screen's own actions for the command palette (override)."""
        return ()

    def can_export(self) -> bool:
        """Whether there is something on screen for `ctrl+s` to save (override with `export_csv`)."""
        return False

    def export_csv(self, folder: Path) -> Path:
        """Write what the screen shows, with exact figures, to a CSV file in `folder`; returns its path."""
        raise NotImplementedError

    def action_export(self) -> None:
        if not self.can_export():
            self.notify("Nothing to export yet.", severity="warning")
            return
        self.save_export(self.export_csv)

    def save_export(self, write: Callable[[Path], Path]) -> None:
        """`ctrl+s`: `write(folder)` saves the view as CSV in the exports folder (never the current
        directory); the toast gives the file's full path."""
        folder = paths.exports_dir().absolute()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = write(folder)
        except OSError as exc:
            self.notify(f"Export failed: {exc}", severity="error")
            return
        self.notify(f"Saved {path}", title="Exported", timeout=10)

    @on(events.ScreenResume)
    def _reload_if_tags_changed(self) -> None:
        # Tags edited on another screen meanwhile (TagsChanged): figures here are stale, query again.
        version = self.finops.tags_version
        seen, self._tags_version_seen = self._tags_version_seen, version
        reload = getattr(self, "reload", None)
        if seen is not None and seen != version and callable(reload):
            reload()

    @on(Worker.StateChanged)
    def _route_worker_failure(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble, so each screen forwards failures to the app's one handler.
        if event.state == WorkerState.ERROR:
            self.finops.report_worker_failure(event.worker)

