"""Summary tables: kept true in every write, and every read model answers the same from them as from charges."""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finops_tui import cli
from finops_tui.allocation.effective import TagPolicy, reapply_rules, refresh_derived
from finops_tui.allocation.journal import apply_tags, undo
from finops_tui.allocation.rules import Rule
from finops_tui.allocation.shared import Pool, apply_pools
from finops_tui.basis.dimensions import dimension
from finops_tui.basis.periods import Period
from finops_tui.ingest.demo import build_demo
from finops_tui.report import overview, tree
from finops_tui.report.sources import source_for
from finops_tui.store import open_cache, summaries
from finops_tui.store.sources import Window, begin_window, finish_window, freshness
from tests.allocation_data import Charge, fresh_copy, load
from tests.report_helpers import build_small_cache
from tests.summaries_check import (
    as_wide_summary_cache,
    assert_same,
    check_cache,
    check_overview,
    check_tree,
    periods_of,
)
from tests.ui_fixtures import build_ui_cache

DEMO_END = dt.date(2026, 11, 26)
TODAY = DEMO_END + dt.timedelta(days=1)
pytestmark = pytest.mark.today(TODAY)


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo(path, TagPolicy(), end=DEMO_END, months=4)  # no shared.toml: the demo's pools apply
    return path


def test_demo_every_read_model_equals_charges(demo_template: Path) -> None:
    with open_cache(demo_template, read_only=True) as cache:
        with cache.cursor() as cur:
            held, rows = cur.execute("SELECT count(*), sum(row_count) FROM daily_summary").fetchone() or (0, 0)
            charges = (cur.execute("SELECT count(*) FROM charges").fetchone() or (0,))[0]
        assert rows == charges and held < charges / 3  # the summary is much smaller and counts every row
        assert check_cache(cache, TODAY) > 200


@pytest.mark.parametrize("with_eur", [False, True])
def test_fixture_caches_equal_charges(tmp_path: Path, with_eur: bool) -> None:
    path = build_ui_cache(tmp_path / "ui.duckdb", with_eur=with_eur)
    with open_cache(path) as cache:
        check_cache(cache, dt.date(2026, 11, 27), periods=("mtd", "90d"), metrics=("billed",), tree_depth=3)


def test_small_cache_equal_charges(tmp_path: Path) -> None:
    with open_cache(build_small_cache(tmp_path / "s.duckdb")) as cache:
        check_cache(cache, TODAY, periods=("last-month",), tree_depth=3)


def test_a_tag_edit_moves_only_its_resources_and_stays_equal(demo_template: Path, tmp_path: Path) -> None:
    with open_cache(fresh_copy(demo_template, tmp_path)) as cache:
        with cache.cursor() as cur:
            ids = [r[0] for r in cur.execute(
                "SELECT ResourceId FROM resources ORDER BY ResourceId LIMIT 300").fetchall()]
        policy = TagPolicy()
        apply_tags(cache, policy, ids, "team", "summaries-team", push=False)
        with cache.cursor() as cur:
            assert summaries.differences(cur) == []
            period = periods_of(cur, TODAY, ["90d"])[0]
            rows = assert_same("team breakdown", lambda: overview.breakdown(
                cur, dimension("tag:team"), period, "effective"))
            assert any(r.key == "summaries-team" for r in rows)
        undo(cache, policy)
        with cache.cursor() as cur:
            assert summaries.differences(cur) == []
            check_overview(cur, period, "effective")


def test_rules_and_pool_changes_keep_the_summary_true(demo_template: Path, tmp_path: Path) -> None:
    with open_cache(fresh_copy(demo_template, tmp_path)) as cache:
        reapply_rules(cache, TagPolicy(rules=(Rule(set_tags={"team": "ruled"}, service="Storage"),), pools=()))
        with cache.cursor() as cur:
            assert summaries.differences(cur) == []
            assert cur.execute("SELECT count(*) FROM daily_summary WHERE x_SharedPool IS NOT NULL").fetchone() == (0,)
        apply_pools(cache, [Pool("untagged", "team", "even", Rule(set_tags={}), unallocated=True, index=1)])
        with cache.cursor() as cur:
            assert summaries.differences(cur) == []
            period = periods_of(cur, TODAY, ["mtd"])[0]
            check_tree(cur, period, "billed", depth=2)


