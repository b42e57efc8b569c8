"""Summary tables beside `charges`: daily cost per dimension group, kept true in the same write as the facts.

`daily_summary` holds, per day and group of GROUP_COLUMNS plus the effective value of one tag key (the team
key), the DECIMAL sums of EffectiveCost and BilledCost and the number of charge rows. Every figure a read
model takes from it is a DECIMAL sum of DECIMAL sums: exact. docs/summaries.md says what keeps it true.

The rollups (ROLLUPS) are smaller tables summed from `daily_summary` by fewer columns (the team alone; every
column but the team; the team with subscription and resource group): a provider-split cache's summary holds
several times the groups of one without splits (a host's rows go to its workloads' teams), and most questions
need only a few of its columns. Each is maintained in the same steps, from the summary's rows, never from
`charges`.

The two wide tables, the summary and the rollup without the team, are star-shaped (schema 9): each distinct
combination of the dimension columns is kept once in `summary_groups`, and their rows (`summary_facts`,
`summary_no_team_facts`) hold the day, that combination's integer `group_id`, the tag value and the sums. Views under
the old names (`daily_summary`, `summary_no_team`) join them back, so every read reads the same columns as before.
At 1M rows a wide summary was 14 text columns written per row, and writing them was most of an import's time beyond
loading the rows; a few hundred combinations hold the same text once.

Maintenance, always inside the caller's write (one transaction):
- window writes (store.sources) mark the days whose rows they delete or insert (`mark_days*`), and
  `finish_window` rebuilds those days (`settle`);
- `rebuild` recomputes everything (after `refresh_derived`, rules, pools: effective tags may change anywhere);
- a tag edit on some resources moves only the rows of those whose summarised value changed
  (`begin_resource_change` / `end_resource_change`; `take_out_resources` when their pool markers may change).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import duckdb

from finops_tui import clock

SUMMARY_TABLE = "daily_summary"  # a view: summary_facts joined to summary_groups
GROUPS_TABLE = "summary_groups"  # one row per distinct combination of the dimension columns, by group_id
SUMMARY_FACTS = "summary_facts"  # daily_summary's rows: day, group_id, tag value, sums
DEFAULT_TAG_KEY = "team"
TAG_COLUMN = "tag_value"  # the effective value of summary_state.tag_key for the rows' owning resource
# Dimension columns of `charges` the summary keeps, by their `charges` names so dimension SQL reads either.
GROUP_COLUMNS = (
    "x_ChargeDate", "BillingCurrency", "ServiceName", "ServiceCategory", "SubAccountId", "SubAccountName",
    "x_ResourceGroupName", "RegionId", "RegionName", "ChargeCategory", "PricingCategory", "ProviderName",
    "ResourceType", "CommitmentDiscountId", "CommitmentDiscountName", "x_SharedPool",
)
# Plain dimensions (basis.dimensions names) whose key and label SQL use only GROUP_COLUMNS.
SUMMARY_DIMENSIONS = frozenset({
    "service", "service-category", "subscription", "resource-group", "region", "resource-type", "charge-category",
    "pricing-category", "commitment", "provider",
})
_KEYS = (*GROUP_COLUMNS, TAG_COLUMN)
# The columns summary_groups holds: every dimension column but the day.
_GROUP_KEYS = tuple(c for c in GROUP_COLUMNS if c != "x_ChargeDate")


@dataclass(frozen=True)
class Rollup:
    """A table holding `daily_summary` summed by fewer of its columns (same money columns and row counts)."""

    table: str
    columns: tuple[str, ...]
    facts: str | None = None  # star-shaped: the table its rows are kept in, keyed by group_id (`table` is a view)

    @property
    def stored(self) -> str:
        """The table its rows are written to."""
        return self.facts or self.table

    @property
    def stored_keys(self) -> tuple[str, ...]:
        """The stored table's group columns (a star-shaped one keeps group_id for the dimension columns)."""
        if self.facts is None:
            return self.columns
        return ("x_ChargeDate", "group_id", *((TAG_COLUMN,) if TAG_COLUMN in self.columns else ()))


