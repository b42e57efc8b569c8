"""Idle and orphan candidates from cost signatures: disks, public IPs and snapshots still charged in a resource
group with no compute for the last 14 days, split by whether compute ran there before (stopped) or not (orphans)."""

from __future__ import annotations

from decimal import Decimal

import duckdb

from finops_tui.basis.money import money
from finops_tui.recommend.levels import dominant_teams
from finops_tui.recommend.model import Context, EvidenceValue, JumpTarget, Recommendation, Scope, stable_id
from finops_tui.recommend.prepare import LEFTOVER_CLASSES, RESOURCE, ensure_prepared, floors, monthly

KIND_ORPHANS = "orphan-resources"
KIND_STOPPED = "stopped-compute"
_LISTED = 5  # resources named in the evidence


def idle_resources(cur: duckdb.DuckDBPyConnection, ctx: Context) -> list[Recommendation]:
    """Per resource group with no compute cost lately: the leftover disks, IPs and snapshots and what they cost."""
    ensure_prepared(cur, ctx)
    t = ctx.thresholds
    if (ctx.data_end - ctx.data_start).days + 1 < t.idle_days:
        return []  # not enough history to tell idle from new
    floor = floors(cur)
    leftovers = ", ".join(f"'{c}'" for c in LEFTOVER_CLASSES)
    rows = cur.execute(
        f"""
        WITH per_resource AS (
            SELECT currency, sub, rg, ResourceId, any_value(name) AS name, any_value(rclass) AS rclass,
                   sum(cost_idle) AS recent, sum(cost_idle_prev) AS before, max(last_day) AS last_day
            FROM {RESOURCE} WHERE rg IS NOT NULL GROUP BY currency, sub, rg, ResourceId
        ), groups AS (
            SELECT currency, sub, rg,
                   coalesce(sum(recent) FILTER (WHERE rclass = 'compute'), 0) AS compute_recent,
                   coalesce(sum(before) FILTER (WHERE rclass = 'compute'), 0) AS compute_before,
                   max(last_day) FILTER (WHERE rclass = 'compute') AS compute_last_day,
                   coalesce(sum(recent) FILTER (WHERE rclass IN ({leftovers})), 0) AS leftover_recent,
                   list({{'name': name, 'class': rclass, 'cost': recent}} ORDER BY recent DESC)
                       FILTER (WHERE rclass IN ({leftovers}) AND recent > 0) AS resources
            FROM per_resource GROUP BY currency, sub, rg
        )
        SELECT g.*, s.SubAccountName
        FROM groups g
        LEFT JOIN (SELECT SubAccountId, max(SubAccountName) AS SubAccountName FROM resources GROUP BY 1) s
          ON s.SubAccountId = g.sub
        WHERE compute_recent <= 0 AND leftover_recent > 0
        """
    ).fetchall()
    # The owner of the group (its team over the last two months) is who the finding is for.
    teams = dominant_teams(cur, ctx.days_back(60))
    recs = []
    for currency, sub, rg, _compute_recent, compute_before, compute_last, leftover, resources, sub_name in rows:
        amount = monthly(leftover, t.idle_days)
        if amount < floor.get(currency, Decimal(0)):
            continue
        stopped = compute_before > 0
        kind = KIND_STOPPED if stopped else KIND_ORPHANS
        scope = Scope("resource-group", f"{sub}/{rg}".lower(), f"{rg} ({sub_name or sub})", sub, rg)
        # Most money first, then by name: the list's ORDER BY beside a FILTER came back in another order now
        # and then (two runs of the same report differed).
        listed = sorted(resources or [], key=lambda item: (-item["cost"], str(item["name"])))
        evidence: list[tuple[str, EvidenceValue]] = [
            (f"Leftover cost, last {t.idle_days} days", money(leftover, currency)),
            ("Leftover resources", len(listed)),
        ]
        if stopped:
            evidence.append(("Compute cost in the weeks before", money(compute_before, currency)))
            evidence.append(("Last compute charge", compute_last))
            title = f"Compute stopped in {rg} but its disks, IPs and snapshots are still charged"
            action = "If the workload is gone, keep a snapshot of what you need and delete the leftovers."
        else:
            evidence.append(("Compute in the group", f"none for at least {t.idle_days} days"))
            title = f"{len(listed)} orphan disks, public IPs or snapshots in {rg}"
            action = "Check nothing uses them (detached disks, unassociated IPs, old snapshots) and delete them."
        for item in listed[:_LISTED]:
            evidence.append((f"{item['class']} {item['name']}", money(monthly(item["cost"], t.idle_days), currency)
                             + " / month"))
        recs.append(
            Recommendation(
                id=stable_id(kind, scope.type, scope.key, currency),
                kind=kind,
                title=title,
                scope=scope,
                monthly_impact=amount,
                currency=currency,
                confidence="medium",
                impact_kind="waste",
                action=action,
                evidence=tuple(evidence),
                jump=JumpTarget("allocation", (("subscription", sub or ""), ("resource-group", rg))),
                team=teams.get((currency, sub, rg)),
            )
        )
    return recs
