"""Running read models inside thread workers: one cursor per call, interruptible by a newer request."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any, TypeVar, cast

import duckdb
from textual.worker import Worker, get_current_worker

from finops_tui.store import Cache

T = TypeVar("T")


class QuerySuperseded(Exception):
    """The worker running this query was cancelled: a newer request replaced it."""


class GuardedCursor:
    """A cursor that refuses to start another statement once its worker is cancelled.

    `cursor.interrupt()` only stops the statement running at that instant; a read model that runs
    several statements would carry on with the next one. Checking the worker before each statement
    closes that gap, so a superseded request stops within one statement.
    """

    def __init__(self, cursor: duckdb.DuckDBPyConnection, worker: Worker[Any]) -> None:
        self._cursor = cursor
        self._worker = worker

    def execute(self, query: object, parameters: object = None) -> duckdb.DuckDBPyConnection:
        if self._worker.is_cancelled:
            raise QuerySuperseded
        return self._cursor.execute(query, parameters)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class QueryGate:
    """The running query of one screen: a newer request interrupts it on *its own* cursor.

    Use from a `@work(thread=True, exclusive=True, ...)` method: `result = gate.run(cache, fn)`
    returns None when the worker was superseded (never post a stale result); any other error
    propagates to the worker, which routes it to the app's error handler.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Worker[Any], duckdb.DuckDBPyConnection] = {}

    def interrupt_cancelled(self) -> None:
        """Stop the statements of cancelled workers (interrupting the parent connection would do nothing).

        Cancel the workers first (`workers.cancel_group`), then call this, then start the new worker:
        a worker interrupted before it was flagged would report the interruption as an error.
        """
        with self._lock:
            cursors = [cursor for worker, cursor in self._running.items() if worker.is_cancelled]
        for cursor in cursors:
            with suppress(duckdb.Error):
                cursor.interrupt()

    def run(self, cache: Cache, query: Callable[[duckdb.DuckDBPyConnection], T]) -> T | None:
        worker = get_current_worker()
        with cache.cursor() as cursor:
            with self._lock:
                self._running[worker] = cursor
            try:
                if worker.is_cancelled:
                    return None
                result = query(cast(duckdb.DuckDBPyConnection, GuardedCursor(cursor, worker)))
            except (QuerySuperseded, duckdb.InterruptException):
                if worker.is_cancelled:
                    return None
                raise
            finally:
                with self._lock:
                    self._running.pop(worker, None)
        return None if worker.is_cancelled else result
