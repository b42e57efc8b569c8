"""Throttling and faults: Cost Management 429 headers, qpu pacing, 5xx backoff, auth failures, cancel."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError

from finops_tui.allocation.effective import TagPolicy
from finops_tui.azure import NOT_SIGNED_IN
from finops_tui.errors import AzureError
from tests import fake_arm
from tests.fake_arm import MONTHS, SUB, FakeArm, FakeCredential, is_query, month_total, sync

pytestmark = pytest.mark.today(fake_arm.TODAY)
arm = fake_arm.arm
cache = fake_arm.cache


def _queries(arm: FakeArm) -> int:
    return sum(is_query(r.method, r.path) for r in arm.requests)


def test_a_429_storm_with_cost_management_headers_is_waited_out(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 8)
    arm.throttle(4)  # no standard Retry-After: azure-core alone would give up on the first 429
    run = sync(arm, cache, api_path="query", months=1, tag_keys=["team"])

    assert run.result.ok, run.result.failures
    assert run.sleeps == [2.0] * 4  # the largest of the qpu (1 s) and clienttype (2 s) retry-after headers
    assert run.states().count("throttled, retrying in 2 s") == 4
    assert run.result.throttle_events == 4 and run.result.throttled_seconds == 8.0
    assert _queries(arm) == 2 + 4
    assert month_total(cache, "BilledCost", MONTHS[0]) == arm.total(SUB, "actual", MONTHS[0])
    with cache.cursor() as cur:
        throttled = cur.execute("SELECT metric, throttled_seconds FROM sync_state ORDER BY 1").fetchall()
    assert throttled == [("actual", 8.0), ("amortized", 0.0)]


def test_an_endless_storm_fails_the_windows_and_writes_nothing(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 8)
    arm.throttle(1000)
    run = sync(arm, cache, api_path="query", months=1, tag_keys=["team"], retries=3)

    assert [f.metric for f in run.result.failures] == ["actual", "amortized"]
    assert all(f.error.startswith("HTTP 429") for f in run.result.failures)
    assert _queries(arm) == 2 * (1 + 3)  # bounded retries per request
    with cache.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM charges").fetchone() == (0,)
        assert cur.execute("SELECT DISTINCT status FROM sync_state").fetchall() == [("failed",)]


def test_server_errors_are_retried_with_backoff(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 8)
    arm.fail(3, 500)
    run = sync(arm, cache, api_path="query", months=1, tag_keys=["team"])

    assert run.result.ok, run.result.failures
    assert _queries(arm) == 2 + 3
    assert run.sleeps == [1.6, 3.2]  # azure-core's exponential backoff (first retry immediate), via our sleep
    assert any(s == "server error 500, retrying in 3 s" for s in run.states())
    assert month_total(cache, "BilledCost", MONTHS[0]) == arm.total(SUB, "actual", MONTHS[0])


def test_pacing_by_the_qpu_remaining_header(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 4)
    arm.qpu_remaining = "QueriesPerHour:40,QueriesPerMin:5,QueriesPer10Sec:0"
    run = sync(arm, cache, api_path="query", months=1, tag_keys=["team"], extras=False)

    assert run.result.ok
    # after the first query spent the 10-second budget, the second waits instead of drawing a 429
    assert len(run.sleeps) == 1 and 9 < run.sleeps[0] <= 10
    assert any(s.startswith("query budget spent, waiting") for s in run.states())


def test_cancel_while_waiting_out_throttling(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 4)
    arm.throttle(3)
    cancel = threading.Event()
    run = sync(arm, cache, api_path="query", months=1, cancel=cancel, sleep=lambda seconds: cancel.set())

    assert run.result.cancelled and run.result.windows_done == 0
    assert _queries(arm) == 1  # no further request after the cancel
    with cache.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM charges").fetchone() == (0,)


def test_a_rejected_token_is_an_azure_error(arm: FakeArm, cache: Any) -> None:
    arm.add_scope(SUB, 4)
    arm.accepted_tokens = {"some-other-token"}
    with pytest.raises(AzureError, match="Azure refused the credentials: HTTP 401") as caught:
        sync(arm, cache, api_path="query", months=1)
    assert caught.value.exit_code == 3
    with cache.cursor() as cur:
        assert cur.execute("SELECT status FROM sync_state").fetchall() == [("failed",)]


def test_a_failing_credential_is_one_clear_line(arm: FakeArm, cache: Any) -> None:
    class SignedOut(FakeCredential):
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise ClientAuthenticationError("AzureCliCredential: Please run 'az login' to set up an account")

    with pytest.raises(AzureError) as caught:
        sync(arm, cache, credential=SignedOut())
    assert str(caught.value) == NOT_SIGNED_IN
    assert arm.requests == []  # nothing is sent without a token


def test_an_unreachable_endpoint_is_an_azure_error(cache: Any) -> None:
    from finops_tui.sync import SyncOptions, run_sync

    with FakeArm(today=MONTHS[0]) as gone:
        url = gone.base_url
    options = SyncOptions(scopes=[SUB], arm_endpoint=url, credential=FakeCredential(), sleep=lambda s: None, months=1)
    with pytest.raises(AzureError, match=r"cannot reach http://127\.0\.0\.1"):
        run_sync(cache, options, TagPolicy())


def test_plain_http_is_refused_beyond_loopback(cache: Any) -> None:
    from finops_tui.azure import parse_endpoint
    from finops_tui.errors import UserError
    from finops_tui.sync import SyncOptions, run_sync

    with pytest.raises(UserError, match="plain http is accepted only for loopback"):
        run_sync(cache, SyncOptions(scopes=[SUB], arm_endpoint="http://10.0.0.1:8080", credential=FakeCredential()),
                 TagPolicy())
    assert parse_endpoint("http://localhost:9/").allow_http
    assert parse_endpoint("http://[::1]:9").allow_http
    assert parse_endpoint("http://127.8.9.10:9").credential_scope == "http://127.8.9.10:9/.default"
    china = parse_endpoint("https://management.chinacloudapi.cn/")
    assert (china.allow_http, china.credential_scope) == (False, "https://management.chinacloudapi.cn/.default")
    assert parse_endpoint(None).credential_scope == "https://management.azure.com/.default"


def test_sovereign_clouds_sign_in_at_their_own_authority(monkeypatch: pytest.MonkeyPatch) -> None:
    from finops_tui.azure import parse_endpoint, sign_in_authority

    assert sign_in_authority(parse_endpoint("https://management.chinacloudapi.cn")) == "login.chinacloudapi.cn"
    assert sign_in_authority(parse_endpoint("https://management.usgovcloudapi.net/")) == "login.microsoftonline.us"
    assert sign_in_authority(parse_endpoint(None)) is None
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "login.example")  # an explicit setting wins; identity reads it
    assert sign_in_authority(parse_endpoint("https://management.chinacloudapi.cn")) is None
