"""`finops-tui report chargeback --month YYYY-MM`: per recipient and currency, direct cost, each shared cost
pool's share, total, previous month and change; and applying shared.toml to a cache before a report reads it."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path

from finops_tui.allocation.effective import load_tag_policy
from finops_tui.allocation.shared import apply_pools, pools_are_current
from finops_tui.basis.metrics import METRIC_TITLES
from finops_tui.basis.periods import resolve_period
from finops_tui.commands.render import render_rows, to_json
from finops_tui.config import Config
from finops_tui.report.chargeback import (
    chargeback,
    chargeback_csv,
    chargeback_document,
    chargeback_table,
    parse_month,
)
from finops_tui.store import Cache, open_cache

ZERO = Decimal(0)


def apply_changed_pools(cache_path: Path, config: Config) -> bool:
    """Apply shared.toml to the cache when it changed since the cache last applied it (one short write).

    Reports read the pools' derived tables; a shared.toml edited by hand would otherwise go unseen until
    the next import, sync or tag edit. True when it applied them.
    """
    pools = load_tag_policy(config).pools
    with open_cache(cache_path, read_only=True) as cache, cache.cursor() as cur:
        if pools_are_current(cur, pools):
            return False
    with open_cache(cache_path) as cache:
        apply_pools(cache, pools)
    print("finops-tui: shared.toml changed since this cache applied it; applied now", file=sys.stderr)
    return True


def chargeback_report(cache: Cache, args: argparse.Namespace, config: Config) -> str:
    """`report chargeback`: `--month` (default: the last full month of the data), any format."""
    with cache.cursor() as cur:
        if args.month:
            month = parse_month(args.month)
        else:
            period, _ = resolve_period(cur, "last-month")
            month = period.start.strftime("%Y-%m")
        report = chargeback(cur, month, args.metric, config.team_key, args.currency)
    if args.format == "json":
        return to_json(chargeback_document(report)) + "\n"
    if args.format == "csv":
        return chargeback_csv(report)
    columns, rows = chargeback_table(report, for_csv=False)
    pool_names = [p.name for p in report.pools]
    title = (f"Chargeback {report.month} by {report.key}, {METRIC_TITLES[report.metric]}; "
             f"shared cost pools: {', '.join(pool_names) or 'none (see shared.toml)'}")
    if not rows:
        return title + "\n\nNo cost in this month.\n"
    return render_rows(columns, rows, args.format, title=title)
