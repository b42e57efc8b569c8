"""Explain computed in DuckDB: its buckets and contributors against an independent Python computation from the raw
rows (exact Fractions), to the cent, and the buckets still adding up to the change exactly."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finops_tui.basis.money import cents
from finops_tui.basis.periods import Period
from finops_tui.report.explain import KINDS, Explanation, explain, explain_query
from tests.allocation_data import Charge, days, load, rid

pytestmark = pytest.mark.today(dt.date(2026, 11, 27))

ANCHOR = dt.date(2026, 11, 29)
BEFORE = Period(dt.date(2026, 10, 1), dt.date(2026, 10, 25), "before", ANCHOR)  # 24 days
AFTER = Period(dt.date(2026, 10, 31), dt.date(2026, 11, 30), "after", ANCHOR)  # 30 days
EQUAL_BEFORE = Period(dt.date(2026, 10, 1), dt.date(2026, 10, 31), "equal", ANCHOR)  # 30 days too
OVERLAPPING = Period(dt.date(2026, 10, 20), dt.date(2026, 11, 9), "overlapping", ANCHOR)  # `--vs` allows it
# Quantities are DOUBLE in the cache and DuckDB sums them as DOUBLE: a figure that goes through a unit price is within
# this of the exact one (a billionth, and a hundred-trillionth of the money involved), far below a cent.
NEAR, RELATIVE = Decimal("1e-9"), Decimal("1e-14")


# ------------------------------------------------------------------------------------------------
# the reference: the module docstring's formulas over the raw rows, in exact fractions


def _r12(value: Fraction) -> Decimal:
    return Decimal(round(value * 10**12)).scaleb(-12)  # round() of a Fraction is half-even


@dataclass
class _Side:
    cost: Fraction = Fraction(0)
    qty: Fraction = Fraction(0)
    rows: int = 0
    qty_rows: int = 0
    units: set[str] = field(default_factory=set)

    def quantified(self) -> bool:
        return self.qty_rows == self.rows


@dataclass
class _Reference:
    before: Fraction = Fraction(0)
    after: Fraction = Fraction(0)
    buckets: dict[str, dict[tuple[str | None, str | None], Fraction]] = field(
        default_factory=lambda: {kind: defaultdict(Fraction) for kind in KINDS})

    def total(self, kind: str) -> Fraction:
        return sum(self.buckets[kind].values(), Fraction(0))


def reference(cur: duckdb.DuckDBPyConnection, after: Period, before: Period) -> dict[str, _Reference]:
    rows = cur.execute(
        """
        SELECT x_ChargeDate, coalesce(BillingCurrency, ''), ChargeCategory, ChargeClass, CommitmentDiscountStatus,
               PricingCategory, ResourceId, x_SkuMeterName, SkuId, ChargeDescription, ConsumedQuantity,
               ConsumedUnit, PricingQuantity, PricingUnit, EffectiveCost
        FROM charges WHERE EffectiveCost IS NOT NULL
        """
    ).fetchall()
    out: dict[str, _Reference] = {}
    lines: dict[str, dict[tuple[str | None, str | None], dict[tuple[bool, bool], _Side]]] = {}
    for row in rows:
        day, code = row[0], row[1]
        for later in (False, True):  # a row of two overlapping periods counts in both
            period = after if later else before
            if period.start <= day < period.end:
                _add_row(out.setdefault(code, _Reference()), lines.setdefault(code, {}), later, row[2:])
    ratio = Fraction(after.days, before.days)
    for code, by_line in lines.items():
        acc = out[code]
        seen: dict[str | None, tuple[bool, bool]] = {}
        for (resource, _meter), sides in by_line.items():
            was, now = seen.get(resource, (False, False))
            seen[resource] = (was or any(not later for _c, later in sides), now or any(later for _c, later in sides))
        for (resource, meter), sides in by_line.items():
            _decompose(acc, resource, meter, sides, seen[resource], ratio)
    return out


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)  # SQL's coalesce


def _add_row(acc: _Reference, lines: dict[tuple[str | None, str | None], dict[tuple[bool, bool], _Side]], later: bool,
             row: tuple[Any, ...]) -> None:
    (category, charge_class, status, pricing, resource, meter_name, sku, description, consumed, consumed_unit,
     pricing_qty, pricing_unit, cost) = row
    money = Fraction(cost)
    if later:
        acc.after += money
    else:
        acc.before += money
    change = money if later else -money
    if (category or "Usage").lower() != "usage" or (charge_class or "").lower() == "correction":
        acc.buckets["one_off"][(resource, _first(description, meter_name, sku, category))] += change
        return
    if (status or "").lower() == "unused":
        acc.buckets["commitment"][(resource, _first(meter_name, sku, description))] += change
        return
    committed = (status or "").lower() == "used" or (pricing or "").lower() == "committed"
    qty, unit = (consumed, consumed_unit) if consumed is not None else (pricing_qty, pricing_unit)
    line = lines.setdefault((resource, _first(meter_name, sku, description)), {})
    side = line.setdefault((committed, later), _Side())
    side.cost += money
    side.rows += 1
    if qty is not None:
        side.qty += Fraction(qty)
        side.qty_rows += 1
    if unit is not None:
        side.units.add(unit)


def _decompose(acc: _Reference, resource: str | None, meter: str | None, sides: dict[tuple[bool, bool], _Side],
               seen: tuple[bool, bool], ratio: Fraction) -> None:
    def side(committed: bool, later: bool) -> _Side:
        return sides.get((committed, later), _Side())

    cost_a = side(False, False).cost + side(True, False).cost
    cost_b = side(False, True).cost + side(True, True).cost
    was, now = seen
    if not was:
        acc.buckets["new_resources"][(resource, None)] += cost_b
        return
    if not now:
        acc.buckets["removed_resources"][(resource, None)] -= cost_a
        return
    scaled = Fraction(_r12(cost_a * ratio))
    acc.buckets["days"][(resource, None)] += scaled - cost_a
    rest = cost_b - scaled
    if not any(not later for _c, later in sides) or not any(later for _c, later in sides):
        acc.buckets["sku_swap"][(resource, meter)] += rest
        return
    measured = _measure(sides, cost_a)
    if measured is None:
        acc.buckets["other"][(resource, meter)] += rest
        return
    at_earlier_price, commitment = measured
    acc.buckets["usage"][(resource, meter)] += at_earlier_price - scaled
    acc.buckets["commitment"][(resource, meter)] += commitment
    acc.buckets["price"][(resource, meter)] += cost_b - at_earlier_price - commitment


def _measure(sides: dict[tuple[bool, bool], _Side], cost_a: Fraction) -> tuple[Fraction, Fraction] | None:
    units = set().union(*(s.units for s in sides.values()))  # rows without a unit take the line's
    if not all(s.quantified() for s in sides.values()) or len(units) > 1:
        return None
    empty = _Side()
    od_a, od_b = sides.get((False, False), empty), sides.get((False, True), empty)
    c_a, c_b = sides.get((True, False), empty), sides.get((True, True), empty)
    qty_a, qty_b = od_a.qty + c_a.qty, od_b.qty + c_b.qty
    if qty_a <= 0 or qty_b <= 0:
        return None
    at_earlier_price = Fraction(_r12(qty_b * cost_a / qty_a))
    share_a, share_b = c_a.qty / qty_a, c_b.qty / qty_b
    if share_a == share_b:
        return at_earlier_price, Fraction(0)
    on_demand = _price(od_a, od_b)
    reserved = _price(c_b, c_a)
    if on_demand is None or reserved is None:
        return None
    return at_earlier_price, Fraction(_r12(qty_b * (share_b - share_a) * (reserved - on_demand)))


def _price(first: _Side, then: _Side) -> Fraction | None:
    for s in (first, then):
        if s.qty > 0:
            return s.cost / s.qty
    return None


def assert_matches_reference(result: Explanation, ref: dict[str, _Reference]) -> None:
    assert {c.currency for c in result.currencies} == set(ref)
    for explained in result.currencies:
        expected = ref[explained.currency]
        near = NEAR + RELATIVE * (abs(explained.before) + abs(explained.after))
        assert explained.before == expected.before and explained.after == expected.after
        assert sum((b.amount for b in explained.buckets), Decimal(0)) == explained.change  # exactly, always
        for bucket in explained.buckets:
            exact = expected.total(bucket.kind)
            assert abs(bucket.amount - Decimal(exact.numerator) / Decimal(exact.denominator)) <= near, bucket.kind
            assert cents(bucket.amount) == cents(_r12(exact)), bucket.kind
            assert sum((c.amount for c in bucket.top), bucket.rest) == bucket.amount
            listed = {key: amount for key, amount in expected.buckets[bucket.kind].items()
                      if abs(amount) > Fraction(1, 200)}
            shown = {(c.resource_id, c.meter): c.amount for c in bucket.top}
            for key, amount in shown.items():
                assert key in listed or abs(amount) - Decimal("0.005") <= near, (bucket.kind, key)
                assert abs(amount - _r12(expected.buckets[bucket.kind].get(key, Fraction(0)))) <= near
            if bucket.rest_count == 0:  # everything listed is shown
                missing = {k: a for k, a in listed.items() if k not in shown and abs(a) - Fraction(1, 200) > near}
                assert not missing, (bucket.kind, missing)


# ------------------------------------------------------------------------------------------------
# the shape of the one query


def test_the_query_returns_bucket_totals_and_top_contributors_not_lines() -> None:
    charges = [Charge(day, rid("sub-a", "rg", f"vm{i}"), Decimal(i + 1), extra={"ConsumedQuantity": 24.0,
                                                                                 "ConsumedUnit": "Hours"})
               for i in range(30) for day in [BEFORE.start, AFTER.start + dt.timedelta(days=i % 3)]]
    with load(None, charges) as cache, cache.cursor() as cur:
        sql, params = explain_query((), AFTER, BEFORE, "effective", top=4)
        rows = cur.execute(sql, params).fetchall()
    assert len(rows) <= len(KINDS) + 2  # one currency: its buckets and its two totals
    assert all(len(row[-1] or []) <= 4 for row in rows)


# ------------------------------------------------------------------------------------------------
# random data: the SQL path equals the reference


ROW = st.tuples(
    st.integers(0, 59),  # day offset from 2026-10-01: both periods and the days between them
    st.integers(0, 4),  # resource (4: no resource)
    st.sampled_from(["D4s v5", "D8s v5", "P10 Disk", None]),
    st.decimals(min_value=Decimal("-5"), max_value=Decimal("500"), places=6, allow_nan=False),
    st.one_of(st.none(), st.just(0.0), st.floats(0.001, 1000, allow_nan=False)),
    st.sampled_from(["Usage", "Usage", "Usage", "Usage", "Purchase", "Credit", "Tax"]),
    st.sampled_from([None, None, "Used", "Unused"]),
    st.sampled_from([None, "Standard", "Committed"]),
    st.sampled_from(["Hours", "Hours", "Hours", "GB", None]),
    st.sampled_from(["USD", "USD", "USD", "EUR"]),
    st.sampled_from([None, None, None, "Correction"]),
)


def _charges(rows: list[tuple[Any, ...]]) -> list[Charge]:
    return [
        Charge(dt.date(2026, 10, 1) + dt.timedelta(days=offset), None if r == 4 else rid("sub-a", "rg", f"vm{r}"),
               cost, meter=meter, category=category, currency=currency,  # type: ignore[arg-type]
               extra={"ConsumedQuantity": qty, "ConsumedUnit": unit, "CommitmentDiscountStatus": status,
                      "PricingCategory": pricing, "ChargeClass": charge_class, "SkuId": f"sku-{r}",
                      "ChargeDescription": f"{category} of vm{r}"})
        for offset, r, meter, cost, qty, category, status, pricing, unit, currency, charge_class in rows
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ROW, min_size=1, max_size=50), st.sampled_from([BEFORE, EQUAL_BEFORE, OVERLAPPING]))
def test_sql_buckets_equal_the_exact_reference_on_random_data(rows: list[tuple[Any, ...]], before: Period) -> None:
    with load(None, _charges(rows)) as cache, cache.cursor() as cur:
        result = explain(cur, (), AFTER, before, "effective", top=1000)
        expected = reference(cur, AFTER, before)
    assert_matches_reference(result, expected)


# ------------------------------------------------------------------------------------------------
# the branches one at a time, against the reference and by hand

VM = rid("sub-a", "rg", "vm")


def _usage(period: Period, cost: str, qty: float | None, **extra: object) -> list[Charge]:
    columns: dict[str, object] = {"ConsumedQuantity": qty, "ConsumedUnit": "Hours"}
    columns.update(extra)
    return [Charge(day, VM, Decimal(cost), meter="D4s v5", extra=columns) for day in days(period.start, period.days)]


COMMITTED = {"PricingCategory": "Committed", "CommitmentDiscountStatus": "Used"}


@pytest.mark.parametrize(("label", "charges"), [
    ("half covered later, on-demand price only earlier",
     _usage(BEFORE, "10", 24) + _usage(AFTER, "3.1", 12, **COMMITTED) + _usage(AFTER, "5.2", 12)),
    ("covered earlier, on-demand later: the committed price from the earlier period",
     _usage(BEFORE, "6", 24, **COMMITTED) + _usage(AFTER, "10.5", 24)),
    ("a quarter covered then three quarters",
     _usage(BEFORE, "7.5", 18) + _usage(BEFORE, "1.5", 6, **COMMITTED)
     + _usage(AFTER, "2.6", 6) + _usage(AFTER, "4.6", 18, **COMMITTED)),
    ("pricing quantity where there is no consumed quantity",
     _usage(BEFORE, "10", None, PricingQuantity=2.5, PricingUnit="Hours")
     + _usage(AFTER, "13", None, PricingQuantity=3.0, PricingUnit="Hours")),
    ("large costs: exact when the quantity did not change",
     _usage(BEFORE, "123456789.123456789012", 24) + _usage(AFTER, "123456790.000000000001", 24)),
    ("large costs and a quantity that did",
     _usage(BEFORE, "98765432.100000000001", 24) + _usage(AFTER, "98765499.999999999999", 24.000001)),
    ("float quantities", _usage(BEFORE, "0.1", 0.1) + _usage(AFTER, "0.3", 0.3)),
])
def test_each_branch_equals_the_reference(label: str, charges: list[Charge]) -> None:
    for before in (BEFORE, EQUAL_BEFORE):
        with load(None, charges) as cache, cache.cursor() as cur:
            result = explain(cur, (), AFTER, before, "effective", top=1000)
            expected = reference(cur, AFTER, before)
        assert_matches_reference(result, expected)


def test_a_cost_that_did_not_change_in_quantity_is_price_alone_exactly() -> None:
    charges = _usage(EQUAL_BEFORE, "4115226.304115226300", 24) + _usage(AFTER, "4115226.304115226301", 24)
    with load(None, charges) as cache, cache.cursor() as cur:
        [usd] = explain(cur, (), AFTER, EQUAL_BEFORE, "effective").currencies
    amounts = {b.kind: b.amount for b in usd.buckets}
    assert amounts.pop("price") == Decimal("0.00000000003")
    assert not any(amounts.values()), amounts


def test_days_scale_exactly_and_round_half_even() -> None:
    # C_before = 2e-12 over 24 days; at 30 days 2.5e-12, half-even 2e-12: nothing to the days (half-up says 1e-12)
    charges = [Charge(BEFORE.start, VM, Decimal("0.000000000002"), extra={"ConsumedQuantity": 1.0,
                                                                        "ConsumedUnit": "Hours"}),
               Charge(AFTER.start, VM, Decimal("0.000000000005"), extra={"ConsumedQuantity": 1.0,
                                                                       "ConsumedUnit": "Hours"})]
    result = _whole(charges)
    with load(None, charges) as cache, cache.cursor() as cur:
        expected = reference(cur, AFTER, BEFORE)
    assert result.currencies[0].bucket("days").amount == 0
    assert result.currencies[0].bucket("price").amount == Decimal("0.000000000003")
    assert_matches_reference(result, expected)


def _whole(charges: list[Charge]) -> Explanation:
    with load(None, charges) as cache, cache.cursor() as cur:
        return explain(cur, (), AFTER, BEFORE, "effective", top=1000)


def test_negative_costs_scale_half_even_like_the_reference() -> None:
    charges = ([Charge(BEFORE.start + dt.timedelta(days=i), VM, Decimal(cost),
                       extra={"ConsumedQuantity": 1.0, "ConsumedUnit": "Hours"})
                for i, cost in enumerate(["-0.000000000003", "0.000000000001"])]
               + [Charge(AFTER.start, VM, Decimal("1"), extra={"ConsumedQuantity": 1.0, "ConsumedUnit": "Hours"})])
    # C_before = -2e-12; × 30/24 = -2.5e-12 → -2e-12 (half-even): days = 0
    result = _whole(charges)
    with load(None, charges) as cache, cache.cursor() as cur:
        expected = reference(cur, AFTER, BEFORE)
    assert result.currencies[0].bucket("days").amount == 0
    assert_matches_reference(result, expected)


def test_top_contributors_are_ordered_by_size_then_id_and_the_rest_adds_up() -> None:
    charges = []
    for i, cost in enumerate(["5", "9", "-9", "1", "0.004", "3"]):
        resource = rid("sub-a", "rg", f"vm{i}")
        charges.append(Charge(AFTER.start, resource, Decimal(cost), name=f"name-{i}"))
    with load(None, charges) as cache, cache.cursor() as cur:
        [usd] = explain(cur, (), AFTER, BEFORE, "effective", top=3).currencies
    new = usd.bucket("new_resources")
    assert [(c.name, c.amount) for c in new.top] == [("name-1", 9), ("name-2", -9), ("name-0", 5)]
    assert new.amount == Decimal("9.004") and new.rest == Decimal("4.004") and new.rest_count == 2
    assert new.top[0].meter is None and new.top[0].resource_id == rid("sub-a", "rg", "vm1")


def test_a_charge_without_a_resource_or_a_name_reads_as_no_resource_and_its_id_tail() -> None:
    charges = [Charge(AFTER.start, None, Decimal("2"), category="Purchase", meter="Reservation"),
               Charge(AFTER.start, VM, Decimal("3"), category="Tax", meter="VAT", name="")]
    with load(None, charges) as cache, cache.cursor() as cur:
        cur.execute("UPDATE charges SET ResourceName = NULL")
        [usd] = explain(cur, (), AFTER, BEFORE, "effective").currencies
    names = {(c.resource_id, c.name) for c in usd.bucket("one_off").top}
    assert names == {(None, "(no resource)"), (VM, "vm")}
