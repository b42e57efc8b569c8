"""End to end on the demo estate: every planted problem is found, ranked by money, with the right jump target."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from finops_tui.allocation.effective import TagPolicy
from finops_tui.ingest.demo import PLANTED, build_demo
from finops_tui.recommend.engine import run_all
from finops_tui.recommend.model import Context, Recommendation
from finops_tui.store import open_cache

END = dt.date(2026, 3, 31)


@pytest.fixture(scope="module")
def recs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Recommendation]]:
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo(path, TagPolicy(), end=END, months=5)
    with open_cache(path) as cache, cache.cursor() as cur:
        ctx = Context.from_cache(cur)
        assert ctx is not None
        yield run_all(cur, ctx)


def _find(recs: list[Recommendation], kind: str, **where: object) -> Recommendation:
    for rec in recs:
        if rec.kind == kind and all(getattr(rec.scope, k, None) == v or getattr(rec, k, None) == v
                                    for k, v in where.items()):
            return rec
    raise AssertionError(f"no {kind} finding with {where}: {[(r.kind, r.scope.label) for r in recs]}")


def test_ranked_by_money(recs: list[Recommendation]) -> None:
    impacts = [r.monthly_impact for r in recs]
    assert impacts == sorted(impacts, reverse=True)
    assert all(r.currency == "USD" for r in recs)


def test_spike(recs: list[Recommendation]) -> None:
    spikes = [r for r in recs if r.kind == "cost-spike" and r.scope.resource_group == PLANTED.spike_resource_group]
    assert len(spikes) == 1
    spike = spikes[0]
    assert spike.jump is not None and spike.jump.path[1:] == (
        ("resource-group", PLANTED.spike_resource_group), ("service", PLANTED.spike_service))
    first_day = PLANTED.spike_days(END)[0]
    assert first_day.isoformat() in spike.title


def test_a_monthly_support_charge_is_no_anomaly(tmp_path) -> None:
    """The demo bills its support plan on the 1st of each month: scheduled, so never a spike or a step, even
    when the 1st is in the detection window (it was flagged as a spike before)."""
    from finops_tui.ingest.demo import SUPPORT_SERVICE

    path = tmp_path / "demo.duckdb"
    build_demo(path, TagPolicy(), end=dt.date(2026, 12, 6), months=4)
    with open_cache(path) as cache, cache.cursor() as cur:
        ctx = Context.from_cache(cur)
        assert ctx is not None
        found = run_all(cur, ctx)
    flagged = [r.title for r in found if r.kind in ("cost-spike", "cost-step") and SUPPORT_SERVICE in r.title]
    assert flagged == []


def test_step_change(recs: list[Recommendation]) -> None:
    step = _find(recs, "cost-step", key=PLANTED.step_subscription.lower())
    assert step.jump is not None and step.jump.path == (("subscription", PLANTED.step_subscription),)
    assert PLANTED.step_first_day(END).isoformat() in step.title
    assert step is recs[0]  # the largest planted problem leads the list


def test_new_sku(recs: list[Recommendation]) -> None:
    rec = _find(recs, "new-sku", key=PLANTED.new_sku_resource_id)
    assert PLANTED.new_sku_new_meter in rec.title
    assert rec.jump is not None and rec.jump.path[-1] == ("resource", PLANTED.new_sku_resource_id)


def test_unused_reservation(recs: list[Recommendation]) -> None:
    rec = _find(recs, "unused-commitment", key=PLANTED.reservation.id.lower())
    assert rec.jump is not None and rec.jump.path == (("commitment", PLANTED.reservation.id),)


def test_stopped_compute_and_orphans(recs: list[Recommendation]) -> None:
    stopped = _find(recs, "stopped-compute", resource_group=PLANTED.stopped_resource_group)
    orphans = _find(recs, "orphan-resources", resource_group=PLANTED.orphan_resource_group)
    for rec, rg in ((stopped, PLANTED.stopped_resource_group), (orphans, PLANTED.orphan_resource_group)):
        assert rec.jump is not None and rec.jump.path[-1] == ("resource-group", rg)


def test_untagged_resource_groups(recs: list[Recommendation]) -> None:
    for rg in PLANTED.untagged_resource_groups:
        rec = _find(recs, "unallocated-spend", resource_group=rg)
        assert rec.jump is not None and rec.jump.screen == "tagging" and rec.jump.tag_key == "team"
        assert rec.jump.path[-1] == ("resource-group", rg)


def test_tag_key_variants(recs: list[Recommendation]) -> None:
    rec = _find(recs, "tag-key-variants", key="team")
    for variant in PLANTED.team_key_variants:
        if variant != "team":
            assert repr(variant) in rec.title


def test_misspelled_team_values(recs: list[Recommendation]) -> None:
    for canonical, misspellings in PLANTED.misspelled_team_values.items():
        rec = _find(recs, "tag-value-variants", team=canonical)
        for wrong in misspellings:
            assert repr(wrong) in rec.title
        assert rec.jump is not None and rec.jump.path[0][0] == "tag:team"
        assert rec.jump.path[0][1] in misspellings


def test_growth_trends(recs: list[Recommendation]) -> None:
    for team in PLANTED.team_growth_per_week:
        rec = _find(recs, "steady-growth", team=team)
        assert rec.jump is not None and rec.jump.path == (("tag:team", team),)

