"""Budgets and savings-plan benefit recommendations for a scope; failures here are warnings, never fatal."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from finops_tui import clock
from finops_tui.store.cache import Cache
from finops_tui.sync.windows import Scope

BENEFIT_TERMS = ("P1Y", "P3Y")
BENEFIT_LOOK_BACK = "Last30Days"
# Benefit recommendations exist at billing scopes, subscriptions and resource groups (AZURE_API.md §5).
BENEFIT_SCOPE_KINDS = frozenset({"billing-account", "billing-profile", "subscription", "resource-group"})


def _money(value: Any) -> Decimal | None:
    """JSON numbers arrive as float or Decimal; go through their shortest text so 0.1 stays 0.1."""
    if value is None:
        return None
    try:
        return (
            Decimal(value)
            if isinstance(value, Decimal)
            else Decimal(repr(value) if isinstance(value, float) else str(value))
        )
    except (InvalidOperation, ValueError):
        return None


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _get(obj: Any, *path: str) -> Any:
    """Walk model attributes; enum members come back as their wire value ("Monthly", not TimeGrainType.MONTHLY)."""
    for name in path:
        if obj is None:
            return None
        obj = getattr(obj, name, None)
    return getattr(obj, "value", obj) if isinstance(obj, Enum) else obj


def sync_budgets(client: Any, cache: Cache, scope: Scope) -> int:
    """Replace the scope's budgets (amount, last evaluated spend, forecast)."""
    rows = []
    for budget in client.budgets.list(scope.arm):
        props = budget.properties
        spend_unit = _get(props, "current_spend", "unit") or _get(props, "forecast_spend", "unit")
        rows.append(
            [
                str(budget.id or f"{scope.key}/budgets/{budget.name}").lower(),
                scope.key,
                budget.name,
                _money(_get(props, "amount")),
                spend_unit,
                str(_get(props, "time_grain") or "") or None,
                _date(_get(props, "time_period", "start_date")),
                _date(_get(props, "time_period", "end_date")),
                _money(_get(props, "current_spend", "amount")),
                _money(_get(props, "forecast_spend", "amount")),
                clock.now(),
            ]
        )
    with cache.write() as cur:
        cur.execute("DELETE FROM budgets WHERE scope = ?", [scope.key])
        if rows:
            cur.executemany(
                "INSERT OR REPLACE INTO budgets (budget_id, scope, name, amount, currency, time_grain, period_start, "
                "period_end, current_spend, forecast_spend, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
    return len(rows)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def sync_benefit_recommendations(client: Any, cache: Cache, scope: Scope) -> int:
    """Replace the scope's savings-plan recommendations (1- and 3-year terms, last 30 days of usage)."""
    if scope.kind not in BENEFIT_SCOPE_KINDS:
        return 0
    # Shared-scope recommendations are made at billing scopes; subscriptions and groups get Single-scope ones.
    benefit_scope = "Shared" if scope.kind.startswith("billing") else "Single"
    rows = []
    for term in BENEFIT_TERMS:
        query_filter = (
            f"properties/lookBackPeriod eq '{BENEFIT_LOOK_BACK}' AND properties/term eq '{term}' "
            f"AND properties/scope eq '{benefit_scope}'"
        )
        for rec in client.benefit_recommendations.list(scope.arm, filter=query_filter):
            props = rec.properties
            details = _get(props, "recommendation_details")
            raw = rec.as_dict() if hasattr(rec, "as_dict") else dict(rec)
            rows.append(
                [
                    str(rec.id or f"{scope.key}/{term}/{rec.name}").lower(),
                    scope.key,
                    str(_get(rec, "kind") or "SavingsPlan"),
                    str(_get(props, "term") or term),
                    str(_get(props, "look_back_period") or BENEFIT_LOOK_BACK),
                    _get(props, "currency_code"),
                    _money(_get(details, "commitment_amount")),
                    _money(_get(details, "savings_amount")),
                    _money(_get(props, "cost_without_benefit")),
                    float(_get(details, "savings_percentage"))
                    if _get(details, "savings_percentage") is not None
                    else None,
                    json.dumps(raw, default=_json_default, sort_keys=True),
                    clock.now(),
                ]
            )
    with cache.write() as cur:
        cur.execute("DELETE FROM benefit_recommendations WHERE scope = ?", [scope.key])
        if rows:
            cur.executemany(
                "INSERT OR REPLACE INTO benefit_recommendations (rec_id, scope, kind, term, look_back, currency, "
                "commitment_amount, savings_amount, cost_without_benefit, savings_percentage, raw_json, synced_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
    return len(rows)
