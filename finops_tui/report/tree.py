"""Allocation tree read model: a node's children over a hierarchy of dimensions, and the whole tree at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb

from finops_tui.basis.dimensions import NONE_LABEL, UNALLOCATED, Dimension, dimension, labelled_for_cache
from finops_tui.basis.metrics import metric_column, resolve_currency
from finops_tui.basis.money import RoundingLine, rounding_line
from finops_tui.basis.periods import Period
from finops_tui.errors import UsageError
from finops_tui.report.shared_nodes import PoolShare
from finops_tui.report.sources import CHARGES, Source, source_for
from finops_tui.store import summaries

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
    shared: PoolShare | None = None  # with shared costs on: a shared cost pool or a recipient's share of one

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
        if self.shared is not None and not self.shared.expandable:
            raise ValueError(f"{self.label} is a share of a shared cost pool and cannot be expanded")
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


def _aliased(dim: Dimension, alias: str, source: Source = CHARGES) -> Dimension:
    return source.level(dim, alias)


def _step_filter(
    dim: Dimension, key: str | None, name: str, params: dict[str, Any], source: Source = CHARGES
) -> str:
    """A WHERE clause keeping only the rows (of `source`) under one node of `dim`."""
    if dim.tag_key is not None:
        return source.tag_filter(dim.tag_key, key, name, params)
    if key is None:
        return f" AND {dim.key_sql} IS NULL"
    params[name] = key
    return f" AND {dim.key_sql} = ${name}"


def path_filter(path: Sequence[PathStep], params: dict[str, Any]) -> str:
    """WHERE clauses (each starting with AND) keeping the charges under the node at `path`, as the tree does."""
    steps = [(d if isinstance(d, Dimension) else dimension(d), key) for d, key in path]
    return "".join(_step_filter(dim, key, f"p{i}", params) for i, (dim, key) in enumerate(steps))


def window_params(period: Period, previous: Period, currency: str) -> dict[str, Any]:
    return {
        "s": period.start, "e": period.end, "ps": previous.start, "pe": previous.end,
        "lo": min(period.start, previous.start), "hi": max(period.end, previous.end), "cur": currency,
    }


# Levels that can hold tens of thousands of children: with a limit, only the top ones get a daily series.
HIGH_CARDINALITY = frozenset({"resource", "allocated-resource", "sku"})


def expansion_sql(
    level: Dimension, path: Sequence[tuple[Dimension, str | None]], metric: str, period: Period,
    previous: Period, currency: str, *, limit: int | None = None, row_filter: str = "", source: Source = CHARGES,
) -> tuple[str, dict[str, Any]]:
    """The one query behind an expansion: current, previous and daily cost of each child.

    Without `limit`, one pass grouped by (child, day). With `limit` on a high-cardinality level, the
    daily series are computed for the top `limit` children only and the tail comes back as one summed
    row, so expanding a resource group of 20,000 resources costs what expanding 200 does. `row_filter` (an
    `AND …` clause over `c`) narrows the charges, e.g. to direct cost when shared costs are on. `source` is
    the table read (`charges`, or the summary when it holds every dimension involved).
    """
    col = metric_column(metric)
    level = _aliased(level, "lv", source)
    # Where the label is the key itself (or a tag's value), `_label` names the node from its key: no string
    # aggregate per row.
    label_sql = "NULL" if level.is_tag or level.label_sql == level.key_sql else level.label_sql
    params = window_params(period, previous, currency)
    # Over charges, the tag nodes above (with a value) and a tag level read resource_tags in one join: a semi-join
    # per step and a LEFT JOIN for the level would each scan the tags and probe every charge row again.
    owned = {} if source.is_summary else {
        f"p{i}": (dim.tag_key, key) for i, (dim, key) in enumerate(path) if dim.tag_key is not None and key is not None
    }
    join = level.join_sql("lv")
    if owned:
        join = source.owners_join([(name, *step) for name, step in owned.items()], level.tag_key, params, "lv")
    filters = "".join(_step_filter(dim, key, f"p{i}", params, source) for i, (dim, key) in enumerate(path)
                      if f"p{i}" not in owned)
    table = source.table
    source_sql = f"""
            FROM {table} c{join}
            WHERE c.x_ChargeDate >= $lo AND c.x_ChargeDate < $hi AND c.BillingCurrency = $cur{filters}{row_filter}"""
    if limit is None or level.name not in HIGH_CARDINALITY:
        sql = f"""
        WITH daily AS (
            SELECT {level.key_sql} AS key, c.x_ChargeDate AS day, sum(c.{col}) AS cost, max({label_sql}) AS label
            {source_sql}
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
            SELECT {level.key_sql} AS key, {label_sql} AS label, c.x_ChargeDate AS day, c.{col} AS cost
            {source_sql}
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


def normalise_path(path: Sequence[PathStep]) -> list[tuple[Dimension, str | None]]:
    """Steps with dimension names resolved to Dimensions."""
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
    row_filter: str = "",
) -> list[Node]:
    """The children of the node at `path` (one (dimension, key) per level above), largest first.

    The children are grouped by `hierarchy[len(path)]` and always sum to the parent exactly, the
    unallocated node included. `limit` keeps the largest N and folds the rest into one `is_other`
    node (the unallocated node is always kept: it is what users come to fix); pass one (e.g. 200)
    when a level may be large, it bounds the work at resource level. One SQL query.
    """
    with summaries.pinned(cur):
        return _children(cur, hierarchy, path, period, metric, currency, limit=limit, previous=previous,
                         row_filter=row_filter)


