"""The configured sources of cost (API scopes, exports in storage, a FinOps hub) and when each last synced."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from finops_tui import clock
from finops_tui.errors import UserError

# sources.kind of each path's windows, and the word people see for it (status bar, --list-sources).
SOURCE_WORDS = {"sync-query": "API", "sync-cost-details": "API", "sync-export": "export", "sync-hub": "hub"}


@dataclass(frozen=True)
class ConfiguredSource:
    kind: str  # API | export | hub
    name: str  # as people read it: a scope, a URL without its SAS, a cluster/database with filters
    key: str  # sync_state.scope of its windows (lower-case)


def configured_sources(
    *, scopes: list[str], exports: list[str], hub: str | None, hub_filters: list[str]
) -> list[ConfiguredSource]:
    """The sources a sync with these settings reads; a malformed one is listed with why instead of failing."""
    from finops_tui.sync.exports import parse_export_url
    from finops_tui.sync.hub import parse_hub
    from finops_tui.sync.windows import parse_scope

    found: list[ConfiguredSource] = []
    for text in scopes:
        try:
            scope = parse_scope(text)
            found.append(ConfiguredSource("API", scope.arm, scope.key))
        except UserError as exc:
            found.append(ConfiguredSource("API", f"{text} (invalid: {exc})", ""))
    for text in exports:
        try:
            location = parse_export_url(text, origin="export")
            found.append(ConfiguredSource("export", location.shown, location.key.lower()))
        except UserError as exc:
            found.append(ConfiguredSource("export", f"(invalid: {exc})", ""))
    if hub:
        try:
            target = parse_hub(hub, hub_filters)
            found.append(ConfiguredSource("hub", target.shown, target.key))
        except UserError as exc:
            found.append(ConfiguredSource("hub", f"(invalid: {exc})", ""))
    return found


@dataclass(frozen=True)
class LastRun:
    windows: int
    failed: int
    rows: int
    last_success: dt.datetime | None
    last_error: str | None


def last_run(cur: duckdb.DuckDBPyConnection, key: str) -> LastRun:
    """What the windows (or export runs) of one source hold in sync_state."""
    row = cur.execute(
        """
        SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'failed'),
               coalesce(sum(rows) FILTER (WHERE status = 'done'), 0), max(last_success),
               arg_max(last_error, window_start) FILTER (WHERE status = 'failed')
        FROM sync_state WHERE scope = ?
        """,
        [key],
    ).fetchone()
    if row is None:
        return LastRun(0, 0, 0, None, None)
    return LastRun(int(row[0]), int(row[1]), int(row[2]), row[3], row[4])


def describe_sources(cur: duckdb.DuckDBPyConnection | None, sources: list[ConfiguredSource]) -> list[str]:
    """One line per source: kind, name, its windows or runs, rows, when it last synced, the last error."""
    lines = []
    width = max(len(s.kind) for s in sources)
    for source in sources:
        state = _state_text(cur, source)
        lines.append(f"{source.kind:<{width}}  {source.name}  {state}")
    return lines


def _state_text(cur: duckdb.DuckDBPyConnection | None, source: ConfiguredSource) -> str:
    if not source.key:
        return ""
    if cur is None:
        return "never synced"
    try:
        run = last_run(cur, source.key)
    except duckdb.Error:
        return "never synced"
    if run.windows == 0 and run.failed == 0:
        return "never synced"
    unit = "run" if source.kind == "export" else "window"
    parts = [f"{run.windows} {unit}{'s' if run.windows != 1 else ''}", f"{run.rows:,} rows"]
    if run.last_success is not None:
        parts.append(f"last synced {clock.as_utc(run.last_success):%Y-%m-%d %H:%M} UTC")
    if run.failed:
        parts.append(f"{run.failed} failed (last: {run.last_error})")
    return ", ".join(parts)


def source_word(kind: str | None) -> str | None:
    """`API`, `export` or `hub` for a sources.kind a sync wrote; None for imports and the demo."""
    return SOURCE_WORDS.get((kind or "").lower())
