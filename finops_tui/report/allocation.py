"""Allocation tree read model: a node's children over a hierarchy of dimensions, resource detail, tag keys."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb

from finops_tui.allocation.arm_ids import arm_resource_id
from finops_tui.config import DEFAULT_HIERARCHY, load_config
from finops_tui.errors import UsageError, UserError
from finops_tui.report.dimensions import NONE_LABEL, UNALLOCATED, Dimension, dimension, labelled_for_cache
from finops_tui.report.money import ROUNDING_LABEL, RoundingLine, rounding_line, shown_change
from finops_tui.report.overview import METRIC_TITLES, metric_column, resolve_period
from finops_tui.report.periods import Period
from finops_tui.report.render import change_percent, money, percent, render_rows, to_json
from finops_tui.store import Cache

ZERO = Decimal(0)

# A drill-down step: the dimension of a level and the key of the node chosen there (None = the
# "(unallocated)" / "(none)" node, the charges with no value for that dimension).
PathStep = tuple[str | Dimension, str | None]


@dataclass(frozen=True, slots=True)
class Node:
    """One child in the tree: its cost for the period, its share of the parent, the change, a sparkline."""

    dimension: str  # the level's dimension name: tag:team, subscription, resource, ...
    key: str | None  # what to put in the path to drill in; None for the unallocated / "(none)" node
    label: str
    currency: str
    cost: Decimal
    previous_cost: Decimal
    share: Decimal | None  # of the parent's cost, 0..1; None when the parent costs nothing
    daily: list[Decimal]  # one value per day of the period (empty in `allocation_tree` nodes)
    is_unallocated: bool = False  # tag level: the cost with no effective value for the key
    is_other: bool = False  # the folded tail when `limit` cut the list; not drillable
    folded_count: int = 0  # how many children `is_other` stands for

    @property
    def change(self) -> Decimal:
        return self.cost - self.previous_cost

    @property
    def change_ratio(self) -> Decimal | None:
        """(cost - previous) / |previous|; None when there was nothing before."""
        if not self.previous_cost:
            return None
        return self.change / abs(self.previous_cost)

    @property
    def step(self) -> tuple[str, str | None]:
        """Append to the path to expand this node (the folded tail stands for many keys: not expandable)."""
        if self.is_other:
            raise ValueError(f"{self.label} folds {self.folded_count} nodes and cannot be expanded")
        return (self.dimension, self.key)


@dataclass(slots=True)
class TreeNode:
    node: Node
    children: list[TreeNode] = field(default_factory=list)


def resolve_hierarchy(hierarchy: Sequence[str | Dimension]) -> list[Dimension]:
    """Names such as `tag:team` or Dimension objects → dimensions; an empty hierarchy is a usage error."""
    dims = [d if isinstance(d, Dimension) else dimension(d) for d in hierarchy]
    if not dims:
        raise UsageError("the hierarchy needs at least one level, e.g. tag:team,subscription")
    return dims


def currencies(cur: duckdb.DuckDBPyConnection, period: Period, metric: str = "effective") -> list[str]:
    """Billing currencies with cost in the period (or the previous one), largest first."""
    col = metric_column(metric)
    previous = period.previous()
    rows = cur.execute(
        f"""
        SELECT BillingCurrency FROM charges
        WHERE x_ChargeDate >= least($s, $ps) AND x_ChargeDate < greatest($e, $pe) AND BillingCurrency IS NOT NULL
        GROUP BY 1 ORDER BY sum(abs({col})) DESC NULLS LAST, 1
        """,
        {"s": period.start, "e": period.end, "ps": previous.start, "pe": previous.end},
    ).fetchall()
    return [r[0] for r in rows]


def resolve_currency(cur: duckdb.DuckDBPyConnection, period: Period, metric: str, currency: str | None) -> str:
    """The given currency, else the only one with cost; several without a choice is a user error."""
    if currency:
        return currency.upper()
    found = currencies(cur, period, metric)
    if len(found) > 1:
        raise UserError(f"costs are billed in {', '.join(found)}: choose one currency (--currency {found[0]})")
    return found[0] if found else "USD"


def _aliased(dim: Dimension, alias: str) -> Dimension:
    return dimension(dim.name, alias=alias) if dim.is_tag else dim


def _step_filter(dim: Dimension, key: str | None, name: str, params: dict[str, Any]) -> str:
    """A WHERE clause keeping only the charges under one node of `dim`."""
    if dim.tag_key is not None:
        params[f"{name}_k"] = dim.tag_key
        tagged = f"SELECT ResourceId FROM resource_tags WHERE tag_key = ${name}_k"
        if key is None:  # no effective value, including charges that belong to no resource at all
            return f" AND (c.ResourceId IS NULL OR c.ResourceId NOT IN ({tagged}))"
        params[name] = key
        return f" AND c.ResourceId IN ({tagged} AND tag_value = ${name})"
    if key is None:
        return f" AND {dim.key_sql} IS NULL"
    params[name] = key
    return f" AND {dim.key_sql} = ${name}"


def _window_params(period: Period, previous: Period, currency: str) -> dict[str, Any]:
    return {
        "s": period.start, "e": period.end, "ps": previous.start, "pe": previous.end,
        "lo": min(period.start, previous.start), "hi": max(period.end, previous.end), "cur": currency,
    }


# Levels that can hold tens of thousands of children: with a limit, only the top ones get a daily series.
HIGH_CARDINALITY = frozenset({"resource", "sku"})


def expansion_sql(
    level: Dimension, path: Sequence[tuple[Dimension, str | None]], metric: str, period: Period,
    previous: Period, currency: str, *, limit: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """The one query behind an expansion: current, previous and daily cost of each child.

    Without `limit`, one pass grouped by (child, day). With `limit` on a high-cardinality level, the
    daily series are computed for the top `limit` children only and the tail comes back as one summed
    row, so expanding a resource group of 20,000 resources costs what expanding 200 does.
    """
    col = metric_column(metric)
    level = _aliased(level, "lv")
    params = _window_params(period, previous, currency)
    filters = "".join(_step_filter(dim, key, f"p{i}", params) for i, (dim, key) in enumerate(path))
    source = f"""
            FROM charges c{level.join_sql("lv")}
            WHERE c.x_ChargeDate >= $lo AND c.x_ChargeDate < $hi AND c.BillingCurrency = $cur{filters}"""
    if limit is None or level.name not in HIGH_CARDINALITY:
        sql = f"""
        WITH daily AS (
            SELECT {level.key_sql} AS key, c.x_ChargeDate AS day, sum(c.{col}) AS cost, max({level.label_sql}) AS label
            {source}
            GROUP BY 1, 2
        )
        SELECT 'child' AS kind, key, arg_max(label, day) AS label,
               sum(cost) FILTER (WHERE day >= $s AND day < $e) AS cost,
               sum(cost) FILTER (WHERE day >= $ps AND day < $pe) AS previous,
               list(datediff('day', $s, day) ORDER BY day) FILTER (WHERE day >= $s AND day < $e) AS offsets,
               list(cost ORDER BY day) FILTER (WHERE day >= $s AND day < $e) AS costs,
               1 AS members
        FROM daily GROUP BY key
        ORDER BY cost DESC NULLS LAST, previous DESC NULLS LAST, key NULLS LAST
        """
        return sql, params
    params["limit"] = limit
    in_period = "day >= $s AND day < $e"
    series = "list(datediff('day', $s, day) ORDER BY day) AS offsets, list(cost ORDER BY day) AS costs"
    sql = f"""
        WITH base AS NOT MATERIALIZED (
            SELECT {level.key_sql} AS key, {level.label_sql} AS label, c.x_ChargeDate AS day, c.{col} AS cost
            {source}
        ), totals AS MATERIALIZED (
            SELECT key, max((day, label)) FILTER (WHERE label IS NOT NULL) AS label,
                   sum(cost) FILTER (WHERE {in_period}) AS cost,
                   sum(cost) FILTER (WHERE day >= $ps AND day < $pe) AS previous
            FROM base GROUP BY key
        ), ranked AS MATERIALIZED (
            SELECT *, row_number() OVER (ORDER BY cost DESC NULLS LAST, previous DESC NULLS LAST, key NULLS LAST)
                      AS rank
            FROM totals
        ), shown AS (
            SELECT * FROM ranked WHERE rank <= $limit OR key IS NULL
        ), lists AS (
            SELECT key, {series} FROM (
                SELECT key, day, sum(cost) AS cost FROM base
                WHERE {in_period} AND (key IN (SELECT key FROM shown) OR key IS NULL) GROUP BY 1, 2
            ) GROUP BY key
        )
        SELECT 'child' AS kind, s.key, s.label, s.cost, s.previous, l.offsets, l.costs, 1
        FROM shown s LEFT JOIN lists l ON l.key IS NOT DISTINCT FROM s.key
        UNION ALL
        SELECT 'rest', NULL, NULL, sum(cost), sum(previous), NULL, NULL, count(*) FROM ranked
        WHERE NOT (rank <= $limit OR key IS NULL)
        UNION ALL
        SELECT 'total', NULL, NULL, NULL, NULL, {series}, NULL
        FROM (SELECT day, sum(cost) AS cost FROM base WHERE {in_period} GROUP BY day)
    """
    return sql, params


def _normalise_path(path: Sequence[PathStep]) -> list[tuple[Dimension, str | None]]:
    return [(d if isinstance(d, Dimension) else dimension(d), key) for d, key in path]


def children(
    cur: duckdb.DuckDBPyConnection,
    hierarchy: Sequence[str | Dimension],
    path: Sequence[PathStep],
    period: Period,
    metric: str = "effective",
    currency: str | None = None,
    *,
    limit: int | None = None,
    previous: Period | None = None,
) -> list[Node]:
    """The children of the node at `path` (one (dimension, key) per level above), largest first.

    The children are grouped by `hierarchy[len(path)]` and always sum to the parent exactly, the
    unallocated node included. `limit` keeps the largest N and folds the rest into one `is_other`
    node (the unallocated node is always kept: it is what users come to fix); pass one (e.g. 200)
    when a level may be large, it bounds the work at resource level. One SQL query.
    """
    dims = resolve_hierarchy(hierarchy)
    steps = _normalise_path(path)
    if len(steps) >= len(dims):
        raise UsageError(f"the path has {len(steps)} steps but the hierarchy only {len(dims)} levels")
    previous = previous or period.previous()
    currency = resolve_currency(cur, period, metric, currency)
    [level] = labelled_for_cache(cur, [dims[len(steps)]])
    sql, params = expansion_sql(level, steps, metric, period, previous, currency, limit=limit)
    rows = cur.execute(sql, params).fetchall()
    child_rows = [r for r in rows if r[0] == "child"]
    nodes = _nodes_from_rows(level, currency, period.days, child_rows, extra=[r for r in rows if r[0] == "rest"])
    nodes.sort(key=lambda n: (-n.cost, -n.previous_cost, n.key is None, n.key or ""))
    rest = next((r for r in rows if r[0] == "rest" and r[7]), None)
    if rest is None:
        return _fold_tail(nodes, limit)
    # The top-N query already folded the tail; its daily series is the parent's minus the shown ones.
    total_daily = _series(period.days, next(r for r in rows if r[0] == "total")[5:7])
    shown_daily = [sum((n.daily[i] for n in nodes), ZERO) for i in range(period.days)]
    total = sum((n.cost for n in nodes), ZERO) + rest[3]
    other = Node(
        dimension=level.name, key=None, label=f"({rest[7]} more)", currency=currency, cost=rest[3],
        previous_cost=rest[4] if rest[4] is not None else ZERO, share=rest[3] / total if total else None,
        daily=[t - s for t, s in zip(total_daily, shown_daily, strict=True)], is_other=True,
        folded_count=int(rest[7]),
    )
    return [*nodes, other]


def _series(days: int, offsets_and_costs: Sequence[Any]) -> list[Decimal]:
    daily = [ZERO] * days
    offsets, costs = offsets_and_costs
    for offset, value in zip(offsets or (), costs or (), strict=True):
        daily[offset] = value
    return daily


def _nodes_from_rows(
    level: Dimension, currency: str, days: int, rows: list[tuple[Any, ...]], extra: Sequence[tuple[Any, ...]] = ()
) -> list[Node]:
    """Nodes from (kind, key, label, cost, previous, offsets, costs, members) rows; shares include `extra`."""
    total = sum((r[3] for r in [*rows, *extra] if r[3] is not None), ZERO)
    nodes: list[Node] = []
    for _kind, key, label, cost, prev, offsets, costs, _members in rows:
        cost = cost if cost is not None else ZERO
        if isinstance(label, tuple):  # (last day, name) from the top-N query
            label = label[1]
        nodes.append(Node(
            dimension=level.name, key=key, label=_label(level, key, label), currency=currency, cost=cost,
            previous_cost=prev if prev is not None else ZERO, share=cost / total if total else None,
            daily=_series(days, (offsets, costs)), is_unallocated=level.is_tag and key is None,
        ))
    return nodes


def _label(level: Dimension, key: str | None, label: str | None) -> str:
    if key is None:
        return UNALLOCATED if level.is_tag else NONE_LABEL
    return label if label is not None else str(key)


def _fold_tail(nodes: list[Node], limit: int | None) -> list[Node]:
    if limit is None or len(nodes) <= limit:
        return nodes
    kept = nodes[:limit]
    rest = nodes[limit:]
    pinned = [n for n in rest if n.is_unallocated]
    rest = [n for n in rest if not n.is_unallocated]
    if not rest:
        return kept + pinned
    days = len(rest[0].daily)
    total = sum((n.cost for n in nodes), ZERO)
    cost = sum((n.cost for n in rest), ZERO)
    other = Node(
        dimension=rest[0].dimension, key=None, label=f"({len(rest)} more)", currency=rest[0].currency, cost=cost,
        previous_cost=sum((n.previous_cost for n in rest), ZERO), share=cost / total if total else None,
        daily=[sum((n.daily[i] for n in rest), ZERO) for i in range(days)], is_other=True, folded_count=len(rest),
    )
    return [*sorted([*kept, *pinned], key=lambda n: -n.cost), other]


def allocation_tree(
    cur: duckdb.DuckDBPyConnection,
    hierarchy: Sequence[str | Dimension],
    period: Period,
    metric: str = "effective",
    currency: str | None = None,
    *,
    depth: int | None = None,
    top: int | None = None,
    previous: Period | None = None,
) -> list[TreeNode]:
    """The whole tree down to `depth` levels in one query (for export and `report allocation`).

    Figures equal what `children()` returns for each node; nodes carry no daily series. Labels follow
    the same rule (the latest day's name), so a renamed subscription reads the same in both.
    """
    dims = labelled_for_cache(cur, resolve_hierarchy(hierarchy))
    levels = [_aliased(d, f"lv{i}") for i, d in enumerate(dims[: depth or len(dims)])]
    if depth is not None and depth < 1:
        raise UsageError("--depth must be at least 1")
    previous = previous or period.previous()
    currency = resolve_currency(cur, period, metric, currency)
    col = metric_column(metric)
    params = _window_params(period, previous, currency)
    keys = ", ".join(f"{d.key_sql} AS k{i}" for i, d in enumerate(levels))
    labels = ", ".join(
        f"max((c.x_ChargeDate, {d.label_sql})) FILTER (WHERE {d.label_sql} IS NOT NULL) AS l{i}"
        for i, d in enumerate(levels)
    )
    joins = "".join(d.join_sql(f"lv{i}") for i, d in enumerate(levels))
    group = ", ".join(f"k{i}" for i in range(len(levels)))
    rows = cur.execute(
        f"""
        SELECT {keys}, {labels},
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e),
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $ps AND c.x_ChargeDate < $pe)
        FROM charges c{joins}
        WHERE c.x_ChargeDate >= $lo AND c.x_ChargeDate < $hi AND c.BillingCurrency = $cur
        GROUP BY {group}
        """,
        params,
    ).fetchall()
    return _build_tree(levels, currency, rows, top)


@dataclass
class _Acc:
    cost: Decimal = ZERO
    previous: Decimal = ZERO
    label: tuple[dt.date, str] | None = None
    children: dict[str | None, _Acc] = field(default_factory=dict)


def _build_tree(levels: list[Dimension], currency: str, rows: list[tuple[Any, ...]], top: int | None) -> list[TreeNode]:
    depth = len(levels)
    root = _Acc()
    for row in rows:
        cost = row[2 * depth] if row[2 * depth] is not None else ZERO
        prev = row[2 * depth + 1] if row[2 * depth + 1] is not None else ZERO
        acc = root
        for i in range(depth):
            acc = acc.children.setdefault(row[i], _Acc())
            acc.cost += cost
            acc.previous += prev
            label = row[depth + i]  # (last day, name) on that day
            if label is not None and label[1] is not None and (acc.label is None or label > acc.label):
                acc.label = label

    def convert(acc: _Acc, level: int) -> list[TreeNode]:
        dim = levels[level]
        total = sum((child.cost for child in acc.children.values()), ZERO)
        ordered = sorted(
            acc.children.items(),
            key=lambda kv: (-kv[1].cost, -kv[1].previous, kv[0] is None, kv[0] or ""),
        )
        nodes = [
            Node(
                dimension=dim.name, key=key, label=_label(dim, key, child.label[1] if child.label else None),
                currency=currency, cost=child.cost, previous_cost=child.previous,
                share=child.cost / total if total else None, daily=[], is_unallocated=dim.is_tag and key is None,
            )
            for key, child in ordered
        ]
        folded = _fold_tail(nodes, top)
        out: list[TreeNode] = []
        for node in folded:
            below = [] if node.is_other or level + 1 >= depth else convert(acc.children[node.key], level + 1)
            out.append(TreeNode(node, below))
        return out

    return convert(root, 0) if rows else []


# --- Tag keys and resources -----------------------------------------------------------------------


def folded_keys(cur: duckdb.DuckDBPyConnection, key: str, *, fold_case: bool = True) -> list[str]:
    """The provider spellings folded into canonical `key` (`Team`, `TEAM`, an alias such as `owner_team`).

    Most used first; the canonical spelling itself is included when resources carry it.
    """
    canonical = "coalesce(a.canonical_key, lower(e.raw_key))" if fold_case else "coalesce(a.canonical_key, e.raw_key)"
    rows = cur.execute(
        f"""
        SELECT e.raw_key, count(*) AS n
        FROM (SELECT unnest(map_keys(Tags)) AS raw_key FROM resources WHERE Tags IS NOT NULL) e
        LEFT JOIN tag_aliases a ON a.alias_key = e.raw_key
        WHERE {canonical} = ?
        GROUP BY 1 ORDER BY n DESC, 1
        """,
        [key],
    ).fetchall()
    return [r[0] for r in rows]


@dataclass(frozen=True, slots=True)
class TagKeyCoverage:
    """How much of the estate a canonical tag key covers, by resource count and (with a period) by cost."""

    key: str
    resources: int
    resource_share: Decimal | None
    cost: Decimal | None = None  # cost of the tagged resources in the period (None without a period)
    cost_share: Decimal | None = None
    origins: dict[str, int] = field(default_factory=dict)  # provider / rule / manual -> resources


def tag_keys(
    cur: duckdb.DuckDBPyConnection, period: Period | None = None, metric: str = "effective",
    currency: str | None = None,
) -> list[TagKeyCoverage]:
    """Effective tag keys present, with coverage; by cost share when a period is given, else by count."""
    total_resources = int(_scalar(cur, "SELECT count(*) FROM resources") or 0)
    origin_rows = cur.execute(
        "SELECT tag_key, origin, count(*) FROM resource_tags GROUP BY 1, 2"
    ).fetchall()
    origins: dict[str, dict[str, int]] = {}
    for key, origin, n in origin_rows:
        origins.setdefault(key, {})[origin] = int(n)
    costs: dict[str, Decimal] = {}
    total_cost: Decimal | None = None
    if period is not None:
        currency = resolve_currency(cur, period, metric, currency)
        col = metric_column(metric)
        rows = cur.execute(
            f"""
            WITH rc AS (
                SELECT x_ResourceKey, sum({col}) AS cost FROM charges
                WHERE x_ChargeDate >= $s AND x_ChargeDate < $e AND BillingCurrency = $cur GROUP BY 1
            )
            SELECT NULL, sum(cost) FROM rc
            UNION ALL
            SELECT t.tag_key, sum(rc.cost) FROM resource_tags t JOIN rc ON rc.x_ResourceKey = t.resource_key GROUP BY 1
            """,
            {"s": period.start, "e": period.end, "cur": currency},
        ).fetchall()
        for key, cost in rows:
            if key is None:
                total_cost = cost or ZERO
            else:
                costs[key] = cost or ZERO
    out = []
    for key, by_origin in origins.items():
        count = sum(by_origin.values())
        cost = costs.get(key, ZERO) if period is not None else None
        out.append(TagKeyCoverage(
            key=key, resources=count,
            resource_share=Decimal(count) / total_resources if total_resources else None,
            cost=cost, cost_share=cost / total_cost if cost is not None and total_cost else None,
            origins=by_origin,
        ))
    out.sort(key=lambda c: (-(c.cost or ZERO), -c.resources, c.key))
    return out


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
    currency: str | None = None,
) -> ResourceDetail:
    """One resource: daily history, cost by meter and charge category, effective and raw tags. Two scans."""
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
    params = _window_params(period, previous, currency or "")
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
        daily=daily, by_meter=meters, by_charge_category=categories, tags=effective_tags(cur, rid),
        provider_tags=dict(raw_tags) if raw_tags else {},
    )


def effective_tags(cur: duckdb.DuckDBPyConnection, resource_id: str) -> list[EffectiveTag]:
    """A resource's effective tags with their origin, and for rule-set tags the rule's name."""
    from finops_tui.allocation.rules import rule_attribution

    rid = resource_id.lower()
    rows = cur.execute(
        "SELECT tag_key, tag_value, origin, raw_key FROM resource_tags WHERE ResourceId = ? ORDER BY tag_key", [rid]
    ).fetchall()
    by_rule = rule_attribution(cur, [rid]) if any(r[2] == "rule" for r in rows) else {}
    return [
        EffectiveTag(
            key, value, origin, raw_key if origin == "provider" else None,
            by_rule[(rid, key)].label if (rid, key) in by_rule else None,
        )
        for key, value, origin, raw_key in rows
    ]


def tag_values(cur: duckdb.DuckDBPyConnection, key: str) -> list[str]:
    """The effective values of a tag key across resources, most used first (for autocompleting a new value)."""
    rows = cur.execute(
        "SELECT tag_value FROM resource_tags WHERE tag_key = ? GROUP BY 1 ORDER BY count(*) DESC, 1",
        [key.strip().lower()],
    ).fetchall()
    return [r[0] for r in rows]


def _scalar(cur: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> Any:
    row = cur.execute(sql, list(params)).fetchone()
    return row[0] if row else None


# --- `finops-tui report allocation` ---------------------------------------------------------------


def allocation_report(cache: Cache, args: argparse.Namespace) -> str:
    """`report allocation --by LEVELS [--depth N]`: the tree as an indented table, CSV, Markdown or JSON.

    Costs in several currencies are never added: each currency gets its own tree unless --currency.
    """
    config = load_config()
    names = [s.strip() for s in args.by.split(",") if s.strip()] if args.by else None
    hierarchy = resolve_hierarchy(names or config.hierarchies.get("default") or DEFAULT_HIERARCHY)
    depth = getattr(args, "depth", None)
    if depth is not None and depth < 1:
        raise UsageError("--depth must be at least 1")
    with cache.cursor() as cur:
        period, fresh = resolve_period(cur, args.period)
        previous = period.previous()
        codes = [args.currency.upper()] if args.currency else currencies(cur, period, args.metric)
        trees = [
            (code, allocation_tree(cur, hierarchy, period, args.metric, code, depth=depth, top=args.top,
                                   previous=previous))
            for code in codes
        ]
    levels = [d.name for d in hierarchy[: depth or len(hierarchy)]]
    if args.format == "json":
        return to_json(_document(period, previous, args.metric, levels, trees)) + "\n"
    header = (
        f"Allocation by {' > '.join(levels)}: {period.describe()}, {METRIC_TITLES[args.metric]}; "
        f"compared with {previous.start} .. {previous.end}"
    )
    if period.anchored_on_data and fresh.data_end:
        header += f"\nData ends {fresh.data_end}; relative periods anchor on that day."
    # Each node prints its own exact figures to the cent; where the rounded children do not add up to
    # the rounded parent, a "(rounding)" row under them says by how much (see report.money).
    if args.format == "csv":
        rows: list[list[Any]] = []
        for code, tree in trees:
            for path, line in _lines(tree, []):
                if isinstance(line, RoundingLine):
                    rows.append([code, _path_text(path), len(path), "", "", ROUNDING_LABEL, line.cost, line.previous,
                                 "", line.change])
                else:
                    rows.append([code, _path_text(path), len(path), line.dimension, line.key or "", line.label,
                                 line.cost, line.previous_cost, _share_cell(line.share),
                                 shown_change(line.cost, line.previous_cost)])
        return render_rows(["currency", "path", "level", "dimension", "key", "label", "cost", "previous_cost",
                            "share", "change"], rows, "csv")
    parts = [header + "\n" if args.format == "table" else f"## {header}\n"]
    if not trees:
        parts.append("\nNo cost in this period.\n")
    for code, tree in trees:
        total = sum((t.node.cost for t in tree), ZERO)
        total_prev = sum((t.node.previous_cost for t in tree), ZERO)
        indent = "  " if args.format == "table" else "· "
        rows = [["Total", total, "100.0%" if total else "—", total_prev,
                 money(shown_change(total, total_prev), signed=True), change_percent(total, total_prev)]]
        for path, line in _lines(tree, []):
            if isinstance(line, RoundingLine):
                rows.append([indent * len(path) + ROUNDING_LABEL, line.cost, "", line.previous,
                             money(line.change, signed=True), ""])
            else:
                share = percent(line.share * 100, Decimal(100)) if line.share is not None else "—"
                rows.append([indent * len(path) + line.label, line.cost, share, line.previous_cost,
                             money(shown_change(line.cost, line.previous_cost), signed=True),
                             change_percent(line.cost, line.previous_cost)])
        parts.append("\n" + render_rows(
            [f"{' > '.join(levels)}", "cost", "share", "previous", "change", "change %"], rows, args.format,
            title=f"{code}",
        ))
    return "".join(parts)


def siblings_rounding(items: Sequence[TreeNode]) -> RoundingLine:
    """What a list of siblings, each rounded to the cent, misses to make their parent's rounded figures."""
    cost = sum((t.node.cost for t in items), ZERO)
    previous = sum((t.node.previous_cost for t in items), ZERO)
    return rounding_line(cost, previous, ((t.node.cost, t.node.previous_cost) for t in items))


