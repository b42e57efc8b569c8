"""Shared cost read primitives: the pools a cache applied, their shares per recipient, and node markers.

Reads only the tables `allocation.shared.refresh_shared` keeps (shared_pools, shared_splits and the
charges.x_SharedPool marker); never shared.toml. The tree (report.shared_tree), the overview and the
chargeback build on these, so a figure reads the same in each. The tree's expansions read the splits from
memory (`SplitsMemo`), keyed on the version `refresh_shared` gives them in every write.
"""

from __future__ import annotations

import datetime as dt
import decimal
import operator
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from itertools import accumulate
from typing import Any, TypeVar

import duckdb

from finops_tui.basis.metrics import metric_column
from finops_tui.basis.periods import Period

ZERO = Decimal(0)
SHARED_PREFIX = "shared: "
_SPLIT_COLUMNS = {"EffectiveCost": "effective", "BilledCost": "billed"}


@dataclass(frozen=True, slots=True)
class PoolInfo:
    """A pool as the cache last applied it."""

    index: int  # 1-based position in shared.toml
    name: str
    method: str
    to_key: str

    @property
    def label(self) -> str:
        return SHARED_PREFIX + self.name


@dataclass(frozen=True, slots=True)
class PoolShare:
    """What a "shared: <pool>" node (or a recipient's share under one) stands for; the tree's detail shows it."""

    pool_index: int
    pool: str
    method: str
    to_key: str
    recipient: str | None  # whose share; None for the pool's whole cost or the part nobody could take
    whole: bool  # the pool's whole cost, above its key's level: expands to each recipient's share
    pool_cost: Decimal  # the pool's whole cost in the period (this currency)

    @property
    def expandable(self) -> bool:
        return self.whole

    def fraction(self, cost: Decimal) -> Decimal | None:
        """`cost` as a part of the pool (0..1); None when the pool costs nothing in the period."""
        return cost / self.pool_cost if self.pool_cost else None


class PoolKey(str):
    """The key of a "shared: <pool>" node: reads as its label, and carries the pool's position for the path."""

    pool_index: int

    def __new__(cls, name: str, pool_index: int) -> PoolKey:
        key = super().__new__(cls, SHARED_PREFIX + name)
        key.pool_index = pool_index
        return key


def applied_pools(cur: duckdb.DuckDBPyConnection) -> list[PoolInfo]:
    rows = cur.execute("SELECT pool_index, name, method, to_key FROM shared_pools ORDER BY pool_index").fetchall()
    return [PoolInfo(int(i), n, m, k) for i, n, m, k in rows]


def direct_filter(pools: Sequence[PoolInfo], every_pool: Sequence[PoolInfo]) -> str:
    """`AND …` over `charges c` keeping the rows no pool in `pools` shares (the others stay direct cost)."""
    if not pools:
        return ""
    if len(pools) == len(every_pool):
        return " AND c.x_SharedPool IS NULL"
    listed = ", ".join(str(p.index) for p in pools)
    return f" AND (c.x_SharedPool IS NULL OR c.x_SharedPool NOT IN ({listed}))"


def split_column(metric: str) -> str:
    return _SPLIT_COLUMNS[metric_column(metric)]


@dataclass(frozen=True, slots=True)
class ShareRow:
    pool_index: int
    recipient: str | None
    cost: Decimal
    previous: Decimal
    daily: list[Decimal]  # one value per day of the period


def share_rows(
    cur: duckdb.DuckDBPyConnection, pools: Sequence[PoolInfo], period: Period, previous: Period, currency: str,
    metric: str, *, recipient: tuple[str | None] | None = None, daily: bool = True, by: str = "both",
) -> list[ShareRow]:
    """Each (pool, recipient) share in the period and the previous one; `recipient` = (value,) keeps one.

    `by="recipient"` sums each recipient's shares of all `pools` (pool_index 0), `by="pool"` each pool's
    shares (recipient None).
    """
    if not pools:
        return []
    params = _window(period, previous, currency)
    params["pools"] = [p.index for p in pools]
    which = "list_contains($pools, s.pool_index)"
    if recipient is not None:
        which += " AND " + _recipient_sql(recipient[0], params)
    pool_sql = "0" if by == "recipient" else "s.pool_index"
    recipient_col = "NULL::VARCHAR" if by == "pool" else "s.recipient"
    sql = _split_sums_sql(split_column(metric), pool_sql, recipient_col, "TRUE", which, daily=daily)
    rows, _costs = _share_sums(cur.execute(sql, params).fetchall(), period.days if daily else 0)
    return rows