# Every rollup keeps the day, the currency and the pool marker: each read model filters on them.
_EVERY_ROLLUP = ("x_ChargeDate", "BillingCurrency", "x_SharedPool")
# In the order a read model tries them, smallest first (measured at 10M rows, 20% split rows: 18k, 62k and 219k
# rows against the summary's 665k; without split rows 9k, 62k, 36k against 133k).
ROLLUPS = (
    Rollup("summary_by_team", (*_EVERY_ROLLUP, TAG_COLUMN)),
    Rollup("summary_no_team", GROUP_COLUMNS, facts="summary_no_team_facts"),
    Rollup("summary_team_groups",
           (*_EVERY_ROLLUP, TAG_COLUMN, "ProviderName", "SubAccountId", "SubAccountName", "x_ResourceGroupName")),
)
ROW_GROUP_ROWS = 122_880  # DuckDB's rows per row group: a scan skips or splits work by whole row groups
SMALLEST_TABLE = ROLLUPS[0].table  # every summary table holds each dated row's day: min/max of days read here
_FILL_ORDER = sorted(ROLLUPS, key=lambda r: -len(r.columns))  # wider first: a narrower one may sum a wider one
SUMMARY = Rollup(SUMMARY_TABLE, _KEYS, facts=SUMMARY_FACTS)  # the summary, described as its rollups are
_STORED = (*ROLLUPS, SUMMARY)  # from the smallest to the summary itself
TABLES = tuple((r.table, r.columns) for r in _STORED)  # (table, its group columns), in that order
_DAYS = "_summary_days"  # temp table of the days a write changed, until `settle`
_RESOURCE_KEYS = "_summary_resources"  # a tag edit's resources and their summarised value before it
_MOVED = "_summary_moved"  # the same with the value after it
_DELTA = "_summary_delta"  # signed contributions to add into the summary
_MATCHED = "_summary_matched"
_NET = "_summary_net"  # a tag edit's delta summed by every summary column, merged into each table
_REBUILT = "_summary_rebuilt"  # temp flag: `rebuild` ran since `expect_rebuild`


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The summary tables (schema migration 5 -> 6); filled by `rebuild`."""
    # Each column as `charges` has it (the schema migrations made it): this module sits below store.schema.
    types = dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'charges'"
    ).fetchall())
    columns = ", ".join(f'"{name}" {types[name]}' for name in GROUP_COLUMNS)
    money = types["EffectiveCost"]
    con.execute(
        f"""
        CREATE TABLE {SUMMARY_TABLE} ({columns}, {TAG_COLUMN} VARCHAR,
            EffectiveCost {money}, BilledCost {money}, row_count BIGINT NOT NULL)
        """
    )
    con.execute(
        """
        CREATE TABLE summary_state (
            tag_key VARCHAR NOT NULL,       -- the tag key whose effective value daily_summary.tag_value holds
            charges_rows BIGINT NOT NULL,   -- count(*) of charges when last maintained: a cheap staleness check
            built_at TIMESTAMP NOT NULL
        )
        """
    )


def create_rollups(con: duckdb.DuckDBPyConnection) -> None:
    """The rollup tables (schema migration 6 -> 7), typed as `daily_summary`'s columns; filled by `rebuild`."""
    types = dict(con.execute(
        f"SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '{SUMMARY_TABLE}'"
    ).fetchall())
    for rollup in ROLLUPS:
        columns = ", ".join(f'"{name}" {types[name]}' for name in rollup.columns)
        money = types["EffectiveCost"]
        con.execute(f"CREATE TABLE {rollup.table} ({columns}, EffectiveCost {money}, BilledCost {money}, "
                    "row_count BIGINT NOT NULL)")


def rollup_sql(rollup: Rollup, source: str, where: str = "") -> str:
    """SELECT of `source` (the summary, or rows shaped like it) summed into the rollup's groups: DECIMAL sums of
    sums, NULL where every summed value is NULL, as `sum()` over the charges themselves gives."""
    cols = ", ".join(rollup.columns)
    return f"""
        SELECT {cols}, sum(EffectiveCost) AS EffectiveCost, sum(BilledCost) AS BilledCost,
               sum(row_count) AS row_count
        FROM {source} WHERE true{where} GROUP BY ALL
    """


