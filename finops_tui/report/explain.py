"""Explain a change: the cost change of a scope between two periods, split into buckets that add up exactly.

A scope is a path of (dimension, key) steps as in the allocation tree (none: the whole cache); a tag step whose
key is None is the "(unallocated)" node. `after` is the period asked for, `before` the one compared with (the
previous period by default). Per billing currency (never added across currencies), with C = the metric's cost,
Q = ConsumedQuantity (PricingQuantity where ConsumedQuantity is NULL), D = the number of days of a period and
k = D_after / D_before, every charge row falls in exactly one of these classes and moves money into buckets:

- One-off rows (ChargeCategory other than Usage, or ChargeClass = Correction: purchases, refunds, credits,
  taxes, corrections): `one_off` = C_after - C_before, per resource and charge description.
- Unused commitment rows (CommitmentDiscountStatus = Unused: the idle part of a reservation or savings plan):
  `commitment` = C_after - C_before, per commitment.
- Usage rows, per resource (charges of no resource count as one resource, "(no resource)"):
  - `new_resources` = C_after of a resource with no usage row in the earlier period;
  - `removed_resources` = -C_before of a resource with no usage row in the later period;
  - a continuing resource (usage rows in both) is split into lines, one per meter
    (x_SkuMeterName, else SkuId, else ChargeDescription). For each line:
    `days` = round(C_before * k) - C_before (the earlier daily rate times the difference in days).
    A line used in only one of the periods (the resource moved to another meter: a resize) puts the rest
    in `sku_swap` = C_after - round(C_before * k).
    A line used in both periods is *measured* when all its rows carry a quantity, in one unit that did not
    change (rows that name no unit take the line's), and Q_before > 0 and Q_after > 0. With p = C_before /
    Q_before (the earlier unit price), s = the committed share of Q (rows with CommitmentDiscountStatus = Used or
    PricingCategory = Committed), p_od and p_c the on-demand and committed unit prices (p_od from the earlier
    period where it has on-demand use, else the later; p_c from the later where it has committed use, else the
    earlier):
      `usage`      = round(Q_after * p) - round(C_before * k)    (the change in quantity at the earlier price,
                                                                    beyond what the days explain)
      `commitment` = round(Q_after * (s_after - s_before) * (p_c - p_od))   (the same quantity moving between
                                                                    on-demand and a commitment)
      `price`      = C_after - round(Q_after * p) - commitment      (the change in unit price at the later
                                                                    quantity, what the other two leave)
    A line that cannot be measured (rows without a quantity, a unit that changed, a zero quantity beside a
    cost, a committed share that changed with no on-demand or no committed price to value it) puts
    C_after - round(C_before * k) in `other`: stated, never hidden.
round() is to 12 decimal places, the cache's own scale. round(C_before * k) is exact and half-even (DECIMAL and
HUGEINT arithmetic). Quantities are DOUBLE in the cache, so the two figures that go through a unit price are
computed in DOUBLE before they are rounded: round(Q_after * p) as C_before + round(C_before * (Q_after - Q_before)
/ Q_before) (exactly C_before when the quantity did not change), and `commitment`; each is within about 1e-15 of
the money involved of its exact value, far below a cent. `price` and `sku_swap` take what the rounding leaves, so
for every line and so for every bucket the parts add up to C_after - C_before exactly, and the buckets add up to
the change to the cent and beyond. Each row counts in one class, one resource and one line only.

All of it is one SQL statement (`explain_query`): DuckDB computes every line and bucket in DECIMAL, and hands back
per currency the two totals, each bucket's exact amount, how many contributors it lists (those that round to a
cent or more) and the first `top` of them, largest first (ties by resource id, then meter).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from finops_tui.basis.dimensions import NONE_LABEL, PLAIN_DIMENSIONS, UNALLOCATED, Dimension, dimension
from finops_tui.basis.metrics import metric_column
from finops_tui.basis.periods import Period
from finops_tui.errors import UsageError, UserError
from finops_tui.report.tree import path_filter

ZERO = Decimal(0)
KINDS = (
    "new_resources", "removed_resources", "days", "usage", "price", "sku_swap", "commitment", "one_off", "other",
)
KIND_TITLES = {
    "new_resources": "New resources",
    "removed_resources": "Removed resources",
    "days": "Days in period",
    "usage": "Usage",
    "price": "Unit price",
    "sku_swap": "SKU / meter swap",
    "commitment": "Commitment coverage",
    "one_off": "One-off charges",
    "other": "Other (not attributable)",
}
KIND_HINTS = {
    "new_resources": "resources with no cost in the earlier period",
    "removed_resources": "resources with no cost in the later period",
    "days": "the earlier daily rate times the difference in days",
    "usage": "more or less quantity at the earlier unit price",
    "price": "the change in unit price at the later quantity",
    "sku_swap": "cost that moved from one meter to another on the same resource (a resize)",
    "commitment": "the same use moving between on-demand and a reservation or savings plan; idle commitment",
    "one_off": "purchases, refunds, credits, corrections and tax",
    "other": "what the data cannot attribute: rows without a quantity, a unit that changed",
}
NO_RESOURCE = "(no resource)"
DEFAULT_TOP = 10


@dataclass(frozen=True, slots=True)
class ScopePart:
    """One step of a scope: a dimension name (as in basis.dimensions), its key (None: unallocated / none), a label."""

    dimension: str
    key: str | None
    label: str

    def describe(self) -> str:
        return f"{self.dimension}={self.label}"


@dataclass(frozen=True, slots=True)
class Contributor:
    """A resource (and meter or charge) behind part of a bucket."""

    resource_id: str | None
    name: str
    meter: str | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Bucket:
    kind: str
    amount: Decimal
    top: tuple[Contributor, ...]
    rest: Decimal = ZERO  # what the contributors beyond `top` add up to
    rest_count: int = 0

    @property
    def title(self) -> str:
        return KIND_TITLES[self.kind]


@dataclass(frozen=True, slots=True)
class CurrencyExplanation:
    currency: str
    before: Decimal
    after: Decimal
    buckets: tuple[Bucket, ...]  # one per KINDS, in that order

    @property
    def change(self) -> Decimal:
        return self.after - self.before

    def bucket(self, kind: str) -> Bucket:
        return next(b for b in self.buckets if b.kind == kind)


@dataclass(frozen=True)
class Explanation:
    scope: tuple[ScopePart, ...]
    period: Period  # the later period (after)
    vs: Period  # the earlier one (before)
    metric: str
    currencies: tuple[CurrencyExplanation, ...]

    def currency(self, code: str) -> CurrencyExplanation | None:
        return next((c for c in self.currencies if c.currency == code), None)

    def scope_text(self) -> str:
        return ", ".join(part.describe() for part in self.scope) if self.scope else "the whole cache"


# --------------------------------------------------------------------------------------------------
# scopes: DIM:VALUE[,DIM:VALUE...]


def _scope_usage(part: str, why: str) -> UsageError:
    dims = ", ".join(PLAIN_DIMENSIONS)
    return UsageError(f"--scope part {part!r}: {why}; expected DIM:VALUE with DIM one of {dims} or tag:KEY "
                      "(e.g. tag:team:payments,subscription:prod-data)")


def parse_scope(text: str | None) -> list[tuple[Dimension, str]]:
    """`tag:team:payments,subscription:prod-data` → [(tag:team, "payments"), (subscription, "prod-data")]."""
    if text is None or not text.strip():
        return []
    out: list[tuple[Dimension, str]] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            raise _scope_usage(raw, "an empty part")
        if part.lower().startswith("tag:"):
            pieces = part.split(":", 2)
            if len(pieces) < 3 or not pieces[1].strip():
                raise _scope_usage(part, "a tag step needs a key and a value, tag:KEY:VALUE")
            name, value = f"tag:{pieces[1].strip()}", pieces[2]
        else:
            name, sep, value = part.partition(":")
            if not sep:
                raise _scope_usage(part, "no ':' between the dimension and the value")
        if not value.strip():
            raise _scope_usage(part, "no value after the dimension")
        try:
            dim = dimension(name.strip())
        except UsageError:
            raise _scope_usage(part, f"unknown dimension {name.strip()!r}") from None
        out.append((dim, value.strip()))
    return out


def resolve_scope(cur: duckdb.DuckDBPyConnection, parts: Sequence[tuple[Dimension, str]]) -> list[ScopePart]:
    """Each value as the key the tree uses: a subscription by id or name, a resource by id or unique name, a tag
    value as written (any case); `(unallocated)` / `(none)` for the node without a value."""
    return [_resolve_part(cur, dim, value) for dim, value in parts]


def _resolve_part(cur: duckdb.DuckDBPyConnection, dim: Dimension, value: str) -> ScopePart:
    where = f"{dim.name}:{value}"
    if value.lower() in (UNALLOCATED, NONE_LABEL):
        return ScopePart(dim.name, None, UNALLOCATED if dim.is_tag else NONE_LABEL)
    if dim.tag_key is not None:
        rows = cur.execute(
            "SELECT DISTINCT tag_value FROM resource_tags WHERE tag_key = $k AND lower(tag_value) = lower($v) "
            "ORDER BY tag_value = $v DESC, 1 LIMIT 5",
            {"k": dim.tag_key, "v": value},
        ).fetchall()
        if not rows:
            raise UserError(f"--scope {where}: no resource has the tag {dim.tag_key} = {value!r}; "
                            f"`finops-tui report overview --by {dim.name}` lists its values")
        return ScopePart(dim.name, rows[0][0], rows[0][0])
    if dim.name == "resource":
        rows = cur.execute(
            "SELECT ResourceId, coalesce(ResourceName, ResourceId) FROM resources "
            "WHERE ResourceId = lower($v) OR lower(ResourceName) = lower($v) ORDER BY ResourceId = lower($v) DESC, 1 "
            "LIMIT 4",
            {"v": value},
        ).fetchall()
        exact = [r for r in rows if r[0] == value.lower()]
        rows = exact or rows
    else:
        rows = cur.execute(
            f"SELECT DISTINCT {dim.key_sql}, {dim.label_sql} FROM charges c "
            f"WHERE {dim.key_sql} = $v OR lower({dim.key_sql}) = lower($v) OR lower({dim.label_sql}) = lower($v) "
            "LIMIT 4",
            {"v": value},
        ).fetchall()
        exact = [r for r in rows if r[0] == value]
        rows = exact or rows
    keys = list(dict.fromkeys(r[0] for r in rows))
    if not keys:
        raise UserError(f"--scope {where}: no {dim.title.lower()} with that name or id in the cache; "
                        f"`finops-tui report overview --by {dim.name}` lists them")
    if len(keys) > 1:
        raise UserError(f"--scope {where}: several match ({', '.join(keys[:3])}); give the id instead")
    label = next(r[1] for r in rows if r[0] == keys[0])
    return ScopePart(dim.name, keys[0], label or keys[0])


# --------------------------------------------------------------------------------------------------
# the decomposition: one statement, the per-line arithmetic in DuckDB, only bucket totals and top contributors back

_ONE_OFF, _UNUSED, _USAGE = 2, 1, 0
_TOTALS = ("before", "after")  # two pseudo-kinds the statement returns beside the buckets
_MONEY = "DECIMAL(38,12)"


def _line_sql(col: str) -> str:
    one_off = ("(lower(coalesce(c.ChargeCategory, 'Usage')) <> 'usage' "
               "OR lower(coalesce(c.ChargeClass, '')) = 'correction')")
    status = "lower(coalesce(c.CommitmentDiscountStatus, ''))"
    in_b = "c.x_ChargeDate >= $s AND c.x_ChargeDate < $e"
    in_a = "c.x_ChargeDate >= $ps AND c.x_ChargeDate < $pe"
    # Each row's class, meter, period and coverage computed once, in a projection the aggregates filter on.
    return f"""
        SELECT currency, cls, rid, meter,
               coalesce(sum(cost) FILTER (WHERE in_a), 0) AS cost_a,
               coalesce(sum(cost) FILTER (WHERE in_b), 0) AS cost_b,
               coalesce(sum(cost) FILTER (WHERE in_a AND committed), 0) AS c_cost_a,
               coalesce(sum(cost) FILTER (WHERE in_b AND committed), 0) AS c_cost_b,
               coalesce(sum(qty) FILTER (WHERE in_a AND NOT committed), 0) AS od_qty_a,
               coalesce(sum(qty) FILTER (WHERE in_b AND NOT committed), 0) AS od_qty_b,
               coalesce(sum(qty) FILTER (WHERE in_a AND committed), 0) AS c_qty_a,
               coalesce(sum(qty) FILTER (WHERE in_b AND committed), 0) AS c_qty_b,
               count(*) FILTER (WHERE in_a) AS rows_a, count(*) FILTER (WHERE in_b) AS rows_b,
               count(qty) FILTER (WHERE in_a) AS qty_rows_a, count(qty) FILTER (WHERE in_b) AS qty_rows_b,
               min(unit) AS unit_lo, max(unit) AS unit_hi, max(name) AS name
        FROM (
            SELECT c.BillingCurrency AS currency,
                   CASE WHEN {one_off} THEN {_ONE_OFF} WHEN {status} = 'unused' THEN {_UNUSED} ELSE {_USAGE} END AS cls,
                   c.ResourceId AS rid,
                   CASE WHEN {one_off} THEN coalesce(c.ChargeDescription, c.x_SkuMeterName, c.SkuId, c.ChargeCategory)
                        ELSE coalesce(c.x_SkuMeterName, c.SkuId, c.ChargeDescription) END AS meter,
                   c.{col} AS cost, coalesce(c.ConsumedQuantity, c.PricingQuantity) AS qty,
                   CASE WHEN c.ConsumedQuantity IS NOT NULL THEN c.ConsumedUnit ELSE c.PricingUnit END AS unit,
                   c.ResourceName AS name, {in_a} AS in_a, {in_b} AS in_b,
                   {status} = 'used' OR lower(coalesce(c.PricingCategory, '')) = 'committed' AS committed
            FROM charges c
            WHERE c.x_ChargeDate >= $lo AND c.x_ChargeDate < $hi AND (({in_a}) OR ({in_b})) AND c.{col} IS NOT NULL
                  {{filters}}
        )
        GROUP BY ALL
    """


def line_query(
    scope: Sequence[ScopePart], period: Period, vs: Period, metric: str, currency: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The aggregation behind `explain`: per currency, class, resource and meter, both periods, with the committed
    part apart (what the buckets are computed from; the benchmark's raw side)."""
    params: dict[str, Any] = {
        "s": period.start, "e": period.end, "ps": vs.start, "pe": vs.end,
        "lo": min(period.start, vs.start), "hi": max(period.end, vs.end),
    }
    filters = path_filter([(part.dimension, part.key) for part in scope], params)
    if currency:
        params["cur"] = currency.upper()
        filters += " AND c.BillingCurrency = $cur"
    return _line_sql(metric_column(metric)).replace("{filters}", filters), params


