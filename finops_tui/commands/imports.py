"""`finops-tui import PATH...`: load cost files into the cache and print one summary line per file."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from finops_tui.allocation.effective import load_tag_policy
from finops_tui.config import Config
from finops_tui.errors import UserError
from finops_tui.ingest.importer import import_paths
from finops_tui.ingest.progress import StderrReporter
from finops_tui.store.cache import cache_to_fill
from finops_tui.textsafe import printable, printable_lines


class _PrintableReporter(StderrReporter):
    """Notes name files and quote their fields: shown as text, never as terminal escapes."""

    def note(self, message: str) -> None:
        # The skipped-rows listing is several lines of its own; control characters from the data are escaped.
        super().note(printable_lines(message))

    @contextmanager
    def watch(self, cur: duckdb.DuckDBPyConnection, label: str, estimated_rows: int | None) -> Iterator[None]:
        with super().watch(cur, printable(label), estimated_rows):
            yield


def run_import(args: argparse.Namespace, cache_path: Path, config: Config) -> int:
    """Import `args.paths`; exit 0 when everything was imported, 1 when a file had to be skipped."""
    reporter = _PrintableReporter(quiet=args.quiet)
    policy = load_tag_policy(config)
    with cache_to_fill(cache_path) as cache:
        try:
            outcome = import_paths(
                cache, policy, list(args.paths), skip_bad_rows=args.skip_bad_rows, reporter=reporter
            )
        except duckdb.Error as exc:
            # The transaction rolled back; say so in one line rather than with a traceback.
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(
                f"import failed, the cache is unchanged ({first_line}); check the files, or report this with them"
            ) from None
    for result in outcome.results:
        print(printable(result.summary()))
    return 1 if outcome.skipped_files else 0
