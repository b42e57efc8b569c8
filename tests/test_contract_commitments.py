"""FOCUS 1.3 Contract Commitment files: imported beside the cost, replaced per contract, bad rows refused."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from finops_tui.cli import main
from finops_tui.report.commitments import contract_commitments
from finops_tui.store import open_cache
from tests.conftest import FIXTURES
from tests.import_helpers import checksum, run_import, write_csv

HEADER = [
    "BillingCurrency", "ContractCommitmentCategory", "ContractCommitmentCost", "ContractCommitmentDescription",
    "ContractCommitmentId", "ContractCommitmentPeriodEnd", "ContractCommitmentPeriodStart",
    "ContractCommitmentQuantity", "ContractCommitmentType", "ContractCommitmentUnit", "ContractId",
    "ContractPeriodEnd", "ContractPeriodStart",
]
EA_AMORTIZED = FIXTURES / "azure-exports" / "EA_AmortizedCost_Small.csv"  # September 2023


def commitment(cid: str, *, contract: str = "contract-1", category: str = "Spend", cost: str = "120000",
               quantity: str = "", unit: str = "", start: str = "2023-01-01T00:00:00Z",
               end: str = "2024-01-01T00:00:00Z", currency: str = "USD",
               ctype: str = "Spend commitment") -> dict[str, str]:
    return {
        "BillingCurrency": currency, "ContractCommitmentCategory": category, "ContractCommitmentCost": cost,
        "ContractCommitmentDescription": f"{cid} of {contract}", "ContractCommitmentId": cid,
        "ContractCommitmentPeriodEnd": end, "ContractCommitmentPeriodStart": start,
        "ContractCommitmentQuantity": quantity, "ContractCommitmentType": ctype, "ContractCommitmentUnit": unit,
        "ContractId": contract, "ContractPeriodEnd": "2026-01-01T00:00:00Z",
        "ContractPeriodStart": "2023-01-01T00:00:00Z",
    }


def _commitments(cache: Path):  # type: ignore[no-untyped-def]
    with open_cache(cache, read_only=True) as opened, opened.cursor() as cur:
        end = cur.execute("SELECT max(x_ChargeDate) FROM charges").fetchone()[0]
        return contract_commitments(cur, end)


def test_imported_beside_the_cost_with_status_and_spend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        commitment("macc-2023"),
        commitment("macc-2024", start="2024-01-01T00:00:00Z", end="2025-01-01T00:00:00Z"),
        commitment("vcpu-hours", category="Usage", cost="", quantity="8760", unit="Hours", currency="",
                   start="2022-01-01T00:00:00+01:00", end="2023-01-01T00:00:00Z", ctype="Usage commitment"),
    ]
    code, out, err = run_import(capsys, tmp_path / "cache.duckdb", EA_AMORTIZED,
                                write_csv(tmp_path / "commitments.csv", HEADER, rows))
    assert code == 0, err
    assert "commitments.csv: 3 contract commitments (FOCUS 1.3 Contract Commitment) of contract contract-1" in out
    found = {k.id: k for k in _commitments(tmp_path / "cache.duckdb")}
    assert [found[k].status for k in ("macc-2023", "macc-2024", "vcpu-hours")] == ["active", "upcoming", "expired"]
    macc = found["macc-2023"]
    assert (macc.category, macc.cost, macc.currency, macc.amount) == ("Spend", 120000, "USD", "120,000.00 USD")
    assert (macc.start, macc.end) == (dt.date(2023, 1, 1), dt.date(2024, 1, 1))
    with open_cache(tmp_path / "cache.duckdb", read_only=True) as opened, opened.cursor() as cur:
        billed = cur.execute("SELECT sum(BilledCost) FROM charges WHERE BillingCurrency = 'USD'").fetchone()[0]
    assert macc.billed_in_period == billed  # the whole September 2023 export falls inside its period
    hours = found["vcpu-hours"]
    assert (hours.amount, hours.cost, hours.billed_in_period) == ("8,760 Hours", None, None)
    assert hours.start == dt.date(2021, 12, 31)  # +01:00 midnight is 23:00 UTC the day before


def test_the_report_lists_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache.duckdb"
    run_import(capsys, cache, EA_AMORTIZED, write_csv(tmp_path / "c.csv", HEADER, [commitment("macc-2023")]))
    assert main(["report", "commitments", "--cache", str(cache), "--period", "all"]) == 0
    out = capsys.readouterr().out
    assert "Contract commitments (FOCUS 1.3)" in out and "macc-2023" in out and "active" in out


def test_a_new_file_of_the_same_contract_replaces_its_commitments(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache.duckdb"
    run_import(capsys, cache, EA_AMORTIZED, write_csv(tmp_path / "a.csv", HEADER, [
        commitment("macc-2023"), commitment("other", contract="contract-2")]))
    code, _, err = run_import(capsys, cache, write_csv(tmp_path / "b.csv", HEADER, [
        commitment("macc-2023", cost="150000")]))
    assert code == 0, err
    found = {(k.contract_id, k.id): k.cost for k in _commitments(cache)}
    assert found == {("contract-1", "macc-2023"): Decimal(150000), ("contract-2", "other"): Decimal(120000)}


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("ContractCommitmentCost", "12O00", "ContractCommitmentCost: expected a decimal number"),
    ("ContractCommitmentPeriodStart", "next year", "ContractCommitmentPeriodStart: expected an ISO 8601"),
    ("BillingCurrency", "DOLLARS", "BillingCurrency: expected an ISO 4217 currency code"),
    ("ContractCommitmentCategory", "Discount", "ContractCommitmentCategory: expected Spend or Usage"),
    ("ContractId", "", "ContractId: expected an id"),
    ("ContractCommitmentPeriodEnd", "2022-06-01T00:00:00Z", "ContractCommitmentPeriodEnd: expected a time after"),
])
def test_a_bad_row_is_one_line_and_leaves_the_cache_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: str, expected: str
) -> None:
    cache = tmp_path / "cache.duckdb"
    assert run_import(capsys, cache, EA_AMORTIZED)[0] == 0
    before = checksum(cache)
    bad = commitment("macc-2023")
    bad[field] = value
    code, out, err = run_import(capsys, cache, write_csv(tmp_path / "c.csv", HEADER, [commitment("ok"), bad]))
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "c.csv: 1 bad contract commitment rows (first: row 2, " + expected in err
    assert checksum(cache) == before


def test_skip_bad_rows_imports_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache.duckdb"
    bad = commitment("bad", cost="abc")
    code, out, err = run_import(capsys, cache, EA_AMORTIZED,
                                write_csv(tmp_path / "c.csv", HEADER, [commitment("ok"), bad]), skip=True)
    assert code == 0
    assert "1 contract commitments" in out and "skipped 1 bad rows" in out
    assert "row 2, ContractCommitmentCost: expected a decimal number" in err
    assert [k.id for k in _commitments(cache)] == ["ok"]


def test_a_cache_without_cost_is_refused_and_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "new.duckdb"
    code, _, err = run_import(capsys, cache, write_csv(tmp_path / "c.csv", HEADER, [commitment("macc")]))
    assert code == 1
    assert "c.csv: a FOCUS 1.3 Contract Commitment file, but the cache holds no cost yet" in err
    assert not cache.exists()


def test_json_report_keeps_the_issue_shape_with_contracts_present(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache.duckdb"
    run_import(capsys, cache, EA_AMORTIZED, write_csv(tmp_path / "c.csv", HEADER, [commitment("macc")]))
    assert main(["report", "commitments", "--cache", str(cache), "--period", "all", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"period", "currencies"}