def create_star(con: duckdb.DuckDBPyConnection) -> None:
    """The star-shaped summary (schema migration 8 -> 9): `summary_groups` and the facts tables, filled from the
    wide `daily_summary` and `summary_no_team` tables' rows (no read of `charges`), which then become views."""
    groups = ", ".join(_GROUP_KEYS)
    star = (SUMMARY, *(r for r in ROLLUPS if r.facts))
    every = " UNION ".join(f"SELECT {groups} FROM {stored.table}" for stored in star)
    con.execute(f"CREATE TABLE {GROUPS_TABLE} AS SELECT CAST(row_number() OVER () AS INTEGER) AS group_id, * "
                f"FROM ({every})")
    for stored in star:
        values = ", ".join(f"w.{c}" if c != "group_id" else "g.group_id" for c in stored.stored_keys)
        con.execute(
            f"CREATE TABLE {stored.stored} AS SELECT {values}, w.EffectiveCost, w.BilledCost, w.row_count "
            f"FROM {stored.table} w JOIN {GROUPS_TABLE} g ON {_same_group('w', 'g')} ORDER BY w.x_ChargeDate"
        )
        con.execute(f"DROP TABLE {stored.table}")
        con.execute(f"CREATE VIEW {stored.table} AS {_view_sql(stored)}")


def _same_group(rows: str, groups: str) -> str:
    """Join condition of rows carrying the dimension columns to their summary_groups row (NULL matches NULL)."""
    return " AND ".join(f"{rows}.{c} IS NOT DISTINCT FROM {groups}.{c}" for c in _GROUP_KEYS)


def _view_sql(stored: Rollup) -> str:
    """A star-shaped table's rows with their dimension columns, in the column order the wide table had."""
    columns = ", ".join(f"f.{c}" if c in stored.stored_keys else f"g.{c}" for c in stored.columns)
    return (f"SELECT {columns}, f.EffectiveCost, f.BilledCost, f.row_count "
            f"FROM {stored.facts} f JOIN {GROUPS_TABLE} g ON g.group_id = f.group_id")


def _add_groups(cur: duckdb.DuckDBPyConnection, rows_sql: str) -> None:
    """Give each combination of dimension columns in `rows_sql` (rows with those columns) that has none a group."""
    groups = ", ".join(_GROUP_KEYS)
    cur.execute(
        f"""
        INSERT INTO {GROUPS_TABLE}
        SELECT CAST((SELECT coalesce(max(group_id), 0) FROM {GROUPS_TABLE}) + row_number() OVER () AS INTEGER), *
        FROM (SELECT {groups} FROM ({rows_sql}) EXCEPT SELECT {groups} FROM {GROUPS_TABLE})
        """
    )


def fill_rollups(cur: duckdb.DuckDBPyConnection, days: str | None = None) -> None:
    """Recompute the rollups from the summary: all of them, or only the days the query `days` selects. A rollup
    whose columns a wider one already filled holds is summed from that one (the team rollup from the team-groups
    one: a third of the summary's rows on a split cache); the one without the team is summed from the summary's
    facts by group (no dimension text is read or written)."""
    where = "" if days is None else f" AND x_ChargeDate IN ({days})"
    filled: list[Rollup] = []
    for rollup in _FILL_ORDER:
        if rollup.facts is not None:
            select = _facts_rollup_sql(rollup, where)
            source = SUMMARY_FACTS
        else:
            source = next((r.table for r in filled if set(rollup.columns) <= set(r.columns)), SUMMARY_TABLE)
            select = rollup_sql(rollup, source, where)
        cur.execute(f"DELETE FROM {rollup.stored}" + (f" WHERE true{where}" if where else ""))
        # In day order (settle appends whole days, so it stays so): a period's read skips the other days' row
        # groups, which is most of the team-groups rollup on a split cache (a level under a team: -15% CPU).
        # A table that stays within one row group has one day range whatever its order: the sort buys nothing
        # there and costs a third of the fill (1M rows: 40 of 120 ms).
        order = " ORDER BY x_ChargeDate" if _may_span_row_groups(cur, rollup.stored, source, where) else ""
        cur.execute(f"INSERT INTO {rollup.stored} {select}{order}")
        filled.append(rollup)


