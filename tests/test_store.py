"""The cache file: creation, migrations, refusal of newer caches, locks, transactions, windows."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finops_tui.cli import main
from finops_tui.errors import CacheLockedError, CacheTooNewError
from finops_tui.store import SCHEMA_VERSION, open_cache
from finops_tui.store.sources import Window, begin_window, finish_window, freshness


def _insert_day(cur: duckdb.DuckDBPyConnection, source_id: int, day: str, cost: str) -> None:
    cur.execute(
        "INSERT INTO charges (ChargePeriodStart, x_ChargeDate, BillingCurrency, EffectiveCost, BilledCost, source_id)"
        " VALUES (?::TIMESTAMP, ?::DATE, 'USD', ?::DECIMAL(38,12), ?::DECIMAL(38,12), ?)",
        [day, day, cost, cost, source_id],
    )


def test_new_cache_is_at_current_version(tmp_path: Path) -> None:
    with open_cache(tmp_path / "c.duckdb") as cache:
        assert cache.schema_version() == SCHEMA_VERSION
        assert cache.is_empty()
        with cache.cursor() as cur:
            types = dict(cur.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'charges'"
            ).fetchall())
    assert types["EffectiveCost"] == "DECIMAL(38,12)"
    assert types["Tags"] == "MAP(VARCHAR, VARCHAR)"


def test_reopening_keeps_data_and_version(tmp_path: Path) -> None:
    path = tmp_path / "c.duckdb"
    with open_cache(path) as cache, cache.write() as cur:
        sid = begin_window(cur, Window("focus-file", "acct", "focus", dt.date(2026, 1, 1), dt.date(2026, 1, 2)))
        _insert_day(cur, sid, "2026-01-01", "1.25")
        finish_window(cur, sid)
    with open_cache(path) as cache, cache.cursor() as cur:
        assert cur.execute("SELECT sum(EffectiveCost) FROM charges").fetchone() == (Decimal("1.25"),)
        # one row per migration step a fresh cache went through
        assert cur.execute("SELECT count(*) FROM schema_version").fetchone() == (SCHEMA_VERSION,)


def test_a_version_1_cache_gains_the_focus_1_3_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    from finops_tui.store.schema import ALLOCATION_COLUMNS, MIGRATIONS

    path = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(path))
    MIGRATIONS[0](con)  # a cache as finops-tui 0.1 left it
    con.execute("INSERT INTO schema_version VALUES (1, now())")
    con.execute("INSERT INTO charges (x_ChargeDate, EffectiveCost, BillingCurrency) VALUES ('2026-01-01', 2.5, 'USD')")
    con.close()
    with open_cache(path) as cache, cache.cursor() as cur:
        assert cache.schema_version() == SCHEMA_VERSION
        names = [r[0] for r in cur.execute("SELECT column_name FROM information_schema.columns "
                                           "WHERE table_name = 'charges'").fetchall()]
        # Right after the version 1 columns (later migrations, e.g. the shared-pool marker, append their own).
        first = names.index(ALLOCATION_COLUMNS[0][0])
        assert names[first:first + len(ALLOCATION_COLUMNS)] == [name for name, _ in ALLOCATION_COLUMNS]
        assert cur.execute("SELECT EffectiveCost, AllocatedResourceId FROM charges").fetchall() == [
            (Decimal("2.5"), None)
        ]


def test_newer_cache_is_refused_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.duckdb"
    open_cache(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION + 5])
    con.close()
    with pytest.raises(CacheTooNewError, match="newer finops-tui"):
        open_cache(path)
    assert main(["report", "overview", "--cache", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "newer finops-tui" in err


def test_second_process_gets_the_holder_named(tmp_path: Path) -> None:
    path = tmp_path / "c.duckdb"
    with open_cache(path):
        result = subprocess.run(
            [sys.executable, "-m", "finops_tui", "report", "overview", "--cache", str(path)],
            capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "in use by" in result.stderr and "PID" in result.stderr
    assert result.stderr.count("\n") == 1


def test_locked_error_in_process_names_pid(tmp_path: Path) -> None:
    path = tmp_path / "c.duckdb"
    code = (
        f"from finops_tui.store import open_cache; import time; c = open_cache({str(path)!r}); "
        "print('ok', flush=True); time.sleep(30)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(CacheLockedError, match=f"PID {holder.pid}"):
            open_cache(path)
    finally:
        holder.kill()
        holder.wait()


def test_failed_transaction_leaves_cache_unchanged(tmp_path: Path) -> None:
    with open_cache(tmp_path / "c.duckdb") as cache:
        with pytest.raises(RuntimeError), cache.write() as cur:
            sid = begin_window(cur, Window("focus-file", "acct", "focus", dt.date(2026, 1, 1), dt.date(2026, 1, 2)))
            _insert_day(cur, sid, "2026-01-01", "5")
            raise RuntimeError("interrupted")
        with cache.cursor() as cur:
            assert cur.execute("SELECT count(*) FROM charges").fetchone() == (0,)
            assert cur.execute("SELECT count(*) FROM sources").fetchone() == (0,)


def test_window_replaces_same_scope_and_metric_only(tmp_path: Path) -> None:
    jan = (dt.date(2026, 1, 1), dt.date(2026, 2, 1))
    with open_cache(tmp_path / "c.duckdb") as cache:
        for cost in ("10", "12"):  # a newer export of the same month replaces the first
            with cache.write() as cur:
                sid = begin_window(cur, Window("azure-export", "ACCT", "actual", *jan))
                _insert_day(cur, sid, "2026-01-05", cost)
                finish_window(cur, sid)
        with cache.write() as cur:  # another metric of the same scope is kept beside it
            sid = begin_window(cur, Window("azure-export", "acct", "amortized", *jan))
            _insert_day(cur, sid, "2026-01-05", "7")
            finish_window(cur, sid)
        with cache.cursor() as cur:
            rows = cur.execute(
                "SELECT s.metric, sum(c.EffectiveCost) FROM charges c JOIN sources s USING (source_id) "
                "GROUP BY 1 ORDER BY 1"
            ).fetchall()
            assert rows == [("actual", Decimal("12")), ("amortized", Decimal("7"))]
            assert cur.execute("SELECT count(*) FROM sources").fetchone() == (2,)
            fresh = freshness(cur)
    assert fresh.data_end == dt.date(2026, 1, 5)
    assert fresh.last_kind == "azure-export"


def test_not_a_cache_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("hello, I am not a database\n" * 100)
    assert main(["report", "overview", "--cache", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("finops-tui: ") and err.count("\n") == 1 and str(path) in err


def test_older_cache_is_upgraded_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from finops_tui.store import cache as cache_module
    from finops_tui.store import schema

    path = tmp_path / "c.duckdb"
    with open_cache(path) as cache, cache.write() as cur:
        sid = begin_window(cur, Window("focus-file", "acct", "focus", dt.date(2026, 1, 1), dt.date(2026, 1, 2)))
        _insert_day(cur, sid, "2026-01-01", "3.50")
        finish_window(cur, sid)

    def add_note_column(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("ALTER TABLE sources ADD COLUMN note VARCHAR DEFAULT 'migrated'")

    monkeypatch.setattr(cache_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(schema.MIGRATIONS, SCHEMA_VERSION, add_note_column)
    with open_cache(path) as cache, cache.cursor() as cur:
        assert cache.schema_version() == SCHEMA_VERSION + 1
        assert cur.execute("SELECT note FROM sources").fetchall() == [("migrated",)]
        assert cur.execute("SELECT sum(EffectiveCost) FROM charges").fetchone() == (Decimal("3.50"),)
