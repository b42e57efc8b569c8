"""Rollups: the smaller summary tables summed from daily_summary equal `charges` to the cent, and answer where they can.

They are checked on a demo cache where a fifth of the rows are provider splits (the case they exist for), through
every write that maintains the summary: the full rebuild, a window re-import (settle), a tag edit and its undo
(in place, with and without a pool whose rows move), and the upgrade of a cache that has none yet.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finops_tui import cli
from finops_tui.allocation.effective import TagPolicy
from finops_tui.allocation.journal import apply_tags, undo
from finops_tui.allocation.rules import Rule
from finops_tui.allocation.shared import Pool, apply_pools
from finops_tui.basis.dimensions import dimension, labelled_for_cache
from finops_tui.report import overview, tree
from finops_tui.report.sources import source_for
from finops_tui.store import open_cache, summaries
from finops_tui.store.sources import Window, begin_window, finish_window
from tests.allocation_data import fresh_copy
from tests.splits_data import SPLIT_DEMO_END, split_demo
from tests.summaries_check import as_wide_summary_cache, check_cache, check_overview, check_tree, periods_of

DEMO_END = SPLIT_DEMO_END
TODAY = DEMO_END + dt.timedelta(days=1)
pytestmark = pytest.mark.today(TODAY)
ROLLUP_TABLES = [r.table for r in summaries.ROLLUPS]


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return split_demo(tmp_path_factory.mktemp("split") / "split.duckdb")


def assert_rollups_equal_charges(cur: duckdb.DuckDBPyConnection) -> None:
    """Each rollup, row for row, equals `charges` grouped by its columns (an independent SQL sum), and
    `differences` (what `doctor` runs) finds nothing."""
    tag_key = summaries.stored_tag_key(cur)
    for rollup in summaries.ROLLUPS:
        columns = ", ".join(rollup.columns)
        grouped = ", ".join("t.tag_value" if c == summaries.TAG_COLUMN else f"c.{c}" for c in rollup.columns)
        expected = cur.execute(
            f"""
            SELECT {grouped}, sum(c.EffectiveCost), sum(c.BilledCost), count(*)
            FROM charges c LEFT JOIN resource_tags t ON t.resource_key = c.x_ResourceKey AND t.tag_key = ?
            WHERE c.x_ChargeDate IS NOT NULL GROUP BY ALL ORDER BY ALL
            """,
            [tag_key],
        ).fetchall()
        stored = cur.execute(
            f"SELECT {columns}, EffectiveCost, BilledCost, row_count FROM {rollup.table} ORDER BY ALL"
        ).fetchall()
        assert stored == expected, rollup.table
    assert summaries.differences(cur) == []


def test_each_rollup_is_smaller_and_equals_charges(split: Path) -> None:
    with open_cache(split, read_only=True) as cache, cache.cursor() as cur:
        assert_rollups_equal_charges(cur)
        summary_rows = (cur.execute("SELECT count(*) FROM daily_summary").fetchone() or (0,))[0]
        charge_rows = (cur.execute("SELECT count(*) FROM charges").fetchone() or (0,))[0]
        for table in ROLLUP_TABLES:
            held, counted = cur.execute(f"SELECT count(*), sum(row_count) FROM {table}").fetchone() or (0, 0)
            assert counted == charge_rows and held < summary_rows, table
        # The team rollup is what makes team levels cheap on a split cache: far fewer rows than the summary.
        team_rows = (cur.execute(f"SELECT count(*) FROM {ROLLUP_TABLES[0]}").fetchone() or (0,))[0]
        assert team_rows * 10 < summary_rows


def test_the_smallest_table_that_answers_is_chosen(split: Path) -> None:
    with open_cache(split, read_only=True) as cache, cache.cursor() as cur:
        def table(*names: str, tag_keys: tuple[str, ...] = ()) -> str:
            dims = labelled_for_cache(cur, [dimension(n) for n in names])
            return source_for(cur, dims, tag_keys=tag_keys).table

        by_team, no_team, team_groups = ROLLUP_TABLES
        assert table() == by_team  # totals, daily series, forecast: day and currency only
        assert table("tag:team") == by_team
        assert table(tag_keys=("team",)) == by_team
        assert table("service") == no_team
        assert table("region", "resource-type", "commitment", "pricing-category") == no_team
        assert table("tag:team", "subscription") == team_groups
        assert table("tag:team", "subscription", "resource-group") == team_groups
        assert table("tag:team", "service") == summaries.SUMMARY_TABLE
        assert table("tag:env") == "charges"
        assert table("tag:team", "resource") == "charges"


def test_read_models_over_rollups_equal_charges_with_split_rows(split: Path) -> None:
    with open_cache(split, read_only=True) as cache:
        assert check_cache(cache, TODAY, periods=("mtd", "last-month"), tree_depth=3) > 100


def test_tag_edits_and_undo_keep_every_rollup_true(split: Path, tmp_path: Path) -> None:
    with open_cache(fresh_copy(split, tmp_path)) as cache:
        with cache.cursor() as cur:
            # Workloads (split rows' consumers) and hosts alike: both move cost between teams.
            workloads = [r[0] for r in cur.execute(
                "SELECT ResourceId FROM resources WHERE ResourceId LIKE '%/workloads/%' ORDER BY ResourceId LIMIT 40"
            ).fetchall()]
            hosts = [r[0] for r in cur.execute(
                "SELECT ResourceId FROM resources WHERE ResourceId NOT LIKE '%/workloads/%' ORDER BY ResourceId "
                "LIMIT 40").fetchall()]
        policy = TagPolicy()
        apply_tags(cache, policy, workloads + hosts, "team", "rollups-team", push=False)
        with cache.cursor() as cur:
            assert_rollups_equal_charges(cur)
            period = periods_of(cur, TODAY, ["last-month"])[0]
            rows = overview.breakdown(cur, dimension("tag:team"), period, "effective")
            assert any(r.key == "rollups-team" for r in rows)
            check_overview(cur, period, "effective")
        undo(cache, policy)
        with cache.cursor() as cur:
            assert_rollups_equal_charges(cur)


def test_a_tag_edit_that_moves_pooled_rows_keeps_every_rollup_true(split: Path, tmp_path: Path) -> None:
    with open_cache(fresh_copy(split, tmp_path)) as cache:
        pools = (Pool("untagged", "team", "even", Rule(set_tags={}), unallocated=True, index=1),)
        apply_pools(cache, list(pools))
        with cache.cursor() as cur:
            assert_rollups_equal_charges(cur)
            untagged = [r[0] for r in cur.execute(
                "SELECT ResourceId FROM resources WHERE ResourceId NOT IN "
                "(SELECT ResourceId FROM resource_tags WHERE tag_key = 'team') ORDER BY ResourceId LIMIT 20"
            ).fetchall()]
        assert untagged
        policy = TagPolicy(pools=pools)
        apply_tags(cache, policy, untagged, "team", "claimed", push=False)  # their rows leave the pool
        with cache.cursor() as cur:
            assert_rollups_equal_charges(cur)
            period = periods_of(cur, TODAY, ["mtd"])[0]
            check_tree(cur, period, "effective", depth=2)
        undo(cache, policy)
        with cache.cursor() as cur:
            assert_rollups_equal_charges(cur)


def test_a_window_reimport_settles_every_rollup(split: Path, tmp_path: Path) -> None:
    with open_cache(fresh_copy(split, tmp_path)) as cache:
        start = DEMO_END - dt.timedelta(days=3)
        with cache.write() as cur:
            sid = begin_window(cur, Window("focus-file", "rollups", "focus", start, start + dt.timedelta(days=2)))
            cur.execute(
                """
                INSERT INTO charges (ChargePeriodStart, ChargePeriodEnd, x_ChargeDate, ResourceId, ServiceName,
                    SubAccountId, BillingCurrency, EffectiveCost, BilledCost, ChargeCategory, source_id)
                VALUES (?, ?, ?, NULL, 'Support', 'sub-new', 'USD', 12.345678901234, 10, 'Usage', ?)
                """,
                [dt.datetime.combine(start, dt.time()), dt.datetime.combine(start, dt.time()) + dt.timedelta(days=1),
                 start, sid],
            )
            finish_window(cur, sid)
        with cache.cursor() as cur:
            assert_rollups_equal_charges(cur)
            period = periods_of(cur, TODAY, ["mtd"])[0]
            total = overview.currency_totals(cur, period, "effective")
            assert source_for(cur).table == ROLLUP_TABLES[0]
            exact = cur.execute(
                "SELECT sum(EffectiveCost) FROM charges WHERE BillingCurrency = 'USD' "
                "AND x_ChargeDate >= ? AND x_ChargeDate < ?", [period.start, period.end]).fetchone()
            assert exact is not None and next(t.cost for t in total if t.currency == "USD") == exact[0]
            assert exact[0] % Decimal("0.000000000001") == 0


def test_doctor_names_a_rollup_that_differs_and_fix_rebuilds_it(split: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = fresh_copy(split, tmp_path)
    with open_cache(path) as cache, cache.write() as cur:
        stored = summaries.ROLLUPS[1].stored  # the no-team rollup's rows, by group
        cur.execute(f"UPDATE {stored} SET BilledCost = BilledCost + 0.01 "
                    f"WHERE x_ChargeDate = (SELECT max(x_ChargeDate) FROM {stored})")
    assert cli.main(["--cache", str(path), "doctor"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out and all(line.startswith(f"{ROLLUP_TABLES[1]} 2026-11-26 ") for line in out)
    assert cli.main(["--cache", str(path), "doctor", "--fix"]) == 0
    capsys.readouterr()
    assert cli.main(["--cache", str(path), "doctor"]) == 0


def test_a_cache_without_rollups_gets_them_on_upgrade(split: Path, tmp_path: Path) -> None:
    path = fresh_copy(split, tmp_path)
    con = duckdb.connect(str(path))
    as_wide_summary_cache(con)
    for table in ROLLUP_TABLES:
        con.execute(f"DROP TABLE {table}")
    con.execute("DELETE FROM schema_version WHERE version >= 7")
    con.close()
    with open_cache(path, read_only=True) as cache, cache.cursor() as cur:  # reading it migrates it first
        assert_rollups_equal_charges(cur)
        assert source_for(cur, [dimension("tag:team")]).table == ROLLUP_TABLES[0]


def test_one_read_model_call_reads_the_summary_state_once(split: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[object] = []
    read_state = summaries._read_state

    def counted(cur: duckdb.DuckDBPyConnection) -> summaries.SummaryState | None:
        reads.append(cur)
        return read_state(cur)

    monkeypatch.setattr(summaries, "_read_state", counted)
    with open_cache(split, read_only=True) as cache, cache.cursor() as cur:
        period = periods_of(cur, TODAY, ["mtd"])[0]
        reads.clear()
        overview.overview(cur, period, "effective", shared=True, extra_breakdowns=("tag:env",))
        assert len(reads) == 1
        reads.clear()
        tree.children(cur, ["tag:team", "subscription"], [], period, "effective")
        assert len(reads) == 1
        reads.clear()
        tree.allocation_tree(cur, ["tag:team", "subscription"], period, "effective")
        assert len(reads) == 1
        with summaries.charges_only():  # the equality guard still reads charges inside a pinned call
            assert not source_for(cur).is_summary


@pytest.mark.parametrize("row_group_rows", [100, 10_000_000])
def test_a_rollup_is_filled_in_day_order_when_it_spans_row_groups(
    split: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, row_group_rows: int
) -> None:
    """Sorted by day when the table may hold more than one row group (so a period's read skips the others); a table
    within one row group has one day range whatever its order, so it is left unsorted. Either way, equal to charges."""
    monkeypatch.setattr(summaries, "ROW_GROUP_ROWS", row_group_rows)
    with open_cache(fresh_copy(split, tmp_path)) as cache:
        with cache.write() as cur:
            summaries.fill_rollups(cur)
        with cache.cursor() as cur:
            assert_rollups_equal_charges(cur)
            for rollup in summaries.ROLLUPS:  # in the order the rows are kept
                kept = cur.execute(f"SELECT x_ChargeDate FROM {rollup.stored} ORDER BY rowid").fetchall()
                days = [day for day, in kept]
                assert len(days) > 100
                assert (days == sorted(days)) or row_group_rows > len(days), rollup.table
