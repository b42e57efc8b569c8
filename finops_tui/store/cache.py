"""The one DuckDB connection per process, its cursors and transactions."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from finops_tui import clock, paths
from finops_tui.errors import CacheLockedError, CacheTooNewError, UserError
from finops_tui.store.schema import MIGRATIONS, SCHEMA_VERSION

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")


LOCK_WAIT_SECONDS = 10.0  # a writer or reader waits this long for another process's short write
READER_DRAIN_SECONDS = 2.0  # a write waits this long for running queries before interrupting them
_RETRY_SECONDS = 0.05


class Cache:
    """One open cache file. Every thread works through its own `cursor()`; never share one.

    Every write goes through `write()`: one process-wide lock and one transaction. A *shared* cache (the
    explorer's) holds the file read-only between writes, so `report` and other readers in other processes
    work while it is open; `write()` takes the file's write lock only for the length of the write.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None, *, shared: bool = False) -> None:
        self._con = con
        self.path = path
        self.shared = shared and path is not None
        self._state = threading.Condition()
        self._open_cursors: dict[duckdb.DuckDBPyConnection, int] = {}  # cursor -> thread that holds it
        self._reconnecting = False
        self._writer = threading.RLock()
        self._write_depth = 0
        self._thread = threading.local()  # .writing: this thread is inside write()

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor for this thread, closed afterwards (DuckDB connections are not thread-safe)."""
        with self._state:
            while self._reconnecting:
                self._state.wait()
            cur = self._con.cursor()
            self._open_cursors[cur] = threading.get_ident()
        try:
            yield cur
        finally:
            cur.close()
            with self._state:
                self._open_cursors.pop(cur, None)
                self._state.notify_all()

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The one write path: a cursor inside BEGIN … COMMIT, one write at a time in this process.

        Any exception rolls everything back. A nested `write()` on the same thread joins the outer one's
        lock but runs its own transaction. On a shared cache the file is reopened read-write for the write
        and read-only after it (waiting up to LOCK_WAIT_SECONDS for another process's short write).
        """
        with self._state:
            if not getattr(self._thread, "writing", False) and threading.get_ident() in self._open_cursors.values():
                # The swap to a read-write connection would wait on this thread's own cursor forever.
                raise RuntimeError("write() while this thread holds a cursor: return the cursor first")
        with self._writer:
            self._write_depth += 1
            switch = self.shared and self._write_depth == 1
            outer = not getattr(self._thread, "writing", False)
            self._thread.writing = True
            try:
                if switch:
                    self._reconnect(read_only=False)
                try:
                    with self._transaction() as cur:
                        yield cur
                finally:
                    if switch:
                        self._reconnect(read_only=True)
            finally:
                self._write_depth -= 1
                if outer:
                    self._thread.writing = False

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def _reconnect(self, *, read_only: bool) -> None:
        """Swap the connection for one in the other mode once running queries have returned their cursors."""
        assert self.path is not None
        with self._state:
            self._reconnecting = True
            try:
                deadline = time.monotonic() + READER_DRAIN_SECONDS
                while self._open_cursors:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        # A long read (a prefetch) must not hold a write up: its worker sees the interrupt
                        # as a cancelled query, as when the user moves on.
                        for cur in list(self._open_cursors):
                            with suppress(duckdb.Error):
                                cur.interrupt()
                        deadline = time.monotonic() + READER_DRAIN_SECONDS
                        remaining = READER_DRAIN_SECONDS
                    self._state.wait(remaining)
                self._con.close()
                try:
                    self._con = _connect(self.path, read_only=read_only, wait=LOCK_WAIT_SECONDS)
                except BaseException:
                    if not read_only:  # keep a working read-only connection for the reads that follow
                        self._con = _connect(self.path, read_only=True, wait=LOCK_WAIT_SECONDS)
                    raise
            finally:
                self._reconnecting = False
                self._state.notify_all()

    def schema_version(self) -> int:
        with self.cursor() as cur:
            return _current_version(cur)

    def is_empty(self) -> bool:
        with self.cursor() as cur:
            row = cur.execute("SELECT count(*) FROM (SELECT 1 FROM charges LIMIT 1)").fetchone()
            return row is None or row[0] == 0

    def close(self) -> None:
        with self._state:
            for cur in list(self._open_cursors):
                with suppress(duckdb.Error):
                    cur.interrupt()
        self._con.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _use_utc(con: duckdb.DuckDBPyConnection) -> None:
    """Stored timestamps are naive UTC: aware values and TIMESTAMPTZ casts must not shift to local time.

    Set GLOBAL once per connection: its cursors inherit it (a plain SET would hold for one cursor only).
    """
    con.execute("SET GLOBAL TimeZone = 'UTC'")


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


def _connect(path: Path | None, *, read_only: bool, wait: float = 0.0) -> duckdb.DuckDBPyConnection:
    """Connect, retrying for `wait` seconds while another process holds a conflicting lock on the file."""
    deadline = time.monotonic() + wait
    while True:
        try:
            con = duckdb.connect(str(path) if path else ":memory:", read_only=read_only)
        except duckdb.IOException as exc:
            match = _LOCK_HOLDER.search(str(exc))
            if match:
                if time.monotonic() < deadline:
                    time.sleep(_RETRY_SECONDS)
                    continue
                raise CacheLockedError(
                    f"{path}: in use by {Path(match['exe']).name} (PID {match['pid']}); close that "
                    "finops-tui first, or open a copy with --cache PATH"
                ) from None
            if path is not None and read_only and not path.exists():
                raise UserError(f"{path}: no such cache file; import data or run `finops-tui demo`") from None
            raise UserError(f"{path}: cannot open the cache ({exc}); check the path and its permissions") from None
        except duckdb.Error as exc:
            raise UserError(
                f"{path}: not a finops-tui cache ({str(exc).splitlines()[0]}); pass another file with --cache PATH"
            ) from None
        try:
            _use_utc(con)
        except BaseException:
            con.close()
            raise
        return con


def open_cache(
    path: Path | str | None, *, read_only: bool = False, shared: bool = False, wait: float = LOCK_WAIT_SECONDS
) -> Cache:
    """Open (creating and migrating if needed) the cache at `path`; None opens an in-memory cache.

    `read_only` never writes (a reader such as `report`); `shared` creates and migrates, then holds the
    file read-only between writes (the explorer). Another process's lock is waited for `wait` seconds (a
    short write ends by then); a file still held raises CacheLockedError naming that process.
    """
    resolved = Path(path).expanduser() if path is not None else None
    creating = resolved is not None and not resolved.exists()
    # A shared cache that exists opens read-only straight away: the explorer's start takes no write lock.
    read_only_now = read_only or (shared and resolved is not None and not creating)
    if resolved is not None and not read_only_now:
        paths.ensure_private_parent(resolved)
    con = _connect(resolved, read_only=read_only_now, wait=wait)
    if creating and resolved is not None and not read_only_now:
        paths.make_private(resolved)  # cost data: not readable by other local users, whatever the umask
    try:
        if not read_only_now:
            _migrate(con, resolved)
        else:
            version = _current_version(con)
            if version > SCHEMA_VERSION:
                _migrate(con, resolved)  # raises CacheTooNewError
            elif version < SCHEMA_VERSION:
                # An older cache: migrate it once through a short read-write open, then read it as asked.
                con.close()
                with open_cache(resolved, wait=wait):
                    pass
                con = _connect(resolved, read_only=True, wait=wait)
    except BaseException:
        con.close()
        raise
    if shared and resolved is not None and not read_only_now:  # just created: read-only from now on
        con.close()
        con = _connect(resolved, read_only=True, wait=wait)
    return Cache(con, resolved, shared=shared)


@contextmanager
def cache_to_fill(path: Path) -> Iterator[Cache]:
    """Open the cache for a command that fills it (import, sync), creating it if needed.

    A file this call created is removed again when it still holds no cost afterwards (the command failed,
    or found nothing): a failed first import or sync leaves no empty cache behind for `report` to read.
    An interrupted command that wrote some windows keeps them.
    """
    resolved = Path(path).expanduser()
    created = not resolved.exists()
    cache = open_cache(resolved)
    try:
        yield cache
    finally:
        remove = created and _holds_no_cost(cache)
        cache.close()
        if remove:
            for leftover in (resolved, resolved.with_name(resolved.name + ".wal")):
                leftover.unlink(missing_ok=True)


def _holds_no_cost(cache: Cache) -> bool:
    try:
        return cache.is_empty()
    except duckdb.Error:
        return False  # cannot tell: keep the file
