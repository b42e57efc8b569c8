"""`finops-tui report VIEW`: open the cache, run the view's read model, print it as a table, CSV, Markdown or JSON."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from finops_tui.basis.metrics import METRIC_TITLES, currencies
from finops_tui.basis.money import ROUNDING_LABEL, RoundingLine, change_percent, money, percent, shown_change
from finops_tui.basis.periods import Period, resolve_period
from finops_tui.commands.render import render_rows, to_json
from finops_tui.config import DEFAULT_HIERARCHY, Config
from finops_tui.errors import UsageError, UserError
from finops_tui.recommend.engine import RecFilter, apply_state, generate, load_states
from finops_tui.recommend.generators import KIND_TITLES
from finops_tui.recommend.model import Context, Recommendation
from finops_tui.report import shared_tree
from finops_tui.report.overview import Overview, overview
from finops_tui.report.tree import Node, TreeNode, allocation_tree, resolve_hierarchy, siblings_rounding
from finops_tui.store import Cache, open_cache
from finops_tui.textsafe import printable_lines

FILL_HINT = "run `finops-tui import FILE`, `finops-tui sync` or `finops-tui demo`"
ZERO = Decimal(0)
RECOMMENDATION_COLUMNS = ["#", "Impact / month", "Currency", "Kind", "Confidence", "Scope", "Title"]


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


def run_report(args: argparse.Namespace, cache_path: Path, config: Config) -> int:
    if (getattr(args, "shared", False) or args.view == "chargeback") and cache_path.exists():
        from finops_tui.commands.chargeback import apply_changed_pools

        apply_changed_pools(cache_path, config)
    with open_existing_cache(cache_path) as cache:
        if cache.is_empty():
            raise UserError(f"no data yet: {cache_path} holds no cost; {FILL_HINT}")
        if args.currency:
            args.currency = check_currency(cache, args.currency)
        if args.view == "overview":
            text = overview_report(cache, args, config)
        elif args.view == "allocation":
            text = allocation_report(cache, args, config)
        elif args.view == "chargeback":
            from finops_tui.commands.chargeback import chargeback_report

            text = chargeback_report(cache, args, config)
        elif args.view == "explain":
            from finops_tui.commands.explain import explain_report

            text = explain_report(cache, args, config)
        elif args.view == "commitments":
            from finops_tui.commands.commitments import commitments_report

            text = commitments_report(cache, args, config)
        else:
            text = recommendations_report(cache, args, config)
    # Cells are escaped where they are rendered; this also covers headers and notes. CSV keeps the data.
    sys.stdout.write(text if args.format == "csv" else printable_lines(text))
    return 0


# --- overview -------------------------------------------------------------------------------------


def overview_document(ov: Overview) -> dict[str, object]:
    """The JSON shape of `report overview --format json`."""
    forecast = {f.currency: f for f in ov.forecast}
    return {
        "period": {"start": ov.period.start, "end": ov.period.end, "spec": ov.period.spec},
        "previous_period": {"start": ov.previous.start, "end": ov.previous.end},
        "metric": ov.metric,
        "data_end": ov.freshness.data_end,
        "anchored_on_data": ov.period.anchored_on_data,
        "totals": [
            {
                "currency": t.currency,
                "cost": t.cost,
                "previous_cost": t.previous,
                "untagged_cost": ov.untagged.get(t.currency, ZERO),
                "forecast_month_end": forecast[t.currency].total if t.currency in forecast else None,
            }
            for t in ov.totals
        ],
        "team_key": ov.team_key,
        "breakdowns": {
            name: [
                {"name": r.name, "key": r.key, "currency": r.currency, "cost": r.cost, "previous_cost": r.previous}
                for r in rows
            ]
            for name, rows in ov.breakdowns.items()
        },
        "top_movers": [
            {"name": r.name, "currency": r.currency, "cost": r.cost, "previous_cost": r.previous,
             "change": shown_change(r.cost, r.previous)}
            for r in ov.movers
        ],
        "daily": {code: [{"date": d, "cost": v} for d, v in series] for code, series in ov.daily.items()},
        "shared": ov.shared,
        "allocation": [
            {
                "currency": k.currency, "total": k.total, "allocated_by_metadata": k.by_metadata,
                "allocated_by_pools": k.by_pools, "unallocated": k.unallocated,
                "share_by_metadata": _ratio(k.share(k.by_metadata)), "share_by_pools": _ratio(k.share(k.by_pools)),
                "share_unallocated": _ratio(k.share(k.unallocated)), "allocated_share": _ratio(k.allocated_share),
                "maturity": k.maturity,
            }
            for k in ov.allocation
        ],
    }


def _ratio(value: Decimal | None) -> str | None:
    """A share as a decimal string with 4 places (0.8312), as `share` in the allocation JSON."""
    return None if value is None else format(value.quantize(Decimal("0.0001")), "f")


def overview_report(cache: Cache, args: argparse.Namespace, config: Config) -> str:
    """`finops-tui report overview`: one table per breakdown, or the JSON document."""
    extra = tuple(s.strip() for s in args.by.split(",") if s.strip()) if args.by else ()
    with cache.cursor() as cur:
        period, fresh = resolve_period(cur, args.period)
        ov = overview(
            cur, period, args.metric, team_key=config.team_key, currency=args.currency,
            extra_breakdowns=extra, top=args.top, fresh=fresh, shared=getattr(args, "shared", False),
        )
    if args.format == "json":
        return to_json(overview_document(ov)) + "\n"
    return _overview_text(ov, args.format)


def _overview_text(ov: Overview, fmt: str) -> str:
    parts: list[str] = []
    metric_title = METRIC_TITLES[ov.metric]
    header = f"Overview: {ov.period.describe()}, {metric_title}; compared with {ov.previous.start} .. {ov.previous.end}"
    if ov.shared:
        header += "; with shared costs"
    if ov.period.anchored_on_data and ov.freshness.data_end:
        header += f"\nData ends {ov.freshness.data_end}; relative periods anchor on that day."
    if fmt == "table":
        parts.append(header + "\n")
    elif fmt == "md":
        parts.append(f"## {header}\n")
    forecast = {f.currency: f for f in ov.forecast}
    total_rows = [
        [
            t.currency, t.cost, t.previous, money(shown_change(t.cost, t.previous), signed=True),
            change_percent(t.cost, t.previous),
            forecast[t.currency].total if t.currency in forecast else "",
            ov.untagged.get(t.currency, ZERO), percent(ov.untagged.get(t.currency, ZERO), t.cost),
        ]
        for t in ov.totals
    ]
    parts.append(render_rows(
        ["currency", "cost", "previous", "change", "change %", "forecast month end",
         f"untagged ({ov.team_key})", "untagged %"],
        total_rows, fmt, title="Totals" if fmt != "csv" else None,
    ))
    if ov.allocation and fmt != "csv":
        parts.append("\n" + render_rows(
            ["currency", "by tags and rules", "by shared pools", "unallocated", "allocated %", "maturity"],
            [[k.currency, percent(k.by_metadata, k.total), percent(k.by_pools, k.total),
              percent(k.unallocated, k.total), percent(k.by_metadata + k.by_pools, k.total), k.maturity or "—"]
             for k in ov.allocation],
            fmt, title=f"Allocation ({ov.team_key})",
        ))
    if fmt == "csv":  # one CSV document: breakdown rows with their dimension
        rows = [
            [name, r.name, r.currency, r.cost, r.previous]
            for name, items in ov.breakdowns.items() for r in items
        ]
        return render_rows(["breakdown", "name", "currency", "cost", "previous_cost"], rows, "csv")
    for name, items in ov.breakdowns.items():
        totals = {t.currency: t.cost for t in ov.totals}
        rows = [
            [r.name, r.currency, r.cost, percent(r.cost, totals.get(r.currency)),
             money(shown_change(r.cost, r.previous), signed=True), change_percent(r.cost, r.previous)]
            for r in items
        ]
        parts.append("\n" + render_rows(
            [ov.breakdown_titles.get(name, name), "currency", "cost", "share", "change", "change %"],
            rows, fmt, title=f"By {ov.breakdown_titles.get(name, name).lower()}",
        ))
    if ov.movers:
        rows = [[r.name, r.currency, r.previous, r.cost, money(shown_change(r.cost, r.previous), signed=True)]
                for r in ov.movers]
        parts.append("\n" + render_rows(
            ["Resource group", "currency", "previous", "cost", "increase"], rows, fmt, title="Top movers"
        ))
    return "".join(parts)

# --- allocation -----------------------------------------------------------------------------------


def allocation_report(cache: Cache, args: argparse.Namespace, config: Config) -> str:
    """`report allocation --by LEVELS [--depth N]`: the tree as an indented table, CSV, Markdown or JSON.

    Costs in several currencies are never added: each currency gets its own tree unless --currency.
    """
    names = [s.strip() for s in args.by.split(",") if s.strip()] if args.by else None
    hierarchy = resolve_hierarchy(names or config.hierarchies.get("default") or DEFAULT_HIERARCHY)
    depth = getattr(args, "depth", None)
    if depth is not None and depth < 1:
        raise UsageError("--depth must be at least 1")
    with cache.cursor() as cur:
        period, fresh = resolve_period(cur, args.period)
        previous = period.previous()
        codes = [args.currency.upper()] if args.currency else currencies(cur, period, args.metric)
        build = shared_tree.allocation_tree if getattr(args, "shared", False) else allocation_tree
        trees = [
            (code, build(cur, hierarchy, period, args.metric, code, depth=depth, top=args.top, previous=previous))
            for code in codes
        ]
    levels = [d.name for d in hierarchy[: depth or len(hierarchy)]]
    if args.format == "json":
        return to_json(_document(period, previous, args.metric, levels, trees)) + "\n"
    header = (
        f"Allocation by {' > '.join(levels)}: {period.describe()}, {METRIC_TITLES[args.metric]}; "
        f"compared with {previous.start} .. {previous.end}"
    )
    if getattr(args, "shared", False):
        header += "; with shared costs"
    if period.anchored_on_data and fresh.data_end:
        header += f"\nData ends {fresh.data_end}; relative periods anchor on that day."
    # Each node prints its own exact figures to the cent; where the rounded children do not add up to
    # the rounded parent, a "(rounding)" row under them says by how much (see basis.money).
    if args.format == "csv":
        rows: list[list[Any]] = []
        for code, tree in trees:
            for path, line in _lines(tree, []):
                if isinstance(line, RoundingLine):
                    rows.append([code, _path_text(path), len(path), "", "", ROUNDING_LABEL, line.cost, line.previous,
                                 "", line.change])
                else:
                    rows.append([code, _path_text(path), len(path), line.dimension, line.key or "", line.label,
                                 line.cost, line.previous_cost, _share_cell(line.share),
                                 shown_change(line.cost, line.previous_cost)])
        return render_rows(["currency", "path", "level", "dimension", "key", "label", "cost", "previous_cost",
                            "share", "change"], rows, "csv")
    parts = [header + "\n" if args.format == "table" else f"## {header}\n"]
    if not trees:
        parts.append("\nNo cost in this period.\n")
    for code, tree in trees:
        total = sum((t.node.cost for t in tree), ZERO)
        total_prev = sum((t.node.previous_cost for t in tree), ZERO)
        indent = "  " if args.format == "table" else "· "
        rows = [["Total", total, "100.0%" if total else "—", total_prev,
                 money(shown_change(total, total_prev), signed=True), change_percent(total, total_prev)]]
        for path, line in _lines(tree, []):
            if isinstance(line, RoundingLine):
                rows.append([indent * len(path) + ROUNDING_LABEL, line.cost, "", line.previous,
                             money(line.change, signed=True), ""])
            else:
                share = percent(line.share * 100, Decimal(100)) if line.share is not None else "—"
                rows.append([indent * len(path) + line.label, line.cost, share, line.previous_cost,
                             money(shown_change(line.cost, line.previous_cost), signed=True),
                             change_percent(line.cost, line.previous_cost)])
        parts.append("\n" + render_rows(
            [f"{' > '.join(levels)}", "cost", "share", "previous", "change", "change %"], rows, args.format,
            title=f"{code}",
        ))
    return "".join(parts)


def _lines(tree: list[TreeNode], path: list[Node]) -> list[tuple[list[Node], Node | RoundingLine]]:
    """Depth first, in display order: (ancestors, node), and after a level's nodes its rounding line if any."""
    out: list[tuple[list[Node], Node | RoundingLine]] = []
    for item in tree:
        out.append((path, item.node))
        out.extend(_lines(item.children, [*path, item.node]))
    if rounding := siblings_rounding(tree):
        out.append((path, rounding))
    return out


