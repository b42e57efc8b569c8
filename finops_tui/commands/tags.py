"""`finops-tui tags ...`: set tags, read the journal, undo/redo, preview and push to Azure, export."""

from __future__ import annotations

import argparse
import csv
import io
import shlex
import sys
from pathlib import Path
from typing import TextIO

import duckdb

from finops_tui import textsafe
from finops_tui.allocation import journal
from finops_tui.allocation.effective import load_tag_policy
from finops_tui.allocation.push import ALLOCATED_REFUSAL, PushItem, PushResult, preview, push, refusal_line
from finops_tui.basis.arm_ids import arm_resource_id, printable, resource_id_problem
from finops_tui.commands.render import render_rows
from finops_tui.commands.report import open_existing_cache
from finops_tui.config import Config
from finops_tui.errors import UsageError, UserError
from finops_tui.store import Cache


def run_tags(args: argparse.Namespace, cache_path: Path, config: Config, *, stdin: TextIO | None = None) -> int:
    """Dispatch a `tags` action; returns the process exit code."""
    action = args.tags_command
    # Listing and exporting only read: they work while the explorer holds the cache.
    with open_existing_cache(cache_path, read_only=action in ("list", "export")) as cache:
        if action == "set":
            return _set(cache, args, config)
        if action == "list":
            with cache.cursor() as cur:
                return _print(_journal_table(journal.list_edits(cur)))
        if action in ("undo", "redo"):
            revert = journal.undo if action == "undo" else journal.redo
            batch = revert(cache, load_tag_policy(config))
            if batch is None:
                return _print(f"nothing to {action}\n")
            verb = "undone" if action == "undo" else "redone"
            value = f"{batch.tag_key}={batch.new_value}" if batch.new_value is not None else f"{batch.tag_key} removed"
            return _print(f"{verb}: batch {batch.batch_id} ({value} on {batch.resources} resources)\n")
        if action == "push":
            return _push(cache, args, config, stdin or sys.stdin)
        if action == "export":
            with cache.cursor() as cur:
                items = preview(cur)
            invalid = [item for item in items if item.invalid is not None]
            _say_not_exported(invalid, invalid[0].invalid if invalid else None)
            valid = [item for item in items if item.invalid is None]
            # An allocated resource (a Kubernetes workload…) is no ARM resource: `az tag update` would fail on it.
            local = [item for item in valid if item.not_pushable == ALLOCATED_REFUSAL] if args.format == "az" else []
            _say_not_exported(local, ALLOCATED_REFUSAL)
            text = _export([item for item in valid if item not in local], args.format)
            if local:
                text = f"# {len(local):,} allocated resource(s) left out: their tags are local, never sent to Azure\n" \
                    + text
            return _print(text)
    raise UsageError(f"tags {action}: unknown action")


def _say_not_exported(items: list[PushItem], reason: str | None) -> None:
    if items:
        more = f" (and {len(items) - 1:,} more)" if len(items) > 1 else ""
        sys.stderr.write(f"finops-tui: not exported: {printable(items[0].arm_id)}: {reason}{more}\n")


def _print(text: str) -> int:
    sys.stdout.write(text)
    return 0


def parse_assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise UsageError(f"{text!r}: expected KEY=VALUE, e.g. team=payments")
    return journal.normalise_key(key), value.strip()


def _target_resources(cur: duckdb.DuckDBPyConnection, args: argparse.Namespace) -> list[str]:
    resource = (args.resource or "").strip()
    if (not resource and not args.resource_group) or ("/" in resource and args.resource_group):
        raise UsageError("tags set: give exactly one of --resource ID|NAME or --resource-group NAME "
                         "(with a resource name, --resource-group and --subscription narrow it down)")
    if resource:
        return [resolve_resource(cur, resource, resource_group=args.resource_group, subscription=args.subscription)]
    return resources_in_group(cur, args.resource_group, subscription=args.subscription)


def resources_in_group(cur: duckdb.DuckDBPyConnection, group: str, *, subscription: str | None = None) -> list[str]:
    """The cached resources of a resource group (in one subscription), or a line saying why not."""
    sub_sql, params = _subscription_filter(subscription)
    rows = cur.execute(
        f"SELECT ResourceId, SubAccountId FROM resources WHERE lower(x_ResourceGroupName) = ?{sub_sql} ORDER BY 1",
        [group.strip().lower(), *params],
    ).fetchall()
    if not rows:
        where = f" in subscription {printable(subscription)}" if subscription else ""
        raise UserError(f"resource group {printable(group)}{where}: no resources in the cache")
    subscriptions = sorted({str(r[1]) for r in rows})
    if len(subscriptions) > 1:
        raise UserError(
            f"resource group {printable(group)} exists in {len(subscriptions)} subscriptions "
            f"({', '.join(printable(s) for s in subscriptions)}): add --subscription ID"
        )
    return [r[0] for r in rows]


