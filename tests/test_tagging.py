"""Tagging: the journal, undo/redo, exact totals before and after, restart, the unallocated queue, the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from finops_tui.allocation.effective import TagPolicy
from finops_tui.allocation.journal import apply_tags, list_edits, pending_edits, redo, undo
from finops_tui.allocation.queue import unallocated_queue
from finops_tui.basis.dimensions import UNALLOCATED
from finops_tui.basis.periods import Period, parse_period
from finops_tui.cli import main
from finops_tui.errors import UserError
from finops_tui.report.tree import children
from finops_tui.store import Cache, open_cache
from tests.allocation_data import END, TODAY, Charge, days, fresh_copy, load, rid

ZERO = Decimal(0)
API = rid("s1", "rg-payments-prod", "api")
WORKER = rid("s1", "rg-payments-prod", "worker")
DB = rid("s1", "rg-payments-prod", "db")
INDEX = rid("s1", "rg-search", "index")
ORPHAN_VM = rid("s2", "rg-legacy", "old")
CC_VM = rid("s2", "rg-misc", "batch")
CC_A = rid("s2", "rg-other", "a")
CC_B = rid("s2", "rg-other", "b")


pytestmark = pytest.mark.today(TODAY)


def _charges() -> list[Charge]:
    out: list[Charge] = []
    for day in days(END - dt.timedelta(days=59), 60):
        out += [
            Charge(day, API, Decimal("10.00"), tags={"team": "payments"}),
            Charge(day, WORKER, Decimal("4.00"), tags={"Team": "checkout"}),
            Charge(day, DB, Decimal("6.50")),  # untagged, siblings say payments (by cost) or checkout
            Charge(day, INDEX, Decimal("3.25"), tags={"env": "prod"}),  # untagged, group name says search
            Charge(day, ORPHAN_VM, Decimal("1.10")),  # untagged, no evidence at all
            Charge(day, CC_VM, Decimal("2.00"), tags={"costcenter": "cc-9"}),  # costcenter maps to search
            Charge(day, CC_A, Decimal("0.50"), tags={"costcenter": "cc-9", "team": "search"}),
            Charge(day, CC_B, Decimal("0.50"), tags={"costcenter": "cc-9", "team": "search"}),
            Charge(day, None, Decimal("0.75")),  # a purchase: no resource to tag
        ]
    return out


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "cache.duckdb"
    load(path, _charges()).close()
    return path


@pytest.fixture
def cache_path(_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the module's cache: tests write to it."""
    return fresh_copy(_template, tmp_path)


@pytest.fixture
def cache(cache_path: Path) -> Iterator[Cache]:
    with open_cache(cache_path) as opened:
        yield opened


def _period() -> Period:
    return parse_period("30d", today=TODAY, data_end=END)


def _teams(cache: Cache) -> dict[str, Decimal]:
    with cache.cursor() as cur:
        return {n.label: n.cost for n in children(cur, ["tag:team"], [], _period())}


def test_tagging_moves_exactly_the_tagged_cost_out_of_unallocated(cache: Cache) -> None:
    before = _teams(cache)
    assert before[UNALLOCATED] == 30 * (Decimal("6.50") + Decimal("3.25") + Decimal("1.10") + Decimal("2.00")
                                        + Decimal("0.75"))
    batch = apply_tags(cache, TagPolicy(), [DB, INDEX], "Team", "payments")
    assert batch == 1
    after = _teams(cache)
    moved = 30 * (Decimal("6.50") + Decimal("3.25"))
    assert after[UNALLOCATED] == before[UNALLOCATED] - moved
    assert after["payments"] == before["payments"] + moved
    assert sum(after.values(), ZERO) == sum(before.values(), ZERO)
    # Retroactive: the whole cached history moves, not only new days.
    with cache.cursor() as cur:
        old = {n.label: n.cost for n in children(cur, ["tag:team"], [], parse_period(
            f"{END - dt.timedelta(days=59)}..{END - dt.timedelta(days=29)}", today=TODAY))}
    assert old["payments"] == 30 * (Decimal("10.00") + Decimal("6.50") + Decimal("3.25"))


def test_the_journal_records_old_and_new_values_before_the_change(cache: Cache) -> None:
    apply_tags(cache, TagPolicy(), [WORKER, DB], "team", "payments")
    with cache.cursor() as cur:
        edits = list_edits(cur)
    assert [(e.resource_id, e.tag_key, e.old_value, e.new_value, e.origin, e.push_status, e.batch_id)
            for e in edits] == [
        (DB, "team", None, "payments", "manual", "pending", 1),
        (WORKER, "team", "checkout", "payments", "manual", "pending", 1),
    ]
    assert edits[0].resource_name == "db" and edits[0].created_at.date() == TODAY


