"""Sync through the Query API against the fake ARM: pagination, both metrics, FOCUS mapping, grouping limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import fake_arm
from tests.fake_arm import MONTHS, SUB, FakeArm, is_query, month_total, query_periods, sync

pytestmark = pytest.mark.today(fake_arm.TODAY)
arm = fake_arm.arm
cache = fake_arm.cache


def _rows(cache: Any, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with cache.cursor() as cur:
        return cur.execute(sql, params or []).fetchall()


def test_both_metrics_follow_next_link_and_match_the_fake_to_the_cent(arm: FakeArm, cache: Any) -> None:
    arm.page_size = 97  # many pages per window
    arm.add_scope(SUB, 25)
    run = sync(arm, cache, api_path="query")

    assert run.result.ok and run.result.windows_done == 6
    for month in MONTHS:
        assert month_total(cache, "BilledCost", month) == arm.total(SUB, "actual", month)
        assert month_total(cache, "EffectiveCost", month) == arm.total(SUB, "amortized", month)
        assert month_total(cache, "BilledCost", month) != month_total(cache, "EffectiveCost", month)
    # ActualCost rows carry BilledCost only and AmortizedCost rows EffectiveCost only: sums never double count.
    assert _rows(cache, "SELECT count(*) FROM charges WHERE (BilledCost IS NULL) = (EffectiveCost IS NULL)") == [(0,)]
    rows = _rows(cache, "SELECT s.metric, s.period_start, s.row_count, s.kind FROM sources s ORDER BY 2, 1")
    assert {(m, start): n for m, start, n, _ in rows} == {
        (metric, month): arm.rows(SUB, metric, month) for month in MONTHS for metric in ("actual", "amortized")
    }
    assert {kind for *_, kind in rows} == {"sync-query"}
    # pagination really happened, with $skiptoken re-POSTs of the same body
    pages = [r for r in arm.requests if is_query(r.method, r.path) and "$skiptoken" in r.query]
    assert len(pages) > 20
    state = _rows(cache, "SELECT metric, window_start, status, rows, api_path FROM sync_state ORDER BY 2, 1")
    assert [s[2] for s in state] == ["done"] * 6 and {s[4] for s in state} == {"query"}


def test_rows_are_mapped_to_focus_columns(arm: FakeArm, cache: Any) -> None:
    estate = arm.add_scope(SUB, 12)
    sync(arm, cache, api_path="query", months=1)

    vm = estate.resources[5]  # reserved VM: ActualCost 0, amortized cost, a reservation
    row = _rows(
        cache,
        """SELECT ResourceId, ResourceName, ResourceType, x_ResourceGroupName, SubAccountId, SubAccountName,
                  ServiceName, ServiceCategory, RegionId, RegionName, x_SkuMeterCategory, x_SkuMeterName,
                  ChargeCategory, PricingCategory, CommitmentDiscountType, CommitmentDiscountStatus,
                  CommitmentDiscountName, BillingCurrency, ChargePeriodEnd - ChargePeriodStart, Tags
           FROM charges WHERE ResourceId = ? AND EffectiveCost IS NOT NULL LIMIT 1""",
        [vm.resource_id.lower()],
    )[0]
    assert row[:12] == (
        vm.resource_id.lower(),
        vm.name,
        "microsoft.compute/virtualmachines",
        vm.group,
        SUB,
        "Sub A",
        "Virtual Machines",
        "Compute",
        "westeurope",
        "West Europe",
        "Virtual Machines",
        "D2s v3",
    )
    assert row[12:18] == ("Usage", "Committed", "Reservation", "Used", "vm-ri-3y", "USD")
    assert row[18].days == 1
    assert row[19] == vm.tags  # the three configured keys, spelled as Azure spelled them
    # "EU West" (a raw location spelling) goes through Regions.csv
    eu_west = estate.resources[2].resource_id.lower()
    assert _rows(cache, "SELECT DISTINCT RegionId, RegionName FROM charges WHERE ResourceId = ?", [eu_west]) == [
        ("westeurope", "West Europe")
    ]
    purchase = _rows(
        cache,
        "SELECT ChargeCategory, ChargeFrequency, ResourceId, BilledCost FROM charges WHERE ChargeCategory = 'Purchase'",
    )
    assert purchase and purchase[0][:3] == ("Purchase", "One-Time", None)


def test_tags_of_every_resource_arrive_and_feed_the_resources_table(arm: FakeArm, cache: Any) -> None:
    estate = arm.add_scope(SUB, 30)
    run = sync(arm, cache, api_path="query", months=1, tag_keys=["team", "env", "costcenter"])

    assert run.result.ok
    tags = dict(_rows(cache, "SELECT ResourceId, Tags FROM resources"))
    expected = {r.resource_id.lower(): (r.tags or None) for r in estate.resources}
    assert tags == expected
    assert any("Team" in (t or {}) for t in tags.values())  # keys as Azure spelled them
    # the effective-tag table folds Team/team into one key
    teams = _rows(cache, "SELECT count(*) FROM resource_tags WHERE tag_key = 'team'")[0][0]
    assert teams == sum(1 for r in estate.resources if r.tags)
    # never two TagKey groupings in one query: Azure would fill only the first
    for request in arm.requests:
        if is_query(request.method, request.path):
            groups = request.body["dataset"]["grouping"]
            assert sum(g["type"] == "TagKey" for g in groups) <= 1


def test_a_grouping_limit_splits_the_query_and_keeps_totals_exact(arm: FakeArm, cache: Any) -> None:
    arm.max_groupings = 5
    estate = arm.add_scope(SUB, 20)
    run = sync(arm, cache, api_path="query", months=2)

    assert run.result.ok, run.result.failures
    assert "the API limits the groupings; splitting the query" in run.states()
    for month in MONTHS[:2]:
        assert month_total(cache, "BilledCost", month) == arm.total(SUB, "actual", month)
        assert month_total(cache, "EffectiveCost", month) == arm.total(SUB, "amortized", month)
    too_wide = [r for r in arm.requests if is_query(r.method, r.path) and len(r.body["dataset"]["grouping"]) > 5]
    assert len(too_wide) == 1  # refused once; the scope keeps the learnt limit for the rest of the run
    # attributes that did not fit the cost query come from per-resource queries, fetched once per month
    first = estate.resources[1]
    attributes = _rows(
        cache,
        "SELECT x_ResourceGroupName, RegionId, SubAccountName FROM resources WHERE ResourceId = ?",
        [first.resource_id.lower()],
    )
    assert attributes == [(first.group, "westeurope", "Sub A")]
    tags = dict(_rows(cache, "SELECT ResourceId, Tags FROM resources"))
    assert tags == {r.resource_id.lower(): (r.tags or None) for r in estate.resources}
    attribute_queries = [
        r for r in arm.requests if is_query(r.method, r.path) and r.body["dataset"]["granularity"] == "None"
    ]
    months_with_attributes = {r.body["timePeriod"]["from"][:7] for r in attribute_queries}
    assert months_with_attributes == {"2025-03", "2025-02"}
    # shared by both metrics: each attribute query runs once per month, not once per window
    signatures = [
        (r.body["timePeriod"]["from"], json.dumps(r.body["dataset"]["grouping"]))
        for r in attribute_queries
        if "$skiptoken" not in r.query
    ]
    assert len(signatures) == len(set(signatures))


def test_an_unknown_dimension_falls_back_to_the_reservation_dimensions(arm: FakeArm, cache: Any) -> None:
    arm.invalid_dimensions = {"BenefitId", "BenefitName"}
    estate = arm.add_scope(SUB, 12)
    run = sync(arm, cache, api_path="query", months=1)

    assert run.result.ok, run.result.failures
    daily = [r.body["dataset"] for r in arm.requests if is_query(r.method, r.path)]
    sent = [[g["name"] for g in d["grouping"]] for d in daily if d["granularity"] == "Daily"]
    assert "BenefitId" in sent[0] and all("BenefitId" not in s and "ReservationId" in s for s in sent[1:])
    reserved = estate.resources[5].resource_id.lower()
    assert _rows(
        cache, "SELECT DISTINCT CommitmentDiscountId IS NOT NULL FROM charges WHERE ResourceId = ?", [reserved]
    ) == [(True,)]


def test_a_malformed_page_fails_the_window_and_keeps_its_previous_rows(arm: FakeArm, cache: Any) -> None:
    arm.page_size = 50
    arm.add_scope(SUB, 10)
    sync(arm, cache, api_path="query", months=1, metrics=("actual",), tag_keys=["team"])
    before = month_total(cache, "BilledCost", MONTHS[0])
    assert before == arm.total(SUB, "actual", MONTHS[0])

    def third_page(method: str, path: str, seen: list[int] = [0]) -> bool:  # noqa: B006 - a call counter
        if not is_query(method, path):
            return False
        seen[0] += 1
        return seen[0] == 3

    arm.answer(third_page, 200, '{"properties": {"nextLink": null, "columns": [{"name": "Cost"')
    run = sync(arm, cache, api_path="query", months=1, metrics=("actual",), tag_keys=["team"])

    assert not run.result.ok and len(run.result.failures) == 1
    assert "not a JSON object" in run.result.failures[0].error
    assert month_total(cache, "BilledCost", MONTHS[0]) == before  # never half-written
    state = _rows(cache, "SELECT status, last_error, last_success IS NOT NULL FROM sync_state")
    assert state[0][0] == "failed" and "page 3" in state[0][1] and state[0][2]  # the earlier success is kept


def test_query_periods_cover_one_month_each(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 5)
    sync(arm, cache, api_path="query", months=3, tag_keys=["team"])
    assert sorted(set(query_periods(arm))) == ["2025-01", "2025-02", "2025-03"]
    for request in arm.requests:
        if is_query(request.method, request.path):
            period = request.body["timePeriod"]
            assert period["from"][:7] == period["to"][:7]
    # one cost query per window and metric when everything fits in one query
    assert len([r for r in arm.requests if is_query(r.method, r.path)]) == 6
    # the open month is asked only up to today
    march = next(r.body["timePeriod"]["to"] for r in arm.requests if is_query(r.method, r.path))
    assert march == "2025-03-15T23:59:59Z"
