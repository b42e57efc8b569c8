"""`report overview`: every figure equals an independent SQL sum; formats; anchoring; errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finops_tui.cli import main
from finops_tui.report.overview import month_end_forecast
from tests.report_helpers import build_small_cache

TODAY = dt.date(2026, 11, 27)
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def cache_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_cache(tmp_path_factory.mktemp("ov") / "cache.duckdb")


pytestmark = pytest.mark.today(TODAY)


def _report(capsys: pytest.CaptureFixture[str], cache_path: Path, *args: str) -> str:
    assert main(["report", "overview", "--cache", str(cache_path), *args]) == 0
    return capsys.readouterr().out


def _sql(path: Path, query: str, params: list[object]) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()


def _c(value: Decimal) -> str:
    return format(value.quantize(CENT), "f")


@pytest.mark.parametrize(("period", "metric"), [("mtd", "effective"), ("last-month", "billed"), ("30d", "effective"),
                                                ("2026-09-01..2026-10-15", "billed"), ("all", "effective")])
def test_json_totals_and_breakdowns_equal_independent_sums(
    capsys: pytest.CaptureFixture[str], cache_path: Path, period: str, metric: str
) -> None:
    doc = json.loads(_report(capsys, cache_path, "--format", "json", "--period", period, "--metric", metric))
    col = {"effective": "EffectiveCost", "billed": "BilledCost"}[metric]
    start, end = doc["period"]["start"], doc["period"]["end"]
    where = "x_ChargeDate >= ?::DATE AND x_ChargeDate < ?::DATE"
    expected = _sql(cache_path, f"SELECT BillingCurrency, sum({col}) FROM charges WHERE {where} GROUP BY 1",
                    [start, end])
    assert {t["currency"]: t["cost"] for t in doc["totals"]} == {cur: _c(v) for cur, v in expected}
    services = _sql(cache_path, f"SELECT ServiceName, BillingCurrency, sum({col}) FROM charges WHERE {where} "
                                "GROUP BY 1, 2", [start, end])
    got = {(r["name"], r["currency"]): r["cost"] for r in doc["breakdowns"]["service"]}
    assert got == {(s, cur): _c(v) for s, cur, v in services}
    # Each breakdown sums to its currency total (no row lost, none counted twice).
    for name, rows in doc["breakdowns"].items():
        for total in doc["totals"]:
            part = sum(Decimal(r["cost"]) for r in rows if r["currency"] == total["currency"])
            assert abs(part - Decimal(total["cost"])) <= CENT * len(rows), name


def test_team_breakdown_folds_key_variants_and_has_unallocated(
    capsys: pytest.CaptureFixture[str], cache_path: Path
) -> None:
    doc = json.loads(_report(capsys, cache_path, "--format", "json", "--period", "30d"))
    team = {(r["name"], r["currency"]): Decimal(r["cost"]) for r in doc["breakdowns"]["tag:team"]}
    assert {name for name, _ in team} == {"payments", "search", "(unallocated)"}
    untagged = _sql(
        cache_path,
        "SELECT BillingCurrency, sum(EffectiveCost) FROM charges WHERE x_ChargeDate >= ?::DATE "
        "AND x_ChargeDate < ?::DATE AND NOT (list_contains(map_keys(Tags), 'team') OR "
        "list_contains(map_keys(Tags), 'Team') OR list_contains(map_keys(Tags), 'TEAM')) GROUP BY 1",
        [doc["period"]["start"], doc["period"]["end"]],
    )
    for cur, value in untagged:
        assert _c(team[("(unallocated)", cur)]) == _c(value)
        assert next(t for t in doc["totals"] if t["currency"] == cur)["untagged_cost"] == _c(value)


def test_extra_tag_breakdown(capsys: pytest.CaptureFixture[str], cache_path: Path) -> None:
    doc = json.loads(_report(capsys, cache_path, "--format", "json", "--by", "tag:env"))
    assert {r["name"] for r in doc["breakdowns"]["tag:env"]} == {"prod", "dev", "(unallocated)"}


def test_json_is_plain_and_money_is_decimal_strings(capsys: pytest.CaptureFixture[str], cache_path: Path) -> None:
    out = _report(capsys, cache_path, "--format", "json")
    assert "\x1b" not in out
    doc = json.loads(out)
    assert set(doc) >= {"period", "metric", "totals", "breakdowns"}
    assert all(isinstance(t["cost"], str) for t in doc["totals"])
    assert doc["metric"] == "effective"
    assert doc["period"] == {"start": "2026-11-01", "end": "2026-11-27", "spec": "mtd"}


def test_table_csv_md_render(capsys: pytest.CaptureFixture[str], cache_path: Path) -> None:
    table = _report(capsys, cache_path, "--top", "3")
    assert "November 2026 to date" in table and "By service" in table and "Top movers" in table
    rows = list(csv.DictReader(io.StringIO(_report(capsys, cache_path, "--format", "csv"))))
    assert {r["breakdown"] for r in rows} >= {"service", "subscription", "tag:team"}
    md = _report(capsys, cache_path, "--format", "md")
    assert "| Service | currency |" in md


def test_forecast_adds_weekday_run_rate(cache_path: Path) -> None:
    con = duckdb.connect(str(cache_path), read_only=True)
    try:
        (usd,) = [f for f in month_end_forecast(con, dt.date(2026, 11, 26), "effective") if f.currency == "USD"]
        to_date = con.execute(
            "SELECT sum(EffectiveCost) FROM charges WHERE BillingCurrency = 'USD' AND x_ChargeDate >= '2026-11-01'"
        ).fetchone()
    finally:
        con.close()
    assert to_date is not None and usd.actual_to_date == to_date[0]
    assert usd.projected_remaining > 0 and usd.month_end == dt.date(2026, 12, 1)


def test_old_data_anchors_on_last_day(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = build_small_cache(tmp_path / "old.duckdb", end=dt.date(2026, 5, 28), days=60)
    doc = json.loads(_report(capsys, path, "--format", "json"))
    assert doc["period"]["start"] == "2026-05-01" and doc["period"]["end"] == "2026-05-29"
    assert doc["anchored_on_data"] is True and doc["totals"]
    assert "Data ends 2026-05-28" in _report(capsys, path)


def test_currency_filter(capsys: pytest.CaptureFixture[str], cache_path: Path) -> None:
    doc = json.loads(_report(capsys, cache_path, "--format", "json", "--currency", "EUR"))
    assert [t["currency"] for t in doc["totals"]] == ["EUR"]
    assert all(r["currency"] == "EUR" for rows in doc["breakdowns"].values() for r in rows)


@pytest.mark.parametrize(("args", "needle"), [
    (["--period", "soon"], "--period soon"),
    (["--by", "colour"], "unknown dimension"),
])
def test_bad_arguments_are_one_line(
    capsys: pytest.CaptureFixture[str], cache_path: Path, args: list[str], needle: str
) -> None:
    assert main(["report", "overview", "--cache", str(cache_path), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_missing_cache_says_what_to_do(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["report", "overview", "--cache", str(tmp_path / "none.duckdb")]) == 1
    assert "finops-tui demo" in capsys.readouterr().err
