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

from finops_tui.allocation import journal
from finops_tui.allocation.push import PushItem, PushResult, preview
from finops_tui.errors import UsageError, UserError
from finops_tui.report.render import render_rows
from finops_tui.store import Cache


def run_tags(args: argparse.Namespace, cache_path: Path, *, stdin: TextIO | None = None) -> int:
    """Dispatch a `tags` action; returns the process exit code."""
    from finops_tui.report.command import open_existing_cache

    action = args.tags_command
    with open_existing_cache(cache_path) as cache:
        if action == "set":
            return _set(cache, args)
        if action == "list":
            with cache.cursor() as cur:
                return _print(_journal_table(journal.list_edits(cur)))
        if action in ("undo", "redo"):
            batch = journal.undo(cache) if action == "undo" else journal.redo(cache)
            if batch is None:
                return _print(f"nothing to {action}\n")
            verb = "undone" if action == "undo" else "redone"
            value = f"{batch.tag_key}={batch.new_value}" if batch.new_value is not None else f"{batch.tag_key} removed"
            return _print(f"{verb}: batch {batch.batch_id} ({value} on {batch.resources} resources)\n")
        if action == "push":
            return _push(cache, args, stdin or sys.stdin)
        if action == "export":
            with cache.cursor() as cur:
                items = preview(cur)
            return _print(_export(items, args.format))
    raise UsageError(f"tags {action}: unknown action")


def _print(text: str) -> int:
    sys.stdout.write(text)
    return 0


def parse_assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise UsageError(f"{text!r}: expected KEY=VALUE, e.g. team=payments")
    return journal.normalise_key(key), value.strip()


def _target_resources(cur: duckdb.DuckDBPyConnection, args: argparse.Namespace) -> list[str]:
    if bool(args.resource) == bool(args.resource_group):
        raise UsageError("tags set: give exactly one of --resource ID or --resource-group NAME")
    if args.resource:
        rid = args.resource.strip().lower()
        if not cur.execute("SELECT 1 FROM resources WHERE ResourceId = ?", [rid]).fetchone():
            raise UserError(f"{args.resource}: no such resource in the cache (ids look like /subscriptions/…)")
        return [rid]
    params: list[object] = [args.resource_group.strip().lower()]
    sub_sql = ""
    if args.subscription:
        sub_sql = " AND (lower(SubAccountId) = ? OR lower(SubAccountName) = ?)"
        params += [args.subscription.strip().lower()] * 2
    rows = cur.execute(
        f"SELECT ResourceId, SubAccountId FROM resources WHERE lower(x_ResourceGroupName) = ?{sub_sql} ORDER BY 1",
        params,
    ).fetchall()
    if not rows:
        where = f" in subscription {args.subscription}" if args.subscription else ""
        raise UserError(f"resource group {args.resource_group}{where}: no resources in the cache")
    subscriptions = sorted({str(r[1]) for r in rows})
    if len(subscriptions) > 1:
        raise UserError(
            f"resource group {args.resource_group} exists in {len(subscriptions)} subscriptions "
            f"({', '.join(subscriptions)}): add --subscription ID"
        )
    return [r[0] for r in rows]


def _set(cache: Cache, args: argparse.Namespace) -> int:
    key, value = parse_assignment(args.assignment)
    with cache.cursor() as cur:
        ids = _target_resources(cur, args)
    batch_id = journal.apply_tags(cache, ids, key, value)
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


def _push(cache: Cache, args: argparse.Namespace, stdin: TextIO) -> int:
    with cache.cursor() as cur:
        items = preview(cur)
    if not items:
        return _print("nothing to push: no pending tag edits\n")
    merges = sum(len(i.tags) for i in items)
    sys.stdout.write(f"{len(items)} resource(s), {merges} tag(s) to merge into Azure:\n\n")
    sys.stdout.write(_preview_table(items))
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
    from finops_tui.allocation.push import push
    from finops_tui.config import load_config
    from finops_tui.sync.azure import check_signed_in, make_credential, parse_endpoint

    config = load_config()
    endpoint = parse_endpoint(args.arm_endpoint or config.arm_endpoint)
    sync_settings = config.raw.get("sync", {})
    mode = "device-code" if args.device_code else str(sync_settings.get("credential", "auto"))
    credential = make_credential(mode)
    check_signed_in(credential, endpoint)

    def show(result: PushResult) -> None:
        mark = "ok    " if result.status == "pushed" else "FAILED"
        detail = f"  {result.error}" if result.error else ""
        sys.stdout.write(f"{mark} {result.item.arm_id}{detail}\n")

    def waiting(item: PushItem, seconds: float, reason: str) -> None:
        sys.stderr.write(f"{reason}, retrying {item.name or item.arm_id} in {seconds:.0f} s\n")

    sys.stdout.write("\n")
    with cache.cursor() as cur:
        report = push(cur, items, credential, endpoint.url, on_result=show, on_wait=waiting)
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
