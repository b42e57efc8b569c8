"""Command line: parses arguments, then opens the explorer or runs one headless command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from finops_tui import __version__, paths
from finops_tui.config import load_config
from finops_tui.errors import UserError
from finops_tui.textsafe import printable

REPORT_FORMATS = ["table", "csv", "json", "md"]
REPORT_VIEWS = ("overview", "allocation", "recommendations", "chargeback", "explain", "commitments")


def _add_cache_arg(parser: argparse.ArgumentParser, default_help: str = "the default cache") -> None:
    """`--cache` on this parser too, so global options work after a subcommand and its action.

    Subparsers leave the attribute alone unless given (SUPPRESS): their default would otherwise
    overwrite a `--cache` given before the subcommand.
    """
    parser.add_argument(
        "--cache", type=Path, default=argparse.SUPPRESS, metavar="PATH",
        help=f"cache file to use (default: {default_help})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finops-tui", description="Keyboard-driven terminal explorer for cloud cost (Azure first)."
    )
    parser.add_argument("--version", action="version", version=f"finops-tui {__version__}")
    _add_cache_arg(parser, str(paths.default_cache_path()))
    parser.set_defaults(cache=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="build the synthetic demo estate into its own cache and open it")
    _add_cache_arg(demo, str(paths.demo_cache_path()))
    demo.add_argument("--months", type=int, default=13, help="months of daily cost (default 13)")
    demo.add_argument("--rows", type=int, default=None, help="scale to about N cost rows (benchmarks)")
    demo.add_argument("--end", default=None, metavar="YYYY-MM-DD", help="last day of data (default: yesterday)")
    demo.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    demo.add_argument("--no-open", action="store_true", help="only build the cache and print a summary")
    demo.add_argument("--force", action="store_true", help="rebuild even if the demo cache exists")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")

    imp = sub.add_parser("import", help="import FOCUS or Azure cost export files into the cache")
    _add_cache_arg(imp)
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="file or export directory")
    imp.add_argument("--skip-bad-rows", action="store_true", help="import the good rows and list the bad ones")
    imp.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")

    rep = sub.add_parser(
        "report", help="print a view headless (overview, allocation, recommendations, chargeback, explain, commitments)"
    )
    _add_cache_arg(rep)
    rep.add_argument("view", choices=list(REPORT_VIEWS))
    rep.add_argument("--period", default="mtd", help="START..END (END exclusive), mtd, last-month, 30d, 90d, all")
    rep.add_argument("--metric", choices=["effective", "billed"], default="effective")
    rep.add_argument("--format", choices=REPORT_FORMATS, default="table")
    rep.add_argument("--by", default=None, help="overview: extra breakdown (tag:KEY); allocation: levels")
    rep.add_argument("--depth", type=int, default=None, help="allocation: levels to print")
    rep.add_argument("--currency", default=None, help="only this billing currency")
    rep.add_argument("--top", type=int, default=None, help="rows per breakdown (default: all)")
    rep.add_argument("--shared", action="store_true", help="overview, allocation: split shared cost pools to teams")
    rep.add_argument("--month", default=None, metavar="YYYY-MM", help="chargeback: the month to charge back")
    rep.add_argument("--scope", default=None, metavar="DIM:VALUE[,DIM:VALUE...]",
                     help="explain: the node to explain, e.g. tag:team:payments,subscription:prod-data")
    rep.add_argument("--vs", default=None, metavar="START..END", help="explain: the earlier period (default: previous)")

    sync = sub.add_parser("sync", help="pull cost from Azure Cost Management into the cache")
    _add_cache_arg(sync)
    sync.add_argument("--scope", action="append", default=None, help="ARM scope (repeatable); default from config")
    sync.add_argument("--months", type=int, default=None, help="initial backfill in months (default 3, max 13)")
    sync.add_argument("--metric", choices=["both", "actual", "amortized"], default="both")
    sync.add_argument("--list-scopes", action="store_true", help="list the subscriptions the credential can see")
    sync.add_argument("--device-code", action="store_true", help="sign in with a device code (SSH sessions)")
    sync.add_argument("--arm-endpoint", default=None, metavar="URL", help="ARM endpoint (sovereign clouds)")
    sync.add_argument("--path", choices=["auto", "query", "cost-details"], default="auto", dest="api_path")
    sync.add_argument("--export", action="append", default=None, metavar="URL", dest="exports",
                      help="a Cost Management export in Azure Storage (blob or abfss URL; repeatable)")
    sync.add_argument("--hub", default=None, metavar="URL", help="a FinOps hub's Data Explorer cluster[/database]")
    sync.add_argument("--hub-filter", action="append", default=None, metavar="FILTER", dest="hub_filters",
                      help="pull only a slice from the hub: subscription=ID, tag:KEY=VALUE, management-group=NAME")
    sync.add_argument("--list-sources", action="store_true", help="list the configured sources and their last run")
    sync.add_argument("--dry-run", action="store_true",
                      help="exports: list what would be fetched; hub: print the KQL of each month; fetch nothing")
    sync.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")

    exp = sub.add_parser("export", help="write the cache's cost out (FOCUS Parquet or CSV)")
    _add_cache_arg(exp)
    exp_sub = exp.add_subparsers(dest="export_command", metavar="FORMAT", required=True)
    efocus = exp_sub.add_parser("focus", help="every charge of the period as a FOCUS file, with effective tags")
    _add_cache_arg(efocus)
    efocus.add_argument("out", type=Path, metavar="OUT", help="file to write (.parquet or .csv)")
    efocus.add_argument("--period", default="all", help="START..END (END exclusive), mtd, last-month, 30d, 90d, all")
    efocus.add_argument("--format", choices=["parquet", "csv"], default=None, help="default: from OUT's suffix")
    efocus.add_argument("--version", choices=["1.2", "1.3"], default="1.2", dest="focus_version")
    efocus.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")

    mcp = sub.add_parser("mcp", help="serve the cache to MCP clients (AI assistants) over stdio, read-only")
    _add_cache_arg(mcp)
    mcp.add_argument("--allow-tagging", action="store_true", help="add the set_tags tool (journaled, never pushed)")

    doctor = sub.add_parser("doctor", help="check the cache's summary tables against its charges (--fix rebuilds)")
    _add_cache_arg(doctor)
    doctor.add_argument("--fix", action="store_true", help="rebuild the summary tables from the charges")
    doctor.add_argument("--limit", type=int, default=20, metavar="N", help="list at most N differences (default 20)")

    tags = sub.add_parser("tags", help="tag edits: set, list, push to Azure, export")
    _add_cache_arg(tags)
    tags_sub = tags.add_subparsers(dest="tags_command", metavar="ACTION", required=True)
    tset = tags_sub.add_parser("set", help="set a tag on a resource or every resource of a resource group")
    _add_cache_arg(tset)
    tset.add_argument("--resource", default=None, metavar="ID|NAME", help="a resource id or a unique resource name")
    tset.add_argument("--resource-group", default=None, metavar="NAME")
    tset.add_argument("--subscription", default=None, metavar="ID")
    tset.add_argument("assignment", metavar="KEY=VALUE")
    for action, text in (("list", "print the tag edit journal"), ("undo", "undo the last tag edit batch"),
                         ("redo", "redo the last undone batch")):
        _add_cache_arg(tags_sub.add_parser(action, help=text))
    tpush = tags_sub.add_parser("push", help="preview, then (--apply) merge pending tag edits into Azure")
    _add_cache_arg(tpush)
    tpush.add_argument("--apply", action="store_true", help="send the previewed changes")
    tpush.add_argument("--yes", action="store_true", help="do not ask again after the preview (with --apply)")
    tpush.add_argument("--arm-endpoint", default=None, metavar="URL")
    tpush.add_argument("--device-code", action="store_true")
    texp = tags_sub.add_parser("export", help="write pending edits as CSV or az CLI commands")
    _add_cache_arg(texp)
    texp.add_argument("--format", choices=["csv", "az"], default="csv")
    return parser


def _cache_path(args: argparse.Namespace) -> Path:
    if args.cache is not None:
        return Path(args.cache)
    if args.command == "demo":
        return paths.demo_cache_path()
    return paths.default_cache_path()


def run(args: argparse.Namespace) -> int:
    """Dispatch to the explorer or to one command of finops_tui.commands.

    Each branch imports only what it runs: `report` and `tags` never load Textual (about 0.2 s, STYLE.md),
    the explorer never loads the commands.
    """
    cache_path = _cache_path(args)
    if args.command is None:
        from finops_tui.ui.launch import run_explorer

        return run_explorer(cache_path)
    if args.command == "demo":
        from finops_tui.commands.demo import run_demo

        code = run_demo(args, cache_path)  # builds or reuses the cache and prints its summary
        if code or args.no_open:
            return code
        # Opened here, not in commands: the commands never import the UI (import-linter contract).
        from finops_tui.ui.launch import run_explorer

        return run_explorer(cache_path)
    # A broken config.toml is one line before anything else happens (the explorer starts on defaults instead).
    config = load_config()
    if args.command == "import":
        from finops_tui.commands.imports import run_import

        return run_import(args, cache_path, config)
    if args.command == "report":
        from finops_tui.commands.report import run_report

        return run_report(args, cache_path, config)
    if args.command == "sync":
        from finops_tui.commands.sync import run_sync_command

        return run_sync_command(args, cache_path, config)
    if args.command == "tags":
        from finops_tui.commands.tags import run_tags

        return run_tags(args, cache_path, config)
    if args.command == "export":
        from finops_tui.commands.export import run_export

        return run_export(args, cache_path, config)
    if args.command == "doctor":
        from finops_tui.commands.doctor import run_doctor

        return run_doctor(args, cache_path, config)
    if args.command == "mcp":
        from finops_tui.commands.mcp_server import run_mcp

        return run_mcp(args, cache_path, config)
    raise AssertionError(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with paths.private_umask():  # cost data: the cache, its WAL and the sync spool are the user's only
            return run(args)
    except UserError as exc:
        print(f"finops-tui: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("finops-tui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
