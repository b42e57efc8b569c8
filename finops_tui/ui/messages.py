"""Typed messages that workers and widgets post: past-tense events, small and immutable."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from finops_tui.allocation.assign import TagsAssigned
from finops_tui.allocation.journal import TagBatch
from finops_tui.report.overview import Overview
from finops_tui.sync import SyncProgress, SyncResult


@dataclass(frozen=True)
class OverviewRequest:
    """One query of the overview: a period spec and a metric (every currency comes back at once)."""

    serial: int
    period: str
    metric: str
    shared: bool = False  # team figures with shared costs (direct + each pool's share)


@dataclass
class OverviewLoaded(Message):
    """A worker finished the overview read model for `request`."""

    request: OverviewRequest
    overview: Overview


@dataclass
class OverviewPrefetched(Message):
    """A background worker computed an overview the user is likely to ask for next."""

    period: str
    metric: str
    day: dt.date  # "today" when it ran: relative periods depend on it
    generation: int  # the screen's reload count when it started: a reload makes it stale
    overview: Overview
    shared: bool = False


class CacheFoundEmpty(Message):
    """The cache has no cost rows: the app shows the welcome screen."""


@dataclass
class SliceChosen(Message):
    """The user asked to open one slice (e.g. service = Storage) in the allocation view."""

    dimension: str
    key: str | None
    name: str


@dataclass
class DemoBuilt(Message):
    """The demo estate is ready in its own cache file."""

    path: Path


@dataclass
class FileImported(Message):
    """An import into the open cache finished."""

    summary: str


@dataclass
class TagsChanged(Message):
    """Effective tags changed (a tag edit, an undo or redo, a new rule): every view reloads when next shown.

    Post it to the app; it bumps `app.tags_version`, which each view compares when it is shown again.
    """

    key: str
    resources: int


@dataclass
class SyncProgressed(Message):
    """The background sync reported progress: a burst collapses into the latest before the app sees it."""

    progress: SyncProgress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SyncProgressed)


@dataclass
class SyncFinished(Message):
    """The background sync ended: `result` is None when it raised (the worker reports the error)."""

    result: SyncResult | None
    data_changed: bool  # a window was written: every view queries again


@dataclass
class SyncDeclined(Message):
    """The user pressed R on a cache that is not synced (the demo, imports only) or with no scopes set."""

    reason: str


@dataclass
class TagsApplied(Message):
    """A worker journalled tag edits (`allocation.assign.assign_tags`)."""

    edit: TagsAssigned

    def describe(self) -> str:
        edit = self.edit
        values = ", ".join(edit.values)
        if not edit.batches:
            return f"Nothing to change: those resources already have {edit.key}={values}."
        noun = "resource" if edit.resources == 1 else "resources"
        return (f"{edit.key}={values} on {edit.resources:,} {noun} (batch {', '.join(map(str, edit.batches))}); "
                "applies to all cached history · u undoes")


@dataclass
class EditReverted(Message):
    """`u` or `ctrl+r` finished: the batch undone or redone, None when there was nothing to do."""

    verb: str  # undo | redo
    batch: TagBatch | None

    def describe(self) -> str:
        batch = self.batch
        if batch is None:
            return f"Nothing to {self.verb}."
        what = f"{batch.tag_key}={batch.new_value}" if batch.new_value is not None else f"{batch.tag_key} removed"
        noun = "resource" if batch.resources == 1 else "resources"
        verb = "Undone" if self.verb == "undo" else "Redone"
        return f"{verb}: {what} on {batch.resources:,} {noun} (batch {batch.batch_id})"
