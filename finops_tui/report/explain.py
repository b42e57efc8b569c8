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
    change, and Q_before > 0 and Q_after > 0. With p = C_before / Q_before (the earlier unit price), s = the
    committed share of Q (rows with CommitmentDiscountStatus = Used or PricingCategory = Committed), p_od and
    p_c the on-demand and committed unit prices (p_od from the earlier period where it has on-demand use, else
    the later; p_c from the later where it has committed use, else the earlier):
      `usage`      = round(Q_after * p) - round(C_before * k)    (the change in quantity at the earlier price,
                                                                    beyond what the days explain)
      `commitment` = round(Q_after * (s_after - s_before) * (p_c - p_od))   (the same quantity moving between
                                                                    on-demand and a commitment)
      `price`      = C_after - round(Q_after * p) - commitment      (the change in unit price at the later
                                                                    quantity, what the other two leave)
    A line that cannot be measured (rows without a quantity, a unit that changed, a zero quantity beside a
    cost) puts C_after - round(C_before * k) in `other`: stated, never hidden.
round() is to 12 decimal places, the cache's own scale, half-even; `price` and `sku_swap` take what the rounding
leaves, so for every line and so for every bucket the parts add up to C_after - C_before exactly, and the buckets
add up to the change to the cent and beyond. Each row counts in one class, one resource and one line only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

import duckdb

from finops_tui.basis.dimensions import NONE_LABEL, PLAIN_DIMENSIONS, UNALLOCATED, Dimension, dimension
from finops_tui.basis.metrics import metric_column
from finops_tui.basis.money import cents
from finops_tui.basis.periods import Period
from finops_tui.errors import UsageError, UserError
from finops_tui.report.tree import path_filter

ZERO = Decimal(0)
SCALE = Decimal("1e-12")  # DECIMAL(38,12): every figure stays on the cache's own grid
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

_ONE_OFF, _UNUSED, _USAGE = 2, 1, 0


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
# the decomposition


def _q(value: Decimal) -> Decimal:
    return value.quantize(SCALE, rounding=ROUND_HALF_EVEN)


def _num(value: Any) -> Decimal:
    return ZERO if value is None else value if isinstance(value, Decimal) else Decimal(value)


@dataclass(slots=True)
class _Part:
    """One line's rows of one coverage (on-demand or committed) in both periods."""

    cost_a: Decimal = ZERO
    cost_b: Decimal = ZERO
    qty_a: Decimal = ZERO
    qty_b: Decimal = ZERO
    rows_a: int = 0
    rows_b: int = 0
    measured_a: bool = True  # every row has a quantity, in one unit
    measured_b: bool = True
    unit_a: str | None = None
    unit_b: str | None = None


@dataclass(slots=True)
class _Line:
    od: _Part = field(default_factory=_Part)
    committed: _Part = field(default_factory=_Part)

    def parts(self) -> tuple[_Part, _Part]:
        return self.od, self.committed

    @property
    def cost_a(self) -> Decimal:
        return self.od.cost_a + self.committed.cost_a

    @property
    def cost_b(self) -> Decimal:
        return self.od.cost_b + self.committed.cost_b

    @property
    def rows_a(self) -> int:
        return self.od.rows_a + self.committed.rows_a

    @property
    def rows_b(self) -> int:
        return self.od.rows_b + self.committed.rows_b


@dataclass(slots=True)
class _Currency:
    before: Decimal = ZERO
    after: Decimal = ZERO
    # (resource, meter) -> line, usage rows only
    lines: dict[tuple[str | None, str | None], _Line] = field(default_factory=dict)
    amounts: dict[str, dict[tuple[str | None, str | None], Decimal]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )

    def add(self, kind: str, resource: str | None, meter: str | None, amount: Decimal) -> None:
        if amount:
            bucket = self.amounts[kind]
            bucket[(resource, meter)] = bucket.get((resource, meter), ZERO) + amount