def _window(period: Period, previous: Period, currency: str) -> dict[str, object]:
    return {"s": period.start, "e": period.end, "ps": previous.start, "pe": previous.end, "cur": currency}


def _recipient_sql(recipient: str | None, params: dict[str, object]) -> str:
    if recipient is None:
        return "s.recipient IS NULL"
    params["r"] = recipient
    return "s.recipient = $r"


def _split_sums_sql(col: str, pool_sql: str, recipient_sql: str, mine: str, which: str, *, daily: bool = True,
                    join_pools: bool = False) -> str:
    """shared_splits summed per (`pool_sql`, `recipient_sql`, `mine`) and day of the period (with `daily`;
    else the period as one), the previous period as one: `_share_sums` adds them up.

    A few hundred small rows, added up in Python, cost less than aggregating them again in SQL into lists and
    handing those over: that conversion was most of the time of an expansion's shares. Money comes back as
    text (exact), since DuckDB hands a DECIMAL(38,12) to Python several times slower than a string. The
    columns line up with `_POOLS_SQL`, so both can come back from one statement. `join_pools` joins
    shared_pools as `p` for `which` and the grouping to use.
    """
    day_key = "s.day - $s" if daily else "0"
    join = " JOIN shared_pools p ON p.pool_index = s.pool_index" if join_pools else ""
    return f"""
        SELECT {pool_sql} AS pool_index, {recipient_sql} AS recipient, {mine} AS mine,
               CASE WHEN s.day >= $s AND s.day < $e THEN {day_key} END AS day_offset,
               s.day >= $ps AND s.day < $pe AS before, CAST(sum(s.{col}) AS VARCHAR) AS cost,
               NULL::VARCHAR AS method, NULL::VARCHAR AS to_key
        FROM shared_splits s{join}
        WHERE s.currency = $cur AND (s.day >= $s AND s.day < $e OR s.day >= $ps AND s.day < $pe) AND {which}
        GROUP BY 1, 2, 3, 4, 5"""


_POOLS_SQL = "SELECT pool_index, name, NULL, NULL, NULL, NULL, method, to_key FROM shared_pools"


def _share_sums(rows: Sequence[tuple[Any, ...]], days: int) -> tuple[list[ShareRow], dict[int, Decimal]]:
    """The `mine` rows' (pool, recipient) shares with `days` daily values (none when 0), and each group's pool
    cost in the period over all rows (a pool's whole cost when `mine` picks one recipient)."""
    sums: dict[tuple[int, str | None], tuple[list[Decimal], list[Decimal]]] = {}  # [cost, previous], daily
    pool_cost: dict[int, Decimal] = {}
    with decimal.localcontext(_EXACT):
        for index, who, mine, offset, before, text, _method, _to_key in rows:
            value = Decimal(text)
            index = int(index)
            if offset is not None:
                pool_cost[index] = pool_cost.get(index, ZERO) + value
            if not mine:
                continue
            totals, daily = sums.setdefault((index, who), ([ZERO, ZERO], [ZERO] * days))
            if offset is not None:
                totals[0] += value
                if days:
                    daily[offset] += value
            if before:
                totals[1] += value
    ordered = [ShareRow(index, who, cost, previous, daily)
               for (index, who), ([cost, previous], daily) in sorted(sums.items(), key=_share_order)]
    return ordered, pool_cost


def _share_order(item: tuple[tuple[int, str | None], object]) -> tuple[int, bool, str]:
    (index, who), _sums = item
    return index, who is None, who or ""


