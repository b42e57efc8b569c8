"""`report chargeback` and `--shared` reports: equal to the tree's figures, foot to the invoice, totals hold."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from finops_tui.allocation.effective import TagPolicy
from finops_tui.basis.periods import Period
from finops_tui.cli import main
from finops_tui.ingest.demo import build_demo
from finops_tui.report import shared_tree
from finops_tui.report.chargeback import chargeback
from finops_tui.store import open_cache

pytestmark = pytest.mark.today(dt.date(2026, 11, 27))
END = dt.date(2026, 11, 26)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo(path, TagPolicy(), end=END, months=2)  # no shared.toml: the demo pools apply
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return capsys.readouterr().out


@pytest.mark.parametrize("metric", ["effective", "billed"])
def test_last_full_month_foots_to_the_invoice_and_equals_the_tree(
    demo: Path, capsys: pytest.CaptureFixture[str], metric: str
) -> None:
    doc = json.loads(_run(capsys, "report", "chargeback", "--cache", str(demo), "--month", "2026-10",
                          "--metric", metric, "--format", "json"))
    assert doc["month"] == "2026-10" and doc["key"] == "team" and doc["metric"] == metric
    column = "EffectiveCost" if metric == "effective" else "BilledCost"
    with open_cache(demo, read_only=True) as cache, cache.cursor() as cur:
        row = cur.execute(
            f"SELECT sum({column}) FROM charges WHERE x_ChargeDate >= '2026-10-01' AND x_ChargeDate < '2026-11-01'"
        ).fetchone()
        assert row is not None
        invoice = row[0]
        period = Period(dt.date(2026, 10, 1), dt.date(2026, 11, 1), "2026-10-01..2026-11-01", END)
        nodes = shared_tree.children(cur, ["tag:team", "subscription"], [], period, metric, "USD")
        tree_figures = {n.label: n.cost for n in nodes}
        payments = next(n for n in nodes if n.key == "payments")
        shares = {n.label.removeprefix("shared: "): n.cost for n in shared_tree.children(
            cur, ["tag:team", "subscription"], [payments.step], period, metric, "USD") if n.shared}
    [usd] = doc["currencies"]
    assert Decimal(usd["total"]) == invoice.quantize(Decimal("0.01"))
    recipients = {r["recipient"]: r for r in usd["recipients"]}
    # Each figure is its own exact sum rounded; the rounding entry says what the rounded parts miss.
    assert sum(Decimal(r["total"]) for r in usd["recipients"]) + Decimal(usd["rounding"]) == Decimal(usd["total"])
    with open_cache(demo, read_only=True) as cache, cache.cursor() as cur:
        exact = chargeback(cur, "2026-10", metric, "team")
    assert sum((r.total for r in exact.currencies[0].recipients), Decimal(0)) == invoice  # to the last decimal
    for label, cost in tree_figures.items():
        assert Decimal(recipients[label]["total"]) == cost.quantize(Decimal("0.01")), label
    got = {p["pool"]: Decimal(p["amount"]) for p in recipients["payments"]["pools"]}
    assert got == {k: v.quantize(Decimal("0.01")) for k, v in shares.items()}
    assert set(got) == {"hub network", "log analytics", "support"}
    assert got["support"] == Decimal("300.00")  # fixed: 30% of the 1,000.00 support plan
    for r in usd["recipients"]:
        assert Decimal(r["direct"]) + Decimal(r["shared"]) - Decimal(r["total"]) in (
            Decimal(0), Decimal("0.01"), Decimal("-0.01"))
    assert "(unallocated)" in recipients and not recipients["(unallocated)"]["pools"]


def test_chargeback_table_csv_md(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = _run(capsys, "report", "chargeback", "--cache", str(demo), "--month", "2026-10")
    assert "shared: hub network" in table and "Total" in table
    csv_text = _run(capsys, "report", "chargeback", "--cache", str(demo), "--month", "2026-10", "--format", "csv")
    assert csv_text.splitlines()[0].startswith("team,currency,direct,shared: hub network")
    md = _run(capsys, "report", "chargeback", "--cache", str(demo), "--format", "md")  # default: last full month
    assert "Chargeback 2026-10" in md


def test_bad_month_is_one_line(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "chargeback", "--cache", str(demo), "--month", "2026-13"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--month 2026-13: expected YYYY-MM" in err


def test_overview_shared_keeps_totals_and_reports_kpis(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = json.loads(_run(capsys, "report", "overview", "--cache", str(demo), "--period", "last-month",
                            "--format", "json"))
    shared = json.loads(_run(capsys, "report", "overview", "--cache", str(demo), "--period", "last-month",
                             "--format", "json", "--shared"))
    assert plain["totals"][0]["cost"] == shared["totals"][0]["cost"]
    assert shared["shared"] is True and plain["shared"] is False
    teams = {r["key"]: Decimal(r["cost"]) for r in shared["breakdowns"]["tag:team"]}
    plain_teams = {r["key"]: Decimal(r["cost"]) for r in plain["breakdowns"]["tag:team"]}
    assert teams["payments"] > plain_teams["payments"]
    [kpi] = shared["allocation"]
    assert kpi == plain["allocation"][0]  # the KPIs do not depend on the switch
    assert Decimal(kpi["allocated_by_pools"]) > 0 and kpi["maturity"] in ("crawl", "walk", "run")
    assert (Decimal(kpi["allocated_by_metadata"]) + Decimal(kpi["allocated_by_pools"]) + Decimal(kpi["unallocated"])
            == Decimal(kpi["total"]))
    assert Decimal(shared["totals"][0]["untagged_cost"]) == Decimal(kpi["unallocated"])
    tree = json.loads(_run(capsys, "report", "allocation", "--cache", str(demo), "--period", "last-month",
                           "--by", "tag:team,subscription", "--depth", "2", "--format", "json", "--shared"))
    [usd] = tree["currencies"]
    assert usd["cost"] == plain["totals"][0]["cost"]
    by_team = {c["key"]: c for c in usd["children"]}
    assert Decimal(by_team["payments"]["cost"]) == teams["payments"]
    assert any(c.get("shared", {}).get("pool") == "support" for c in by_team["payments"]["children"])


def test_report_applies_an_edited_shared_toml(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from finops_tui import paths

    copy = tmp_path / "demo.duckdb"
    copy.write_bytes(demo.read_bytes())
    config = paths.config_dir()
    config.mkdir(parents=True, exist_ok=True)
    (config / "shared.toml").write_text(
        '[[pool]]\nname = "support only"\nmethod = "even"\nmatch = { service = "Azure Support" }\n'
        'recipients = ["payments", "search"]\n'
    )
    doc = json.loads(_run(capsys, "report", "chargeback", "--cache", str(copy), "--month", "2026-10",
                          "--format", "json"))
    assert [p["pool"] for p in doc["pools"]] == ["support only"]
    recipients = {r["recipient"]: r for r in doc["currencies"][0]["recipients"]}
    assert recipients["payments"]["pools"] == [{"pool": "support only", "method": "even", "amount": "500.00"}]