def _scaled_sql(days_after: int, days_before: int) -> str:
    """round(cost_a × days_after / days_before) to 12 places, half-even, exact: in HUGEINT units of 1e-12."""
    if days_after == days_before:
        return "cost_a"
    units = f"(CAST(cost_a * 1000000000000 AS HUGEINT) * {days_after})"
    whole, left = f"(abs({units}) // {days_before})", f"(abs({units}) % {days_before})"
    up = f"2 * {left} > {days_before} OR (2 * {left} = {days_before} AND {whole} % 2 = 1)"
    half_even = f"CASE WHEN {up} THEN 1 ELSE 0 END"
    return f"CAST(sign({units}) * ({whole} + {half_even}) AS DECIMAL(38,0)) * CAST(0.000000000001 AS DECIMAL(13,12))"


# Which buckets a line feeds (the module docstring's cases, in its order), as a code the bucket amounts test.
_BRANCHES = (
    ("one_off", f"cls = {_ONE_OFF}"),
    ("unused", f"cls = {_UNUSED}"),
    ("new", "NOT was"),
    ("removed", "NOT now"),
    ("swap", "rows_a = 0 OR rows_b = 0"),
    ("other", "NOT is_measured"),
    ("measured", "true"),
)
_BRANCH = {name: i for i, (name, _condition) in enumerate(_BRANCHES)}