def resolve_resource(
    cur: duckdb.DuckDBPyConnection, text: str, *, resource_group: str | None = None, subscription: str | None = None
) -> str:
    """The one cached resource `text` names: an id (anything with a slash), else a unique name, which
    `resource_group` and `subscription` narrow down; a line saying why not (`tags set` and the MCP server)."""
    text = text.strip()
    if not text:
        raise UserError("give a resource id or name")
    if "/" in text:
        return _resource_by_id(cur, text)
    return _resource_by_name(cur, text, resource_group, subscription)


def _subscription_filter(subscription: str | None) -> tuple[str, list[object]]:
    """`--subscription` (an id, with or without /subscriptions/, or a name) as SQL over `resources`."""
    if not subscription:
        return "", []
    wanted = subscription.strip().lower()
    return (" AND (lower(SubAccountId) IN (?, ?) OR lower(SubAccountName) = ?)",
            [wanted, f"/subscriptions/{wanted.removeprefix('/subscriptions/')}", wanted])


def _resource_by_id(cur: duckdb.DuckDBPyConnection, text: str) -> str:
    problem = resource_id_problem(text)
    if problem is not None:
        raise UsageError(f"--resource {printable(text)}: not a resource id: {problem}")
    rid = text.lower()
    if not cur.execute("SELECT 1 FROM resources WHERE ResourceId = ?", [rid]).fetchone():
        raise UserError(f"{printable(text)}: no such resource in the cache (ids look like /subscriptions/…, "
                        "or give the resource's name)")
    return rid


AMBIGUOUS_SHOWN = 3  # candidates named when a resource name is ambiguous


def _resource_by_name(
    cur: duckdb.DuckDBPyConnection, name: str, resource_group: str | None, subscription: str | None
) -> str:
    """The one resource called `name` (its name or its id's last segment, any case), or a line saying why not.

    An id without slashes (some providers' ids, like AWS instance ids) is matched exactly first.
    """
    exact = cur.execute("SELECT ResourceId FROM resources WHERE ResourceId = ?", [name.lower()]).fetchone()
    if exact is not None:
        return str(exact[0])
    params: list[object] = [name.lower(), name.lower()]
    where = "(lower(ResourceName) = ? OR lower(regexp_extract(ResourceId, '[^/]+$')) = ?)"
    if resource_group:
        where += " AND lower(x_ResourceGroupName) = ?"
        params.append(resource_group.strip().lower())
    sub_sql, sub_params = _subscription_filter(subscription)
    rows = cur.execute(
        f"SELECT ResourceId, ResourceName, x_ResourceGroupName FROM resources WHERE {where}{sub_sql} ORDER BY 1",
        [*params, *sub_params],
    ).fetchall()
    scope = [what for what, given in (("that resource group", resource_group),
                                      ("that subscription", subscription)) if given]
    narrowed = f" in {' and '.join(scope)}" if scope else ""
    if not rows:
        raise UserError(f"{printable(name)}: no resource with that name{narrowed} in the cache; "
                        "`finops-tui report allocation --by resource` lists them")
    if len(rows) > 1:
        shown = "; ".join(printable(arm_resource_id(rid, rg, rname)) for rid, rname, rg in rows[:AMBIGUOUS_SHOWN])
        more = f"; and {len(rows) - AMBIGUOUS_SHOWN:,} more" if len(rows) > AMBIGUOUS_SHOWN else ""
        raise UserError(
            f"{printable(name)} is ambiguous: {len(rows):,} resources have that name{narrowed} ({shown}{more}); "
            "give the full id with --resource, or narrow it with --resource-group and --subscription"
        )
    return str(rows[0][0])


def _set(cache: Cache, args: argparse.Namespace, config: Config) -> int:
    key, value = parse_assignment(args.assignment)
    with cache.cursor() as cur:
        ids = _target_resources(cur, args)
    batch_id = journal.apply_tags(cache, load_tag_policy(config), ids, key, value)
    if batch_id is None:
        return _print(f"nothing to change: {len(ids)} resource(s) already have {key}={value}\n")
    with cache.cursor() as cur:
        row = cur.execute("SELECT count(*) FROM tag_edits WHERE batch_id = ?", [batch_id]).fetchone()
    changed = int(row[0]) if row else 0
    skipped = len(ids) - changed
    note = f" ({skipped} already had it)" if skipped else ""
    return _print(
        f"batch {batch_id}: {key}={value} on {changed} resource(s){note}; applies to all cached history.\n"
        "`finops-tui tags undo` reverts it; `finops-tui tags push` previews sending it to Azure.\n"
    )


