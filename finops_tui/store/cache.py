"""The one DuckDB connection per process, its cursors and transactions."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from finops_tui import clock
from finops_tui.errors import CacheLockedError, CacheTooNewError, UserError
from finops_tui.store.schema import MIGRATIONS, SCHEMA_VERSION

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")


class Cache:
    """One open cache file. Every thread works through its own `cursor()`; never share one."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None) -> None:
        self._con = con
        self.path = path
        self._lock = threading.Lock()
        self._open_cursors: set[duckdb.DuckDBPyConnection] = set()

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor for this thread, closed afterwards (DuckDB connections are not thread-safe)."""
        with self._lock:
            cur = self._con.cursor()
            self._open_cursors.add(cur)
        try:
            yield cur
        finally:
            with self._lock:
                self._open_cursors.discard(cur)
            cur.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor inside BEGIN … COMMIT; any exception rolls everything back."""
        with self.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def schema_version(self) -> int:
        with self.cursor() as cur:
            return _current_version(cur)

    def is_empty(self) -> bool:
        with self.cursor() as cur:
            row = cur.execute("SELECT count(*) FROM (SELECT 1 FROM charges LIMIT 1)").fetchone()
            return row is None or row[0] == 0

    def close(self) -> None:
        with self._lock:
            for cur in list(self._open_cursors):
                with suppress(duckdb.Error):
                    cur.interrupt()
        self._con.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _current_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchone()
    if not exists or exists[0] == 0:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _migrate(con: duckdb.DuckDBPyConnection, path: Path | None) -> None:
    version = _current_version(con)
    if version > SCHEMA_VERSION:
        raise CacheTooNewError(
            f"{path or 'cache'}: written by a newer finops-tui (schema {version}, this version reads "
            f"up to {SCHEMA_VERSION}); upgrade finops-tui or open another cache with --cache PATH"
        )
    while version < SCHEMA_VERSION:
        con.execute("BEGIN TRANSACTION")
        try:
            MIGRATIONS[version](con)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?)", [version + 1, clock.now()]
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        version += 1


def open_cache(path: Path | str | None, *, read_only: bool = False) -> Cache:
    """Open (creating and migrating if needed) the cache at `path`; None opens an in-memory cache.

    A file held by another process raises CacheLockedError naming that process.
    """
    resolved = Path(path).expanduser() if path is not None else None
    if resolved is not None and not read_only:
        resolved.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(resolved) if resolved else ":memory:", read_only=read_only)
    except duckdb.IOException as exc:
        match = _LOCK_HOLDER.search(str(exc))
        if match:
            raise CacheLockedError(
                f"{resolved}: in use by {Path(match['exe']).name} (PID {match['pid']}); close that "
                "finops-tui first, or open a copy with --cache PATH"
            ) from None
        if resolved is not None and read_only and not resolved.exists():
            raise UserError(f"{resolved}: no such cache file; import data or run `finops-tui demo`") from None
        raise UserError(f"{resolved}: cannot open the cache ({exc}); check the path and its permissions") from None
    except duckdb.Error as exc:
        raise UserError(
            f"{resolved}: not a finops-tui cache ({str(exc).splitlines()[0]}); pass another file with --cache PATH"
        ) from None
    try:
        if not read_only:
            _migrate(con, resolved)
        elif _current_version(con) > SCHEMA_VERSION:
            _migrate(con, resolved)  # raises CacheTooNewError
    except BaseException:
        con.close()
        raise
    return Cache(con, resolved)


def utc_now() -> dt.datetime:
    return clock.now()
