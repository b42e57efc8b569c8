"""Resource detail read model: one resource's identity, cost history and breakdowns, and every tag's origin."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import duckdb

from finops_tui.allocation.rules import Rule, rule_attribution
from finops_tui.basis.arm_ids import arm_resource_id
from finops_tui.basis.dimensions import NONE_LABEL
from finops_tui.basis.metrics import metric_column
from finops_tui.basis.periods import Period
from finops_tui.errors import UserError
from finops_tui.report.tree import window_params

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class EffectiveTag:
    key: str
    value: str
    origin: str  # provider | rule | manual
    raw_key: str | None  # the provider's spelling (provider origin)
    rule: str | None = None  # the rule that set it (rule origin)


@dataclass(frozen=True, slots=True)
class CostLine:
    label: str
    cost: Decimal


@dataclass(frozen=True)
class ResourceDetail:
    """Everything the resource pane shows: identity, cost history and breakdowns, every tag and its origin."""

    resource_id: str  # as cached (lower-case)
    arm_id: str  # with the provider's casing where known
    name: str | None
    resource_type: str | None
    resource_group: str | None
    subscription_id: str | None
    subscription_name: str | None
    region: str | None
    service: str | None
    first_seen: dt.date | None
    last_seen: dt.date | None
    currency: str | None
    cost: Decimal
    previous_cost: Decimal
    daily: list[Decimal]
    by_meter: list[CostLine]
    by_charge_category: list[CostLine]
    tags: list[EffectiveTag]
    provider_tags: dict[str, str]


def resource_detail(
    cur: duckdb.DuckDBPyConnection, resource_id: str, period: Period, metric: str = "effective",
    currency: str | None = None, *, rules: Sequence[Rule],
) -> ResourceDetail:
    """One resource: daily history, cost by meter and charge category, effective and raw tags. Two scans.

    `rules` (rules.toml, loaded by the caller) name the rule behind each rule-set tag.
    """
    rid = resource_id.lower()
    info = cur.execute(
        """
        SELECT ResourceName, ResourceType, x_ResourceGroupName, SubAccountId, SubAccountName, RegionId, ServiceName,
               Tags, first_seen, last_seen
        FROM resources WHERE ResourceId = ?
        """,
        [rid],
    ).fetchone()
    if info is None:
        raise UserError(f"{resource_id}: no such resource in the cache")
    name, rtype, rg, sub_id, sub_name, region, service, raw_tags, first_seen, last_seen = info
    col = metric_column(metric)
    previous = period.previous()
    if currency is None:
        found = cur.execute(
            f"SELECT BillingCurrency FROM charges WHERE ResourceId = ? AND BillingCurrency IS NOT NULL "
            f"GROUP BY 1 ORDER BY sum(abs({col})) DESC NULLS LAST LIMIT 1",
            [rid],
        ).fetchone()
        currency = found[0] if found else None
    params = window_params(period, previous, currency or "")
    params["rid"] = rid
    rows = cur.execute(
        f"""
        SELECT GROUPING(c.x_ChargeDate) AS g_day, GROUPING(c.ChargeCategory) AS g_cat, c.x_ChargeDate,
               c.x_SkuMeterCategory, coalesce(c.x_SkuMeterName, c.SkuId), c.ChargeCategory,
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e),
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $ps AND c.x_ChargeDate < $pe)
        FROM charges c
        WHERE c.ResourceId = $rid AND c.x_ChargeDate >= $lo AND c.x_ChargeDate < $hi AND c.BillingCurrency = $cur
        GROUP BY GROUPING SETS ((c.x_ChargeDate), (c.x_SkuMeterCategory, coalesce(c.x_SkuMeterName, c.SkuId)),
                                (c.ChargeCategory))
        """,
        params,
    ).fetchall()
    daily = [ZERO] * period.days
    cost = previous_cost = ZERO
    meters: list[CostLine] = []
    categories: list[CostLine] = []
    for g_day, g_cat, day, meter_cat, meter, category, current, prev in rows:
        if g_day == 0:
            cost += current or ZERO
            previous_cost += prev or ZERO
            if current is not None and period.start <= day < period.end:
                daily[(day - period.start).days] = current
        elif g_cat == 0:
            if current:
                categories.append(CostLine(category or NONE_LABEL, current))
        elif current:
            label = " / ".join(p for p in (meter_cat, meter) if p) or NONE_LABEL
            meters.append(CostLine(label, current))
    meters.sort(key=lambda line: (-line.cost, line.label))
    categories.sort(key=lambda line: (-line.cost, line.label))
    return ResourceDetail(
        resource_id=rid, arm_id=arm_resource_id(rid, rg, name), name=name, resource_type=rtype,
        resource_group=rg, subscription_id=sub_id, subscription_name=sub_name, region=region, service=service,
        first_seen=first_seen, last_seen=last_seen, currency=currency, cost=cost, previous_cost=previous_cost,
        daily=daily, by_meter=meters, by_charge_category=categories, tags=effective_tags(cur, rid, rules=rules),
        provider_tags=dict(raw_tags) if raw_tags else {},
    )


def effective_tags(cur: duckdb.DuckDBPyConnection, resource_id: str, *, rules: Sequence[Rule]) -> list[EffectiveTag]:
    """A resource's effective tags with their origin, and for rule-set tags the name of the rule in `rules`."""
    rid = resource_id.lower()
    rows = cur.execute(
        "SELECT tag_key, tag_value, origin, raw_key FROM resource_tags WHERE ResourceId = ? ORDER BY tag_key", [rid]
    ).fetchall()
    by_rule = rule_attribution(cur, [rid], rules=rules) if any(r[2] == "rule" for r in rows) else {}
    return [
        EffectiveTag(
            key, value, origin, raw_key if origin == "provider" else None,
            by_rule[(rid, key)].label if (rid, key) in by_rule else None,
        )
        for key, value, origin, raw_key in rows
    ]
