"""Overview read model: totals, previous period, forecast, daily series, breakdowns and movers."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import duckdb

from finops_tui.basis.dimensions import NONE_LABEL, UNALLOCATED, Dimension, dimension, labelled_for_cache
from finops_tui.basis.metrics import metric_column
from finops_tui.basis.periods import Period
from finops_tui.report.shared_nodes import applied_pools, split_column
from finops_tui.report.sources import source_for
from finops_tui.store import summaries
from finops_tui.store.sources import Freshness, freshness

DEFAULT_BREAKDOWNS = ("service", "service-category", "subscription", "resource-group", "region")
ZERO = Decimal(0)
# FinOps Framework allocation maturity by the share of cost allocated: crawl below 80%, walk 80-90%, run above.
MATURITY_BANDS = ((Decimal("0.8"), "crawl"), (Decimal("0.9"), "walk"))


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


@dataclass(frozen=True)
class AllocationKpi:
    """How much of one currency's cost in the period is allocated to the team key, and how.

    `by_metadata`: rows with an effective team value (provider tag, alias, rule, manual edit) that no shared
    cost pool (to the team key) takes; `by_pools`: what those pools split to a team; the rest is unallocated
    (untagged rows no pool takes, and pool cost no team could take).
    """

    currency: str
    total: Decimal
    by_metadata: Decimal
    by_pools: Decimal

    @property
    def unallocated(self) -> Decimal:
        return self.total - self.by_metadata - self.by_pools

    def share(self, part: Decimal) -> Decimal | None:
        return part / self.total if self.total > 0 else None

    @property
    def allocated_share(self) -> Decimal | None:
        return self.share(self.by_metadata + self.by_pools)

    @property
    def maturity(self) -> str | None:
        """crawl (< 80% allocated), walk (80-90%), run (> 90%); None without positive cost."""
        allocated = self.allocated_share
        if allocated is None:
            return None
        for bound, band in MATURITY_BANDS:
            if allocated < bound or (band == "walk" and allocated <= bound):
                return band
        return "run"


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
    shared: bool = False  # team figures are direct cost + each shared cost pool's share
    allocation: list[AllocationKpi] = field(default_factory=list)

    def total_for(self, currency: str) -> CurrencyTotal | None:
        return next((t for t in self.totals if t.currency == currency), None)


def currency_totals(
    cur: duckdb.DuckDBPyConnection, period: Period, metric: str, previous: Period | None = None
) -> list[CurrencyTotal]:
    """Total cost per billing currency for the period (and the previous one); never across currencies."""
    previous = previous or period.previous()
    col = metric_column(metric)
    source = source_for(cur)
    rows = cur.execute(
        f"""
        SELECT c.BillingCurrency,
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e),
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $ps AND c.x_ChargeDate < $pe),
               {source.rows_sql} FILTER (WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e)
        FROM {source.table} c
        WHERE c.x_ChargeDate >= least($s, $ps) AND c.x_ChargeDate < greatest($e, $pe)
          AND c.BillingCurrency IS NOT NULL
        GROUP BY 1 ORDER BY 2 DESC NULLS LAST, 1
        """,
        {"s": period.start, "e": period.end, "ps": previous.start, "pe": previous.end},
    ).fetchall()
    return [CurrencyTotal(r[0], r[1] or ZERO, r[2] or ZERO, int(r[3] or 0)) for r in rows
            if r[1] is not None or r[3]]


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
    source = source_for(cur, [dim])
    dim = source.level(dim, dim.alias)
    currency_sql = " AND c.BillingCurrency = $cur" if currency else ""
    params: dict[str, object] = {"s": period.start, "e": period.end, "ps": previous.start, "pe": previous.end}
    if currency:
        params["cur"] = currency
    limit_sql = ""
    if limit:
        # The key breaks a tie at the cut: which of two equal groups is listed must not change between runs.
        limit_sql = (" QUALIFY row_number() OVER (PARTITION BY currency ORDER BY cost DESC NULLS LAST, key NULLS LAST)"
                     " <= $limit")
        params["limit"] = limit
    rows = cur.execute(
        f"""
        SELECT {dim.key_sql} AS key,
               max((c.x_ChargeDate, {dim.label_sql})) FILTER (WHERE {dim.label_sql} IS NOT NULL) AS label,
               c.BillingCurrency AS currency,
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e) AS cost,
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $ps AND c.x_ChargeDate < $pe) AS prev
        FROM {source.table} c{dim.join_sql()}
        WHERE c.x_ChargeDate >= least($s, $ps) AND c.x_ChargeDate < greatest($e, $pe){currency_sql}
          AND c.BillingCurrency IS NOT NULL
        GROUP BY key, currency
        HAVING cost IS NOT NULL{limit_sql}
        ORDER BY cost DESC, key NULLS LAST, currency
        """,
        params,
    ).fetchall()
    # A group's name is its latest day's (the greatest on a tie), as in the tree: the same from either table.
    return [
        BreakdownRow(r[0], r[1][1] if r[1] is not None else NONE_LABEL, r[2], r[3] or ZERO, r[4] or ZERO) for r in rows
    ]


def summary_breakdowns(
    cur: duckdb.DuckDBPyConnection,
    dims: list[Dimension],
    period: Period,
    metric: str,
    *,
    currency: str | None = None,
    previous: Period | None = None,
) -> tuple[list[CurrencyTotal], dict[str, list[BreakdownRow]]] | None:
    """`currency_totals` and the `breakdown` of each dimension from one pass over the summary; None when the
    summary cannot answer them all (read each from `charges` then).

    The period's summary rows are first summed without their day, per group of the columns the dimensions
    read (each group keeps its last day, for the labels): every breakdown then groups a few thousand rows,
    not the period's days times its teams again and again. Labels stay the latest day's (the greatest on a
    tie): a group's label is one value, so its (last day, label) is the greatest pair among its rows.
    """
    previous = previous or period.previous()
    source = source_for(cur, dims)
    if not source.is_summary:
        return None
    levels = [source.level(dim, dim.alias) for dim in dims]
    col = metric_column(metric)
    read = sorted({name for d in levels for name in re.findall(r"\bc\.(\w+)", f"{d.key_sql} {d.label_sql}")}
                  - {"x_ChargeDate", "BillingCurrency"})
    params: dict[str, object] = {"s": period.start, "e": period.end, "ps": previous.start, "pe": previous.end}
    currency_sql = ""
    if currency:
        currency_sql = " AND c.BillingCurrency = $cur"
        params["cur"] = currency
    grouped = [
        f"""
        SELECT {i} AS d, {d.key_sql} AS key,
               max((c.x_ChargeDate, {d.label_sql})) FILTER (WHERE {d.label_sql} IS NOT NULL) AS label,
               c.BillingCurrency AS currency, sum(c.cost) AS cost, sum(c.prev) AS prev, NULL AS n
        FROM periods c GROUP BY key, currency HAVING sum(c.cost) IS NOT NULL
        """
        for i, d in enumerate(levels)
    ]
    rows = cur.execute(
        f"""
        WITH periods AS MATERIALIZED (
            SELECT c.BillingCurrency{"".join(f", c.{name}" for name in read)},
                   max(c.x_ChargeDate) AS x_ChargeDate,
                   sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e) AS cost,
                   sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $ps AND c.x_ChargeDate < $pe) AS prev,
                   {source.rows_sql} FILTER (WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e) AS n
            FROM {source.table} c
            WHERE c.x_ChargeDate >= least($s, $ps) AND c.x_ChargeDate < greatest($e, $pe)
              AND c.BillingCurrency IS NOT NULL{currency_sql}
            GROUP BY ALL
        )
        SELECT -1 AS d, c.BillingCurrency AS key, NULL AS label, c.BillingCurrency AS currency, sum(c.cost) AS cost,
               sum(c.prev) AS prev, sum(c.n) AS n
        FROM periods c GROUP BY c.BillingCurrency
        {"".join(f"UNION ALL {q}" for q in grouped)}
        ORDER BY d, cost DESC NULLS LAST, key NULLS LAST, currency
        """,
        params,
    ).fetchall()
    totals = [CurrencyTotal(r[3], r[4] or ZERO, r[5] or ZERO, int(r[6] or 0)) for r in rows
              if r[0] < 0 and (r[4] is not None or r[6])]
    breakdowns: dict[str, list[BreakdownRow]] = {d.name: [] for d in levels}
    for d, key, label, code, cost, prev, _n in rows:
        if d >= 0:
            breakdowns[levels[d].name].append(
                BreakdownRow(key, label[1] if label is not None else NONE_LABEL, code, cost or ZERO, prev or ZERO))
    return totals, breakdowns


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
        FROM {source_for(cur).table} c
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
    source = source_for(cur, tag_keys=[tag_key])
    join, value = source.tag_value_sql(tag_key.lower())
    rows = cur.execute(
        f"""
        SELECT c.BillingCurrency, sum(c.{col})
        FROM {source.table} c{join}
        WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e AND {value} IS NULL
          AND c.BillingCurrency IS NOT NULL
        GROUP BY 1
        """,
        {"s": period.start, "e": period.end},
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
        FROM {source_for(cur).table} c
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
    shared: bool = False,
) -> Overview:
    """Everything the Overview screen and `report overview` show, for one period and metric.

    `breakdown_names` limits the breakdowns computed (the screen shows fewer than the report prints);
    resource groups are always computed, for the movers.
    """
    with summaries.pinned(cur):
        return _overview(cur, period, metric, team_key=team_key, currency=currency,
                         extra_breakdowns=extra_breakdowns, top=top, fresh=fresh, breakdown_names=breakdown_names,
                         shared=shared)


def _overview(
    cur: duckdb.DuckDBPyConnection, period: Period, metric: str, *, team_key: str, currency: str | None,
    extra_breakdowns: tuple[str, ...], top: int | None, fresh: Freshness | None,
    breakdown_names: tuple[str, ...] | None, shared: bool,
) -> Overview:
    previous = period.previous()
    team = f"tag:{team_key.lower()}"
    names = [*DEFAULT_BREAKDOWNS, team] if breakdown_names is None else [*breakdown_names]
    # Resource groups feed the movers and the team key the untagged share, so both are always computed.
    names += [n for n in ("resource-group", team) if n not in names]
    names += [n for n in extra_breakdowns if dimension(n).name not in names]
    breakdowns: dict[str, list[BreakdownRow]] = {}
    titles: dict[str, str] = {}
    # Unlimited queries, cut in Python: groups are few (Decimal conversion is cheap), and the movers
    # and the untagged share need every group, not only the top ones.
    dims = labelled_for_cache(cur, [dimension(name) for name in names])
    # One pass per summary table: the team from the team rollup, the rest from the team-free one (on a cache of
    # provider splits the summary has several times the groups; each rollup stays small). A dimension no summary
    # table holds (tag:env) is read from `charges` by `breakdown`.
    by_table: dict[str, list[Dimension]] = defaultdict(list)
    for dim in dims:
        source = source_for(cur, [dim])
        if source.is_summary:
            by_table[source.table].append(dim)
    totals: list[CurrencyTotal] | None = None
    full: dict[str, list[BreakdownRow]] = {}
    for held in by_table.values():
        one_pass = summary_breakdowns(cur, held, period, metric, currency=currency, previous=previous)
        if one_pass is not None:
            totals = totals if totals is not None else one_pass[0]
            full.update(one_pass[1])
    if totals is None:
        totals = currency_totals(cur, period, metric, previous)
    for dim in dims:
        if dim.name not in full:
            full[dim.name] = breakdown(cur, dim, period, metric, currency=currency, previous=previous)
    if currency:
        totals = [t for t in totals if t.currency == currency]
    for dim in dims:
        breakdowns[dim.name] = _top_per_currency(full[dim.name], top)
        titles[dim.name] = dim.title
    movers = top_movers(full["resource-group"])
    team_name = dimension(team).name
    with_shared, allocation = team_with_shared(cur, full[team_name], totals, period, previous, metric, team_key,
                                               currency)
    if shared:
        full[team_name] = with_shared
        breakdowns[team_name] = _top_per_currency(with_shared, top)
    untagged = {r.currency: r.cost for r in full[team_name] if r.key is None}
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
        shared=shared,
        allocation=allocation,
    )


def team_with_shared(
    cur: duckdb.DuckDBPyConnection, plain: list[BreakdownRow], totals: list[CurrencyTotal], period: Period,
    previous: Period, metric: str, team_key: str, currency: str | None,
) -> tuple[list[BreakdownRow], list[AllocationKpi]]:
    """The team breakdown with shared costs (direct + each pool's share) and the allocation KPIs.

    Built from the plain breakdown: minus the rows pools to the team key take, plus their shares. Both come
    from small reads (the marked rows, shared_splits), so the overview pays no second scan of the charges.
    """
    key = team_key.lower()
    pools = [p.index for p in applied_pools(cur) if p.to_key == key]
    params: dict[str, object] = {"s": period.start, "e": period.end, "ps": previous.start, "pe": previous.end,
                                 "pools": pools}
    currency_sql = ""
    if currency:
        currency_sql = " AND c.BillingCurrency = $cur"
        params["cur"] = currency
    pooled: list[tuple[str, str | None, Decimal | None, Decimal | None]] = []
    shares: list[tuple[str, str | None, Decimal | None, Decimal | None]] = []
    if pools:
        col = metric_column(metric)
        source = source_for(cur, tag_keys=[key])
        join, value = source.tag_value_sql(key)
        pooled = cur.execute(
            f"""
            SELECT c.BillingCurrency, {value},
                   sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e),
                   sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $ps AND c.x_ChargeDate < $pe)
            FROM {source.table} c{join}
            WHERE c.x_SharedPool IS NOT NULL AND list_contains($pools, c.x_SharedPool)
              AND c.x_ChargeDate >= least($s, $ps) AND c.x_ChargeDate < greatest($e, $pe){currency_sql}
              AND c.BillingCurrency IS NOT NULL
            GROUP BY 1, 2
            """,
            params,
        ).fetchall()
        split = split_column(metric)
        shares = cur.execute(
            f"""
            SELECT c.currency, c.recipient, sum(c.{split}) FILTER (WHERE c.day >= $s AND c.day < $e),
                   sum(c.{split}) FILTER (WHERE c.day >= $ps AND c.day < $pe)
            FROM shared_splits c
            WHERE list_contains($pools, c.pool_index) AND c.day >= least($s, $ps) AND c.day < greatest($e, $pe)
              {currency_sql.replace("c.BillingCurrency", "c.currency")}
            GROUP BY 1, 2
            """,
            params,
        ).fetchall()
    figures: dict[tuple[str, str | None], list[Decimal]] = {}
    names: dict[tuple[str, str | None], str] = {}
    for row in plain:
        figures[(row.currency, row.key)] = [row.cost, row.previous]
        names[(row.currency, row.key)] = row.name
    metadata: dict[str, Decimal] = defaultdict(Decimal)
    for row in plain:
        if row.key is not None:
            metadata[row.currency] += row.cost
    for sign, rows in ((-1, pooled), (1, shares)):
        for code, team_value, cost, prev in rows:
            entry = figures.setdefault((code, team_value), [ZERO, ZERO])
            entry[0] += sign * (cost or ZERO)
            entry[1] += sign * (prev or ZERO)
            if sign < 0 and team_value is not None:
                metadata[code] -= cost or ZERO
    by_pools: dict[str, Decimal] = defaultdict(Decimal)
    for code, recipient, cost, _prev in shares:
        if recipient is not None:
            by_pools[code] += cost or ZERO
    rows_out = [
        BreakdownRow(k, names.get((code, k), k if k is not None else UNALLOCATED), code, cost, prev)
        for (code, k), (cost, prev) in figures.items() if cost or (code, k) in names
    ]
    rows_out.sort(key=lambda r: (-r.cost, r.key is None, r.key or ""))
    allocation = [AllocationKpi(t.currency, t.cost, metadata.get(t.currency, ZERO), by_pools.get(t.currency, ZERO))
                  for t in totals]
    return rows_out, allocation
