"""The explorer's background sync: whether to start, the worker thread's body, and its lines for people."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from textual.message import Message
from textual.notifications import SeverityLevel

from finops_tui import paths
from finops_tui.allocation.effective import load_tag_policy
from finops_tui.config import Config, load_config
from finops_tui.ingest.importer import import_in_transaction
from finops_tui.store import Cache
from finops_tui.store.sources import DEMO_KIND, SYNCED_KIND_PREFIX
from finops_tui.sync import SyncOptions, SyncProgress, SyncResult, options_from_config, run_sync, sync_due
from finops_tui.sync.exports import ExportOptions, sync_exports
from finops_tui.sync.hub import HubOptions, sync_hub
from finops_tui.ui.formatting import short_path
from finops_tui.ui.messages import SyncDeclined, SyncFinished, SyncProgressed

SYNC_GROUP = "sync"
WORKER_NAME = "Azure sync"
# Engine states that carry a row count worth showing rather than a sentence of their own.
COUNTING_STATES = {"starting": "", "downloading": "", "writing": " · writing", "written": " written"}
_GUID = re.compile(r"([0-9a-fA-F]{8})-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class SyncPlan:
    """What a press of `R` (or the check on launch) leads to: a sync with these options, or why not."""

    options: SyncOptions | None
    reason: str = ""  # for people, when options is None; "" when the cache is simply fresh enough


def _config_line() -> str:
    return f"[sync] scopes in {short_path(paths.config_path())}"


def no_scopes_reason() -> str:
    return (f"Nothing to sync yet: set {_config_line()} (e.g. scopes = [\"/subscriptions/<id>\"]; "
            "`finops-tui sync --list-scopes` lists yours), then press R.")


def demo_reason() -> str:
    return ("This is the demo estate: R syncs your own cache, never the demo. Set "
            f"{_config_line()}, then open `finops-tui` without `demo`.")


def imported_reason() -> str:
    return ("This cache holds imported files only: syncing Azure into it would count the same cost twice. "
            f"Set {_config_line()} and sync into a cache of its own: `finops-tui --cache sync.duckdb`.")


def current_config(config: Config) -> Config:
    """config.toml read again when the app's settings came from it: scopes added while the app runs count."""
    return load_config(config.path) if config.path is not None else config


def plan_sync(cache: Cache, config: Config, *, manual: bool) -> SyncPlan:
    """Whether to sync now. Runs SQL: call it from a worker thread.

    Only a cache that already holds synced data, or nothing at all, is synced: the demo estate is made up,
    and syncing into a cache of imported exports would add the same cost a second time. On launch
    (`manual=False`) the sync starts only when the configured scopes are older than `[sync] max_age_hours`.
    """
    with cache.cursor() as cur:
        kinds = {str(kind) for (kind,) in cur.execute("SELECT DISTINCT kind FROM sources").fetchall()}
    if DEMO_KIND in kinds:
        return SyncPlan(None, demo_reason())
    if kinds and not any(kind.startswith(SYNCED_KIND_PREFIX) for kind in kinds):
        return SyncPlan(None, imported_reason())
    if not (config.scopes or config.exports or config.hub):
        return SyncPlan(None, no_scopes_reason())
    # With exports or a hub configured, their windows count too (sync_state holds every source's windows).
    due_scopes = config.scopes if not (config.exports or config.hub) else None
    if not manual and not sync_due(cache, config.sync_max_age_hours, scopes=due_scopes):
        return SyncPlan(None)
    return SyncPlan(options_from_config(config))


