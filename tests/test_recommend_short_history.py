"""Recommendations on short histories (a one-month export): anomalies against a baseline the data supports,
with a confidence that says how much history there was, and brand-new expensive resources as findings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from finops_tui.recommend.generators import GENERATORS, KIND_TITLES
from finops_tui.recommend.generators.anomalies import KIND_SPIKE, KIND_STEP, detect_anomalies
from finops_tui.recommend.generators.new_sku import KIND_NEW_RESOURCE, new_expensive_resources
from finops_tui.recommend.model import Context, Recommendation
from tests._recommend_data import END, Res, build, days, steady

ONE_MONTH = days(count=28)


def _run(path: Path, resources: list[Res], span: list[dt.date],
         generator: Callable[..., list[Recommendation]] = detect_anomalies) -> list[Recommendation]:
    with build(path, resources, span) as cache, cache.cursor() as cur:
        ctx = Context.from_cache(cur)
        assert ctx is not None and ctx.data_start == span[0]
        return generator(cur, ctx)


def _evidence(rec: Recommendation) -> dict[str, object]:
    return dict(rec.evidence)


def _estate(extra: list[Res]) -> list[Res]:
    return [
        Res("vm-1", steady(100)),
        Res("vm-2", steady(80, seed=2), rg="rg-b"),
        Res("vm-3", steady(120, seed=3), sub="sub-2", rg="rg-c", tags={"team": "search"}),
        *extra,
    ]


def test_a_40x_last_day_in_a_one_month_export_is_a_spike(tmp_path: Path) -> None:
    law = Res("law-1", lambda d: steady(50, seed=4)(d) * (40 if d == END else 1), rg="rg-b",
              service="Azure Monitor", rtype="Log Analytics workspace", meter="Data Ingestion")
    recs = _run(tmp_path / "c.duckdb", _estate([law]), ONE_MONTH)
    assert [r.kind for r in recs] == [KIND_SPIKE]
    spike = recs[0]
    assert spike.jump is not None
    assert spike.jump.path == (("subscription", "sub-1"), ("resource-group", "rg-b"), ("service", "Azure Monitor"))
    assert END.isoformat() in spike.title
    # ~39 x 50 above the median of the 27 days before.
    assert 1700 < spike.monthly_impact < 2100
    # No same-weekday history: the baseline is every prior day, and the finding says so.
    assert spike.confidence == "medium"
    baseline = str(_evidence(spike)["Baseline"])
    assert "27 prior days" in baseline and "weekday" in baseline
    assert spike.series and spike.series[-1].baseline is not None and spike.series[-1].day == END


def test_a_one_month_export_of_steady_cost_raises_nothing(tmp_path: Path) -> None:
    resources = _estate([Res("db-1", steady(60, seed=6), rg="rg-e", service="Azure SQL Database",
                             rtype="SQL database", meter="vCore")])
    assert _run(tmp_path / "c.duckdb", resources, ONE_MONTH) == []
    # Every resource starts on the export's first day: none of them is new.
    assert _run(tmp_path / "c.duckdb", [], ONE_MONTH, new_expensive_resources) == []


def test_a_level_shift_in_a_one_month_export(tmp_path: Path) -> None:
    shift = END - dt.timedelta(days=9)
    vm = Res("vm-9", lambda d: steady(200, seed=9)(d) * (1.6 if d >= shift else 1), sub="sub-2", rg="rg-d",
             tags={"team": "search"})
    recs = _run(tmp_path / "c.duckdb", _estate([vm]), ONE_MONTH)
    assert [r.kind for r in recs] == [KIND_STEP]
    step = recs[0]
    assert shift.isoformat() in step.title and step.jump is not None and ("resource-group", "rg-d") in step.jump.path
    assert step.confidence == "medium"
    assert "prior days" in str(_evidence(step)["Baseline"])


def test_very_short_history_still_finds_a_spike_with_low_confidence(tmp_path: Path) -> None:
    law = Res("law-1", lambda d: steady(50, seed=4)(d) * (40 if d == END else 1), rg="rg-b",
              service="Azure Monitor", rtype="Log Analytics workspace", meter="Data Ingestion")
    recs = _run(tmp_path / "c.duckdb", _estate([law]), days(count=10))
    assert [(r.kind, r.confidence) for r in recs] == [(KIND_SPIKE, "low")]
    assert "9 prior days" in str(_evidence(recs[0])["Baseline"])


def test_a_full_history_keeps_the_weekday_baseline(tmp_path: Path) -> None:
    law = Res("law-1", lambda d: steady(50, seed=4)(d) * (40 if d == END else 1), rg="rg-b",
              service="Azure Monitor", rtype="Log Analytics workspace", meter="Data Ingestion")
    recs = _run(tmp_path / "c.duckdb", _estate([law]), days())
    assert [(r.kind, r.confidence) for r in recs] == [(KIND_SPIKE, "high")]
    evidence = _evidence(recs[0])
    assert "Expected (same weekdays, prior weeks)" in evidence and "Baseline" not in evidence


@pytest.mark.parametrize("span", [ONE_MONTH, days()], ids=["one-month", "four-months"])
def test_a_brand_new_resource_costing_more_on_day_one_than_most_cost_in_a_week(
    tmp_path: Path, span: list[dt.date]
) -> None:
    born = END - dt.timedelta(days=2)
    resources = [
        *(Res(f"vm-{i}", steady(10, seed=i), rg=f"rg-{i % 3}") for i in range(30)),
        Res("vm-big", lambda d: 500.0 if d >= born else None, rg="rg-new", meter="M128"),
        # New but cheap: a day of it costs less than a week of most resources.
        Res("vm-small", lambda d: 5.0 if d >= born else None, rg="rg-new", meter="B1s"),
    ]
    recs = _run(tmp_path / "c.duckdb", resources, span, new_expensive_resources)
    assert [r.scope.label for r in recs] == ["vm-big"]
    rec = recs[0]
    assert rec.kind == KIND_NEW_RESOURCE and rec.scope.type == "resource"
    assert born.isoformat() in rec.title
    assert 15000 < rec.monthly_impact < 15500  # 500 a day as a month
    assert rec.jump is not None and rec.jump.path[-1] == ("resource", rec.scope.key)
    evidence = _evidence(rec)
    assert evidence["First charged"] == born and "500.00" in str(evidence["Cost on its first day"])
    assert rec.confidence == "medium"  # three days of it: the run rate is an early estimate


def test_the_new_resource_generator_is_registered() -> None:
    assert "new-resources" in GENERATORS and KIND_NEW_RESOURCE in GENERATORS["new-resources"][1]
    assert KIND_TITLES[KIND_NEW_RESOURCE] == "New expensive resource"