def _journal_table(edits: list[journal.TagEdit]) -> str:
    if not edits:
        return "the tag edit journal is empty\n"
    rows = [
        [e.edit_id, e.batch_id, e.created_at.strftime("%Y-%m-%d %H:%M"), e.resource_name or e.resource_id,
         e.tag_key, e.old_value if e.old_value is not None else "—",
         e.new_value if e.new_value is not None else "(removed)", e.status, e.push_error or ""]
        for e in edits
    ]
    return render_rows(["edit", "batch", "when (UTC)", "resource", "key", "old", "new", "status", "error"], rows,
                       "table")


def _preview_table(items: list[PushItem]) -> str:
    rows = [
        [item.arm_id, ", ".join(f"{k}={v}" for k, v in item.tags.items()), item.last_error or ""]
        for item in items
    ]
    return render_rows(["resource", "tags to merge", "last error"], rows, "table")


def _push(cache: Cache, args: argparse.Namespace, config: Config, stdin: TextIO) -> int:
    with cache.cursor() as cur:
        previewed = preview(cur)
    if not previewed:
        return _print("nothing to push: no pending tag edits\n")
    items = [item for item in previewed if item.refusal is None]
    refused = [item for item in previewed if item.refusal is not None]
    if not items:
        raise UserError(refusal_line(refused, sendable=0))
    merges = sum(len(i.tags) for i in items)
    sys.stdout.write(f"{len(items)} resource(s), {merges} tag(s) to merge into Azure:\n\n")
    sys.stdout.write(_preview_table(items))
    if refused:
        sys.stdout.write(f"\n{refusal_line(refused, sendable=len(items))}; their edits stay pending\n")
    if not args.apply:
        return _print("\nnothing sent; run with --apply to send these tag merges to Azure\n")
    if not args.yes:
        if not stdin.isatty():
            raise UserError("not sending without confirmation: stdin is not a terminal; add --yes to confirm")
        sys.stdout.write(f"\nSend {len(items)} tag merges to Azure? [y/N] ")
        sys.stdout.flush()
        answer = stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            sys.stdout.write("cancelled: nothing sent\n")
            return 1
    # Loaded once the user has said yes: azure-core adds about 60 ms to every `tags` action (STYLE.md).
    from finops_tui import azure

    endpoint = azure.parse_endpoint(args.arm_endpoint or config.arm_endpoint)
    mode = "device-code" if args.device_code else config.credential
    credential = azure.make_credential(mode)
    azure.check_signed_in(credential, endpoint)

    def show(result: PushResult) -> None:
        mark = "ok    " if result.status == "pushed" else "FAILED"
        detail = f"  {result.error}" if result.error else ""  # the server's words: shown, never obeyed
        sys.stdout.write(textsafe.printable(f"{mark} {result.item.arm_id}{detail}") + "\n")

    def waiting(item: PushItem, seconds: float, reason: str) -> None:
        sys.stderr.write(textsafe.printable(f"{reason}, retrying {item.name or item.arm_id} in {seconds:.0f} s") + "\n")

    sys.stdout.write("\n")
    report = push(cache, items, credential, endpoint.url, on_result=show, on_wait=waiting)
    sys.stdout.write(f"\npushed {len(report.pushed)}, failed {len(report.failed)}")
    if report.failed:
        sys.stdout.write(" (still pending with their reason; re-run `finops-tui tags push --apply`)\n")
        return 3
    sys.stdout.write("\n")
    return 0


def _export(items: list[PushItem], fmt: str) -> str:
    """Pending edits as CSV (one row per resource and key) or `az tag update` command lines."""
    if fmt == "az":
        if not items:
            return "# no pending tag edits\n"
        lines = [
            "az tag update --resource-id " + shlex.quote(item.arm_id) + " --operation Merge --tags "
            + " ".join(shlex.quote(f"{k}={v}") for k, v in item.tags.items())
            for item in items
        ]
        return "\n".join(lines) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["resource_id", "tag_key", "tag_value"])
    for item in items:
        for key, value in item.tags.items():
            writer.writerow([item.arm_id, key, value])
    return buffer.getvalue()