@dataclass(frozen=True, slots=True)
class ExpansionShares:
    """What one tree expansion with shared costs on needs besides the direct cost."""

    pools: list[PoolInfo]  # every pool the cache applied, in order
    rows: list[ShareRow]
    pool_cost: dict[int, Decimal]  # each pool's whole cost in the period ("recipient" and "pool" groupings)


def expansion_shares(
    cur: duckdb.DuckDBPyConnection, level_names: Sequence[str], period: Period, previous: Period, currency: str,
    metric: str, *, group: str | None, recipient: str | None = None, pool_index: int | None = None,
) -> ExpansionShares:
    """The applied pools and the shares an expansion of a tree over `level_names` (dimension names, `tag:team`)
    shows. A pool applies when its key is one of the levels. `group`:

    - "top": the first level's children. The pools to the first level's key summed per recipient (pool_index
      0); every other applying pool per pool (recipient None), its whole cost;
    - "recipient": the children of the first level's `recipient`: its share of each pool to that key;
    - "pool": the recipients of the pool at `pool_index`;
    - None: the pools only (deeper levels need only which rows the pools took).

    One small statement when this version of shared_splits is in the memo (see `SplitsMemo`), one more to
    load it when not; a cache whose splits carry no version (written before versions) gets one statement
    that reads pools and shares together.
    """
    if group is None:
        return ExpansionShares(_pool_infos(cur.execute(_POOLS_SQL).fetchall()), [], {})
    keys = [name.removeprefix("tag:") for name in level_names if name.startswith("tag:")]
    first = level_names[0].removeprefix("tag:") if level_names[0].startswith("tag:") else None
    found = cur.execute(_POOLS_AND_VERSION_SQL).fetchall()
    pools = _pool_infos([r for r in found if r[0] is not None])
    if not pools:
        return ExpansionShares([], [], {})
    version = next((r[1] for r in found if r[0] is None), None)
    if version is None:
        return _shares_from_sql(cur, keys, first, period, previous, currency, metric, group, recipient, pool_index)
    splits = MEMO.splits(cur, str(version), currency, split_column(metric), min(period.start, previous.start),
                         max(period.end, previous.end))
    if splits is None:  # written in between: this statement's snapshot is what the SQL path reads
        return _shares_from_sql(cur, keys, first, period, previous, currency, metric, group, recipient, pool_index)
    rows, pool_cost = splits.shares(pools, keys, first, period, previous, group, recipient, pool_index)
    return ExpansionShares(pools, rows, pool_cost)


def _shares_from_sql(
    cur: duckdb.DuckDBPyConnection, keys: list[str], first: str | None, period: Period, previous: Period,
    currency: str, metric: str, group: str, recipient: str | None, pool_index: int | None,
) -> ExpansionShares:
    """`expansion_shares` read in one statement, pools and shares together."""
    params = _window(period, previous, currency)
    if group == "top":
        params.update(keys=keys, first=first)
        parts = ("CASE WHEN p.to_key = $first THEN 0 ELSE s.pool_index END",
                 "CASE WHEN p.to_key = $first THEN s.recipient END", "TRUE", "list_contains($keys, p.to_key)")
    elif group == "recipient":
        params["first"] = first
        parts = ("s.pool_index", "NULL::VARCHAR", _recipient_sql(recipient, params), "p.to_key = $first")
    elif group == "pool":
        params["pool"] = pool_index
        parts = ("s.pool_index", "s.recipient", "TRUE", "s.pool_index = $pool")
    else:
        raise ValueError(f"unknown grouping {group!r}")
    sql = _split_sums_sql(split_column(metric), *parts, join_pools=True) + f"\n        UNION ALL {_POOLS_SQL}"
    found = cur.execute(sql, params).fetchall()
    pools = [r for r in found if r[7] is not None]  # a pool's own row: to_key is never NULL
    rows, pool_cost = _share_sums([r for r in found if r[7] is None], period.days)
    if group == "recipient":
        rows = [replace(r, recipient=recipient) for r in rows]
    return ExpansionShares(_pool_infos(pools), rows, pool_cost)


# --- shared_splits in memory, per version -------------------------------------------------------------------