def _facts_rollup_sql(rollup: Rollup, where: str) -> str:
    """SELECT of the summary's facts summed into a star-shaped rollup's groups (its stored keys)."""
    keys = ", ".join(rollup.stored_keys)
    return f"""
        SELECT {keys}, sum(EffectiveCost) AS EffectiveCost, sum(BilledCost) AS BilledCost,
               sum(row_count) AS row_count
        FROM {SUMMARY_FACTS} WHERE true{where} GROUP BY ALL
    """


def _may_span_row_groups(cur: duckdb.DuckDBPyConnection, table: str, source: str, where: str) -> bool:
    """Whether `table`, once the rows summed from `source` (at most as many as it holds) are added, may hold more
    rows than one row group."""
    row = cur.execute(
        f"SELECT (SELECT count(*) FROM {table}) + (SELECT count(*) FROM {source} WHERE true{where})"
    ).fetchone()
    return row is None or int(row[0]) > ROW_GROUP_ROWS


def _grouped_sql(where: str = "") -> str:
    """SELECT of `charges` grouped as the summary is, with the tag value of summary_state's key."""
    cols = ", ".join(f"c.{name}" for name in GROUP_COLUMNS)
    return f"""
        SELECT {cols}, t.tag_value AS {TAG_COLUMN}, sum(c.EffectiveCost) AS EffectiveCost,
               sum(c.BilledCost) AS BilledCost, count(*) AS row_count
        FROM charges c
        LEFT JOIN resource_tags t ON t.resource_key = c.x_ResourceKey
             AND t.tag_key = (SELECT tag_key FROM summary_state)
        WHERE c.x_ChargeDate IS NOT NULL{where}
        GROUP BY ALL
    """


def _facts_sql(where: str = "") -> str:
    """SELECT of `charges` grouped as the summary's facts are: by day, group and the tag value of summary_state's
    key (every combination the rows hold has its group)."""
    return f"""
        SELECT c.x_ChargeDate, g.group_id, t.tag_value AS {TAG_COLUMN}, sum(c.EffectiveCost) AS EffectiveCost,
               sum(c.BilledCost) AS BilledCost, count(*) AS row_count
        FROM charges c
        JOIN {GROUPS_TABLE} g ON {_same_group('c', 'g')}
        LEFT JOIN resource_tags t ON t.resource_key = c.x_ResourceKey
             AND t.tag_key = (SELECT tag_key FROM summary_state)
        WHERE c.x_ChargeDate IS NOT NULL{where}
        GROUP BY ALL
    """


def _stamp(cur: duckdb.DuckDBPyConnection, tag_key: str | None = None) -> None:
    key = tag_key if tag_key is not None else stored_tag_key(cur) or DEFAULT_TAG_KEY
    cur.execute("DELETE FROM summary_state")
    cur.execute("INSERT INTO summary_state SELECT ?, (SELECT count(*) FROM charges), ?", [key.lower(), clock.now()])


def rebuild(cur: duckdb.DuckDBPyConnection, tag_key: str | None = None) -> None:
    """Recompute the whole summary from `charges` and `resource_tags`; `tag_key` changes the summarised key."""
    _stamp(cur, tag_key)
    cur.execute(f"DELETE FROM {SUMMARY_FACTS}")
    cur.execute(f"DELETE FROM {GROUPS_TABLE}")
    _add_groups(cur, "SELECT * FROM charges WHERE x_ChargeDate IS NOT NULL")
    cur.execute(f"INSERT INTO {SUMMARY_FACTS} {_facts_sql()}")
    fill_rollups(cur)
    cur.execute(f"DROP TABLE IF EXISTS {_DAYS}")
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {_REBUILT} AS SELECT 1 AS done")


def expect_rebuild(cur: duckdb.DuckDBPyConnection) -> None:
    """Start watching for a `rebuild` (a step that may or may not rebuild, e.g. the shared pools' refresh)."""
    cur.execute(f"DROP TABLE IF EXISTS {_REBUILT}")


def rebuilt(cur: duckdb.DuckDBPyConnection) -> bool:
    """Whether `rebuild` ran on this cursor since `expect_rebuild`."""
    return _temp_exists(cur, _REBUILT)


