"""`export focus --version 1.3` with shared cost pools: split rows per source row and recipient, exact sums."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finops_tui import cli, paths
from finops_tui.allocation.effective import TagPolicy
from finops_tui.ingest.demo import build_demo
from finops_tui.ingest.importer import import_paths
from finops_tui.store import open_cache
from tests.allocation_data import fresh_copy
from tests.focus_validation import failures_12

pytestmark = pytest.mark.today(dt.date(2026, 11, 27))
SPLITS = Path(__file__).parent / "fixtures" / "focus-1.3" / "splits.csv"
D = Decimal
# Columns that say which charge a row is (several cache rows may share them; sums are compared per group).
CHARGE_KEY = ("ResourceId", "ChargePeriodStart", "ChargeCategory", "x_SkuMeterName", "x_CostDataset",
              "BillingCurrency", "ServiceName")
MONEY = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-month demo estate of ~5,000 rows: big enough that each of its three pools has cost."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo(path, TagPolicy(), end=dt.date(2026, 11, 26), months=1, rows=5000)
    return path


@pytest.fixture(scope="module")
def exports(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("exports")
    out = {"1.3": folder / "pools.parquet", "1.2": folder / "plain.parquet"}
    for version, path in out.items():
        assert cli.main(["export", "focus", str(path), "--cache", str(demo), "--version", version, "-q"]) == 0
    return out


def rows(path: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with duckdb.connect() as con:
        con.execute(f"CREATE VIEW f AS SELECT * FROM read_parquet('{path}')")
        return con.execute(sql).fetchall()


def cache_rows(path: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_totals_equal_the_cache_per_currency_and_metric(demo: Path, exports: dict[str, Path]) -> None:
    want = cache_rows(demo, "SELECT BillingCurrency, sum(coalesce(BilledCost, 0)), sum(coalesce(EffectiveCost, 0)), "
                            "sum(ListCost), sum(ContractedCost) FROM charges GROUP BY 1 ORDER BY 1")
    got = rows(exports["1.3"], "SELECT BillingCurrency, sum(BilledCost), sum(EffectiveCost), sum(ListCost), "
                               "sum(ContractedCost) FROM f GROUP BY 1 ORDER BY 1")
    assert got == want  # exact, not only to the cent


def test_the_demo_pools_become_split_rows(demo: Path, exports: dict[str, Path]) -> None:
    pools = cache_rows(demo, "SELECT name, method, to_key FROM shared_pools ORDER BY pool_index")
    assert len(pools) == 3
    methods = rows(exports["1.3"], "SELECT DISTINCT AllocatedMethodId FROM f WHERE AllocatedMethodId IS NOT NULL "
                                   "ORDER BY 1")
    assert methods == sorted((f"finops-tui:{m}",) for _, m, _ in pools)
    split = rows(exports["1.3"], "SELECT AllocatedResourceId, AllocatedResourceName, AllocatedTags, "
                                 "AllocatedMethodDetails FROM f WHERE AllocatedMethodId IS NOT NULL")
    names = {n for n, _, _ in pools}
    for resource_id, name, tags, details in split:
        detail = json.loads(details)["Elements"][0]
        assert detail["x_Pool"] in names and detail["x_Key"] == "team" and detail["x_Recipient"] == name
        assert 0 <= detail["AllocatedRatio"] <= 1
        assert resource_id == f"finops-tui/shared/{detail['x_Pool']}/{name}".lower()
        assert json.loads(tags) == {"team": name}


def test_split_rows_sum_to_each_source_charge(exports: dict[str, Path]) -> None:
    """Every charge keeps its FOCUS columns; its split rows sum to it exactly (money) and closely (quantities)."""
    key = ", ".join(CHARGE_KEY)
    sums = ", ".join(f"sum({m})" for m in MONEY)
    sql = f"SELECT {key}, {sums}, round(sum(PricingQuantity), 6), count(*) FROM f GROUP BY ALL ORDER BY ALL"
    plain = {r[: len(CHARGE_KEY)]: r[len(CHARGE_KEY):] for r in rows(exports["1.2"], sql)}
    split = {r[: len(CHARGE_KEY)]: r[len(CHARGE_KEY):] for r in rows(exports["1.3"], sql)}
    assert plain.keys() == split.keys()
    more = 0
    for charge, figures in plain.items():
        assert split[charge][:-1] == figures[:-1], charge
        more += split[charge][-1] > figures[-1]
    assert more > 50  # the pools' charges were split


def test_split_rows_sum_to_the_materialised_shares(demo: Path, exports: dict[str, Path]) -> None:
    """Per pool, day, currency and recipient the split rows give exactly what the tree and chargeback show."""
    want = cache_rows(demo, "SELECT p.name, s.day, s.currency, s.recipient, s.effective, s.billed FROM shared_splits s "
                            "JOIN shared_pools p USING (pool_index) ORDER BY ALL")
    got = rows(exports["1.3"], """
        SELECT json_extract_string(AllocatedMethodDetails, '$.Elements[0].x_Pool'), ChargePeriodStart::DATE,
               BillingCurrency, AllocatedResourceName, sum(EffectiveCost), sum(BilledCost)
        FROM f WHERE AllocatedMethodId LIKE 'finops-tui:%' GROUP BY ALL ORDER BY ALL""")
    assert got == want and len(want) > 20


def test_version_12_exports_the_rows_as_cached_and_says_so(
    demo: Path, exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rows(exports["1.2"], "SELECT count(*) FROM f") == cache_rows(demo, "SELECT count(*) FROM charges")
    capsys.readouterr()
    assert cli.main(["export", "focus", str(tmp_path / "x.parquet"), "--cache", str(demo)]) == 0
    err = capsys.readouterr().err
    assert "shared cost pools are not applied" in err and "--version 1.3" in err


def test_a_period_exports_its_days_only(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "days.parquet"
    args = ["export", "focus", str(out), "--cache", str(demo), "--version", "1.3", "-q",
            "--period", "2026-11-10..2026-11-12"]
    assert cli.main(args) == 0
    want = cache_rows(demo, "SELECT sum(BilledCost), sum(EffectiveCost) FROM charges "
                            "WHERE x_ChargeDate >= '2026-11-10' AND x_ChargeDate < '2026-11-12'")
    assert rows(out, "SELECT sum(BilledCost), sum(EffectiveCost) FROM f") == want
    days = rows(out, "SELECT DISTINCT ChargePeriodStart::DATE FROM f ORDER BY 1")
    assert days == [(dt.date(2026, 11, 10),), (dt.date(2026, 11, 11),)]


def test_csv_split_rows_have_the_same_formats(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "pools.csv"
    assert cli.main(["export", "focus", str(out), "--cache", str(demo), "--version", "1.3", "-q"]) == 0
    with duckdb.connect() as con:
        con.execute(f"CREATE VIEW f AS SELECT * FROM read_csv('{out}', all_varchar=true)")
        starts = con.execute("SELECT DISTINCT ChargePeriodStart LIKE '____-__-__T__:__:__Z' FROM f WHERE "
                             "AllocatedMethodId LIKE 'finops-tui:%'").fetchall()
        got = con.execute("SELECT sum(EffectiveCost::DECIMAL(38,12)), sum(BilledCost::DECIMAL(38,12)) "
                          "FROM f").fetchall()
    assert starts == [(True,)]
    assert got == cache_rows(demo, "SELECT sum(EffectiveCost), sum(BilledCost) FROM charges")


def test_stale_shares_are_derived_again_before_the_export(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = fresh_copy(demo, tmp_path)
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE shared_splits SET effective = effective + 0.01 WHERE rowid = (SELECT min(rowid) "
                    "FROM shared_splits)")
    out = tmp_path / "x.parquet"
    capsys.readouterr()
    assert cli.main(["export", "focus", str(out), "--cache", str(path), "--version", "1.3"]) == 0
    err = capsys.readouterr().err
    assert "out of date" in err and "applied the pools again" in err and "Traceback" not in err
    want = cache_rows(path, "SELECT sum(EffectiveCost) FROM charges")
    assert rows(out, "SELECT sum(EffectiveCost) FROM f") == want
    assert cache_rows(path, "SELECT sum(effective) FROM shared_splits") == cache_rows(
        path, "SELECT sum(EffectiveCost) FROM charges WHERE x_SharedPool IS NOT NULL")


def test_validator_12_finds_no_new_failure(exports: dict[str, Path]) -> None:
    assert failures_12(exports["1.3"]) <= failures_12(exports["1.2"])


# --- provider splits beside a pool ----------------------------------------------------------------------

TAX_POOL = """
[[pool]]
name = "tax"
match = { charge_category = "Tax" }
method = "proportional"
"""


@pytest.mark.today(dt.date(2026, 5, 20))
def test_provider_splits_are_kept_and_a_pool_splits_beside_them(tmp_path: Path) -> None:
    cache = tmp_path / "cache.duckdb"
    with open_cache(cache) as c:
        import_paths(c, TagPolicy(), [SPLITS])
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    (paths.config_dir() / "shared.toml").write_text(TAX_POOL)
    out = tmp_path / "out.parquet"
    assert cli.main(["export", "focus", str(out), "--cache", str(cache), "--version", "1.3", "-q"]) == 0
    provider = cache_rows(cache, "SELECT AllocatedResourceId, AllocatedMethodId, sum(EffectiveCost) FROM charges "
                                 "WHERE AllocatedResourceId IS NOT NULL GROUP BY ALL ORDER BY ALL")
    assert rows(out, "SELECT AllocatedResourceId, AllocatedMethodId, sum(EffectiveCost) FROM f WHERE "
                     "AllocatedMethodId NOT LIKE 'finops-tui:%' GROUP BY ALL ORDER BY ALL") == provider
    # 5.55 of tax on 3 May, proportional to that day's direct cost by team: search 12.50 (a split workload),
    # payments 7.50 + 20.00, platform 10.00 (the host's unsplit rest): 1.3875, 3.0525, 1.11 by largest remainder.
    tax = rows(out, "SELECT AllocatedResourceName, EffectiveCost, BilledCost, ChargeCategory FROM f "
                    "WHERE AllocatedMethodId = 'finops-tui:proportional' ORDER BY 1")
    assert tax == [("payments", D("3.05"), D("3.05"), "Tax"), ("platform", D("1.11"), D("1.11"), "Tax"),
                   ("search", D("1.39"), D("1.39"), "Tax")]
    assert rows(out, "SELECT sum(EffectiveCost) FROM f") == cache_rows(cache, "SELECT sum(EffectiveCost) FROM charges")


@pytest.mark.today(dt.date(2026, 5, 20))
def test_a_pool_day_that_nets_to_zero_still_foots(tmp_path: Path) -> None:
    """A charge and its refund the same day: a metric whose pool total is 0 goes to the first recipient per row,
    and a day with nothing to split keeps its rows as they are."""
    import csv

    with SPLITS.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        source = list(reader)
    tax = next(r for r in source if r["ChargeCategory"] == "Tax")
    extra = [
        {**tax, "BilledCost": "0", "EffectiveCost": "-5.55", "ChargeDescription": "tax correction"},
        {**tax, "BilledCost": "3.00", "EffectiveCost": "3.00", "ChargePeriodStart": "2026-05-02T00:00:00Z",
         "ChargePeriodEnd": "2026-05-03T00:00:00Z"},
        {**tax, "BilledCost": "-3.00", "EffectiveCost": "-3.00", "ChargePeriodStart": "2026-05-02T00:00:00Z",
         "ChargePeriodEnd": "2026-05-03T00:00:00Z", "ChargeDescription": "tax refund"},
    ]
    crafted = tmp_path / "splits.csv"
    with crafted.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows([*source, *extra])
    cache = tmp_path / "cache.duckdb"
    with open_cache(cache) as c:
        import_paths(c, TagPolicy(), [crafted])
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    (paths.config_dir() / "shared.toml").write_text(TAX_POOL)
    out = tmp_path / "out.parquet"
    assert cli.main(["export", "focus", str(out), "--cache", str(cache), "--version", "1.3", "-q"]) == 0
    assert rows(out, "SELECT sum(EffectiveCost), sum(BilledCost) FROM f") == cache_rows(
        cache, "SELECT sum(EffectiveCost), sum(BilledCost) FROM charges")
    by_row = rows(out, "SELECT ChargeDescription, ChargePeriodStart::DATE, sum(EffectiveCost), sum(BilledCost), "
                       "count(*) FROM f WHERE ChargeCategory = 'Tax' GROUP BY ALL ORDER BY ALL")
    assert by_row == [
        (tax["ChargeDescription"], dt.date(2026, 5, 2), D("3.00"), D("3.00"), 1),  # nothing to split: as it was
        (tax["ChargeDescription"], dt.date(2026, 5, 3), D("5.55"), D("5.55"), 3),
        ("tax correction", dt.date(2026, 5, 3), D("-5.55"), D("0"), 3),
        ("tax refund", dt.date(2026, 5, 2), D("-3.00"), D("-3.00"), 1),
    ]
    billed = rows(out, "SELECT AllocatedResourceName, sum(BilledCost), sum(EffectiveCost) FROM f "
                       "WHERE AllocatedMethodId = 'finops-tui:proportional' GROUP BY ALL ORDER BY ALL")
    assert billed == [("payments", D("3.05"), D("0")), ("platform", D("1.11"), D("0")), ("search", D("1.39"), D("0"))]
