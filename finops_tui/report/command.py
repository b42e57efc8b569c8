"""`finops-tui report VIEW`: open the cache, run the view's read model, print it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from finops_tui.errors import UserError
from finops_tui.store import Cache, open_cache
from finops_tui.textsafe import printable_lines

FILL_HINT = "run `finops-tui import FILE`, `finops-tui sync` or `finops-tui demo`"


def open_existing_cache(cache_path: Path, *, read_only: bool = True) -> Cache:
    """Open a cache that must already exist (never creates an empty file); readers open it read-only."""
    if not cache_path.exists():
        raise UserError(f"no data yet: {cache_path} does not exist; {FILL_HINT}")
    return open_cache(cache_path, read_only=read_only)  # a reader works while the explorer is open


def check_currency(cache: Cache, currency: str) -> str:
    """`--currency` as the cache spells it (upper case); a currency the cache does not hold is one line."""
    code = currency.strip().upper()
    with cache.cursor() as cur:
        held = [r[0] for r in cur.execute(
            "SELECT DISTINCT BillingCurrency FROM charges WHERE BillingCurrency IS NOT NULL ORDER BY 1"
        ).fetchall()]
    if code not in held:
        raise UserError(f"--currency {currency}: the cache holds no cost in {code}, only in {', '.join(held)}")
    return code


def run_report(args: argparse.Namespace, cache_path: Path) -> int:
    with open_existing_cache(cache_path) as cache:
        if cache.is_empty():
            raise UserError(f"no data yet: {cache_path} holds no cost; {FILL_HINT}")
        if args.currency:
            args.currency = check_currency(cache, args.currency)
        if args.view == "overview":
            from finops_tui.report.overview import overview_report

            text = overview_report(cache, args)
        elif args.view == "allocation":
            from finops_tui.report.allocation import allocation_report

            text = allocation_report(cache, args)
        else:
            from finops_tui.recommend.report import recommendations_report

            text = recommendations_report(cache, args)
    # Cells are escaped where they are rendered; this also covers headers and notes. CSV keeps the data.
    sys.stdout.write(text if args.format == "csv" else printable_lines(text))
    return 0
