"""Finding and describing a file's bad rows: which row, which field, what it held and what was expected.

Only runs when a load found bad rows. It reads the file again with row numbers and the same checks as
the load (SQL, never row by row in Python), and keeps the few rows it needs for the message.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import duckdb

from finops_tui.ingest.files import SourceFile
from finops_tui.ingest.mapping import Mapping, RowCheck, ValueCheck, quote_ident, quote_literal

EXAMPLES = 5

_REJECT_EXPLANATIONS = {
    "MISSING COLUMNS": "the row has fewer fields than the header (a file cut short, or a stray line break)",
    "TOO MANY COLUMNS": "the row has more fields than the header (an unquoted delimiter or a shifted row)",
    "UNQUOTED VALUE": "a quote opens but never closes (a file cut short, or a stray quote)",
    "INVALID UNICODE": "the text is not valid UTF-8",
    "LINE SIZE OVER MAXIMUM": "the row is longer than 2 MB (DuckDB's line limit)",
    "CAST": "a value does not parse",
}


@dataclass(frozen=True)
class BadRow:
    file: str
    row: int  # 1-based data row (the header is not counted)
    field: str
    expected: str
    found: str | None
    problem: str | None = None  # a whole-row problem (wrong number of fields...), instead of expected/found

    def describe(self) -> str:
        if self.problem:
            return f"row {self.row}: {self.problem}"
        found = "nothing" if self.found is None else repr(_clip(self.found))
        return f"row {self.row}, {self.field}: expected {self.expected}, found {found}"


@dataclass
class BadRowReport:
    """Every bad row of one load: counts per field and the first few rows in file order."""

    total: int = 0
    by_field: dict[str, int] = field(default_factory=dict)
    examples: list[BadRow] = field(default_factory=list)

    def add(self, other: BadRowReport) -> None:
        self.total += other.total
        for name, count in other.by_field.items():
            self.by_field[name] = self.by_field.get(name, 0) + count
        self.examples = sorted([*self.examples, *other.examples], key=lambda r: (r.file, r.row))[:EXAMPLES]

    def counts_text(self) -> str:
        return ", ".join(f"{name} {count}" for name, count in sorted(self.by_field.items(), key=lambda kv: -kv[1]))


@dataclass(frozen=True)
class StructuralReject:
    """A CSV row DuckDB could not split into the header's fields."""

    row: int
    error_type: str


def read_rejects(cur: duckdb.DuckDBPyConnection, rejects_table: str) -> list[StructuralReject]:
    """Rows the CSV reader set aside (one per row, first error wins), from its rejects table."""
    exists = cur.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND temporary", [rejects_table]
    ).fetchone()
    if not exists or not exists[0]:
        return []
    # A whole-line error (LINE SIZE OVER MAXIMUM) has no column; it comes first, and arg_min skips NULL keys.
    rows = cur.execute(
        f"SELECT line - 1 AS data_row, arg_min(error_type, coalesce(column_idx, -1)) "
        f"FROM {quote_ident(rejects_table)} GROUP BY ALL ORDER BY data_row"
    ).fetchall()
    return [StructuralReject(int(row), str(kind)) for row, kind in rows]


def structural_report(source: SourceFile, rejects: list[StructuralReject]) -> BadRowReport:
    report = BadRowReport(total=len(rejects))
    if rejects:
        report.by_field["row layout"] = len(rejects)
    report.examples = [
        BadRow(
            source.name,
            r.row,
            "row layout",
            "as many fields as the header",
            None,
            problem=_REJECT_EXPLANATIONS.get(r.error_type, r.error_type.lower()),
        )
        for r in rejects[:EXAMPLES]
    ]
    return report


def value_check_sql(check: ValueCheck, invalid: list[str | None]) -> str:
    """True for rows holding one of the `invalid` values found among the loaded distinct values."""
    column = quote_ident(check.column)
    terms = []
    values = [v for v in invalid if v is not None]
    if values:
        terms.append(f"{column} IN ({', '.join(quote_literal(v) for v in values)})")
    if None in invalid:
        terms.append(f"{column} IS NULL")
    return "(" + " OR ".join(terms) + ")" if terms else "false"


def find_bad_rows(
    cur: duckdb.DuckDBPyConnection,
    source: SourceFile,
    mapping: Mapping,
    checks: list[RowCheck],
    rejected_rows: list[int],
) -> BadRowReport:
    """Read `source` again, numbering rows, and collect the rows failing any of `checks`."""
    if not checks:
        return BadRowReport()
    flags = ", ".join(f"CASE WHEN coalesce({c.failed_sql}, false) THEN {i} END" for i, c in enumerate(checks))
    fields = list(dict.fromkeys(c.field for c in checks))
    # A field with several checks (parses, then is required) counts a row once, however many it fails.
    field_flags = ", ".join(
        f"CASE WHEN coalesce({c.failed_sql}, false) THEN {fields.index(c.field)} END" for c in checks
    )
    raws = ", ".join(f"CAST({c.raw_sql} AS VARCHAR)" for c in checks)
    inner = mapping.inner_select(source.reader_sql(row_numbers=True), extra="src._row AS _row")
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _finops_bad_rows AS
        SELECT _row, list_filter([{flags}], lambda f: f IS NOT NULL) AS failed,
               list_distinct(list_filter([{field_flags}], lambda f: f IS NOT NULL)) AS failed_fields,
               [{raws}] AS raws
        FROM ({inner}) AS typed
        WHERE {mapping.any_failed_sql(checks)}
        """
    )
    total_row = cur.execute("SELECT count(*) FROM _finops_bad_rows").fetchone()
    report = BadRowReport(total=int(total_row[0]) if total_row else 0)
    for index, count in cur.execute(
        "SELECT f, count(*) FROM (SELECT unnest(failed_fields) AS f FROM _finops_bad_rows) GROUP BY f"
    ).fetchall():
        name = fields[int(index)]
        report.by_field[name] = report.by_field.get(name, 0) + int(count)
    # Rows the reader rejected are not numbered by row_number(); put them back to get file rows.
    for row, failed, raws in cur.execute(
        f"SELECT _row, failed, raws FROM _finops_bad_rows ORDER BY _row LIMIT {EXAMPLES}"
    ).fetchall():
        check = checks[int(failed[0])]
        report.examples.append(
            BadRow(source.name, _file_row(int(row), rejected_rows), check.field, check.expected, raws[int(failed[0])])
        )
    cur.execute("DROP TABLE _finops_bad_rows")
    return report


def _file_row(accepted_index: int, rejected_rows: list[int]) -> int:
    """The data row of the n-th accepted row, given the (sorted) data rows the reader rejected."""
    row = accepted_index
    while True:
        candidate = accepted_index + bisect.bisect_right(rejected_rows, row)
        if candidate == row:
            return row
        row = candidate


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