def _path_text(path: list[Node]) -> str:
    return " > ".join(f"{n.dimension}={n.label}" for n in path)


def _share_cell(share: Decimal | None) -> str:
    return "" if share is None else format(share.quantize(Decimal("0.0001")), "f")


def _node_document(item: TreeNode) -> dict[str, Any]:
    n = item.node
    doc: dict[str, Any] = {
        "dimension": n.dimension, "key": n.key, "label": n.label, "cost": n.cost, "previous_cost": n.previous_cost,
        "change": shown_change(n.cost, n.previous_cost), "share": _share_cell(n.share) or None,
        "unallocated": n.is_unallocated,
    }
    if n.is_other:
        doc["folded"] = n.folded_count
    if n.shared is not None:
        doc["shared"] = {"pool": n.shared.pool, "method": n.shared.method, "recipient": n.shared.recipient,
                         "whole_pool": n.shared.whole}
    if item.children:
        doc["children"] = [_node_document(c) for c in item.children]
        doc.update(_rounding_document(item.children))
    return doc


def _rounding_document(items: list[TreeNode]) -> dict[str, Any]:
    """`{"rounding": {...}}` when the rounded children miss the rounded parent, so JSON consumers foot too."""
    rounding = siblings_rounding(items)
    if not rounding:
        return {}
    return {"rounding": {"cost": rounding.cost, "previous_cost": rounding.previous, "change": rounding.change}}


