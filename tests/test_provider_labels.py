"""Same-named accounts of different clouds stay apart: with cost from several providers in the cache, an
account's label names its provider ("sandbox-dev (AWS)") in reports, the overview and the allocation tree."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from finops_tui.cli import main
from finops_tui.config import Config
from finops_tui.ui.screens.allocation import AllocationScreen
from finops_tui.ui.screens.overview import OverviewScreen
from tests.import_helpers import FOCUS_SAMPLE, header_of, read_rows, run_import, write_csv
from tests.ui_fixtures import async_test, make_app, opened, settle

CLOUDS = {"Microsoft": "/subscriptions/5a9a0f2e-0000-4000-8000-000000000001", "AWS": "123456789012",
          "Google Cloud": "sandbox-dev-4711"}
LABELLED = {"sandbox-dev (AWS)", "sandbox-dev (Google Cloud)", "sandbox-dev (Microsoft)"}
PERIOD = "2024-09-01..2024-10-01"


RESOURCE_IDS = {
    "Microsoft": CLOUDS["Microsoft"] + "/resourceGroups/rg-sandbox/providers/Microsoft.Compute/virtualMachines/vm-{i}",
    "AWS": "arn:aws:ec2:us-east-1:123456789012:instance/i-{i}",
    "Google Cloud": "//compute.googleapis.com/projects/sandbox-dev-4711/zones/us-east1-b/instances/vm-{i}",
}


def _export(target: Path, providers: tuple[str, ...]) -> Path:
    """Rows of the public FOCUS sample, copied once per provider under an account each called sandbox-dev,
    each row an untagged resource costing 100 (so the recommendations have something to say too)."""
    sample = [r for r in read_rows(FOCUS_SAMPLE) if r["ProviderName"] == "AWS"][:40]
    cost = dict.fromkeys(("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"), "100")
    rows = [
        {**row, **cost, "ProviderName": provider, "PublisherName": provider, "InvoiceIssuerName": provider,
         "SubAccountId": CLOUDS[provider], "SubAccountName": "sandbox-dev", "Tags": "NULL",
         "ResourceId": RESOURCE_IDS[provider].format(i=i), "ResourceName": f"vm-{i}"}
        for provider in providers for i, row in enumerate(sample)
    ]
    return write_csv(target, header_of(FOCUS_SAMPLE), rows)


@pytest.fixture
def three_clouds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    cache = tmp_path / "cache.duckdb"
    code, _, err = run_import(capsys, cache, _export(tmp_path / "three-clouds.csv", tuple(CLOUDS)))
    assert code == 0, err
    return cache


def _report(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_reports_name_the_provider_of_same_named_accounts(
    capsys: pytest.CaptureFixture[str], three_clouds: Path
) -> None:
    common = ("--cache", str(three_clouds), "--period", PERIOD)
    overview = json.loads(_report(capsys, "report", "overview", *common, "--format", "json"))
    assert {r["name"] for r in overview["breakdowns"]["subscription"]} == LABELLED
    allocation = json.loads(_report(capsys, "report", "allocation", *common, "--by", "subscription", "--format",
                                    "json"))
    [block] = allocation["currencies"]
    assert {c["label"] for c in block["children"]} == LABELLED
    # The keys stay the accounts' ids: the label is for people.
    assert {c["key"] for c in block["children"]} == set(CLOUDS.values())
    for fmt in ("table", "md", "csv"):
        text = _report(capsys, "report", "allocation", *common, "--by", "subscription", "--format", fmt)
        assert all(label in text for label in LABELLED), fmt
        text = _report(capsys, "report", "overview", *common, "--format", fmt)
        assert all(label in text for label in LABELLED), fmt


def test_one_provider_keeps_plain_names(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cache = tmp_path / "cache.duckdb"
    assert run_import(capsys, cache, _export(tmp_path / "aws.csv", ("AWS",)))[0] == 0
    overview = json.loads(_report(capsys, "report", "overview", "--cache", str(cache), "--period", PERIOD,
                                  "--format", "json"))
    assert [r["name"] for r in overview["breakdowns"]["subscription"]] == ["sandbox-dev"]


@async_test
async def test_the_explorer_names_the_provider_in_the_overview_and_the_tree(
    three_clouds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with opened(three_clouds) as cache:
        app = make_app(cache, config=Config(hierarchies={"default": ["subscription", "service"]}))
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            overview = app.screen
            assert isinstance(overview, OverviewScreen) and overview.view is not None
            assert {r.name for r in overview.view.breakdowns["subscription"]} == LABELLED
            await pilot.press("2")
            await settle(pilot)
            tree = app.screen
            assert isinstance(tree, AllocationScreen)
            assert {b.label for b in tree.tree_view.level_branches(())} == LABELLED


def test_recommendations_name_the_provider_too(capsys: pytest.CaptureFixture[str], three_clouds: Path) -> None:
    doc = json.loads(_report(capsys, "report", "recommendations", "--cache", str(three_clouds), "--format", "json"))
    findings = doc["recommendations"] if isinstance(doc, dict) else doc
    labels = {r["scope"]["label"] for r in findings}
    assert {"sandbox-dev (AWS)", "sandbox-dev (Google Cloud)"} <= labels
    assert any("sandbox-dev (Microsoft)" in label for label in labels)


def test_the_tagging_queue_names_the_provider_too(three_clouds: Path) -> None:
    from finops_tui.allocation.queue import unallocated_queue
    from finops_tui.basis.periods import parse_period
    from finops_tui.store import open_cache

    with open_cache(three_clouds, read_only=True) as cache, cache.cursor() as cur:
        queue = unallocated_queue(cur, "team", parse_period(PERIOD, today=dt.date(2024, 10, 1)))
    assert {s.subscription_name for s in queue.subscriptions} == LABELLED
