"""New expensive SKU on an existing resource: a meter first charged on a resource in the last N days that raised
the resource's daily cost materially (a resize, a premium tier, a licence added). And new expensive resources:
one first charged in the last N days that costs more a day than most resources cost in a week."""

from __future__ import annotations

from decimal import Decimal

import duckdb

from finops_tui.basis.money import money
from finops_tui.recommend.model import Confidence, Context, JumpTarget, Recommendation, Scope, stable_id
from finops_tui.recommend.prepare import RESOURCE, ensure_prepared, floors, monthly, params
from finops_tui.store.sources import OWNING_RESOURCE_SQL

KIND = "new-sku"
KIND_NEW_RESOURCE = "new-resource"
_ESTABLISHED_DAYS = 14  # the resource was charged at least this long before the meter appeared
_TYPICAL_WINDOW_DAYS = 30  # the weeks "what most resources cost in a week" is measured over
_MOST = 0.75  # "most resources": three in four cost less in a week than a new resource's day
_SETTLED_DAYS = 7  # days of a new resource's cost that make its run rate more than an early estimate


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


def new_expensive_resources(cur: duckdb.DuckDBPyConnection, ctx: Context) -> list[Recommendation]:
    """Resources first charged in the last `new_sku_days` days whose day costs more than most resources'
    week (its first day, or its average day since when the first was partial).

    "New" needs history before it: a resource charged since the first day of the data (every resource
    of a one-month export) is not new.
    """
    ensure_prepared(cur, ctx)
    t = ctx.thresholds
    floor = floors(cur)
    cost = f"c.{ctx.cost_column}"
    currency_filter = " AND c.BillingCurrency = $currency" if ctx.currency else ""
    rows = cur.execute(
        f"""
        WITH recent AS (
            SELECT {OWNING_RESOURCE_SQL} AS ResourceId, c.BillingCurrency AS currency, c.x_ChargeDate AS day,
                   sum({cost}) AS cost
            FROM charges c
            WHERE c.x_ChargeDate > $end - INTERVAL {_TYPICAL_WINDOW_DAYS} DAY AND c.x_ChargeDate <= $end
              AND {OWNING_RESOURCE_SQL} IS NOT NULL AND {cost} IS NOT NULL{currency_filter}
            GROUP BY ALL
        ), weekly AS (
            -- each resource's week: its average charged day, times seven
            SELECT ResourceId, currency, sum(cost) * 7 / count(*) AS week FROM recent GROUP BY ALL
        ), typical AS (
            -- a threshold, not a sum of money: DuckDB divides and interpolates in floating point
            SELECT currency, CAST(quantile_cont(week, $most) AS DECIMAL(38, 12)) AS week
            FROM weekly WHERE week > 0 GROUP BY currency
        ), born AS (
            SELECT r.ResourceId, r.first_seen FROM resources r
            WHERE r.first_seen > $data_start AND r.first_seen >= $since
        )
        SELECT d.currency, d.ResourceId, coalesce(r.ResourceName, regexp_extract(d.ResourceId, '[^/]+$')),
               r.ResourceType, r.SubAccountId, r.x_ResourceGroupName, b.first_seen,
               sum(d.cost) FILTER (WHERE d.day = b.first_seen) AS first_day_cost,
               sum(d.cost) AS cost_since, typical.week
        FROM recent d
        JOIN born b ON b.ResourceId = d.ResourceId AND d.day >= b.first_seen
        JOIN typical ON typical.currency = d.currency
        LEFT JOIN resources r ON r.ResourceId = d.ResourceId
        GROUP BY ALL
        ORDER BY cost_since DESC, d.ResourceId
        """,
        params(ctx, data_start=ctx.data_start, since=ctx.days_back(t.new_sku_days), most=_MOST),
    ).fetchall()
    recs = []
    for currency, resource_id, name, rtype, sub, rg, first_day, first_cost, cost_since, week in rows:
        days_on = (ctx.data_end - first_day).days + 1
        first_cost = first_cost or Decimal(0)
        average_day = cost_since / days_on
        if max(first_cost, average_day) <= week:
            continue
        impact = monthly(cost_since, days_on)
        if impact < floor.get(currency, Decimal(0)):
            continue
        scope = Scope("resource", resource_id, name or resource_id, sub, rg)
        confidence: Confidence = "high" if days_on >= _SETTLED_DAYS else "medium"
        evidence = (
            ("First charged", first_day),
            ("Cost on its first day", money(first_cost, currency)),
            ("Average day since", money(average_day, currency)),
            ("A week of a typical resource (3 in 4 cost less)", money(week, currency)),
            ("Days charged", days_on),
            ("Type", rtype or "—"),
        )
        path = (("subscription", sub or ""), ("resource-group", rg or ""), ("resource", resource_id))
        recs.append(
            Recommendation(
                id=stable_id(KIND_NEW_RESOURCE, scope.type, scope.key, currency, first_day.isoformat()),
                kind=KIND_NEW_RESOURCE,
                title=f"New resource {name or resource_id} since {first_day:%Y-%m-%d}: "
                      f"{money(average_day, currency)} a day",
                scope=scope,
                monthly_impact=impact,
                currency=currency,
                confidence=confidence,
                impact_kind="increase",
                action="Confirm who created it and that its size is intended; stop or right-size it if not.",
                evidence=evidence,
                jump=JumpTarget("allocation", path),
            )
        )
    return recs