def test_the_summary_holds_the_configured_team_key(demo_template: Path, tmp_path: Path) -> None:
    with open_cache(fresh_copy(demo_template, tmp_path)) as cache:
        with cache.write() as cur:
            refresh_derived(cur, TagPolicy(summary_key="env"))
        with cache.cursor() as cur:
            assert summaries.stored_tag_key(cur) == "env"
            assert source_for(cur, [dimension("tag:env")]).is_summary
            assert not source_for(cur, [dimension("tag:team")]).is_summary
            period = periods_of(cur, TODAY, ["30d"])[0]
            check_overview(cur, period, "effective", team_key="env")


def test_a_write_that_bypasses_the_window_functions_is_never_read(tmp_path: Path) -> None:
    path = build_small_cache(tmp_path / "s.duckdb")
    with open_cache(path) as cache:
        with cache.write() as cur:
            cur.execute("INSERT INTO charges SELECT * FROM charges LIMIT 5")
        with cache.cursor() as cur:
            assert summaries.current(cur) is None
            assert not source_for(cur).is_summary
            assert summaries.differences(cur)  # `doctor` reports it


def test_a_failed_write_leaves_the_summary_as_it_was(tmp_path: Path) -> None:
    path = build_small_cache(tmp_path / "s.duckdb")
    with open_cache(path) as cache:
        with cache.cursor() as cur:
            before = cur.execute("SELECT sum(EffectiveCost), sum(row_count) FROM daily_summary").fetchone()
        with pytest.raises(RuntimeError), cache.write() as cur:
            begin_window(cur, Window("focus-file", "small", "focus", dt.date(2026, 8, 1), dt.date(2026, 12, 1)))
            raise RuntimeError("interrupted")
        with cache.cursor() as cur:
            assert cur.execute("SELECT sum(EffectiveCost), sum(row_count) FROM daily_summary").fetchone() == before
            assert summaries.differences(cur) == []


def test_a_wide_summary_becomes_star_shaped_on_upgrade_without_reading_charges(tmp_path: Path) -> None:
    """Schema 8 -> 9: the summary's and the no-team rollup's rows move to the group-keyed tables, and the views under
    their names show exactly the rows the wide tables held; later writes keep them true."""
    path = build_small_cache(tmp_path / "s.duckdb")
    con = duckdb.connect(str(path))
    as_wide_summary_cache(con)
    wide = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ("daily_summary", "summary_no_team")}
    combinations = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT {', '.join(summaries._GROUP_KEYS)} "
                               "FROM daily_summary)").fetchone()
    con.execute("DELETE FROM charges WHERE x_ChargeDate = (SELECT max(x_ChargeDate) FROM charges)")  # stale
    con.execute("UPDATE summary_state SET charges_rows = (SELECT count(*) FROM charges)")
    con.close()
    with open_cache(path) as cache:
        with cache.cursor() as cur:
            kinds = dict(cur.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())
            assert kinds["daily_summary"] == kinds["summary_no_team"] == "VIEW"
            for table, rows in wide.items():  # converted from the wide rows, not recomputed from charges
                assert cur.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() == rows
            assert cur.execute(f"SELECT count(*) FROM {summaries.GROUPS_TABLE}").fetchone() == combinations
            assert summaries.differences(cur) != []  # the rows deleted behind its back are still summed
        with cache.write() as cur:
            summaries.rebuild(cur)
        with cache.cursor() as cur:
            assert summaries.differences(cur) == []


def test_an_older_cache_gets_its_summary_on_upgrade(tmp_path: Path) -> None:
    path = build_small_cache(tmp_path / "s.duckdb")
    con = duckdb.connect(str(path))
    as_wide_summary_cache(con)
    for table in ("daily_summary", "summary_state", *(r.table for r in summaries.ROLLUPS)):
        con.execute(f"DROP TABLE {table}")
    con.execute("DELETE FROM schema_version WHERE version >= 6")
    con.close()
    with open_cache(path, read_only=True) as cache, cache.cursor() as cur:  # reading it migrates it first
        assert summaries.current(cur) is not None
        assert summaries.differences(cur) == []


