"""The allocation tree with shared costs: each pool's cost moved from where it was billed to its recipients.

A pool applies in a tree whose hierarchy has a level for its `to` key (`tag:team`). Its source rows leave
every node's direct figures (they no longer appear under "(unallocated)" or their original owner), and:

- when the key is the first level, each recipient's node gains the pool's share for it, and one level down
  the recipient gets a leaf child "shared: <pool>" holding that share (what no recipient could take sits
  under "(unallocated)" the same way);
- when the key is a deeper level, the pool shows at the top as its own node "shared: <pool>" with its whole
  cost; expanding it lists each recipient's share (leaves).

Children always sum to their parent, and the totals equal the tree without shared costs. Figures come from
`shared_splits` (materialised per day and currency when the pools were applied), read through the memo of
report.shared_nodes: an expansion costs the plain one plus one small statement (the pools and the splits'
version), and the first expansion of a period after a write one more (the period's splits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

import duckdb

from finops_tui.basis.dimensions import UNALLOCATED, Dimension
from finops_tui.basis.metrics import resolve_currency
from finops_tui.basis.periods import Period
from finops_tui.errors import UsageError
from finops_tui.report import tree
from finops_tui.report.shared_nodes import (
    PoolInfo,
    PoolKey,
    PoolShare,
    ShareRow,
    applied_pools,
    direct_filter,
    expansion_shares,
    pool_costs,
    share_rows,
)
from finops_tui.report.tree import Node, PathStep, TreeNode

ZERO = Decimal(0)


def active_pools(cur: duckdb.DuckDBPyConnection, dims: Sequence[Dimension]) -> tuple[list[PoolInfo], list[PoolInfo]]:
    """(the pools this hierarchy applies: their key is one of its levels, every applied pool)."""
    every = applied_pools(cur)
    names = {d.name for d in dims}
    return [p for p in every if f"tag:{p.to_key}" in names], every


def _key_level(pool: PoolInfo, dims: Sequence[Dimension]) -> int:
    return next(i for i, d in enumerate(dims) if d.name == f"tag:{pool.to_key}")


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
    """`report.tree.children` with shared costs on (same arguments; a "shared: <pool>" node's `step` drills)."""
    dims = tree.resolve_hierarchy(hierarchy)
    steps = tree.normalise_path(path)
    previous = previous or period.previous()
    currency = resolve_currency(cur, period, metric, currency)
    level = len(steps)
    pool_key = steps[0][1] if steps and isinstance(steps[0][1], PoolKey) else None
    if pool_key is not None and level > 1:
        raise UsageError("a recipient's share of a shared cost pool has no children")
    # The pools and the shares this expansion shows, read before the direct cost (its filter needs the pools):
    # a statement costs milliseconds however small its table, so this is one small one when the splits are
    # in memory.
    group = "top" if level == 0 else "pool" if pool_key is not None else (
        "recipient" if level == 1 and dims[0].is_tag else None)
    found = expansion_shares(cur, [d.name for d in dims], period, previous, currency, metric, group=group,
                             recipient=steps[0][1] if group == "recipient" else None,
                             pool_index=pool_key.pool_index if pool_key is not None else None)
    names = {d.name for d in dims}
    active = [p for p in found.pools if f"tag:{p.to_key}" in names]
    if not active:
        return tree.children(cur, dims, path, period, metric, currency, limit=limit, previous=previous)
    by_index = {p.index: p for p in active}
    if pool_key is not None:
        return _sorted(_recipient_nodes(by_index[pool_key.pool_index], found.rows, currency), limit)
    row_filter = direct_filter(active, found.pools)
    first_key_pools = [p for p in active if _key_level(p, dims) == 0]
    if level == 0:
        # Recipients gain their shares before the tail is folded, so the direct list comes unfolded then.
        direct = tree.children(cur, dims, path, period, metric, currency, limit=None if first_key_pools else limit,
                               previous=previous, row_filter=row_filter)
        wholes = [_whole_node(by_index[r.pool_index], [r], dims[0].name, currency, found.pool_cost)
                  for r in found.rows if r.pool_index != 0]
        if not first_key_pools:
            return _with_extra(direct, wholes)
        recipients = [r for r in found.rows if r.pool_index == 0]
        nodes = _merge_recipients(direct, recipients, dims[0], currency, period.days)
        return _sorted(nodes + wholes, limit)
    direct = tree.children(cur, dims, path, period, metric, currency, limit=limit, previous=previous,
                           row_filter=row_filter)
    if level == 1 and first_key_pools:
        extra = [_share_node(by_index[r.pool_index], r, dims[1].name, currency, found.pool_cost)
                 for r in found.rows if r.cost or r.previous]
        return _with_extra(direct, extra)
    return direct


def _recipient_nodes(pool: PoolInfo, rows: Sequence[ShareRow], currency: str) -> list[Node]:
    cost = pool_costs(rows).get(pool.index, ZERO)
    return [
        Node(
            dimension=f"tag:{pool.to_key}", key=r.recipient,
            label=r.recipient if r.recipient is not None else UNALLOCATED,
            currency=currency, cost=r.cost, previous_cost=r.previous, share=None, daily=r.daily,
            is_unallocated=r.recipient is None,
            shared=PoolShare(pool.index, pool.name, pool.method, pool.to_key, r.recipient, False, cost),
        )
        for r in rows if r.cost or r.previous
    ]


def _whole_node(pool: PoolInfo, rows: Sequence[ShareRow], dimension: str, currency: str,
                costs: dict[int, Decimal]) -> Node:
    days = len(rows[0].daily) if rows else 0
    return Node(
        dimension=dimension, key=PoolKey(pool.name, pool.index), label=pool.label, currency=currency,
        cost=sum((r.cost for r in rows), ZERO), previous_cost=sum((r.previous for r in rows), ZERO), share=None,
        daily=[sum((r.daily[i] for r in rows), ZERO) for i in range(days)],
        shared=PoolShare(pool.index, pool.name, pool.method, pool.to_key, None, True, costs.get(pool.index, ZERO)),
    )


def _share_node(pool: PoolInfo, row: ShareRow, dimension: str, currency: str, costs: dict[int, Decimal]) -> Node:
    return Node(
        dimension=dimension, key=PoolKey(pool.name, pool.index), label=pool.label, currency=currency, cost=row.cost,
        previous_cost=row.previous, share=None, daily=row.daily,
        shared=PoolShare(pool.index, pool.name, pool.method, pool.to_key, row.recipient, False,
                         costs.get(pool.index, ZERO)),
    )


def _merge_recipients(
    direct: list[Node], rows: Sequence[ShareRow], level: Dimension, currency: str, days: int
) -> list[Node]:
    """Direct nodes of the key's level plus each recipient's shares (a recipient with only shares gets a node)."""
    extra: dict[str | None, list[ShareRow]] = {}
    for row in rows:
        extra.setdefault(row.recipient, []).append(row)
    merged = []
    for node in direct:
        add = extra.pop(node.key, []) if not node.is_other else []
        merged.append(_plus(node, add) if add else node)
    for recipient, add in extra.items():
        base = Node(
            dimension=level.name, key=recipient, label=recipient if recipient is not None else UNALLOCATED,
            currency=currency, cost=ZERO, previous_cost=ZERO, share=None, daily=[ZERO] * days,
            is_unallocated=recipient is None,
        )
        merged.append(_plus(base, add))
    return merged


def _plus(node: Node, rows: Sequence[ShareRow]) -> Node:
    daily = list(node.daily)
    for row in rows:
        daily = [a + b for a, b in zip(daily, row.daily, strict=True)] if daily else list(row.daily)
    return replace(
        node, cost=node.cost + sum((r.cost for r in rows), ZERO),
        previous_cost=node.previous_cost + sum((r.previous for r in rows), ZERO), daily=daily,
    )


def _with_extra(direct: list[Node], extra: list[Node]) -> list[Node]:
    nodes = [n for n in direct if not n.is_other] + extra
    other = [n for n in direct if n.is_other]
    return _reshare(sorted(nodes, key=_order) + other)


def _order(node: Node) -> tuple[Decimal, Decimal, bool, str]:
    return (-node.cost, -node.previous_cost, node.key is None, node.key or "")


def _sorted(nodes: list[Node], limit: int | None) -> list[Node]:
    return _reshare(tree._fold_tail(sorted(nodes, key=_order), limit))


def _reshare(nodes: list[Node]) -> list[Node]:
    total = sum((n.cost for n in nodes), ZERO)
    return [replace(n, share=n.cost / total if total else None) for n in nodes]


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
    """`report.tree.allocation_tree` with shared costs on: the same nodes `children` gives, in one tree."""
    dims = tree.resolve_hierarchy(hierarchy)
    previous = previous or period.previous()
    currency = resolve_currency(cur, period, metric, currency)
    active, every = active_pools(cur, dims)
    if not active:
        return tree.allocation_tree(cur, dims, period, metric, currency, depth=depth, top=top, previous=previous)
    levels = depth or len(dims)
    direct = tree.allocation_tree(cur, dims, period, metric, currency, depth=depth, previous=previous,
                                  row_filter=direct_filter(active, every))
    rows = share_rows(cur, active, period, previous, currency, metric, daily=False)
    costs = pool_costs(rows)
    first = {p.index for p in active if _key_level(p, dims) == 0}
    by_index = {p.index: p for p in active}
    below: dict[str | None, list[TreeNode]] = {}
    if levels > 1:
        for row in rows:
            if row.pool_index in first and (row.cost or row.previous):
                node = _share_node(by_index[row.pool_index], row, dims[1].name, currency, costs)
                below.setdefault(row.recipient, []).append(TreeNode(node))
    merged_top = _merge_recipients([t.node for t in direct], [r for r in rows if r.pool_index in first], dims[0],
                                   currency, 0)
    children_of = {t.node.key: t.children for t in direct}
    items = []
    for node in merged_top:
        kids = [*children_of.get(node.key, []), *below.get(node.key, [])]
        items.append(TreeNode(node, kids))
    for pool in active:
        if pool.index in first:
            continue
        pool_rows = [r for r in rows if r.pool_index == pool.index]
        if not pool_rows:
            continue
        whole = _whole_node(pool, pool_rows, dims[0].name, currency, costs)
        kids = [TreeNode(n) for n in _recipient_nodes(pool, pool_rows, currency)] if levels > 1 else []
        items.append(TreeNode(whole, kids))
    return _fold(items, top)


def _fold(items: list[TreeNode], top: int | None) -> list[TreeNode]:
    """Siblings sorted, the tail folded and shares recomputed at every level, as `report.tree` does."""
    ordered = sorted(items, key=lambda t: _order(t.node))
    by_id = {id(t.node): t for t in ordered}
    folded = tree._fold_tail([t.node for t in ordered], top)
    out = []
    for node, reshared in zip(folded, _reshare(folded), strict=True):
        found = by_id.get(id(node))
        out.append(TreeNode(reshared, _fold(found.children, top) if found else []))
    return out