def _bucket_amounts_sql() -> list[tuple[str, bool, str]]:
    """(kind, keyed by meter too, amount of the line in it or NULL) for every bucket a line can feed."""
    b = _BRANCH
    continuing = f"branch >= {b['swap']}"
    return [
        ("one_off", True, f"CASE WHEN branch = {b['one_off']} THEN cost_b - cost_a END"),
        ("commitment", True, f"CASE WHEN branch = {b['unused']} THEN cost_b - cost_a "
                             f"WHEN branch = {b['measured']} THEN commitment END"),
        ("new_resources", False, f"CASE WHEN branch = {b['new']} THEN cost_b END"),
        ("removed_resources", False, f"CASE WHEN branch = {b['removed']} THEN -cost_a END"),
        ("days", False, f"CASE WHEN {continuing} THEN scaled - cost_a END"),
        ("sku_swap", True, f"CASE WHEN branch = {b['swap']} THEN cost_b - scaled END"),
        ("other", True, f"CASE WHEN branch = {b['other']} THEN cost_b - scaled END"),
        ("usage", True, f"CASE WHEN branch = {b['measured']} THEN at_earlier_price - scaled END"),
        ("price", True, f"CASE WHEN branch = {b['measured']} THEN cost_b - at_earlier_price - commitment END"),
    ]


