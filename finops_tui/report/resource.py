"""Resource detail read model: one resource's identity, cost history and breakdowns, and every tag's origin."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import duckdb

from finops_tui.allocation.rules import Rule, rule_attribution
from finops_tui.basis.arm_ids import arm_resource_id
from finops_tui.basis.dimensions import NONE_LABEL
from finops_tui.basis.metrics import metric_column
from finops_tui.basis.periods import Period
from finops_tui.errors import UserError
from finops_tui.report.tree import window_params
from finops_tui.store.sources import OWNING_RESOURCE_SQL, PROVIDER_SPLIT_SQL

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


@dataclass(frozen=True, slots=True)
class SplitShare:
    """Cost a provider split from a host to a consumer in the period (FOCUS 1.3 Allocated* rows).

    On a host's detail it names a consumer (`consumer_id`, `name`); on a consumer's, the host (`host_id`,
    `host_name`). `share` is of everything the host split in the period (None on a consumer's detail).
    """

    host_id: str
    host_name: str | None
    consumer_id: str
    name: str | None
    methods: tuple[str, ...]  # AllocatedMethodId values, sorted
    cost: Decimal
    share: Decimal | None = None


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
    # A host: the consumers its cost was split to (its own `cost` is what it kept). A consumer: its hosts.
    split_to: list[SplitShare] = field(default_factory=list)
    split_from: list[SplitShare] = field(default_factory=list)

    @property
    def split_total(self) -> Decimal:
        """What a host's provider split to its consumers in the period."""
        return sum((s.cost for s in self.split_to), ZERO)


def resource_detail(
    cur: duckdb.DuckDBPyConnection, resource_id: str, period: Period, metric: str = "effective",
    currency: str | None = None, *, rules: Sequence[Rule],
) -> ResourceDetail:
    """One resource: daily history, cost by meter and charge category, effective and raw tags. One scan of its
    rows by the owning resource's integer key (and one of the provider-split rows).

    `rules` (rules.toml, loaded by the caller) name the rule behind each rule-set tag.
    """
    rid = resource_id.lower()
    info = cur.execute(
        """
        SELECT r.ResourceName, r.ResourceType, r.x_ResourceGroupName, r.SubAccountId, r.SubAccountName, r.RegionId,
               r.ServiceName, r.Tags, r.first_seen, r.last_seen, k.resource_key
        FROM resources r LEFT JOIN resource_keys k ON k.ResourceId = r.ResourceId
        WHERE r.ResourceId = ?
        """,
        [rid],
    ).fetchone()
    if info is None:
        raise UserError(f"{resource_id}: no such resource in the cache")
    name, rtype, rg, sub_id, sub_name, region, service, raw_tags, first_seen, last_seen, key = info
    # Every charge row carries its owning resource's integer key (store.sources.assign_resource_keys): comparing
    # that is about 20x faster at 10M rows than comparing the owning resource's id string on every row.
    owned = f"{OWNING_RESOURCE_SQL} = $rid" if key is None else "c.x_ResourceKey = $key"
    owned_params: dict[str, object] = {"rid": rid} if key is None else {"key": key}
    col = metric_column(metric)
    previous = period.previous()
    if currency is None:
        found = cur.execute(
            f"SELECT BillingCurrency FROM charges c "
            f"WHERE ({owned} OR ({PROVIDER_SPLIT_SQL} AND c.ResourceId = $rid)) AND BillingCurrency IS NOT NULL "
            f"GROUP BY 1 ORDER BY sum(abs({col})) DESC NULLS LAST LIMIT 1",
            {**owned_params, "rid": rid},
        ).fetchone()
        currency = found[0] if found else None
    params = window_params(period, previous, currency or "")
    params.update(owned_params)
    rows = cur.execute(
        f"""
        SELECT GROUPING(c.x_ChargeDate) AS g_day, GROUPING(c.ChargeCategory) AS g_cat, c.x_ChargeDate,
               c.x_SkuMeterCategory, coalesce(c.x_SkuMeterName, c.SkuId), c.ChargeCategory,
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e),
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $ps AND c.x_ChargeDate < $pe)
        FROM charges c
        WHERE {owned} AND c.x_ChargeDate >= $lo AND c.x_ChargeDate < $hi
          AND c.BillingCurrency = $cur
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
        provider_tags=dict(raw_tags) if raw_tags else {}, **_splits(cur, rid, col, {**params, "rid": rid}),
    )


def _splits(
    cur: duckdb.DuckDBPyConnection, rid: str, col: str, params: dict[str, object]
) -> dict[str, list[SplitShare]]:
    """The provider splits `rid` takes part in during the period: as the host (`split_to`) or the consumer."""
    rows = cur.execute(
        f"""
        SELECT c.ResourceId = $rid AS as_host, c.ResourceId, c.AllocatedResourceId,
               arg_max(c.AllocatedResourceName, c.ChargePeriodStart) FILTER (WHERE c.AllocatedResourceName IS NOT NULL),
               list(DISTINCT c.AllocatedMethodId ORDER BY c.AllocatedMethodId)
                   FILTER (WHERE c.AllocatedMethodId IS NOT NULL),
               sum(c.{col})
        FROM charges c
        WHERE {PROVIDER_SPLIT_SQL} AND (c.ResourceId = $rid OR c.AllocatedResourceId = $rid)
          AND c.x_ChargeDate >= $s AND c.x_ChargeDate < $e AND c.BillingCurrency = $cur
        GROUP BY ALL HAVING sum(c.{col}) IS NOT NULL
        """,
        {name: params[name] for name in ("rid", "s", "e", "cur")},
    ).fetchall()
    hosts = dict(cur.execute(
        "SELECT ResourceId, ResourceName FROM resources WHERE ResourceId IN (SELECT unnest(?::VARCHAR[]))",
        [sorted({r[1] for r in rows if r[1] is not None})],
    ).fetchall()) if rows else {}
    split_total = sum((r[5] for r in rows if r[0]), ZERO)
    shares = sorted(
        (
            (bool(as_host), SplitShare(host, hosts.get(host), consumer, name, tuple(methods or ()), cost,
                                       cost / split_total if as_host and split_total else None))
            for as_host, host, consumer, name, methods, cost in rows
        ),
        key=lambda item: (-item[1].cost, item[1].consumer_id, item[1].host_id),
    )
    return {
        "split_to": [share for as_host, share in shares if as_host],
        "split_from": [share for as_host, share in shares if not as_host],
    }


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