def _temp_exists(cur: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = cur.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND temporary", [name]).fetchone()
    return bool(row and row[0])


def stored_tag_key(cur: duckdb.DuckDBPyConnection) -> str | None:
    row = cur.execute("SELECT tag_key FROM summary_state").fetchone()
    return str(row[0]) if row else None


def _days_table(cur: duckdb.DuckDBPyConnection) -> None:
    cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_DAYS} (day DATE)")


def mark_days(cur: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date) -> None:
    """The days [start, end) are about to change (a window's rows deleted or inserted)."""
    _days_table(cur)
    cur.execute(
        f"INSERT INTO {_DAYS} SELECT CAST(d AS DATE) FROM generate_series(CAST(? AS DATE), CAST(? AS DATE) "
        "- INTERVAL 1 DAY, INTERVAL 1 DAY) g(d)",
        [start, end],
    )


def mark_days_of(cur: duckdb.DuckDBPyConnection, rows_sql: str, params: object = None) -> None:
    """The charge days of the rows `rows_sql` selects (`SELECT c.x_ChargeDate FROM charges c …`) change."""
    _days_table(cur)
    cur.execute(f"INSERT INTO {_DAYS} SELECT DISTINCT * FROM ({rows_sql})", params)


def settle(cur: duckdb.DuckDBPyConnection) -> None:
    """Rebuild the days marked since the last settle from `charges` (end of a window's write)."""
    if not _temp_exists(cur, _DAYS):
        return
    if stored_tag_key(cur) is None:  # never built (a cache migrated from a future-less state): build it all
        rebuild(cur)
        return
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {_DAYS}_set AS SELECT DISTINCT day FROM {_DAYS} WHERE day IS NOT NULL")
    days = f" AND c.x_ChargeDate IN (SELECT day FROM {_DAYS}_set)"
    _add_groups(cur, f"SELECT * FROM charges c WHERE true{days}")
    cur.execute(f"DELETE FROM {SUMMARY_FACTS} WHERE x_ChargeDate IN (SELECT day FROM {_DAYS}_set)")
    cur.execute(f"INSERT INTO {SUMMARY_FACTS} {_facts_sql(days)}")
    fill_rollups(cur, f"SELECT day FROM {_DAYS}_set")
    cur.execute(f"DROP TABLE {_DAYS}_set")
    cur.execute(f"DROP TABLE {_DAYS}")
    _stamp(cur)


def begin_resource_change(cur: duckdb.DuckDBPyConnection, resource_ids: list[str]) -> bool:
    """Before a tag edit on these resources: note each one's summarised tag value (no rows are read yet).

    Returns False when the summary is not built (nothing to keep true; reads use `charges`).
    """
    if stored_tag_key(cur) is None:
        return False
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_RESOURCE_KEYS} AS
        SELECT k.resource_key, t.tag_value AS old_value FROM resource_keys k
        LEFT JOIN resource_tags t ON t.resource_key = k.resource_key AND t.tag_key = (SELECT tag_key FROM summary_state)
        WHERE k.ResourceId IN (SELECT lower(unnest(?::VARCHAR[])))
        """,
        [resource_ids],
    )
    return True


def take_out_resources(cur: duckdb.DuckDBPyConnection) -> None:
    """Between `begin_resource_change` and a step that re-marks the resources' rows with other shared pools: their
    rows as they are now (old tag value, old pool) leave the summary, into the pending delta."""
    rows = _contributions(-1, f"m.old_value AS {TAG_COLUMN}", _RESOURCE_KEYS)
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {_DELTA} AS {rows}")


def end_resource_change(cur: duckdb.DuckDBPyConnection) -> None:
    """After the edit: the rows of the resources whose summarised value changed move from the old value's groups
    to the new one's, in place (one scan of `charges`, restricted to those resources; none when no value moved).

    After `take_out_resources` every resource's rows come back instead, with their new value and pool marker.
    """
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_MOVED} AS
        SELECT r.resource_key, r.old_value, t.tag_value AS new_value FROM {_RESOURCE_KEYS} r
        LEFT JOIN resource_tags t ON t.resource_key = r.resource_key AND t.tag_key = (SELECT tag_key FROM summary_state)
        """
    )
    if _temp_exists(cur, _DELTA):
        cur.execute(f"INSERT INTO {_DELTA} {_contributions(1, f'm.new_value AS {TAG_COLUMN}', _MOVED)}")
        _merge(cur, f"SELECT * FROM {_DELTA}")
    elif cur.execute(f"SELECT count(*) FROM {_MOVED} WHERE old_value IS DISTINCT FROM new_value").fetchone() != (0,):
        # Only the tag value differs between a row's old and new group: one pass gives both sides of the move.
        cols = ", ".join(GROUP_COLUMNS)
        moved = _contributions(1, "m.old_value, m.new_value", _MOVED, "m.old_value IS DISTINCT FROM m.new_value")
        _merge(cur, f"""
            WITH moved AS ({moved})
            SELECT {cols}, old_value AS {TAG_COLUMN}, -EffectiveCost AS EffectiveCost, -BilledCost AS BilledCost,
                   -row_count AS row_count FROM moved
            UNION ALL
            SELECT {cols}, new_value, EffectiveCost, BilledCost, row_count FROM moved
        """, team_only=True)
    for table in (_MOVED, _DELTA, _RESOURCE_KEYS):
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    _stamp(cur)


