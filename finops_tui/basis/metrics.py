"""Cost metrics (EffectiveCost, BilledCost) and the billing currencies a period holds: costs never mix them."""

from __future__ import annotations

import duckdb

from finops_tui.basis.periods import Period
from finops_tui.errors import UsageError, UserError
from finops_tui.store import summaries

METRIC_COLUMNS = {"effective": "EffectiveCost", "billed": "BilledCost"}
METRIC_TITLES = {"effective": "EffectiveCost (amortized)", "billed": "BilledCost (actual)"}


def metric_column(metric: str) -> str:
    try:
        return METRIC_COLUMNS[metric]
    except KeyError:
        raise UsageError(f"--metric {metric}: expected effective or billed") from None


def currencies(cur: duckdb.DuckDBPyConnection, period: Period, metric: str = "effective") -> list[str]:
    """Billing currencies with cost in the period (or the previous one), largest first."""
    col = metric_column(metric)
    previous = period.previous()
    # Every view's first query asks this: the smallest summary table holds each row's day and currency in a
    # few thousand rows where `charges` holds millions. It ranks by the size of each day's team sums, which
    # orders currencies as their rows do unless credits cancel a currency's charges within a day and team.
    table = summaries.SMALLEST_TABLE if summaries.current(cur) is not None else "charges"
    rows = cur.execute(
        f"""
        SELECT BillingCurrency FROM {table}
        WHERE x_ChargeDate >= least($s, $ps) AND x_ChargeDate < greatest($e, $pe) AND BillingCurrency IS NOT NULL
        GROUP BY 1 ORDER BY sum(abs({col})) DESC NULLS LAST, 1
        """,
        {"s": period.start, "e": period.end, "ps": previous.start, "pe": previous.end},
    ).fetchall()
    return [r[0] for r in rows]


def resolve_currency(cur: duckdb.DuckDBPyConnection, period: Period, metric: str, currency: str | None) -> str:
    """The given currency, else the only one with cost; several without a choice is a user error."""
    if currency:
        return currency.upper()
    found = currencies(cur, period, metric)
    if len(found) > 1:
        raise UserError(f"costs are billed in {', '.join(found)}: choose one currency (--currency {found[0]})")
    return found[0] if found else "USD"
