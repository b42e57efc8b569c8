"""`finops-tui sync --hub`: the real azure-kusto-data client against a loopback fake of the hub's cluster."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from finops_tui.allocation.effective import TagPolicy
from finops_tui.cli import main
from finops_tui.errors import UserError
from finops_tui.store.cache import open_cache
from finops_tui.store.tag_sets import join_sql, row_tags_sql
from finops_tui.sync.hub import HubOptions, parse_hub, sync_hub, window_query
from tests.fake_arm import FakeArm, FakeCredential, install_fake_az
from tests.fake_kusto import OTHER_SUBSCRIPTION, SUBSCRIPTION, FakeKusto

TODAY = dt.date(2025, 3, 15)
pytestmark = pytest.mark.today(TODAY)
CENT = Decimal("0.01")
JAN, FEB, MAR = dt.date(2025, 1, 1), dt.date(2025, 2, 1), dt.date(2025, 3, 1)


@pytest.fixture
def hub() -> Iterator[FakeKusto]:
    with FakeKusto() as fake:
        yield fake


def cached(cache_path: Path) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    with open_cache(cache_path) as cache, cache.cursor() as cur:
        rows = cur.execute("SELECT BillingCurrency, sum(BilledCost), sum(EffectiveCost) FROM charges GROUP BY 1")
        return {str(c): (Decimal(b).quantize(CENT), Decimal(e).quantize(CENT)) for c, b, e in rows.fetchall()}


def served(fake: FakeKusto, months: list[dt.date], subscription: str | None = None) -> dict[str, Any]:
    return {c: (b.quantize(CENT), e.quantize(CENT)) for c, (b, e) in fake.totals(months, subscription).items()}


def pull(fake: FakeKusto, cache_path: Path, **overrides: Any) -> tuple[Any, list[float]]:
    sleeps: list[float] = []
    options = HubOptions(f"{fake.url}/Hub", credential=FakeCredential(), sleep=sleeps.append, **overrides)
    with open_cache(cache_path) as cache:
        return sync_hub(cache, options, TagPolicy()), sleeps


def test_sync_hub_fills_an_empty_cache_through_the_az_login(
    hub: FakeKusto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install_fake_az(tmp_path / "bin", monkeypatch)
    hub.rows_per_month = 4500  # several chunks per month
    cache_path = tmp_path / "cache.duckdb"

    code = main(["sync", "--cache", str(cache_path), "--hub", f"{hub.url}/Hub", "--months", "3"])

    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err
    assert cached(cache_path) == served(hub, [JAN, FEB, MAR])
    assert {r.authorization for r in hub.requests} == {"Bearer cli-fake-token"}
    with open_cache(cache_path) as cache, cache.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM charges").fetchone() == (3 * 4500,)
        assert cur.execute("SELECT DISTINCT kind, metric FROM sources").fetchall() == [("sync-hub", "focus")]
        assert cur.execute("SELECT count(*) FROM charges WHERE BilledCost IS NULL OR EffectiveCost IS NULL"
                           ).fetchone() == (0,)
        # Resource ids lower-cased and tags as a map, as the explorer reads them.
        assert cur.execute("SELECT count(*) FROM charges WHERE ResourceId <> lower(ResourceId)").fetchone() == (0,)
        assert cur.execute(f"SELECT {row_tags_sql()}['team'] FROM charges c {join_sql()} LIMIT 1"
                           ).fetchone()[0].startswith("team-")
        assert cur.execute("SELECT count(*) FROM resource_tags WHERE tag_key = 'team'").fetchone()[0] > 0


def test_each_window_is_one_query_with_its_bounds_and_the_summarize(hub: FakeKusto, tmp_path: Path) -> None:
    result, _ = pull(hub, tmp_path / "c.duckdb", months=2)

    assert (result.windows_done, result.failures) == (2, [])
    assert [r.database for r in hub.requests] == ["Hub", "Hub"]
    newest, older = (r.query for r in hub.requests)
    assert "ChargePeriodStart >= datetime(2025-03-01) and ChargePeriodStart < datetime(2025-04-01)" in newest
    assert "ChargePeriodStart >= datetime(2025-02-01) and ChargePeriodStart < datetime(2025-03-01)" in older
    assert newest.startswith("let Summarised = materialize(Costs()\n| where ")
    assert "| summarize BilledCost = sum(BilledCost), EffectiveCost = sum(EffectiveCost)" in newest
    assert "x_ChargeDate = startofday(ChargePeriodStart)" in newest and "Tags = tostring(Tags)" in newest
    # Packed on the cluster: a CSV line per row, gzipped base64 chunks; never truncated at the default result size.
    assert "| project Line = strcat_delim(',', format_datetime(x_ChargeDate, 'yyyy-MM-dd HH:mm:ss')" in newest
    assert "| project Chunk, RowCount, Rows = gzip_compress_to_base64_string(strcat_array(Lines, '\\n'))" in newest
    assert all(json.loads(r.properties)["Options"]["notruncation"] is True for r in hub.requests)


def test_text_with_quotes_commas_and_line_breaks_arrives_as_it_was(hub: FakeKusto, tmp_path: Path) -> None:
    hub.awkward_text = True
    hub.rows_per_month = 120

    result, _ = pull(hub, tmp_path / "c.duckdb", months=1, chunk_rows=7)

    assert (result.windows_done, result.failures) == (1, [])
    served_names = sorted(r["ResourceName"] for r in hub.month_rows(MAR, dt.date(2025, 4, 1)))
    with open_cache(tmp_path / "c.duckdb") as cache, cache.cursor() as cur:
        names = [n for (n,) in cur.execute("SELECT ResourceName FROM charges ORDER BY 1").fetchall()]
        tags = cur.execute(f"SELECT {row_tags_sql()}['cost-center'], {row_tags_sql()}['note'] FROM charges c "
                           f"{join_sql()} LIMIT 1").fetchone()
    assert names == served_names and '"big"\nline' in names[0]
    assert tags == ("4711", 'a "quoted", text')
    assert cached(tmp_path / "c.duckdb") == served(hub, [MAR])


def test_a_second_sync_pulls_only_the_open_month(hub: FakeKusto, tmp_path: Path) -> None:
    cache_path = tmp_path / "c.duckdb"
    pull(hub, cache_path, months=3)
    hub.requests.clear()

    result, _ = pull(hub, cache_path, months=3)

    # February closed more than five days ago and was pulled after it closed: only March is pulled again.
    assert (result.windows_done, result.windows_skipped) == (1, 2)
    assert len(hub.requests) == 1 and "datetime(2025-03-01)" in hub.requests[0].query
    assert cached(cache_path) == served(hub, [JAN, FEB, MAR])  # replaced, never doubled


def test_throttled_answers_are_waited_out_with_their_retry_after(hub: FakeKusto, tmp_path: Path) -> None:
    hub.throttle_next = 2

    result, sleeps = pull(hub, tmp_path / "c.duckdb", months=1)

    assert (result.windows_done, result.failures) == (1, [])
    assert sleeps == [7.0, 7.0] and result.throttle_events == 2
    assert cached(tmp_path / "c.duckdb") == served(hub, [MAR])


def test_throttling_past_the_retries_fails_the_window_and_keeps_the_previous_rows(
    hub: FakeKusto, tmp_path: Path
) -> None:
    cache_path = tmp_path / "c.duckdb"
    pull(hub, cache_path, months=1)
    hub.throttle_next = 100

    result, _ = pull(hub, cache_path, months=1, retries=2)

    [failure] = result.failures
    assert "throttling" in failure.error and "retried next sync" in failure.error
    assert cached(cache_path) == served(hub, [MAR])


def test_a_partial_failure_fails_its_month_only(hub: FakeKusto, tmp_path: Path) -> None:
    hub.rows_per_month = 300
    hub.cut_month = FEB
    hub.completion_error_month = JAN

    result, _ = pull(hub, tmp_path / "c.duckdb", months=3, chunk_rows=100)

    assert result.windows_done == 1
    errors = {f.window: f.error for f in result.failures}
    assert set(errors) == {FEB, JAN}
    assert "part-way" in errors[FEB] and "after 100 rows" in errors[FEB]
    assert "reported an error" in errors[JAN]
    assert cached(tmp_path / "c.duckdb") == served(hub, [MAR])
    with open_cache(tmp_path / "c.duckdb") as cache, cache.cursor() as cur:
        states = dict(cur.execute("SELECT window_start, status FROM sync_state").fetchall())
    assert states == {MAR: "done", FEB: "failed", JAN: "failed"}


def test_a_malformed_resource_id_fails_the_month_unwritten(hub: FakeKusto, tmp_path: Path) -> None:
    hub.bad_row_month = MAR

    result, _ = pull(hub, tmp_path / "c.duckdb", months=1)

    [failure] = result.failures
    assert "malformed resource id" in failure.error
    assert cached(tmp_path / "c.duckdb") == {}


def test_a_server_error_is_retried(hub: FakeKusto, tmp_path: Path) -> None:
    hub.fail_next_status = 503

    result, sleeps = pull(hub, tmp_path / "c.duckdb", months=1)

    assert (result.windows_done, len(sleeps)) == (1, 1)


def test_a_subscription_filter_pulls_only_that_slice(hub: FakeKusto, tmp_path: Path) -> None:
    result, _ = pull(hub, tmp_path / "c.duckdb", months=1, filters=[f"subscription={SUBSCRIPTION}"])

    assert result.windows_done == 1
    assert f"SubAccountId in~ ('/subscriptions/{SUBSCRIPTION}', '{SUBSCRIPTION}')" in hub.requests[0].query
    assert cached(tmp_path / "c.duckdb") == served(hub, [MAR], f"/subscriptions/{SUBSCRIPTION}")


def test_hub_urls_and_filters_are_checked_where_they_enter() -> None:
    target = parse_hub("https://hub1.westeurope.kusto.windows.net", ["tag:team=pay'ments"])
    assert (target.cluster, target.database) == ("https://hub1.westeurope.kusto.windows.net", "Hub")
    query = window_query(target, MAR, dt.date(2025, 4, 1))
    assert "tostring(Tags['team']) =~ 'pay\\'ments'" in query
    for url, expected in [
        ("http://hub1.westeurope.kusto.windows.net", "plain http"),
        ("https://hub1.westeurope.kusto.windows.net/a/b", "only a database"),
        ("ftp://x", "expected https://"),
    ]:
        with pytest.raises(UserError, match=expected):
            parse_hub(url)
    for bad in ("subscription=nope", "colour=blue", "tag:team", "tag:team=a\nb"):
        with pytest.raises(UserError, match="--hub-filter"):
            parse_hub("https://hub1.westeurope.kusto.windows.net", [bad])


# management groups (resolved through the fake ARM), dry run -----------------------------------------------------------
def test_a_management_group_filter_pulls_the_subscriptions_below_it(hub: FakeKusto, tmp_path: Path) -> None:
    with FakeArm(today=TODAY) as arm:
        # payments → (its own subscription, and a child group holding another one); the fake hub has two.
        arm.management_groups = {"mg-payments": [("group", "mg-payments-prod"), ("subscription", SUBSCRIPTION)],
                                 "mg-payments-prod": [("subscription", "00000000-0000-0000-0000-0000000000d9")]}
        result, _ = pull(hub, tmp_path / "c.duckdb", months=1, filters=["management-group=mg-payments"],
                         arm_endpoint=arm.base_url)
        descendants = arm.requests_to("/descendants", "GET")

    assert (result.windows_done, result.failures) == (1, [])
    assert {r.path for r in descendants} == {"/providers/Microsoft.Management/managementGroups/mg-payments/descendants"}
    assert len(descendants) == 2  # paged: nextLink followed
    query = hub.requests[0].query
    assert f"'/subscriptions/{SUBSCRIPTION}', '{SUBSCRIPTION}'" in query
    assert "'/subscriptions/00000000-0000-0000-0000-0000000000d9'" in query and OTHER_SUBSCRIPTION not in query
    assert cached(tmp_path / "c.duckdb") == served(hub, [MAR], f"/subscriptions/{SUBSCRIPTION}")
    with open_cache(tmp_path / "c.duckdb") as cache, cache.cursor() as cur:
        assert cur.execute("SELECT DISTINCT scope FROM sync_state").fetchall() == [
            (f"hub:127.0.0.1:{hub.url.rsplit(':', 1)[1]}/hub?management-group=mg-payments",)]


def test_an_unknown_or_empty_management_group_is_one_line_and_nothing_is_queried(
    hub: FakeKusto, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake_az(tmp_path / "bin", monkeypatch)
    with FakeArm(today=TODAY) as arm:
        arm.management_groups = {"mg-empty": []}
        for group, expected in (("mg-nope", "not found or not readable"), ("mg-empty", "holds no subscription")):
            code = main(["sync", "-q", "--cache", str(tmp_path / "c.duckdb"), "--hub", f"{hub.url}/Hub",
                         "--hub-filter", f"management-group={group}", "--arm-endpoint", arm.base_url])
            err = capsys.readouterr().err
            assert code != 0 and len(err.strip().splitlines()) == 1, err
            assert expected in err and group in err and "Traceback" not in err
    assert hub.requests == []


def test_dry_run_prints_each_month_s_kql_and_sends_no_query(
    hub: FakeKusto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache_path = tmp_path / "c.duckdb"

    code = main(["sync", "--cache", str(cache_path), "--hub", f"{hub.url}/Hub", "--months", "2", "--dry-run",
                 "--hub-filter", "tag:team=payments"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert hub.requests == []
    assert out.count("Costs()\n| where ") == 2
    assert f"-- would query {hub.url}/Hub for 2025-03:" in out and "for 2025-02:" in out
    assert "ChargePeriodStart >= datetime(2025-02-01) and ChargePeriodStart < datetime(2025-03-01)" in out
    assert "tostring(Tags['team']) =~ 'payments'" in out
    assert not cache_path.exists()


def test_subscription_filters_add_up_and_other_slices_narrow() -> None:
    other = "00000000-0000-0000-0000-0000000000e1"
    target = parse_hub("https://hub1.westeurope.kusto.windows.net",
                       [f"subscription={SUBSCRIPTION}", f"subscription=/subscriptions/{other}", "resource-group=rg-1"])
    query = window_query(target, MAR, dt.date(2025, 4, 1))
    assert (f"SubAccountId in~ ('/subscriptions/{SUBSCRIPTION}', '{SUBSCRIPTION}', '/subscriptions/{other}', "
            f"'{other}')") in query
    assert "x_ResourceGroupName =~ 'rg-1' and SubAccountId in~" in query
    for bad in ("management-group=", "management-group=a b", "management-group=" + "x" * 91):
        with pytest.raises(UserError, match="--hub-filter"):
            parse_hub("https://hub1.westeurope.kusto.windows.net", [bad])
