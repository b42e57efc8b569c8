"""Sync through Cost Details reports (LRO → manifest → CSV blobs): EA and MCA flavours, fallback to Query."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from finops_tui.errors import UserError
from tests import fake_arm
from tests.fake_arm import MONTHS, SUB, FakeArm, is_query, month_total, sync

pytestmark = pytest.mark.today(fake_arm.TODAY)
arm = fake_arm.arm
cache = fake_arm.cache

BILLING_PROFILE = "/providers/Microsoft.Billing/billingAccounts/1234abcd:5678efgh_2019-05-31/billingProfiles/AB12-CD34"
MANAGEMENT_GROUP = "/providers/Microsoft.Management/managementGroups/finance"


def _rows(cache: Any, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with cache.cursor() as cur:
        return cur.execute(sql, params or []).fetchall()


def _report_requests(arm: FakeArm) -> int:
    return len(arm.requests_to("/generateCostDetailsReport", "POST"))


@pytest.mark.parametrize("flavour", ["ea", "mca"])
def test_cost_details_reports_load_both_csv_flavours_exactly(arm: FakeArm, cache: Any, flavour: str) -> None:
    arm.lro_polls = 2
    arm.blob_parts = 2  # a partitioned report: every blob of the manifest is loaded
    estate = arm.add_scope(SUB, 15, cost_details=flavour)
    run = sync(arm, cache, months=2)  # auto: a subscription tries cost details first

    assert run.result.ok, run.result.failures
    assert "generating the cost details report" in run.states()
    for month in MONTHS[:2]:
        assert month_total(cache, "BilledCost", month) == arm.total(SUB, "actual", month)
        assert month_total(cache, "EffectiveCost", month) == arm.total(SUB, "amortized", month)
    assert _report_requests(arm) == 4 and not any(is_query(r.method, r.path) for r in arm.requests)
    assert {r[0] for r in _rows(cache, "SELECT kind FROM sources")} == {"sync-cost-details"}
    assert {r[0] for r in _rows(cache, "SELECT api_path FROM sync_state")} == {"cost-details"}
    # blob links are plain SAS GETs: no bearer token goes to storage
    blob_gets = [r for r in arm.requests if r.path.startswith("/blobs/")]
    assert len(blob_gets) == 8 and all(r.authorization is None for r in blob_gets)
    # the CSV alternates the casing of the same resource id: lower-casing folds them into one resource
    assert _rows(cache, "SELECT count(DISTINCT ResourceId) FROM charges WHERE ResourceId LIKE '/subscriptions/%'") == [
        (15,)
    ]
    tags = dict(_rows(cache, "SELECT ResourceId, Tags FROM resources WHERE ResourceId LIKE '/subscriptions/%'"))
    assert tags == {r.resource_id.lower(): (r.tags or None) for r in estate.resources}
    vm = estate.resources[5]
    row = _rows(
        cache,
        """SELECT ServiceName, RegionId, x_ResourceGroupName, SubAccountName, BillingAccountId, PricingCategory,
                  CommitmentDiscountStatus, ConsumedQuantity, BillingPeriodEnd
           FROM charges WHERE ResourceId = ? AND EffectiveCost IS NOT NULL LIMIT 1""",
        [vm.resource_id.lower()],
    )[0]
    account = "8611537" if flavour == "ea" else "AB12-CD34"  # MCA: the billing profile is the account (FOCUS)
    assert row[:8] == ("Virtual Machines", "westeurope", vm.group, "Sub A", account, "Committed", "Used", 24.0)
    assert row[8].day == 1  # the CSV's inclusive end date becomes FOCUS's exclusive end (a 1st)


@pytest.mark.parametrize("flavour", ["ea", "mca"])
def test_cost_details_rows_carry_list_and_contracted_cost(arm: FakeArm, cache: Any, flavour: str) -> None:
    """Commitments' savings need prices: EA ListCost = PayGPrice x Quantity, MCA ListCost = paygCostInBillingCurrency,
    ContractedCost = UnitPrice x Quantity (as the legacy import and Microsoft's FOCUS conversion derive them)."""
    arm.add_scope(SUB, 6, cost_details=flavour)
    assert sync(arm, cache, months=1).result.ok
    rows = _rows(cache, "SELECT ConsumedQuantity, ListCost, ContractedCost FROM charges "
                        "WHERE ChargeCategory = 'Usage' AND ConsumedQuantity > 0")
    assert rows and all(list_cost is not None and contracted is not None for _, list_cost, contracted in rows)
    # pay-as-you-go is 25% above the negotiated price in the fake's files (within the micro-unit prices)
    for quantity, list_cost, contracted in rows:
        assert abs(list_cost - contracted * 5 / 4) <= Decimal("0.000001") * Decimal(quantity) * 2


def test_query_api_rows_have_no_list_cost(arm: FakeArm, cache: Any) -> None:
    """The Query API prices nothing: ListCost stays NULL there, so no saving is computed from a missing price."""
    arm.add_scope(SUB, 6)
    assert sync(arm, cache, months=1, api_path="query").result.ok
    assert _rows(cache, "SELECT count(*) FROM charges WHERE ListCost IS NOT NULL OR ContractedCost IS NOT NULL") == [
        (0,)
    ]


def test_billing_profile_scope_with_a_colon_in_its_id(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(BILLING_PROFILE, 8, cost_details="mca", currency="EUR")
    run = sync(arm, cache, scopes=[BILLING_PROFILE], months=1)

    assert run.result.ok, run.result.failures
    assert month_total(cache, "BilledCost", MONTHS[0], BILLING_PROFILE) == arm.total(
        BILLING_PROFILE, "actual", MONTHS[0]
    )
    assert {r[0] for r in _rows(cache, "SELECT DISTINCT BillingCurrency FROM charges")} == {"EUR"}
    assert arm.requests_to("/generateCostDetailsReport")[0].path.startswith(
        "/providers/Microsoft.Billing/billingAccounts/1234abcd:5678efgh_2019-05-31/"
    )
    # billing scopes get shared-scope savings-plan recommendations
    filters = [r.query["$filter"] for r in arm.requests_to("/benefitRecommendations")]
    assert filters and all("'Shared'" in f for f in filters)


def test_auto_falls_back_to_the_query_api_and_remembers_it(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 10, cost_details=None)  # e.g. a pay-as-you-go subscription
    run = sync(arm, cache, months=2)

    assert run.result.ok, run.result.failures
    assert "no cost details reports here; using the Query API" in run.states()
    assert _report_requests(arm) == 1  # asked once, then the whole scope uses Query
    for month in MONTHS[:2]:
        assert month_total(cache, "BilledCost", month) == arm.total(SUB, "actual", month)
    assert {r[0] for r in _rows(cache, "SELECT kind FROM sources")} == {"sync-query"}

    arm.requests.clear()
    sync(arm, cache, months=2)
    assert _report_requests(arm) == 0  # the next run goes straight to Query


def test_management_groups_use_the_query_api(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(
        MANAGEMENT_GROUP,
        12,
        subscriptions=[
            ("aaaa0000-0000-0000-0000-000000000001", "Prod"),
            ("bbbb0000-0000-0000-0000-000000000002", "Dev"),
        ],
    )
    run = sync(arm, cache, scopes=[MANAGEMENT_GROUP], months=1)

    assert run.result.ok and _report_requests(arm) == 0
    assert month_total(cache, "EffectiveCost", MONTHS[0], MANAGEMENT_GROUP) == arm.total(
        MANAGEMENT_GROUP, "amortized", MONTHS[0]
    )
    assert {r[0] for r in _rows(cache, "SELECT DISTINCT SubAccountName FROM charges")} == {"Prod", "Dev"}
    with pytest.raises(UserError, match="management groups have no cost details"):
        sync(arm, cache, scopes=[MANAGEMENT_GROUP], api_path="cost-details")


def test_a_broken_report_fails_only_its_window(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 6, cost_details="ea")
    arm.answer(lambda method, path: path.startswith("/blobs/"), 200, "just,some\nnoise,here\n")
    run = sync(arm, cache, months=1)

    assert [f.metric for f in run.result.failures] == ["actual"]
    assert "no date or cost column" in run.result.failures[0].error
    assert month_total(cache, "BilledCost", MONTHS[0]) == 0
    assert month_total(cache, "EffectiveCost", MONTHS[0]) == arm.total(SUB, "amortized", MONTHS[0])


def test_a_blob_download_5xx_is_retried(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 6, cost_details="mca")
    arm.fail(2, 503, match=lambda method, path: path.startswith("/blobs/"))
    run = sync(arm, cache, months=1, metrics=("actual",))

    assert run.result.ok, run.result.failures
    assert run.sleeps == [2.0, 4.0]
    assert any(s.startswith("report download failed (HTTP 503), retrying in 2 s") for s in run.states())
    assert month_total(cache, "BilledCost", MONTHS[0]) == arm.total(SUB, "actual", MONTHS[0])