def test_unchanged_resources_are_skipped(cache: Cache) -> None:
    assert apply_tags(cache, TagPolicy(), [API], "team", "payments") is None  # the provider already says so
    batch = apply_tags(cache, TagPolicy(), [API, DB], "team", "payments")
    with cache.cursor() as cur:
        assert [e.resource_id for e in list_edits(cur)] == [DB]
    assert apply_tags(cache, TagPolicy(), [DB], "team", "payments") is None and batch == 1


def test_unknown_resources_and_empty_values_are_refused(cache: Cache) -> None:
    with pytest.raises(UserError, match="no such resource"):
        apply_tags(cache, TagPolicy(), ["/subscriptions/x/resourcegroups/y/providers/a/b/c"], "team", "payments")
    with pytest.raises(UserError, match="give a value"):
        apply_tags(cache, TagPolicy(), [DB], "team", " ")
    with cache.cursor() as cur:
        assert list_edits(cur) == []


def test_undo_and_redo(cache: Cache) -> None:
    before = _teams(cache)
    apply_tags(cache, TagPolicy(), [DB], "team", "payments")
    apply_tags(cache, TagPolicy(), [DB, WORKER], "team", "search")
    assert _teams(cache)["search"] == before["search"] + 30 * Decimal("10.50")
    undone = undo(cache, TagPolicy())
    assert undone is not None and (undone.batch_id, undone.resources, undone.new_value) == (2, 2, "search")
    assert _teams(cache)["payments"] == before["payments"] + 30 * Decimal("6.50")
    assert _teams(cache)["checkout"] == before["checkout"]  # the provider tag is back
    assert undo(cache, TagPolicy()) is not None and _teams(cache) == before
    assert undo(cache, TagPolicy()) is None
    redone = redo(cache, TagPolicy())
    assert redone is not None and redone.batch_id == 1
    assert _teams(cache)["payments"] == before["payments"] + 30 * Decimal("6.50")
    # A new batch after an undo drops the redo history, as in any editor.
    apply_tags(cache, TagPolicy(), [INDEX], "team", "search")
    assert redo(cache, TagPolicy()) is None
    with cache.cursor() as cur:
        assert [(e.batch_id, e.status) for e in list_edits(cur)] == [(1, "pending"), (2, "undone"), (2, "undone"),
                                                                      (3, "pending")]
        assert [e.resource_id for e in pending_edits(cur)] == [DB, INDEX]


def test_a_pushed_batch_cannot_be_undone(cache: Cache) -> None:
    apply_tags(cache, TagPolicy(), [DB], "team", "payments")
    with cache.cursor() as cur:
        cur.execute("UPDATE tag_edits SET push_status = 'pushed'")
    with pytest.raises(UserError, match="already sent to Azure"):
        undo(cache, TagPolicy())


def test_the_journal_survives_a_restart(cache_path: Path) -> None:
    with open_cache(cache_path) as first:
        apply_tags(first, TagPolicy(), [DB], "team", "payments")
        apply_tags(first, TagPolicy(), [INDEX], "team", "search")
        undo(first, TagPolicy())
        expected = _teams(first)
    with open_cache(cache_path) as second:
        assert _teams(second) == expected
        with second.cursor() as cur:
            assert [(e.resource_id, e.status) for e in list_edits(cur)] == [(DB, "pending"), (INDEX, "undone")]
        assert redo(second, TagPolicy()) is not None
        assert _teams(second)["search"] == expected["search"] + 30 * Decimal("3.25")


def test_an_import_keeps_the_edits(cache_path: Path) -> None:
    from finops_tui.allocation.effective import refresh_derived

    with open_cache(cache_path) as opened:
        apply_tags(opened, TagPolicy(), [DB], "team", "payments")
        expected = _teams(opened)
        with opened.write() as cur:
            refresh_derived(cur, TagPolicy())
        assert _teams(opened) == expected


# --- The unallocated queue ---------------------------------------------------------------------


