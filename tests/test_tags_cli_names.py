"""`finops-tui tags set --resource NAME`: a unique name is enough; an ambiguous one lists a few candidates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from finops_tui.allocation.journal import list_edits
from finops_tui.cli import main
from finops_tui.store import open_cache
from tests.allocation_data import END, TODAY, Charge, fresh_copy, load

SUB_A = "6f1c2a3b-0d4e-4f5a-8b6c-7d8e9f0a1b2c"
SUB_B = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
DAY = END - dt.timedelta(days=1)


def vm(sub: str, rg: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.compute/virtualmachines/{name}"


API = vm(SUB_A, "rg-pay", "vm-api")
WEB_A = vm(SUB_A, "rg-web", "vm-web")
WEB_B = vm(SUB_B, "rg-web", "vm-web")
WEB_C = vm(SUB_B, "rg-web-2", "vm-web")
WEB_D = vm(SUB_B, "rg-web-3", "VM-Web")
AWS = "i-037929a54982e113l"  # some providers' ids have no slashes


pytestmark = pytest.mark.today(TODAY)


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("names") / "cache.duckdb"
    load(path, [
        Charge(DAY, API, Decimal("5.00"), sub=f"/subscriptions/{SUB_A}", name="vm-api"),
        Charge(DAY, WEB_A, Decimal("1.00"), sub=f"/subscriptions/{SUB_A}", name="vm-web"),
        Charge(DAY, WEB_B, Decimal("1.00"), sub=f"/subscriptions/{SUB_B}", name="vm-web"),
        Charge(DAY, WEB_C, Decimal("1.00"), sub=f"/subscriptions/{SUB_B}", name="vm-web"),
        Charge(DAY, WEB_D, Decimal("1.00"), sub=f"/subscriptions/{SUB_B}", name="VM-Web"),
        Charge(DAY, AWS, Decimal("2.00"), sub="123456789012", rg=None, name="web-server"),
    ]).close()
    return path


@pytest.fixture
def cache_path(_template: Path, tmp_path: Path) -> Path:
    return fresh_copy(_template, tmp_path)


def _tags(capsys: pytest.CaptureFixture[str], cache_path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["tags", "--cache", str(cache_path), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _edited(cache_path: Path) -> list[tuple[str, str, str | None]]:
    with open_cache(cache_path) as cache, cache.cursor() as cur:
        return [(e.resource_id, e.tag_key, e.new_value) for e in list_edits(cur)]


def test_a_unique_name_is_enough(capsys: pytest.CaptureFixture[str], cache_path: Path) -> None:
    code, out, _ = _tags(capsys, cache_path, "set", "--resource", "VM-API", "team=payments")
    assert code == 0 and "batch 1: team=payments on 1 resource(s)" in out
    assert _edited(cache_path) == [(API, "team", "payments")]


def test_a_name_or_an_id_without_slashes(capsys: pytest.CaptureFixture[str], cache_path: Path) -> None:
    assert _tags(capsys, cache_path, "set", "--resource", AWS, "team=search")[0] == 0
    assert _tags(capsys, cache_path, "set", "--resource", "web-server", "env=prod")[0] == 0
    assert _edited(cache_path) == [(AWS, "team", "search"), (AWS, "env", "prod")]


def test_an_ambiguous_name_lists_a_few_candidates(capsys: pytest.CaptureFixture[str], cache_path: Path) -> None:
    code, out, err = _tags(capsys, cache_path, "set", "--resource", "vm-web", "team=web")
    assert code == 1 and out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("finops-tui: 'vm-web' is ambiguous: 4 resources have that name (")
    assert f"/subscriptions/{SUB_B}/resourceGroups/rg-web/providers/microsoft.compute/virtualmachines/vm-web" in line
    assert line.count("/subscriptions/") == 3 and "; and 1 more)" in line
    assert "give the full id with --resource, or narrow it with --resource-group and --subscription" in line
    assert _edited(cache_path) == []


def test_resource_group_and_subscription_narrow_a_name(capsys: pytest.CaptureFixture[str], cache_path: Path) -> None:
    code, _, err = _tags(capsys, cache_path, "set", "--resource", "vm-web", "--resource-group", "rg-web", "team=web")
    assert code == 1 and "2 resources have that name in that resource group" in err
    code, out, _ = _tags(capsys, cache_path, "set", "--resource", "vm-web", "--resource-group", "rg-web",
                         "--subscription", SUB_B, "team=web")
    assert code == 0, out
    code, out, _ = _tags(capsys, cache_path, "set", "--resource", "vm-web", "--resource-group", "RG-WEB",
                         "--subscription", f"/subscriptions/{SUB_A}", "team=web")
    assert code == 0, out
    assert _edited(cache_path) == [(WEB_B, "team", "web"), (WEB_A, "team", "web")]


def test_unknown_names_and_bad_ids_get_one_line(capsys: pytest.CaptureFixture[str], cache_path: Path) -> None:
    code, _, err = _tags(capsys, cache_path, "set", "--resource", "vm-nope", "team=x")
    assert code == 1 and err.strip().splitlines() == [
        "finops-tui: 'vm-nope': no resource with that name in the cache; "
        "`finops-tui report allocation --by resource` lists them"]
    code, _, err = _tags(capsys, cache_path, "set", "--resource", API + "/../../..", "team=x")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "not a resource id: it has a '.' or '..' path segment" in err
    code, _, err = _tags(capsys, cache_path, "set", "--resource", API, "--resource-group", "rg-pay", "team=x")
    assert code == 2 and "exactly one of --resource ID|NAME or --resource-group NAME" in err
    assert _edited(cache_path) == []
