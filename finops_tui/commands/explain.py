"""`finops-tui report explain`: why a scope's cost changed between two periods, bucket by bucket, as a table,
CSV, Markdown or JSON."""

from __future__ import annotations

import argparse
from decimal import Decimal
from typing import Any

from finops_tui.basis.metrics import METRIC_TITLES
from finops_tui.basis.money import cents, change_percent, money, shown_change
from finops_tui.basis.periods import Period, resolve_period
from finops_tui.commands.render import render_rows, to_json
from finops_tui.config import Config
from finops_tui.errors import UsageError
from finops_tui.report.explain import (
    DEFAULT_TOP,
    KIND_TITLES,
    Bucket,
    CurrencyExplanation,
    Explanation,
    explain,
    parse_scope,
    resolve_scope,
)
from finops_tui.store import Cache

ZERO = Decimal(0)


def explain_report(cache: Cache, args: argparse.Namespace, config: Config) -> str:
    """The explanation of `--scope` for `--period` against `--vs` (default: the period before)."""
    top = DEFAULT_TOP if args.top is None else args.top
    if top < 0:
        raise UsageError("--top must be 0 or more")
    parts = parse_scope(args.scope)  # a bad scope fails before any query
    with cache.cursor() as cur:
        period, _fresh = resolve_period(cur, args.period)
        vs = resolve_period(cur, args.vs)[0] if args.vs else period.previous()
        scope = resolve_scope(cur, parts)
        result = explain(cur, scope, period, vs, args.metric, args.currency, top=top)
    if args.format == "json":
        return to_json(explanation_document(result)) + "\n"
    return _text(result, args.format)


def rounding_gap(result: CurrencyExplanation) -> Decimal:
    """What the buckets, each rounded to the cent, miss to make the change as shown (after minus before in cents)."""
    return shown_change(result.after, result.before) - sum((cents(b.amount) for b in result.buckets), ZERO)


def _period_document(period: Period) -> dict[str, Any]:
    return {"start": period.start, "end": period.end, "spec": period.spec, "days": period.days}


def explanation_document(result: Explanation) -> dict[str, Any]:
    """The JSON shape of `report explain --format json` (money as decimal strings to the cent)."""
    currencies = []
    for cur in result.currencies:
        doc: dict[str, Any] = {
            "currency": cur.currency, "before": cur.before, "after": cur.after,
            "change": shown_change(cur.after, cur.before),
            "buckets": [
                {
                    "kind": b.kind, "amount": b.amount,
                    "top": [{"resource_id": c.resource_id, "name": c.name, "meter": c.meter, "amount": c.amount}
                            for c in b.top],
                    **({"rest": {"count": b.rest_count, "amount": b.rest}} if b.rest_count else {}),
                }
                for b in cur.buckets
            ],
        }
        if gap := rounding_gap(cur):  # the buckets' cents miss the change's: say so rather than move a cent
            doc["rounding"] = gap
        currencies.append(doc)
    return {
        "scope": [{"dimension": p.dimension, "key": p.key, "label": p.label} for p in result.scope],
        "period": _period_document(result.period),
        "vs": _period_document(result.vs),
        "metric": result.metric,
        "currencies": currencies,
    }


def _text(result: Explanation, fmt: str) -> str:
    header = (f"Explain {result.scope_text()}: {result.period.describe()} against "
              f"{result.vs.start} .. {result.vs.end}, {METRIC_TITLES[result.metric]}")
    if fmt == "csv":
        rows: list[list[Any]] = []
        for cur in result.currencies:
            rows += [[cur.currency, "total", "before", "", "", "", cur.before],
                     [cur.currency, "total", "after", "", "", "", cur.after]]
            for b in cur.buckets:
                rows.append([cur.currency, "bucket", b.kind, "", "", "", b.amount])
                rows += [[cur.currency, "contributor", b.kind, c.resource_id or "", c.name, c.meter or "", c.amount]
                         for c in b.top]
                if b.rest_count:
                    rows.append([cur.currency, "rest", b.kind, "", f"({b.rest_count} more)", "", b.rest])
        return render_rows(["currency", "section", "kind", "resource_id", "name", "meter", "amount"], rows, "csv")
    parts = [header + "\n" if fmt == "table" else f"## {header}\n"]
    if not result.currencies:
        parts.append("\nNo cost in either period.\n")
    for cur in result.currencies:
        parts.append("\n" + _buckets_table(cur, fmt))
        for b in cur.buckets:
            if b.top:
                parts.append("\n" + _contributors_table(cur.currency, b, fmt))
    return "".join(parts)


def _buckets_table(cur: CurrencyExplanation, fmt: str) -> str:
    rows: list[list[Any]] = [["before", "", cur.before, ""]]
    for b in cur.buckets:
        rows.append([b.kind, KIND_TITLES[b.kind], money(b.amount, signed=True), len(b.top) + b.rest_count or ""])
    if gap := rounding_gap(cur):
        rows.append(["(rounding)", "", money(gap, signed=True), ""])
    rows.append(["after", "", cur.after, ""])
    change = shown_change(cur.after, cur.before)
    title = f"{cur.currency}: change {money(change, signed=True)} ({change_percent(cur.after, cur.before)})"
    return render_rows(["bucket", "what", "amount", "contributors"], rows, fmt, title=title)


def _contributors_table(currency: str, bucket: Bucket, fmt: str) -> str:
    rows: list[list[Any]] = [[c.name, c.meter or "", money(c.amount, signed=True), c.resource_id or ""]
                             for c in bucket.top]
    if bucket.rest_count:
        rows.append([f"({bucket.rest_count} more)", "", money(bucket.rest, signed=True), ""])
    return render_rows(["name", "meter / charge", "amount", "resource id"], rows, fmt,
                       title=f"{currency} {bucket.kind}: {money(bucket.amount, signed=True)}")