def _document(
    period: Period, previous: Period, metric: str, levels: list[str], trees: list[tuple[str, list[TreeNode]]]
) -> dict[str, Any]:
    """The JSON shape of `report allocation --format json`: one nested tree per currency."""
    return {
        "view": "allocation",
        "period": {"start": period.start, "end": period.end, "spec": period.spec},
        "previous_period": {"start": previous.start, "end": previous.end},
        "metric": metric,
        "hierarchy": levels,
        "currencies": [
            {
                "currency": code,
                "cost": sum((t.node.cost for t in tree), ZERO),
                "previous_cost": sum((t.node.previous_cost for t in tree), ZERO),
                "children": [_node_document(t) for t in tree],
                **_rounding_document(tree),
            }
            for code, tree in trees
        ],
    }

# --- recommendations ------------------------------------------------------------------------------


def recommendations_report(cache: Cache, args: argparse.Namespace, config: Config) -> str:
    """Rank and print every finding on the cache's latest data (the period flag does not apply: findings look
    back from the last day with data)."""
    billed = getattr(args, "metric", "effective") == "billed"
    metric: Literal["effective", "billed"] = "billed" if billed else "effective"
    fmt = getattr(args, "format", "table")
    with cache.cursor() as cur:
        ctx = Context.from_cache(
            cur, metric=metric, team_key=config.team_key, currency=getattr(args, "currency", None),
            tag_keys=tuple(config.tag_keys),
        )
        if ctx is None:
            recs: list[Recommendation] = []
            hidden = 0
        else:
            found, _timings = generate(cur, ctx)
            recs, hidden = apply_state(found, load_states(cur), RecFilter())
    top = getattr(args, "top", None)
    if top is not None:
        recs = recs[: max(top, 0)]
    if fmt == "json":
        doc: dict[str, Any] = {
            "view": "recommendations",
            "data_end": ctx.data_end if ctx else None,
            "metric": metric,
            "team_key": ctx.team_key if ctx else config.team_key,
            "currency": ctx.currency if ctx else None,
            "hidden": hidden,
            "recommendations": [r.to_dict() for r in recs],
        }
        return to_json(doc) + "\n"
    rows = [
        [i, r.monthly_impact, r.currency, KIND_TITLES.get(r.kind, r.kind), r.confidence + ("*" if r.estimate else ""),
         r.scope.label, r.title]
        for i, r in enumerate(recs, 1)
    ]
    if ctx is None:
        title = "Recommendations: the cache holds no cost data yet"
    else:
        title = f"Recommendations on data up to {ctx.data_end.isoformat()} ({metric} cost, ranked by money per month)"
    text = render_rows(RECOMMENDATION_COLUMNS, rows, fmt, title=None if fmt == "csv" else title)
    if fmt != "csv":
        notes = []
        if any(r.estimate for r in recs):
            notes.append("* estimate (trend or rule of thumb), not measured waste")
        if hidden:
            notes.append(f"{hidden} dismissed or snoozed not shown")
        if notes:
            text += "\n" + "\n".join(notes) + "\n"
    return text
