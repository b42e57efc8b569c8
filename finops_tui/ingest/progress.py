"""Progress of a long load on stderr: percent, rows/s and ETA from DuckDB's query progress."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TextIO

import duckdb

_QUIET_FOR = 1.0  # seconds before a load is worth a progress line
_POLL_EVERY = 0.25
_LINE_EVERY_NON_TTY = 5.0  # a log file gets a line now and then, not a spinner


class Reporter(Protocol):
    """Where the importer tells what it does (stderr for the CLI; nothing for tests and benchmarks)."""

    def note(self, message: str) -> None: ...

    def watch(
        self, cur: duckdb.DuckDBPyConnection, label: str, estimated_rows: int | None
    ) -> AbstractContextManager[None]: ...


class SilentReporter:
    def note(self, message: str) -> None:
        pass

    @contextmanager
    def watch(self, cur: duckdb.DuckDBPyConnection, label: str, estimated_rows: int | None) -> Iterator[None]:
        yield


class StderrReporter:
    """Notes always; progress only for loads that take more than a second, and never when quiet."""

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None, verb: str = "importing") -> None:
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.verb = verb  # the progress line's first word: importing, exporting

    def note(self, message: str) -> None:
        print(f"finops-tui: {message}", file=self.stream, flush=True)

    @contextmanager
    def watch(self, cur: duckdb.DuckDBPyConnection, label: str, estimated_rows: int | None) -> Iterator[None]:
        if self.quiet:
            yield
            return
        cur.execute("SET enable_progress_bar = true")
        cur.execute("SET enable_progress_bar_print = false")
        done = threading.Event()
        thread = threading.Thread(
            target=self._poll, args=(cur, label, estimated_rows, done), name="import-progress", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _poll(self, cur: duckdb.DuckDBPyConnection, label: str, rows: int | None, done: threading.Event) -> None:
        started = time.monotonic()
        tty = self.stream.isatty()
        shown = False
        last_line = 0.0
        while not done.wait(_POLL_EVERY):
            elapsed = time.monotonic() - started
            if elapsed < _QUIET_FOR:
                continue
            try:
                percent = cur.query_progress()
            except duckdb.Error:
                break
            if percent < 0:
                continue
            if not tty and elapsed - last_line < _LINE_EVERY_NON_TTY:
                continue
            line = _progress_line(f"{self.verb} {label}", percent, elapsed, rows)
            self.stream.write(f"\r{line}\x1b[K" if tty else f"{line}\n")
            self.stream.flush()
            shown, last_line = True, elapsed
        if shown and tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _progress_line(label: str, percent: float, elapsed: float, rows: int | None) -> str:
    fraction = max(min(percent / 100.0, 1.0), 1e-6)
    eta = elapsed * (1 - fraction) / fraction
    parts = [f"{label}: {percent:5.1f}%"]
    if rows:
        parts.append(f"~{rows * fraction / elapsed / 1000:,.0f}k rows/s")
    parts.append(f"ETA {eta:,.0f} s")
    return " · ".join(parts)
