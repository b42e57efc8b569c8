"""Rendering command output as an aligned table, CSV, Markdown or JSON.

Data reaches every format unchanged except where it would act instead of being read: control characters
are shown as escapes in tables and Markdown (and as \\u escapes in JSON, which keeps the data), and CSV
text cells that a spreadsheet would run as a formula get a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from finops_tui.basis.money import cents
from finops_tui.textsafe import json_safe, printable, spreadsheet_safe


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(cents(value), "f")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(document: Any) -> str:
    return json_safe(json.dumps(document, default=json_default, indent=2, ensure_ascii=False))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(cents(value), "f")
    return str(value)


def _shown_cell(value: Any) -> str:
    """A cell for people (table, Markdown): money with thousands separators, as the signed changes beside it."""
    return f"{cents(value):,.2f}" if isinstance(value, Decimal) else _cell(value)


def _csv_cell(value: Any) -> str:
    text = _cell(value)
    return spreadsheet_safe(text) if isinstance(value, str) else text


def render_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, *, title: str | None = None) -> str:
    """Rows as `table` (aligned text), `csv` or `md`; money cells are exact cents (with thousands separators in
    `table` and `md`, plain in `csv`)."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([spreadsheet_safe(c) for c in columns])
        writer.writerows([[_csv_cell(v) for v in row] for row in rows])
        return buffer.getvalue()
    cells = [[printable(_shown_cell(v)) for v in row] for row in rows]
    columns = [printable(c) for c in columns]
    title = printable(title) if title is not None else None
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
