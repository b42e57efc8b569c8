"""The explorer's views (mode, key, title), their shared state, and what a screen may ask of the app."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from textual.worker import Worker

from finops_tui.config import Config
from finops_tui.store import Cache


@dataclass(frozen=True)
class View:
    """One view of the app: its Textual mode, default key, title, and a short title for narrow terminals."""

    mode: str
    key: str
    title: str
    short: str = ""


VIEWS: tuple[View, ...] = (
    View("overview", "1", "Overview", "Overview"),
    View("allocation", "2", "Allocation", "Alloc"),
    View("recommendations", "3", "Recommendations", "Recs"),
    View("tagging", "4", "Tagging", "Tags"),
    View("commitments", "5", "Commitments", "Commit"),
)
VIEWS_BY_MODE = {view.mode: view for view in VIEWS}
ScopeStep = tuple[str, str | None, str]  # (dimension, key, label): one step of a tree path scoping a queue
WELCOME_MODE = "welcome"


@dataclass
class ViewState:
    """What every view shows, shared so switching views keeps the same period, metric and currency."""

    period: str = "mtd"
    metric: str = "effective"
    currency: str | None = None  # None: the currency with the most cost
    shared: bool = False  # team figures are direct cost + each shared cost pool's share (`S`)


@dataclass(frozen=True)
class ReopenCache:
    """The app's return value when it should be started again on another cache (e.g. the demo)."""

    path: Path


class Explorer(Protocol):
    """What a screen uses of the app (FinopsApp is the one implementation): the screens never import the app."""

    cache: Cache
    config: Config
    view_state: ViewState
    tags_version: int
    now: Callable[[], dt.datetime]
    demo_end: dt.date | None

    def go_back(self) -> bool: ...

    def jump_to_view(self, mode: str) -> bool: ...

    def open_allocation(self, dimension: str, key: str | None) -> None: ...

    def open_resource(self, resource_id: str, *, trail: Sequence[tuple[str, str]] = (), root: str = "Allocation",
                      jumped_to: bool = False) -> None: ...

    def open_queue(self, key: str, scope: Sequence[ScopeStep] = ()) -> None: ...

    def open_explain(self, scope: Sequence[ScopeStep] = (), *, root: str = "") -> None: ...

    def show_loaded_cache(self) -> None: ...

    def report_worker_failure(self, worker: Worker[Any]) -> None: ...
