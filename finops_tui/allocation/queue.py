"""The unallocated queue: resources with no value for a tag key, ranked by cost, with suggested values."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb

from finops_tui.basis.arm_ids import arm_resource_id
from finops_tui.basis.dimensions import cached_providers, provider_qualified_sql
from finops_tui.basis.metrics import metric_column, resolve_currency
from finops_tui.basis.periods import Period
from finops_tui.store.sources import PROVIDER_SPLIT_SQL

ZERO = Decimal(0)
_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A likely value for the key, and why: `siblings`, `other-tag` or `group-name` evidence."""

    value: str
    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class QueueItem:
    resource_id: str
    name: str | None
    resource_type: str | None
    resource_group: str | None
    subscription_id: str | None
    subscription_name: str | None
    cost: Decimal
    suggestions: tuple[Suggestion, ...] = ()
    # For an allocated resource (a provider split's consumer, e.g. a Kubernetes workload): the shared resource
    # most of its cost was split from. Its tags are local: they are not an Azure resource's, push never sends them.
    host_id: str | None = None

    @property
    def is_allocated(self) -> bool:
        return self.host_id is not None

    @property
    def arm_id(self) -> str:
        """The id in the provider's casing (computed on demand: the queue can hold 100k resources)."""
        return arm_resource_id(self.resource_id, self.resource_group, self.name)

    @property
    def suggestion(self) -> Suggestion | None:
        """The strongest suggestion, if any."""
        return self.suggestions[0] if self.suggestions else None


@dataclass(slots=True)
class QueueGroup:
    """A resource group's unallocated resources: subtotal and count over all of them, items as listed."""

    resource_group: str | None
    cost: Decimal
    resources: int
    items: list[QueueItem] = field(default_factory=list)


@dataclass(slots=True)
class QueueSubscription:
    subscription_id: str | None
    subscription_name: str | None
    cost: Decimal
    resources: int
    groups: list[QueueGroup] = field(default_factory=list)


@dataclass(slots=True)
class UnallocatedQueue:
    """What to tag next for `key`: the biggest unallocated spend first.

    `total` equals the tree's "(unallocated)" node: every queued resource plus `without_resource`,
    the cost of charges that belong to no resource (purchases, support) and so cannot be tagged.
    """

    key: str
    currency: str
    period: Period
    total: Decimal
    without_resource: Decimal
    resources: int  # all resources in the queue (items may be fewer, with a limit)
    items: list[QueueItem]  # by cost, largest first
    subscriptions: list[QueueSubscription]  # subtotals over every queued resource; items as listed
    suggested: bool = True  # False: the suggestions are still being worked out (every other figure is final)


