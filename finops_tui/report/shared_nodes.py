"""Shared cost read primitives: the pools a cache applied, their shares per recipient, and node markers.

Reads only the tables `allocation.shared.refresh_shared` keeps (shared_pools, shared_splits and the
charges.x_SharedPool marker); never shared.toml. The tree (report.shared_tree), the overview and the
chargeback build on these, so a figure reads the same in each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

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
    shares (recipient None): fewer rows, and fewer Decimals to convert, which is most of the cost here.
    """
    if not pools:
        return []
    col = split_column(metric)
    params: dict[str, object] = {
        "s": period.start, "e": period.end, "ps": previous.start, "pe": previous.end, "cur": currency,
        "lo": min(period.start, previous.start), "hi": max(period.end, previous.end),
        "pools": [p.index for p in pools],
    }
    recipient_sql = ""
    if recipient is not None:
        if recipient[0] is None:
            recipient_sql = " AND recipient IS NULL"
        else:
            recipient_sql = " AND recipient = $r"
            params["r"] = recipient[0]
    series = (
        "list(datediff('day', $s, day) ORDER BY day) FILTER (WHERE day >= $s AND day < $e), "
        "list(cost ORDER BY day) FILTER (WHERE day >= $s AND day < $e)"
        if daily else "NULL, NULL"
    )
    pool_sql = "0" if by == "recipient" else "pool_index"
    recipient_col = "NULL::VARCHAR" if by == "pool" else "recipient"
    rows = cur.execute(
        f"""
        WITH d AS (
            SELECT {pool_sql} AS pool_index, {recipient_col} AS recipient, day, sum({col}) AS cost FROM shared_splits
            WHERE currency = $cur AND day >= $lo AND day < $hi AND list_contains($pools, pool_index){recipient_sql}
            GROUP BY 1, 2, 3
        )
        SELECT pool_index, recipient,
               sum(cost) FILTER (WHERE day >= $s AND day < $e), sum(cost) FILTER (WHERE day >= $ps AND day < $pe),
               {series}
        FROM d GROUP BY 1, 2
        """,
        params,
    ).fetchall()
    out = []
    for index, who, cost, prev, offsets, costs in rows:
        series_values = [ZERO] * period.days
        for offset, value in zip(offsets or (), costs or (), strict=True):
            series_values[offset] = value
        out.append(ShareRow(int(index), who, cost or ZERO, prev or ZERO, series_values if daily else []))
    return out


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
