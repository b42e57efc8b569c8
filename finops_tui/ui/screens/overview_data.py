"""Overview screen data: the read-model call, one currency's view of it, and the key its answers are kept by."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import duckdb

from finops_tui.basis.periods import resolve_period
from finops_tui.report.overview import (
    AllocationKpi,
    BreakdownRow,
    CurrencyTotal,
    Forecast,
    Overview,
    overview,
    top_movers,
)

ZERO = Decimal(0)


def screen_breakdowns(team_key: str) -> tuple[str, ...]:
    """The breakdowns the screen shows (resource groups feed the movers); the report prints more."""
    return ("service", "subscription", "resource-group", f"tag:{team_key.lower()}")


@dataclass(frozen=True)
class EmptyCache:
    """The cache has no cost rows at all."""


def load_overview(
    cur: duckdb.DuckDBPyConnection, period_spec: str, metric: str, team_key: str, shared: bool = False
) -> Overview | EmptyCache:
    """The overview read model (the one `report overview` uses), every currency at once; `shared`: team figures
    with shared costs."""
    if cur.execute("SELECT 1 FROM charges LIMIT 1").fetchone() is None:
        return EmptyCache()
    period, fresh = resolve_period(cur, period_spec)
    return overview(cur, period, metric, team_key=team_key, fresh=fresh,
                    breakdown_names=screen_breakdowns(team_key), shared=shared)


@dataclass(frozen=True)
class CurrencyView:
    """One currency's slice of an overview: the read model keeps currencies apart, so this is a filter."""

    currency: str
    total: CurrencyTotal
    breakdowns: dict[str, list[BreakdownRow]]
    movers: list[BreakdownRow]
    daily: list[tuple[dt.date, Decimal]]
    untagged: Decimal
    forecast: Forecast | None
    allocation: AllocationKpi | None = None


def currency_view(ov: Overview, currency: str | None) -> CurrencyView | None:
    """The view for `currency`, or for the currency with the most cost when it is None or absent."""
    codes = [t.currency for t in ov.totals]
    if not codes:
        return None
    code = currency if currency in codes else codes[0]
    total = ov.total_for(code)
    assert total is not None
    breakdowns = {name: [r for r in rows if r.currency == code] for name, rows in ov.breakdowns.items()}
    return CurrencyView(
        currency=code,
        total=total,
        breakdowns=breakdowns,
        # The read model ranks movers across every currency; a screen of one currency ranks its own.
        movers=top_movers(breakdowns.get("resource-group", [])),
        daily=ov.daily.get(code, []),
        untagged=ov.untagged.get(code, ZERO),
        forecast=next((f for f in ov.forecast if f.currency == code), None),
        allocation=next((a for a in ov.allocation if a.currency == code), None),
    )


ResultKey = tuple[str, str, dt.date, bool]  # period spec, metric, the day "mtd" was resolved on, shared costs