def unallocated_queue(
    cur: duckdb.DuckDBPyConnection,
    key: str,
    period: Period,
    metric: str = "effective",
    currency: str | None = None,
    *,
    limit: int | None = None,
    on_listed: Callable[[UnallocatedQueue], None] | None = None,
) -> UnallocatedQueue:
    """Resources lacking an effective value for `key` in the period, ranked by cost, with suggestions.

    Resources with no cost in the period are left out (nothing to allocate). `limit` lists only the
    costliest N (and suggests values for them); subtotals and counts still cover every resource.
    One scan of the period's charges by resource key (and one of its provider-split rows, for their hosts);
    the rest works on per-resource sums. `on_listed` is given the queue before its suggestions are worked out
    (`suggested` False; every figure and item already final): the suggestions are half the time, and a screen
    can paint without them.
    """
    key = key.strip().lower()
    code = resolve_currency(cur, period, metric, currency)
    col = metric_column(metric)
    # Cost per owning resource, on its integer key (every row carries it: store.sources.assign_resource_keys):
    # grouping the period's rows by the id strings cost 4-5x more at 10M rows. Tagged resources keep their cost
    # too, for the siblings' evidence. A provider-split row counts for its consumer, which remembers its main
    # host: only split rows read the host's id string.
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _rc AS
        WITH by_key AS (
            SELECT c.x_ResourceKey AS resource_key, sum(c.{col}) AS cost
            FROM charges c
            WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e AND c.BillingCurrency = $cur
            GROUP BY 1
        ), by_host AS (
            SELECT c.x_ResourceKey AS resource_key, c.ResourceId AS host, sum(c.{col}) AS cost
            FROM charges c
            WHERE c.x_ChargeDate >= $s AND c.x_ChargeDate < $e AND c.BillingCurrency = $cur
              AND {PROVIDER_SPLIT_SQL} AND c.ResourceId IS NOT NULL
            GROUP BY 1, 2
        ), main_host AS (
            SELECT resource_key, arg_max(host, (cost, host)) AS host_id FROM by_host GROUP BY 1
        )
        SELECT k.resource_key, k.cost, h.host_id
        FROM by_key k LEFT JOIN main_host h ON h.resource_key = k.resource_key
        """,
        {"s": period.start, "e": period.end, "cur": code},
    )
    try:
        # Same-named accounts of different clouds (sandbox-dev on Azure and AWS) read apart, as in the tree.
        account_sql = (provider_qualified_sql("r.SubAccountName", "r.ProviderName")
                       if len(cached_providers(cur)) > 1 else "r.SubAccountName")
        # Only the untagged survivors (a few thousand) look up their id and description: materialized, or the
        # planner joins every resource's strings first and drops the tagged ones last.
        cur.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _queue AS
            WITH untagged AS MATERIALIZED (
                SELECT rc.resource_key, rc.cost, rc.host_id
                FROM _rc rc ANTI JOIN (
                    SELECT resource_key FROM resource_tags WHERE tag_key = ? AND resource_key IS NOT NULL
                ) t ON t.resource_key = rc.resource_key
                WHERE rc.resource_key IS NOT NULL AND rc.cost <> 0
            )
            SELECT k.ResourceId, rc.resource_key, rc.cost, r.ResourceName, r.ResourceType, r.x_ResourceGroupName,
                   r.SubAccountId, {account_sql} AS SubAccountName, rc.host_id
            FROM untagged rc JOIN resource_keys k ON k.resource_key = rc.resource_key
            LEFT JOIN resources r ON r.ResourceId = k.ResourceId
            """,
            [key],
        )
        orphan = cur.execute("SELECT sum(cost) FROM _rc WHERE resource_key IS NULL").fetchone()
        without_resource = orphan[0] if orphan and orphan[0] is not None else ZERO
        limit_sql = f" LIMIT {int(limit)}" if limit is not None else ""
        # The cost as text, made a Decimal here: DuckDB's own DECIMAL → Decimal conversion was most of the fetch.
        rows = cur.execute(
            "SELECT ResourceId, cost::VARCHAR, ResourceName, ResourceType, x_ResourceGroupName, SubAccountId, "
            f"SubAccountName, host_id FROM _queue ORDER BY cost DESC, ResourceId{limit_sql}"
        ).fetchall()
        group_rows = cur.execute(
            """
            SELECT SubAccountId, any_value(SubAccountName), lower(x_ResourceGroupName), any_value(x_ResourceGroupName),
                   sum(cost), count(*)
            FROM _queue GROUP BY 1, 3
            """
        ).fetchall()
        items = [
            QueueItem(resource_id=rid, name=name, resource_type=rtype, resource_group=rg, subscription_id=sub,
                      subscription_name=sub_name, cost=Decimal(cost), host_id=host_id)
            for rid, cost, name, rtype, rg, sub, sub_name, host_id in rows
        ]
        total = without_resource + sum((row[4] for row in group_rows), ZERO)
        resources = sum(int(row[5]) for row in group_rows)

        def answer(listed: list[QueueItem], suggested: bool) -> UnallocatedQueue:
            return UnallocatedQueue(key=key, currency=code, period=period, total=total,
                                    without_resource=without_resource, resources=resources, items=listed,
                                    subscriptions=_group(listed, group_rows), suggested=suggested)

        if on_listed is not None:
            on_listed(answer(items, False))
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _shown AS SELECT * FROM _queue "
            f"ORDER BY cost DESC, ResourceId{limit_sql}"
        )
        suggestions = _suggest(cur, key)
    finally:
        for table in ("_rc", "_queue", "_shown"):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
    # Only the items with evidence are made again (positionally: `replace` costs twice as much); the rest are the
    # listed step's own.
    return answer([
        QueueItem(item.resource_id, item.name, item.resource_type, item.resource_group, item.subscription_id,
                  item.subscription_name, item.cost, tuple(found), item.host_id)
        if (found := suggestions.get(item.resource_id)) else item
        for item in items
    ], True)