def explain_query(
    scope: Sequence[ScopePart], period: Period, vs: Period, metric: str, currency: str | None = None,
    *, top: int = DEFAULT_TOP,
) -> tuple[str, dict[str, Any]]:
    """The whole decomposition of the module docstring as one statement over `line_query`. One row per currency and
    bucket (and per currency its `before` and `after` totals): kind, exact amount, how many contributors it lists
    (those of a cent or more) and the first `top` of them, largest first."""
    lines, params = line_query(scope, period, vs, metric, currency)
    params["top"] = max(top, 0)

    amounts = _bucket_amounts_sql()
    kinds = ", ".join(f"'{kind}'" for kind, _by_meter, _amount in amounts)
    meters = ", ".join("meter" if by_meter else "NULL" for _kind, by_meter, _amount in amounts)
    money = ",\n                           ".join(f"CAST({amount} AS {_MONEY})" for _kind, _by_meter, amount in amounts)
    branch = " ".join(f"WHEN {condition} THEN {_BRANCH[name]}" for name, condition in _BRANCHES)
    sql = f"""
        WITH lines AS MATERIALIZED ({lines}),
        resources AS (  -- is the line's resource used in each period, and its name
            SELECT *, coalesce(currency, '') AS code,
                   bool_or(cls = {_USAGE} AND rows_a > 0) OVER per_resource AS was,
                   bool_or(cls = {_USAGE} AND rows_b > 0) OVER per_resource AS now,
                   max(name) OVER per_resource AS resource_name,
                   od_qty_a + c_qty_a AS qty_a, od_qty_b + c_qty_b AS qty_b,
                   {_scaled_sql(period.days, vs.days)} AS scaled
            FROM lines WINDOW per_resource AS (PARTITION BY currency, rid)
        ),
        shares AS (
            SELECT *,
                   CASE WHEN qty_a > 0 AND qty_b > 0 THEN c_qty_a / qty_a END AS share_a,
                   CASE WHEN qty_a > 0 AND qty_b > 0 THEN c_qty_b / qty_b END AS share_b,
                   CASE WHEN od_qty_a > 0 THEN (cost_a - c_cost_a)::DOUBLE / od_qty_a
                        WHEN od_qty_b > 0 THEN (cost_b - c_cost_b)::DOUBLE / od_qty_b END AS price_on_demand,
                   CASE WHEN c_qty_b > 0 THEN c_cost_b::DOUBLE / c_qty_b
                        WHEN c_qty_a > 0 THEN c_cost_a::DOUBLE / c_qty_a END AS price_committed
            FROM resources
        ),
        measured AS (
            SELECT *,
                   coalesce(qty_rows_a = rows_a AND qty_rows_b = rows_b AND unit_lo IS NOT DISTINCT FROM unit_hi
                            AND qty_a > 0 AND qty_b > 0
                            AND (share_a = share_b OR (price_on_demand IS NOT NULL AND price_committed IS NOT NULL)),
                            false) AS is_measured,
                   -- Q_after at the earlier unit price, as C_before plus the change in quantity at that price:
                   -- exactly C_before when the quantity did not change
                   cost_a + CASE WHEN qty_a > 0 THEN CAST(cost_a::DOUBLE * ((qty_b - qty_a) / qty_a) AS {_MONEY})
                                 ELSE 0 END AS at_earlier_price,
                   CASE WHEN share_a = share_b OR share_a IS NULL THEN 0
                        ELSE CAST(qty_b * (share_b - share_a) * (price_committed - price_on_demand) AS {_MONEY})
                   END AS commitment
            FROM shares
        ),
        entries AS (  -- one row per bucket the line feeds (parallel lists unnest faster than a list of structs)
            SELECT code, resource_name, rid, unnest([{kinds}]) AS kind, unnest([{meters}]) AS meter,
                   unnest([{money}]) AS amount
            FROM (SELECT *, CASE {branch} END AS branch FROM measured)
        ),
        contributors AS (
            SELECT code, kind, rid, meter, sum(amount) AS amount, max(resource_name) AS name
            FROM entries WHERE amount <> 0 GROUP BY ALL
        ),
        ranked AS (  -- what rounds to a cent or more (half-even) by size: the first `top` and any tied at the cut
            SELECT *, abs(amount) > 0.005 AS listed,
                   rank() OVER (PARTITION BY code, kind ORDER BY abs(amount) DESC) AS rank
            FROM contributors
        )
        SELECT code, kind, sum(amount) AS amount, count(*) FILTER (WHERE listed) AS listed,
               list({{'rid': rid, 'name': name, 'meter': meter, 'amount': amount}}
                    ORDER BY abs(amount) DESC, coalesce(rid, ''), coalesce(meter, ''))
                   FILTER (WHERE listed AND rank <= $top) AS top
        FROM ranked GROUP BY code, kind
        UNION ALL
        SELECT coalesce(currency, ''), 'before', sum(cost_a), 0, NULL FROM lines GROUP BY ALL
        UNION ALL
        SELECT coalesce(currency, ''), 'after', sum(cost_b), 0, NULL FROM lines GROUP BY ALL
    """
    return sql, params