# `allocation.shared.refresh_shared` gives shared_splits a new version (a random token in its table comment)
# in the same transaction as every rewrite, so a version names one content of the table, in any cache file.
_SPLITS_TABLE = (
    "duckdb_tables() WHERE table_name = 'shared_splits' AND database_name = current_database()"
    " AND schema_name = current_schema()"
)
SPLITS_VERSION_SQL = f"SELECT comment FROM {_SPLITS_TABLE}"
_POOLS_AND_VERSION_SQL = (
    f"{_POOLS_SQL} UNION ALL SELECT NULL, comment, NULL, NULL, NULL, NULL, NULL, NULL FROM {_SPLITS_TABLE}"
)
K = TypeVar("K")
_EXACT = decimal.Context(prec=80)  # sums of DECIMAL(38,12) values stay exact (the default context keeps 28 digits)


@dataclass(frozen=True, slots=True)
class _Series:
    """One metric's shares per day from the memo's first day, and how many days before each index had a split
    row (a row of zero counts: it makes a node in SQL too)."""

    values: list[Decimal]
    rows_before: list[int]

    def window(self, lo: int, days: int) -> tuple[bool, Decimal, list[Decimal]]:
        """(any split row, the sum, the values per day) over the `days` days from index `lo` (may be outside)."""
        start, end = max(lo, 0), min(lo + days, len(self.values))
        if start >= end:
            return False, ZERO, [ZERO] * days
        part = self.values[start:end]
        daily = [ZERO] * (start - lo) + part + [ZERO] * (lo + days - end)
        return self.rows_before[end] > self.rows_before[start], sum(part, ZERO), daily


@dataclass(frozen=True, slots=True)
class _Splits:
    """One currency's and metric's shared_splits over some days at one version, as the tree's expansions
    group them."""

    start: dt.date
    pairs: dict[tuple[int, str | None], _Series]  # (pool, recipient)
    by_key: dict[tuple[str, str | None], _Series]  # (pool key, recipient), over every pool to that key
    by_pool: dict[int, _Series]  # a pool's whole cost, over its recipients

    def shares(
        self, pools: Sequence[PoolInfo], keys: Sequence[str], first: str | None, period: Period, previous: Period,
        group: str, recipient: str | None, pool_index: int | None,
    ) -> tuple[list[ShareRow], dict[int, Decimal]]:
        """What `_shares_from_sql` reads, from memory: the same rows and pool costs."""
        lo, days = (period.start - self.start).days, period.days
        before_lo, before_days = (previous.start - self.start).days, previous.days
        rows: list[ShareRow] = []
        pool_cost: dict[int, Decimal] = {}

        def add(index: int, who: str | None, series: _Series | None) -> None:
            if series is None:
                return
            seen, cost, daily = series.window(lo, days)
            seen_before, before, _ = series.window(before_lo, before_days)
            if seen or seen_before:
                rows.append(ShareRow(index, who, cost, before, daily))

        with decimal.localcontext(_EXACT):
            if group == "top":
                for (key, who), series in self.by_key.items():
                    if key == first:
                        add(0, who, series)
                targets = [p.index for p in pools if p.to_key in keys and p.to_key != first]
            elif group == "recipient":
                targets = [p.index for p in pools if p.to_key == first]
                for index in targets:
                    add(index, recipient, self.pairs.get((index, recipient)))
            elif group == "pool":
                assert pool_index is not None
                targets = [pool_index]
                for (index, who), series in self.pairs.items():
                    if index == pool_index:
                        add(index, who, series)
            else:
                raise ValueError(f"unknown grouping {group!r}")
            for index in targets:
                whole = self.by_pool.get(index)
                if whole is None:
                    continue
                seen, cost, _ = whole.window(lo, days)
                if seen:
                    pool_cost[index] = cost
                if group == "top":
                    add(index, None, whole)
        rows.sort(key=lambda r: (r.pool_index, r.recipient is None, r.recipient or ""))
        return rows, pool_cost