def _lines(tree: list[TreeNode], path: list[Node]) -> list[tuple[list[Node], Node | RoundingLine]]:
    """Depth first, in display order: (ancestors, node), and after a level's nodes its rounding line if any."""
    out: list[tuple[list[Node], Node | RoundingLine]] = []
    for item in tree:
        out.append((path, item.node))
        out.extend(_lines(item.children, [*path, item.node]))
    if rounding := siblings_rounding(tree):
        out.append((path, rounding))
    return out


def _path_text(path: list[Node]) -> str:
    return " > ".join(f"{n.dimension}={n.label}" for n in path)


def _share_cell(share: Decimal | None) -> str:
    return "" if share is None else format(share.quantize(Decimal("0.0001")), "f")


def _node_document(item: TreeNode) -> dict[str, Any]:
    n = item.node
    doc: dict[str, Any] = {
        "dimension": n.dimension, "key": n.key, "label": n.label, "cost": n.cost, "previous_cost": n.previous_cost,
        "change": shown_change(n.cost, n.previous_cost), "share": _share_cell(n.share) or None,
        "unallocated": n.is_unallocated,
    }
    if n.is_other:
        doc["folded"] = n.folded_count
    if item.children:
        doc["children"] = [_node_document(c) for c in item.children]
        doc.update(_rounding_document(item.children))
    return doc


def _rounding_document(items: list[TreeNode]) -> dict[str, Any]:
    """`{"rounding": {...}}` when the rounded children miss the rounded parent, so JSON consumers foot too."""
    rounding = siblings_rounding(items)
    if not rounding:
        return {}
    return {"rounding": {"cost": rounding.cost, "previous_cost": rounding.previous, "change": rounding.change}}


def _document(
    period: Period, previous: Period, metric: str, levels: list[str], trees: list[tuple[str, list[TreeNode]]]
) -> dict[str, Any]:
    """The JSON shape of `report allocation --format json`: one nested tree per currency."""
    return {
        "view": "allocation",
        "period": {"start": period.start, "end": period.end, "spec": period.spec},
        "previous_period": {"start": previous.start, "end": previous.end},
        "metric": metric,
        "hierarchy": levels,
        "currencies": [
            {
                "currency": code,
                "cost": sum((t.node.cost for t in tree), ZERO),
                "previous_cost": sum((t.node.previous_cost for t in tree), ZERO),
                "children": [_node_document(t) for t in tree],
                **_rounding_document(tree),
            }
            for code, tree in trees
        ],
    }
