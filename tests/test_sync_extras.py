"""Budgets and savings-plan recommendations (failures are warnings), and the sync's import hygiene."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest

from tests import fake_arm
from tests.fake_arm import SUB, FakeArm, sync

pytestmark = pytest.mark.today(fake_arm.TODAY)
arm = fake_arm.arm
cache = fake_arm.cache


def test_budgets_and_benefit_recommendations_are_stored(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 3, cost_details=None)
    run = sync(arm, cache, months=1)

    assert run.result.ok and not run.result.warnings
    with cache.cursor() as cur:
        budgets = cur.execute(
            "SELECT name, scope, amount, currency, time_grain, current_spend, forecast_spend FROM budgets"
        ).fetchall()
        recs = cur.execute(
            "SELECT term, look_back, currency, commitment_amount, savings_amount, cost_without_benefit, "
            "savings_percentage, raw_json IS NOT NULL FROM benefit_recommendations ORDER BY term"
        ).fetchall()
    assert budgets == [
        ("monthly-cap", SUB, Decimal("5000.1"), "USD", "Monthly", Decimal("1234.56"), Decimal("4321.09"))
    ]
    assert recs == [
        ("P1Y", "Last30Days", "USD", Decimal("0.5"), Decimal("123.45"), Decimal("1000.25"), 12.3, True),
        ("P3Y", "Last30Days", "USD", Decimal("0.5"), Decimal("234.56"), Decimal("1000.25"), 23.4, True),
    ]
    filters = [r.query["$filter"] for r in arm.requests_to("/benefitRecommendations")]
    assert all("properties/scope eq 'Single'" in f for f in filters)  # a subscription: single-scope plans

    sync(arm, cache, months=1)  # a second run replaces, never duplicates
    with cache.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM budgets").fetchone() == (1,)
        assert cur.execute("SELECT count(*) FROM benefit_recommendations").fetchone() == (2,)


def test_a_budget_failure_is_only_a_warning(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 3, cost_details=None)
    arm.budgets_status = 403
    run = sync(arm, cache, months=1)

    assert run.result.windows_done == 2 and not run.result.failures
    assert run.result.warnings == [
        f"{SUB}: budgets not synced (HTTP 403 RBACAccessDenied: The client does not have authorization.)"
    ]
    with cache.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM benefit_recommendations").fetchone() == (2,)


def test_extras_can_be_skipped(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 3, cost_details=None)
    sync(arm, cache, months=1, extras=False)
    assert not arm.requests_to("/budgets") and not arm.requests_to("/benefitRecommendations")


def test_importing_the_sync_api_loads_neither_the_azure_sdk_nor_textual() -> None:
    code = (
        "import sys, finops_tui.sync, finops_tui.cli; "
        "bad = sorted(m for m in sys.modules if m.startswith(('azure', 'textual'))); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
