"""Tag hygiene: one key spelled several ways (Team/TEAM/team) and near-duplicate values (payments/payment,
data-platform/dataplatform), each with the cost they split and the alias that would join them."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

import duckdb

from finops_tui.basis.money import money
from finops_tui.recommend.model import (
    Confidence,
    Context,
    EvidenceValue,
    JumpTarget,
    Recommendation,
    Scope,
    stable_id,
)
from finops_tui.recommend.prepare import RESOURCE, ensure_prepared, floors, monthly

KIND_KEYS = "tag-key-variants"
KIND_VALUES = "tag-value-variants"
_WINDOW_DAYS = 30
_NOT_ALNUM = re.compile(r"[^0-9a-z]")


def normalise(text: str) -> str:
    """Case and separators do not make a different name: `Data-Platform` → `dataplatform`."""
    return _NOT_ALNUM.sub("", text.lower())


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (a swap of two neighbours counts once)."""
    if a == b:
        return 0
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def variant_reason(a: str, b: str) -> tuple[str, Confidence] | None:
    """Why two tag values look like one name written twice, or None when they look distinct."""
    na, nb = normalise(a), normalise(b)
    if not na or not nb:
        return None
    if na == nb:
        return "same name, different case or separators", "high"
    short, long_ = sorted((na, nb), key=len)
    if long_ in (short + "s", short + "es"):
        return "singular and plural", "medium"
    # Digits usually number distinct things (app1/app2, team-a/team-b differ in their last letter only
    # after a separator, so short names are left alone).
    if min(len(na), len(nb)) >= 6 and not any(ch.isdigit() for ch in na + nb) and edit_distance(na, nb) == 1:
        return "one letter apart (typo?)", "low"
    return None


def _resource_cost_sql() -> str:
    return f"SELECT ResourceId, currency, sum(cost_30) AS cost FROM {RESOURCE} GROUP BY ResourceId, currency"


def _days(ctx: Context) -> int:
    return min(_WINDOW_DAYS, (ctx.data_end - ctx.data_start).days + 1)


def tag_key_variants(cur: duckdb.DuckDBPyConnection, ctx: Context) -> list[Recommendation]:
    """Provider tag keys that differ only in case or separators, with the cost under the minority spellings."""
    ensure_prepared(cur, ctx)
    floor = floors(cur)
    rows = cur.execute(
        f"""
        WITH cost AS ({_resource_cost_sql()}),
        keys AS (
            SELECT ResourceId, unnest(map_keys(Tags)) AS raw_key FROM resources
            WHERE Tags IS NOT NULL AND cardinality(Tags) > 0
        )
        SELECT c.currency, k.raw_key, count(DISTINCT k.ResourceId), sum(c.cost)
        FROM keys k JOIN cost c USING (ResourceId)
        GROUP BY ALL
        """
    ).fetchall()
    groups: dict[tuple[str, str], list[tuple[str, int, Decimal]]] = defaultdict(list)
    for currency, raw_key, resources, cost in rows:
        groups[(currency, normalise(raw_key))].append((raw_key, resources, cost))
    recs = []
    known = set(ctx.tag_keys)
    for (currency, norm), spellings in groups.items():
        if len(spellings) < 2 or not norm:
            continue
        # The configured spelling wins, else the one most resources use.
        spellings.sort(key=lambda s: (s[0] not in known, -s[1], -s[2], s[0]))
        canonical = spellings[0][0]
        others = spellings[1:]
        other_cost = sum((s[2] for s in others), Decimal(0))
        amount = monthly(other_cost, _days(ctx))
        if amount < floor.get(currency, Decimal(0)):
            continue
        evidence: list[tuple[str, EvidenceValue]] = [
            (f"'{key}'", f"{n} resources, {money(monthly(cost, _days(ctx)), currency)} / month")
            for key, n, cost in spellings
        ]
        evidence.append(("Suggested aliases", ", ".join(f"{k} → {canonical}" for k, _, _ in others)))
        scope = Scope("tag-key", norm, canonical)
        recs.append(
            Recommendation(
                id=stable_id(KIND_KEYS, scope.type, scope.key, currency),
                kind=KIND_KEYS,
                title=f"Tag key '{canonical}' also spelled {', '.join(repr(k) for k, _, _ in others)}",
                scope=scope,
                monthly_impact=amount,
                currency=currency,
                confidence="high",
                impact_kind="affected",
                action=f"Add the key aliases to config ([tags.aliases]) and fix the tags at source to '{canonical}'.",
                evidence=tuple(evidence),
                jump=JumpTarget("tagging", (), canonical.lower()),
            )
        )
    return recs


