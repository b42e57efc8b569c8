"""`finops-tui report recommendations`: the recommendations screen's list, headless, as table, CSV, Markdown or JSON."""

from __future__ import annotations

import argparse
from typing import Any, Literal

from finops_tui.config import load_config
from finops_tui.recommend.engine import RecFilter, apply_state, generate, load_states
from finops_tui.recommend.generators import KIND_TITLES
from finops_tui.recommend.model import Context, Recommendation
from finops_tui.report.render import render_rows, to_json
from finops_tui.store import Cache

COLUMNS = ["#", "Impact / month", "Currency", "Kind", "Confidence", "Scope", "Title"]


def recommendations_report(cache: Cache, args: argparse.Namespace) -> str:
    """Rank and print every finding on the cache's latest data (the period flag does not apply: findings look
    back from the last day with data)."""
    config = load_config()
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
    text = render_rows(COLUMNS, rows, fmt, title=None if fmt == "csv" else title)
    if fmt != "csv":
        notes = []
        if any(r.estimate for r in recs):
            notes.append("* estimate (trend or rule of thumb), not measured waste")
        if hidden:
            notes.append(f"{hidden} dismissed or snoozed not shown")
        if notes:
            text += "\n" + "\n".join(notes) + "\n"
    return text
