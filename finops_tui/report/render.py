"""Rendering report rows as an aligned table, CSV, Markdown or JSON; money formatting."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

CENT = Decimal("0.01")


def cents(amount: Decimal | None) -> Decimal:
    """Round to the cent (banker's rounding, as billing systems do)."""
    return (amount or Decimal(0)).quantize(CENT, rounding=ROUND_HALF_EVEN)


def money(amount: Decimal | None, currency: str | None = None, *, signed: bool = False) -> str:
    """`12,345.67 USD`; `+1,234.00` with signed=True."""
    value = cents(amount)
    text = f"{value:+,.2f}" if signed else f"{value:,.2f}"
    return f"{text} {currency}" if currency else text


def money_short(amount: Decimal | None) -> str:
    """Compact figure for tight columns: 1.2M, 45.3k, 812.40."""
    value = amount or Decimal(0)
    magnitude = abs(value)
    if magnitude >= Decimal(1_000_000):
        return f"{value / Decimal(1_000_000):,.2f}M"
    if magnitude >= Decimal(10_000):
        return f"{value / Decimal(1000):,.1f}k"
    return f"{cents(value):,.2f}"


def percent(part: Decimal | None, whole: Decimal | None, *, signed: bool = False) -> str:
    if part is None or not whole:
        return "—"
    value = part / whole * 100
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def change_percent(current: Decimal | None, previous: Decimal | None) -> str:
    if previous is None or previous == 0:
        return "new" if current else "—"
    return percent((current or Decimal(0)) - previous, abs(previous), signed=True)


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(cents(value), "f")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(document: Any) -> str:
    return json.dumps(document, default=json_default, indent=2, ensure_ascii=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(cents(value), "f")
    return str(value)


def render_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, *, title: str | None = None) -> str:
    """Rows as `table` (aligned text), `csv` or `md`; money cells are exact cents."""
    cells = [[_cell(v) for v in row] for row in rows]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(cells)
        return buffer.getvalue()
    numeric = [
        all(_looks_numeric(row[i]) for row in cells if row[i]) and any(row[i] for row in cells)
        for i in range(len(columns))
    ]
    if fmt == "md":
        out = [f"### {title}", ""] if title else []
        out.append("| " + " | ".join(columns) + " |")
        out.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(out) + "\n"
    widths = [max([len(col)] + [len(row[i]) for row in cells]) for i, col in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(values)
        ).rstrip()

    out = [title, ""] if title else []
    out += [line(columns), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out) + "\n"


def _looks_numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("%", "").replace("+", "").replace("-", "").replace(".", "")
    return stripped.isdigit() or text in ("—", "new")
