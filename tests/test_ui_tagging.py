"""Tagging screen: tag the largest unallocated group, see it leave every view, undo/redo, rules, push preview."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from finops_tui.allocation.effective import TagPolicy
from finops_tui.allocation.journal import list_edits, pending_edits
from finops_tui.allocation.queue import QueueGroup, UnallocatedQueue, unallocated_queue
from finops_tui.allocation.rules import load_rules
from finops_tui.basis.money import money
from finops_tui.config import Config
from finops_tui.store import Cache
from finops_tui.ui.dialogs import push_preview
from finops_tui.ui.dialogs.push_preview import PushPreviewDialog
from finops_tui.ui.dialogs.tag_dialog import RuleDialog, RulesDialog, TagDialog
from finops_tui.ui.screens.allocation import AllocationScreen
from finops_tui.ui.screens.overview import OverviewScreen
from finops_tui.ui.screens.resource_detail import ResourceDetailScreen
from finops_tui.ui.screens.tagging import TaggingScreen, common_pattern
from tests.fake_tags_arm import FakeCredential, FakeTagsArm
from tests.ui_fixtures import TODAY, async_test, make_app, opened, screen_text, settle, usd_cache_copy, without_prefetch

SIZE = (120, 40)


pytestmark = pytest.mark.today(TODAY)


@pytest.fixture(autouse=True)
def _no_prefetch(monkeypatch: pytest.MonkeyPatch) -> None:
    without_prefetch(monkeypatch, "overview")


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    """A copy of the shared small cache: these tests write tags."""
    return usd_cache_copy(tmp_path)


@pytest.fixture
def arm_cache_path(cache_path: Path) -> Path:
    """The copy with full ARM resource ids (GUID subscriptions, a provider namespace): a push sends only those."""
    from finops_tui.allocation.effective import refresh_derived

    with opened(cache_path) as cache, cache.write() as cur:
        cur.execute(
            r"""UPDATE charges SET x_ResourceKey = NULL, ResourceId = regexp_replace(ResourceId,
                '^/subscriptions/sub-(\d)/resourcegroups/([^/]+)/providers/x/(r\d+)$',
                '/subscriptions/00000000-0000-4000-8000-00000000000\1/resourcegroups/\2/providers/'
                || 'microsoft.compute/virtualmachines/\3')"""
        )
        cur.execute("DELETE FROM resource_keys")
        refresh_derived(cur, TagPolicy())
    return cache_path


@pytest.fixture
def tags_arm() -> Iterator[FakeTagsArm]:
    with FakeTagsArm() as fake:
        yield fake


async def open_tagging(pilot: Pilot[Any]) -> TaggingScreen:
    await settle(pilot)
    await pilot.press("4")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, TaggingScreen) and screen.queue is not None
    return screen


def queue_now(cache: Cache, screen: TaggingScreen) -> UnallocatedQueue:
    assert screen.period is not None
    with cache.cursor() as cur:
        return unallocated_queue(cur, "team", screen.period, "effective", "USD")


def largest_group(queue: UnallocatedQueue) -> QueueGroup:
    return max((g for s in queue.subscriptions for g in s.groups), key=lambda g: g.cost)


async def move_to_group(pilot: Pilot[Any], screen: TaggingScreen, group: QueueGroup) -> None:
    """With the keyboard: from the top, down to the group's first resource."""
    index = next(i for i, row in enumerate(screen.table.rows) if row.kind == "item" and row.group is group)
    await pilot.press("g", *["j"] * index)
    assert screen.table.cursor_row == index


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


# --------------------------------------------------------------------------------------------------


