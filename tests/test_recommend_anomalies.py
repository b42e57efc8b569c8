"""Cost anomalies and new SKUs: they fire on crafted spikes, steps and resizes, and stay quiet on steady cost."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from finops_tui import clock
from finops_tui.recommend.generators.anomalies import KIND_SPIKE, KIND_STEP, detect_anomalies
from finops_tui.recommend.generators.new_sku import new_expensive_skus
from finops_tui.recommend.model import Context
from tests._recommend_data import END, Res, build, days, steady

SPIKE_FIRST = END - dt.timedelta(days=10)


def _spiky(day: dt.date) -> float:
    base = steady(50, seed=3)(day)
    return base * 4 if SPIKE_FIRST <= day <= SPIKE_FIRST + dt.timedelta(days=2) else base


def _stepped(day: dt.date) -> float:
    base = steady(200, seed=4)(day)
    return base * 1.4 if day >= END - dt.timedelta(days=20) else base


def _estate(spike: bool = True, step: bool = True) -> list[Res]:
    return [
        Res("vm-1", steady(100)),
        Res("vm-2", steady(80, seed=2), rg="rg-b"),
        Res("law-1", _spiky if spike else steady(50, seed=3), rg="rg-b", service="Azure Monitor",
            rtype="Log Analytics workspace", meter="Data Ingestion"),
        Res("vm-3", _stepped if step else steady(200, seed=4), sub="sub-2", rg="rg-c", tags={"team": "search"}),
        Res("vm-4", steady(150, seed=5), sub="sub-2", rg="rg-d", tags={"team": "search"}),
        # A drop elsewhere in sub-1 must not cancel the spike: levels are measured separately.
        Res("db-1", lambda d: steady(60, seed=6)(d) * (0.5 if d >= SPIKE_FIRST else 1), rg="rg-e",
            service="Azure SQL Database", rtype="SQL database", meter="vCore"),
    ]


def test_spike_and_step_are_found_at_the_level_that_explains_them(tmp_path: Path) -> None:
    with build(tmp_path / "c.duckdb", _estate()) as cache, cache.cursor() as cur:
        ctx = Context.from_cache(cur)
        assert ctx is not None
        recs = detect_anomalies(cur, ctx)
    by_kind = {r.kind: r for r in recs}
    assert sorted(r.kind for r in recs) == [KIND_SPIKE, KIND_STEP]

    spike = by_kind[KIND_SPIKE]
    assert spike.jump is not None
    assert spike.jump.path == (("subscription", "sub-1"), ("resource-group", "rg-b"), ("service", "Azure Monitor"))
    assert SPIKE_FIRST.isoformat() in spike.title
    # 3 days at 4x a ~50/day (weekday) cost: about 3 x 150 above expected.
    assert 300 < spike.monthly_impact < 500
    assert spike.series and spike.series[-1].day == END

    step = by_kind[KIND_STEP]
    assert step.jump is not None and ("resource-group", "rg-c") in step.jump.path
    assert (END - dt.timedelta(days=20)).isoformat() in step.title
    # +40% of ~190/day, as a month.
    assert 1800 < step.monthly_impact < 3000
    assert step.team == "search"


def test_steady_cost_raises_no_anomaly(tmp_path: Path) -> None:
    with build(tmp_path / "c.duckdb", _estate(spike=False, step=False)) as cache, cache.cursor() as cur:
        ctx = Context.from_cache(cur)
        assert ctx is not None
        assert detect_anomalies(cur, ctx) == []


def test_an_old_cache_still_finds_its_anomalies(tmp_path: Path) -> None:
    """Windows count back from the data end, not from today."""
    old_end = dt.date(2024, 6, 30)
    shift = END - old_end
    clock.pin(dt.date(2026, 11, 15))
    try:
        resources = _estate(step=False)
        for res in resources:
            original = res.cost
            res.cost = lambda day, original=original: original(day + shift)  # type: ignore[misc]
        with build(tmp_path / "c.duckdb", resources, days(old_end)) as cache, cache.cursor() as cur:
            ctx = Context.from_cache(cur)
            assert ctx is not None and ctx.data_end == old_end
            recs = detect_anomalies(cur, ctx)
    finally:
        clock.pin(None)
    assert [r.kind for r in recs] == [KIND_SPIKE]
    assert (SPIKE_FIRST - shift).isoformat() in recs[0].title


def test_new_expensive_sku_on_an_existing_vm(tmp_path: Path) -> None:
    resized = END - dt.timedelta(days=8)

    def meter(day: dt.date) -> str:
        return "E64s v5" if day >= resized else "D4s v5"

    def cost(day: dt.date) -> float:
        return steady(400 if day >= resized else 100, seed=9)(day)

    resources = [
        Res("vm-resized", cost, meter=meter),
        Res("vm-steady", steady(100, seed=2)),
        # A brand-new VM on a new meter is new spend, not a new SKU on an existing resource.
        Res("vm-new", lambda d: 300.0 if d >= resized else None, meter="M128"),
    ]
    with build(tmp_path / "c.duckdb", resources) as cache, cache.cursor() as cur:
        ctx = Context.from_cache(cur)
        assert ctx is not None
        recs = new_expensive_skus(cur, ctx)
    assert len(recs) == 1
    rec = recs[0]
    assert rec.scope.type == "resource" and rec.scope.label == "vm-resized"
    assert "E64s v5" in rec.title
    assert rec.jump is not None and rec.jump.path[-1] == ("resource", rec.scope.key)
    # ~300/day more on weekdays: roughly 8,000-9,500 a month.
    assert 7000 < rec.monthly_impact < 10000


def test_no_new_sku_when_meters_do_not_change(tmp_path: Path) -> None:
    resources = [Res("vm-1", steady(100)), Res("vm-2", steady(90, seed=2))]
    with build(tmp_path / "c.duckdb", resources) as cache, cache.cursor() as cur:
        ctx = Context.from_cache(cur)
        assert ctx is not None
        assert new_expensive_skus(cur, ctx) == []
