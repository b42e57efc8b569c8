"""`finops-tui mcp`: the cache's reports as MCP tools over stdio, read-only unless --allow-tagging."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from finops_tui.allocation.assign import assign_tags
from finops_tui.allocation.effective import load_tag_policy
from finops_tui.allocation.queue import unallocated_queue
from finops_tui.allocation.rules import load_rules
from finops_tui.basis.periods import resolve_period
from finops_tui.commands.render import to_json
from finops_tui.commands.report import (
    FILL_HINT,
    allocation_report,
    check_currency,
    open_existing_cache,
    overview_report,
    recommendations_report,
)
from finops_tui.commands.tags import resolve_resource
from finops_tui.config import Config
from finops_tui.errors import UserError
from finops_tui.report.resource import resource_detail
from finops_tui.store import Cache, open_cache
from finops_tui.store.sources import freshness
from finops_tui.textsafe import printable

Metric = Literal["effective", "billed"]
PERIOD_HELP = "mtd (default), last-month, 30d, 90d, all, or START..END (YYYY-MM-DD, END exclusive)"
INSTRUCTIONS = (
    "Cloud cost from the local finops-tui cache (FOCUS columns; money as exact decimal strings, never summed "
    "across currencies). Every answer says how fresh the data is. Periods: " + PERIOD_HELP + ". Metric: "
    "effective (amortized, default) or billed (actual)."
)
SEARCH_LIMIT = 50


def run_mcp(args: argparse.Namespace, cache_path: Path, config: Config) -> int:
    """Serve until the client closes stdin. The cache stays readable by the explorer and `report` meanwhile."""
    if args.allow_tagging:
        if not cache_path.exists():
            raise UserError(f"no data yet: {cache_path} does not exist; {FILL_HINT}")
        cache = open_cache(cache_path, shared=True)  # read-only between tag edits, like the explorer
    else:
        cache = open_existing_cache(cache_path)
    with cache:
        if cache.is_empty():
            raise UserError(f"no data yet: {cache_path} holds no cost; {FILL_HINT}")
        build_server(cache, config, allow_tagging=args.allow_tagging).run()
    return 0


def build_server(cache: Cache, config: Config, *, allow_tagging: bool = False) -> Any:
    """The MCP server with its tools on an open cache (tests connect a client to it in process)."""
    from mcp.server.mcpserver import MCPServer  # the SDK loads in about 0.3 s: only this command pays it

    tools = CostTools(cache, config)
    server = MCPServer("finops-tui", instructions=INSTRUCTIONS, log_level="WARNING")
    for name, fn in tools.read_tools().items():
        server.add_tool(_answering(fn), name=name, description=fn.__doc__, structured_output=True)
    if allow_tagging:
        server.add_tool(_answering(tools.set_tags), name="set_tags", description=tools.set_tags.__doc__,
                        structured_output=True)
    return server


def _answering(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """The tool as the SDK calls it: the document as `--format json` writes it (money as decimal strings), as
    structured content and JSON text; a user error is the tool's error, with the command line's one line."""
    import functools

    from mcp.server.mcpserver.exceptions import ToolError

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            answer = fn(*args, **kwargs)
        except UserError as exc:
            raise ToolError(printable(str(exc))) from None
        # A report's document is already JSON (parsed from `--format json`); others hold Decimals and dates.
        return answer if isinstance(answer, JsonDocument) else json.loads(to_json(answer))

    return call


class JsonDocument(dict[str, Any]):
    """A tool's answer that is JSON already (strings, numbers, lists): sent as it is."""