def tag_value_variants(cur: duckdb.DuckDBPyConnection, ctx: Context) -> list[Recommendation]:
    """Values of the same (effective) tag key that look like one name written several ways."""
    ensure_prepared(cur, ctx)
    floor = floors(cur)
    rows = cur.execute(
        f"""
        WITH cost AS ({_resource_cost_sql()})
        SELECT c.currency, t.tag_key, t.tag_value, count(DISTINCT t.ResourceId), sum(c.cost)
        FROM resource_tags t JOIN cost c USING (ResourceId)
        WHERE t.tag_key IN (SELECT unnest($keys))
        GROUP BY ALL
        ORDER BY 1, 2, 3  -- the clusters, and the reasons that joined them, come out in one order every run
        """,
        {"keys": list(ctx.tag_keys)},
    ).fetchall()
    by_key: dict[tuple[str, str], list[tuple[str, int, Decimal]]] = defaultdict(list)
    for currency, key, value, resources, cost in rows:
        by_key[(currency, key)].append((value, resources, cost))
    recs = []
    for (currency, key), values in by_key.items():
        for cluster, reasons in _clusters(values):
            cluster.sort(key=lambda v: (-v[2], -v[1], v[0]))
            canonical, others = cluster[0], cluster[1:]
            other_cost = sum((v[2] for v in others), Decimal(0))
            amount = monthly(other_cost, _days(ctx))
            if amount < floor.get(currency, Decimal(0)):
                continue
            confidence: Confidence = max((r[1] for r in reasons), key=lambda c: ("low", "medium", "high").index(c))
            evidence: list[tuple[str, EvidenceValue]] = [
                (f"'{v}'", f"{n} resources, {money(monthly(cost, _days(ctx)), currency)} / month")
                for v, n, cost in cluster
            ]
            evidence.append(("Why", "; ".join(dict.fromkeys(r[0] for r in reasons))))
            evidence.append(("Suggested aliases", ", ".join(f"{v[0]} → {canonical[0]}" for v in others)))
            scope = Scope("tag-value", f"{key}={normalise(canonical[0])}", f"{key}: {canonical[0]}")
            largest_other = max(others, key=lambda v: v[2])[0]
            recs.append(
                Recommendation(
                    id=stable_id(KIND_VALUES, scope.type, scope.key, currency),
                    kind=KIND_VALUES,
                    title=f"{key} '{canonical[0]}' also written {', '.join(repr(v[0]) for v in others)}",
                    scope=scope,
                    monthly_impact=amount,
                    currency=currency,
                    confidence=confidence,
                    impact_kind="affected",
                    action=f"Retag the {sum(v[1] for v in others)} resources to '{canonical[0]}' "
                    "(or add a value alias) so their cost lands on one owner.",
                    evidence=tuple(evidence),
                    jump=JumpTarget("allocation", ((f"tag:{key}", largest_other),)),
                    team=canonical[0] if key == ctx.team_key else None,
                )
            )
    return recs


def _clusters(
    values: list[tuple[str, int, Decimal]],
) -> list[tuple[list[tuple[str, int, Decimal]], list[tuple[str, Confidence]]]]:
    """Union the values that look alike; each cluster of two or more with the reasons that joined it."""
    parent = list(range(len(values)))
    reasons: dict[int, list[tuple[str, Confidence]]] = defaultdict(list)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            reason = variant_reason(values[i][0], values[j][0])
            if reason is None:
                continue
            a, b = root(i), root(j)
            if a != b:
                parent[b] = a
                reasons[a].extend(reasons.pop(b, []))
            reasons[a].append(reason)
    members: dict[int, list[tuple[str, int, Decimal]]] = defaultdict(list)
    for i, value in enumerate(values):
        members[root(i)].append(value)
    return [(m, reasons[r]) for r, m in members.items() if len(m) > 1]
