"""Commitments: reservations and savings plans paid for but unused, and steady on-demand compute worth committing."""

from __future__ import annotations

import re
from decimal import Decimal

import duckdb

from finops_tui.basis.money import money
from finops_tui.recommend.model import Context, DailyPoint, JumpTarget, Recommendation, Scope, stable_id
from finops_tui.recommend.prepare import ensure_prepared, floors, monthly, params

KIND_UNUSED = "unused-commitment"
KIND_PURCHASE = "commitment-purchase"
_UNUSED_WINDOW = 30
_LOOK_BACK_DAYS = {"last7days": 7, "last30days": 30, "last60days": 60}
# On-demand virtual machine hours (not their disks, which Azure files under the same service).
_VM_FILTER = (
    "(c.x_SkuMeterCategory = 'Virtual Machines' OR (c.x_SkuMeterCategory IS NULL "
    "AND lower(c.ResourceType) IN ('virtual machine', 'virtual machine scale set', "
    "'microsoft.compute/virtualmachines', 'microsoft.compute/virtualmachinescalesets')))"
)


def unused_commitments(cur: duckdb.DuckDBPyConnection, ctx: Context) -> list[Recommendation]:
    """Per commitment: the amortized cost of its unused hours over the last 30 days, as a monthly figure."""
    ensure_prepared(cur, ctx)
    floor = floors(cur)
    since = max(ctx.days_back(_UNUSED_WINDOW), ctx.data_start)
    days = (ctx.data_end - since).days + 1
    currency_filter = " AND c.BillingCurrency = $currency" if ctx.currency else ""
    # Always the amortized column: unused hours exist only there (the actual cost is the purchase itself).
    rows = cur.execute(
        f"""
        SELECT c.BillingCurrency, c.CommitmentDiscountId,
               max(c.CommitmentDiscountName), max(c.CommitmentDiscountType), max(c.SubAccountId),
               coalesce(sum(c.EffectiveCost) FILTER (WHERE c.CommitmentDiscountStatus = 'Unused'), 0) AS unused,
               coalesce(sum(c.EffectiveCost) FILTER (WHERE c.CommitmentDiscountStatus = 'Used'), 0) AS used,
               list({{'day': c.x_ChargeDate, 'cost': c.EffectiveCost}} ORDER BY c.x_ChargeDate)
                   FILTER (WHERE c.CommitmentDiscountStatus = 'Unused') AS days
        FROM charges c
        WHERE c.x_ChargeDate BETWEEN $since AND $end AND c.CommitmentDiscountId IS NOT NULL
          AND c.EffectiveCost IS NOT NULL{currency_filter}
        GROUP BY c.BillingCurrency, c.CommitmentDiscountId
        HAVING unused > 0
        """,
        params(ctx, since=since),
    ).fetchall()
    recs = []
    for currency, commitment_id, name, ctype, sub, unused, used, unused_days in rows:
        amount = monthly(unused, days)
        if amount < floor.get(currency, Decimal(0)):
            continue
        label = name or commitment_id.rsplit("/", 1)[-1]
        utilisation = used / (used + unused) * 100 if used + unused else Decimal(0)
        by_day: dict = {}
        for point in unused_days or []:
            by_day[point["day"]] = by_day.get(point["day"], Decimal(0)) + point["cost"]
        scope = Scope("commitment", commitment_id.lower(), label, sub)
        recs.append(
            Recommendation(
                id=stable_id(KIND_UNUSED, scope.type, scope.key, currency),
                kind=KIND_UNUSED,
                title=f"Unused {ctype or 'commitment'} {label}: {100 - utilisation:.0f}% of it wasted",
                scope=scope,
                monthly_impact=amount,
                currency=currency,
                confidence="high",
                impact_kind="waste",
                action="Move matching workloads onto it, widen its scope (shared), or exchange it for a smaller one.",
                evidence=(
                    ("Unused cost, last 30 days", money(unused, currency)),
                    ("Used cost, last 30 days", money(used, currency)),
                    ("Utilisation", f"{utilisation:.0f}%"),
                    ("Commitment type", ctype or "—"),
                ),
                series=tuple(DailyPoint(day, cost) for day, cost in sorted(by_day.items())),
                jump=JumpTarget("allocation", (("commitment", commitment_id),)),
            )
        )
    return recs


