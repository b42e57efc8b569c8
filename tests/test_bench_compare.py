"""The benchmark regression guard compares ratios to raw DuckDB, and flags what is more than 20% worse."""

from __future__ import annotations

from pathlib import Path

from bench.compare import compare, load_baseline, render, save_baseline


def _result(name: str, app_ms: float, raw_ms: float | None) -> dict[str, object]:
    ratio = round(app_ms / raw_ms, 2) if raw_ms else None
    return {"name": name, "rows": 10, "cache_rows": 1_000_000, "app_ms": app_ms, "raw_ms": raw_ms, "ratio": ratio}


def test_ratios_are_compared_so_a_slower_machine_does_not_cry_wolf(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    save_baseline(baseline, [_result("import csv", 100, 80), _result("tree expand", 50, 50),
                             _result("paint", 20, None)])
    # Everything twice as slow (a busy machine): the ratios stay, nothing is flagged but the raw-less figure.
    now = [_result("import csv", 200, 160), _result("tree expand", 100, 100), _result("paint", 40, None),
           _result("new scenario", 5, 5)]
    found = {c.name: c for c in compare(load_baseline(baseline), now)}
    assert set(found) == {"import csv", "tree expand", "paint"}
    assert not found["import csv"].worse and not found["tree expand"].worse
    assert found["paint"].measure == "app_ms" and found["paint"].worse
    assert "1 of 3 figures more than 20% worse" in render(list(found.values()))


def test_a_real_regression_is_flagged(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    save_baseline(baseline, [_result("import csv", 100, 80)])
    found = compare(load_baseline(baseline), [_result("import csv", 130, 80)])
    assert [c.worse for c in found] == [True]
    assert "WORSE" in render(found)
