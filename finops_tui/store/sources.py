"""Windows of cost rows: replacing a (scope, metric, period) window atomically, and reading freshness.

A sync window is a calendar month of charge days. An imported file's window is its billing period(s):
re-importing a file, or a newer export of the same billing period, replaces the rows billed in that
period and nothing else, whatever days the rows are charged on (see `claim_window`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from finops_tui import clock
from finops_tui.store import summaries


@dataclass(frozen=True)
class Window:
    """What one import or sync window covers; rows of the same scope and metric in [start, end) are replaced.

    `periods` (imports) lists the billing periods the window replaces, each [start, end); start and end
    then span them all. Empty means the one period [start, end).
    """

    kind: str
    scope: str
    metric: str
    start: dt.date
    end: dt.date  # exclusive
    path: str | None = None
    file_hash: str | None = None
    provider: str | None = None
    focus_version: str | None = None
    periods: tuple[tuple[dt.date, dt.date], ...] = ()

    def replaced_periods(self) -> list[tuple[dt.date, dt.date]]:
        """The periods, merged where they touch or overlap (accounts of one file may have shifted periods)."""
        merged: list[tuple[dt.date, dt.date]] = []
        for start, end in sorted(self.periods or ((self.start, self.end),)):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


# The billing day of a charge row: its BillingPeriodStart, or its charge day when it has none (sync rows
# of older caches, files without billing period columns).
# sources.kind of windows a sync wrote (sync-query, sync-cost-details) and of the demo estate: the push and
# the explorer's sync both refuse caches whose cost did not come from a sync.
SYNCED_KIND_PREFIX = "sync"
DEMO_KIND = "demo"
BILLING_DAY_SQL = "coalesce(CAST(c.BillingPeriodStart AS DATE), c.x_ChargeDate)"

# Provider splits (FOCUS 1.3): a row whose provider or an upstream tool split a shared resource's cost keeps
# the shared host in ResourceId and names the consumer in AllocatedResourceId. The row belongs to its
# *owning* resource, the consumer when there is one: x_ResourceKey is the owning resource's key, so every
# join of effective tags on it gives a split row its consumer's tags.
OWNING_RESOURCE_SQL = "coalesce(c.AllocatedResourceId, c.ResourceId)"
# The rows a provider split; shared cost pools leave them alone unless a pool's match says `allocated = true`.
PROVIDER_SPLIT_SQL = "c.AllocatedResourceId IS NOT NULL"


def owning_resource_sql(alias: str = "c") -> str:
    """OWNING_RESOURCE_SQL over another table alias (`charges`, or none: pass "")."""
    prefix = f"{alias}." if alias else ""
    return f"coalesce({prefix}AllocatedResourceId, {prefix}ResourceId)"


def begin_window(cur: duckdb.DuckDBPyConnection, window: Window) -> int:
    """Inside the caller's transaction: drop the rows this window supersedes and register it.

    Returns the new source_id; the caller inserts its charges with it, then calls `finish_window`.
    """
    scope = window.scope.lower()
    summaries.mark_days(cur, window.start, window.end)
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

    What a window supersedes, among the windows of the same scope and metric:
    - a window whose whole period lies within the new billing periods: all its rows, whatever their
      days (a re-import of the same file, a newer export of the same month);
    - a window reaching beyond them: its rows billed within them (a month out of a quarter's file).
    A row whose billing day lies outside its own window's period (a late charge billed in the next
    period, as providers do at the month's edge) stays with that window until it is replaced as a whole:
    it never makes the window it arrived in replace a period the file does not cover.
    """
    periods = window.replaced_periods()
    values = ", ".join("(CAST(? AS DATE), CAST(? AS DATE))" for _ in periods)
    superseded_sql = f"""
        WITH periods(p_start, p_end) AS (VALUES {values}),
        superseded AS (
            SELECT s.source_id, s.period_start, s.period_end,
                   EXISTS (SELECT 1 FROM periods p WHERE p.p_start <= s.period_start AND s.period_end <= p.p_end)
                       AS whole
            FROM sources s
            WHERE s.scope = ? AND s.metric = ? AND s.source_id <> ?
              AND EXISTS (SELECT 1 FROM periods p WHERE p.p_start < s.period_end AND s.period_start < p.p_end)
        )"""
    superseded_rows = f"""
        c.source_id = o.source_id
          AND (o.whole OR (
                {BILLING_DAY_SQL} >= o.period_start AND {BILLING_DAY_SQL} < o.period_end
                AND EXISTS (SELECT 1 FROM periods p
                            WHERE {BILLING_DAY_SQL} >= p.p_start AND {BILLING_DAY_SQL} < p.p_end)))"""
    params = [*(day for period in periods for day in period), window.scope.lower(), window.metric, source_id]
    summaries.mark_days_of(
        cur, f"{superseded_sql} SELECT c.x_ChargeDate FROM charges c, superseded o WHERE {superseded_rows}", params
    )
    cur.execute(f"{superseded_sql} DELETE FROM charges c USING superseded o WHERE {superseded_rows}", params)
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
    summaries.mark_days_of(cur, "SELECT x_ChargeDate FROM charges WHERE source_id = ?", [source_id])
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


