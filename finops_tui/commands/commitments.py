"""`finops-tui report commitments`: utilization, coverage, savings and waste per currency and commitment."""

from __future__ import annotations

import argparse
from decimal import Decimal
from typing import Any

from finops_tui.basis.periods import resolve_period
from finops_tui.commands.render import render_rows, to_json
from finops_tui.config import Config
from finops_tui.report.commitments import CommitmentsView, CurrencyCommitments, commitments, ratio_text
from finops_tui.store import Cache

NOT_COMPUTED = "n/a"  # a saving withheld because a price is missing


def commitments_document(view: CommitmentsView) -> dict[str, Any]:
    """The JSON shape of `report commitments --format json`: ratios as 4-place strings, money with 2."""
    return {
        "period": {"start": view.period.start, "end": view.period.end, "spec": view.period.spec},
        "currencies": [
            {
                "currency": v.currency,
                "utilization": ratio_text(v.utilization),
                "coverage": ratio_text(v.coverage),
                "effective_savings_rate": ratio_text(v.effective_savings_rate),
                "realized_savings": v.realized_savings,
                "negotiated_savings": v.negotiated_savings,
                "unused": v.unused,
                "commitments": [
                    {
                        "id": c.id, "name": c.name, "type": c.type, "used": c.used, "unused": c.unused,
                        "utilization": ratio_text(c.utilization), "purchase": c.purchase,
                        "realized_savings": c.realized_savings,
                    }
                    for c in v.commitments
                ],
            }
            for v in view.currencies
        ],
    }


def commitments_report(cache: Cache, args: argparse.Namespace, config: Config) -> str:
    """Run the commitments read model for `--period` (and `--currency`) and print it in `--format`."""
    with cache.cursor() as cur:
        period, _fresh = resolve_period(cur, args.period)
        view = commitments(cur, period, currency=args.currency, covered_limit=0)
    if args.format == "json":
        return to_json(commitments_document(view)) + "\n"
    if args.format == "csv":
        return render_rows(_CSV_COLUMNS, [r for v in view.currencies for r in _csv_rows(v)], "csv")
    return _text(view, args.format)


_CSV_COLUMNS = ["currency", "id", "name", "type", "category", "provider", "scope", "term", "used", "unused",
                "utilization", "purchase", "realized_savings", "negotiated_savings", "coverage",
                "effective_savings_rate"]
ALL_COMMITMENTS = "(all commitments)"


def _csv_rows(v: CurrencyCommitments) -> list[list[Any]]:
    rows: list[list[Any]] = [
        [v.currency, "", ALL_COMMITMENTS, "", "", "", "", "", v.used, v.unused, ratio_text(v.utilization), v.purchase,
         v.realized_savings, v.negotiated_savings, ratio_text(v.coverage), ratio_text(v.effective_savings_rate)]
    ]
    rows += [
        [v.currency, c.id, c.name, c.type, c.category, c.provider, c.scope, c.term, c.used, c.unused,
         ratio_text(c.utilization), c.purchase, c.realized_savings, c.negotiated_savings, "", ""]
        for c in v.commitments
    ]
    return rows


def _percent(ratio: Decimal | None) -> str:
    return NOT_COMPUTED if ratio is None else f"{ratio * 100:.1f}% ({ratio_text(ratio)})"


def _money(amount: Decimal | None) -> Decimal | str:
    return NOT_COMPUTED if amount is None else amount


def _text(view: CommitmentsView, fmt: str) -> str:
    header = f"Commitments: {view.period.describe()}, EffectiveCost (amortized); purchases as BilledCost"
    parts = [header + "\n" if fmt == "table" else f"## {header}\n"]
    if not view.currencies:
        parts.append("\nNo commitment discount in this period.\n")
    for v in view.currencies:
        kpis: list[list[Any]] = [
            ["Utilization (used / (used + unused))", _percent(v.utilization)],
            ["Coverage (covered / eligible ListCost)", _percent(v.coverage)],
            ["Effective savings rate", _percent(v.effective_savings_rate)],
            ["Realized savings (ListCost − EffectiveCost, covered usage)", _money(v.realized_savings)],
            ["  of which the negotiated rate (ListCost − ContractedCost)", _money(v.negotiated_savings)],
            ["Used (amortized)", v.used],
            ["Unused (waste)", v.unused],
            ["Purchases billed", v.purchase],
        ]
        parts.append("\n" + render_rows(["KPI", "value"], kpis, fmt, title=f"{v.currency}"))
        rows = [
            [c.label, c.type or "", c.scope or "", c.term or "", c.used, c.unused, _percent(c.utilization), c.purchase,
             _money(c.realized_savings)]
            for c in v.commitments
        ]
        if rows:
            parts.append("\n" + render_rows(
                ["commitment", "type", "scope", "term", "used", "unused", "utilization", "purchase",
                 "realized savings"],
                rows, fmt, title=f"Commitments ({v.currency})",
            ))
    if view.contracts:
        rows = [
            [k.id, k.contract_id or "", k.category or "", k.type or "", k.amount,
             f"{k.start} .. {k.end}" if k.start and k.end else "", k.status,
             k.billed_in_period if k.billed_in_period is not None else ""]
            for k in view.contracts
        ]
        parts.append("\n" + render_rows(
            ["contract commitment", "contract", "category", "type", "amount", "period", "status",
             "billed in its period"],
            rows, fmt, title="Contract commitments (FOCUS 1.3)",
        ))
    notes = view.notes()
    if notes:
        parts.append("\n" + "\n".join(notes) + "\n")
    return "".join(parts)