def _load_splits(
    cur: duckdb.DuckDBPyConnection, currency: str, col: str, start: dt.date, end: dt.date
) -> tuple[str | None, _Splits]:
    """One currency's splits in column `col` over the days [start, end) and, from the same statement (one
    snapshot), the version they are. One row per (pool, recipient) with its days as lists: converting them
    is most of the load."""
    found = cur.execute(
        f"""
        SELECT s.pool_index, s.recipient, any_value(p.to_key), list(s.day - $start), list(CAST(s.{col} AS VARCHAR))
        FROM shared_splits s JOIN shared_pools p ON p.pool_index = s.pool_index
        WHERE s.currency = $cur AND s.day >= $start AND s.day < $end
        GROUP BY 1, 2
        UNION ALL SELECT NULL, ({SPLITS_VERSION_SQL}), NULL, NULL, NULL
        """,
        {"cur": currency, "start": start, "end": end},
    ).fetchall()
    version = next((r[1] for r in found if r[0] is None), None)
    days = (end - start).days
    pairs: dict[tuple[int, str | None], _Series] = {}
    key_of: dict[int, str] = {}
    by_key: dict[tuple[str, str | None], _Series] = {}
    by_pool: dict[int, _Series] = {}
    with decimal.localcontext(_EXACT):
        for index, who, key, offsets, texts in found:
            if index is None:
                continue
            key_of[index] = key
            series = _Series([ZERO] * days, [0] * (days + 1))
            for offset, value in zip(offsets, map(Decimal, texts), strict=True):
                series.values[offset] += value  # a (pool, day, currency, recipient) has one row; += if ever two
                series.rows_before[offset + 1] = 1
            series.rows_before[:] = accumulate(series.rows_before)
            pairs[(index, who)] = series
        for (index, who), series in pairs.items():
            _add_into(by_key, (key_of[index], who), series)
            _add_into(by_pool, index, series)
    return (str(version) if version is not None else None), _Splits(start, pairs, by_key, by_pool)


def _add_into(totals: dict[K, _Series], key: K, series: _Series) -> None:
    """totals[key] += series, day by day (inside the exact context)."""
    found = totals.get(key)
    if found is None:
        totals[key] = _Series(list(series.values), list(series.rows_before))
        return
    found.values[:] = map(operator.add, found.values, series.values)
    found.rows_before[:] = map(operator.add, found.rows_before, series.rows_before)


class SplitsMemo:
    """shared_splits per (version, currency, metric, days) in memory: an expansion sums a few series instead of
    running a query (a statement costs milliseconds however small its table), and every node of the tree in
    the same period reads the same entry. A version is never reused, so an entry is never stale; the last few
    are kept, for the caches, currencies and periods in use."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, str, str, dt.date, dt.date], _Splits] = OrderedDict()
        self._lock = threading.Lock()

    def splits(
        self, cur: duckdb.DuckDBPyConnection, version: str, currency: str, col: str, start: dt.date, end: dt.date
    ) -> _Splits | None:
        """The splits of `version` in `currency` and column `col` over [start, end); None when the cache holds
        another version by now."""
        key = (version, currency, col, start, end)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        loaded_version, loaded = _load_splits(cur, currency, col, start, end)
        if loaded_version is None:
            return None
        with self._lock:
            self._entries[(loaded_version, currency, col, start, end)] = loaded
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return loaded if loaded_version == version else None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


MEMO = SplitsMemo()


def _pool_infos(rows: Sequence[tuple[Any, ...]]) -> list[PoolInfo]:
    return sorted((PoolInfo(int(r[0]), r[1], r[6], r[7]) for r in rows), key=lambda p: p.index)


def pool_costs(rows: Sequence[ShareRow]) -> dict[int, Decimal]:
    """Each pool's whole cost in the period, from its shares (they sum to it exactly)."""
    totals: dict[int, Decimal] = {}
    for row in rows:
        totals[row.pool_index] = totals.get(row.pool_index, ZERO) + row.cost
    return totals


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """`2026-11` -> (2026-11-01, 2026-12-01)."""
    start = dt.date.fromisoformat(month + "-01")
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end
