"""The explorer app: views as Textual modes, app-wide keys, theme, navigation between screens, errors."""

from __future__ import annotations

import datetime as dt
import gc
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, ClassVar

from textual import events, on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.reactive import var
from textual.screen import ModalScreen, Screen
from textual.widget import AwaitMount
from textual.worker import Worker, WorkerState, get_current_worker

from finops_tui import clock
from finops_tui.config import Config, load_config_or_defaults, save_setting
from finops_tui.errors import UserError
from finops_tui.store import Cache
from finops_tui.ui.commands import PaletteCommand, ViewCommands
from finops_tui.ui.dialogs.help import HelpDialog, KeyHelp
from finops_tui.ui.formatting import failure_line
from finops_tui.ui.keymap import binding_chains, resolve_keymap
from finops_tui.ui.messages import CacheFoundEmpty, SyncDeclined, SyncFinished, SyncProgressed, TagsChanged
from finops_tui.ui.screens.allocation import AllocationScreen
from finops_tui.ui.screens.base import FinopsScreen
from finops_tui.ui.screens.commitments import CommitmentsScreen
from finops_tui.ui.screens.explain import ExplainScreen
from finops_tui.ui.screens.overview import OverviewScreen
from finops_tui.ui.screens.recommendations import RecommendationsScreen
from finops_tui.ui.screens.resource_detail import ResourceDetailScreen
from finops_tui.ui.screens.tagging import TaggingScreen
from finops_tui.ui.screens.welcome import WelcomeScreen
from finops_tui.ui.sync_worker import SYNC_GROUP, WORKER_NAME, finished_line, progress_line, run_background_sync
from finops_tui.ui.views import VIEWS, VIEWS_BY_MODE, WELCOME_MODE, ReopenCache, ScopeStep, View, ViewState

__all__ = ["VIEWS", "VIEWS_BY_MODE", "WELCOME_MODE", "FinopsApp", "ReopenCache", "View", "ViewState"]


CANCEL_CONFIRM_SECONDS = 3.0  # a second R within this time cancels the running sync
AHEAD_POLL_SECONDS = 0.2  # how often the views mounted ahead check that the app is idle
AHEAD_QUIET_SECONDS = 0.5  # and how long after the last key: a burst of keys is not held up by work done ahead

# The screen of each view, made on first use (a Textual mode).
VIEW_SCREENS: dict[str, type[FinopsScreen]] = {
    "overview": OverviewScreen,
    "allocation": AllocationScreen,
    "recommendations": RecommendationsScreen,
    "tagging": TaggingScreen,
    "commitments": CommitmentsScreen,
}


RESOURCE_SCREEN = "resource-detail"  # the installed resource detail screen's name


def settle_heap(*, full: bool = True) -> None:
    """Collect garbage now, while nothing waits on the screen, and leave what lives on (screens, widgets, loaded
    figures) out of later collections. A full collection walks every object: ~100 ms at 10^5 objects, and
    Python starts one whenever enough of them have piled up, which landed on view switches at random.
    Not `full`: only the young objects are collected first (a few ms), for a moment the user may be waiting."""
    gc.collect(2 if full else 1)
    gc.freeze()


def _view_bindings() -> list[BindingType]:
    return [
        # Hidden from the footer: the view row in each screen's context bar shows them.
        Binding(view.key, f"switch_view('{view.mode}')", view.title, id=f"app.view.{view.mode}", show=False,
                tooltip=f"Show the {view.title} view")
        for view in VIEWS
    ]


