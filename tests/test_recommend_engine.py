"""The engine: ranking, dismiss/snooze/note state across reopen, stable ids, last results, and the report."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from finops_tui import clock
from finops_tui.commands.report import recommendations_report
from finops_tui.config import Config
from finops_tui.recommend import engine
from finops_tui.recommend.engine import RecFilter, dismiss, last_results, note, refresh, restore, run_all, snooze
from finops_tui.recommend.model import Context, decode, encode
from finops_tui.store import Cache, open_cache
from tests._recommend_data import END, Res, add, build, steady


def _estate() -> list[Res]:
    stopped_on = END - dt.timedelta(days=30)
    return [
        Res("vm-1", steady(100)),
        Res("vm-2", steady(120, seed=2), rg="rg-untagged", tags={}),
        Res("vm-old", lambda d: 100.0 if d <= stopped_on else None, rg="rg-stopped", tags={"team": "search"}),
        Res("disk-old", lambda d: 8.0, rg="rg-stopped", rtype="Disk", service="Storage", tags={"team": "search"}),
        Res("vm-3", steady(50, seed=3), tags={"Team": "payment"}),
    ]


def _ctx(cache: Cache) -> Context:
    with cache.cursor() as cur:
        ctx = Context.from_cache(cur)
    assert ctx is not None
    return ctx


def test_ranked_by_money_and_filters(tmp_path: Path) -> None:
    with build(tmp_path / "c.duckdb", _estate()) as cache, cache.cursor() as cur:
        ctx = _ctx(cache)
        recs = run_all(cur, ctx)
        assert len(recs) >= 3
        impacts = [r.monthly_impact for r in recs]
        assert impacts == sorted(impacts, reverse=True)
        kinds = {r.kind for r in recs}
        assert {"unallocated-spend", "stopped-compute", "tag-key-variants", "tag-value-variants"} <= kinds
        only = run_all(cur, ctx, RecFilter(kinds=frozenset({"stopped-compute"})))
        assert [r.kind for r in only] == ["stopped-compute"]
        assert [r.team for r in run_all(cur, ctx, RecFilter(team="SEARCH"))] == ["search"]
        big = run_all(cur, ctx, RecFilter(min_impact=Decimal(1000)))
        assert big and all(r.monthly_impact >= 1000 for r in big)


def test_dismiss_snooze_and_notes_persist_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "c.duckdb"
    clock.pin(dt.date(2026, 4, 2))
    try:
        with build(path, _estate()) as cache, cache.cursor() as cur:
            recs = run_all(cur, _ctx(cache))
            first, second, third = recs[0], recs[1], recs[2]
            dismiss(cur, first.id)
            assert snooze(cur, second.id, 7) == dt.date(2026, 4, 9)
            note(cur, third.id, "owner asked, waiting for reply")
            note(cur, first.id, "known: migration")
        with open_cache(path) as cache, cache.cursor() as cur:
            ctx = _ctx(cache)
            shown = {r.id: r for r in run_all(cur, ctx)}
            assert first.id not in shown and second.id not in shown
            assert shown[third.id].note == "owner asked, waiting for reply" and shown[third.id].state == "noted"
            everything = {r.id: r for r in run_all(cur, ctx, RecFilter(include_dismissed=True,
                                                                          include_snoozed=True))}
            assert everything[first.id].state == "dismissed" and everything[first.id].note == "known: migration"
            assert everything[second.id].snoozed_until == dt.date(2026, 4, 9)
            # The snooze runs out on its day.
            clock.pin(dt.date(2026, 4, 9))
            assert second.id in {r.id for r in run_all(cur, ctx)}
            restore(cur, first.id)
            restored = {r.id: r for r in run_all(cur, ctx)}[first.id]
            assert restored.state == "noted" and restored.note == "known: migration"
            note(cur, first.id, "")
            left = cur.execute("SELECT count(*) FROM recommendation_state WHERE rec_id = ?", [first.id]).fetchone()
            assert left == (0,)
    finally:
        clock.pin(None)


def test_ids_are_stable_across_reimport(tmp_path: Path) -> None:
    with build(tmp_path / "a.duckdb", _estate()) as cache, cache.cursor() as cur:
        before = [(r.id, r.kind, r.monthly_impact) for r in run_all(cur, _ctx(cache))]
        cur.execute("DELETE FROM charges")
    with open_cache(tmp_path / "a.duckdb") as cache:
        add(cache, _estate())
        with cache.cursor() as cur:
            after = [(r.id, r.kind, r.monthly_impact) for r in run_all(cur, _ctx(cache))]
    with build(tmp_path / "b.duckdb", list(reversed(_estate()))) as cache, cache.cursor() as cur:
        elsewhere = [(r.id, r.kind, r.monthly_impact) for r in run_all(cur, _ctx(cache))]
    assert before == after == elsewhere


def test_last_results_survive_reopen_with_current_state(tmp_path: Path) -> None:
    path = tmp_path / "c.duckdb"
    with build(path, _estate()) as cache:
        with cache.cursor() as cur:
            assert last_results(cur) is None
        result = refresh(cache, _ctx(cache))
        assert result.recommendations and set(result.timings_ms) == set(engine.GENERATORS)
        with cache.write() as cur:
            dismiss(cur, result.recommendations[0].id)
    with open_cache(path) as cache, cache.cursor() as cur:
        last = last_results(cur)
        assert last is not None and last.data_end == END and last.hidden == 1
        assert last.recommendations == [r for r in result.recommendations[1:]]


def test_payload_round_trip_is_lossless(tmp_path: Path) -> None:
    with build(tmp_path / "c.duckdb", _estate()) as cache, cache.cursor() as cur:
        for rec in run_all(cur, _ctx(cache)):
            assert decode(encode(rec)) == rec


def _args(fmt: str, **extra: object) -> argparse.Namespace:
    base = {"format": fmt, "currency": None, "top": None, "metric": "effective", "period": "mtd"}
    return argparse.Namespace(**(base | extra))


def test_report_formats_match_the_screen_order(tmp_path: Path) -> None:
    with build(tmp_path / "c.duckdb", _estate()) as cache:
        with cache.cursor() as cur:
            screen = run_all(cur, _ctx(cache))
        doc = json.loads(recommendations_report(cache, _args("json"), Config()))
        assert [r["id"] for r in doc["recommendations"]] == [r.id for r in screen]
        assert doc["data_end"] == END.isoformat()
        first = doc["recommendations"][0]
        assert first["monthly_impact"] == str(screen[0].monthly_impact.quantize(Decimal("0.01")))
        assert isinstance(first["jump"]["path"], list)
        rows = list(csv.reader(io.StringIO(recommendations_report(cache, _args("csv"), Config()))))
        assert rows[0][:2] == ["#", "Impact / month"] and len(rows) == len(screen) + 1
        assert [row[6] for row in rows[1:]] == [r.title for r in screen]
        table = recommendations_report(cache, _args("table", top=2), Config())
        assert screen[0].title in table and screen[2].title not in table
        assert recommendations_report(cache, _args("md"), Config()).count("\n| ") == len(screen) + 1


def test_report_on_an_empty_cache(tmp_path: Path) -> None:
    with open_cache(tmp_path / "empty.duckdb") as cache:
        assert json.loads(recommendations_report(cache, _args("json"), Config()))["recommendations"] == []
        assert "no cost data" in recommendations_report(cache, _args("table"), Config())


def test_the_recommend_package_never_imports_textual() -> None:
    code = (
        "import sys; import finops_tui.commands.report, finops_tui.recommend.engine; "
        "sys.exit(1 if any(m == 'textual' or m.startswith('textual.') for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