def run_background_sync(
    cache: Cache,
    config: Config,
    *,
    manual: bool,
    cancel: threading.Event,
    post: Callable[[Message], Any],
    device_code_prompt: Callable[[str, str, Any], None] | None = None,
) -> None:
    """The sync worker's body (a thread): plan, then run, reporting through `post`.

    Posts SyncDeclined (only when the user asked), SyncProgressed while it runs, and SyncFinished at the
    end, also when the run raises (then with no result), so views reload for the windows written before
    the error. The error itself propagates to the worker, whose failure the app shows in one line.
    """
    plan = plan_sync(cache, current_config(config), manual=manual)
    if plan.options is None:
        if manual:
            post(SyncDeclined(plan.reason))
        return
    options = replace(plan.options, device_code_prompt=device_code_prompt) if device_code_prompt else plan.options
    wrote = False

    def report(progress: SyncProgress) -> None:
        nonlocal wrote
        # Seen here, before the UI collapses a burst of progress messages into the latest one.
        wrote = wrote or progress.state == "written"
        post(SyncProgressed(progress))

    settings = current_config(config)
    policy = load_tag_policy(settings)
    results: list[SyncResult] = []
    try:
        if options.scopes:
            results.append(run_sync(cache, options, policy, progress=report, cancel=cancel))
        if settings.exports and not cancel.is_set():
            export_options = ExportOptions(list(settings.exports), importer=import_in_transaction,
                                           credential_mode=settings.credential, origin="[sync] exports")
            results.append(sync_exports(cache, export_options, policy, progress=report, cancel=cancel))
        if settings.hub and not cancel.is_set():
            hub_options = HubOptions(settings.hub, filters=list(settings.hub_filters), months=settings.sync_months,
                                     credential_mode=settings.credential, origin="[sync] hub",
                                     arm_endpoint=settings.arm_endpoint)
            results.append(sync_hub(cache, hub_options, policy, progress=report, cancel=cancel))
    except Exception:
        post(SyncFinished(None, data_changed=wrote or any(r.windows_done for r in results)))
        raise
    result = combined(results)
    post(SyncFinished(result, data_changed=wrote or result.windows_done > 0))


def combined(results: list[SyncResult]) -> SyncResult:
    """One result for the status line from the API, export and hub runs of one press of R."""
    total = SyncResult()
    for result in results:
        total.windows_done += result.windows_done
        total.windows_skipped += result.windows_skipped
        total.rows += result.rows
        total.failures += result.failures
        total.warnings += result.warnings
        total.api_calls += result.api_calls
        total.cancelled = total.cancelled or result.cancelled
    return total


def short_scope(scope: str) -> str:
    """A scope with its GUIDs cut to the first block, so the window and row count still fit on the line."""
    return _GUID.sub(lambda match: match.group(1) + "…", scope)


def progress_line(progress: SyncProgress) -> str:
    """`syncing /subscriptions/0000… 2026-10 amortized · 12,400 rows (3/6)` or the engine's own words."""
    source = {"export": "export ", "hub": "hub "}.get(progress.api_path or "", "")
    where = source + short_scope(progress.scope)
    if progress.window is not None:
        where += f" {progress.window:%Y-%m}"
    if progress.metric:
        where += f" {progress.metric}"
    suffix = COUNTING_STATES.get(progress.state)
    detail = f"{progress.rows:,} rows{suffix}" if suffix is not None else progress.state
    counter = f" ({progress.windows_done}/{progress.windows_total})" if progress.windows_total else ""
    return f"syncing {where} · {detail}{counter}"


def finished_line(result: SyncResult) -> tuple[str, SeverityLevel]:
    """One line about a finished run, and the notification severity it deserves."""
    done = f"{result.windows_done} month window{'s' if result.windows_done != 1 else ''}, {result.rows:,} rows"
    if result.cancelled:
        return f"Sync cancelled: {done} kept; R resumes.", "information"
    if result.failures:
        first = result.failures[0]
        more = f" (+{len(result.failures) - 1} more)" if len(result.failures) > 1 else ""
        failure = f"{short_scope(first.scope)} {first.window:%Y-%m} {first.metric}: {first.error}{more}"
        if result.windows_done == 0:
            return f"Sync failed: {failure}", "error"
        return f"Synced {done}; {len(result.failures)} failed: {failure}", "warning"
    if result.windows_done == 0 and result.windows_skipped:
        return "Already up to date: nothing to sync.", "information"
    line = f"Synced {done}."
    if result.warnings:
        more = f" (+{len(result.warnings) - 1} more)" if len(result.warnings) > 1 else ""
        return f"{line} {result.warnings[0]}{more}", "warning"
    return line, "information"
