"""The demo estate: deterministic, realistic in shape, and every planted problem visible in the data."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import statistics
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finops_tui import cli, clock
from finops_tui.allocation.effective import TagPolicy
from finops_tui.commands.demo import default_end
from finops_tui.ingest.demo import (
    PLANTED,
    TEAMS,
    build_demo,
    iter_planted_ids,
    untagged_share,
    window_start,
)
from finops_tui.store.cache import open_cache
from finops_tui.store.sources import Window, begin_window

END = dt.date(2026, 11, 26)
DATA = Path(cli.__file__).parent / "data"


def _run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(list(argv))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default estate, built once through the command line exactly as a user would."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    code, out = _run_cli("demo", "--no-open", "--cache", str(path), "--end", END.isoformat(), "-q")
    assert code == 0, out
    assert f"demo estate: {path}" in out and "built in" in out
    return path


@pytest.fixture(scope="module")
def con(estate: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(estate), read_only=True)
    yield connection
    connection.close()


def _daily(con: duckdb.DuckDBPyConnection, where: str, params: list[object] | None = None) -> dict[dt.date, float]:
    rows = con.execute(
        f"SELECT x_ChargeDate, sum(EffectiveCost) FROM charges WHERE {where} GROUP BY 1 ORDER BY 1", params or []
    ).fetchall()
    return {day: float(cost) for day, cost in rows}


def _values(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> set[object]:
    return {row[0] for row in con.execute(sql, params or []).fetchall()}


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> object:
    row = con.execute(sql, params or []).fetchone()
    assert row is not None
    return row[0]


# ---- command line ---------------------------------------------------------------------------------


def test_cli_reuses_a_cache_built_with_the_same_parameters(estate: Path) -> None:
    before = estate.stat().st_mtime_ns
    code, out = _run_cli("demo", "--no-open", "--cache", str(estate), "--end", END.isoformat(), "-q")
    assert code == 0
    assert "reused" in out
    assert estate.stat().st_mtime_ns == before


def test_cli_rebuilds_when_parameters_change(tmp_path: Path) -> None:
    path = tmp_path / "demo.duckdb"
    abandoned = tmp_path / ".demo.duckdb.building-99999999"  # no such process: a build killed midway
    abandoned.write_bytes(b"half a cache")
    assert _run_cli("demo", "--no-open", "--cache", str(path), "--end", "2026-11-26", "--months", "1", "-q")[0] == 0
    code, out = _run_cli("demo", "--no-open", "--cache", str(path), "--end", "2026-11-25", "--months", "1", "-q")
    assert code == 0 and "built in" in out
    assert "2026-11-01 .. 2026-11-25" in out
    assert not list(tmp_path.glob(".demo.duckdb.building-*")), "the temp file is renamed, never left behind"


def test_cli_refuses_to_replace_real_cost_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cache.duckdb"
    with open_cache(path) as cache, cache.write() as cur:
        begin_window(cur, Window(kind="focus-file", scope="x", metric="focus", start=END, end=END))
    code = cli.main(["demo", "--no-open", "--force", "--cache", str(path), "--end", END.isoformat(), "--months", "1"])
    assert code == 1
    assert "not a demo estate" in capsys.readouterr().err
    with open_cache(path, read_only=True) as cache, cache.cursor() as cur:
        assert cur.execute("SELECT kind FROM sources").fetchall() == [("focus-file",)]


def test_cli_rejects_a_bad_end_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["demo", "--no-open", "--cache", str(tmp_path / "x.duckdb"), "--end", "26/11/2026"])
    assert code == 2
    assert "--end" in capsys.readouterr().err
    assert not (tmp_path / "x.duckdb").exists()


def test_default_end_is_yesterday() -> None:
    clock.pin(dt.date(2026, 3, 1))
    try:
        assert default_end() == dt.date(2026, 2, 28)
    finally:
        clock.pin(None)


# ---- shape ----------------------------------------------------------------------------------------


def test_period_is_thirteen_calendar_months_of_daily_rows(con: duckdb.DuckDBPyConnection) -> None:
    start, end, days = con.execute(
        "SELECT min(x_ChargeDate), max(x_ChargeDate), count(DISTINCT x_ChargeDate) FROM charges"
    ).fetchone() or (None, None, None)
    assert (start, end) == (dt.date(2025, 11, 1), END) == (window_start(END, 13), END)
    assert days == (END - start).days + 1
    rows = _one(con, "SELECT count(*) FROM charges")
    assert 600_000 <= rows <= 800_000  # type: ignore[operator]
    # Daily grain: ChargePeriod is one day (purchases span their month); BillingPeriod is the calendar month.
    bad = _one(con, """
        SELECT count(*) FROM charges WHERE x_ChargeDate <> ChargePeriodStart::DATE
           OR (ChargeCategory = 'Usage' AND ChargePeriodEnd <> ChargePeriodStart + INTERVAL 1 DAY)
           OR BillingPeriodStart <> date_trunc('month', ChargePeriodStart)
           OR BillingPeriodEnd <> BillingPeriodStart + INTERVAL 1 MONTH
    """)
    assert bad == 0
    assert _one(con, "SELECT count(*) FROM (SELECT ResourceId, x_ChargeDate FROM charges "
                     "WHERE ChargeCategory = 'Usage' GROUP BY ALL HAVING count(*) > 1)") == 0


def test_estate_size(con: duckdb.DuckDBPyConnection) -> None:
    subscriptions, groups, services = con.execute(
        "SELECT count(DISTINCT SubAccountId), count(DISTINCT x_ResourceGroupName), count(DISTINCT ServiceName) "
        "FROM charges"
    ).fetchone() or (0, 0, 0)
    assert 4 <= subscriptions <= 6
    assert 35 <= groups <= 45
    assert 13 <= services <= 19
    assert 1900 <= _one(con, "SELECT count(*) FROM resources") <= 2100  # type: ignore[operator]
    values = _values(con, "SELECT DISTINCT tag_value FROM resource_tags WHERE tag_key = 'team'")
    assert set(TEAMS) <= values and len(TEAMS) == 15
    assert len(values) <= 20  # the teams plus their misspellings


def test_columns_are_consistent_with_open_data(con: duckdb.DuckDBPyConnection) -> None:
    with (DATA / "Services.csv").open(encoding="utf-8") as f:
        services = {(r["ServiceName"], r["ServiceCategory"]) for r in csv.DictReader(f)}
    with (DATA / "Regions.csv").open(encoding="utf-8") as f:
        regions = {(r["RegionId"], r["RegionName"]) for r in csv.DictReader(f)}
    with (DATA / "PricingUnits.csv").open(encoding="utf-8") as f:
        units = {r["DistinctUnits"] for r in csv.DictReader(f)}
    # The support plan is billed to no resource type, so Microsoft's service list (keyed on types) lacks it.
    assert set(con.execute("SELECT DISTINCT ServiceName, ServiceCategory FROM charges "
                           "WHERE ResourceId IS NOT NULL").fetchall()) <= services
    assert set(con.execute("SELECT DISTINCT RegionId, RegionName FROM charges "
                           "WHERE ResourceId IS NOT NULL").fetchall()) <= regions
    assert _values(con, "SELECT DISTINCT PricingUnit FROM charges") <= units
    assert _one(con, "SELECT count(*) FROM charges WHERE ResourceId <> lower(ResourceId)") == 0
    assert _one(con, "SELECT count(*) FROM charges WHERE ResourceType = 'microsoft.compute/virtualmachines' "
                     "AND ResourceId NOT LIKE '/subscriptions/%/resourcegroups/%/providers/"
                     "microsoft.compute/virtualmachines/%'") == 0
    fixed = con.execute(
        "SELECT DISTINCT BillingCurrency, ProviderName, InvoiceIssuerName, BillingAccountId FROM charges"
    ).fetchall()
    assert fixed == [("USD", "Microsoft", "Microsoft", "/providers/Microsoft.Billing/billingAccounts/8611537")]
    assert _one(con, "SELECT count(*) FROM charges WHERE ChargeClass IS NOT NULL") == 0
    assert _values(con, "SELECT DISTINCT PricingCategory FROM charges") == {
        "Standard", "Committed", "Dynamic"
    }


def test_planted_resources_exist(con: duckdb.DuckDBPyConnection) -> None:
    known = _values(con, "SELECT ResourceId FROM resources")
    assert set(iter_planted_ids()) <= known
    groups = _values(con, "SELECT DISTINCT x_ResourceGroupName FROM charges")
    assert set(PLANTED.untagged_resource_groups) <= groups


# ---- money ----------------------------------------------------------------------------------------


def test_money_is_decimal_and_totals_are_exact(estate: Path, con: duckdb.DuckDBPyConnection) -> None:
    types = dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'charges' "
        "AND column_name IN ('BilledCost', 'EffectiveCost', 'ListCost', 'ContractedCost')"
    ).fetchall())
    assert set(types.values()) == {"DECIMAL(38,12)"} and len(types) == 4
    total = _one(con, "SELECT sum(EffectiveCost) FROM charges")
    by_day = _one(con, "SELECT sum(s) FROM (SELECT sum(EffectiveCost) s FROM charges GROUP BY x_ChargeDate)")
    by_service = _one(con, "SELECT sum(s) FROM (SELECT sum(EffectiveCost) s FROM charges GROUP BY ServiceName)")
    assert isinstance(total, Decimal) and total == by_day == by_service
    _, out = _run_cli("demo", "--no-open", "--cache", str(estate), "--end", END.isoformat(), "-q")
    assert f"USD {total:,.2f} amortized" in out
    monthly = [float(v) for (v,) in con.execute(
        "SELECT sum(EffectiveCost) FROM charges WHERE BillingPeriodStart < date_trunc('month', ?::DATE) "
        "GROUP BY BillingPeriodStart", [END]
    ).fetchall()]
    assert all(150_000 <= m <= 300_000 for m in monthly), monthly


def test_list_contracted_effective_order(con: duckdb.DuckDBPyConnection) -> None:
    assert _one(con, "SELECT count(*) FROM charges WHERE ChargeCategory = 'Usage' "
                     "AND NOT (ListCost >= ContractedCost AND ContractedCost >= EffectiveCost)") == 0
    # Actual and amortized only differ by the reservation: covered usage is prepaid, the purchase is billed.
    assert _one(con, "SELECT count(*) FROM charges WHERE CommitmentDiscountId IS NULL "
                     "AND BilledCost <> EffectiveCost") == 0


# ---- tag hygiene -------------------------------------------------------------------------------------


def test_untagged_share_of_spend_is_between_20_and_30_percent(con: duckdb.DuckDBPyConnection) -> None:
    share = untagged_share(con)
    assert 0.20 <= share <= 0.30
    for group in PLANTED.untagged_resource_groups:
        assert _one(con, "SELECT count(*) FROM resources r JOIN resource_tags t ON t.ResourceId = r.ResourceId "
                         "AND t.tag_key = 'team' WHERE r.x_ResourceGroupName = ?", [group]) == 0, group
    scattered = _one(con, """
        SELECT count(*) FROM resources r LEFT JOIN resource_tags t ON t.ResourceId = r.ResourceId AND t.tag_key = 'team'
        WHERE t.ResourceId IS NULL AND r.x_ResourceGroupName NOT IN (SELECT unnest(?::VARCHAR[]))
          AND r.x_ResourceGroupName IS NOT NULL
    """, [list(PLANTED.untagged_resource_groups)])
    assert scattered > 20  # type: ignore[operator]


def test_key_variants_and_misspellings_in_raw_tags(con: duckdb.DuckDBPyConnection) -> None:
    keys = _values(con, "SELECT DISTINCT unnest(map_keys(Tags)) FROM charges")
    assert set(PLANTED.team_key_variants) <= keys
    assert {"env", "costcenter"} <= keys
    values = _values(con, "SELECT DISTINCT tag_value FROM resource_tags WHERE tag_key = 'team'")
    for misspellings in PLANTED.misspelled_team_values.values():
        assert set(misspellings) <= values
    envs = _values(con, "SELECT DISTINCT tag_value FROM resource_tags WHERE tag_key = 'env'")
    assert envs == {"prod", "staging", "dev"}
    # Cost centres follow teams almost one to one.
    pairs = con.execute("""
        SELECT t.tag_value, count(DISTINCT c.tag_value) FROM resource_tags t
        JOIN resource_tags c ON c.ResourceId = t.ResourceId AND c.tag_key = 'costcenter'
        WHERE t.tag_key = 'team' GROUP BY 1
    """).fetchall()
    assert all(n == 1 for _, n in pairs)


# ---- reservation ------------------------------------------------------------------------------------


def test_reservation_used_unused_and_purchase(con: duckdb.DuckDBPyConnection) -> None:
    ri = PLANTED.reservation
    rows = con.execute("""
        SELECT ChargeCategory, CommitmentDiscountStatus, PricingCategory, count(*),
               sum(BilledCost), sum(EffectiveCost), min(EffectiveCost), count(DISTINCT x_ChargeDate)
        FROM charges WHERE CommitmentDiscountId = ? GROUP BY ALL ORDER BY ALL
    """, [ri.id]).fetchall()
    by_status = {(cat, status): rest for cat, status, *rest in rows}
    days = (END - window_start(END, 13)).days + 1
    used = by_status[("Usage", "Used")]
    unused = by_status[("Usage", "Unused")]
    purchase = by_status[("Purchase", None)]
    assert used[0] == "Committed" and used[2] == 0 and used[3] > 0
    assert unused[0] == "Committed" and unused[1] == days and unused[2] == 0 and unused[4] > 0
    assert purchase[1] == 13 and purchase[2] == 13 * ri.monthly_fee and purchase[3] == 0
    assert _one(con, "SELECT count(DISTINCT CommitmentDiscountType) FROM charges "
                     "WHERE CommitmentDiscountId IS NOT NULL") == 1
    # Each day's used + unused amortized cost is the monthly fee spread over the month's days.
    worst = _one(con, """
        SELECT max(abs(s - ?::DECIMAL(38,12) / datediff('day', BillingPeriodStart, BillingPeriodEnd)))
        FROM (SELECT x_ChargeDate, BillingPeriodStart, BillingPeriodEnd, sum(EffectiveCost) s FROM charges
              WHERE CommitmentDiscountId = ? AND ChargeCategory = 'Usage' GROUP BY ALL)
    """, [ri.monthly_fee, ri.id])
    assert worst < Decimal("0.0001")  # type: ignore[operator]
    # Idle capacity grows when the legacy batch VMs stop.
    stopped = PLANTED.stopped_last_day(END)
    hours = dict(con.execute(
        "SELECT x_ChargeDate, PricingQuantity FROM charges WHERE CommitmentDiscountStatus = 'Unused' "
        "AND x_ChargeDate IN (?, ?)", [stopped, stopped + dt.timedelta(days=1)]
    ).fetchall())
    assert hours[stopped + dt.timedelta(days=1)] > hours[stopped]


# ---- planted anomalies --------------------------------------------------------------------------------


def test_spike_in_one_group_and_service(con: duckdb.DuckDBPyConnection) -> None:
    daily = _daily(con, "x_ResourceGroupName = ? AND ServiceName = ?",
                   [PLANTED.spike_resource_group, PLANTED.spike_service])
    spike = PLANTED.spike_days(END)
    assert len(spike) == 3 and spike[0] == END - dt.timedelta(days=11)
    baseline = statistics.median(daily[spike[0] - dt.timedelta(days=n)] for n in range(1, 15))
    assert all(daily[day] > 2.8 * baseline for day in spike)
    assert daily[spike[-1] + dt.timedelta(days=1)] < 1.5 * baseline


def test_step_change_in_one_subscription(con: duckdb.DuckDBPyConnection) -> None:
    daily = _daily(con, "SubAccountId = ?", [PLANTED.step_subscription])
    first = PLANTED.step_first_day(END)
    before = statistics.mean(daily[first - dt.timedelta(days=n)] for n in range(1, 8))
    after = statistics.mean(daily[first + dt.timedelta(days=n)] for n in range(7))
    assert 1.3 <= after / before <= 1.55


def test_new_expensive_sku_on_an_existing_vm(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "SELECT x_ChargeDate, x_SkuMeterName, SkuId, EffectiveCost FROM charges WHERE ResourceId = ? ORDER BY 1",
        [PLANTED.new_sku_resource_id],
    ).fetchall()
    first = PLANTED.new_sku_first_day(END)
    old = [r for r in rows if r[0] < first]
    new = [r for r in rows if r[0] >= first]
    assert old[0][0] == window_start(END, 13)  # it ran the whole year on the old meter
    assert {r[1] for r in old} == {PLANTED.new_sku_old_meter}
    assert {r[1] for r in new} == {PLANTED.new_sku_new_meter} and len(new) == 12
    assert old[-1][2] != new[0][2]
    assert new[0][3] > 5 * old[-1][3]


def test_stopped_vms_leave_disks_and_storage_billing(con: duckdb.DuckDBPyConnection) -> None:
    group = PLANTED.stopped_resource_group
    last_vm = _one(con, "SELECT max(x_ChargeDate) FROM charges WHERE x_ResourceGroupName = ? "
                        "AND ResourceType = 'microsoft.compute/virtualmachines'", [group])
    assert last_vm == PLANTED.stopped_last_day(END)
    still = _values(con, "SELECT DISTINCT ResourceType FROM charges WHERE x_ResourceGroupName = ? "
                         "AND x_ChargeDate = ?", [group, END])
    assert {"microsoft.compute/disks", "microsoft.storage/storageaccounts",
            "microsoft.network/publicipaddresses"} <= still


def test_idle_disks_and_public_ips_with_no_compute_for_two_weeks(con: duckdb.DuckDBPyConnection) -> None:
    idle = list(PLANTED.idle_disk_ids + PLANTED.idle_public_ip_ids)
    billing = _values(
        con,
        "SELECT DISTINCT ResourceId FROM charges WHERE x_ChargeDate = ? AND ResourceId IN (SELECT unnest(?))",
        [END, idle],
    )
    assert billing == set(idle)
    compute = _one(con, """
        SELECT count(*) FROM charges WHERE x_ChargeDate > ? - INTERVAL 14 DAY
          AND x_ResourceGroupName IN (SELECT DISTINCT x_ResourceGroupName FROM charges
                                      WHERE ResourceId IN (SELECT unnest(?)))
          AND ResourceType IN ('microsoft.compute/virtualmachines', 'microsoft.compute/virtualmachinescalesets')
    """, [END, idle])
    assert compute == 0
    assert PLANTED.orphaned_last_vm_day(END) < END - dt.timedelta(days=60)


def test_growth_trend_in_ml_platform(con: duckdb.DuckDBPyConnection) -> None:
    monthly = dict(con.execute("""
        SELECT c.BillingPeriodStart::DATE, sum(c.EffectiveCost) FROM charges c
        JOIN resources r USING (ResourceId) WHERE r.x_ResourceGroupName IN ('rg-openai-prod', 'rg-ml-inference')
        GROUP BY 1
    """).fetchall())
    assert monthly[dt.date(2026, 10, 1)] > 3 * monthly[dt.date(2026, 1, 1)]
    assert PLANTED.team_growth_per_week["ml-platform"] >= 0.02


def test_weekends_are_cheaper_in_dev_and_staging(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute("""
        SELECT isodow(x_ChargeDate) >= 6, avg(s) FROM (
            SELECT x_ChargeDate, sum(EffectiveCost) s FROM charges
            WHERE SubAccountName IN ('dev-sandbox', 'staging') AND x_ChargeDate > ? - INTERVAL 56 DAY GROUP BY 1
        ) GROUP BY 1
    """, [END]).fetchall()
    averages = {weekend: float(avg) for weekend, avg in rows}
    assert averages[True] < 0.85 * averages[False]


# ---- determinism and scaling --------------------------------------------------------------------------


def _fingerprint(path: Path) -> tuple[list[tuple[object, ...]], object]:
    with duckdb.connect(str(path), read_only=True) as c:
        per_day = c.execute(
            "SELECT x_ChargeDate, sum(EffectiveCost), sum(BilledCost), sum(ListCost), count(*) "
            "FROM charges GROUP BY 1 ORDER BY 1"
        ).fetchall()
        every_row = c.execute(
            "SELECT sum(hash(ResourceId, x_ChargeDate, EffectiveCost::VARCHAR, BilledCost::VARCHAR, "
            "Tags::VARCHAR, x_SkuMeterName)) FROM charges"
        ).fetchone()
    return per_day, every_row


def test_same_seed_and_end_give_identical_figures(tmp_path: Path) -> None:
    first = build_demo(tmp_path / "a.duckdb", TagPolicy(), end=END, months=2)
    second = build_demo(tmp_path / "b.duckdb", TagPolicy(), end=END, months=2)
    other_seed = build_demo(tmp_path / "c.duckdb", TagPolicy(), end=END, months=2, seed=7)
    assert _fingerprint(tmp_path / "a.duckdb") == _fingerprint(tmp_path / "b.duckdb")
    assert first.effective_cost == second.effective_cost and first.rows == second.rows
    assert _fingerprint(tmp_path / "a.duckdb") != _fingerprint(tmp_path / "c.duckdb")
    assert other_seed.rows > 0


def test_rows_scales_the_estate(tmp_path: Path) -> None:
    summary = build_demo(tmp_path / "scaled.duckdb", TagPolicy(), end=END, rows=50_000)
    assert abs(summary.rows - 50_000) / 50_000 < 0.03
    summary = build_demo(tmp_path / "scaled.duckdb", TagPolicy(), end=END, months=3, rows=120_000)
    assert abs(summary.rows - 120_000) / 120_000 < 0.03
    assert summary.start == dt.date(2026, 9, 1)
