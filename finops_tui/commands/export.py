"""`finops-tui export focus OUT`: a period's charges as a FOCUS file with effective tags (1.3: pools' split rows)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

from finops_tui.allocation.effective import load_tag_policy
from finops_tui.allocation.shared import apply_pools
from finops_tui.basis.periods import Period, resolve_period
from finops_tui.commands.chargeback import apply_changed_pools
from finops_tui.commands.report import FILL_HINT, open_existing_cache
from finops_tui.config import Config
from finops_tui.errors import UsageError, UserError
from finops_tui.ingest.progress import StderrReporter
from finops_tui.report.focus_export import (
    FileFormat,
    FocusVersion,
    StaleSplit,
    has_shared_pools,
    stale_shared_splits,
    write_focus,
)

_FORMAT_BY_SUFFIX: dict[str, FileFormat] = {".parquet": "parquet", ".csv": "csv"}


def run_export(args: argparse.Namespace, cache_path: Path, config: Config) -> int:
    out = Path(args.out).expanduser()
    file_format = export_format(out, args.format)
    check_destination(out)
    version = cast(FocusVersion, args.focus_version)
    reporter = StderrReporter(quiet=args.quiet, verb="exporting")
    if version == "1.3" and cache_path.exists():
        apply_changed_pools(cache_path, config)  # the split rows follow shared.toml, as `report --shared` does
    shared = False
    stale: StaleSplit | None = None
    with open_existing_cache(cache_path) as cache:
        if cache.is_empty():
            raise UserError(f"no data yet: {cache_path} holds no cost; {FILL_HINT}")
        with cache.cursor() as cur:
            period, _fresh = resolve_period(cur, args.period)
            # `all` covers every row, also one a future import dates outside the data's bounds.
            bounds = None if period.spec == "all" else period
            if has_shared_pools(cur):
                if version == "1.2" and not args.quiet:
                    reporter.note("FOCUS 1.2 has no allocation columns: shared cost pools are not applied (each row "
                                  "stays with its resource); --version 1.3 adds their split rows")
                elif version == "1.3":
                    shared = True
                    stale = stale_shared_splits(cur, bounds)
    if shared and stale is not None:
        _reapply(cache_path, config, stale, bounds, reporter)
    with open_existing_cache(cache_path) as cache, cache.cursor() as cur:
        rows = cur.execute(
            "SELECT count(*) FROM charges WHERE x_ChargeDate >= ? AND x_ChargeDate < ?", [period.start, period.end]
        ).fetchone()
        estimate = int(rows[0]) if rows else None
        with reporter.watch(cur, f"FOCUS {version} {file_format}", estimate):
            result = write_focus(cur, out, version, bounds, file_format=file_format, shared=shared)
    if not args.quiet:
        split = " with shared cost pools as split rows" if shared else ""
        reporter.note(
            f"exported {result.rows:,} rows ({period.describe()}) as FOCUS {version} {file_format}{split} to {out} "
            f"in {result.seconds:.1f} s"
        )
    return 0


def _reapply(
    cache_path: Path, config: Config, stale: StaleSplit, bounds: Period | None, reporter: StderrReporter
) -> None:
    """Shares that no longer sum to their pool's rows are derived again (one write); if that does not mend them,
    the export is refused in one line rather than written with totals that do not foot."""
    with open_existing_cache(cache_path, read_only=False) as cache:
        apply_pools(cache, load_tag_policy(config).pools)
        with cache.cursor() as cur:
            still = stale_shared_splits(cur, bounds)
    if still is not None:
        raise UserError(
            f"{cache_path}: shared cost pool {still.pool!r} on {still.day} in {still.currency}: its split shares sum "
            f"to {still.shares[0]} but its rows to {still.rows[0]} (EffectiveCost); re-apply the pools (save "
            "shared.toml again) and export again"
        )
    reporter.note(f"shared cost pool {stale.pool!r} was out of date in {cache_path} ({stale.day}, {stale.currency}); "
                  "applied the pools again")


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