def assign_resource_keys(
    cur: duckdb.DuckDBPyConnection, source_id: int | None = None, *, resource_ids: list[str] | None = None
) -> None:
    """Give new resource ids an integer key and stamp the owning resource's key on rows that lack one
    (of one source, or all). Hosts of split rows get a key too, so their own tags can be keyed.

    `resource_ids`: every id the source's rows name (ResourceId and AllocatedResourceId, as stored), when the
    caller has them already (an import's survey lists them): registered from that list instead of a pass over
    the rows.
    """
    rows = "c.x_ResourceKey IS NULL" + (" AND c.source_id = $id" if source_id is not None else "")
    params = {"id": source_id} if source_id is not None else {}
    if resource_ids is not None and source_id is not None:
        register_resource_ids(cur, "SELECT unnest($ids::VARCHAR[])", {"ids": resource_ids})
    else:
        register_resource_ids(
            cur,
            f"SELECT {OWNING_RESOURCE_SQL} FROM charges c WHERE {rows} "
            f"UNION ALL SELECT c.ResourceId FROM charges c WHERE {rows} AND {PROVIDER_SPLIT_SQL}",
            params,
        )
    cur.execute(
        f"""
        UPDATE charges SET x_ResourceKey = k.resource_key FROM resource_keys k
        WHERE {rows.replace("c.", "charges.")} AND k.ResourceId = {owning_resource_sql("charges")}
        """,
        params,
    )


def finish_window(
    cur: duckdb.DuckDBPyConnection, source_id: int, *, settle_summary: bool = True, rebuild_follows: bool = False,
    resource_ids: list[str] | None = None,
) -> int:
    """Record the row count and currencies of a loaded window; forget sources left with no rows.

    Also brings the summary tables up to date for every day this write changed (see store.summaries), unless
    `settle_summary` is False: the caller settles them later in the same transaction, or, `rebuild_follows`,
    rebuilds the whole summary (an import ending in refresh_derived), so the days need not even be marked.
    `resource_ids` lists the ids the window's rows name, when the caller knows them (see assign_resource_keys).
    """
    assign_resource_keys(cur, source_id, resource_ids=resource_ids)
    if not rebuild_follows:
        summaries.mark_days_of(cur, "SELECT x_ChargeDate FROM charges WHERE source_id = ?", [source_id])
    if settle_summary and not rebuild_follows:
        summaries.settle(cur)
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
    # A window replaced by a sync leaves deleted rows in `charges`, and then DuckDB can no longer answer
    # min/max from its statistics: a full scan (45 ms at 10M rows) on every overview. The summary holds
    # every dated row's day, so its min/max are the same dates, read from a table 75x smaller (its team
    # rollup: smaller still, and as small with provider splits as without).
    table = summaries.SMALLEST_TABLE if summaries.current(cur) is not None else "charges"
    bounds = cur.execute(f"SELECT min(x_ChargeDate), max(x_ChargeDate) FROM {table}").fetchone()
    last = cur.execute(
        "SELECT kind, path, imported_at FROM sources ORDER BY imported_at DESC, source_id DESC LIMIT 1"
    ).fetchone()
    start, end = (bounds or (None, None))
    if last is None:
        return Freshness(start, end, None, None, None)
    return Freshness(start, end, last[0], last[1], last[2])
