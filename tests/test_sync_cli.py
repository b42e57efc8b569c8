"""`finops-tui sync` in-process with a fake `az` on PATH: the real AzureCliCredential against the fake ARM."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from finops_tui.azure import NOT_SIGNED_IN
from finops_tui.cli import main
from finops_tui.store.cache import open_cache
from tests import fake_arm
from tests.fake_arm import MONTHS, SUB, FakeArm, install_fake_az, month_total

pytestmark = pytest.mark.today(fake_arm.TODAY)
arm = fake_arm.arm


def test_sync_fills_an_empty_cache_with_the_az_cli_login(
    arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install_fake_az(tmp_path / "bin", monkeypatch)
    arm.add_scope(SUB, 10, cost_details="ea")
    cache_path = tmp_path / "cache.duckdb"

    code = main(["sync", "--cache", str(cache_path), "--arm-endpoint", arm.base_url, "--scope", SUB, "--months", "2"])

    err = capsys.readouterr().err
    assert code == 0, err
    assert "synced 4 window(s)" in err
    arm_calls = [r for r in arm.requests if not r.path.startswith("/blobs/")]
    assert arm_calls and {r.authorization for r in arm_calls} == {"Bearer cli-fake-token"}
    with open_cache(cache_path) as cache:
        for month in MONTHS[:2]:
            assert month_total(cache, "BilledCost", month) == arm.total(SUB, "actual", month)
            assert month_total(cache, "EffectiveCost", month) == arm.total(SUB, "amortized", month)
        with cache.cursor() as cur:
            assert cur.execute("SELECT count(*) FROM budgets").fetchone() == (1,)
            assert cur.execute("SELECT count(*) FROM benefit_recommendations").fetchone() == (2,)


def test_not_signed_in_exits_3_with_one_line(
    arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install_fake_az(tmp_path / "bin", monkeypatch, signed_in=False)
    arm.add_scope(SUB, 3)

    code = main(["sync", "--cache", str(tmp_path / "c.duckdb"), "--arm-endpoint", arm.base_url, "--scope", SUB])

    err = capsys.readouterr().err
    assert code == 3
    assert err.strip().splitlines() == [f"finops-tui: {NOT_SIGNED_IN}"]
    assert NOT_SIGNED_IN.startswith("not signed in to Azure: run `az login`")
    assert arm.requests == []


def test_failed_windows_exit_3(
    arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from finops_tui.commands import sync as command

    install_fake_az(tmp_path / "bin", monkeypatch)
    arm.add_scope(SUB, 3, cost_details=None)
    arm.fail(100, 500)
    sleeps: list[float] = []
    options_from = command.options_from
    monkeypatch.setattr(command, "options_from", lambda *a: replace(options_from(*a), sleep=sleeps.append))

    code = main(
        [
            "sync",
            "-q",
            "--cache",
            str(tmp_path / "c.duckdb"),
            "--arm-endpoint",
            arm.base_url,
            "--scope",
            SUB,
            "--months",
            "1",
            "--metric",
            "actual",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert f"finops-tui: {SUB} 2025-03 actual: HTTP 500" in err
    assert "1 failed" in err
    assert sleeps == [1.6, 3.2, 6.4]  # 5xx: a few retries with backoff (first one immediate), then give up


def test_list_scopes_follows_next_link(
    arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install_fake_az(tmp_path / "bin", monkeypatch)
    arm.add_scope(SUB, 1)
    arm.extra_subscriptions = [("22222222-0000-0000-0000-000000000002", "Zeta"), ("33333333-0000-0000-0000-0", "Beta")]

    code = main(["sync", "--list-scopes", "--arm-endpoint", arm.base_url])

    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert [line.split()[0] for line in out] == ["Beta", "Sub", "Zeta"]
    assert out[1].endswith(SUB)
    assert len(arm.requests_to("/subscriptions")) == 2  # two pages


def test_plain_http_elsewhere_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sync", "--cache", str(tmp_path / "c.duckdb"), "--arm-endpoint", "http://example.com", "--scope", SUB])
    assert code == 1
    assert "plain http is accepted only for loopback" in capsys.readouterr().err


def test_config_supplies_scopes_and_the_endpoint(
    arm: FakeArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from finops_tui import paths

    install_fake_az(tmp_path / "bin", monkeypatch)
    arm.add_scope(SUB, 3, cost_details=None)
    config = paths.config_path()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[sync]\nscopes = ["{SUB}"]\narm_endpoint = "{arm.base_url}"\nmonths = 1\nquery_max_groupings = 4\n'
        '[tags]\nkeys = ["team"]\n'
    )
    code = main(["sync", "-q", "--cache", str(tmp_path / "c.duckdb")])
    assert code == 0, capsys.readouterr().err
    groupings = [len(r.body["dataset"]["grouping"]) for r in arm.requests if r.body and "dataset" in r.body]
    assert groupings and max(groupings) <= 4


def test_no_scope_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], **_: Any) -> None:
    assert main(["sync", "--cache", str(tmp_path / "c.duckdb")]) == 1
    assert "no scope to sync" in capsys.readouterr().err