def _merge(cur: duckdb.DuckDBPyConnection, delta_sql: str, *, team_only: bool = False) -> None:
    """Add the signed rows `delta_sql` selects into the summary and each rollup: the groups it shares with a table
    are updated in place, new ones inserted, emptied ones deleted (a join on every group column that reads the
    small delta, never a re-aggregation of the table). The delta is read once, then summed per table.

    `team_only`: the delta only moves rows from one tag value to another, so the team-free tables keep every
    figure and are left alone."""
    keys = ", ".join(_KEYS)
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_NET} AS
        WITH delta AS ({delta_sql})
        SELECT {keys}, sum(EffectiveCost) AS EffectiveCost, sum(BilledCost) AS BilledCost, sum(row_count) AS row_count
        FROM delta GROUP BY ALL
        """
    )
    _add_groups(cur, f"SELECT * FROM {_NET}")  # a moved row may land in a combination no row had before
    for stored in _STORED:
        if not (team_only and TAG_COLUMN not in stored.columns):
            _merge_into(cur, stored)
    cur.execute(f"DROP TABLE {_NET}")


def _merge_into(cur: duckdb.DuckDBPyConnection, stored: Rollup) -> None:
    """The pending delta, summed by the table's columns, into the table its rows are kept in (by group for a
    star-shaped one); groups whose delta nets to nothing are left alone."""
    table, columns = stored.stored, stored.stored_keys
    keys = ", ".join(columns)
    same = " AND ".join(f"s.{k} IS NOT DISTINCT FROM d.{k}" for k in columns)
    source = _NET
    if stored.facts is not None:
        values = ", ".join("g.group_id" if k == "group_id" else f"n.{k}" for k in columns)
        source = (f"(SELECT {values}, n.EffectiveCost, n.BilledCost, n.row_count FROM {_NET} n "
                  f"JOIN {GROUPS_TABLE} g ON {_same_group('n', 'g')})")
    net = f"""
        SELECT {keys}, sum(EffectiveCost) AS EffectiveCost, sum(BilledCost) AS BilledCost,
               sum(row_count) AS row_count
        FROM {source} GROUP BY ALL
        HAVING sum(row_count) <> 0 OR sum(EffectiveCost) <> 0 OR sum(BilledCost) <> 0
    """
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_MATCHED} AS
        WITH net AS ({net})
        SELECT s.rowid AS summary_row, d.* FROM net d LEFT JOIN {table} s ON {same}
        """
    )
    # sum() semantics, as a rebuild would give: a NULL side adds nothing, NULL + NULL stays NULL.
    added = {
        money: f"CASE WHEN m.{money} IS NULL THEN s.{money} WHEN s.{money} IS NULL THEN m.{money} "
               f"ELSE s.{money} + m.{money} END"
        for money in ("EffectiveCost", "BilledCost")
    }
    cur.execute(
        f"""
        UPDATE {table} s SET EffectiveCost = {added["EffectiveCost"]}, BilledCost = {added["BilledCost"]},
               row_count = s.row_count + m.row_count
        FROM {_MATCHED} m WHERE s.rowid = m.summary_row
        """
    )
    cur.execute(
        f"INSERT INTO {table} BY NAME SELECT {keys}, EffectiveCost, BilledCost, row_count "
        f"FROM {_MATCHED} WHERE summary_row IS NULL"
    )
    cur.execute(
        f"DELETE FROM {table} WHERE rowid IN (SELECT summary_row FROM {_MATCHED} WHERE summary_row IS NOT NULL)"
        " AND row_count = 0"
    )
    cur.execute(f"DROP TABLE {_MATCHED}")


