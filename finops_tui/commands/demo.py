"""`finops-tui demo`: build (or reuse) the demo cache and print its summary; cli.py then opens the explorer."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from finops_tui import clock
from finops_tui.allocation.effective import load_tag_policy
from finops_tui.config import load_config_or_defaults
from finops_tui.errors import UsageError
from finops_tui.ingest.demo import DEFAULT_RESOURCES, DemoParams, build_demo, existing_summary

MAX_MONTHS = 36


def default_end() -> dt.date:
    """Yesterday: the last complete day a real sync would have."""
    return clock.today() - dt.timedelta(days=1)


def demo_params(args: argparse.Namespace) -> DemoParams:
    """Validated build parameters from the command line."""
    if args.end is None:
        end = default_end()
    else:
        try:
            end = dt.date.fromisoformat(args.end)
        except ValueError:
            raise UsageError(f"--end {args.end!r}: not a date; use YYYY-MM-DD, e.g. --end 2026-11-26") from None
    if not 1 <= args.months <= MAX_MONTHS:
        raise UsageError(f"--months {args.months}: use 1 to {MAX_MONTHS}")
    if args.rows is not None and args.rows < 1:
        raise UsageError(f"--rows {args.rows}: use a positive number of rows, e.g. --rows 1000000")
    return DemoParams(end=end, months=args.months, rows=args.rows, seed=args.seed)


def run_demo(args: argparse.Namespace, cache_path: Path) -> int:
    params = demo_params(args)
    # Even with --force: this refuses to replace a file that holds real cost data.
    existing = existing_summary(cache_path, params)
    summary = None if args.force else existing
    if summary is None:
        if not args.quiet:
            size = f"~{params.rows:,} rows" if params.rows else f"~{DEFAULT_RESOURCES:,} resources"
            print(f"building the demo estate ({params.months} months to {params.end}, {size}) into {cache_path} …",
                  file=sys.stderr, flush=True)
        # The explorer opens the demo on the default settings when config.toml is broken, so the build does too.
        policy = load_tag_policy(load_config_or_defaults()[0])
        summary = build_demo(
            cache_path, policy, end=params.end, months=params.months, rows=params.rows, seed=params.seed
        )
    # Printed before the explorer opens too: it stays in the terminal once the explorer quits.
    print(summary.describe(), flush=True)
    return 0
