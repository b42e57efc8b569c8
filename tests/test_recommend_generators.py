"""Each generator fires on crafted data that should trigger it and stays quiet on data that should not."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from finops_tui.recommend.generators.budgets import budgets_at_risk
from finops_tui.recommend.generators.commitments import commitment_candidates, unused_commitments
from finops_tui.recommend.generators.growth import steady_growth
from finops_tui.recommend.generators.idle import KIND_ORPHANS, KIND_STOPPED, idle_resources
from finops_tui.recommend.generators.tag_hygiene import (
    edit_distance,
    tag_key_variants,
    tag_value_variants,
    variant_reason,
)
from finops_tui.recommend.generators.unallocated import unallocated_hotspots
from finops_tui.recommend.model import Context
from finops_tui.store import Cache
from tests._recommend_data import END, Res, build, steady


def _ctx(cache: Cache) -> Context:
    with cache.cursor() as cur:
        ctx = Context.from_cache(cur)
    assert ctx is not None
    return ctx


# --- unallocated ---------------------------------------------------------------------------------------------


def test_unallocated_hotspot_points_at_the_untagged_group(tmp_path: Path) -> None:
    resources = [
        Res("vm-1", steady(100)),
        Res("vm-2", steady(120, seed=2), rg="rg-untagged", tags={}),
        Res("disk-2", steady(10, seed=3), rg="rg-untagged", rtype="Disk", service="Storage", tags={"env": "prod"}),
    ]
    with build(tmp_path / "c.duckdb", resources) as cache, cache.cursor() as cur:
        recs = unallocated_hotspots(cur, _ctx(cache))
    assert len(recs) == 1
    rec = recs[0]
    assert rec.scope.resource_group == "rg-untagged"
    assert rec.jump is not None and rec.jump.screen == "tagging" and rec.jump.tag_key == "team"
    assert rec.jump.path == (("subscription", "sub-1"), ("resource-group", "rg-untagged"))
    assert ("Untagged resources", 2) in rec.evidence
    assert 3000 < rec.monthly_impact < 4200  # ~125/day on weekdays, 0.8 at weekends


def test_no_unallocated_finding_when_everything_is_tagged(tmp_path: Path) -> None:
    resources = [Res("vm-1", steady(100)), Res("vm-2", steady(50), rg="rg-b")]
    with build(tmp_path / "c.duckdb", resources) as cache, cache.cursor() as cur:
        assert unallocated_hotspots(cur, _ctx(cache)) == []


# --- commitments ---------------------------------------------------------------------------------------------


def _reservation(unused_share: float) -> Res:
    def status(day: dt.date) -> str:
        # Alternate whole days: unused on a share of them.
        return "Unused" if (day.toordinal() % 10) < unused_share * 10 else "Used"

    return Res("ri-holder", lambda d: 40.0, rg="rg-ri", commitment_id="/providers/microsoft.capacity/ri-1",
               commitment_status=status)


def test_unused_commitment_reports_monthly_waste(tmp_path: Path) -> None:
    with build(tmp_path / "c.duckdb", [Res("vm-1", steady(100)), _reservation(0.3)]) as cache, cache.cursor() as cur:
        recs = unused_commitments(cur, _ctx(cache))
    assert len(recs) == 1
    rec = recs[0]
    assert rec.kind == "unused-commitment" and rec.impact_kind == "waste"
    assert rec.jump is not None and rec.jump.path == (("commitment", "/providers/microsoft.capacity/ri-1"),)
    assert Decimal(300) < rec.monthly_impact < Decimal(450)  # 3 of 10 days x 40 → ~365 a month


def test_fully_used_commitment_is_quiet(tmp_path: Path) -> None:
    with build(tmp_path / "c.duckdb", [Res("vm-1", steady(100)), _reservation(0.0)]) as cache, cache.cursor() as cur:
        assert unused_commitments(cur, _ctx(cache)) == []


def test_steady_on_demand_vm_is_a_commitment_candidate_and_a_noisy_one_is_not(tmp_path: Path) -> None:
    resources = [
        Res("vm-steady", steady(100, weekend=1.0), meter="D8s v5"),
        Res("vm-noisy", steady(100, noise=0.9, seed=5), meter="F4s v2"),
        Res("disk-1", steady(30, weekend=1.0), rtype="Disk", meter="P30 LRS Disk", meter_category="Storage"),
    ]
    with build(tmp_path / "c.duckdb", resources) as cache, cache.cursor() as cur:
        recs = commitment_candidates(cur, _ctx(cache))
    assert [r.title.split()[2] for r in recs] == ["D8s"]
    rec = recs[0]
    assert rec.estimate and rec.impact_kind == "savings"
    assert Decimal(900) < rec.monthly_impact < Decimal(1100)  # 35% of ~3,000 a month


def test_synced_benefit_recommendation_replaces_the_estimate(tmp_path: Path) -> None:
    with build(tmp_path / "c.duckdb", [Res("vm-steady", steady(100, weekend=1.0))]) as cache, cache.cursor() as cur:
        cur.execute(
            "INSERT INTO benefit_recommendations (rec_id, scope, kind, term, look_back, currency, "
            "commitment_amount, savings_amount, cost_without_benefit, savings_percentage, synced_at) "
            "VALUES ('b1', '/subscriptions/sub-1', 'SavingsPlan', 'P1Y', 'Last30Days', 'USD', 2.5, 600, 3000, 20,"
            " now())"
        )
        recs = commitment_candidates(cur, _ctx(cache))
    assert len(recs) == 1
    assert recs[0].confidence == "high" and not recs[0].estimate
    assert recs[0].monthly_impact == Decimal("608.00")  # 600 over 30 days, as 30.4 days


# --- growth --------------------------------------------------------------------------------------------------


def test_steady_weekly_growth_is_found_for_the_team(tmp_path: Path) -> None:
    def growing(day: dt.date) -> float:
        weeks = (day - END).days / 7
        return steady(100, weekend=1.0, noise=0.01)(day) * (1.04**weeks)

    resources = [Res("vm-grow", growing, tags={"team": "ml"}), Res("vm-flat", steady(300, seed=2), rg="rg-b")]
    with build(tmp_path / "c.duckdb", resources) as cache, cache.cursor() as cur:
        recs = steady_growth(cur, _ctx(cache))
    # The service the growing VM runs on grows too: another cut of the same move, listed separately.
    assert {r.scope.type for r in recs} <= {"team", "service"}
    rec = next(r for r in recs if r.scope.type == "team")
    assert rec.team == "ml"
    assert rec.jump is not None and rec.jump.path == (("tag:team", "ml"),)
    # ~4% of ~700/week a week, carried a month ahead: about 28 x 18.9.
    assert Decimal(350) < rec.monthly_impact < Decimal(650)


def test_a_single_step_is_not_growth(tmp_path: Path) -> None:
    def stepped(day: dt.date) -> float:
        return steady(100)(day) * (1.5 if day >= END - dt.timedelta(days=20) else 1)

    resources = [Res("vm-1", stepped), Res("vm-2", steady(100, seed=2))]
    with build(tmp_path / "c.duckdb", resources) as cache, cache.cursor() as cur:
        assert steady_growth(cur, _ctx(cache)) == []


# --- idle / orphans ------------------------------------------------------------------------------------------


def test_stopped_compute_and_orphans(tmp_path: Path) -> None:
    stopped_on = END - dt.timedelta(days=30)
    resources = [
        Res("vm-live", steady(100)),
        Res("disk-live", steady(5), rtype="Disk", service="Storage"),
        # rg-stopped: the VM stopped a month ago, its disk and IP go on.
        Res("vm-old", lambda d: 100.0 if d <= stopped_on else None, rg="rg-stopped"),
        Res("disk-old", lambda d: 8.0, rg="rg-stopped", rtype="Disk", service="Storage"),
        Res("pip-old", lambda d: 0.5, rg="rg-stopped", rtype="Public IP address", service="Virtual Network"),
        # rg-orphans: never any compute in the window, just disks and a snapshot.
        Res("disk-orphan", lambda d: 12.0, rg="rg-orphans", rtype="Disk", service="Storage"),
        Res("snap-orphan", lambda d: 3.0, rg="rg-orphans", rtype="Snapshot", service="Storage"),
    ]
    with build(tmp_path / "c.duckdb", resources) as cache, cache.cursor() as cur:
        recs = {r.scope.resource_group: r for r in idle_resources(cur, _ctx(cache))}
    assert set(recs) == {"rg-stopped", "rg-orphans"}
    assert recs["rg-stopped"].kind == KIND_STOPPED
    assert recs["rg-orphans"].kind == KIND_ORPHANS
    assert recs["rg-stopped"].monthly_impact == Decimal("258.40")  # 8.5/day x 30.4
    assert recs["rg-orphans"].monthly_impact == Decimal("456.00")
    assert recs["rg-orphans"].jump is not None
    assert recs["rg-orphans"].jump.path == (("subscription", "sub-1"), ("resource-group", "rg-orphans"))


def test_disks_beside_running_vms_are_not_idle(tmp_path: Path) -> None:
    resources = [Res("vm-1", steady(100)), Res("disk-1", lambda d: 8.0, rtype="Disk", service="Storage")]
    with build(tmp_path / "c.duckdb", resources) as cache, cache.cursor() as cur:
        assert idle_resources(cur, _ctx(cache)) == []


# --- tag hygiene ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("payments", "payment", "medium"),
        ("data-platform", "dataplatform", "high"),
        ("Payments", "payments", "high"),
        ("paymnets", "payments", "low"),
        ("team-a", "team-b", None),
        ("app1", "app2", None),
        ("search", "research", None),
        ("dev", "devs", "medium"),
    ],
)
def test_variant_reason(a: str, b: str, expected: str | None) -> None:
    reason = variant_reason(a, b)
    assert (reason[1] if reason else None) == expected


def test_edit_distance_counts_a_swap_once() -> None:
    assert edit_distance("paymnets", "payments") == 1
    assert edit_distance("kitten", "sitting") == 3


def test_tag_key_and_value_variants(tmp_path: Path) -> None:
    resources = [
        Res("vm-1", steady(100), tags={"team": "payments"}),
        Res("vm-2", steady(100, seed=2), tags={"Team": "payments"}),
        Res("vm-3", steady(100, seed=3), tags={"TEAM": "payment"}),
        Res("vm-4", steady(100, seed=4), tags={"team": "data-platform"}),
        Res("vm-5", steady(30, seed=5), tags={"team": "dataplatform"}),
        Res("vm-6", steady(100, seed=6), tags={"team": "team-a"}),
        Res("vm-7", steady(100, seed=7), tags={"team": "team-b"}),
    ]
    with build(tmp_path / "c.duckdb", resources) as cache, cache.cursor() as cur:
        ctx = _ctx(cache)
        keys = tag_key_variants(cur, ctx)
        values = tag_value_variants(cur, ctx)
    assert len(keys) == 1
    assert keys[0].scope.label == "team" and "'Team'" in keys[0].title and "'TEAM'" in keys[0].title
    assert keys[0].jump is not None and keys[0].jump.screen == "tagging"
    by_canonical = {r.scope.label: r for r in values}
    assert set(by_canonical) == {"team: payments", "team: data-platform"}
    payments = by_canonical["team: payments"]
    assert payments.jump is not None and payments.jump.path == (("tag:team", "payment"),)
    assert ("Suggested aliases", "payment → payments") in payments.evidence
    assert by_canonical["team: data-platform"].confidence == "high"


def test_clean_tags_raise_no_hygiene_finding(tmp_path: Path) -> None:
    resources = [Res("vm-1", steady(100), tags={"team": "payments"}),
                 Res("vm-2", steady(100, seed=2), tags={"team": "search"})]
    with build(tmp_path / "c.duckdb", resources) as cache, cache.cursor() as cur:
        ctx = _ctx(cache)
        assert tag_key_variants(cur, ctx) == [] and tag_value_variants(cur, ctx) == []


# --- budgets -------------------------------------------------------------------------------------------------


def test_budget_at_risk_only_when_the_forecast_exceeds_it(tmp_path: Path) -> None:
    with build(tmp_path / "c.duckdb", [Res("vm-1", steady(100))]) as cache, cache.cursor() as cur:
        cur.execute(
            """
            INSERT INTO budgets VALUES
              ('b-over', '/subscriptions/sub-1', 'Sub 1 monthly', 2500, 'USD', 'Monthly',
               DATE '2026-03-01', DATE '2026-03-31', 2800, 3100, now()),
              ('b-fine', '/subscriptions/sub-1/resourceGroups/rg-a', 'RG A', 5000, 'USD', 'Monthly',
               DATE '2026-03-01', DATE '2026-03-31', 2800, 3100, now()),
              ('b-pace', '/subscriptions/sub-1', 'No forecast', 1000, 'USD', 'Monthly',
               DATE '2026-03-01', DATE '2026-03-31', 1500, NULL, now())
            """
        )
        recs = {r.scope.key: r for r in budgets_at_risk(cur, _ctx(cache))}
    assert set(recs) == {"b-over", "b-pace"}
    assert recs["b-over"].monthly_impact == Decimal("600.00")
    assert recs["b-over"].jump is not None and recs["b-over"].jump.path == (("subscription", "sub-1"),)
    assert recs["b-pace"].confidence == "medium"