def test_doctor_says_summaries_match_and_lists_each_difference(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = build_small_cache(tmp_path / "s.duckdb")
    assert cli.main(["--cache", str(path), "doctor"]) == 0
    assert capsys.readouterr().out.strip() == "summaries match"
    with open_cache(path) as cache, cache.write() as cur:
        cur.execute(f"UPDATE {summaries.SUMMARY_FACTS} SET EffectiveCost = EffectiveCost + 0.01 "
                    f"WHERE x_ChargeDate = (SELECT max(x_ChargeDate) FROM {summaries.SUMMARY_FACTS})")
    assert cli.main(["--cache", str(path), "doctor"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out and all(line.startswith("daily_summary 2026-11-26 ") for line in out)
    assert "Traceback" not in "".join(out)
    assert cli.main(["--cache", str(path), "doctor", "--fix"]) == 0
    assert "rebuilt" in capsys.readouterr().out
    assert cli.main(["--cache", str(path), "doctor"]) == 0


def test_doctor_names_a_combination_with_two_groups_and_fix_renumbers_them(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Sums still match when a combination has two groups, but a tag edit's delta would be added twice: doctor
    says so, and `--fix` (a full rebuild) numbers each combination once."""
    path = build_small_cache(tmp_path / "s.duckdb")
    with open_cache(path) as cache, cache.write() as cur:
        cur.execute(f"INSERT INTO {summaries.GROUPS_TABLE} SELECT group_id + 1000, * EXCLUDE (group_id) "
                    f"FROM {summaries.GROUPS_TABLE} WHERE group_id = 1")
    capsys.readouterr()
    assert cli.main(["--cache", str(path), "doctor"]) == 1
    assert capsys.readouterr().out.strip() == (
        "summary_groups: combinations of dimension columns with more than one group: 1")
    assert cli.main(["--cache", str(path), "doctor", "--fix"]) == 0
    capsys.readouterr()
    assert cli.main(["--cache", str(path), "doctor"]) == 0


# --- the property: random tag edits, rules, pools and re-imports keep summaries and charges equal ---------

START = dt.date(2026, 11, 1)
PERIOD = Period(START, START + dt.timedelta(days=6), "2026-11-01..2026-11-07", START)
RESOURCES = [f"/subscriptions/sub-{n % 2}/resourceGroups/rg-{n % 3}/providers/x/y/vm{n}" for n in range(6)]
TEAMS = ("payments", "search", None)

charge_strategy = st.builds(
    lambda day, n, team, cost, currency, service, region: Charge(
        START + dt.timedelta(days=day), RESOURCES[n] if n < len(RESOURCES) else None, cost,
        tags={"team": team} if team else None, currency=currency, service=service, billed=cost / 2,
        extra={"PricingCategory": region},
    ),
    st.integers(0, 5), st.integers(0, len(RESOURCES)), st.sampled_from(TEAMS),
    st.decimals(min_value=Decimal("-5"), max_value=Decimal("500"), places=6, allow_nan=False),
    st.sampled_from(("USD", "EUR")), st.sampled_from(("Virtual Machines", "Support")),
    st.sampled_from(("Standard", "Committed", None)),
)
operation = st.one_of(
    st.tuples(st.just("tag"), st.lists(st.integers(0, len(RESOURCES) - 1), min_size=1, max_size=4),
              st.sampled_from(("payments", "search", "new", None))),
    st.tuples(st.just("undo"), st.just(None), st.just(None)),
    st.tuples(st.just("rule"), st.sampled_from(("Support", "Virtual Machines")), st.sampled_from(("ruled", "other"))),
    st.tuples(st.just("pools"), st.booleans(), st.just(None)),
    st.tuples(st.just("window"), st.lists(charge_strategy, max_size=6), st.integers(0, 5)),
)


def _reimport(cache: object, charges: list[Charge], first_day: int) -> None:
    """A sync-like window write (no refresh_derived afterwards): days [first_day, first_day + 2) replaced."""
    start = START + dt.timedelta(days=first_day)
    with cache.write() as cur:  # type: ignore[attr-defined]
        sid = begin_window(cur, Window("focus-file", "test", "focus", start, start + dt.timedelta(days=2)))
        for c in charges:
            day = start + dt.timedelta(days=c.day.toordinal() % 2)
            cur.execute(
                """
                INSERT INTO charges (ChargePeriodStart, ChargePeriodEnd, x_ChargeDate, ResourceId, ServiceName,
                    SubAccountId, BillingCurrency, EffectiveCost, BilledCost, ChargeCategory, Tags, source_id)
                VALUES (?, ?, ?, ?, ?, 'sub-0', ?, ?, ?, 'Usage', ?, ?)
                """,
                [dt.datetime.combine(day, dt.time()), dt.datetime.combine(day, dt.time()) + dt.timedelta(days=1),
                 day, c.resource.lower() if c.resource else None, c.service, c.currency, c.cost, c.billed,
                 dict(c.tags) if c.tags else None, sid],
            )
        finish_window(cur, sid)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(charge_strategy, min_size=1, max_size=20), st.lists(operation, max_size=5))
def test_random_edits_rules_pools_and_reimports_keep_them_equal(charges: list[Charge],
                                                                operations: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        cache = load(Path(folder) / "c.duckdb", charges)
        policy = TagPolicy(pools=())
        try:
            for kind, first, second in operations:
                if kind == "tag":
                    with cache.cursor() as cur:
                        known = {r[0] for r in cur.execute("SELECT ResourceId FROM resources").fetchall()}
                    picked: list[int] = first  # type: ignore[assignment]
                    ids = [RESOURCES[i].lower() for i in picked if RESOURCES[i].lower() in known]
                    if ids:
                        apply_tags(cache, policy, ids, "team", second, push=False)  # type: ignore[arg-type]
                elif kind == "undo":
                    undo(cache, policy)
                elif kind == "rule":
                    policy = TagPolicy(rules=(Rule(set_tags={"team": str(second)}, service=str(first)),),
                                       pools=policy.pools)
                    reapply_rules(cache, policy)
                elif kind == "pools":
                    pools = (Pool("untagged", "team", "even", Rule(set_tags={}), unallocated=True, index=1),
                             Pool("support", "team", "proportional", Rule(set_tags={}, service="Support"), index=2))
                    policy = TagPolicy(rules=policy.rules, pools=pools if first else ())
                    reapply_rules(cache, policy)
                else:
                    _reimport(cache, first, second)  # type: ignore[arg-type]
                with cache.cursor() as cur:
                    assert summaries.differences(cur) == [], kind
            with cache.cursor() as cur:
                for metric in ("effective", "billed"):
                    for currency in ("USD", "EUR"):
                        for hierarchy in (["tag:team", "subscription", "resource-group"], ["service", "tag:team"]):
                            assert_same("tree", lambda h=hierarchy, m=metric, c=currency: tree.children(  # type: ignore[misc]
                                cur, h, [], PERIOD, m, c))
                    assert_same("overview", lambda m=metric: overview.overview(  # type: ignore[misc]
                        cur, PERIOD, m, shared=True))
        finally:
            cache.close()


def test_the_data_range_is_the_same_from_the_summary_as_from_charges(tmp_path: Path) -> None:
    path = build_small_cache(tmp_path / "s.duckdb")
    with open_cache(path) as cache:
        with cache.write() as cur:  # a replaced window leaves deleted rows; the last days go away
            cur.execute("DELETE FROM charges WHERE x_ChargeDate >= (SELECT max(x_ChargeDate) - 3 FROM charges)")
            summaries.rebuild(cur)
        with cache.cursor() as cur:
            assert summaries.current(cur) is not None
            from_summary = freshness(cur)
            with summaries.charges_only():
                from_charges = freshness(cur)
        assert from_summary == from_charges and from_summary.data_end is not None
        with cache.write() as cur:  # a write around the window functions: the summary is not trusted
            cur.execute("INSERT INTO charges SELECT * REPLACE (x_ChargeDate + 30 AS x_ChargeDate) FROM charges "
                        "ORDER BY x_ChargeDate DESC LIMIT 1")
        with cache.cursor() as cur:
            assert freshness(cur).data_end == from_charges.data_end + dt.timedelta(days=30)
