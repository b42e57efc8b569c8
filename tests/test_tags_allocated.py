"""Tags on allocated resources (provider split consumers): local only in `tags export --format az`, the tagging
queue says "on <host>", and one resolver finds a resource for `tags set` and the MCP server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from finops_tui.allocation.push import ALLOCATED_REFUSAL
from finops_tui.commands.tags import resolve_resource
from finops_tui.errors import UsageError, UserError
from finops_tui.store import open_cache
from tests.allocation_data import fresh_copy
from tests.report_helpers import run_cli
from tests.splits_data import HOST_NAME, NIGHTLY_ETL, imported_splits

pytestmark = pytest.mark.today(dt.date(2026, 5, 20))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return imported_splits(tmp_path_factory.mktemp("splits"))


@pytest.fixture
def cache_path(template: Path, tmp_path: Path) -> Path:
    return fresh_copy(template, tmp_path)


def test_az_export_leaves_allocated_resources_out_and_says_so(
    cache_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = str(cache_path)
    assert run_cli(capsys, "tags", "set", "--cache", cache, "--resource", NIGHTLY_ETL, "team=data")[0] == 0
    assert run_cli(capsys, "tags", "set", "--cache", cache, "--resource", "vm-payments-01", "owner=alice")[0] == 0
    code, out, err = run_cli(capsys, "tags", "export", "--cache", cache, "--format", "az")
    assert code == 0
    commands = [line for line in out.splitlines() if line.startswith("az ")]
    assert len(commands) == 1 and "vm-payments-01" in commands[0] and "nightly-etl" not in out.lower()
    assert "# 1 allocated resource(s) left out" in out
    assert "not exported" in err and "nightly-etl" in err and ALLOCATED_REFUSAL in err
    assert len(err.strip().splitlines()) == 1
    # CSV is data for your own pipeline, not ARM calls: it keeps every pending edit
    code, out, _ = run_cli(capsys, "tags", "export", "--cache", cache, "--format", "csv")
    assert code == 0 and NIGHTLY_ETL in out.lower() and "vm-payments-01" in out


def test_only_allocated_edits_give_no_az_command(cache_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = str(cache_path)
    assert run_cli(capsys, "tags", "set", "--cache", cache, "--resource", NIGHTLY_ETL, "team=data")[0] == 0
    code, out, err = run_cli(capsys, "tags", "export", "--cache", cache, "--format", "az")
    assert code == 0 and "az tag update" not in out and "left out" in out and ALLOCATED_REFUSAL in err


def test_one_resolver_for_ids_and_names(cache_path: Path) -> None:
    with open_cache(cache_path, read_only=True) as cache, cache.cursor() as cur:
        assert resolve_resource(cur, NIGHTLY_ETL.upper()) == NIGHTLY_ETL
        assert resolve_resource(cur, " nightly-etl ") == NIGHTLY_ETL
        with pytest.raises(UserError, match="no resource with that name in that resource group"):
            resolve_resource(cur, "vm-payments-01", resource_group="rg-nope")
        with pytest.raises(UserError, match="give a resource id or name"):
            resolve_resource(cur, "  ")
        with pytest.raises(UsageError, match="not a resource id"):
            resolve_resource(cur, "/subscriptions/../x")


def test_the_tagging_queue_shows_the_host_and_says_the_tag_stays_local(template: Path, tmp_path: Path) -> None:
    from finops_tui.ui.dialogs.tag_dialog import TagDialog
    from finops_tui.ui.screens.tagging import TaggingScreen
    from tests.ui_fixtures import async_test, make_app, opened, screen_text, settle

    path = fresh_copy(template, tmp_path)

    @async_test
    async def scenario() -> None:
        with opened(path) as cache:
            app = make_app(cache)
            async with app.run_test(size=(160, 50)) as pilot:
                await settle(pilot)
                await pilot.press("4")
                await settle(pilot)
                screen = app.screen
                assert isinstance(screen, TaggingScreen) and screen.queue is not None
                line = next(t for t in screen_text(app).splitlines() if "nightly-etl" in t)
                assert f"on {HOST_NAME}" in line
                index = next(i for i, row in enumerate(screen.table.rows)
                             if row.item is not None and row.item.resource_id == NIGHTLY_ETL)
                await pilot.press("g", *["j"] * index)
                await pilot.press("t")
                await settle(pilot)
                assert isinstance(app.screen, TagDialog)
                await pilot.press("ctrl+u", *"data", "enter")
                await settle(pilot)
                toasts = " ".join(str(n.message) for n in app._notifications)
                assert "stays local" in toasts and "allocated resource" in toasts and "never sends" in toasts

    scenario()
