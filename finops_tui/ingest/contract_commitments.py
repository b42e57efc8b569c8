"""FOCUS 1.3 Contract Commitment files: one row per commitment of a contract, into `contract_commitments`.

The dataset (FOCUS 1.3, beside cost and usage) has ContractId, ContractCommitmentId, -Category (Spend or
Usage), -Type, -Description, -Cost (with BillingCurrency) or -Quantity with -Unit, and the commitment's and
the contract's periods (ends exclusive). A file replaces the commitments of the contracts it names, in the
import's transaction. A row is bad when an id is missing, a number or date does not parse, the currency is not
ISO 4217, the category is not Spend or Usage, a period ends before it starts, or an id pair repeats; the import
is refused naming file, row, field and value (with --skip-bad-rows the row is left out and listed).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import duckdb

from finops_tui import clock
from finops_tui.errors import UserError
from finops_tui.ingest.currencies import ISO_4217_CODES
from finops_tui.ingest.files import SourceFile
from finops_tui.textsafe import printable

REQUIRED = ("ContractCommitmentId", "ContractId")
_TEXT = ("ContractCommitmentType", "ContractCommitmentDescription", "ContractCommitmentUnit")
_TIMESTAMPS = ("ContractCommitmentPeriodStart", "ContractCommitmentPeriodEnd", "ContractPeriodStart",
               "ContractPeriodEnd")
COLUMNS = ("ContractCommitmentId", "ContractId", "ContractCommitmentCategory", "ContractCommitmentType",
           "ContractCommitmentDescription", "ContractCommitmentCost", "ContractCommitmentQuantity",
           "ContractCommitmentUnit", *_TIMESTAMPS, "BillingCurrency")
CATEGORIES = {"spend": "Spend", "usage": "Usage"}
MAX_ROWS = 100_000  # a contract has a handful of commitments; more means the file is something else


@dataclass
class ContractImport:
    """What one Contract Commitment file brought in, for the summary line."""

    label: str
    rows: int
    contracts: list[str]
    skipped_rows: int = 0
    notes: list[str] = field(default_factory=list)
    source_id: int | None = None  # not a cost window: no `sources` row

    def summary(self) -> str:
        skipped = f"; skipped {self.skipped_rows} bad rows" if self.skipped_rows else ""
        names = ", ".join(self.contracts[:3]) + (f" and {len(self.contracts) - 3} more" if len(self.contracts) > 3
                                                  else "")
        return (f"{self.label}: {self.rows:,} contract commitments (FOCUS 1.3 Contract Commitment) of contract "
                f"{names or '—'}, replacing that contract's commitments{skipped}")


@dataclass(frozen=True)
class _Problem:
    row: int
    column: str
    value: str | None
    expected: str

    def describe(self) -> str:
        found = "nothing" if self.value is None else repr(printable(self.value[:60]))
        return f"row {self.row}, {self.column}: expected {self.expected}, found {found}"


def load_contract_commitments(
    cur: duckdb.DuckDBPyConnection, source: SourceFile, *, skip_bad_rows: bool = False,
) -> ContractImport:
    """Inside the import's transaction: check every row, replace the named contracts' commitments."""
    missing = [name for name in REQUIRED if not source.has(name)]
    if missing or not source.has("ContractCommitmentPeriodStart") or not source.has("ContractCommitmentPeriodEnd"):
        needed = missing or ["ContractCommitmentPeriodStart", "ContractCommitmentPeriodEnd"]
        raise UserError(f"{source.name}: FOCUS Contract Commitment file without the column(s) {', '.join(needed)}; "
                        "export it again with every Contract Commitment column")
    selected = ", ".join(
        f"CAST({source.ref(col)} AS VARCHAR)" if (col := source.column(name)) else "NULL" for name in COLUMNS
    )
    try:
        raw = cur.execute(f"SELECT {selected} FROM {source.reader_sql()} AS src LIMIT {MAX_ROWS + 1}").fetchall()
    except duckdb.Error as exc:
        raise UserError(f"{source.name}: cannot be read ({str(exc).splitlines()[0]}); check that the file is a "
                        "complete FOCUS Contract Commitment export") from None
    if len(raw) > MAX_ROWS:
        raise UserError(f"{source.name}: more than {MAX_ROWS:,} contract commitments; is it a cost file with "
                        "Contract Commitment columns? Import the FOCUS cost and usage export for cost")
    good: list[list[object]] = []
    problems: list[_Problem] = []
    seen: set[tuple[str, str]] = set()
    for number, values in enumerate(raw, start=1):
        parsed, problem = _parse(number, dict(zip(COLUMNS, values, strict=True)), seen)
        if problem is not None:
            problems.append(problem)
        else:
            good.append(parsed)
    notes = []
    if problems:
        listing = "\n".join(f"  {p.describe()}" for p in problems[:10])
        more = f"\n  … and {len(problems) - 10} more" if len(problems) > 10 else ""
        if not skip_bad_rows:
            first = problems[0].describe()
            raise UserError(f"{source.name}: {len(problems)} bad contract commitment rows (first: {first}); fix the "
                            "file or import with --skip-bad-rows; the cache is unchanged")
        notes.append(f"{source.name}: skipped {len(problems)} bad rows:\n{listing}{more}")
    contracts = sorted({str(row[1]) for row in good})
    if contracts:
        cur.execute(
            "DELETE FROM contract_commitments WHERE ContractId IN (SELECT unnest($ids))", {"ids": contracts}
        )
        now = clock.now()
        cur.executemany(
            f"INSERT INTO contract_commitments ({', '.join(COLUMNS)}, path, file_hash, imported_at) "
            f"VALUES ({', '.join('?' for _ in COLUMNS)}, ?, ?, ?)",
            [[*row, str(source.path), source.fingerprint, now] for row in good],
        )
    return ContractImport(source.name, len(good), contracts, skipped_rows=len(problems), notes=notes)


def _parse(number: int, row: dict[str, str | None], seen: set[tuple[str, str]]) -> tuple[list[object], _Problem | None]:
    """One row as the values to insert (in COLUMNS order), or the first problem it has."""
    out: dict[str, object] = {}
    for name in REQUIRED:
        value = (row[name] or "").strip()
        if not value:
            return [], _Problem(number, name, row[name], "an id")
        out[name] = value
    key = (str(out["ContractId"]), str(out["ContractCommitmentId"]))
    if key in seen:
        return [], _Problem(number, "ContractCommitmentId", key[1], "an id given once per contract")
    category = (row["ContractCommitmentCategory"] or "").strip()
    if category and category.lower() not in CATEGORIES:
        return [], _Problem(number, "ContractCommitmentCategory", category, "Spend or Usage")
    out["ContractCommitmentCategory"] = CATEGORIES.get(category.lower()) if category else None
    for name in _TEXT:
        out[name] = (row[name] or "").strip() or None
    cost_text = (row["ContractCommitmentCost"] or "").strip()
    try:
        out["ContractCommitmentCost"] = Decimal(cost_text) if cost_text else None
    except InvalidOperation:
        return [], _Problem(number, "ContractCommitmentCost", cost_text, "a decimal number (e.g. 120000.00)")
    quantity_text = (row["ContractCommitmentQuantity"] or "").strip()
    try:
        out["ContractCommitmentQuantity"] = float(quantity_text) if quantity_text else None
    except ValueError:
        return [], _Problem(number, "ContractCommitmentQuantity", quantity_text, "a number")
    for name in _TIMESTAMPS:
        text = (row[name] or "").strip()
        try:
            out[name] = _timestamp(text) if text else None
        except ValueError:
            return [], _Problem(number, name, text, "an ISO 8601 date and time (e.g. 2025-01-01T00:00:00Z)")
    for start, end in (("ContractCommitmentPeriodStart", "ContractCommitmentPeriodEnd"),
                       ("ContractPeriodStart", "ContractPeriodEnd")):
        if out[start] is None and start.startswith("ContractCommitment"):
            return [], _Problem(number, start, row[start], "the commitment's first day")
        if out[start] is not None and out[end] is not None and out[end] <= out[start]:  # type: ignore[operator]
            return [], _Problem(number, end, row[end], f"a time after {start} (the end is exclusive)")
    currency = (row["BillingCurrency"] or "").strip().upper()
    if currency and currency not in ISO_4217_CODES:
        return [], _Problem(number, "BillingCurrency", row["BillingCurrency"], "an ISO 4217 currency code (e.g. USD)")
    if out["ContractCommitmentCost"] is not None and not currency:
        return [], _Problem(number, "BillingCurrency", None, "the currency of ContractCommitmentCost")
    out["BillingCurrency"] = currency or None
    seen.add(key)
    return [out[name] for name in COLUMNS], None


def _timestamp(text: str) -> dt.datetime:
    """ISO 8601, an offset honoured, as naive UTC (as the cost importer stores timestamps)."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value
