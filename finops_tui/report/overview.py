"""Overview read model: totals, previous period, forecast, daily series, breakdowns and movers."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import duckdb

from finops_tui.basis.dimensions import NONE_LABEL, Dimension, dimension, labelled_for_cache
from finops_tui.basis.metrics import metric_column
from finops_tui.basis.periods import Period
from finops_tui.store.sources import Freshness, freshness

DEFAULT_BREAKDOWNS = ("service", "service-category", "subscription", "resource-group", "region")
ZERO = Decimal(0)


@dataclass(frozen=True)
class BreakdownRow:
    key: str | None
    name: str
    currency: str
    cost: Decimal
    previous: Decimal

    @property
    def change(self) -> Decimal:
        return self.cost - self.previous


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    cost: Decimal
    previous: Decimal
    rows: int


@dataclass(frozen=True)
class Forecast:
    """Month-end projection: month to date plus the remaining days at the recent weekday run rate."""

    currency: str
    month_start: dt.date
    month_end: dt.date  # exclusive
    actual_to_date: Decimal
    projected_remaining: Decimal

    @property
    def total(self) -> Decimal:
        return self.actual_to_date + self.projected_remaining


@dataclass
class Overview:
    period: Period
    previous: Period
    metric: str
    currencies: list[str]
    totals: list[CurrencyTotal]
    daily: dict[str, list[tuple[dt.date, Decimal]]]
    breakdowns: dict[str, list[BreakdownRow]]
    untagged: dict[str, Decimal]  # currency -> cost without a value for the team key
    team_key: str
    forecast: list[Forecast]
    movers: list[BreakdownRow]
    freshness: Freshness
    breakdown_titles: dict[str, str] = field(default_factory=dict)

    def total_for(self, currency: str) -> CurrencyTotal | None:
        return next((t for t in self.totals if t.currency == currency), None)


def _date_filter(period: Period, previous: Period | None) -> tuple[str, list[object]]:
    start = previous.start if previous is not None else period.start
    return "c.x_ChargeDate >= ? AND c.x_ChargeDate < ?", [start, period.end]


def currency_totals(
    cur: duckdb.DuckDBPyConnection, period: Period, metric: str, previous: Period | None = None
) -> list[CurrencyTotal]:
    """Total cost per billing currency for the period (and the previous one); never across currencies."""
    previous = previous or period.previous()
    col = metric_column(metric)
    rows = cur.execute(
        f"""
        SELECT c.BillingCurrency,
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e),
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $ps AND c.x_ChargeDate < $pe),
               count(*) FILTER (WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e)
        FROM charges c
        WHERE c.x_ChargeDate >= least($s, $ps) AND c.x_ChargeDate < greatest($e, $pe)
          AND c.BillingCurrency IS NOT NULL
        GROUP BY 1 ORDER BY 2 DESC NULLS LAST, 1
        """,
        {"s": period.start, "e": period.end, "ps": previous.start, "pe": previous.end},
    ).fetchall()
    return [CurrencyTotal(r[0], r[1] or ZERO, r[2] or ZERO, int(r[3])) for r in rows if r[1] is not None or r[3]]


def breakdown(
    cur: duckdb.DuckDBPyConnection,
    dim: Dimension,
    period: Period,
    metric: str,
    *,
    currency: str | None = None,
    previous: Period | None = None,
    limit: int | None = None,
) -> list[BreakdownRow]:
    """Cost per group of `dim` (per currency), with the previous period's cost, largest first."""
    previous = previous or period.previous()
    col = metric_column(metric)
    currency_sql = " AND c.BillingCurrency = $cur" if currency else ""
    params: dict[str, object] = {"s": period.start, "e": period.end, "ps": previous.start, "pe": previous.end}
    if currency:
        params["cur"] = currency
    limit_sql = ""
    if limit:
        limit_sql = " QUALIFY row_number() OVER (PARTITION BY currency ORDER BY cost DESC NULLS LAST) <= $limit"
        params["limit"] = limit
    rows = cur.execute(
        f"""
        SELECT {dim.key_sql} AS key, any_value({dim.label_sql}) AS label, c.BillingCurrency AS currency,
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e) AS cost,
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $ps AND c.x_ChargeDate < $pe) AS prev
        FROM charges c{dim.join_sql()}
        WHERE c.x_ChargeDate >= least($s, $ps) AND c.x_ChargeDate < greatest($e, $pe){currency_sql}
          AND c.BillingCurrency IS NOT NULL
        GROUP BY key, currency
        HAVING cost IS NOT NULL{limit_sql}
        ORDER BY cost DESC, key NULLS LAST
        """,
        params,
    ).fetchall()
    return [
        BreakdownRow(r[0], r[1] if r[1] is not None else NONE_LABEL, r[2], r[3] or ZERO, r[4] or ZERO) for r in rows
    ]


