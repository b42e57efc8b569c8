"""Readers work while the explorer holds the cache; writes go through one writer; two writers get one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from finops_tui.errors import CacheLockedError
from finops_tui.store import cache as cache_module
from finops_tui.store import open_cache
from tests.report_helpers import build_small_cache


def _cli(*args: str, env_dir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FINOPS_TUI_CONFIG_DIR=str(env_dir / "config"), FINOPS_TUI_DATA_DIR=str(env_dir / "data"))
    return subprocess.run([sys.executable, "-m", "finops_tui", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def _total(cache_path: Path) -> str:
    with open_cache(cache_path, read_only=True) as cache, cache.cursor() as cur:
        row = cur.execute("SELECT sum(EffectiveCost) FROM charges WHERE BillingCurrency = 'USD'").fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return build_small_cache(tmp_path / "c.duckdb")


def test_report_runs_while_the_explorer_holds_the_cache(cache_path: Path, tmp_path: Path) -> None:
    with open_cache(cache_path, shared=True) as explorer:
        with explorer.cursor() as cur:
            cur.execute("SELECT count(*) FROM charges").fetchone()
        done = _cli("report", "allocation", "--by", "subscription", "--period", "all", "--format", "json",
                    "--cache", str(cache_path), env_dir=tmp_path)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["view"] == "allocation"
        listed = _cli("tags", "list", "--cache", str(cache_path), env_dir=tmp_path)
        assert listed.returncode == 0, listed.stderr


def test_the_explorer_writes_between_readers_and_sees_its_write(cache_path: Path) -> None:
    with open_cache(cache_path, shared=True) as explorer:
        with explorer.write() as cur:
            cur.execute("INSERT INTO recommendation_state VALUES ('r1', 'dismissed', NULL, NULL, now())")
        with explorer.cursor() as cur:
            assert cur.execute("SELECT state FROM recommendation_state").fetchall() == [("dismissed",)]
        # Between writes the file is read-only again: a second reader process opens it.
        reader = subprocess.run(
            [sys.executable, "-c", f"import duckdb; duckdb.connect({str(cache_path)!r}, read_only=True).close()"],
            capture_output=True, text=True, check=False, timeout=60,
        )
        assert reader.returncode == 0, reader.stderr


def test_a_write_waits_for_another_process_short_read(cache_path: Path) -> None:
    with open_cache(cache_path, shared=True) as explorer:
        # A report in another pane holds the file read-only while the user tags, and lets go half a second after
        # the write began (when its stdin closes: a fixed sleep there could end before a slow machine gets to the
        # write, which then would not wait at all).
        holder = subprocess.Popen(
            [sys.executable, "-c",
             f"import duckdb, sys; c = duckdb.connect({str(cache_path)!r}, read_only=True); print('held', flush=True);"
             " sys.stdin.read(); c.close()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert holder.stdin is not None
        release = threading.Timer(0.5, holder.stdin.close)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            started = time.monotonic()
            release.start()
            with explorer.write() as cur:
                cur.execute("INSERT INTO recommendation_state VALUES ('r2', 'dismissed', NULL, NULL, now())")
            assert time.monotonic() - started >= 0.5  # it waited for the reader instead of failing at once
        finally:
            release.cancel()
            holder.stdin.close()
            holder.wait(timeout=30)
        with explorer.cursor() as cur:
            assert cur.execute("SELECT rec_id FROM recommendation_state").fetchall() == [("r2",)]


def test_two_writers_get_one_line_naming_the_holder(cache_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(cache_path)!r}); print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(CacheLockedError, match=rf"in use by .* \(PID {holder.pid}\)"):
            open_cache(cache_path, wait=0.3)
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_cli_writer_waits_then_names_the_explorer(cache_path: Path, tmp_path: Path) -> None:
    with open_cache(cache_path, shared=True):
        started = time.monotonic()
        done = _cli("tags", "set", "--resource-group", "rg-1", "team=payments", "--cache", str(cache_path),
                    env_dir=tmp_path)
        assert done.returncode != 0
        assert "in use by" in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert time.monotonic() - started >= cache_module.LOCK_WAIT_SECONDS * 0.9


def test_a_write_waits_for_a_running_query_in_the_process(cache_path: Path) -> None:
    before = _total(cache_path)
    with open_cache(cache_path, shared=True) as explorer:
        reading = threading.Event()
        release = threading.Event()
        seen: list[object] = []

        def reader() -> None:
            with explorer.cursor() as cur:
                reading.set()
                release.wait(5)
                seen.append(cur.execute("SELECT count(*) FROM charges").fetchone())

        thread = threading.Thread(target=reader)
        thread.start()
        reading.wait(5)
        threading.Timer(0.2, release.set).start()
        with explorer.write() as cur:  # waits for the reader's cursor, then swaps to read-write
            cur.execute("INSERT INTO recommendation_state VALUES ('r3', 'snoozed', NULL, NULL, now())")
        thread.join(5)
        assert seen and seen[0] is not None
    assert _total(cache_path) == before


def test_write_inside_an_open_cursor_is_a_bug_caught_at_once(cache_path: Path) -> None:
    with open_cache(cache_path, shared=True) as explorer, explorer.cursor(), \
            pytest.raises(RuntimeError, match="holds a cursor"), explorer.write():
        pass


def test_a_failed_write_rolls_back_and_leaves_the_reader_working(cache_path: Path) -> None:
    with open_cache(cache_path, shared=True) as explorer:
        with pytest.raises(ValueError), explorer.write() as cur:
            cur.execute("DELETE FROM charges")
            raise ValueError("boom")
        with explorer.cursor() as cur:
            row = cur.execute("SELECT count(*) FROM charges").fetchone()
        assert row is not None and row[0] > 0
