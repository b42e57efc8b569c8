"""Tag key read models: the keys present and what they cover, their folded spellings, their values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb

from finops_tui.basis.metrics import metric_column, resolve_currency
from finops_tui.basis.periods import Period

ZERO = Decimal(0)


def folded_keys(cur: duckdb.DuckDBPyConnection, key: str, *, fold_case: bool = True) -> list[str]:
    """The provider spellings folded into canonical `key` (`Team`, `TEAM`, an alias such as `owner_team`).

    Most used first; the canonical spelling itself is included when resources carry it.
    """
    canonical = "coalesce(a.canonical_key, lower(e.raw_key))" if fold_case else "coalesce(a.canonical_key, e.raw_key)"
    rows = cur.execute(
        f"""
        SELECT e.raw_key, count(*) AS n
        FROM (SELECT unnest(map_keys(Tags)) AS raw_key FROM resources WHERE Tags IS NOT NULL) e
        LEFT JOIN tag_aliases a ON a.alias_key = e.raw_key
        WHERE {canonical} = ?
        GROUP BY 1 ORDER BY n DESC, 1
        """,
        [key],
    ).fetchall()
    return [r[0] for r in rows]


@dataclass(frozen=True, slots=True)
class TagKeyCoverage:
    """How much of the estate a canonical tag key covers, by resource count and (with a period) by cost."""

    key: str
    resources: int
    resource_share: Decimal | None
    cost: Decimal | None = None  # cost of the tagged resources in the period (None without a period)
    cost_share: Decimal | None = None
    origins: dict[str, int] = field(default_factory=dict)  # provider / rule / manual -> resources


def tag_keys(
    cur: duckdb.DuckDBPyConnection, period: Period | None = None, metric: str = "effective",
    currency: str | None = None,
) -> list[TagKeyCoverage]:
    """Effective tag keys present, with coverage; by cost share when a period is given, else by count."""
    total_resources = int(_scalar(cur, "SELECT count(*) FROM resources") or 0)
    origin_rows = cur.execute(
        "SELECT tag_key, origin, count(*) FROM resource_tags GROUP BY 1, 2"
    ).fetchall()
    origins: dict[str, dict[str, int]] = {}
    for key, origin, n in origin_rows:
        origins.setdefault(key, {})[origin] = int(n)
    costs: dict[str, Decimal] = {}
    total_cost: Decimal | None = None
    if period is not None:
        currency = resolve_currency(cur, period, metric, currency)
        col = metric_column(metric)
        rows = cur.execute(
            f"""
            WITH rc AS (
                SELECT x_ResourceKey, sum({col}) AS cost FROM charges
                WHERE x_ChargeDate >= $s AND x_ChargeDate < $e AND BillingCurrency = $cur GROUP BY 1
            )
            SELECT NULL, sum(cost) FROM rc
            UNION ALL
            SELECT t.tag_key, sum(rc.cost) FROM resource_tags t JOIN rc ON rc.x_ResourceKey = t.resource_key GROUP BY 1
            """,
            {"s": period.start, "e": period.end, "cur": currency},
        ).fetchall()
        for key, cost in rows:
            if key is None:
                total_cost = cost or ZERO
            else:
                costs[key] = cost or ZERO
    out = []
    for key, by_origin in origins.items():
        count = sum(by_origin.values())
        cost = costs.get(key, ZERO) if period is not None else None
        out.append(TagKeyCoverage(
            key=key, resources=count,
            resource_share=Decimal(count) / total_resources if total_resources else None,
            cost=cost, cost_share=cost / total_cost if cost is not None and total_cost else None,
            origins=by_origin,
        ))
    out.sort(key=lambda c: (-(c.cost or ZERO), -c.resources, c.key))
    return out


def tag_values(cur: duckdb.DuckDBPyConnection, key: str) -> list[str]:
    """The effective values of a tag key across resources, most used first (for autocompleting a new value)."""
    rows = cur.execute(
        "SELECT tag_value FROM resource_tags WHERE tag_key = ? GROUP BY 1 ORDER BY count(*) DESC, 1",
        [key.strip().lower()],
    ).fetchall()
    return [r[0] for r in rows]


def _scalar(cur: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> Any:
    row = cur.execute(sql, list(params)).fetchone()
    return row[0] if row else None