def daily_series(
    cur: duckdb.DuckDBPyConnection, period: Period, metric: str, *, currency: str | None = None
) -> dict[str, list[tuple[dt.date, Decimal]]]:
    """Cost per day and currency across the whole period; days without rows are zero."""
    col = metric_column(metric)
    currency_sql = " AND c.BillingCurrency = $cur" if currency else ""
    params: dict[str, object] = {"s": period.start, "e": period.end}
    if currency:
        params["cur"] = currency
    rows = cur.execute(
        f"""
        SELECT c.BillingCurrency, c.x_ChargeDate, sum(c.{col})
        FROM charges c
        WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e{currency_sql} AND c.BillingCurrency IS NOT NULL
        GROUP BY 1, 2 HAVING sum(c.{col}) IS NOT NULL
        """,
        params,
    ).fetchall()
    by_currency: dict[str, dict[dt.date, Decimal]] = defaultdict(dict)
    for cur_code, day, cost in rows:
        by_currency[cur_code][day] = cost
    days = [period.start + dt.timedelta(days=i) for i in range(period.days)]
    return {code: [(d, values.get(d, ZERO)) for d in days] for code, values in by_currency.items()}


def untagged_cost(
    cur: duckdb.DuckDBPyConnection, period: Period, metric: str, tag_key: str
) -> dict[str, Decimal]:
    """Cost per currency with no effective value for `tag_key` (provider tag, rule or manual edit)."""
    col = metric_column(metric)
    rows = cur.execute(
        f"""
        SELECT c.BillingCurrency, sum(c.{col})
        FROM charges c LEFT JOIN resource_tags t ON t.resource_key = c.x_ResourceKey AND t.tag_key = $key
        WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e AND t.tag_value IS NULL
          AND c.BillingCurrency IS NOT NULL
        GROUP BY 1
        """,
        {"s": period.start, "e": period.end, "key": tag_key.lower()},
    ).fetchall()
    return {r[0]: r[1] or ZERO for r in rows}


def month_end_forecast(
    cur: duckdb.DuckDBPyConnection, anchor: dt.date, metric: str, *, lookback_days: int = 28
) -> list[Forecast]:
    """Project the anchor's month: actual to date + each remaining day at its weekday's recent average.

    Weekday averages over the last four weeks capture the weekend dip that a flat run rate misses.
    """
    col = metric_column(metric)
    month_start = anchor.replace(day=1)
    next_month = (month_start + dt.timedelta(days=32)).replace(day=1)
    history_start = anchor - dt.timedelta(days=lookback_days - 1)
    rows = cur.execute(
        f"""
        SELECT c.BillingCurrency, c.x_ChargeDate, sum(c.{col})
        FROM charges c
        WHERE c.x_ChargeDate >= least($hs, $ms) AND c.x_ChargeDate <= $a AND c.BillingCurrency IS NOT NULL
        GROUP BY 1, 2 HAVING sum(c.{col}) IS NOT NULL
        """,
        {"hs": history_start, "ms": month_start, "a": anchor},
    ).fetchall()
    per_currency: dict[str, dict[dt.date, Decimal]] = defaultdict(dict)
    for code, day, cost in rows:
        per_currency[code][day] = cost
    forecasts = []
    remaining_days = [anchor + dt.timedelta(days=i) for i in range(1, (next_month - anchor).days)]
    for code, days in sorted(per_currency.items()):
        to_date = sum((v for d, v in days.items() if d >= month_start), ZERO)
        weekday_totals: dict[int, list[Decimal]] = defaultdict(list)
        for offset in range(lookback_days):
            day = anchor - dt.timedelta(days=offset)
            weekday_totals[day.weekday()].append(days.get(day, ZERO))
        weekday_avg = {wd: sum(vals, ZERO) / len(vals) for wd, vals in weekday_totals.items()}
        remaining = sum((weekday_avg.get(d.weekday(), ZERO) for d in remaining_days), ZERO)
        forecasts.append(Forecast(code, month_start, next_month, to_date, remaining))
    return forecasts


