"""Budgets at risk: synced budgets whose forecast for the period runs above the amount."""

from __future__ import annotations

import re
from decimal import Decimal

import duckdb

from finops_tui.basis.money import money
from finops_tui.recommend.model import Context, JumpTarget, Recommendation, Scope, stable_id

KIND = "budget-at-risk"
_MONTHS_PER_GRAIN = {"monthly": 1, "quarterly": 3, "annually": 12, "yearly": 12}


def budgets_at_risk(cur: duckdb.DuckDBPyConnection, ctx: Context) -> list[Recommendation]:
    """Budgets whose forecast (Azure's, else spend so far extrapolated to the period) exceeds the amount."""
    rows = cur.execute(
        """
        SELECT budget_id, scope, name, amount, currency, time_grain, period_start, period_end,
               current_spend, forecast_spend
        FROM budgets WHERE amount > 0
        """
    ).fetchall()
    recs = []
    for budget_id, scope_text, name, amount, currency, grain, start, end, spend, forecast in rows:
        currency = (currency or "").upper()
        if ctx.currency and currency != ctx.currency:
            continue
        projected = forecast
        source = "Azure forecast"
        if projected is None and spend is not None and start is not None and end is not None:
            # Spend so far over the days of the period the data covers, at the same pace to the period end.
            elapsed = (min(ctx.data_end, end) - start).days + 1
            total = (end - start).days + 1
            if elapsed > 0:
                projected = spend * Decimal(total) / Decimal(elapsed)
                source = "spend so far at the same pace"
        if projected is None or projected <= amount:
            continue
        months = _MONTHS_PER_GRAIN.get((grain or "monthly").lower(), 1)
        overrun = ((projected - amount) / months).quantize(Decimal("0.01"))
        sub = re.search(r"/subscriptions/([^/]+)", scope_text or "", re.IGNORECASE)
        rg = re.search(r"/resourcegroups/([^/]+)", scope_text or "", re.IGNORECASE)
        path: tuple[tuple[str, str], ...] = ()
        if sub:
            path = (("subscription", sub.group(1)),)
            if rg:
                path += (("resource-group", rg.group(1)),)
        scope = Scope("budget", budget_id.lower(), name or budget_id, sub.group(1) if sub else None,
                      rg.group(1) if rg else None)
        recs.append(
            Recommendation(
                id=stable_id(KIND, scope.type, scope.key, currency, str(start or "")),
                kind=KIND,
                title=f"Budget '{name or budget_id}' heads for {projected / amount * 100:.0f}% of its amount",
                scope=scope,
                monthly_impact=overrun,
                currency=currency,
                confidence="high" if forecast is not None else "medium",
                impact_kind="overrun",
                action="Find the movers in its scope, or raise the budget if the growth is planned.",
                evidence=(
                    ("Budget", money(amount, currency)),
                    ("Spent so far", money(spend, currency)),
                    ("Projected for the period", money(projected, currency)),
                    ("Projection from", source),
                    ("Period", f"{start} .. {end}" if start else grain or "—"),
                    ("Scope", scope_text or "—"),
                ),
                jump=JumpTarget("allocation", path) if path else None,
            )
        )
    return recs
