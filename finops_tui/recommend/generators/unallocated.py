"""Unallocated spend hotspots: resource groups and subscriptions whose cost carries no value for the team key."""

from __future__ import annotations

from decimal import Decimal

import duckdb

from finops_tui.basis.dimensions import UNALLOCATED
from finops_tui.basis.money import money
from finops_tui.recommend.model import Context, JumpTarget, Recommendation, Scope, stable_id
from finops_tui.recommend.prepare import DAILY, RESOURCE, ensure_prepared, floors, monthly

KIND = "unallocated-spend"
_WINDOW_DAYS = 30


def unallocated_hotspots(cur: duckdb.DuckDBPyConnection, ctx: Context) -> list[Recommendation]:
    """Resource groups with material untagged cost, then per subscription whatever those groups leave over."""
    ensure_prepared(cur, ctx)
    floor = floors(cur)
    since = ctx.days_back(_WINDOW_DAYS)
    days = min(_WINDOW_DAYS, (ctx.data_end - max(since, ctx.data_start)).days + 1)
    rows = cur.execute(
        f"""
        WITH untagged AS (
            SELECT currency, sub, max(sub_name) AS sub_name, rg,
                   sum(cost) FILTER (WHERE team IS NULL AND taggable) AS untagged, sum(cost) AS total
            FROM {DAILY} WHERE day >= $since GROUP BY currency, sub, rg
        ), resources AS (
            SELECT currency, sub, rg, count(DISTINCT ResourceId) AS n FROM {RESOURCE} r
            WHERE cost_30 <> 0 AND NOT EXISTS (
                SELECT 1 FROM resource_tags t WHERE t.ResourceId = r.ResourceId AND t.tag_key = $key)
            GROUP BY ALL
        )
        SELECT u.currency, u.sub, u.sub_name, u.rg, u.untagged, u.total, coalesce(r.n, 0)
        FROM untagged u LEFT JOIN resources r
          ON r.currency = u.currency AND r.sub IS NOT DISTINCT FROM u.sub AND r.rg IS NOT DISTINCT FROM u.rg
        WHERE u.untagged > 0
        ORDER BY u.untagged DESC
        """,
        {"since": since, "key": ctx.team_key},
    ).fetchall()
    recs: list[Recommendation] = []
    leftover: dict[tuple[str, str | None], list] = {}
    for currency, sub, sub_name, rg, untagged, total, n_resources in rows:
        amount = monthly(untagged, days)
        if rg is not None and amount >= floor.get(currency, Decimal(0)):
            recs.append(_rg_rec(ctx, currency, sub, sub_name, rg, amount, untagged, total, n_resources))
            continue
        # Groups below the floor, and charges outside any group, add up per subscription.
        entry = leftover.setdefault((currency, sub), [sub_name, Decimal(0), Decimal(0), 0, 0])
        entry[1] += untagged
        entry[2] += total
        entry[3] += n_resources
        entry[4] += 1
    for (currency, sub), (sub_name, untagged, total, n_resources, groups) in leftover.items():
        amount = monthly(untagged, days)
        if amount >= floor.get(currency, Decimal(0)):
            recs.append(_sub_rec(ctx, currency, sub, sub_name, amount, untagged, total, n_resources, groups))
    return recs


def _share(part: Decimal, whole: Decimal) -> str:
    return f"{part / whole * 100:.0f}%" if whole else "—"


def _rg_rec(
    ctx: Context, currency: str, sub: str | None, sub_name: str | None, rg: str,
    amount: Decimal, untagged: Decimal, total: Decimal, n_resources: int,
) -> Recommendation:
    scope = Scope("resource-group", f"{sub}/{rg}".lower(), f"{rg} ({sub_name or sub})", sub, rg)
    return Recommendation(
        id=stable_id(KIND, scope.type, scope.key, currency, ctx.team_key),
        kind=KIND,
        title=f"Untagged spend in {rg}: no '{ctx.team_key}' on {_share(untagged, total)} of its cost",
        scope=scope,
        monthly_impact=amount,
        currency=currency,
        confidence="high",
        impact_kind="unallocated",
        action=f"Tag its resources with '{ctx.team_key}' (or add an allocation rule for the group).",
        evidence=(
            ("Untagged cost, last 30 days", money(untagged, currency)),
            ("Share of the group's cost", _share(untagged, total)),
            ("Untagged resources", n_resources),
            ("Shows in the tree as", UNALLOCATED),
        ),
        jump=JumpTarget("tagging", (("subscription", sub or ""), ("resource-group", rg)), ctx.team_key),
    )


def _sub_rec(
    ctx: Context, currency: str, sub: str | None, sub_name: str | None,
    amount: Decimal, untagged: Decimal, total: Decimal, n_resources: int, groups: int,
) -> Recommendation:
    label = sub_name or sub or "(no subscription)"
    scope = Scope("subscription", (sub or "").lower(), label, sub)
    return Recommendation(
        id=stable_id(KIND, scope.type, scope.key, currency, ctx.team_key),
        kind=KIND,
        title=f"Untagged spend spread over {groups} small resource group{'' if groups == 1 else 's'} in {label}",
        scope=scope,
        monthly_impact=amount,
        currency=currency,
        confidence="medium",
        impact_kind="unallocated",
        action=f"Tag these resources with '{ctx.team_key}', or add a rule by subscription.",
        evidence=(
            ("Untagged cost, last 30 days", money(untagged, currency)),
            ("Share of that cost", _share(untagged, total)),
            ("Resource groups", groups),
            ("Untagged resources", n_resources),
        ),
        jump=JumpTarget("tagging", (("subscription", sub or ""),), ctx.team_key),
    )
