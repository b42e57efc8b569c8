"""`finops-tui doctor`: recompute the summary tables from `charges` and report any difference (`--fix` rebuilds)."""

from __future__ import annotations

import argparse
from pathlib import Path

from finops_tui.commands.report import open_existing_cache
from finops_tui.config import Config
from finops_tui.store import summaries
from finops_tui.store.tag_sets import missing_tag_sets
from finops_tui.textsafe import printable


def run_doctor(args: argparse.Namespace, cache_path: Path, config: Config) -> int:
    """Print one line per difference and return 1, else "summaries match" and 0. Read-only unless `--fix`."""
    if args.fix:
        with open_existing_cache(cache_path, read_only=False) as cache, cache.write() as cur:
            summaries.rebuild(cur, config.team_key)
            row = cur.execute("SELECT count(*), coalesce(sum(row_count), 0) FROM daily_summary").fetchone()
        held, rows = row if row else (0, 0)
        print(f"summaries rebuilt: {held:,} summary rows over {rows:,} charge rows (tag key {config.team_key.lower()})")
        return 0
    with open_existing_cache(cache_path) as cache, cache.cursor() as cur:
        problems = summaries.differences(cur, limit=args.limit) + missing_tag_sets(cur, limit=args.limit)
    for line in problems:
        print(printable(line))
    if problems:
        return 1
    print("summaries match")
    return 0
