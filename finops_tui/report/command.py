"""`finops-tui report VIEW`: open the cache, run the view's read model, print it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from finops_tui.errors import UserError
from finops_tui.store import Cache, open_cache


def open_existing_cache(cache_path: Path) -> Cache:
    if not cache_path.exists():
        raise UserError(
            f"{cache_path}: no cache yet; run `finops-tui import FILE`, `finops-tui sync` or `finops-tui demo`"
        )
    return open_cache(cache_path)


def run_report(args: argparse.Namespace, cache_path: Path) -> int:
    with open_existing_cache(cache_path) as cache:
        if args.view == "overview":
            from finops_tui.report.overview import overview_report

            text = overview_report(cache, args)
        elif args.view == "allocation":
            from finops_tui.report.allocation import allocation_report

            text = allocation_report(cache, args)
        else:
            from finops_tui.recommend.report import recommendations_report

            text = recommendations_report(cache, args)
    sys.stdout.write(text)
    return 0