def _line_sql(col: str) -> str:
    one_off = ("(lower(coalesce(c.ChargeCategory, 'Usage')) <> 'usage' "
               "OR lower(coalesce(c.ChargeClass, '')) = 'correction')")
    status = "lower(coalesce(c.CommitmentDiscountStatus, ''))"
    committed = f"({status} = 'used' OR lower(coalesce(c.PricingCategory, '')) = 'committed')"
    in_b = "c.x_ChargeDate >= $s AND c.x_ChargeDate < $e"
    in_a = "c.x_ChargeDate >= $ps AND c.x_ChargeDate < $pe"
    qty = "coalesce(c.ConsumedQuantity, c.PricingQuantity)"
    unit = "CASE WHEN c.ConsumedQuantity IS NOT NULL THEN c.ConsumedUnit ELSE c.PricingUnit END"
    return f"""
        SELECT c.BillingCurrency,
               CASE WHEN {one_off} THEN {_ONE_OFF} WHEN {status} = 'unused' THEN {_UNUSED} ELSE {_USAGE} END AS cls,
               c.ResourceId,
               CASE WHEN {one_off} THEN coalesce(c.ChargeDescription, c.x_SkuMeterName, c.SkuId, c.ChargeCategory)
                    ELSE coalesce(c.x_SkuMeterName, c.SkuId, c.ChargeDescription) END AS meter,
               {committed} AS committed,
               sum(c.{col}) FILTER (WHERE {in_a}), sum(c.{col}) FILTER (WHERE {in_b}),
               sum({qty}) FILTER (WHERE {in_a}), sum({qty}) FILTER (WHERE {in_b}),
               count(*) FILTER (WHERE {in_a}), count(*) FILTER (WHERE {in_b}),
               count({qty}) FILTER (WHERE {in_a}), count({qty}) FILTER (WHERE {in_b}),
               min({unit}) FILTER (WHERE {in_a}), max({unit}) FILTER (WHERE {in_a}),
               min({unit}) FILTER (WHERE {in_b}), max({unit}) FILTER (WHERE {in_b}),
               max(c.ResourceName)
        FROM charges c
        WHERE c.x_ChargeDate >= $lo AND c.x_ChargeDate < $hi AND (({in_a}) OR ({in_b})) AND c.{col} IS NOT NULL
              {{filters}}
        GROUP BY ALL
    """