def _top_per_currency(rows: list[BreakdownRow], top: int | None) -> list[BreakdownRow]:
    """The first `top` rows of each currency (rows come sorted by cost)."""
    if not top:
        return rows
    seen: dict[str, int] = defaultdict(int)
    kept = []
    for row in rows:
        if seen[row.currency] < top:
            kept.append(row)
            seen[row.currency] += 1
    return kept


def top_movers(rows: Iterable[BreakdownRow], limit: int = 10) -> list[BreakdownRow]:
    """The largest increases since the previous period (compare rows of one currency only)."""
    return sorted((r for r in rows if r.change > 0), key=lambda r: (-r.change, r.name))[:limit]


def overview(
    cur: duckdb.DuckDBPyConnection,
    period: Period,
    metric: str,
    *,
    team_key: str = "team",
    currency: str | None = None,
    extra_breakdowns: tuple[str, ...] = (),
    top: int | None = None,
    fresh: Freshness | None = None,
    breakdown_names: tuple[str, ...] | None = None,
) -> Overview:
    """Everything the Overview screen and `report overview` show, for one period and metric.

    `breakdown_names` limits the breakdowns computed (the screen shows fewer than the report prints);
    resource groups are always computed, for the movers.
    """
    previous = period.previous()
    totals = currency_totals(cur, period, metric, previous)
    if currency:
        totals = [t for t in totals if t.currency == currency]
    team = f"tag:{team_key.lower()}"
    names = [*DEFAULT_BREAKDOWNS, team] if breakdown_names is None else [*breakdown_names]
    # Resource groups feed the movers and the team key the untagged share, so both are always computed.
    names += [n for n in ("resource-group", team) if n not in names]
    names += [n for n in extra_breakdowns if dimension(n).name not in names]
    breakdowns: dict[str, list[BreakdownRow]] = {}
    titles: dict[str, str] = {}
    # Unlimited queries, cut in Python: groups are few (Decimal conversion is cheap), and the movers
    # and the untagged share need every group, not only the top ones.
    full: dict[str, list[BreakdownRow]] = {}
    for dim in labelled_for_cache(cur, [dimension(name) for name in names]):
        full[dim.name] = breakdown(cur, dim, period, metric, currency=currency, previous=previous)
        breakdowns[dim.name] = _top_per_currency(full[dim.name], top)
        titles[dim.name] = dim.title
    movers = top_movers(full["resource-group"])
    untagged = {r.currency: r.cost for r in full[dimension(team).name] if r.key is None}
    forecast: list[Forecast] = []
    if period.spec == "mtd":
        forecast = month_end_forecast(cur, period.last_day, metric)
        if currency:
            forecast = [f for f in forecast if f.currency == currency]
    return Overview(
        period=period,
        previous=previous,
        metric=metric,
        currencies=[t.currency for t in totals],
        totals=totals,
        daily=daily_series(cur, period, metric, currency=currency),
        breakdowns=breakdowns,
        untagged={k: v for k, v in untagged.items() if currency is None or k == currency},
        team_key=team_key.lower(),
        forecast=forecast,
        movers=movers,
        freshness=fresh or freshness(cur),
        breakdown_titles=titles,
    )
