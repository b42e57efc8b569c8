"""Commitments read model and `report commitments`: hand-computed KPIs on crafted rows, real fixtures, the demo."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.basis.periods import Period
from finops_tui.cli import main
from finops_tui.ingest.demo import PLANTED, build_demo
from finops_tui.recommend.engine import run_all
from finops_tui.recommend.model import Context
from finops_tui.report.commitments import commitments, ratio_text
from finops_tui.store import open_cache
from finops_tui.store.sources import Window, begin_window, finish_window
from tests.conftest import FIXTURES

D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
OCTOBER = Period(dt.date(2026, 10, 1), dt.date(2026, 11, 1), "2026-10-01..2026-11-01", dt.date(2026, 10, 31))
R1 = "/providers/microsoft.capacity/reservationorders/o1/reservations/r1"
SP1 = "arn:aws:savingsplans::123456789012:savingsplan/sp-1"
CUD1 = "projects/p1/regions/us-central1/commitments/cud-1"
VM = "/subscriptions/s1/resourcegroups/rg-a/providers/microsoft.compute/virtualmachines/"

_COLUMNS = ("x_ChargeDate", "ResourceId", "ResourceName", "ServiceName", "RegionId", "SubAccountId", "SubAccountName",
            "BillingCurrency", "ChargeCategory", "PricingCategory", "ListCost", "ContractedCost", "EffectiveCost",
            "BilledCost", "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountType",
            "CommitmentDiscountCategory", "CommitmentDiscountStatus", "ProviderName", "x_ResourceGroupName", "Tags")


def row(day: dt.date, *, list_cost: str | None, effective: str, contracted: str | None = None,
        billed: str | None = None, resource: str | None = None, service: str = "Virtual Machines",
        region: str = "eastus", currency: str = "USD", category: str = "Usage", pricing: str = "Standard",
        commitment: str | None = None, status: str | None = None, ctype: str = "Reservation",
        ccategory: str = "Usage", provider: str = "Microsoft", team: str | None = None) -> dict[str, Any]:
    name = resource.rsplit("/", 1)[-1] if resource else None
    return {
        "x_ChargeDate": day, "ResourceId": resource, "ResourceName": name, "ServiceName": service, "RegionId": region,
        "SubAccountId": "s1", "SubAccountName": "Shared", "BillingCurrency": currency, "ChargeCategory": category,
        "PricingCategory": "Committed" if status else pricing,
        "ListCost": Decimal(list_cost) if list_cost is not None else None,
        "ContractedCost": Decimal(contracted) if contracted is not None else None,
        "EffectiveCost": Decimal(effective), "BilledCost": Decimal(billed if billed is not None else effective),
        "CommitmentDiscountId": commitment, "CommitmentDiscountName": commitment.rsplit("/", 1)[-1] if commitment
        else None, "CommitmentDiscountType": ctype if commitment else None,
        "CommitmentDiscountCategory": ccategory if commitment else None, "CommitmentDiscountStatus": status,
        "ProviderName": provider, "x_ResourceGroupName": "rg-a" if resource else None,
        "Tags": {"team": team} if team else None,
    }


def crafted_rows(*, with_list_cost: bool = True) -> list[dict[str, Any]]:
    """USD: reservation R1 (Azure) and savings plan SP1 (AWS); EUR: committed use discount CUD1 (GCP).

    R1: used 6+6+6 = 18, unused 3+9 = 12, list 30, contracted 27 → utilization 0.6, realized 12, negotiated 3.
    SP1: used 5, unused 1, list 8, contracted 8 → utilization 0.8333, realized 3, negotiated 0.
    USD eligible (VM/eastus and EC2/us-east-1): list 30 + 20 + 8 + 2 = 60, effective 18 + 18 + 5 + 2 = 43,
    covered list 38 → coverage 0.6333; ESR (60 − 43 − 13) / 60 = 0.0667. Spot and Storage rows are not eligible.
    CUD1: used 63, unused 7, list 100 → utilization 0.9; EUR eligible list 125, effective 88 → coverage 0.8,
    ESR (125 − 88 − 7) / 125 = 0.24.
    """
    def lc(value: str) -> str | None:
        return value if with_list_cost else None

    vm1, vm2, vm3, vm4 = (VM + n for n in ("vm1", "vm2", "vm3", "vm4"))
    return [
        row(D1, list_cost=lc("10"), contracted="9", effective="6", resource=vm1, commitment=R1, status="Used",
            team="payments"),
        row(D1, list_cost=lc("10"), contracted="9", effective="6", resource=vm2, commitment=R1, status="Used",
            team="search"),
        row(D2, list_cost=lc("10"), contracted="9", effective="6", resource=vm1, commitment=R1, status="Used",
            team="payments"),
        row(D1, list_cost=lc("3"), contracted="3", effective="3", resource=R1, commitment=R1, status="Unused"),
        row(D2, list_cost=lc("9"), contracted="9", effective="9", resource=R1, commitment=R1, status="Unused"),
        row(D1, list_cost=lc("24"), contracted="24", effective="0", billed="24", category="Purchase", commitment=R1),
        row(D1, list_cost=lc("10"), contracted="9", effective="9", resource=vm3),
        row(D2, list_cost=lc("10"), contracted="9", effective="9", resource=vm3),
        row(D1, list_cost=lc("10"), contracted="3", effective="3", resource=vm4, pricing="Dynamic"),
        row(D1, list_cost=lc("50"), contracted="50", effective="50", resource=VM + "st1", service="Storage"),
        row(D1, list_cost=lc("8"), contracted="8", effective="5", resource="i-1", service="Amazon EC2",
            region="us-east-1", commitment=SP1, status="Used", ctype="Savings Plan", ccategory="Spend",
            provider="AWS"),
        row(D1, list_cost=lc("1"), contracted="1", effective="1", service="Amazon EC2", region="us-east-1",
            commitment=SP1, status="Unused", ctype="Savings Plan", ccategory="Spend", provider="AWS"),
        row(D2, list_cost=lc("2"), contracted="2", effective="2", resource="i-2", service="Amazon EC2",
            region="us-east-1", provider="AWS"),
        row(D1, list_cost=lc("100"), contracted="100", effective="63", resource="gce-1", service="Compute Engine",
            region="us-central1", currency="EUR", commitment=CUD1, status="Used",
            ctype="Committed Use Discount", ccategory="Spend", provider="Google Cloud"),
        row(D1, list_cost=lc("7"), contracted="7", effective="7", service="Compute Engine", region="us-central1",
            currency="EUR", commitment=CUD1, status="Unused", ctype="Committed Use Discount", ccategory="Spend",
            provider="Google Cloud"),
        row(D1, list_cost=lc("25"), contracted="25", effective="25", resource="gce-2", service="Compute Engine",
            region="us-central1", currency="EUR", provider="Google Cloud"),
    ]


def load_rows(path: Path, rows: list[Mapping[str, Any]], *, kind: str = "focus-file") -> Path:
    """The rows in a new cache, as one window of `kind`, with effective tags derived."""
    with open_cache(path) as cache, cache.write() as cur:
        sid = begin_window(cur, Window(kind, "test", "focus", D1, D2 + dt.timedelta(days=1)))
        columns = ", ".join(_COLUMNS)
        cur.executemany(
            f"INSERT INTO charges ({columns}, ChargePeriodStart, ChargePeriodEnd, source_id) "
            f"VALUES ({', '.join('?' for _ in _COLUMNS)}, ?, ?, ?)",
            [[r[c] for c in _COLUMNS] + [dt.datetime.combine(r["x_ChargeDate"], dt.time()),
                                         dt.datetime.combine(r["x_ChargeDate"], dt.time()) + dt.timedelta(days=1),
                                         sid] for r in rows],
        )
        finish_window(cur, sid)
        refresh_derived(cur, TagPolicy())
    return path


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return load_rows(tmp_path_factory.mktemp("crafted") / "cache.duckdb", crafted_rows())


def _view(path: Path, period: Period = OCTOBER):  # type: ignore[no-untyped-def]
    with open_cache(path, read_only=True) as cache, cache.cursor() as cur:
        return commitments(cur, period)


def _report(capsys: pytest.CaptureFixture[str], path: Path, *args: str) -> str:
    assert main(["report", "commitments", "--cache", str(path), *args]) == 0
    return capsys.readouterr().out


# --- hand-computed KPIs -----------------------------------------------------------------------------


def test_per_commitment_figures_are_hand_computed(crafted: Path) -> None:
    view = _view(crafted)
    usd = view.for_currency("USD")
    assert usd is not None
    r1, sp1 = usd.commitments  # largest amortized cost first
    assert (r1.id, r1.type, r1.category, r1.provider) == (R1, "Reservation", "Usage", "Microsoft")
    assert (r1.used, r1.unused, r1.amortized, r1.purchase) == (18, 12, 30, 24)
    assert r1.utilization == Decimal("0.6")
    assert (r1.realized_savings, r1.negotiated_savings) == (12, 3)
    assert (r1.covered_resource_count, [c.name for c in r1.covered]) == (2, ["vm1", "vm2"])
    assert [(d.day, d.used, d.unused) for d in r1.daily[:2]] == [(D1, 12, 3), (D2, 6, 9)]
    assert len(r1.daily) == 31 and r1.daily[2].utilization is None  # days without rows are zero, not gaps
    assert (sp1.type, sp1.category, sp1.provider) == ("Savings Plan", "Spend", "AWS")
    assert (sp1.used, sp1.unused, sp1.realized_savings, sp1.negotiated_savings) == (5, 1, 3, 0)
    assert ratio_text(sp1.utilization) == "0.8333"


def test_currency_kpis_are_hand_computed_and_never_mix_currencies(crafted: Path) -> None:
    view = _view(crafted)
    assert [v.currency for v in view.currencies] == ["EUR", "USD"]  # largest commitment cost first
    eur, usd = view.currencies
    assert (usd.used, usd.unused, usd.purchase) == (23, 13, 24)
    assert ratio_text(usd.utilization) == "0.6389"  # 23 / 36
    assert (usd.covered_list, usd.eligible_list, usd.eligible_effective) == (38, 60, 43)
    assert ratio_text(usd.coverage) == "0.6333"
    assert ratio_text(usd.effective_savings_rate) == "0.0667"  # (60 − 43 − 13) / 60
    assert (usd.realized_savings, usd.negotiated_savings) == (15, 3)
    (cud,) = eur.commitments
    assert (cud.type, cud.provider, cud.used, cud.unused, cud.realized_savings) == (
        "Committed Use Discount", "Google Cloud", 63, 7, 37)
    assert ratio_text(eur.utilization) == "0.9000"
    assert ratio_text(eur.coverage) == "0.8000"
    assert ratio_text(eur.effective_savings_rate) == "0.2400"
    assert view.notes() == []


def test_json_report_has_the_issue_shape(crafted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(_report(capsys, crafted, "--period", "2026-10-01..2026-11-01", "--format", "json"))
    assert doc["period"] == {"start": "2026-10-01", "end": "2026-11-01", "spec": "2026-10-01..2026-11-01"}
    usd = doc["currencies"][1]
    assert {k: v for k, v in usd.items() if k != "commitments"} == {
        "currency": "USD", "utilization": "0.6389", "coverage": "0.6333", "effective_savings_rate": "0.0667",
        "realized_savings": "15.00", "negotiated_savings": "3.00", "unused": "13.00",
    }
    assert usd["commitments"][0] == {
        "id": R1, "name": "r1", "type": "Reservation", "used": "18.00", "unused": "12.00", "utilization": "0.6000",
        "purchase": "24.00", "realized_savings": "12.00",
    }
    assert [c["currency"] for c in doc["currencies"]] == ["EUR", "USD"]


@pytest.mark.parametrize("fmt", ["table", "csv", "md"])
def test_other_formats_show_the_same_figures(crafted: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    out = _report(capsys, crafted, "--period", "2026-10-01..2026-11-01", "--format", fmt)
    assert "r1" in out and "sp-1" in out and "cud-1" in out
    assert "0.6389" in out or "63.9%" in out
    assert "15.00" in out and "13.00" in out


def test_currency_flag_keeps_one_currency(crafted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(_report(capsys, crafted, "--period", "2026-10-01..2026-11-01", "--format", "json",
                             "--currency", "eur"))
    assert [c["currency"] for c in doc["currencies"]] == ["EUR"]


# --- a cache without ListCost -------------------------------------------------------------------------


def test_without_list_cost_no_saving_is_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = load_rows(tmp_path / "query.duckdb", crafted_rows(with_list_cost=False), kind="sync-query")
    usd = _view(path).for_currency("USD")
    assert usd is not None
    assert usd.utilization is not None and ratio_text(usd.utilization) == "0.6389"  # usage needs no price
    assert (usd.coverage, usd.effective_savings_rate, usd.realized_savings, usd.negotiated_savings) == (
        None, None, None, None)
    assert all(c.realized_savings is None for c in usd.commitments)
    notes = _view(path).notes("USD")
    assert len(notes) == 1 and "ListCost is missing on 7 usage rows" in notes[0] and "Query API" in notes[0]
    doc = json.loads(_report(capsys, path, "--period", "2026-10-01..2026-11-01", "--format", "json"))
    (usd_doc,) = [c for c in doc["currencies"] if c["currency"] == "USD"]
    assert usd_doc["realized_savings"] is None and usd_doc["coverage"] is None
    assert usd_doc["effective_savings_rate"] is None and usd_doc["commitments"][0]["realized_savings"] is None
    table = _report(capsys, path, "--period", "2026-10-01..2026-11-01")
    assert "ListCost is missing" in table and "n/a" in table


def test_one_missing_price_is_enough_to_withhold_a_saving(tmp_path: Path) -> None:
    rows = crafted_rows()
    rows[2]["ListCost"] = None  # one covered day of vm1
    usd = _view(load_rows(tmp_path / "c.duckdb", rows)).for_currency("USD")
    assert usd is not None
    r1, sp1 = usd.commitments
    assert r1.realized_savings is None and r1.negotiated_savings is None and r1.rows_without_list_cost == 1
    assert sp1.realized_savings == 3  # its own rows are priced
    assert usd.realized_savings is None and usd.coverage is None


# --- real fixtures ------------------------------------------------------------------------------------


def _imported(tmp_path: Path, *files: Path) -> Path:
    path = tmp_path / "cache.duckdb"
    assert main(["import", "-q", "--cache", str(path), *map(str, files)]) == 0
    return path


def _sql_sum(path: Path, query: str) -> list[tuple[Any, ...]]:
    with open_cache(path, read_only=True) as cache, cache.cursor() as cur:
        return cur.execute(query).fetchall()


def test_legacy_ea_amortized_reservation_rows(tmp_path: Path) -> None:
    path = _imported(tmp_path, FIXTURES / "azure-exports" / "EA_AmortizedCost_Small.csv")
    with open_cache(path, read_only=True) as cache, cache.cursor() as cur:
        start, end = cur.execute("SELECT min(x_ChargeDate), max(x_ChargeDate) + 1 FROM charges").fetchone()
        view = commitments(cur, Period(start, end, "all", end))
    found = [c for v in view.currencies for c in v.commitments]
    assert found, "the amortized export has reservation rows"
    expected = _sql_sum(path, """
        SELECT BillingCurrency, CommitmentDiscountId,
               coalesce(sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Used'), 0),
               coalesce(sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Unused'), 0)
        FROM charges WHERE CommitmentDiscountId IS NOT NULL GROUP BY ALL ORDER BY ALL""")
    assert sorted((c.currency, c.id, c.used, c.unused) for c in found) == expected
    by_type = {c.type: c for c in found}
    assert set(by_type) == {"Reservation", "Savings Plan"}
    # EA amortized rows price reservation usage at PayGPrice 0: a missing price, so no saving is shown.
    assert by_type["Reservation"].realized_savings is None and by_type["Reservation"].rows_without_list_cost == 1
    assert by_type["Savings Plan"].realized_savings == Decimal("0.013347594624") - Decimal("0.006000000468")


def test_focus_sample_commitments_match_sql(tmp_path: Path) -> None:
    path = tmp_path / "cache.duckdb"
    assert main(["import", "-q", "--skip-bad-rows", "--cache", str(path),
                 str(FIXTURES / "focus-sample" / "focus_sample.csv")]) == 0
    with open_cache(path, read_only=True) as cache, cache.cursor() as cur:
        start, end = cur.execute("SELECT min(x_ChargeDate), max(x_ChargeDate) + 1 FROM charges").fetchone()
        view = commitments(cur, Period(start, end, "all", end))
    expected = _sql_sum(path, """
        SELECT BillingCurrency, CommitmentDiscountId,
               coalesce(sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Used'), 0),
               coalesce(sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Unused'), 0),
               coalesce(sum(BilledCost) FILTER (WHERE ChargeCategory = 'Purchase'), 0)
        FROM charges WHERE CommitmentDiscountId IS NOT NULL GROUP BY ALL ORDER BY ALL""")
    found = sorted((c.currency, c.id, c.used, c.unused, c.purchase) for v in view.currencies for c in v.commitments)
    assert found == expected and found, "the FOCUS sample has AWS commitment rows"


# --- the demo: its under-used reservation, the report and the recommendations agree ---------------------

DEMO_END = dt.date(2026, 3, 31)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo(path, TagPolicy(), end=DEMO_END, months=3)
    yield path


def test_demo_reservation_shows_its_planted_utilization(demo: Path) -> None:
    ri = PLANTED.reservation
    march = Period(dt.date(2026, 3, 1), dt.date(2026, 4, 1), "last-month", DEMO_END)
    usd = _view(demo, march).for_currency("USD")
    assert usd is not None
    (res,) = [c for c in usd.commitments if c.id == ri.id]
    # The legacy batch's 6 VMs stopped 31 days before the end: March runs 20 of the 30 reserved instances.
    assert ratio_text(res.utilization) == "0.6667"
    assert abs(res.unused - ri.monthly_fee * 10 / 30) < Decimal("0.01")
    assert res.purchase == ri.monthly_fee
    assert res.term == "1 year"
    assert res.realized_savings is not None and res.realized_savings > 0
    february = Period(dt.date(2026, 2, 1), dt.date(2026, 3, 1), "2026-02", DEMO_END)
    (feb,) = [c for c in _view(demo, february).currencies[0].commitments if c.id == ri.id]
    assert ratio_text(feb.utilization) == "0.8667"  # 26 of 30 before the stop


def test_demo_report_and_recommendation_agree_to_the_cent(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with open_cache(demo, read_only=True) as cache, cache.cursor() as cur:
        ctx = Context.from_cache(cur)
        assert ctx is not None
        recs = [r for r in run_all(cur, ctx) if r.kind == "unused-commitment"]
    (rec,) = recs
    since = ctx.days_back(30)
    doc = json.loads(_report(capsys, demo, "--period", f"{since}..{ctx.data_end + dt.timedelta(days=1)}",
                             "--format", "json"))
    (item,) = [c for c in doc["currencies"][0]["commitments"] if c["id"] == PLANTED.reservation.id]
    evidence = dict(rec.evidence)
    assert evidence["Unused cost, last 30 days"] == f"{Decimal(item['unused']):,.2f} USD"
    assert evidence["Used cost, last 30 days"] == f"{Decimal(item['used']):,.2f} USD"