def commitment_candidates(cur: duckdb.DuckDBPyConnection, ctx: Context) -> list[Recommendation]:
    """Steady on-demand VM cost (low day-to-day variation) per subscription, region and meter, and Azure's own
    benefit recommendations when they were synced (those replace the estimate for their subscription)."""
    ensure_prepared(cur, ctx)
    floor = floors(cur)
    t = ctx.thresholds
    synced = _synced(cur, ctx, floor)
    covered = {(r.currency, r.scope.subscription_id.lower()) for r in synced if r.scope.subscription_id}
    shared = any(r.scope.subscription_id is None for r in synced)
    since = ctx.days_back(t.stable_days)
    cost = f"c.{ctx.cost_column}"
    currency_filter = " AND c.BillingCurrency = $currency" if ctx.currency else ""
    rows = cur.execute(
        f"""
        WITH daily AS (
            SELECT c.BillingCurrency AS currency, c.SubAccountId AS sub, max(c.SubAccountName) AS sub_name,
                   c.RegionId AS region, coalesce(c.x_SkuMeterName, c.SkuId) AS meter, c.x_ChargeDate AS day,
                   sum({cost}) AS cost, count(DISTINCT c.ResourceId) AS resources
            FROM charges c
            WHERE c.x_ChargeDate BETWEEN $since AND $end AND c.PricingCategory = 'Standard'
              AND c.ChargeCategory = 'Usage' AND {cost} IS NOT NULL AND {_VM_FILTER}{currency_filter}
            GROUP BY ALL
        )
        SELECT currency, sub, max(sub_name), region, meter, count(*) AS days, avg(cost) AS mean,
               stddev_pop(cost) / nullif(avg(cost), 0) AS cv, quantile_cont(cost, 0.1) AS floor_cost,
               max(resources) AS resources
        FROM daily GROUP BY currency, sub, region, meter
        HAVING count(*) >= $days AND stddev_pop(cost) / nullif(avg(cost), 0) <= $max_cv
        """,
        params(ctx, since=since, days=t.stable_days - 2, max_cv=t.stable_max_cv),
    ).fetchall()
    recs = list(synced)
    for currency, sub, sub_name, region, meter, days, mean, cv, steady, resources in rows:
        if shared or (currency, (sub or "").lower()) in covered:
            continue  # Azure already sized a purchase for this scope
        steady_monthly = monthly(Decimal(str(steady)), 1)
        savings = (steady_monthly * t.reservation_savings).quantize(Decimal("0.01"))
        if savings < floor.get(currency, Decimal(0)):
            continue
        label = f"{meter} in {region or 'any region'} ({sub_name or sub})"
        scope = Scope("subscription", f"{sub}/{region}/{meter}".lower(), label, sub)
        recs.append(
            Recommendation(
                id=stable_id(KIND_PURCHASE, scope.type, scope.key, currency),
                kind=KIND_PURCHASE,
                title=f"Steady on-demand {meter} in {region or 'any region'}: a 1-year reservation would save ~"
                f"{int(t.reservation_savings * 100)}%",
                scope=scope,
                monthly_impact=savings,
                currency=currency,
                confidence="medium",
                impact_kind="savings",
                action="Reserve the steady part (1 year); check the Azure reservation recommendation before buying.",
                evidence=(
                    ("Average on-demand cost per day", money(Decimal(str(mean)), currency)),
                    ("Day-to-day variation (CV)", f"{cv * 100:.1f}%"),
                    ("Steady part (10th percentile day) per month", money(steady_monthly, currency)),
                    ("Assumed saving", "30-40% for a 1-year reservation (estimate)"),
                    ("Days observed", days),
                    ("Resources on this meter", resources),
                ),
                jump=JumpTarget("allocation", (("subscription", sub or ""), ("sku", meter or ""))),
                estimate=True,
            )
        )
    return recs


def _synced(cur: duckdb.DuckDBPyConnection, ctx: Context, floor: dict[str, Decimal]) -> list[Recommendation]:
    """Azure's benefit recommendations (synced): their savings over the look-back period, as a monthly figure."""
    rows = cur.execute(
        """
        SELECT rec_id, scope, kind, term, look_back, currency, commitment_amount, savings_amount,
               cost_without_benefit, savings_percentage
        FROM benefit_recommendations WHERE savings_amount > 0
        """
    ).fetchall()
    recs = []
    for rec_id, scope_text, kind, term, look_back, currency, commitment, savings, without, pct in rows:
        if ctx.currency and currency and currency.upper() != ctx.currency:
            continue
        currency = (currency or "").upper()
        days = _LOOK_BACK_DAYS.get((look_back or "").lower(), 30)
        amount = monthly(savings, days)
        if amount < floor.get(currency, Decimal(0)):
            continue
        match = re.search(r"/subscriptions/([^/]+)", scope_text or "", re.IGNORECASE)
        sub = match.group(1) if match else None
        scope = Scope("subscription", (scope_text or rec_id).lower(), f"{kind or 'commitment'} for {scope_text}", sub)
        evidence = [
            ("Source", "Azure benefit recommendation (synced)"),
            ("Term", term or "—"),
            ("Look-back", look_back or "—"),
        ]
        if commitment is not None:
            evidence.append(("Commitment per hour", money(commitment, currency)))
        if without is not None:
            evidence.append(("On-demand cost in the look-back", money(without, currency)))
        if pct is not None:
            evidence.append(("Saving", f"{pct:.0f}%"))
        recs.append(
            Recommendation(
                id=stable_id(KIND_PURCHASE, scope.type, scope.key, currency, f"{kind}|{term}"),
                kind=KIND_PURCHASE,
                title=f"Azure recommends a {term or ''} {kind or 'commitment'} for {scope_text}".replace("  ", " "),
                scope=scope,
                monthly_impact=amount,
                currency=currency,
                confidence="high",
                impact_kind="savings",
                action="Review the purchase in the Azure portal (Reservations / Savings plans) and buy it.",
                evidence=tuple(evidence),
                jump=JumpTarget("allocation", (("subscription", sub),)) if sub else None,
            )
        )
    return recs
