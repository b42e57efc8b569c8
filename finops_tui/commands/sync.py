"""`finops-tui sync`: the headless sync (for cron) from the API, exports in storage or a FinOps hub; `--list-*`."""

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
from finops_tui.ingest.importer import import_in_transaction
from finops_tui.store.cache import cache_to_fill, open_cache
from finops_tui.sync import clients
from finops_tui.sync.engine import SyncOptions, SyncProgress, SyncResult, options_from_config, run_sync
from finops_tui.sync.exports import ExportOptions, ExportSyncResult, sync_exports
from finops_tui.sync.hub import HubOptions, planned_queries, sync_hub
from finops_tui.sync.sources import configured_sources, describe_sources
from finops_tui.sync.windows import METRICS
from finops_tui.textsafe import printable, printable_lines

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
        if p.state == "downloading" or p.state.startswith("downloaded "):
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


def _report_exports(result: ExportSyncResult, quiet: bool) -> int:
    for failure in result.failures:
        print(printable(f"finops-tui: {failure.scope}: {failure.error}"), file=sys.stderr)
    if not quiet or result.failures:
        print(
            f"exports: fetched {result.windows_done} run(s), {result.rows:,} rows, "
            f"{result.bytes_downloaded / 1024 / 1024:,.1f} MB; {result.windows_skipped} up to date; "
            f"{len(result.failures)} failed",
            file=sys.stderr,
        )
    if result.cancelled:
        return 130
    return 3 if result.failures else 0


def _dry_run(result: ExportSyncResult) -> int:
    for line in result.planned:
        print(printable(f"would fetch {line}"))
    if not result.planned:
        print("nothing new to fetch")
    return 0


def _hub_dry_run(cache: Any, options: HubOptions, config: Config) -> int:
    planned = planned_queries(cache, options, load_tag_policy(config))
    for window, query in planned:
        print(printable(f"-- would query {options.url} for {window.start:%Y-%m}:"))
        print(printable_lines(query))
    if not planned:
        print("hub: every month is up to date; nothing to query")
    return 0


def export_options(args: argparse.Namespace, config: Config, urls: list[str], origin: str) -> ExportOptions:
    credential_mode = "device-code" if args.device_code else config.credential
    return ExportOptions(urls, importer=import_in_transaction, credential_mode=credential_mode,
                         dry_run=args.dry_run, origin=origin)


def hub_options(args: argparse.Namespace, config: Config, url: str, filters: list[str], origin: str) -> HubOptions:
    months = args.months if args.months is not None else config.sync_months
    credential_mode = "device-code" if args.device_code else config.credential
    return HubOptions(url, filters=filters, months=months, credential_mode=credential_mode, origin=origin,
                      arm_endpoint=args.arm_endpoint or config.arm_endpoint)


def _list_sources(cache_path: Path, config: Config, args: argparse.Namespace) -> int:
    sources = configured_sources(
        scopes=list(args.scope or config.scopes), exports=list(args.exports or config.exports),
        hub=args.hub or config.hub, hub_filters=list(args.hub_filters or config.hub_filters),
    )
    if not sources:
        print("no sources configured: set [sync] scopes, exports or hub in config.toml, or pass --scope, --export "
              "or --hub", file=sys.stderr)
        return 0
    if cache_path.exists():
        with open_cache(cache_path, read_only=True) as cache, cache.cursor() as cur:
            lines = describe_sources(cur, sources)
    else:
        lines = describe_sources(None, sources)
    for line in lines:
        print(printable(line))
    return 0


def run_sync_command(args: argparse.Namespace, cache_path: Path, config: Config) -> int:
    options = options_from(args, config)
    if args.list_scopes:
        return _list_scopes(options)
    if args.list_sources:
        return _list_sources(cache_path, config, args)
    # Sources named on the command line are the run; without any, every source config.toml names.
    explicit = bool(args.scope or args.exports or args.hub)
    scopes = options.scopes if args.scope or not explicit else []
    exports, exports_origin = (list(args.exports or []), "--export") if explicit else \
        (list(config.exports), "[sync] exports")
    hub, hub_origin = (args.hub, "--hub") if explicit else (config.hub, "[sync] hub")
    filters = list(args.hub_filters or ([] if explicit else config.hub_filters))
    if args.hub_filters and not hub:
        raise UserError("--hub-filter needs a hub: pass --hub URL or set [sync] hub in config.toml")
    if not (scopes or exports or hub):
        raise UserError("no scope to sync: pass --scope /subscriptions/ID (see --list-scopes), --export URL or "
                        "--hub URL, or set sync.scopes, sync.exports or sync.hub")
    if args.dry_run:
        if not (exports or hub):
            raise UserError("--dry-run lists what an export or hub sync would fetch: pass --export URL or --hub URL")
        code = 0
        with open_cache(cache_path) if cache_path.exists() else _memory_cache() as cache:
            if exports:
                result = sync_exports(cache, export_options(args, config, exports, exports_origin),
                                      load_tag_policy(config))
                code = _dry_run(result)
            if hub:
                code = max(code, _hub_dry_run(cache, hub_options(args, config, hub, filters, hub_origin), config))
        return code
    policy = load_tag_policy(config)
    progress = None if args.quiet else _ProgressPrinter()
    codes = []
    with cache_to_fill(cache_path) as cache:
        if scopes:
            api = run_sync(cache, options, policy, progress=progress)
            codes.append(_report(api, args.quiet))
        if exports:
            fetched = sync_exports(cache, export_options(args, config, exports, exports_origin), policy,
                                   progress=progress)
            codes.append(_report_exports(fetched, args.quiet))
        if hub:
            pulled = sync_hub(cache, hub_options(args, config, hub, filters, hub_origin), policy, progress=progress)
            codes.append(_report(pulled, args.quiet))
    return 130 if 130 in codes else max(codes)


def _memory_cache() -> Any:
    """A throwaway in-memory cache: a dry run against a cache that does not exist yet creates none."""
    return open_cache(None)