@async_test
async def test_tag_a_group_undo_redo_and_preview_the_push(arm_cache_path: Path, tags_arm: FakeTagsArm,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(push_preview, "push_credential", lambda mode: FakeCredential())
    with opened(arm_cache_path) as cache:
        app = make_app(cache, config=Config(arm_endpoint=tags_arm.base_url))
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_tagging(pilot)
            before = queue_now(cache, screen)
            assert screen.queue is not None and screen.queue.total == before.total
            group = largest_group(screen.queue)
            assert group.cost == largest_group(before).cost
            assert money(before.total, "USD") in screen_text(app)
            # Ranked by cost: every group's resources come costliest first, and groups by subtotal.
            for sub in before.subscriptions:
                assert [g.cost for g in sub.groups] == sorted((g.cost for g in sub.groups), reverse=True)

            await move_to_group(pilot, screen, group)
            await pilot.press("a")  # marks the whole resource group
            marked = {i.resource_id for i in group.items}
            assert screen.table.marked == marked and f"{len(marked)} marked" in screen_text(app)
            await pilot.press("t")
            await settle(pilot)
            dialog = app.screen
            assert isinstance(dialog, TagDialog)
            await pilot.press("ctrl+u", *"checkout", "enter")
            await settle(pilot)
            assert app.screen is screen

            after = queue_now(cache, screen)
            assert after.total == before.total - group.cost  # the data layer: the group left the queue
            assert not marked & {i.resource_id for i in after.items}
            assert screen.queue is not None and screen.queue.total == after.total  # the screen, reloaded
            assert money(after.total, "USD") in screen_text(app)
            assert not screen.table.marked

            # Every view: the tree's (unallocated) node and the overview's untagged card follow.
            await pilot.press("2")
            await settle(pilot)
            tree_screen = app.screen
            assert isinstance(tree_screen, AllocationScreen)
            unallocated = next(b for b in tree_screen.tree_view.level_branches(()) if b.node.is_unallocated)
            assert unallocated.cost == cents(after.total)
            await pilot.press("1")
            await settle(pilot)
            overview = app.screen
            assert isinstance(overview, OverviewScreen) and overview.view is not None
            assert cents(overview.view.untagged) == cents(after.total)

            # The origin shows as manual in the resource's detail.
            resource = group.items[0].resource_id
            await app.push_screen(ResourceDetailScreen(resource))
            await settle(pilot)
            text = screen_text(app)
            assert "manual edit" in text and "checkout" in text
            await pilot.press("escape")

            await pilot.press("4")
            await settle(pilot)
            await pilot.press("u")
            await settle(pilot)
            assert queue_now(cache, screen).total == before.total
            assert screen.queue.total == before.total
            await pilot.press("ctrl+r")
            await settle(pilot)
            assert queue_now(cache, screen).total == after.total
            assert screen.queue.total == after.total

            # The push preview lists every pending merge; cancelling it sends nothing.
            await pilot.press("P")
            await settle(pilot)
            preview_dialog = app.screen
            assert isinstance(preview_dialog, PushPreviewDialog)
            assert {item.resource_id for item in preview_dialog.items} == marked
            assert f"Send {len(marked)} tag merges to Azure" in screen_text(app)
            await pilot.press("enter")  # the focused button is Cancel: enter alone sends nothing
            await settle(pilot)
            assert app.screen is screen
            assert tags_arm.requests == []
            with cache.cursor() as cur:
                assert {e.resource_id for e in pending_edits(cur)} == marked

            # Confirming sends one Merge per resource, with progress and results in the dialog.
            await pilot.press("P")
            await settle(pilot)
            await pilot.click("#send")
            await settle(pilot)
            assert len(tags_arm.requests) == len(marked)
            assert all(r.body == {"operation": "Merge", "properties": {"tags": {"team": "checkout"}}}
                       for r in tags_arm.requests)
            assert f"sent {len(marked)}" in screen_text(app)
            await pilot.press("escape")  # close
            await settle(pilot)
            with cache.cursor() as cur:
                assert pending_edits(cur) == []
                assert {e.status for e in list_edits(cur) if not e.undone} == {"pushed"}


@async_test
async def test_accept_applies_the_suggestion_of_the_cursor_row(cache_path: Path) -> None:
    with opened(cache_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_tagging(pilot)
            item = screen.table.cursor_item  # the cursor starts on the costliest resource, not a header
            assert item is not None and item.suggestion is not None
            await pilot.press("y")
            await settle(pilot)
            with cache.cursor() as cur:
                [edit] = list_edits(cur)
            assert (edit.resource_id, edit.tag_key, edit.new_value) == (item.resource_id, "team", item.suggestion.value)
            assert screen.queue is not None and item.resource_id not in {i.resource_id for i in screen.queue.items}


@async_test
async def test_range_marks_and_a_rule_from_the_selection(cache_path: Path) -> None:
    with opened(cache_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_tagging(pilot)
            assert screen.queue is not None
            group = largest_group(screen.queue)
            await move_to_group(pilot, screen, group)
            await pilot.press("shift+down")
            first_two = {row.item.resource_id for row in screen.table.rows[screen.table.cursor_row - 1:
                                                                            screen.table.cursor_row + 1] if row.item}
            assert screen.table.marked == first_two and len(first_two) == 2
            await pilot.press("escape")  # clears the marks
            assert not screen.table.marked

            before_total = screen.queue.total
            same_name = sum((g.cost for s in screen.queue.subscriptions for g in s.groups
                             if g.resource_group == group.resource_group), Decimal(0))  # in every subscription
            await move_to_group(pilot, screen, group)
            await pilot.press("a", "r")
            await settle(pilot)
            dialog = app.screen
            assert isinstance(dialog, RuleDialog)
            assert dialog.query_one("#pattern").value == group.resource_group  # type: ignore[attr-defined]
            await pilot.press("tab", "tab", "tab", "ctrl+u", *"ml", "enter")  # pattern → subscription → key → value
            await settle(pilot)
            [rule] = load_rules()
            assert rule.resource_group == group.resource_group and rule.set_tags == {"team": "ml"}
            assert screen.queue.total == queue_now(cache, screen).total == before_total - same_name
            assert group.resource_group not in {g.resource_group for s in screen.queue.subscriptions for g in s.groups}

            await pilot.press("L")
            await settle(pilot)
            rules = app.screen
            assert isinstance(rules, RulesDialog)
            assert money(same_name) in screen_text(app)  # the spend the rule allocates
            await pilot.press("escape")


@async_test
async def test_scoped_queue_from_a_subscription_branch(cache_path: Path) -> None:
    with opened(cache_path) as cache:
        app = make_app(cache)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("2")
            await settle(pilot)
            tree_screen = app.screen
            assert isinstance(tree_screen, AllocationScreen)
            tree_screen.set_hierarchy(["subscription", "tag:team"], None)
            await settle(pilot)
            tree = tree_screen.tree_view
            # The untagged resources of this cache all live in Production.
            subscription = next(b for b in tree.level_branches(()) if b.label == "Production")
            tree.reveal(subscription.path)
            await settle(pilot)
            unallocated = next(b for b in tree.level_branches(subscription.path) if b.node.is_unallocated)
            tree.reveal(unallocated.path, expand=False)
            await pilot.press("t")
            await settle(pilot)
            tagging = app.screen
            assert isinstance(tagging, TaggingScreen)
            subscriptions = {row.subscription.subscription_id for row in tagging.table.rows}
            assert subscriptions == {subscription.node.key}
            listed = sum((i.cost for i in tagging.table.listed_items()), Decimal(0))
            assert cents(listed) == unallocated.cost
            assert f"subscription {subscription.label}" in screen_text(app)


def test_common_pattern_of_resource_groups() -> None:
    assert common_pattern(["rg-payments-prod", "rg-payments-dev"]) == "rg-payments-*"
    assert common_pattern(["rg-web"]) == "rg-web"
    assert common_pattern(["a", "b"]) == "*"
    assert common_pattern([]) == ""