def _contributions(sign: int, values: str, resources: str, where: str = "true") -> str:
    """`charges` rows of the resources in the temp table `resources` (alias m), grouped as the summary is, by the
    tag value(s) `values` (columns of m) instead of the current one."""
    cols = ", ".join(f"c.{name}" for name in GROUP_COLUMNS)
    return f"""
        SELECT {cols}, {values},
               {sign} * sum(c.EffectiveCost) AS EffectiveCost, {sign} * sum(c.BilledCost) AS BilledCost,
               {sign} * count(*) AS row_count
        FROM charges c JOIN {resources} m ON m.resource_key = c.x_ResourceKey
        WHERE c.x_ChargeDate IS NOT NULL AND {where}
        GROUP BY ALL
    """


# --- reading -----------------------------------------------------------------------------------------------

_reads = {"enabled": True}


@contextmanager
def charges_only() -> Iterator[None]:
    """Read models answer from `charges` inside this block (the equality guard, `doctor`, the bench's
    "before" figures). Process-wide: not for use while another thread reads."""
    before = _reads["enabled"]
    _reads["enabled"] = False
    try:
        yield
    finally:
        _reads["enabled"] = before


@dataclass(frozen=True)
class SummaryState:
    tag_key: str


# The state read once for the read-model call running in this thread (cursor id, state): a context variable, so
# workers on other threads read their own.
_pinned: ContextVar[tuple[int, SummaryState | None] | None] = ContextVar("summary_state_pinned", default=None)


def _read_state(cur: duckdb.DuckDBPyConnection) -> SummaryState | None:
    try:
        row = cur.execute(
            "SELECT tag_key, charges_rows = (SELECT count(*) FROM charges) FROM summary_state"
        ).fetchone()
    except duckdb.CatalogException:  # a read-only cache of an older schema
        return None
    if row is None or not row[1]:
        return None
    return SummaryState(str(row[0]))


def current(cur: duckdb.DuckDBPyConnection) -> SummaryState | None:
    """The summary's state when read models may answer from it: built, and `charges` has the row count it
    was last maintained with (a write that bypassed the window functions makes it stale: read `charges`).

    Inside `pinned(cur)` the state read when the block began (one count of `charges` per read-model call)."""
    if not _reads["enabled"]:
        return None
    pin = _pinned.get()
    if pin is not None and pin[0] == id(cur):
        return pin[1]
    return _read_state(cur)