def explain(
    cur: duckdb.DuckDBPyConnection,
    scope: Sequence[ScopePart],
    period: Period,
    vs: Period | None = None,
    metric: str = "effective",
    currency: str | None = None,
    *,
    top: int = DEFAULT_TOP,
) -> Explanation:
    """The change in `metric` from `vs` (default: the period before) to `period` in `scope`, per currency, split
    into the buckets of KINDS (see the module docstring). One statement, one scan of the two periods' rows."""
    vs = vs or period.previous()
    sql, params = explain_query(scope, period, vs, metric, currency, top=top)
    by_currency: dict[str, dict[str, tuple[Decimal, int, list[dict[str, Any]]]]] = {}
    for code, kind, amount, listed, shown in cur.execute(sql, params).fetchall():
        by_currency.setdefault(code, {})[kind] = (_num(amount), int(listed), shown or [])
    out = [_currency(code, figures) for code, figures in by_currency.items()]
    out.sort(key=lambda c: (-(abs(c.after) + abs(c.before)), c.currency))
    return Explanation(tuple(scope), period, vs, metric, tuple(out))


def _num(value: Any) -> Decimal:
    return ZERO if value is None else value if isinstance(value, Decimal) else Decimal(value)


def _currency(code: str, figures: dict[str, tuple[Decimal, int, list[dict[str, Any]]]]) -> CurrencyExplanation:
    before, after = (figures.get(total, (ZERO, 0, []))[0] for total in _TOTALS)
    return CurrencyExplanation(code, before, after, tuple(_bucket(kind, *figures.get(kind, (ZERO, 0, [])))
                                                           for kind in KINDS))


def _bucket(kind: str, total: Decimal, listed: int, shown: list[dict[str, Any]]) -> Bucket:
    contributors = tuple(
        Contributor(c["rid"], c["name"] or (c["rid"].rsplit("/", 1)[-1] if c["rid"] else NO_RESOURCE), c["meter"],
                    _num(c["amount"]))
        for c in shown
    )
    rest = total - sum((c.amount for c in contributors), ZERO)
    return Bucket(kind, total, contributors, rest, listed - len(contributors))


# --------------------------------------------------------------------------------------------------
# periods around a finding


def week_aligned_before(start: dt.date, end: dt.date, anchor: dt.date | None = None) -> tuple[Period, Period]:
    """[start, end) and the same weekdays whole weeks earlier, just before it: what a jump is compared with."""
    days = (end - start).days
    shift = dt.timedelta(days=7 * max(1, -(-days // 7)))
    anchor = anchor or end - dt.timedelta(days=1)
    later = Period(start, end, f"{start.isoformat()}..{end.isoformat()}", anchor)
    earlier = Period(start - shift, end - shift, f"{(start - shift).isoformat()}..{(end - shift).isoformat()}", anchor)
    return later, earlier