def _children(
    cur: duckdb.DuckDBPyConnection, hierarchy: Sequence[str | Dimension], path: Sequence[PathStep], period: Period,
    metric: str, currency: str | None, *, limit: int | None, previous: Period | None, row_filter: str,
) -> list[Node]:
    dims = resolve_hierarchy(hierarchy)
    steps = normalise_path(path)
    if len(steps) >= len(dims):
        raise UsageError(f"the path has {len(steps)} steps but the hierarchy only {len(dims)} levels")
    previous = previous or period.previous()
    currency = resolve_currency(cur, period, metric, currency)
    [level] = labelled_for_cache(cur, [dims[len(steps)]])
    source = source_for(cur, [level, *(dim for dim, _key in steps)])
    sql, params = expansion_sql(level, steps, metric, period, previous, currency, limit=limit, row_filter=row_filter,
                                source=source)
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
    row_filter: str = "",
) -> list[TreeNode]:
    """The whole tree down to `depth` levels in one query (for export and `report allocation`).

    Figures equal what `children()` returns for each node; nodes carry no daily series. Labels follow
    the same rule (the latest day's name), so a renamed subscription reads the same in both.
    """
    dims = labelled_for_cache(cur, resolve_hierarchy(hierarchy))
    if depth is not None and depth < 1:
        raise UsageError("--depth must be at least 1")
    with summaries.pinned(cur):
        source = source_for(cur, dims[: depth or len(dims)])
        currency = resolve_currency(cur, period, metric, currency)
    levels = [_aliased(d, f"lv{i}", source) for i, d in enumerate(dims[: depth or len(dims)])]
    previous = previous or period.previous()
    col = metric_column(metric)
    params = window_params(period, previous, currency)
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
        FROM {source.table} c{joins}
        WHERE c.x_ChargeDate >= $lo AND c.x_ChargeDate < $hi AND c.BillingCurrency = $cur{row_filter}
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


def siblings_rounding(items: Sequence[TreeNode]) -> RoundingLine:
    """What a list of siblings, each rounded to the cent, misses to make their parent's rounded figures."""
    cost = sum((t.node.cost for t in items), ZERO)
    previous = sum((t.node.previous_cost for t in items), ZERO)
    return rounding_line(cost, previous, ((t.node.cost, t.node.previous_cost) for t in items))