@contextmanager
def pinned(cur: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """For one read-model call on `cur`: read the summary's state once, and every `current(cur)` inside gives it
    (it changes only when a write bypasses the summary, and a read-model call writes nothing). Nested blocks keep
    the outermost state."""
    pin = _pinned.get()
    if pin is not None and pin[0] == id(cur):
        yield
        return
    token = _pinned.set((id(cur), _read_state(cur)))
    try:
        yield
    finally:
        _pinned.reset(token)


def whole_key(cur: duckdb.DuckDBPyConnection) -> str | None:
    """Inside a write: the summarised tag key when the summary holds every row of `charges` right now (built,
    the same row count, no days or tag edit pending), so a derived table may be computed from it; else None."""
    if _temp_exists(cur, _DAYS) or _temp_exists(cur, _RESOURCE_KEYS):
        return None
    state = _read_state(cur)
    return state.tag_key if state is not None else None


def differences(cur: duckdb.DuckDBPyConnection, limit: int = 20) -> list[str]:
    """How the stored summary differs from one recomputed now (one line each); empty when they match."""
    if stored_tag_key(cur) is None:
        return ["daily_summary has never been built; any write (or `doctor --fix`) builds it"]
    problems: list[str] = []
    groups = ", ".join(_GROUP_KEYS)
    repeated = cur.execute(
        f"SELECT count(*) FROM (SELECT {groups} FROM {GROUPS_TABLE} GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()
    if repeated is not None and repeated[0]:
        # A tag edit's delta would join each of a combination's groups and be added more than once.
        problems.append(f"{GROUPS_TABLE}: combinations of dimension columns with more than one group: {repeated[0]:,}")
    stamped = cur.execute("SELECT charges_rows, (SELECT count(*) FROM charges) FROM summary_state").fetchone()
    if stamped is not None and stamped[0] != stamped[1]:
        problems.append(f"summary_state: built over {stamped[0]:,} charge rows, the cache has {stamped[1]:,}")
    keys = ", ".join(_KEYS)
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _summary_expected AS {_grouped_sql()}")
    rows = cur.execute(
        f"""
        WITH stored AS (SELECT {keys}, sum(EffectiveCost) AS e, sum(BilledCost) AS b, sum(row_count) AS n
                        FROM {SUMMARY_TABLE} GROUP BY ALL),
             expected AS (SELECT {keys}, EffectiveCost AS e, BilledCost AS b, row_count AS n FROM _summary_expected)
        SELECT coalesce(s.x_ChargeDate, x.x_ChargeDate), coalesce(s.BillingCurrency, x.BillingCurrency),
               coalesce(s.ServiceName, x.ServiceName), coalesce(s.x_ResourceGroupName, x.x_ResourceGroupName),
               coalesce(s.{TAG_COLUMN}, x.{TAG_COLUMN}), s.e, x.e, s.b, x.b, s.n, x.n
        FROM stored s FULL OUTER JOIN expected x ON {" AND ".join(f"s.{k} IS NOT DISTINCT FROM x.{k}" for k in _KEYS)}
        WHERE s.e IS DISTINCT FROM x.e OR s.b IS DISTINCT FROM x.b OR s.n IS DISTINCT FROM x.n
        ORDER BY 1, 2, 3, 4, 5 LIMIT {int(limit)}
        """
    ).fetchall()
    for day, currency, service, group, tag, se, xe, sb, xb, sn, xn in rows:
        where = f"{day} {currency} service={service} resource-group={group} tag={tag}"
        problems.append(
            f"daily_summary {where}: stored effective {se} billed {sb} rows {sn}, "
            f"charges give effective {xe} billed {xb} rows {xn}"
        )
    for rollup in ROLLUPS:
        problems += _rollup_differences(cur, rollup, limit)
    cur.execute("DROP TABLE _summary_expected")
    return problems


def _rollup_differences(cur: duckdb.DuckDBPyConnection, rollup: Rollup, limit: int) -> list[str]:
    """How a rollup differs from `charges` summed by its columns (`_summary_expected` summed again)."""
    keys = ", ".join(rollup.columns)
    rest = [k for k in rollup.columns if k not in ("x_ChargeDate", "BillingCurrency")]
    rows = cur.execute(
        f"""
        WITH stored AS (SELECT {keys}, sum(EffectiveCost) AS e, sum(BilledCost) AS b, sum(row_count) AS n
                        FROM {rollup.table} GROUP BY ALL),
             expected AS (SELECT {keys}, EffectiveCost AS e, BilledCost AS b, row_count AS n
                          FROM ({rollup_sql(rollup, "_summary_expected")}))
        SELECT {", ".join(f"coalesce(s.{k}, x.{k})" for k in ("x_ChargeDate", "BillingCurrency", *rest))},
               s.e, x.e, s.b, x.b, s.n, x.n
        FROM stored s FULL OUTER JOIN expected x
             ON {" AND ".join(f"s.{k} IS NOT DISTINCT FROM x.{k}" for k in rollup.columns)}
        WHERE s.e IS DISTINCT FROM x.e OR s.b IS DISTINCT FROM x.b OR s.n IS DISTINCT FROM x.n
        ORDER BY ALL LIMIT {int(limit)}
        """
    ).fetchall()
    problems = []
    for row in rows:
        day, currency, *values = row[: 2 + len(rest)]
        se, xe, sb, xb, sn, xn = row[2 + len(rest):]
        groups = " ".join(f"{k}={v}" for k, v in zip(rest, values, strict=True))
        problems.append(
            f"{rollup.table} {day} {currency} {groups}: stored effective {se} billed {sb} rows {sn}, "
            f"charges give effective {xe} billed {xb} rows {xn}"
        )
    return problems