class FinopsApp(App[ReopenCache | None]):
    """finops-tui: a keyboard-driven explorer over one open cache."""

    # The running sync's progress line, "" when idle; status bars watch it (a `var`: the app itself needs no repaint).
    sync_status = var("")

    CSS_PATH = "app.tcss"
    TITLE = "finops-tui"
    COMMANDS: ClassVar[set[Any]] = {ViewCommands}
    COMMAND_PALETTE_DISPLAY = ":"
    BINDINGS: ClassVar[list[BindingType]] = [
        *_view_bindings(),
        Binding("question_mark", "help", "Help", id="app.help", tooltip="List the keys of this screen"),
        # Both keys open the palette: Textual adds its ctrl+p only when no binding of ours opens it.
        Binding("colon", "command_palette", "Commands", id="app.command_palette", show=False,
                tooltip="Search every action and theme"),
        Binding("ctrl+p", "command_palette", "Commands", id="app.command_palette", show=False, priority=True,
                tooltip="Search every action and theme"),
        Binding("R", "sync", "Sync", id="app.sync", show=False,
                tooltip="Pull fresh cost from Azure in the background (twice while syncing: cancel)"),
        Binding("ctrl+x", "cancel_sync", "Cancel sync", id="app.cancel_sync",
                tooltip="Stop the running sync after the current page; finished months stay"),
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Leave finops-tui"),
    ]

    def __init__(
        self,
        cache: Cache,
        *,
        config: Config | None = None,
        now: Callable[[], dt.datetime] = clock.now,
        demo_end: dt.date | None = None,
        config_problem: str | None = None,
        mount_ahead: bool = False,
    ) -> None:
        """`mount_ahead`: once the overview is on screen and the app idle, mount the other views one by one
        behind it (compose, styles, first query), so that their first switch only paints (the command line
        turns it on; tests that count queries or workers keep it off)."""
        super().__init__()
        self.cache = cache
        if config is None:
            config, config_problem = load_config_or_defaults()
        self.config = config
        self.config_problem = config_problem  # why the explorer runs on the default settings, said on mount
        self.now = now  # injectable so "synced 3 h ago" is stable in snapshots
        self.demo_end = demo_end  # the demo estate's last day (default: yesterday)
        self.view_state = ViewState()
        self.tags_version = 0  # bumped by TagsChanged and synced windows; views loaded before reload when shown
        self.sync_worker: Worker[None] | None = None
        # Where `esc` returns to: the views the user left by opening a row in them (newest last).
        self.came_from: list[str] = []
        self._sync_cancel_asked_at: float | None = None  # when R during a sync asked "press R again to cancel"
        self.mount_ahead = mount_ahead
        self._switch_to_made_screen = False  # during switch_mode: the screen shown exists already
        self._mounted_ahead: Screen[Any] | None = None  # the view last mounted ahead
        # One resource detail screen, re-targeted on each open (made ahead with the views): composing its four
        # tables anew each time was most of its first paint.
        self._resource_screen: ResourceDetailScreen | None = None
        self._last_key_at = 0.0  # time.monotonic() of the last key pressed
        if self.config.theme in self.available_themes:
            self.theme = self.config.theme

    def on_mount(self) -> None:
        if self.mount_ahead:
            # What the imports made lives as long as the app: out of every collection from now on. Frozen without
            # a collection first (that took 75 ms before the first paint; imports leave next to no garbage).
            gc.freeze()
        if self.config_problem:
            self.notify(f"{self.config_problem}. Running on the default settings.", title="config.toml",
                        severity="warning", timeout=20, markup=False)
        if self.config.keymap:
            self.remap_keys(self.config.keymap)
        self.add_mode(WELCOME_MODE, WelcomeScreen)
        self.show_view("overview")
        if self.mount_ahead:
            self.set_timer(AHEAD_POLL_SECONDS, self._mount_next_view_ahead)
        if self.config.scopes:  # the worker checks whether the cache is old enough (SQL stays off this thread)
            self.start_sync(manual=False)

    def on_unmount(self) -> None:
        if self.mount_ahead:
            gc.unfreeze()  # the app's screens and figures are garbage now (the explorer may start again)

    # ----------------------------------------------------------------------------------------------
    # views

    def show_view(self, mode: str) -> bool:
        """Switch to a view, making its screen on first use."""
        if mode not in self._modes:
            self.add_mode(mode, VIEW_SCREENS[mode])
        made = mode in self._screen_stacks
        self.switch_mode(mode)
        if self.mount_ahead and not made:
            # A view made on its key (before it could be mounted ahead): its widgets live on, so they are left out
            # of the full collections that would otherwise walk them, on the next switch, say.
            self.call_after_refresh(partial(settle_heap, full=False))
        return True

    def switch_mode(self, mode: str) -> AwaitMount:
        # Textual holds every paint back 50 ms on a mode switch, to hide a screen still being built. A screen
        # already made (mounted ahead, or visited) has nothing to hide: it paints at once.
        self._switch_to_made_screen = mode in self._screen_stacks
        try:
            return super().switch_mode(mode)
        finally:
            self._switch_to_made_screen = False

    def delay_update(self, delay: float = 0.05) -> None:
        if not self._switch_to_made_screen:
            super().delay_update(delay)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._last_key_at = time.monotonic()
        await super().on_event(event)

    def _idle(self) -> bool:
        """Nothing runs that the user waits for (a sync does not count: it may run for minutes), and no key was
        pressed just now: the moment for work done ahead."""
        if time.monotonic() - self._last_key_at < AHEAD_QUIET_SECONDS:
            return False
        return not any(not worker.is_finished and worker.group != SYNC_GROUP for worker in self.workers)

    @property
    def views_mounted_ahead(self) -> bool:
        """Whether every view's screen exists (mounted ahead, or opened)."""
        return all(view.mode in self._screen_stacks for view in VIEWS)

    def _mount_next_view_ahead(self) -> None:
        """Mount the next view the user has not opened yet behind the one on screen, when the app is idle
        (`_idle`) and the view mounted before it is done. Its first switch then paints a screen that is already
        composed, styled and filled. After the views, the resource detail screen."""
        if self.current_mode == WELCOME_MODE or not self.is_running:
            return
        if self.views_mounted_ahead:
            self._mount_resource_screen_ahead()
            return
        previous = self._mounted_ahead
        if not self._idle() or (previous is not None and not previous.is_mounted):
            self.set_timer(AHEAD_POLL_SECONDS, self._mount_next_view_ahead)
            return
        settle_heap()  # the view made before this one, and its first answer, while nothing waits on the screen
        mode = next(view.mode for view in VIEWS if view.mode not in self._screen_stacks)
        if mode not in self._modes:
            self.add_mode(mode, VIEW_SCREENS[mode])
        # Textual's own step of `switch_mode` that makes a mode's screen, without showing it.
        self._init_mode(mode)
        self._mounted_ahead = self._screen_stacks[mode][0]
        self.set_timer(AHEAD_POLL_SECONDS, self._mount_next_view_ahead)

    def _mount_resource_screen_ahead(self) -> None:
        """Make the resource detail screen behind the views (compose, styles, and a read that warms DuckDB's
        memory for it), once they are all made and the app is idle: the first resource opened then only
        paints and queries, as the next ones do."""
        if self._resource_screen is not None or not self.is_running or self.current_mode == WELCOME_MODE:
            return
        if not self.views_mounted_ahead or not self._idle():
            self.set_timer(AHEAD_POLL_SECONDS, self._mount_resource_screen_ahead)
            return
        settle_heap()
        self._resource_screen = self._keep_resource_screen(ResourceDetailScreen(""))
        self._get_screen(self._resource_screen)  # Textual's step of `push_screen` that mounts a screen, hidden

    def _keep_resource_screen(self, screen: ResourceDetailScreen) -> ResourceDetailScreen:
        self.install_screen(screen, RESOURCE_SCREEN)  # installed: popping it keeps it for the next resource
        return screen

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_sync":  # shown in the footer only while there is a sync to cancel
            return self.syncing and not self.sync_stopping
        # Views do not switch underneath a dialog: its answer belongs to the view that opened it.
        return not (action == "switch_view" and isinstance(self.screen, ModalScreen))

    def action_switch_view(self, mode: str) -> None:
        if self.current_mode == WELCOME_MODE:
            self.notify("This cache is empty: open the demo estate or import a file first.", timeout=4)
            return
        # A view picked by its key starts afresh: `esc` there does not go back to an earlier jump.
        self.came_from.clear()
        self.show_view(mode)

    def jump_to_view(self, mode: str) -> bool:
        """Switch to `mode` because the user opened a row here; `esc` at the top of that view comes back."""
        origin = self.current_mode
        if not self.show_view(mode):
            return False
        if origin != mode and origin in VIEWS_BY_MODE:
            self.came_from.append(origin)
        return True

    def go_back(self) -> bool:
        """`esc` with nothing left to clear or close on a view: back to the view the user came from (as k9s
        does); False when the view was opened by its key."""
        if not self.came_from or isinstance(self.screen, ModalScreen):
            return False
        self.switch_mode(self.came_from.pop())
        return True

    def open_resource(self, resource_id: str, *, trail: Sequence[tuple[str, str]] = (), root: str = "Allocation",
                      jumped_to: bool = False) -> None:
        """One resource's detail over the screen on show; `esc` closes it (and goes back if `jumped_to`).

        The detail screen made before is re-targeted when it is not on show (a detail opened from a detail's
        explain gets a screen of its own)."""
        screen = self._resource_screen
        if screen is None or not screen.is_mounted or any(screen in stack for stack in self._screen_stacks.values()):
            fresh = ResourceDetailScreen(resource_id, trail=trail, root=root, jumped_to=jumped_to)
            if screen is None:
                self._resource_screen = self._keep_resource_screen(fresh)
            self.push_screen(fresh)
            return
        screen.retarget(resource_id, trail=trail, root=root, jumped_to=jumped_to)
        self.push_screen(screen)

    def open_queue(self, key: str, scope: Sequence[ScopeStep] = ()) -> None:
        """The unallocated queue of tag `key`, scoped, over the screen on show; `esc` closes it."""
        self.push_screen(TaggingScreen(key=key, scope=scope))

    def open_explain(self, scope: Sequence[ScopeStep] = (), *, root: str = "") -> None:
        """Why the cost of the node at `scope` (none: all cost) changed, over the screen on show; `esc` closes it."""
        self.push_screen(ExplainScreen(scope, root=root))

    def open_allocation(self, dimension: str, key: str | None) -> None:
        """Open one slice (e.g. service = Storage) in the allocation view.

        The allocation screen receives it through `open_slice(dimension, key)` if it defines one.
        """
        if not self.jump_to_view("allocation"):
            return
        opener = getattr(self.screen, "open_slice", None)
        if callable(opener):
            self.call_later(opener, dimension, key)

    @on(TagsChanged)
    def _tags_changed(self, message: TagsChanged) -> None:
        self.tags_version += 1

    @on(CacheFoundEmpty)
    def show_welcome(self) -> None:
        self.came_from.clear()
        self.switch_mode(WELCOME_MODE)

    def show_loaded_cache(self) -> None:
        """After an import into the open cache: back to the overview, queried afresh."""
        self.came_from.clear()
        self.switch_mode("overview")
        reload = getattr(self.screen, "reload", None)
        if callable(reload):
            reload()

    # ----------------------------------------------------------------------------------------------
    # app-wide actions

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, HelpDialog):
            return
        self.push_screen(HelpDialog(getattr(screen, "VIEW_TITLE", "") or type(screen).__name__, self.key_help(screen)))

    def key_help(self, screen: Screen[Any]) -> list[KeyHelp]:
        """The keys active on `screen` (ours: the ones with an id), the screen's first, the app's last."""
        keys_by_id: dict[str, list[str]] = {}
        rows: dict[str, tuple[str, Binding]] = {}
        for active in screen.active_bindings.values():
            binding = active.binding
            if not binding.id:
                continue  # Textual's own plumbing (tab, copy); ours all have ids
            keys_by_id.setdefault(binding.id, []).append(self.get_key_display(binding))
            if binding.id not in rows:
                node = active.node
                where = "App" if node is self else getattr(node, "VIEW_TITLE", "") or getattr(node, "HELP_GROUP", "")
                rows[binding.id] = (where or type(node).__name__, binding)
        title = getattr(screen, "VIEW_TITLE", "")
        ordered = sorted(rows.items(), key=lambda item: (item[1][0] == "App", item[1][0] != title))
        return [
            KeyHelp(where, ", ".join(keys_by_id[binding_id]), binding.description or binding.action, binding.tooltip,
                    binding_id)
            for binding_id, (where, binding) in ordered
        ]

    # ----------------------------------------------------------------------------------------------
    # sync: one thread worker writes through the app's cache; progress and the end arrive as messages

    @property
    def syncing(self) -> bool:
        return self.sync_worker is not None and not self.sync_worker.is_finished

    @property
    def sync_stopping(self) -> bool:
        return self.syncing and self.sync_worker is not None and self.sync_worker.cancelled_event.is_set()

    def action_sync(self) -> None:
        """Start a sync; during one, ask first and cancel on a second R."""
        if not self.syncing:
            self.start_sync(manual=True)
            return
        if self.sync_stopping:
            self.notify("The sync is stopping after the current page.", timeout=4)
        elif self._sync_cancel_asked_at is not None \
                and time.monotonic() - self._sync_cancel_asked_at < CANCEL_CONFIRM_SECONDS:
            self.action_cancel_sync()
        else:
            self._sync_cancel_asked_at = time.monotonic()
            self.notify("A sync is running: press R again (or ctrl+x) to cancel it.", timeout=CANCEL_CONFIRM_SECONDS)

    def action_cancel_sync(self) -> None:
        if self.sync_worker is None or not self.syncing:
            return
        # Not `worker.cancel()`: that marks the worker finished at once while its thread still writes the
        # window in hand, and a new R could then start a second sync beside it. Setting the event the sync
        # polls stops it between pages; the worker finishes when the thread really has.
        self.sync_worker.cancelled_event.set()
        self._sync_cancel_asked_at = None
        self.sync_status = "stopping the sync after the current page (finished months stay)…"
        self.refresh_bindings()

    def start_sync(self, *, manual: bool) -> None:
        self._sync_cancel_asked_at = None
        self.sync_worker = self._sync(manual)
        self.refresh_bindings()

    @work(thread=True, exclusive=True, group=SYNC_GROUP, exit_on_error=False, name=WORKER_NAME)
    def _sync(self, manual: bool) -> None:
        # The app quitting cancels its workers, which sets this event too: the thread then stops waiting.
        run_background_sync(self.cache, self.config, manual=manual, cancel=get_current_worker().cancelled_event,
                            post=self.post_message, device_code_prompt=self._show_device_code)

    def _show_device_code(self, verification_uri: str, user_code: str, expires_on: Any) -> None:
        # `[sync] credential = "device-code"`: azure-identity would print the code under the TUI; show it here.
        self.call_from_thread(self.notify, f"Open {verification_uri} and enter the code {user_code}.",
                              title="Azure sign-in", timeout=300)

    @on(SyncProgressed)
    def _sync_progressed(self, message: SyncProgressed) -> None:
        if self.syncing and not self.sync_stopping:  # once stopping, the line says so until the end
            self.sync_status = progress_line(message.progress)

    @on(SyncDeclined)
    def _sync_declined(self, message: SyncDeclined) -> None:
        self.notify(message.reason, title="Sync", timeout=10)

    @on(SyncFinished)
    def _sync_finished(self, message: SyncFinished) -> None:
        if message.result is not None:
            text, severity = finished_line(message.result)
            self.notify(text, title="Sync", severity=severity, timeout=10 if severity == "warning" else 6)
        if message.data_changed:
            self.show_synced_data()

    def _sync_ended(self) -> None:
        self.sync_status = ""
        self._sync_cancel_asked_at = None
        self.refresh_bindings()

    def show_synced_data(self) -> None:
        """New windows are in the cache: the view on screen queries again now, the others when next shown."""
        if self.current_mode == WELCOME_MODE:
            self.show_loaded_cache()
            return
        self.tags_version += 1  # the views' "query again when shown" counter: synced rows bring new tags too
        data_changed = getattr(self.screen, "data_changed", None)
        if callable(data_changed):
            data_changed()

    def palette_commands(self, screen: Screen[Any]) -> Iterable[PaletteCommand]:
        """Everything the palette offers on `screen`: its own actions first, then views and app actions."""
        own = getattr(screen, "palette_commands", None)
        if callable(own):
            yield from own()
        for view in VIEWS:
            yield PaletteCommand(f"View: {view.title}", f"Switch to the {view.title} view (key {view.key})",
                                 partial(self.action_switch_view, view.mode))
        yield PaletteCommand("Theme…", "Choose a colour theme (remembered in config.toml)", self.action_change_theme)
        yield PaletteCommand("Help: keys", "List the keys of this screen", self.action_help)
        if self.syncing:
            yield PaletteCommand("Cancel sync", "Stop the running sync; finished months stay (ctrl+x)",
                                 self.action_cancel_sync)
        else:
            yield PaletteCommand("Sync now", "Pull fresh cost from Azure in the background (R)", self.action_sync)
        yield PaletteCommand("Quit", "Leave finops-tui", self.action_quit)

    def watch_theme(self, theme: str) -> None:
        if theme != self.config.theme:
            self.config.theme = theme
            try:
                save_setting(None, "theme", theme)
            except (OSError, UserError) as exc:
                self.notify(f"Theme not saved: {exc}", severity="warning")

    def remap_keys(self, entries: dict[str, str]) -> None:
        """config.toml [keys]: remap by binding id (old ids too); an entry that would take another binding's
        key is left out with a warning, instead of that binding silently losing its key."""
        result = resolve_keymap(entries, binding_chains(type(self)))
        self.set_keymap(result.keymap)
        for problem in result.problems:
            self.notify(problem, title="Keys", severity="warning", timeout=12)

    def handle_bindings_clash(self, clashed_bindings: set[Binding], node: Any) -> None:
        # Textual calls this on every key press while a clash stands; `remap_keys` already left out (and
        # reported once) every remap that would clash.
        return

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """A toast. Its text is shown as it is: messages name config sections ([sync]), file names and
        tag values, which markup would eat."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # ----------------------------------------------------------------------------------------------
    # worker errors: every screen forwards failures here

    @on(Worker.StateChanged)
    def _app_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self.sync_worker and event.worker.is_finished:
            self._sync_ended()
        if event.state == WorkerState.ERROR:
            self.report_worker_failure(event.worker)

    def report_worker_failure(self, worker: Worker[Any]) -> None:
        """One line for the user: beside the control that failed if its screen has a place, else a toast."""
        text = failure_line(worker.error)
        show_inline = getattr(worker.node, "show_failure", None)
        if callable(show_inline):
            show_inline(worker, text)
            return
        self.notify(text, title=f"{worker.name or 'background task'} failed", severity="error", timeout=10)