def _group(items: list[QueueItem], group_rows: list[tuple[Any, ...]]) -> list[QueueSubscription]:
    subs: dict[str | None, QueueSubscription] = {}
    groups: dict[tuple[str | None, str | None], QueueGroup] = {}
    for sub_id, sub_name, rg_key, rg, cost, count in group_rows:
        sub = subs.setdefault(sub_id, QueueSubscription(sub_id, sub_name, ZERO, 0))
        sub.cost += cost
        sub.resources += int(count)
        group = groups[(sub_id, rg_key)] = QueueGroup(rg, cost, int(count))
        sub.groups.append(group)
    for item in items:
        groups[(item.subscription_id, item.resource_group.lower() if item.resource_group else None)].items.append(item)
    for sub in subs.values():
        sub.groups.sort(key=lambda g: (-g.cost, g.resource_group or ""))
    return sorted(subs.values(), key=lambda s: (-s.cost, s.subscription_id or ""))


def _suggest(cur: duckdb.DuckDBPyConnection, key: str) -> dict[str, list[Suggestion]]:
    """Evidence for each listed resource (`_shown`), strongest first: siblings, another tag, the group name."""
    found: dict[str, list[Suggestion]] = {}

    # (a) Tagged siblings in the same subscription and resource group: the value carrying most of their
    # cost in the period (resources without cost still count, by number, so a quiet group is not mute).
    rows = cur.execute(
        """
        WITH tagged AS (
            SELECT r.SubAccountId AS sub, lower(r.x_ResourceGroupName) AS rg, t.tag_value AS value,
                   count(*) AS n, coalesce(sum(rc.cost), 0) AS cost
            FROM resource_tags t JOIN resources r ON r.ResourceId = t.ResourceId
            LEFT JOIN _rc rc ON rc.resource_key = t.resource_key
            WHERE t.tag_key = $key
              AND (r.SubAccountId, lower(r.x_ResourceGroupName)) IN (
                  SELECT (SubAccountId, lower(x_ResourceGroupName)) FROM _shown)
            GROUP BY 1, 2, 3
        ), best AS (
            SELECT sub, rg, arg_max(value, (cost, n, value)) AS value, arg_max(n, (cost, n, value)) AS n,
                   arg_max(cost, (cost, n, value)) AS cost, sum(n) AS siblings, sum(cost) AS siblings_cost
            FROM tagged GROUP BY 1, 2
        )
        SELECT q.ResourceId, b.value, b.n, b.siblings, b.cost::VARCHAR, b.siblings_cost::VARCHAR, q.x_ResourceGroupName
        FROM _shown q JOIN best b ON b.sub IS NOT DISTINCT FROM q.SubAccountId AND b.rg = lower(q.x_ResourceGroupName)
        """,
        {"key": key},
    ).fetchall()
    def siblings(value: str, n: int, siblings: int, cost_text: str, siblings_cost_text: str, rg: str) -> Suggestion:
        cost, siblings_cost = Decimal(cost_text), Decimal(siblings_cost_text)
        share = f", {cost / siblings_cost:.0%} of their cost" if siblings_cost > 0 else ""
        return Suggestion(value, "siblings", f"{n} of {siblings} tagged resources in {rg} have {key}={value}{share}")

    for rid, suggestion in _per_evidence(rows, siblings):
        found.setdefault(rid, []).append(suggestion)

    # (c) Another tag whose value maps to exactly one value of `key` on every resource carrying both.
    rows = cur.execute(
        """
        WITH pairs AS (
            SELECT o.tag_key AS other_key, o.tag_value AS other_value, t.tag_value AS value, count(*) AS n
            FROM resource_tags o JOIN resource_tags t ON t.ResourceId = o.ResourceId AND t.tag_key = $key
            WHERE o.tag_key <> $key
            GROUP BY 1, 2, 3
        ), mapping AS (
            SELECT other_key, other_value, any_value(value) AS value, sum(n) AS n FROM pairs
            GROUP BY 1, 2 HAVING count(*) = 1 AND sum(n) >= 2
        )
        SELECT q.ResourceId, arg_max(m.value, (m.n, m.other_key)), arg_max(m.other_key, (m.n, m.other_key)),
               arg_max(m.other_value, (m.n, m.other_key)), max(m.n)
        FROM _shown q JOIN resource_tags o ON o.ResourceId = q.ResourceId
        JOIN mapping m ON m.other_key = o.tag_key AND m.other_value = o.tag_value
        GROUP BY 1
        """,
        {"key": key},
    ).fetchall()
    def other_tag(value: str, other_key: str, other_value: str, n: int) -> Suggestion:
        return Suggestion(value, "other-tag",
                          f"{other_key}={other_value} goes with {key}={value} on all {n} resources that carry both")

    for rid, suggestion in _per_evidence(rows, other_tag):
        _add(found, rid, suggestion)

    # (b) The resource group's name contains a known value as whole words (rg-payments-prod -> payments).
    values = [r[0] for r in cur.execute(
        "SELECT DISTINCT tag_value FROM resource_tags WHERE tag_key = ?", [key]
    ).fetchall()]
    value_tokens = sorted(
        ((v, _TOKEN.findall(v.lower())) for v in values), key=lambda vt: (-len(vt[1]), -len(vt[0]), vt[0])
    )
    value_tokens = [(v, t) for v, t in value_tokens if t]
    groups = cur.execute(
        "SELECT x_ResourceGroupName, list(ResourceId) FROM _shown WHERE x_ResourceGroupName IS NOT NULL GROUP BY 1"
    ).fetchall()
    for rg, ids in groups:
        match = _name_match(rg, value_tokens)
        if match is None:
            continue
        reason = f"resource group name {rg} contains {match!r}"
        for rid in ids:
            _add(found, rid, Suggestion(match, "group-name", reason))
    return found


def _per_evidence(rows: list[tuple[Any, ...]], make: Callable[..., Suggestion]) -> Iterator[tuple[str, Suggestion]]:
    """(resource id, suggestion) for each row (the id, then the evidence): one Suggestion per distinct evidence,
    shared by the resources it names, so its money is read and its reason written once (per resource group, say)
    rather than once per resource."""
    made: dict[tuple[Any, ...], Suggestion] = {}
    for rid, *evidence in rows:
        key = tuple(evidence)
        if key not in made:
            made[key] = make(*evidence)
        yield rid, made[key]


def _add(found: dict[str, list[Suggestion]], rid: str, suggestion: Suggestion) -> None:
    """Keep one suggestion per value: the first (strongest) reason wins."""
    existing = found.setdefault(rid, [])
    if all(s.value != suggestion.value for s in existing):
        existing.append(suggestion)


def _name_match(name: str, value_tokens: list[tuple[str, list[str]]]) -> str | None:
    """The longest known value whose words appear in a row in the name's words."""
    words = _TOKEN.findall(name.lower())
    for value, tokens in value_tokens:
        size = len(tokens)
        if any(words[i : i + size] == tokens for i in range(len(words) - size + 1)):
            return value
    return None
