"""`finops-tui export focus OUT`: every charge of a period as a FOCUS Parquet or CSV file, with effective tags."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

from finops_tui.basis.periods import resolve_period
from finops_tui.commands.report import FILL_HINT, open_existing_cache
from finops_tui.config import Config
from finops_tui.errors import UsageError, UserError
from finops_tui.ingest.progress import StderrReporter
from finops_tui.report.focus_export import FileFormat, FocusVersion, write_focus

_FORMAT_BY_SUFFIX: dict[str, FileFormat] = {".parquet": "parquet", ".csv": "csv"}


def run_export(args: argparse.Namespace, cache_path: Path, config: Config) -> int:
    del config  # the export carries the effective tags as the cache holds them; no setting changes a row
    out = Path(args.out).expanduser()
    file_format = export_format(out, args.format)
    check_destination(out)
    version = cast(FocusVersion, args.focus_version)
    reporter = StderrReporter(quiet=args.quiet, verb="exporting")
    with open_existing_cache(cache_path) as cache:
        if cache.is_empty():
            raise UserError(f"no data yet: {cache_path} holds no cost; {FILL_HINT}")
        with cache.cursor() as cur:
            period, _fresh = resolve_period(cur, args.period)
            rows = cur.execute(
                "SELECT count(*) FROM charges WHERE x_ChargeDate >= ? AND x_ChargeDate < ?", [period.start, period.end]
            ).fetchone()
            estimate = int(rows[0]) if rows else None
            with reporter.watch(cur, f"FOCUS {version} {file_format}", estimate):
                # `all` covers every row, also one a future import dates outside the data's bounds.
                result = write_focus(
                    cur, out, version, None if period.spec == "all" else period, file_format=file_format
                )
    if not args.quiet:
        reporter.note(
            f"exported {result.rows:,} charge rows ({period.describe()}) as FOCUS {version} {file_format} to {out} "
            f"in {result.seconds:.1f} s"
        )
    return 0


def export_format(out: Path, requested: str | None) -> FileFormat:
    """`--format`, else OUT's suffix; a suffix that says otherwise is one line (a .csv full of Parquet misleads)."""
    by_suffix = _FORMAT_BY_SUFFIX.get(out.suffix.lower())
    if requested is None:
        if by_suffix is None:
            raise UsageError(f"{out}: name the file .parquet or .csv, or pass --format parquet|csv")
        return by_suffix
    if by_suffix is not None and by_suffix != requested:
        raise UsageError(f"{out}: the name says {by_suffix} but --format is {requested}; rename OUT or drop --format")
    return cast(FileFormat, requested)


def check_destination(out: Path) -> None:
    if out.is_dir():
        raise UserError(f"{out}: is a folder; name the file to write, e.g. {out / 'focus.parquet'}")
    if not out.parent.is_dir():
        raise UserError(f"{out}: the folder {out.parent} does not exist; create it first")
