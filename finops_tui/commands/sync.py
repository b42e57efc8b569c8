"""`finops-tui sync`: the headless sync (for cron) and `--list-scopes`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from finops_tui import azure
from finops_tui.allocation.effective import load_tag_policy
from finops_tui.config import Config
from finops_tui.errors import UserError
from finops_tui.store.cache import cache_to_fill
from finops_tui.sync import clients
from finops_tui.sync.engine import SyncOptions, SyncProgress, SyncResult, options_from_config, run_sync
from finops_tui.sync.windows import METRICS
from finops_tui.textsafe import printable

PROGRESS_EVERY_SECONDS = 5.0


def options_from(args: argparse.Namespace, config: Config) -> SyncOptions:
    """The command line over config.toml's [sync] table over the defaults."""
    overrides: dict[str, Any] = {
        "metrics": METRICS if args.metric == "both" else (args.metric,),
        "api_path": args.api_path,
    }
    if args.scope:
        overrides["scopes"] = list(args.scope)
    if args.months is not None:
        overrides["months"] = args.months
    if args.arm_endpoint:
        overrides["arm_endpoint"] = args.arm_endpoint
    if args.device_code:
        overrides["credential_mode"] = "device-code"
    return options_from_config(config, **overrides)


class _ProgressPrinter:
    """One line per event on stderr; download progress at most every few seconds (cron logs stay short)."""

    def __init__(self) -> None:
        self._last_download = 0.0

    def __call__(self, p: SyncProgress) -> None:
        if p.state == "downloading":
            now = time.monotonic()
            if now - self._last_download < PROGRESS_EVERY_SECONDS:
                return
            self._last_download = now
            state = f"downloading, {p.rows:,} rows so far"
        elif p.state == "written":
            state = f"{p.rows:,} rows written"
        else:
            state = p.state
        where = p.scope + (f" {p.window:%Y-%m} {p.metric}" if p.window and p.metric else "")
        counter = f"[{p.windows_done}/{p.windows_total}] " if p.windows_total else ""
        print(printable(f"{counter}{where}: {state}"), file=sys.stderr, flush=True)


def _list_scopes(options: SyncOptions) -> int:
    endpoint = azure.parse_endpoint(options.arm_endpoint)
    credential = azure.make_credential(options.credential_mode, endpoint=endpoint)
    azure.check_signed_in(credential, endpoint, options.credential_mode)
    client = clients.arm_client(credential, endpoint, clients.SyncMonitor())
    subscriptions = sorted(clients.list_subscriptions(client, endpoint), key=lambda s: s.name.lower())
    if not subscriptions:
        print("no subscriptions visible to this sign-in", file=sys.stderr)
        return 0
    # Names and states come from the server: shown as text, never as terminal escapes.
    names = [printable(s.name) for s in subscriptions]
    width = max(len(name) for name in names)
    for name, sub in zip(names, subscriptions, strict=True):
        print(f"{name:<{width}}  {printable(sub.state):<9}  {printable(sub.scope)}")
    return 0


def _report(result: SyncResult, quiet: bool) -> int:
    for warning in result.warnings:
        print(f"finops-tui: warning: {printable(warning)}", file=sys.stderr)
    for failure in result.failures:
        print(
            printable(f"finops-tui: {failure.scope} {failure.window:%Y-%m} {failure.metric}: {failure.error}"),
            file=sys.stderr,
        )
    if not quiet or result.failures:
        throttled = f", throttled {result.throttled_seconds:.0f} s" if result.throttle_events else ""
        print(
            f"synced {result.windows_done} window(s), {result.rows:,} rows; {result.windows_skipped} up to date; "
            f"{len(result.failures)} failed; {result.api_calls} API calls{throttled}",
            file=sys.stderr,
        )
    if result.cancelled:
        return 130
    return 3 if result.failures else 0


def run_sync_command(args: argparse.Namespace, cache_path: Path, config: Config) -> int:
    options = options_from(args, config)
    if args.list_scopes:
        return _list_scopes(options)
    if not options.scopes:
        raise UserError("no scope to sync: pass --scope /subscriptions/ID (see --list-scopes) or set sync.scopes")
    policy = load_tag_policy(config)
    with cache_to_fill(cache_path) as cache:
        result = run_sync(cache, options, policy, progress=None if args.quiet else _ProgressPrinter())
    return _report(result, args.quiet)