def line_query(
    scope: Sequence[ScopePart], period: Period, vs: Period, metric: str, currency: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The one aggregation behind `explain`: per currency, class, resource, meter and coverage, both periods."""
    params: dict[str, Any] = {
        "s": period.start, "e": period.end, "ps": vs.start, "pe": vs.end,
        "lo": min(period.start, vs.start), "hi": max(period.end, vs.end),
    }
    filters = path_filter([(part.dimension, part.key) for part in scope], params)
    if currency:
        params["cur"] = currency.upper()
        filters += " AND c.BillingCurrency = $cur"
    return _line_sql(metric_column(metric)).replace("{filters}", filters), params


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
    into the buckets of KINDS (see the module docstring). One scan of the two periods' rows."""
    vs = vs or period.previous()
    sql, params = line_query(scope, period, vs, metric, currency)
    rows = cur.execute(sql, params).fetchall()
    names: dict[str | None, str] = {}
    by_currency: dict[str, _Currency] = {}
    for (code, cls, rid, meter, committed, cost_a, cost_b, qty_a, qty_b, rows_a, rows_b, qrows_a, qrows_b,
         unit_a_lo, unit_a_hi, unit_b_lo, unit_b_hi, name) in rows:
        acc = by_currency.setdefault(code or "", _Currency())
        cost_a, cost_b = _num(cost_a), _num(cost_b)
        acc.before += cost_a
        acc.after += cost_b
        if name and rid not in names:
            names[rid] = name
        if cls == _ONE_OFF:
            acc.add("one_off", rid, meter, cost_b - cost_a)
        elif cls == _UNUSED:
            acc.add("commitment", rid, meter, cost_b - cost_a)
        else:
            line = acc.lines.setdefault((rid, meter), _Line())
            part = line.committed if committed else line.od
            part.cost_a += cost_a
            part.cost_b += cost_b
            part.qty_a += _num(qty_a)
            part.qty_b += _num(qty_b)
            part.rows_a += rows_a
            part.rows_b += rows_b
            part.measured_a = qrows_a == rows_a and unit_a_lo == unit_a_hi
            part.measured_b = qrows_b == rows_b and unit_b_lo == unit_b_hi
            part.unit_a, part.unit_b = unit_a_lo, unit_b_lo
    ratio = (Decimal(period.days), Decimal(vs.days))
    out: list[CurrencyExplanation] = []
    with localcontext() as ctx:
        ctx.prec = 80  # products of costs and float quantities stay exact before rounding to 12 places
        for code, acc in by_currency.items():
            _decompose(acc, ratio)
            buckets = tuple(_bucket(kind, acc.amounts[kind], names, top) for kind in KINDS)
            out.append(CurrencyExplanation(code, acc.before, acc.after, buckets))
    out.sort(key=lambda c: (-(abs(c.after) + abs(c.before)), c.currency))
    return Explanation(tuple(scope), period, vs, metric, tuple(out))


def _decompose(acc: _Currency, ratio: tuple[Decimal, Decimal]) -> None:
    """Usage lines into new / removed resources, days, usage, price, sku_swap, commitment and other."""
    days_after, days_before = ratio
    seen: dict[str | None, tuple[bool, bool]] = {}
    for (rid, _meter), line in acc.lines.items():
        was, now = seen.get(rid, (False, False))
        seen[rid] = (was or line.rows_a > 0, now or line.rows_b > 0)
    for (rid, meter), line in acc.lines.items():
        was, now = seen[rid]
        if not was:
            acc.add("new_resources", rid, None, line.cost_b)
            continue
        if not now:
            acc.add("removed_resources", rid, None, -line.cost_a)
            continue
        scaled = _q(line.cost_a * days_after / days_before)  # the earlier cost at the later number of days
        acc.add("days", rid, None, scaled - line.cost_a)
        rest = line.cost_b - scaled
        if not line.rows_a or not line.rows_b:
            acc.add("sku_swap", rid, meter, rest)
            continue
        measured = _measure(line)
        if measured is None:
            acc.add("other", rid, meter, rest)
            continue
        at_earlier_price, commitment = measured
        acc.add("usage", rid, meter, at_earlier_price - scaled)
        acc.add("commitment", rid, meter, commitment)
        acc.add("price", rid, meter, line.cost_b - at_earlier_price - commitment)


def _measure(line: _Line) -> tuple[Decimal, Decimal] | None:
    """(Q_after at the earlier unit price, the commitment effect) of a line used in both periods, or None when its
    quantities cannot say (rows without one, units that differ, no quantity beside a cost)."""
    present = [p for p in line.parts() if p.rows_a or p.rows_b]
    if not all((p.measured_a or not p.rows_a) and (p.measured_b or not p.rows_b) for p in present):
        return None
    units = {p.unit_a for p in present if p.rows_a} | {p.unit_b for p in present if p.rows_b}
    if len(units) != 1:
        return None
    od, committed = line.od, line.committed
    qty_a, qty_b = od.qty_a + committed.qty_a, od.qty_b + committed.qty_b
    if qty_a <= 0 or qty_b <= 0:
        return None
    at_earlier_price = _q(qty_b * line.cost_a / qty_a)
    share_a, share_b = committed.qty_a / qty_a, committed.qty_b / qty_b
    if share_a == share_b:
        return at_earlier_price, ZERO
    on_demand = _unit_price(od, prefer_earlier=True)
    reserved = _unit_price(committed, prefer_earlier=False)
    if on_demand is None or reserved is None:
        return None
    return at_earlier_price, _q(qty_b * (share_b - share_a) * (reserved - on_demand))


def _unit_price(part: _Part, *, prefer_earlier: bool) -> Decimal | None:
    earlier = part.cost_a / part.qty_a if part.qty_a > 0 else None
    later = part.cost_b / part.qty_b if part.qty_b > 0 else None
    return (earlier if earlier is not None else later) if prefer_earlier else (later if later is not None else earlier)


def _bucket(kind: str, amounts: dict[tuple[str | None, str | None], Decimal], names: dict[str | None, str],
            top: int) -> Bucket:
    total = sum(amounts.values(), ZERO)
    # Contributors worth less than half a cent (float quantities' noise in a unit price) are not listed; their
    # money stays in `rest`, so the bucket still adds up.
    items = [(key, amount) for key, amount in amounts.items() if cents(amount)]
    items.sort(key=lambda item: (-abs(item[1]), item[0][0] or "", item[0][1] or ""))
    shown = items[: max(top, 0)]
    contributors = tuple(
        Contributor(rid, names.get(rid) or (rid.rsplit("/", 1)[-1] if rid else NO_RESOURCE), meter, amount)
        for (rid, meter), amount in shown
    )
    rest = total - sum((c.amount for c in contributors), ZERO)
    return Bucket(kind, total, contributors, rest, len(items) - len(shown))


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


def bucket_rows(explanation: CurrencyExplanation, *, skip_zero: bool = False) -> Iterable[Bucket]:
    """The buckets in waterfall order (zero ones left out with `skip_zero`)."""
    return (b for b in explanation.buckets if b.amount or not skip_zero)
