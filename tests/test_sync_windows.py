"""Month windows: backfill, refresh of the open month(s) only, resume after an interruption, cache age."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

from finops_tui import clock
from finops_tui.errors import UserError
from finops_tui.sync import cache_age, sync_due
from finops_tui.sync.windows import MonthWindow, WindowState, needs_pull, parse_scope
from tests import fake_arm
from tests.fake_arm import MONTHS, SUB, FakeArm, month_total, query_periods, sync

pytestmark = pytest.mark.today(fake_arm.TODAY)
arm = fake_arm.arm
cache = fake_arm.cache


def _source_ids(cache: Any) -> dict[tuple[str, dt.date], int]:
    with cache.cursor() as cur:
        rows = cur.execute("SELECT metric, period_start, source_id FROM sources").fetchall()
    return {(metric, start): source_id for metric, start, source_id in rows}


def test_a_refresh_re_pulls_only_the_open_month(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 6)
    first = sync(arm, cache, api_path="query", months=3, tag_keys=["team"])
    assert first.result.windows_done == 6 and sorted(set(query_periods(arm))) == ["2025-01", "2025-02", "2025-03"]
    before = _source_ids(cache)

    arm.requests.clear()
    second = sync(arm, cache, api_path="query", months=3, tag_keys=["team"])

    assert second.result.windows_done == 2 and second.result.windows_skipped == 4
    assert set(query_periods(arm)) == {"2025-03"}
    after = _source_ids(cache)
    assert all(after[key] == before[key] for key in after if key[1] != MONTHS[0])  # closed months untouched
    assert all(after[key] != before[key] for key in after if key[1] == MONTHS[0])  # open month replaced
    for month in MONTHS:  # replaced, not added: no doubles
        assert month_total(cache, "BilledCost", month) == arm.total(SUB, "actual", month)


def test_the_previous_month_is_re_pulled_until_five_days_after_it_ends(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 4)
    clock.pin(dt.date(2025, 3, 3))
    arm.today = dt.date(2025, 3, 3)
    sync(arm, cache, api_path="query", months=3, tag_keys=["team"])

    arm.requests.clear()
    sync(arm, cache, api_path="query", months=3, tag_keys=["team"])
    assert set(query_periods(arm)) == {"2025-03", "2025-02"}  # February's invoice is not closed yet

    clock.pin(dt.date(2025, 3, 10))
    arm.today = dt.date(2025, 3, 10)
    arm.requests.clear()
    sync(arm, cache, api_path="query", months=3, tag_keys=["team"])
    assert set(query_periods(arm)) == {"2025-03", "2025-02"}  # once more: the last pull was before it closed

    arm.requests.clear()
    sync(arm, cache, api_path="query", months=3, tag_keys=["team"])
    assert set(query_periods(arm)) == {"2025-03"}  # February is finished now


def test_an_interrupted_sync_keeps_finished_windows_and_resumes(arm: FakeArm, cache: Any) -> None:
    arm.page_size = 40
    arm.add_scope(SUB, 6)

    def crash_in_february_amortized(progress: Any) -> None:
        if progress.window == MONTHS[1] and progress.metric == "amortized" and progress.state == "downloading":
            raise KeyboardInterrupt  # Ctrl-C, or the process being killed, in the middle of a window

    with pytest.raises(KeyboardInterrupt):
        sync(arm, cache, api_path="query", months=3, tag_keys=["team"], on_progress=crash_in_february_amortized)
    with cache.cursor() as cur:
        done = cur.execute("SELECT metric, window_start FROM sync_state WHERE status = 'done' ORDER BY 2, 1").fetchall()
        resources = cur.execute("SELECT count(*) FROM resources").fetchone()
    assert done == [("actual", MONTHS[1]), ("actual", MONTHS[0]), ("amortized", MONTHS[0])]
    assert month_total(cache, "EffectiveCost", MONTHS[1]) == 0  # nothing of the interrupted window
    assert month_total(cache, "BilledCost", MONTHS[1]) == arm.total(SUB, "actual", MONTHS[1])
    assert resources == (6,)  # derived tables were refreshed for the windows that did finish
    finished = _source_ids(cache)[("actual", MONTHS[1])]

    arm.requests.clear()
    resumed = sync(arm, cache, api_path="query", months=3, tag_keys=["team"])

    assert resumed.result.ok and resumed.result.windows_skipped == 1  # February actual is not fetched again
    assert ("2025-02", "ActualCost") not in {
        (r.body["timePeriod"]["from"][:7], r.body["type"]) for r in arm.requests if r.body
    }
    assert _source_ids(cache)[("actual", MONTHS[1])] == finished
    for month in MONTHS:
        assert month_total(cache, "BilledCost", month) == arm.total(SUB, "actual", month)
        assert month_total(cache, "EffectiveCost", month) == arm.total(SUB, "amortized", month)


def test_cancel_between_windows(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 4)
    cancel = threading.Event()

    def cancel_after_first_window(progress: Any) -> None:
        if progress.state == "written":
            cancel.set()

    run = sync(arm, cache, api_path="query", cancel=cancel, on_progress=cancel_after_first_window)
    assert run.result.cancelled and run.result.windows_done == 1
    assert not run.result.ok


def test_cache_age_and_when_a_sync_is_due(arm: FakeArm, cache: Any) -> None:
    assert cache_age(cache) is None and sync_due(cache, 12)
    arm.add_scope(SUB, 3)
    sync(arm, cache, api_path="query", months=1, tag_keys=["team"])
    age = cache_age(cache)
    assert age is not None and age < dt.timedelta(minutes=5)
    assert not sync_due(cache, 12)
    assert cache_age(cache, scopes=["/subscriptions/someone-else"]) is None
    clock.pin(dt.date(2025, 3, 17))
    assert sync_due(cache, 12) and cache_age(cache, scopes=[SUB]) > dt.timedelta(days=1)


def test_window_rules() -> None:
    scope = parse_scope("00000000-0000-0000-0000-000000000001")
    assert scope.arm == SUB and scope.kind == "subscription"
    january = MonthWindow(scope, "actual", dt.date(2025, 1, 1), dt.date(2025, 2, 1))
    pulled_late = WindowState("done", dt.datetime(2025, 2, 10, 8))
    pulled_early = WindowState("done", dt.datetime(2025, 2, 3, 8))
    assert needs_pull(january, None, dt.date(2025, 3, 1))
    assert needs_pull(january, pulled_late, dt.date(2025, 2, 5))  # still inside the five days
    assert not needs_pull(january, pulled_late, dt.date(2025, 3, 1))
    assert needs_pull(january, pulled_early, dt.date(2025, 3, 1))
    assert needs_pull(january, WindowState("failed", dt.datetime(2025, 2, 10)), dt.date(2025, 3, 1))


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("/subscriptions/abc/", "subscription"),
        ("subscriptions/abc/resourceGroups/rg-1", "resource-group"),
        ("/providers/Microsoft.Management/managementGroups/mg 1", "management-group"),
        ("/providers/Microsoft.Billing/billingAccounts/12345678", "billing-account"),
        ("/providers/Microsoft.Billing/billingAccounts/a:b_2019-05-31/billingProfiles/XX-1", "billing-profile"),
    ],
)
def test_scopes_are_normalised(text: str, kind: str) -> None:
    scope = parse_scope(text)
    assert scope.kind == kind and scope.arm.startswith("/") and not scope.arm.endswith("/")


def test_bad_scopes_and_months_are_user_errors(arm: FakeArm, cache: Any) -> None:
    with pytest.raises(UserError, match="not a Cost Management scope"):
        parse_scope("/subscriptions")
    with pytest.raises(UserError, match="--months 14: expected 1 to 13"):
        sync(arm, cache, months=14)