class CostTools:
    """The tools' bodies: each builds the same document as `finops-tui report … --format json`, plus freshness."""

    def __init__(self, cache: Cache, config: Config) -> None:
        self.cache = cache
        self.config = config

    def read_tools(self) -> dict[str, Callable[..., dict[str, Any]]]:
        tools: dict[str, Callable[..., dict[str, Any]]] = {
            "overview": self.overview,
            "allocation": self.allocation,
            "recommendations": self.recommendations,
            "unallocated": self.unallocated,
            "resource": self.resource,
            "search_resources": self.search_resources,
        }
        if _has_report("explain"):
            tools["explain"] = self.explain
        if _has_report("commitments"):
            tools["commitments"] = self.commitments
        return tools

    # --- the headless reports -------------------------------------------------------------------

    def overview(self, period: str = "mtd", metric: Metric = "effective", currency: str | None = None,
                 top: int | None = None) -> dict[str, Any]:
        """Total cost of a period against the previous one, month-end forecast, untagged cost, breakdowns by
        service, subscription and team, top movers and daily cost. Same JSON as `report overview`."""
        return self._report("overview", period=period, metric=metric, currency=currency, top=top)

    def allocation(self, by: str | None = None, path: list[str] | None = None, period: str = "mtd",
                   metric: Metric = "effective", depth: int | None = None, currency: str | None = None,
                   top: int | None = None) -> dict[str, Any]:
        """Cost as a tree over levels such as `tag:team,subscription,resource-group,resource` (default: the
        configured hierarchy), with share and change against the previous period. `path` (labels or keys, one
        per level, e.g. ["payments", "prod-core"]) answers only that node's subtree. Same JSON as
        `report allocation`."""
        doc = self._report("allocation", by=by, period=period, metric=metric, depth=depth, currency=currency,
                           top=top)
        return _subtree(doc, path) if path else doc

    def recommendations(self, kind: str | None = None, team: str | None = None, min_impact: float | None = None,
                        metric: Metric = "effective", top: int | None = None) -> dict[str, Any]:
        """Findings (anomalies, idle resources, commitment waste, …) ranked by money per month; filter by `kind`,
        `team` or a minimum monthly impact. Same JSON as `report recommendations`."""
        doc = self._report("recommendations", metric=metric)
        recs = doc["recommendations"]
        if kind:
            recs = [r for r in recs if r["kind"] == kind]
        if team:
            recs = [r for r in recs if (r.get("team") or "").lower() == team.lower()]
        if min_impact is not None:
            recs = [r for r in recs if float(r["monthly_impact"]) >= min_impact]
        if top is not None:
            recs = recs[: max(top, 0)]
        doc["recommendations"] = recs
        return doc

    def explain(self, scope: str | None = None, period: str = "mtd", vs: str | None = None,
                metric: Metric = "effective", currency: str | None = None) -> dict[str, Any]:
        """Why cost changed between two periods: buckets (new and removed resources, usage, price, SKU swaps,
        commitments, one-offs) that add up exactly, with the resources behind each. `scope` such as
        tag:team:payments,subscription:prod-data; `vs` the earlier period. Same JSON as `report explain`."""
        return self._report("explain", scope=scope, period=period, vs=vs, metric=metric, currency=currency)

    def commitments(self, period: str = "mtd", metric: Metric = "effective",
                    currency: str | None = None) -> dict[str, Any]:
        """Reservations and savings plans: utilization, coverage, savings and waste. Same JSON as
        `report commitments`."""
        return self._report("commitments", period=period, metric=metric, currency=currency)

    # --- tagging queue and resources -------------------------------------------------------------

    def unallocated(self, key: str | None = None, top: int = 20, period: str = "mtd", metric: Metric = "effective",
                    currency: str | None = None) -> dict[str, Any]:
        """Resources with no value for a tag key (default: the team key) in the period, costliest first, with
        suggested values; totals cover every such resource."""
        tag_key = (key or self.config.team_key).strip().lower()
        with self.cache.cursor() as cur:
            when, _ = resolve_period(cur, period)
            code = check_currency(self.cache, currency) if currency else None
            queue = unallocated_queue(cur, tag_key, when, metric, code, limit=max(top, 0))
            doc: dict[str, Any] = {
                "view": "unallocated", "key": queue.key, "currency": queue.currency,
                "period": {"start": when.start, "end": when.end, "spec": when.spec}, "metric": metric,
                "total": queue.total, "without_resource": queue.without_resource, "resources": queue.resources,
                "items": [
                    {"resource_id": i.resource_id, "name": i.name, "resource_type": i.resource_type,
                     "resource_group": i.resource_group, "subscription_id": i.subscription_id,
                     "subscription_name": i.subscription_name, "cost": i.cost,
                     "suggestions": [{"value": s.value, "kind": s.kind, "reason": s.reason} for s in i.suggestions]}
                    for i in queue.items
                ],
            }
        return self._fresh(doc)

    def resource(self, resource: str, period: str = "mtd", metric: Metric = "effective",
                 currency: str | None = None) -> dict[str, Any]:
        """One resource by id or unique name: identity, cost and previous cost, daily cost, cost by meter and
        charge category, every effective tag with its origin (manual, provider, rule) and the provider's tags."""
        with self.cache.cursor() as cur:
            rid = resolve_resource(cur, resource)
            when, _ = resolve_period(cur, period)
            d = resource_detail(cur, rid, when, metric, currency, rules=load_rules())
        doc = {
            "view": "resource", "resource_id": d.resource_id, "arm_id": d.arm_id, "name": d.name,
            "resource_type": d.resource_type, "resource_group": d.resource_group,
            "subscription_id": d.subscription_id, "subscription_name": d.subscription_name, "region": d.region,
            "service": d.service, "first_seen": d.first_seen, "last_seen": d.last_seen,
            "period": {"start": when.start, "end": when.end, "spec": when.spec}, "metric": metric,
            "currency": d.currency, "cost": d.cost, "previous_cost": d.previous_cost,
            "daily": [{"date": when.start + _days(i), "cost": c} for i, c in enumerate(d.daily)],
            "by_meter": [{"meter": m.label, "cost": m.cost} for m in d.by_meter],
            "by_charge_category": [{"category": m.label, "cost": m.cost} for m in d.by_charge_category],
            "tags": [{"key": t.key, "value": t.value, "origin": t.origin, "provider_key": t.raw_key, "rule": t.rule}
                     for t in d.tags],
            "provider_tags": d.provider_tags,
        }
        return self._fresh(doc)

    def search_resources(self, text: str, limit: int = 20) -> dict[str, Any]:
        """Resources whose name, id, resource group or subscription contains `text` (any case), most recently
        seen first; pass an id from here to `resource`."""
        needle = text.strip().lower()
        if not needle:
            raise UserError("search_resources: give some text to look for, e.g. payments")
        limit = min(max(limit, 1), SEARCH_LIMIT)
        with self.cache.cursor() as cur:
            rows = cur.execute(
                """
                SELECT ResourceId, ResourceName, ResourceType, x_ResourceGroupName, SubAccountId, SubAccountName,
                       ServiceName, first_seen, last_seen
                FROM resources
                WHERE contains(lower(coalesce(ResourceName, '')), $t) OR contains(ResourceId, $t)
                   OR contains(lower(coalesce(x_ResourceGroupName, '')), $t)
                   OR contains(lower(coalesce(SubAccountName, '')), $t)
                ORDER BY last_seen DESC NULLS LAST, ResourceId LIMIT $n
                """,
                {"t": needle, "n": limit},
            ).fetchall()
        names = ["resource_id", "name", "resource_type", "resource_group", "subscription_id", "subscription_name",
                 "service", "first_seen", "last_seen"]
        return self._fresh({"view": "search_resources", "text": text,
                            "resources": [dict(zip(names, row, strict=True)) for row in rows]})

    # --- writing ------------------------------------------------------------------------------------

    def set_tags(self, tags: dict[str, str], resource: str | None = None,
                 resource_group: str | None = None) -> dict[str, Any]:
        """Set tags (key -> value) on one resource (id or unique name) or on every resource of a resource group.
        Journaled like the explorer's edits (`finops-tui tags undo` reverts them) and applied to all cached
        history; never sent to Azure (`finops-tui tags push` previews that)."""
        if not tags:
            raise UserError("set_tags: give at least one tag, e.g. {\"team\": \"payments\"}")
        if (resource is None) == (resource_group is None):
            raise UserError("set_tags: give exactly one of resource (id or name) or resource_group")
        with self.cache.cursor() as cur:
            ids = [resolve_resource(cur, resource)] if resource else _group_resources(cur, resource_group or "")
        policy = load_tag_policy(self.config)
        batches: list[int] = []
        for key, value in tags.items():
            done = assign_tags(self.cache, policy, {value: ids}, key)
            batches.extend(done.batches)
        return self._fresh({"view": "set_tags", "resources": ids, "tags": tags, "batches": batches,
                            "pushed": False})

    # --- plumbing ------------------------------------------------------------------------------------

    def _report(self, view: str, **options: Any) -> dict[str, Any]:
        args = argparse.Namespace(
            view=view, format="json", period="mtd", metric="effective", by=None, depth=None, currency=None,
            top=None, shared=False, month=None, scope=None, vs=None,
        )
        for name, value in options.items():
            if value is not None:
                setattr(args, name, value)
        if args.currency:
            args.currency = check_currency(self.cache, args.currency)
        builders: dict[str, Callable[[Cache, argparse.Namespace, Config], str]] = {
            "overview": overview_report, "allocation": allocation_report,
            "recommendations": recommendations_report,
        }
        if view in ("explain", "commitments"):
            builders[view] = _report_builder(view)
        document = JsonDocument(json.loads(builders[view](self.cache, args, self.config)))
        return self._fresh(document)

    def _fresh(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Every answer says how fresh the data is: the last day with cost and the last import or sync (as JSON,
        so a report's JsonDocument stays JSON)."""
        with self.cache.cursor() as cur:
            fresh = freshness(cur)
        doc["freshness"] = json.loads(to_json({
            "data_start": fresh.data_start, "data_end": fresh.data_end, "last_load": fresh.last_kind,
            "last_loaded_at": fresh.last_loaded_at,
        }))
        return doc


def _has_report(view: str) -> bool:
    try:
        _report_builder(view)
    except ImportError:
        return False
    return True


def _report_builder(view: str) -> Callable[[Cache, argparse.Namespace, Config], str]:
    if view == "explain":
        from finops_tui.commands.explain import explain_report

        return explain_report
    from finops_tui.commands.commitments import commitments_report

    return commitments_report


def _group_resources(cur: Any, group: str) -> list[str]:
    rows = cur.execute(
        "SELECT ResourceId, SubAccountId FROM resources WHERE lower(x_ResourceGroupName) = ? ORDER BY 1",
        [group.strip().lower()],
    ).fetchall()
    if not rows:
        raise UserError(f"resource group {printable(group)}: no resources in the cache")
    if len({r[1] for r in rows}) > 1:
        raise UserError(f"resource group {printable(group)} exists in several subscriptions: tag its resources "
                        "one by one")
    return [r[0] for r in rows]


def _subtree(doc: dict[str, Any], path: list[str]) -> dict[str, Any]:
    """The allocation document narrowed to the node `path` names, level by level (label or key, any case)."""
    for block in doc["currencies"]:
        nodes = block["children"]
        found: dict[str, Any] | None = None
        for step in path:
            wanted = step.strip().lower()
            found = next((n for n in nodes if wanted in ((n["label"] or "").lower(), (n["key"] or "").lower())),
                         None)
            if found is None:
                break
            nodes = found.get("children", [])
        block["children"] = [found] if found is not None else []
    if not any(block["children"] for block in doc["currencies"]):
        raise UserError(f"allocation path {' > '.join(path)}: no such node in this period; call allocation "
                        "without a path to see the labels")
    doc["path"] = path
    return doc


def _days(count: int) -> Any:
    import datetime as dt

    return dt.timedelta(days=count)
