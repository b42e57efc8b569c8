"""Windows of cost rows: replacing a (scope, metric, period) window atomically, and reading freshness."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from finops_tui import clock


@dataclass(frozen=True)
class Window:
    """What one import or sync window covers; rows of the same scope and metric in [start, end) are replaced."""

    kind: str
    scope: str
    metric: str
    start: dt.date
    end: dt.date  # exclusive
    path: str | None = None
    file_hash: str | None = None
    provider: str | None = None
    focus_version: str | None = None


def begin_window(cur: duckdb.DuckDBPyConnection, window: Window) -> int:
    """Inside the caller's transaction: drop the rows this window supersedes and register it.

    Returns the new source_id; the caller inserts its charges with it, then calls `finish_window`.
    """
    scope = window.scope.lower()
    cur.execute(
        """
        DELETE FROM charges
        WHERE source_id IN (SELECT source_id FROM sources WHERE scope = ? AND metric = ?)
          AND x_ChargeDate >= ? AND x_ChargeDate < ?
        """,
        [scope, window.metric, window.start, window.end],
    )
    row = cur.execute(
        """
        INSERT INTO sources (kind, scope, path, file_hash, provider, focus_version, metric,
                             period_start, period_end, imported_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING source_id
        """,
        [
            window.kind, scope, window.path, window.file_hash, window.provider, window.focus_version,
            window.metric, window.start, window.end, clock.now(),
        ],
    ).fetchone()
    assert row is not None
    return int(row[0])


def claim_window(cur: duckdb.DuckDBPyConnection, source_id: int, window: Window) -> None:
    """For loaders that learn their window from the rows they just loaded (file imports).

    They register a source first with `begin_window` and an empty provisional window (start == end,
    a scope of their own), insert rows under its source_id (so rows are written once, never updated),
    then claim the real window here: the rows it supersedes, other than this source's, are dropped
    and the source takes the window's attributes. Then `finish_window` as usual.
    """
    cur.execute(
        """
        DELETE FROM charges
        WHERE source_id IN (SELECT source_id FROM sources WHERE scope = ? AND metric = ? AND source_id <> ?)
          AND x_ChargeDate >= ? AND x_ChargeDate < ?
        """,
        [window.scope.lower(), window.metric, source_id, window.start, window.end],
    )
    cur.execute(
        """
        UPDATE sources SET kind = ?, scope = ?, path = ?, file_hash = ?, provider = ?, focus_version = ?,
                           metric = ?, period_start = ?, period_end = ?
        WHERE source_id = ?
        """,
        [
            window.kind, window.scope.lower(), window.path, window.file_hash, window.provider, window.focus_version,
            window.metric, window.start, window.end, source_id,
        ],
    )


def discard_source(cur: duckdb.DuckDBPyConnection, source_id: int) -> None:
    """Forget a registered source and its rows (a load that ended with nothing to keep)."""
    cur.execute("DELETE FROM charges WHERE source_id = ?", [source_id])
    cur.execute("DELETE FROM sources WHERE source_id = ?", [source_id])


def register_resource_ids(cur: duckdb.DuckDBPyConnection, ids_sql: str, params: object = None) -> None:
    """Give the lower-cased resource ids that `ids_sql` selects (one column) an integer key if they lack one.

    Keys continue from the largest one, in id order, so the numbering does not depend on the writer.
    """
    cur.execute(
        f"""
        INSERT INTO resource_keys
        SELECT ResourceId, (SELECT coalesce(max(resource_key), 0) FROM resource_keys)
                           + row_number() OVER (ORDER BY ResourceId)
        FROM (SELECT DISTINCT n.ResourceId FROM ({ids_sql}) AS n(ResourceId)
              WHERE n.ResourceId IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM resource_keys k WHERE k.ResourceId = n.ResourceId))
        """,
        params,
    )


def assign_resource_keys(cur: duckdb.DuckDBPyConnection, source_id: int | None = None) -> None:
    """Give new resource ids an integer key and stamp it on rows that lack one (of one source, or all)."""
    rows = "c.x_ResourceKey IS NULL" + (" AND c.source_id = $id" if source_id is not None else "")
    params = {"id": source_id} if source_id is not None else {}
    register_resource_ids(cur, f"SELECT c.ResourceId FROM charges c WHERE {rows}", params)
    cur.execute(
        f"""
        UPDATE charges SET x_ResourceKey = k.resource_key FROM resource_keys k
        WHERE {rows.replace("c.", "charges.")} AND k.ResourceId = charges.ResourceId
        """,
        params,
    )


def finish_window(cur: duckdb.DuckDBPyConnection, source_id: int) -> int:
    """Record the row count and currencies of a loaded window; forget sources left with no rows."""
    assign_resource_keys(cur, source_id)
    cur.execute(
        """
        UPDATE sources SET
            row_count = (SELECT count(*) FROM charges WHERE source_id = ?),
            currencies = (SELECT string_agg(DISTINCT BillingCurrency, ',' ORDER BY BillingCurrency)
                          FROM charges WHERE source_id = ?)
        WHERE source_id = ?
        """,
        [source_id, source_id, source_id],
    )
    # Sources of the same scope and metric that the new window superseded entirely are forgotten;
    # the others keep their days outside the window, so their counts are refreshed.
    cur.execute(
        """
        UPDATE sources s SET row_count = (SELECT count(*) FROM charges c WHERE c.source_id = s.source_id)
        WHERE s.source_id <> $id
          AND (s.scope, s.metric) = (SELECT (scope, metric) FROM sources WHERE source_id = $id)
        """,
        {"id": source_id},
    )
    cur.execute(
        """
        DELETE FROM sources s WHERE s.source_id <> $id AND s.row_count = 0
          AND (s.scope, s.metric) = (SELECT (scope, metric) FROM sources WHERE source_id = $id)
        """,
        {"id": source_id},
    )
    row = cur.execute("SELECT row_count FROM sources WHERE source_id = ?", [source_id]).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Freshness:
    data_start: dt.date | None
    data_end: dt.date | None  # last day with cost rows
    last_kind: str | None
    last_path: str | None
    last_loaded_at: dt.datetime | None


def freshness(cur: duckdb.DuckDBPyConnection) -> Freshness:
    bounds = cur.execute("SELECT min(x_ChargeDate), max(x_ChargeDate) FROM charges").fetchone()
    last = cur.execute(
        "SELECT kind, path, imported_at FROM sources ORDER BY imported_at DESC, source_id DESC LIMIT 1"
    ).fetchone()
    start, end = (bounds or (None, None))
    if last is None:
        return Freshness(start, end, None, None, None)
    return Freshness(start, end, last[0], last[1], last[2])