def test_queue_ranks_by_cost_with_subtotals_and_suggestions(cache: Cache) -> None:
    with cache.cursor() as cur:
        queue = unallocated_queue(cur, "team", _period())
        tree = {n.label: n.cost for n in children(cur, ["tag:team"], [], _period())}
    assert [i.resource_id for i in queue.items] == [DB, INDEX, CC_VM, ORPHAN_VM]
    assert [i.cost for i in queue.items] == [Decimal("195.00"), Decimal("97.50"), Decimal("60.00"),
                                             Decimal("33.00")]
    assert queue.without_resource == Decimal("22.50")
    assert queue.total == tree[UNALLOCATED]
    assert [(s.subscription_id, s.cost, s.resources) for s in queue.subscriptions] == [
        ("s1", Decimal("292.50"), 2), ("s2", Decimal("93.00"), 2)]
    assert [(g.resource_group, g.cost) for g in queue.subscriptions[0].groups] == [
        ("rg-payments-prod", Decimal("195.00")), ("rg-search", Decimal("97.50"))]
    by_id = {i.resource_id: i for i in queue.items}
    db = by_id[DB].suggestion
    assert db is not None and (db.value, db.kind) == ("payments", "siblings")
    assert db.reason == "1 of 2 tagged resources in rg-payments-prod have team=payments, 71% of their cost"
    index = by_id[INDEX].suggestion
    assert index is not None and (index.value, index.kind) == ("search", "group-name")
    batch = by_id[CC_VM].suggestion
    assert batch is not None and (batch.value, batch.kind) == ("search", "other-tag")
    assert "costcenter=cc-9" in batch.reason
    assert by_id[ORPHAN_VM].suggestions == ()
    assert by_id[DB].arm_id.endswith("/resourceGroups/rg-payments-prod/providers/microsoft.compute/virtualmachines/db")


def test_queue_limit_keeps_subtotals_over_everything(cache: Cache) -> None:
    with cache.cursor() as cur:
        queue = unallocated_queue(cur, "team", _period(), limit=1)
    assert [i.resource_id for i in queue.items] == [DB]
    assert queue.resources == 4 and queue.subscriptions[1].cost == Decimal("93.00")
    assert queue.subscriptions[1].groups[0].items == []


def test_tagging_from_the_queue_empties_it(cache: Cache) -> None:
    with cache.cursor() as cur:
        queue = unallocated_queue(cur, "team", _period())
    for item in queue.items:
        if item.suggestion:
            apply_tags(cache, TagPolicy(), [item.resource_id], "team", item.suggestion.value)
    with cache.cursor() as cur:
        after = unallocated_queue(cur, "team", _period())
    assert [i.resource_id for i in after.items] == [ORPHAN_VM]
    assert after.total == Decimal("33.00") + Decimal("22.50")


# --- `finops-tui tags ...` --------------------------------------------------------------------------


def _tags(capsys: pytest.CaptureFixture[str], cache_path: Path, *args: str, code: int = 0) -> str:
    assert main(["tags", "--cache", str(cache_path), *args]) == code
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_cli_set_list_undo_redo(capsys: pytest.CaptureFixture[str], cache_path: Path) -> None:
    out = _tags(capsys, cache_path, "set", "--resource-group", "RG-PAYMENTS-PROD", "Team=payments")
    assert "batch 1: team=payments on 2 resource(s) (1 already had it)" in out
    out = _tags(capsys, cache_path, "set", "--resource", DB.upper(), "env=prod")
    assert "batch 2: env=prod on 1 resource(s)" in out
    listing = _tags(capsys, cache_path, "list")
    assert "checkout" in listing and "pending" in listing and listing.count("\n") == 5
    assert "undone: batch 2 (env=prod on 1 resources)" in _tags(capsys, cache_path, "undo")
    assert "redone: batch 2" in _tags(capsys, cache_path, "redo")
    assert "nothing to redo" in _tags(capsys, cache_path, "redo")


def test_cli_set_errors(capsys: pytest.CaptureFixture[str], cache_path: Path) -> None:
    assert "expected KEY=VALUE" in _tags(capsys, cache_path, "set", "--resource", DB, "team", code=2)
    assert "exactly one of" in _tags(capsys, cache_path, "set", "team=x", code=2)
    assert "no such resource" in _tags(capsys, cache_path, "set", "--resource", "/nope", "team=x", code=1)
    assert "no resources" in _tags(capsys, cache_path, "set", "--resource-group", "rg-payments-prod",
                                   "--subscription", "s2", "team=x", code=1)


def test_cli_export_csv_and_az(capsys: pytest.CaptureFixture[str], cache_path: Path) -> None:
    _tags(capsys, cache_path, "set", "--resource", DB, "team=payments")
    _tags(capsys, cache_path, "set", "--resource", DB, "cost center=it's ours")
    rows = list(csv.reader(io.StringIO(_tags(capsys, cache_path, "export", "--format", "csv"))))
    arm_db = "/subscriptions/s1/resourceGroups/rg-payments-prod/providers/microsoft.compute/virtualmachines/db"
    assert rows == [["resource_id", "tag_key", "tag_value"], [arm_db, "cost center", "it's ours"],
                    [arm_db, "team", "payments"]]
    az = _tags(capsys, cache_path, "export", "--format", "az")
    assert az == (f"az tag update --resource-id {arm_db} --operation Merge --tags "
                  "'cost center=it'\"'\"'s ours' team=payments\n")
