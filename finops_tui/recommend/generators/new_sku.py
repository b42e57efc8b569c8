"""New expensive SKU on an existing resource: a meter first charged on a resource in the last N days that raised
the resource's daily cost materially (a resize, a premium tier, a licence added)."""

from __future__ import annotations

from decimal import Decimal

import duckdb

from finops_tui.recommend.model import Context, JumpTarget, Recommendation, Scope, stable_id
from finops_tui.recommend.prepare import RESOURCE, ensure_prepared, floors, monthly
from finops_tui.report.render import money

KIND = "new-sku"
_ESTABLISHED_DAYS = 14  # the resource was charged at least this long before the meter appeared


def new_expensive_skus(cur: duckdb.DuckDBPyConnection, ctx: Context) -> list[Recommendation]:
    """Meters new on an established resource whose cost since then lifts the resource's monthly run rate."""
    ensure_prepared(cur, ctx)
    t = ctx.thresholds
    floor = floors(cur)
    since = ctx.days_back(t.new_sku_days)
    rows = cur.execute(
        f"""
        WITH per_resource AS (
            SELECT *, min(first_day) OVER (PARTITION BY ResourceId, currency) AS resource_first,
                   sum(cost_new) OVER (PARTITION BY ResourceId, currency) AS resource_new,
                   sum(cost_new_prev) OVER (PARTITION BY ResourceId, currency) AS resource_prev,
                   list(meter) FILTER (WHERE cost_new_prev > 0) OVER (PARTITION BY ResourceId, currency)
                       AS previous_meters
            FROM {RESOURCE}
        )
        SELECT currency, ResourceId, name, rtype, sub, rg, meter, first_day, cost_total, resource_new,
               resource_prev, previous_meters
        FROM per_resource
        WHERE first_day >= $since AND resource_first <= first_day - INTERVAL {_ESTABLISHED_DAYS} DAY
          AND cost_total > 0
        ORDER BY cost_total DESC
        """,
        {"since": since},
    ).fetchall()
    recs = []
    for currency, resource_id, name, _rtype, sub, rg, meter, first_day, meter_cost, res_new, res_prev, before in rows:
        days_on = (ctx.data_end - first_day).days + 1
        meter_monthly = monthly(meter_cost, days_on)
        # What the resource as a whole costs more now than in the same span before: a resize replaces one
        # meter by another, and only the difference is new money. The difference accrued only on the days
        # the meter has been on, so it is scaled by those days.
        increase = monthly(res_new - res_prev, days_on)
        impact = min(meter_monthly, increase)
        if impact < floor.get(currency, Decimal(0)):
            continue
        scope = Scope("resource", resource_id, name or resource_id, sub, rg)
        evidence = (
            ("New meter", meter),
            ("First charged", first_day),
            ("Meter cost since then", money(meter_cost, currency)),
            ("Meter run rate per month", money(meter_monthly, currency)),
            (f"Resource cost, last {t.new_sku_days} days", money(res_new, currency)),
            (f"Resource cost, {t.new_sku_days} days before", money(res_prev, currency)),
            ("Meters before", ", ".join(sorted(set(before or []))) or "—"),
        )
        path = (("subscription", sub or ""), ("resource-group", rg or ""), ("resource", resource_id))
        recs.append(
            Recommendation(
                id=stable_id(KIND, scope.type, scope.key, currency, meter),
                kind=KIND,
                title=f"New SKU '{meter}' on {name or resource_id} since {first_day:%Y-%m-%d}",
                scope=scope,
                monthly_impact=impact,
                currency=currency,
                confidence="high" if impact >= meter_monthly / 2 else "medium",
                impact_kind="increase",
                action="Confirm the change was intended (resize, premium tier, licence); revert or right-size if not.",
                evidence=evidence,
                jump=JumpTarget("allocation", path),
            )
        )
    return recs
