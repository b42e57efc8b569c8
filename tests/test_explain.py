"""Explain a change: each bucket alone on crafted data, exact sums on random data, the demo's planted changes, the
headless report."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finops_tui.allocation.effective import TagPolicy
from finops_tui.basis.periods import Period
from finops_tui.cli import main
from finops_tui.errors import UsageError, UserError
from finops_tui.ingest.demo import GPU_VM, PLANTED, SUBSCRIPTIONS, build_demo
from finops_tui.report.explain import KINDS, ScopePart, explain, parse_scope, resolve_scope, week_aligned_before
from finops_tui.store import open_cache
from tests.allocation_data import Charge, days, load, rid

pytestmark = pytest.mark.today(dt.date(2026, 11, 27))

SEP = Period(dt.date(2026, 9, 1), dt.date(2026, 10, 1), "2026-09-01..2026-10-01", dt.date(2026, 11, 26))
OCT = Period(dt.date(2026, 10, 1), dt.date(2026, 11, 1), "2026-10-01..2026-11-01", dt.date(2026, 11, 26))
# Thirty days each: the day count explains nothing.
BEFORE = Period(dt.date(2026, 10, 1), dt.date(2026, 10, 31), "2026-10-01..2026-10-31", dt.date(2026, 11, 26))
AFTER = Period(dt.date(2026, 10, 31), dt.date(2026, 11, 30), "2026-10-31..2026-11-30", dt.date(2026, 11, 26))

VM_A = rid("sub-a", "rg-app", "vm-a")
VM_NEW = rid("sub-a", "rg-app", "vm-new")
DISK = rid("sub-a", "rg-app", "disk-old").replace("virtualmachines", "disks")


def usage(day: dt.date, resource: str, cost: str, qty: float | None, meter: str = "D4s v5", **extra: object) -> Charge:
    columns: dict[str, object] = {"ConsumedQuantity": qty, "ConsumedUnit": "Hours" if qty is not None else None}
    columns.update(extra)
    return Charge(day, resource, Decimal(cost), meter=meter, extra=columns)


def steady(period: Period, resource: str = VM_A, cost: str = "10", qty: float = 24, **extra: object) -> list[Charge]:
    return [usage(day, resource, cost, qty, **extra) for day in days(period.start, period.days)]


def explained(tmp_path: Path, charges: Iterable[Charge], after: Period = AFTER, before: Period = BEFORE,
              scope: tuple[ScopePart, ...] = ()):
    with load(tmp_path / "cache.duckdb", charges) as cache, cache.cursor() as cur:
        return explain(cur, scope, after, before, "effective").currencies[0]


def only(result, kind: str, amount: str) -> None:
    amounts = {b.kind: b.amount for b in result.buckets}
    assert amounts[kind] == Decimal(amount)
    assert all(value == 0 for name, value in amounts.items() if name != kind), amounts
    assert sum(amounts.values(), Decimal(0)) == result.change


# ------------------------------------------------------------------------------------------------
# one bucket at a time


def test_a_new_vm_is_new_resources_alone(tmp_path: Path) -> None:
    charges = steady(BEFORE) + steady(AFTER) + [usage(d, VM_NEW, "7.5", 24) for d in days(dt.date(2026, 11, 10), 5)]
    result = explained(tmp_path, charges)
    only(result, "new_resources", "37.5")
    [top] = result.bucket("new_resources").top
    assert (top.resource_id, top.name, top.amount) == (VM_NEW, "vm-new", Decimal("37.5"))


def test_a_deleted_disk_is_removed_resources_alone(tmp_path: Path) -> None:
    disk = [usage(d, DISK, "1.25", 4.0, meter="P10 LRS Disk") for d in days(BEFORE.start, 12)]
    result = explained(tmp_path, steady(BEFORE) + steady(AFTER) + disk)
    only(result, "removed_resources", "-15")
    assert result.bucket("removed_resources").top[0].resource_id == DISK


def test_doubled_usage_is_usage_alone(tmp_path: Path) -> None:
    result = explained(tmp_path, steady(BEFORE) + steady(AFTER, cost="20", qty=48))
    only(result, "usage", "300")
    [top] = result.bucket("usage").top
    assert (top.resource_id, top.meter) == (VM_A, "D4s v5")


def test_a_price_rise_is_price_alone(tmp_path: Path) -> None:
    result = explained(tmp_path, steady(BEFORE) + steady(AFTER, cost="11.5"))
    only(result, "price", "45")


def test_a_resize_from_d4_to_d8_is_sku_swap_alone(tmp_path: Path) -> None:
    after = [usage(d, VM_A, "20", 24, meter="D8s v5") for d in days(AFTER.start, AFTER.days)]
    result = explained(tmp_path, steady(BEFORE) + after)
    only(result, "sku_swap", "300")
    meters = {c.meter: c.amount for c in result.bucket("sku_swap").top}
    assert meters == {"D8s v5": Decimal(600), "D4s v5": Decimal(-300)}


def test_a_reservation_starting_to_cover_a_vm_is_commitment_alone(tmp_path: Path) -> None:
    covered = steady(AFTER, cost="6.2", PricingCategory="Committed", CommitmentDiscountStatus="Used",
                     CommitmentDiscountId="/providers/microsoft.capacity/reservationorders/ro/reservations/r1")
    result = explained(tmp_path, steady(BEFORE, PricingCategory="Standard") + covered)
    only(result, "commitment", "-114")


def test_a_refund_is_one_off_alone(tmp_path: Path) -> None:
    refund = Charge(dt.date(2026, 11, 12), VM_A, Decimal("-42.10"), category="Credit", meter="Service credit")
    result = explained(tmp_path, steady(BEFORE) + steady(AFTER) + [refund])
    only(result, "one_off", "-42.10")
    assert result.bucket("one_off").top[0].meter == "Service credit"


def test_thirty_against_thirty_one_days_is_days_alone(tmp_path: Path) -> None:
    result = explained(tmp_path, steady(SEP) + steady(OCT), after=OCT, before=SEP)
    only(result, "days", "10")


def test_rows_without_a_quantity_go_to_other_and_say_so(tmp_path: Path) -> None:
    result = explained(tmp_path, steady(BEFORE, qty=None) + steady(AFTER, cost="12", qty=None))  # type: ignore[arg-type]
    only(result, "other", "60")


def test_a_unit_that_changes_goes_to_other(tmp_path: Path) -> None:
    result = explained(tmp_path, steady(BEFORE) + steady(AFTER, cost="11", qty=2400, ConsumedUnit="Minutes"))
    only(result, "other", "30")


def test_a_zero_quantity_beside_a_cost_goes_to_other(tmp_path: Path) -> None:
    result = explained(tmp_path, steady(BEFORE, qty=0) + steady(AFTER, cost="11", qty=0))
    only(result, "other", "30")


# ------------------------------------------------------------------------------------------------
# exact on any data


ROW = st.tuples(
    st.integers(0, 59),  # day offset from 2026-10-01: both periods
    st.integers(0, 4),  # resource
    st.sampled_from(["D4s v5", "D8s v5", "P10 Disk"]),
    st.decimals(min_value=Decimal("-5"), max_value=Decimal("500"), places=6, allow_nan=False),
    st.one_of(st.none(), st.just(0.0), st.floats(0.001, 1000, allow_nan=False)),
    st.sampled_from(["Usage", "Usage", "Usage", "Purchase", "Credit"]),
    st.sampled_from([None, "Used", "Unused"]),
    st.sampled_from(["Hours", "Hours", "GB"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ROW, min_size=1, max_size=40))
def test_buckets_always_add_up_to_the_change_and_no_row_counts_twice(rows: list[tuple]) -> None:
    charges = [
        Charge(dt.date(2026, 10, 1) + dt.timedelta(days=offset), None if r == 4 else rid("sub-a", "rg", f"vm{r}"),
               cost, meter=meter, category=category,
               extra={"ConsumedQuantity": qty, "ConsumedUnit": unit, "CommitmentDiscountStatus": status})
        for offset, r, meter, cost, qty, category, status, unit in rows
    ]
    after = Period(dt.date(2026, 10, 31), dt.date(2026, 11, 30), "x", dt.date(2026, 11, 29))
    before = Period(dt.date(2026, 10, 1), dt.date(2026, 10, 25), "y", dt.date(2026, 11, 29))  # 24 days vs 30
    with load(None, charges) as cache, cache.cursor() as cur:
        result = explain(cur, (), after, before, "effective")
        sums = dict(cur.execute(
            """
            SELECT 'before', sum(EffectiveCost) FILTER (WHERE x_ChargeDate < '2026-10-25') FROM charges
            UNION ALL SELECT 'after', sum(EffectiveCost) FILTER (WHERE x_ChargeDate >= '2026-10-31') FROM charges
            UNION ALL SELECT 'one_off', sum(CASE WHEN x_ChargeDate >= '2026-10-31' THEN EffectiveCost
                                                 WHEN x_ChargeDate < '2026-10-25' THEN -EffectiveCost END)
                FROM charges WHERE ChargeCategory <> 'Usage'
            UNION ALL SELECT 'new', sum(EffectiveCost) FROM charges c
                WHERE ChargeCategory = 'Usage' AND coalesce(CommitmentDiscountStatus, '') <> 'Unused'
                  AND x_ChargeDate >= '2026-10-31' AND NOT EXISTS (
                    SELECT 1 FROM charges p WHERE p.ResourceId IS NOT DISTINCT FROM c.ResourceId
                      AND p.ChargeCategory = 'Usage' AND coalesce(p.CommitmentDiscountStatus, '') <> 'Unused'
                      AND p.x_ChargeDate < '2026-10-25')
            """
        ).fetchall())
    if not result.currencies:
        assert sums["before"] is None and sums["after"] is None
        return
    [usd] = result.currencies
    assert usd.before == (sums["before"] or 0) and usd.after == (sums["after"] or 0)
    assert sum((b.amount for b in usd.buckets), Decimal(0)) == usd.change
    assert usd.bucket("one_off").amount == (sums["one_off"] or 0)
    assert usd.bucket("new_resources").amount == (sums["new"] or 0)
    for bucket in usd.buckets:  # a row's money reaches a bucket through one contributor only
        assert sum((c.amount for c in bucket.top), bucket.rest) == bucket.amount


# ------------------------------------------------------------------------------------------------
# scopes


def test_scopes_parse_and_resolve_to_the_tree_keys(tmp_path: Path) -> None:
    charges = [*steady(BEFORE), Charge(BEFORE.start, VM_NEW, Decimal(5), tags={"team": "payments"})]
    with load(tmp_path / "c.duckdb", charges) as cache, cache.cursor() as cur:
        parts = resolve_scope(cur, parse_scope("tag:team:Payments, subscription:Subscription SUB-A,resource:vm-a"))
        unallocated = resolve_scope(cur, parse_scope("team:(unallocated)"))
    assert parts == [ScopePart("tag:team", "payments", "payments"),
                     ScopePart("subscription", "sub-a", "Subscription SUB-A"),
                     ScopePart("resource", VM_A, "vm-a")]
    assert unallocated == [ScopePart("tag:team", None, "(unallocated)")]


@pytest.mark.parametrize(("text", "words"), [
    ("colour:red", "unknown dimension 'colour'"),
    ("subscription", "no ':'"),
    ("tag:team", "tag:KEY:VALUE"),
    ("service:", "no value"),
])
def test_a_bad_scope_is_one_line_naming_the_part_and_the_dimensions(text: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_scope(text)
    message = str(caught.value)
    assert words in message and "subscription" in message and "tag:KEY" in message and "\n" not in message


def test_a_scope_value_the_cache_does_not_hold_is_a_user_error(tmp_path: Path) -> None:
    with load(tmp_path / "c.duckdb", steady(BEFORE)) as cache, cache.cursor() as cur, \
            pytest.raises(UserError, match="subscription:nope"):
        resolve_scope(cur, parse_scope("subscription:nope"))


def test_a_scope_keeps_only_its_rows(tmp_path: Path) -> None:
    other = rid("sub-b", "rg-x", "vm-x")
    charges = steady(BEFORE) + steady(AFTER, cost="20", qty=48) + steady(AFTER, resource=other)
    result = explained(tmp_path, charges, scope=(ScopePart("subscription", "sub-a", "A"),))
    only(result, "usage", "300")


def test_week_aligned_before_compares_the_same_weekdays() -> None:
    later, earlier = week_aligned_before(dt.date(2026, 11, 15), dt.date(2026, 11, 18))
    assert (earlier.start, earlier.end) == (dt.date(2026, 11, 8), dt.date(2026, 11, 11))
    later, earlier = week_aligned_before(dt.date(2026, 11, 6), dt.date(2026, 11, 27))
    assert earlier.end == later.start and earlier.days == later.days == 21


# ------------------------------------------------------------------------------------------------
# the demo's planted changes

DEMO_END = dt.date(2026, 11, 26)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo(path, TagPolicy(), end=DEMO_END, months=2)
    return path


def _demo_explain(path: Path, scope: list[ScopePart], after: Period, before: Period) -> tuple:
    with open_cache(path, read_only=True) as cache, cache.cursor() as cur:
        result = explain(cur, scope, after, before, "effective", top=20)
        team = cur.execute("SELECT tag_value FROM resource_tags WHERE ResourceId = ? AND tag_key = 'team'",
                           [PLANTED.new_sku_resource_id]).fetchone()
        return result.currencies[0], team


MTD = Period(dt.date(2026, 11, 1), dt.date(2026, 11, 27), "mtd", DEMO_END)


def test_the_demo_step_change_is_usage_in_its_subscription(demo: Path) -> None:
    scope = [ScopePart("subscription", PLANTED.step_subscription, "prod-data")]
    usd, _ = _demo_explain(demo, scope, MTD, MTD.previous())
    assert sum((b.amount for b in usd.buckets), Decimal(0)) == usd.change
    usage_bucket = usd.bucket("usage")
    assert usage_bucket.amount == max(b.amount for b in usd.buckets) and usage_bucket.amount > usd.change / 2
    with duckdb.connect(str(demo), read_only=True) as con:
        subs = {r[0] for r in con.execute("SELECT DISTINCT SubAccountId FROM charges WHERE ResourceId IN "
                                          f"({','.join('?' * len(usage_bucket.top))})",
                                          [c.resource_id for c in usage_bucket.top]).fetchall()}
    assert subs == {SUBSCRIPTIONS["prod-data"].sub_account_id}


def test_the_demo_gpu_resize_is_a_sku_swap_naming_the_gpu_meter(demo: Path) -> None:
    with open_cache(demo, read_only=True) as cache, cache.cursor() as cur:
        [team] = cur.execute("SELECT tag_value FROM resource_tags WHERE ResourceId = ? AND tag_key = 'team'",
                             [PLANTED.new_sku_resource_id]).fetchone()
    usd, _ = _demo_explain(demo, [ScopePart("tag:team", team, team)], MTD, MTD.previous())
    swap = usd.bucket("sku_swap")
    assert swap.top[0].resource_id == PLANTED.new_sku_resource_id and swap.top[0].meter == GPU_VM.name
    assert swap.amount > 0 and sum((b.amount for b in usd.buckets), Decimal(0)) == usd.change


def test_the_demo_spike_is_usage_of_the_log_workspace(demo: Path) -> None:
    first, last = PLANTED.spike_days(DEMO_END)[0], PLANTED.spike_days(DEMO_END)[-1]
    after, before = week_aligned_before(first, last + dt.timedelta(days=1))
    scope = [ScopePart("resource-group", PLANTED.spike_resource_group, PLANTED.spike_resource_group)]
    usd, _ = _demo_explain(demo, scope, after, before)
    usage_bucket = usd.bucket("usage")
    assert usage_bucket.amount > usd.change * Decimal("0.8")
    assert "/microsoft.operationalinsights/workspaces/" in (usage_bucket.top[0].resource_id or "")


# ------------------------------------------------------------------------------------------------
# headless


def test_report_explain_json_has_the_issue_shape_and_adds_up(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", "explain", "--cache", str(demo), "--scope", "subscription:prod-data", "--format", "json",
                 "--top", "3"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["scope"] == [{"dimension": "subscription", "key": PLANTED.step_subscription, "label": "prod-data"}]
    assert doc["period"]["start"] == "2026-11-01" and doc["vs"]["start"] == "2026-10-01"
    [usd] = doc["currencies"]
    assert [b["kind"] for b in usd["buckets"]] == list(KINDS)
    assert set(usd["buckets"][3]["top"][0]) == {"resource_id", "name", "meter", "amount"}
    assert all(len(b["top"]) <= 3 for b in usd["buckets"])
    shown = sum(Decimal(b["amount"]) for b in usd["buckets"]) + Decimal(usd.get("rounding", "0"))
    assert shown == Decimal(usd["change"]) == Decimal(usd["after"]) - Decimal(usd["before"])


@pytest.mark.parametrize("fmt", ["table", "csv", "md"])
def test_report_explain_prints_every_format(demo: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "explain", "--cache", str(demo), "--format", fmt, "--vs", "2026-10-01..2026-10-27"]) == 0
    out = capsys.readouterr().out
    assert "usage" in out.lower() and "sku_swap" in out.replace("SKU / meter swap", "sku_swap")


def test_report_explain_bad_scope_is_one_line(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "explain", "--cache", str(demo), "--scope", "colour:red"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "colour:red" in err and "tag:KEY" in err


def test_an_anomaly_is_explained_over_its_days_against_the_same_weekdays_before(demo: Path) -> None:
    from finops_tui.recommend.engine import generate
    from finops_tui.recommend.generators.anomalies import KIND_STEP, anomaly_days
    from finops_tui.recommend.model import Context

    with open_cache(demo, read_only=True) as cache, cache.cursor() as cur:
        ctx = Context.from_cache(cur)
        assert ctx is not None
        found, _ = generate(cur, ctx)
        step = next(r for r in found if r.kind == KIND_STEP and r.scope.key == PLANTED.step_subscription.lower())
        days_of_step = anomaly_days(step)
        assert days_of_step == (PLANTED.step_first_day(DEMO_END), DEMO_END)
        after, before = week_aligned_before(days_of_step[0], days_of_step[1] + dt.timedelta(days=1))
        assert step.jump is not None
        scope = [ScopePart(dim, key, key) for dim, key in step.jump.path]
        usd = explain(cur, scope, after, before, "effective", step.currency).currencies[0]
    assert usd.bucket("usage").amount == max(b.amount for b in usd.buckets)
    assert anomaly_days(next(r for r in found if r.kind not in ("cost-step", "cost-spike"))) is None
